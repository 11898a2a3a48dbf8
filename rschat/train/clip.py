"""``rschat train clip``: contrastive fine-tuning of an open_clip model on image-caption
pairs, as RemoteCLIP and GeoRSCLIP adapt CLIP to remote sensing.

The loss is open_clip's own (``ClipLoss``: symmetric InfoNCE over the batch with the model's
learned logit scale; ``SigLipLoss`` for SigLIP models). The base is read exactly as the app
reads ``RSCHAT_CLIP`` (``model_name:weights``, through ``rschat.backends.clip``), and the
result is a plain open_clip state dict, ``OUT/clip.pt``, so ``RSCHAT_CLIP=model_name:OUT/clip.pt``
loads it through the same loader. Validation: image->text and text->image top-1 retrieval on
held-out images, before and after training.

The caption data (``read_captions``) is shared with ``rschat train diffusion``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rschat.geo.errors import InputError

HELP = "contrastive fine-tuning of an open_clip model on image-caption pairs (RemoteCLIP-style); load with RSCHAT_CLIP"
WEIGHTS_FILE = "clip.pt"


@dataclass(frozen=True)
class Pair:
    """One image and its captions (one or more)."""

    image: Path
    captions: tuple[str, ...]


def read_captions(path: str | Path) -> list[Pair]:
    """The pairs of a captions.json: a list of ``{"image": path relative to the file's
    folder, "captions": [...]}`` (or ``"caption": "..."``). Bad entries are refused with
    their index, so a typo is found before an hour of training."""
    path = Path(path)
    try:
        entries = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: cannot read the caption data ({err}).") from err
    if not isinstance(entries, list) or not entries:
        raise InputError(f'{path}: expected a non-empty JSON list of {{"image": ..., "captions": [...]}}.')
    return [_pair(path, i, entry) for i, entry in enumerate(entries)]


def _pair(path: Path, index: int, entry: Any) -> Pair:
    where = f"{path.name} entry {index}"
    if not isinstance(entry, dict) or not isinstance(entry.get("image"), str):
        raise InputError(f'{where}: expected an object with an "image" path.')
    captions = entry.get("captions", [entry["caption"]] if "caption" in entry else [])
    if isinstance(captions, str):
        captions = [captions]
    captions = tuple(c.strip() for c in captions if isinstance(c, str) and c.strip())
    if not captions:
        raise InputError(f'{where}: no caption (give "captions": [...] or "caption": "...").')
    image = (path.parent / entry["image"]).resolve()
    if not image.is_file():
        raise InputError(f"{where}: image {entry['image']} not found (paths are relative to {path.parent}).")
    return Pair(image, captions)


def split_pairs(pairs: list[Pair], val_fraction: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """(train, validation), split by image with a seeded shuffle; at least one image on
    each side when there are two or more and ``val_fraction`` > 0."""
    if not 0 <= val_fraction < 1:
        raise InputError(f"--val-fraction must be in [0, 1), not {val_fraction}.")
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    n_val = 0 if val_fraction == 0 or len(pairs) < 2 else min(len(pairs) - 1, max(1, round(val_fraction * len(pairs))))
    val = [pairs[i] for i in sorted(order[:n_val])]
    return [pairs[i] for i in sorted(order[n_val:])], val


def load_rgb(path: Path) -> Any:
    """A PIL RGB image of any raster rschat reads (GeoTIFF with 4+ bands, 16-bit: the same
    preview the app shows), so training sees what the tools see."""
    from PIL import Image

    from rschat.geo import read_raster
    from rschat.geo.preview import rgb_preview

    return Image.fromarray(rgb_preview(read_raster(path)))


def map_images(fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    """``[fn(item) for item in items]`` on threads, in order: decoding a batch of GeoTIFFs one
    by one would keep a GPU waiting (rasterio and PIL release the GIL while decoding)."""
    if len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(8, len(items), os.cpu_count() or 1)) as pool:
        return list(pool.map(fn, items))


def rs_augment(image: Any, rng: random.Random) -> Any:
    """A random flip and right-angle rotation: an overhead view has no up, so these are free
    extra samples that do not change what the caption says."""
    from PIL import Image

    if rng.random() < 0.5:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    turns = rng.randrange(4)
    return image.rotate(90 * turns, expand=True) if turns else image


def add_common_arguments(parser: argparse.ArgumentParser, lr: float, save_every: int, max_steps: int | None) -> None:
    """The options ``train clip`` and ``train diffusion`` share."""
    parser.add_argument("--data", required=True, help='captions.json: [{"image": path, "captions": [...]}, ...]')
    parser.add_argument("--out", required=True, help="output folder (weights, checkpoint, training_card.json)")
    steps_help = f"optimizer steps to run (default {max_steps})" if max_steps else "optimizer steps (default: --epochs)"
    parser.add_argument("--max-steps", type=int, default=max_steps, help=steps_help)
    parser.add_argument("--batch-size", type=int, default=8, help="images per step (default %(default)s)")
    parser.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr:g})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint (same options)")
    parser.add_argument(
        "--save-every", type=int, default=save_every, help=f"checkpoint every N steps (default {save_every})"
    )
    parser.add_argument("--val-fraction", type=float, default=0.1, help="share of images held out for validation")
    parser.add_argument("--device", default="auto", help="cpu | cuda | auto (default: cuda when visible)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--base", required=True, help="model_name:weights, as RSCHAT_CLIP (e.g. ViT-B-32:/w/RemoteCLIP.pt)"
    )
    add_common_arguments(parser, lr=1e-5, save_every=50, max_steps=None)
    parser.add_argument("--epochs", type=int, default=1, help="passes over the training images, unless --max-steps")
    parser.add_argument("--weight-decay", type=float, default=0.1)


def check_common(args: argparse.Namespace) -> str | None:
    """A usage error in the shared options, or None."""
    if args.max_steps is not None and args.max_steps < 1:
        return "--max-steps must be at least 1."
    if args.batch_size < 1:
        return "--batch-size must be at least 1."
    if args.lr <= 0:
        return "--lr must be positive."
    if args.save_every < 1:
        return "--save-every must be at least 1."
    if args.device not in ("cpu", "cuda", "auto") and not args.device.startswith("cuda:"):
        return f"--device must be cpu, cuda or auto, not {args.device}."
    return None


def existing_checkpoint(args: argparse.Namespace, command: str) -> bool:
    """Whether OUT already holds a checkpoint that this run, without --resume, would
    overwrite (it says so: hours of training are not discarded by a repeated command)."""
    from rschat.train.common import CHECKPOINT_FILE

    path = Path(args.out) / "checkpoint" / CHECKPOINT_FILE
    if args.resume or not path.is_file():
        return False
    print(f"rschat {command}: {path} exists; add --resume to continue it, or choose another --out.", file=sys.stderr)
    return True


def pick_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA device is visible; use --device cpu.")
    return name


def run(args: argparse.Namespace) -> int:
    error = check_common(args) or ("--epochs must be at least 1." if args.epochs < 1 else None)
    if error:
        print(f"rschat train clip: {error}", file=sys.stderr)
        return 2
    from rschat.backends.loading import split_spec

    name, weights = split_spec(args.base)
    if not weights:  # random CLIP weights are no base to fine-tune from (the app refuses them too)
        print("rschat train clip: --base must be model_name:weights, as RSCHAT_CLIP.", file=sys.stderr)
        return 2
    if existing_checkpoint(args, "train clip"):
        return 1
    pairs = read_captions(args.data)
    train, val = split_pairs(pairs, args.val_fraction, args.seed)
    if len(train) < 2:
        raise InputError(f"{args.data}: a contrastive loss needs at least 2 training images, got {len(train)}.")
    return _train(args, name, weights, train, val)


def _train(args: argparse.Namespace, name: str, weights: str, train: list[Pair], val: list[Pair]) -> int:
    """Long on purpose: the training run reads best as one sequence (set up, resume, loop, save)."""
    import torch

    from rschat.backends.clip import build_clip_model
    from rschat.train.common import ProgressBar, load_checkpoint, save_checkpoint, seed_everything

    seed_everything(args.seed)
    out = Path(args.out)
    device = pick_device(args.device)
    model, preprocess, tokenizer = build_clip_model(name, weights)
    model = model.to(device)
    per_epoch = math.ceil(len(train) / args.batch_size)
    steps = args.max_steps or args.epochs * per_epoch
    optimizer, scheduler = _optimizer(model, args, steps)
    state = load_checkpoint(out / "checkpoint") if args.resume else None
    if args.resume and state is None:
        print(f"rschat train clip: no checkpoint in {out / 'checkpoint'}; starting from step 0", file=sys.stderr)
    start, losses = 0, []
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, losses = state["step"], list(state["losses"])
    before = state["val_before"] if state is not None else retrieval(model, preprocess, tokenizer, val, device)
    loss_fn = _loss(model)
    started = time.monotonic()
    with ProgressBar(total=steps, desc="train clip", initial=start) as bar:
        for step in range(start, steps):
            batch = _batch(train, step, per_epoch, args)
            model.train()
            loss = _step(model, loss_fn, preprocess, tokenizer, batch, device, args.seed + step)
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():  # as open_clip: a temperature above 100 makes the softmax one-hot
                model.logit_scale.clamp_(0, math.log(100))
            losses.append(round(float(loss.item()), 5))
            if not math.isfinite(losses[-1]):
                raise RuntimeError(f"the loss is {losses[-1]} at step {step + 1}: lower --lr")
            bar.update(loss=losses[-1])
            if (step + 1) % args.save_every == 0 or step + 1 == steps:
                save_checkpoint(
                    out / "checkpoint",
                    step + 1,
                    model=model.state_dict(),
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict(),
                    losses=losses,
                    val_before=before,
                )
    after = retrieval(model, preprocess, tokenizer, val, device)
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, out / WEIGHTS_FILE)
    results = {
        "train_images": len(train),
        "val_images": len(val),
        "steps": steps,
        "loss": f"open_clip {type(loss_fn).__name__}",
        "losses": losses,
        "final_loss": losses[-1] if losses else None,
        "val_before": before,
        "val_after": after,
        "seconds_this_run": round(time.monotonic() - started, 1),
    }
    _write_outputs(args, name, out, results)
    return 0


def _optimizer(model: Any, args: argparse.Namespace, steps: int) -> tuple[Any, Any]:
    """AdamW as open_clip trains: no weight decay on gains, biases and the logit scale;
    linear warm-up over the first 10% (at most 500 steps), then cosine decay."""
    import torch
    from transformers import get_cosine_schedule_with_warmup

    decay: list[Any] = []
    no_decay: list[Any] = []
    for pname, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "logit_scale" in pname else decay).append(param)
    groups = [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=args.lr, betas=(0.9, 0.98), eps=1e-6)
    warmup = min(500, steps // 10)
    return optimizer, get_cosine_schedule_with_warmup(optimizer, warmup, steps)


def _loss(model: Any) -> Any:
    from open_clip.loss import ClipLoss, SigLipLoss

    return SigLipLoss() if getattr(model, "logit_bias", None) is not None else ClipLoss()


def _batch(train: list[Pair], step: int, per_epoch: int, args: argparse.Namespace) -> list[tuple[Pair, str]]:
    """The step's (image, caption) pairs: each epoch visits every image once in a seeded
    order, with one of its captions drawn at random (two captions of one image in a batch
    would count as each other's negatives). A lone last image joins the batch before it."""
    epoch, index = divmod(step, per_epoch)
    rng = random.Random(f"{args.seed}:{epoch}")
    order = list(range(len(train)))
    rng.shuffle(order)
    chunks = [order[i : i + args.batch_size] for i in range(0, len(order), args.batch_size)]
    if len(chunks) > 1 and len(chunks[-1]) < 2:
        chunks[-2:] = [chunks[-2] + chunks[-1]]
    chosen = chunks[min(index, len(chunks) - 1)]
    return [(train[i], rng.choice(train[i].captions)) for i in chosen]


def _step(model: Any, loss_fn: Any, preprocess: Any, tokenizer: Any, batch: list, device: str, seed: int) -> Any:
    """The contrastive loss of one batch (bf16 autocast on a GPU)."""
    import torch

    rng = random.Random(seed)
    jobs = [(pair.image, random.Random(rng.randrange(2**31))) for pair, _ in batch]  # each image its own draws
    images = torch.stack(map_images(lambda job: preprocess(rs_augment(load_rgb(job[0]), job[1])), jobs)).to(device)
    texts = tokenizer([caption for _, caption in batch]).to(device)
    with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
        image_features = model.encode_image(images, normalize=True)
        text_features = model.encode_text(texts, normalize=True)
        bias = getattr(model, "logit_bias", None)
        extra = (bias,) if bias is not None else ()
        return loss_fn(image_features, text_features, model.logit_scale.exp(), *extra)


def retrieval(model: Any, preprocess: Any, tokenizer: Any, val: list[Pair], device: str) -> dict[str, Any]:
    """Top-1 retrieval on the validation images: ``image_to_text`` (the best of all their
    captions belongs to the image) and ``text_to_image`` (the best image for each caption
    is its own); chance is about 1 / number of images."""
    import torch

    if len(val) < 2:
        return {"images": len(val), "image_to_text_top1": None, "text_to_image_top1": None}
    captions = [(i, c) for i, pair in enumerate(val) for c in pair.captions]
    owner = torch.tensor([i for i, _ in captions])
    model.eval()
    with torch.inference_mode():
        images = torch.stack(map_images(lambda pair: preprocess(load_rgb(pair.image)), val)).to(device)
        img = model.encode_image(images, normalize=True).float().cpu()
        txt = model.encode_text(tokenizer([c for _, c in captions]).to(device), normalize=True).float().cpu()
    sims = img @ txt.T
    i2t = (owner[sims.argmax(dim=1)] == torch.arange(len(val))).float().mean().item()
    t2i = (sims.argmax(dim=0) == owner).float().mean().item()
    return {"images": len(val), "image_to_text_top1": round(i2t, 4), "text_to_image_top1": round(t2i, 4)}


def _write_outputs(args: argparse.Namespace, name: str, out: Path, results: dict[str, Any]) -> None:
    """The architecture's open_clip config (needed to rebuild a model name open_clip does not
    ship), the training card, and the line that loads the result."""
    import open_clip

    from rschat.train.common import file_sha256, write_card

    config = open_clip.get_model_config(name)
    if config is not None:
        (out / f"{name}.json").write_text(json.dumps(config, indent=2) + "\n")
    load = f"RSCHAT_CLIP={name}:{(out / WEIGHTS_FILE).resolve()}"
    write_card(
        out,
        kind="clip",
        base=args.base,
        data=str(Path(args.data).resolve()),
        data_sha256=file_sha256(args.data),
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        **results,
        load=load,
    )
    before, after = results["val_before"], results["val_after"]
    print(f"validation image->text top-1: {before['image_to_text_top1']} before, {after['image_to_text_top1']} after")
    print(f"validation text->image top-1: {before['text_to_image_top1']} before, {after['text_to_image_top1']} after")
    print(f"wrote {out / WEIGHTS_FILE}; load it with {load}")
