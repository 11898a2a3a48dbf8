"""QLoRA memory and step time, and decode speed with a static cache and torch.compile, for
a real-size Qwen2.5-VL-3B architecture with RANDOM weights on a GPU.

    python scripts/gpu_train_check.py save   --folder DIR [--small]
    python scripts/gpu_train_check.py train  --folder DIR --data DATA.json --out OUT --quant 4bit|none
    python scripts/gpu_train_check.py decode --folder DIR --out OUT
    python scripts/gpu_train_check.py app    --folder DIR --out OUT

``save`` writes the random model (``scripts/gpu_check.py``'s real 3B configuration) and its
processor; ``train`` runs ``rschat train vlm`` on it (the project's own training code, a few
steps) and prints the card's memory and step time; ``decode`` loads it through the app's
loader in bf16 and times greedy decoding three ways: transformers' default dynamic cache,
a static cache, and a static cache with the decode step compiled by torch.compile
(transformers' automatic compilation, mode "reduce-overhead", i.e. CUDA graphs); ``app``
times chat turns through the app's backend with ``RSCHAT_VLM_DECODE`` dynamic and
compiled (bf16), and dynamic and static (4-bit). Each
phase writes ``OUT/<phase>.json``. Run the phases as separate processes (each under
``timeout``) so that one that fails or stalls leaves the others' figures.

The GPU image has no rasterio: where it is missing, ``train`` reads the (PNG) images with
PIL instead of ``rschat.geo`` (the same pixels for 8-bit RGB PNGs; the timing is the
model's, not the reader's).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts"), str(ROOT / "tests")]

# Weights read once per decoded token: the bound that memory bandwidth sets on decoding
# (the cards' data-sheet bandwidths, TB/s).
BANDWIDTH_TB_S = {"H200": 4.8, "H100": 3.35}


def save(args: argparse.Namespace) -> dict:
    import torch
    from gpu_check import build

    model, processor = build(args.small)
    model.save_pretrained(args.folder)
    processor.save_pretrained(args.folder)
    params = sum(p.numel() for p in model.parameters())
    return {"parameters_b": round(params / 1e9, 3), "device": str(model.device), "torch": torch.__version__}


def train(args: argparse.Namespace) -> dict:
    import torch

    from rschat.train import vlm

    try:
        import rasterio  # noqa: F401
    except ImportError:
        from PIL import Image

        vlm.load_image = lambda path: Image.open(path).convert("RGB")
    out = Path(args.folder).with_name(f"adapter_{args.quant}")  # beside the model: adapters are large
    parser = argparse.ArgumentParser()
    vlm.add_arguments(parser)
    argv = ["--base", args.folder, "--data", args.data, "--out", str(out), "--quant", args.quant]
    argv += ["--max-steps", str(args.steps), "--batch-size", str(args.batch_size), "--save-every", str(args.steps)]
    argv += ["--val-fraction", "0.04", "--lr", "1e-4"]
    code = vlm.run(parser.parse_args(argv))
    card = json.loads((out / "training_card.json").read_text())
    keep = ("quant", "steps", "batch_size", "trainable_parameters", "step_time_s", "first_step_time_s")
    summary = {k: card.get(k) for k in keep}
    summary.update(
        exit_code=code,
        tokens_per_s=card.get("tokens_per_s"),
        tokens_per_step=round(card["tokens_per_s"] * card["step_time_s"]) if card.get("tokens_per_s") else None,
        peak_allocated_gb=round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
        peak_reserved_gb=round(torch.cuda.max_memory_reserved() / 2**30, 2) if torch.cuda.is_available() else None,
        losses=card.get("losses"),
        final_val_loss=card.get("final_val_loss"),
        time_s=card.get("time_s"),
        versions=card.get("versions"),
    )
    return summary


def decode(args: argparse.Namespace) -> dict:
    import torch
    from gpu_check import speed

    from rschat.backends import loading
    from rschat.config import Settings

    device = "cuda" if torch.cuda.is_available() else "cpu"
    vlm = loading.load_vlm(Settings(vlm=args.folder, vlm_quant="none", device=device))
    model, processor = vlm.model, vlm.processor
    weights_gb = sum(p.numel() * p.element_size() for p in model.parameters()) / 1e9
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    bandwidth = next((v for k, v in BANDWIDTH_TB_S.items() if k in name), None)
    report: dict = {
        "device": name,
        "weights_gb": round(weights_gb, 2),
        "bandwidth_bound_tokens_per_s": round(bandwidth * 1e3 / weights_gb, 1) if bandwidth else None,
        "runs": {},
    }
    # One cache length for every run, so the compiled step is built once, not per length.
    cache = {"cache_implementation": "static", "max_cache_len": 512}
    modes = {
        "dynamic cache (default)": {},
        "static cache, eager": {**cache, "disable_compile": True},
        "static cache + torch.compile": cache,
    }
    for name, kwargs in modes.items():
        t0 = time.perf_counter()
        try:
            figures = speed(model, processor, args.tokens, **kwargs)
        except Exception as err:  # noqa: BLE001 - a failed mode is a figure too
            figures = {"error": f"{type(err).__name__}: {str(err)[:400]}"}
        figures["wall_s_with_warmup"] = round(time.perf_counter() - t0, 1)
        figures["compiled"] = hasattr(model, "_compiled_call")
        report["runs"][name] = figures
        print(name, json.dumps(figures), flush=True)
        Path(args.out, "decode.json").write_text(json.dumps(report, indent=1))
    return report


def app(args: argparse.Namespace) -> dict:
    """Chat turns through the app's own backend (``VLMBackend.complete``: streamer, worker
    thread) with RSCHAT_VLM_DECODE=dynamic and =compiled: the first turn pays for the
    compilation, the later ones show the speed a user gets."""
    import numpy as np
    import torch
    from PIL import Image

    from rschat.backends import loading
    from rschat.config import Settings

    image = Image.fromarray((np.random.default_rng(0).random((448, 448, 3)) * 255).astype(np.uint8))
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what changed?"}]}]
    report: dict = {"device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu", "runs": {}}
    pairs = [tuple(p.split(":")) for p in args.pairs.split(",")]
    for quant, decode in pairs:
        if quant != "none" and not torch.cuda.is_available():
            continue
        loading.clear_cache()
        vlm = loading.load_vlm(Settings(vlm=args.folder, vlm_quant=quant, vlm_decode=decode, device="auto"))
        real, new_tokens = vlm.model.generate, []

        def counted(real=real, new_tokens=new_tokens, **kwargs):  # type: ignore[no-untyped-def]
            out = real(**kwargs)
            new_tokens.append(int(out.shape[1] - kwargs["input_ids"].shape[1]))
            return out

        vlm.model.generate = counted
        turns = []
        for _ in range(3):
            t0 = time.perf_counter()
            vlm.complete(messages, [image], max_new_tokens=args.tokens)
            turns.append(round(time.perf_counter() - t0, 2))
        # Stop: a long answer closed after its first piece, then the next turn.
        t0 = time.perf_counter()
        stream = vlm.generate(messages, [image], max_new_tokens=8 * args.tokens)
        next(stream)
        stream.close()
        vlm.complete(messages, [image], max_new_tokens=args.tokens)
        stopped = {"stop_then_turn_s": round(time.perf_counter() - t0, 2), "stopped_at_tokens": new_tokens[3]}
        new_tokens = new_tokens[:3]
        later = sum(new_tokens[1:]) / sum(turns[1:])
        report["runs"][f"{quant} {decode}"] = {
            "name": vlm.name,
            "turn_s": turns,
            "new_tokens": new_tokens,
            "tokens_per_s": round(later, 1),
            **stopped,
        }
        print(quant, decode, json.dumps(report["runs"][f"{quant} {decode}"]), flush=True)
        del vlm
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["save", "train", "decode", "app"])
    parser.add_argument("--folder", required=True, help="where the random model is (saved)")
    parser.add_argument("--out", default="/tmp")
    parser.add_argument("--data", help="train: LLaVA JSON (rschat train build-data)")
    parser.add_argument("--quant", default="4bit", choices=["4bit", "8bit", "none"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=128, help="decode: new tokens per timed run")
    parser.add_argument(
        "--pairs", default="none:dynamic,none:compiled,4bit:dynamic,4bit:static", help="app: QUANT:DECODE,..."
    )
    parser.add_argument("--small", action="store_true", help="save: a tiny model, to check the script on a CPU")
    args = parser.parse_args()
    t0 = time.perf_counter()
    result = {"save": save, "train": train, "decode": decode, "app": app}[args.phase](args)
    result["phase_s"] = round(time.perf_counter() - t0, 1)
    name = args.phase + (f"_{args.quant}" if args.phase == "train" else "")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.out, f"{name}.json").write_text(json.dumps(result, indent=1))
    print(name, json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
