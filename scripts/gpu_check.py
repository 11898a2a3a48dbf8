"""Memory and speed of a real-size Qwen2.5-VL-3B architecture with RANDOM weights on a GPU.

    python scripts/gpu_check.py [--out DIR] [--small]

No weights can be downloaded, so the model has the real 3B configuration (hidden 2048,
36 layers, 32-layer vision tower) and random weights, and a small offline tokenizer; the
image processor is the real one (448 x 448 image -> 256 visual tokens). Figures are
labelled "random weights": memory and speed depend on the architecture, not the values.
Steps: bf16 in memory -> save -> load in 4-bit NF4 through rschat.backends.loading (the
app's own loading code) -> optionally 8-bit. ``--small`` shrinks the model to check the
script on a CPU.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

TEXT_3B = dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
               num_key_value_heads=2, vocab_size=151936, max_position_embeddings=32768, rope_theta=1000000.0,
               rms_norm_eps=1e-6, tie_word_embeddings=True,
               rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]})  # fmt: skip
VISION_3B = dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
                 patch_size=14, spatial_merge_size=2, temporal_patch_size=2, window_size=112,
                 fullatt_block_indexes=[7, 15, 23, 31], in_channels=3, hidden_act="silu")  # fmt: skip


def build(small: bool):  # type: ignore[no-untyped-def]
    import torch
    import transformers as tf

    from fixtures.tiny_models import QWEN_SPECIAL, QWEN_TEMPLATE, _tokenizer

    fast = _tokenizer(QWEN_SPECIAL, eos="<|im_end|>", pad="<|endoftext|>")
    ids = {t: fast.convert_tokens_to_ids(t) for t in QWEN_SPECIAL}
    processor = tf.Qwen2_5_VLProcessor(
        image_processor=tf.Qwen2VLImageProcessor(),
        tokenizer=fast,
        video_processor=tf.Qwen2VLVideoProcessor(),
        chat_template=QWEN_TEMPLATE,
    )
    text, vision = dict(TEXT_3B), dict(VISION_3B)
    if small:
        text.update(
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=2,
            num_attention_heads=4,
            rope_scaling={"type": "mrope", "mrope_section": [4, 6, 6]},
        )
        vision.update(
            depth=2, hidden_size=64, intermediate_size=128, num_heads=4, out_hidden_size=128, fullatt_block_indexes=[1]
        )
    text.update(eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"], bos_token_id=None)
    config = tf.Qwen2_5_VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = tf.Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    return model.eval(), processor


def speed(model, processor, new_tokens: int, **generate) -> dict:  # type: ignore[no-untyped-def]
    """Prefill and decode timing for one 448 x 448 image and a short question; ``generate``
    goes to ``model.generate`` (a static cache, compilation)."""
    import numpy as np
    import torch
    from PIL import Image

    image = Image.fromarray((np.random.default_rng(0).random((448, 448, 3)) * 255).astype(np.uint8))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what changed?"}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[image], return_tensors="pt").to(model.device)

    def run(n: int) -> float:
        sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
        sync()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False, **generate)
        sync()
        assert out.shape[1] - inputs["input_ids"].shape[1] == n
        return time.perf_counter() - t0

    run(16)  # warm-up: kernels, allocator, caches
    first = min(run(1) for _ in range(3))
    full = min(run(new_tokens) for _ in range(2))
    return {
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "prefill_s": round(first, 3),
        "decode_tokens_per_s": round((new_tokens - 1) / (full - first), 1),
        "new_tokens": new_tokens,
    }


def gpu_memory_gb() -> dict:
    import torch

    if not torch.cuda.is_available():
        return {}
    return {
        "allocated_gb": round(torch.cuda.memory_allocated() / 2**30, 2),
        "peak_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="/tmp")
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip the rest of the loads when past this")
    parser.add_argument("--quants", default="4bit,8bit", help="settings of RSCHAT_VLM_QUANT to load and time")
    args = parser.parse_args()
    import torch
    import transformers

    from rschat.backends import loading
    from rschat.config import Settings

    started = time.perf_counter()
    report: dict = {
        "weights": "RANDOM (real Qwen2.5-VL-3B architecture, no trained values)",
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "runs": {},
    }
    model, processor = build(args.small)
    report["parameters_b"] = round(sum(p.numel() for p in model.parameters()) / 1e9, 3)
    report["runs"]["bf16"] = {**gpu_memory_gb(), **speed(model, processor, args.tokens)}
    print(json.dumps(report, indent=1), flush=True)

    folder = Path(args.out) / "qwen2_5_vl_3b_random"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    del model
    gc.collect()
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for quant in args.quants.split(","):
        if time.perf_counter() - started > args.budget_s:
            report["runs"][quant] = "skipped (time budget)"
            continue
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        vlm = loading.load_vlm(Settings(vlm=str(folder), vlm_quant=quant, device=device))
        load_s = round(time.perf_counter() - t0, 1)
        report["runs"][f"loaded_{quant}"] = {
            "load_s": load_s,
            **gpu_memory_gb(),
            **speed(vlm.model, vlm.processor, args.tokens),
        }
        print(json.dumps(report["runs"][f"loaded_{quant}"]), flush=True)
        del vlm
        loading.clear_cache()
        gc.collect()
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    shutil.rmtree(folder, ignore_errors=True)
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    Path(args.out, "gpu_check.json").write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
