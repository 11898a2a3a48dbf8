"""``rschat train vlm``: LoRA / QLoRA visual instruction tuning of a vision-language model.

The base is a transformers Qwen2-VL, Qwen2.5-VL or LLaVA (the family is read from the
model's config, never from its name), optionally quantised by bitsandbytes (QLoRA); peft
adds LoRA adapters. The data is the LLaVA JSON that ``rschat train build-data`` writes: a
list of ``{"id", "image" | "images", "conversations": [{"from": "human", "value":
"<image>\\n..."}, {"from": "gpt", "value": ...}, ...]}`` with image paths relative to the
JSON's folder. Each conversation is rendered with the processor's own chat template, and
the loss is taken on the assistant's tokens only (labels are -100 elsewhere).

What is trained (``--train``):
  lm         LoRA on the language model's attention and MLP projections (q, k, v, o, gate,
             up, down); the vision tower and projector stay frozen.
  projector  LoRA on the multimodal projector's linear layers only (peft needs a LoRA
             target, so a projector-only run adapts it at rank --lora-r).
  both       LoRA on the language model, and the projector trained in full (peft's
             modules_to_save: its weights are saved whole in the adapter).

The result (``OUT``) is a peft adapter (``adapter_config.json``, ``adapter_model.safetensors``)
and ``training_card.json``; the app loads it with ``RSCHAT_VLM_ADAPTER=OUT`` on top of
``RSCHAT_VLM=<the same base>``. ``OUT/checkpoint`` holds the resumable state (adapter,
optimiser, step, losses), written every ``--save-every`` steps; ``--resume`` continues it.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HELP = "LoRA / QLoRA visual instruction tuning of the VLM (Qwen2-VL, Qwen2.5-VL, LLaVA) on LLaVA-format JSON"

FAMILIES = ("qwen2_vl", "qwen2_5_vl", "llava")  # transformers' model_type values
# The language model's attention and MLP projections, under the language model only: the
# vision towers use some of the same names (Qwen2.5-VL's vision MLP has gate/up/down_proj,
# CLIP has q/k/v_proj), and those stay frozen.
LM_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
PROJECTOR = {"qwen2_vl": "merger", "qwen2_5_vl": "merger", "llava": "multi_modal_projector"}
PROJECTOR_LINEARS = {
    "qwen2_vl": r".*visual\.merger\.mlp\.(0|2)",
    "qwen2_5_vl": r".*visual\.merger\.mlp\.(0|2)",
    "llava": r".*multi_modal_projector\.linear_(1|2)",
}
IGNORE = -100  # the label of tokens that carry no loss (prompt, images, padding)


class TrainError(Exception):
    """Bad data or a refused configuration; the message says what to change."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", required=True, help="the base model: a local folder or a cached hub id")
    parser.add_argument("--data", required=True, help="LLaVA-format JSON (rschat train build-data)")
    parser.add_argument("--out", required=True, help="folder for the adapter, the checkpoint and the card")
    parser.add_argument(
        "--quant", choices=["4bit", "8bit", "none"], default="4bit", help="base weights: QLoRA 4bit (default; CUDA)"
    )
    parser.add_argument("--train", choices=["lm", "projector", "both"], default="lm", help="what is trained")
    parser.add_argument("--max-steps", type=int, default=0, help="optimiser steps (default: --epochs over the data)")
    parser.add_argument("--epochs", type=float, default=1.0, help="passes over the data when --max-steps is 0")
    parser.add_argument("--lora-r", type=int, default=16, help="LoRA rank")
    parser.add_argument("--lora-alpha", type=int, default=0, help="LoRA alpha (default: 2 x rank)")
    parser.add_argument("--lora-dropout", type=float, default=0.05)
    parser.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (linear warm-up, cosine decay)")
    parser.add_argument("--batch-size", type=int, default=1, help="conversations per forward pass")
    parser.add_argument("--grad-accum", type=int, default=1, help="forward passes per optimiser step")
    parser.add_argument("--max-length", type=int, default=2048, help="longest conversation in tokens")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share of conversations held out")
    parser.add_argument("--save-every", type=int, default=50, help="checkpoint (and validate) every N steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    parser.add_argument("--device", default="auto", help="auto (CUDA when visible), cpu or cuda[:N]")
    parser.add_argument(
        "--gradient-checkpointing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="recompute activations to save memory (default: on with CUDA)",
    )


def _check_args(args: argparse.Namespace) -> str | None:
    """A usage error, or None."""
    for name in ("lora_r", "batch_size", "grad_accum", "max_length", "save_every"):
        if getattr(args, name) < 1:
            return f"--{name.replace('_', '-')} must be at least 1."
    if args.max_steps < 0 or args.epochs <= 0:
        return "--max-steps must be 0 or more and --epochs above 0."
    if not 0 <= args.val_fraction < 1:
        return "--val-fraction must be in [0, 1)."
    if not args.lr > 0:
        return "--lr must be above 0."
    if not Path(args.data).is_file():
        return f"--data {args.data}: no such file."
    return None


def run(args: argparse.Namespace) -> int:
    error = _check_args(args)
    if error:
        print(f"rschat train vlm: {error}", file=sys.stderr)
        return 2
    try:
        card = train(args)
    except TrainError as err:
        print(f"rschat train vlm: {err}", file=sys.stderr)
        return 1
    val = card["final_val_loss"]
    print(
        f"Saved the adapter to {args.out} ({card['steps']} steps, train loss {card['final_train_loss']:.4f}"
        + (f", validation loss {val:.4f}" if val is not None else "")
        + f"). Use it with RSCHAT_VLM={args.base} RSCHAT_VLM_ADAPTER={args.out}."
    )
    return 0


# ---- data ----------------------------------------------------------------------------


def read_records(path: Path) -> list[dict[str, Any]]:
    """The conversations of a LLaVA JSON file, checked, with image paths made absolute."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise TrainError(f"--data {path} is not readable JSON ({err}).") from err
    if not isinstance(data, list) or not data:
        raise TrainError(f"--data {path} must be a non-empty JSON list of conversations.")
    return [_record(item, i, path.parent) for i, item in enumerate(data)]


def _record(item: Any, index: int, folder: Path) -> dict[str, Any]:
    where = f"conversation {index} ({item.get('id', 'no id')})" if isinstance(item, dict) else f"item {index}"
    if not isinstance(item, dict) or not isinstance(item.get("conversations"), list):
        raise TrainError(f"{where}: expected an object with a 'conversations' list.")
    raw = item.get("images", item.get("image", []))
    names: list[str] = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    if not all(isinstance(n, str) for n in names) or not isinstance(raw, str | list):
        raise TrainError(f"{where}: 'image' must be a path and 'images' a list of paths.")
    images = [(folder / n).resolve() for n in names]
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise TrainError(f"{where}: image not found: {', '.join(missing)} (paths are relative to the JSON's folder).")
    turns = item["conversations"]
    roles = [t.get("from") if isinstance(t, dict) else None for t in turns]
    if not turns or any(r not in ("human", "gpt", "system") for r in roles) or "gpt" not in roles:
        raise TrainError(f"{where}: turns must come 'from' human, gpt or system, with at least one gpt answer.")
    placeholders = sum(str(t.get("value", "")).count("<image>") for t in turns)
    if placeholders > len(images):
        raise TrainError(f"{where}: {placeholders} <image> placeholders but {len(images)} image(s).")
    return {"id": str(item.get("id", index)), "images": images, "turns": turns}


def to_messages(record: dict[str, Any]) -> list[dict[str, Any]]:
    """LLaVA turns as chat-template messages; each ``<image>`` becomes an image slot (images
    with no placeholder go before the first human text, as LLaVA does)."""
    role = {"human": "user", "gpt": "assistant", "system": "system"}
    unplaced = len(record["images"]) - sum(str(t["value"]).count("<image>") for t in record["turns"])
    messages = []
    for turn in record["turns"]:
        content: list[dict[str, Any]] = []
        if turn["from"] == "human" and unplaced > 0:
            content += [{"type": "image"}] * unplaced
            unplaced = 0
        for i, part in enumerate(str(turn["value"]).split("<image>")):
            if i > 0:
                content.append({"type": "image"})
                part = part.removeprefix("\n")
            if part:
                content.append({"type": "text", "text": part})
        messages.append({"role": role[turn["from"]], "content": content})
    return messages


def load_image(path: Path) -> Any:
    """An image as the app shows it to the model: the RGB preview of the raster (band
    order and stretch of rschat.geo), so training and inference see the same pixels."""
    from PIL import Image

    from rschat.geo import InputError, read_raster, rgb_preview

    try:
        return Image.fromarray(rgb_preview(read_raster(path)))
    except InputError as err:
        raise TrainError(f"{path}: {err}") from err


def _images_in(messages: list[dict[str, Any]]) -> int:
    return sum(1 for m in messages for c in m["content"] if c.get("type") == "image")


def _common_prefix(a: Any, b: Any) -> int:
    n = min(len(a), len(b))
    same = (a[:n] == b[:n]).long()
    return int(same.cumprod(0).sum())


def encode(processor: Any, record: dict[str, Any], max_length: int) -> dict[str, Any]:
    """Model inputs of one conversation with ``labels``: the token ids of the assistant's
    turns (their text and end-of-turn tokens), -100 elsewhere. Each assistant span is found
    by rendering the conversation up to it (with the generation prompt) and through it, and
    comparing those token ids with the whole conversation's, so it holds for any template."""
    import torch

    messages = to_messages(record)
    images = [load_image(p) for p in record["images"]]

    def ids(msgs: list[dict[str, Any]], generation_prompt: bool) -> Any:
        text = processor.apply_chat_template(msgs, add_generation_prompt=generation_prompt, tokenize=False)
        pics = images[: _images_in(msgs)] or None
        return processor(text=[text], images=pics, return_tensors="pt")

    inputs = ids(messages, False)
    input_ids = inputs["input_ids"][0]
    labels = torch.full_like(input_ids, IGNORE)
    for i, message in enumerate(messages):
        if message["role"] == "assistant":
            start = _common_prefix(input_ids, ids(messages[:i], True)["input_ids"][0])
            end = _common_prefix(input_ids, ids(messages[: i + 1], False)["input_ids"][0])
            labels[start:end] = input_ids[start:end]
    if len(input_ids) > max_length:
        _check_truncation(processor, input_ids, max_length, record["id"])
    out = {k: v for k, v in inputs.items() if hasattr(v, "shape")}
    out["labels"] = labels[None]
    seq = input_ids.shape[0]
    return {k: v[:, :max_length] if v.dim() >= 2 and v.shape[:2] == (1, seq) else v for k, v in out.items()}


def _check_truncation(processor: Any, input_ids: Any, max_length: int, record_id: str) -> None:
    """Cutting a conversation's tail is fine; cutting through an image's tokens is not (the
    model would get fewer image tokens than image features)."""
    image_token = getattr(processor, "image_token", None)
    token_id = processor.tokenizer.convert_tokens_to_ids(image_token) if image_token else None
    if token_id is not None and bool((input_ids[max_length:] == token_id).any()):
        raise TrainError(
            f"conversation {record_id} has image tokens past --max-length {max_length}; raise --max-length."
        )


def collate(examples: list[dict[str, Any]], pad_id: int) -> dict[str, Any]:
    """One batch: per-token tensors right-padded (labels with -100, attention 0), image
    tensors (pixel values, grids) concatenated in order, as the processor batches them."""
    import torch

    longest = max(e["input_ids"].shape[1] for e in examples)
    batch: dict[str, Any] = {}
    for key in examples[0]:
        values = [e[key] for e in examples]
        if values[0].dim() >= 2 and values[0].shape[:2] == examples[0]["input_ids"].shape:
            fill = {"labels": IGNORE, "input_ids": pad_id}.get(key, 0)
            padded = [torch.nn.functional.pad(v, (0, longest - v.shape[1]), value=fill) for v in values]
            batch[key] = torch.cat(padded, dim=0)
        else:
            batch[key] = torch.cat(values, dim=0)
    return batch


# ---- model ---------------------------------------------------------------------------


def detect_family(base: str) -> str:
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(base)
    except Exception as err:  # missing folder, not cached, not a model
        raise TrainError(f"--base {base} could not be read ({type(err).__name__}: {str(err)[:200]}).") from err
    if config.model_type not in FAMILIES:
        raise TrainError(f"--base {base} is a {config.model_type!r} model; supported: {', '.join(FAMILIES)}.")
    return str(config.model_type)


def lora_config(family: str, args: argparse.Namespace) -> Any:
    from peft import LoraConfig

    targets = PROJECTOR_LINEARS[family] if args.train == "projector" else LM_TARGETS
    return LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha or 2 * args.lora_r,
        lora_dropout=args.lora_dropout,
        target_modules=targets,
        modules_to_save=[PROJECTOR[family]] if args.train == "both" else None,
        task_type="CAUSAL_LM",
    )


def resolve_device(requested: str, quant: str) -> str:
    import torch

    device = ("cuda" if torch.cuda.is_available() else "cpu") if requested == "auto" else requested
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise TrainError(f"--device {requested}: no CUDA device is visible; use --device cpu.")
    if quant != "none" and not device.startswith("cuda"):
        raise TrainError(
            f"--quant {quant} needs a CUDA GPU (bitsandbytes' quantised training runs on CUDA); "
            "on CPU use --quant none (full-precision LoRA)."
        )
    return device


def load_model(args: argparse.Namespace, family: str, device: str) -> tuple[Any, Any]:
    """(peft model with the trainable parameters in float32, processor)."""
    import torch
    from peft import get_peft_model
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from rschat.backends.loading import quantization_config
    from rschat.config import Settings

    quant = quantization_config(Settings(vlm_quant=args.quant))  # the app's own 4/8-bit recipe
    dtype = torch.bfloat16 if device != "cpu" else torch.float32
    processor = AutoProcessor.from_pretrained(args.base)
    model = AutoModelForImageTextToText.from_pretrained(
        args.base, quantization_config=quant, device_map={"": device}, dtype=dtype
    )
    model.config.use_cache = False  # a cache is for generation; training recomputes
    checkpointing = args.gradient_checkpointing if args.gradient_checkpointing is not None else device != "cpu"
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model = get_peft_model(model, lora_config(family, args))
    for param in model.parameters():
        if param.requires_grad:  # adapters and a fully trained projector: fp32 master weights
            param.data = param.data.float()
    return model, processor


# ---- training ------------------------------------------------------------------------


@dataclass
class Plan:
    """Which conversations each optimiser step uses: a permutation per epoch drawn from the
    seed alone, so a resumed run takes exactly the batches the uninterrupted one would."""

    train: list[int]
    val: list[int]
    batch_size: int
    grad_accum: int
    seed: int

    @property
    def batches_per_epoch(self) -> int:
        return math.ceil(len(self.train) / self.batch_size)

    def micro_batches(self, step: int) -> list[list[int]]:
        import torch

        out = []
        for m in range(step * self.grad_accum, (step + 1) * self.grad_accum):
            epoch, pos = divmod(m, self.batches_per_epoch)
            perm = torch.randperm(len(self.train), generator=torch.Generator().manual_seed(self.seed + epoch))
            out.append([self.train[int(i)] for i in perm[pos * self.batch_size : (pos + 1) * self.batch_size]])
        return out


def split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices: a seeded shuffle, at least one of each when n >= 2."""
    import random

    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_val = min(max(round(n * fraction), 1), n - 1) if fraction > 0 and n >= 2 else 0
    return sorted(order[n_val:]), sorted(order[:n_val])


def learning_rate(step: int, total: int, peak: float) -> float:
    """Linear warm-up over the first 3% of steps (at least 1), then cosine decay to 10%."""
    warm = max(1, round(0.03 * total))
    if step < warm:
        return peak * (step + 1) / warm
    progress = (step - warm) / max(1, total - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def _forward(model: Any, batch: dict[str, Any], device: str) -> Any:
    import torch

    batch = {k: v.to(device) for k, v in batch.items()}
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
        return model(**batch).loss


def validation_loss(model: Any, examples: list[dict[str, Any]], pad_id: int, device: str) -> float | None:
    """Mean loss per assistant token over the held-out conversations."""
    import torch

    if not examples:
        return None
    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for example in examples:
            n = int((example["labels"][:, 1:] != IGNORE).sum())
            if n:
                total += float(_forward(model, collate([example], pad_id), device)) * n
                tokens += n
    model.train()
    return total / tokens if tokens else None


@dataclass
class Run:
    """What a training run carries from step to step (and into the checkpoint)."""

    model: Any
    processor: Any
    records: list[dict[str, Any]]
    plan: Plan
    args: argparse.Namespace
    device: str
    fingerprint: dict[str, Any]
    total_steps: int
    losses: list[float]
    val_losses: list[dict[str, float]]
    step_seconds: list[float] = field(default_factory=list)  # this run's steps, not the resumed ones
    step_tokens: list[int] = field(default_factory=list)  # tokens (padding included) per step

    @property
    def pad_id(self) -> int:
        tok = self.processor.tokenizer
        return int(tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)

    def example(self, index: int) -> dict[str, Any]:
        return encode(self.processor, self.records[index], self.args.max_length)


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Train, checkpoint, validate and save; returns the training card."""
    from rschat.train.common import ProgressBar, file_sha256, seed_everything

    started = time.time()
    out = Path(args.out)
    records = read_records(Path(args.data))
    device = resolve_device(args.device, args.quant)
    family = detect_family(args.base)
    seed_everything(args.seed)
    fingerprint = {
        "base": args.base,
        "family": family,
        "data_sha256": file_sha256(args.data),
        "train": args.train,
        "lora_r": args.lora_r,
        "quant": args.quant,
        "seed": args.seed,
        "batch_size": args.batch_size,
        "grad_accum": args.grad_accum,
    }
    model, processor = load_model(args, family, device)
    # After the model is built: loading the checkpoint restores the random generators, which
    # building (LoRA's initialisation) would otherwise move on.
    resumed = _previous_state(out, args.resume, fingerprint)
    train_ids, val_ids = split(len(records), args.val_fraction, args.seed)
    plan = Plan(train_ids, val_ids, args.batch_size, args.grad_accum, args.seed)
    total = args.max_steps or max(1, math.ceil(args.epochs * plan.batches_per_epoch / args.grad_accum))
    run_ = Run(model, processor, records, plan, args, device, fingerprint, total, [], [])
    start = _restore(run_, resumed) if resumed else 0
    optimizer = _optimizer(run_, resumed)
    val_examples = [run_.example(i) for i in val_ids]
    with ProgressBar(total=total, desc="train vlm", initial=start) as bar:
        if start:
            bar.write(f"resumed from {out / 'checkpoint'} at step {start}")
        _loop(run_, optimizer, val_examples, start, bar)
    model.save_pretrained(out)
    return _card(run_, started, start, len(records))


def _previous_state(out: Path, resume: bool, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    from rschat.train.common import load_checkpoint

    state = load_checkpoint(out / "checkpoint") if (out / "checkpoint").is_dir() else None
    if state is None:
        if resume:
            print(f"rschat train vlm: --resume: no checkpoint in {out / 'checkpoint'}; starting at step 0.")
        return None
    if not resume:
        raise TrainError(
            f"{out} already holds a checkpoint (step {state['step']}): pass --resume to continue it, "
            "or choose another --out."
        )
    changed = sorted(k for k, v in fingerprint.items() if state.get("fingerprint", {}).get(k) != v)
    if changed:
        raise TrainError(
            f"--resume: the checkpoint in {out} was made with other {', '.join(changed)}; use a new --out."
        )
    return state


def _restore(run_: Run, state: dict[str, Any]) -> int:
    from peft import set_peft_model_state_dict

    set_peft_model_state_dict(run_.model, state["adapter"])
    run_.losses = list(state.get("losses", []))
    run_.val_losses = list(state.get("val_losses", []))
    return int(state["step"])


def _optimizer(run_: Run, state: dict[str, Any] | None) -> Any:
    import torch

    params = [p for p in run_.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=run_.args.lr, weight_decay=0.0)
    if state is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    return optimizer


def _loop(run_: Run, optimizer: Any, val_examples: list[dict[str, Any]], start: int, bar: Any) -> None:
    import torch

    args, model = run_.args, run_.model
    params = [p for p in model.parameters() if p.requires_grad]
    model.train()
    for step in range(start, run_.total_steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, run_.total_steps, args.lr)
        step_loss, tokens, tick = 0.0, 0, time.perf_counter()
        for ids in run_.plan.micro_batches(step):
            batch = collate([run_.example(i) for i in ids], run_.pad_id)
            tokens += int(batch["input_ids"].numel())
            loss = _forward(model, batch, run_.device)
            if not torch.isfinite(loss):
                raise TrainError(f"step {step + 1}: the loss is {float(loss)}; lower --lr or check the data.")
            (loss / args.grad_accum).backward()
            step_loss += float(loss.detach()) / args.grad_accum
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if run_.device.startswith("cuda"):  # the optimiser's step runs on after it returns
            torch.cuda.synchronize()
        run_.losses.append(round(step_loss, 5))
        run_.step_seconds.append(time.perf_counter() - tick)
        run_.step_tokens.append(tokens)
        bar.update(loss=step_loss)
        done = step + 1
        if done % args.save_every == 0 or done == run_.total_steps:
            _validate_and_save(run_, optimizer, val_examples, done, bar)


def _validate_and_save(run_: Run, optimizer: Any, val_examples: list[dict[str, Any]], step: int, bar: Any) -> None:
    from peft import get_peft_model_state_dict

    from rschat.train.common import save_checkpoint

    val = validation_loss(run_.model, val_examples, run_.pad_id, run_.device)
    if val is not None:
        run_.val_losses.append({"step": step, "loss": round(val, 5)})
        bar.set(val_loss=val)
        bar.write(f"step {step}: validation loss {val:.4f} on {len(val_examples)} conversation(s)")
    save_checkpoint(
        Path(run_.args.out) / "checkpoint",
        step,
        adapter=get_peft_model_state_dict(run_.model),
        optimizer=optimizer.state_dict(),
        losses=run_.losses,
        val_losses=run_.val_losses,
        fingerprint=run_.fingerprint,
    )


def step_timing(seconds: list[float], tokens: list[int]) -> dict[str, Any]:
    """The median optimiser step after the first (which pays for kernel selection and the
    allocator's warm-up), and the tokens those steps processed per second."""
    import statistics

    if not seconds:
        return {"step_time_s": None, "first_step_time_s": None, "tokens_per_s": None}
    skip = 1 if len(seconds) > 1 else 0
    return {
        "step_time_s": round(statistics.median(seconds[skip:]), 4),
        "first_step_time_s": round(seconds[0], 4),
        "tokens_per_s": round(sum(tokens[skip:]) / sum(seconds[skip:]), 1),
    }


def _card(run_: Run, started: float, start: int, n_records: int) -> dict[str, Any]:
    import peft
    import torch
    import transformers

    from rschat.train.common import peak_memory_mb, write_card

    args = run_.args
    trainable = sum(p.numel() for p in run_.model.parameters() if p.requires_grad)
    fields = {
        **run_.fingerprint,
        "model_type": run_.fingerprint["family"],
        "data": str(Path(args.data).resolve()),
        "conversations": {"train": len(run_.plan.train), "validation": len(run_.plan.val), "all": n_records},
        "steps": run_.total_steps,
        "resumed_from_step": start,
        "lora": {"r": args.lora_r, "alpha": args.lora_alpha or 2 * args.lora_r, "dropout": args.lora_dropout},
        "trainable_parameters": trainable,
        "lr": args.lr,
        "max_length": args.max_length,
        "losses": run_.losses,
        "final_train_loss": run_.losses[-1] if run_.losses else None,
        "val_losses": run_.val_losses,
        "final_val_loss": run_.val_losses[-1]["loss"] if run_.val_losses else None,
        "time_s": round(time.time() - started, 1),
        **step_timing(run_.step_seconds, run_.step_tokens),
        "device": run_.device,
        "peak_memory_mb": peak_memory_mb(),
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }
    write_card(args.out, **fields)
    return fields
