"""What the lite-model trainers share (``rschat train trees|buildings|scene|change|landuse``): reading a
prepared manifest, the training loop (fixed seed, progress bar with the loss and time left,
resumable checkpoints, validation that keeps the best weights), the ONNX export and the
model card written beside it.

The card is two files: ``NAME.json`` (what the app reads: input size, pixel size,
classes, thresholds; plus data, licences, metrics, size and latency) and ``NAME.md`` (the
same for people).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from rschat.train.common import ProgressBar, load_checkpoint, save_checkpoint, seed_everything


def load_manifests(folders: list[str]) -> tuple[list[dict], list[dict]]:
    """(items with absolute image/mask paths and their source's pixel size, source records)."""
    items, sources = [], []
    for folder in folders:
        root = Path(folder)
        m = json.loads((root / "manifest.json").read_text())
        sources.append({k: m[k] for k in ("source", "repo", "commit", "licence", "attribution")})
        for it in m["items"]:
            it = dict(it, source=m["source"], image=str(root / it["image"]))
            if "mask" in it:
                it["mask"] = str(root / it["mask"])
            it.setdefault("gsd_m", m["gsd_m"])
            items.append(it)
    return items, sources


def read_rgb(path: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def add_common_arguments(parser: argparse.ArgumentParser, steps: int, batch: int) -> None:
    parser.add_argument("--data", nargs="+", required=True, help="prepared folders (rschat data prepare)")
    parser.add_argument("--out", required=True, help="folder for checkpoints, NAME.onnx and its card")
    parser.add_argument("--steps", type=int, default=steps)
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: all cores)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the result always runs on the CPU)")
    parser.add_argument("--validate-every", type=int, default=250)
    parser.add_argument(
        "--workers", type=int, default=0,
        help="processes that cut training crops ahead of the model (0: in the training process); on a GPU "
        "the crops, not the model, set the pace",
    )  # fmt: skip
    parser.add_argument(
        "--keep", choices=("best", "last"), default="best",
        help="export the weights with the best validation score (default) or the last step's",
    )  # fmt: skip


def fit(
    net: Any,
    args: argparse.Namespace,
    batch: Callable[[np.random.Generator], tuple[Any, ...]],
    loss_fn: Callable[..., Any],
    validate: Callable[[Any], dict[str, float]],
    key: str,
    desc: str,
) -> dict[str, Any]:
    """Train ``net`` for ``args.steps`` steps of AdamW with a cosine schedule; validate every
    ``args.validate_every`` steps and keep the weights with the highest ``key``. Resumes from
    ``out/checkpoint``. Returns {"best": metrics, "history": [...], "seconds": ...}."""
    import torch

    seed_everything(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    net.to(device)
    out = Path(args.out)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.1)
    sched, resumed = _resume(net, opt, sched, out / "checkpoint", args)
    start, history, best, best_state, seconds = resumed
    stream = _batches(batch, args.seed + start, getattr(args, "workers", 0))  # a resumed run draws fresh ones
    began = time.perf_counter()
    # closing: the crop workers, if any, stop when training ends or fails
    with ProgressBar(total=args.steps, desc=desc, initial=start) as bar, closing(stream) as batches:
        for step in range(start, args.steps):
            net.train()
            tensors = [t.to(device) if hasattr(t, "to") else t for t in next(batches)]
            loss = loss_fn(net, *tensors)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            bar.update(loss=float(loss.detach()))
            if (step + 1) % args.validate_every == 0 or step + 1 == args.steps:
                net.eval()
                with torch.no_grad():
                    metrics = validate(net)
                history.append({"step": step + 1, "loss": float(loss), **metrics})
                bar.write(f"step {step + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
                if best is None or metrics[key] >= best[key]:
                    best = dict(metrics, step=step + 1)
                    best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
                save_checkpoint(
                    out / "checkpoint", step + 1, net=net.state_dict(), optimizer=opt.state_dict(),
                    scheduler=sched.state_dict(), history=history, best=best, best_state=best_state,
                    seconds=seconds + time.perf_counter() - began, total=args.steps,
                )  # fmt: skip
    if best_state is not None and getattr(args, "keep", "best") == "best":
        net.load_state_dict(best_state)
    net.to("cpu").eval()
    if getattr(args, "keep", "best") == "last" and history:
        best = history[-1]  # the card reports the weights that ship
    return {"best": best, "history": history, "seconds": round(seconds + time.perf_counter() - began)}


def _batches(
    batch: Callable[[np.random.Generator], tuple[Any, ...]], seed: int, workers: int
) -> Generator[Any, None, None]:
    """Endless training batches, drawn here or, with ``workers``, by that many processes
    ahead of the model. Each worker has its own generator (seed, worker) and the loader
    takes their batches in turn, so a run is reproducible for the same number of workers
    (0 and 1 draw the same batches)."""
    if workers > 0 and sys.platform != "linux":
        raise SystemExit(f"--workers needs Linux (its worker processes are forked); on {sys.platform} use --workers 0.")
    if workers <= 0:
        rng = np.random.default_rng(seed)
        while True:
            yield batch(rng)
    from torch.utils import data

    class Stream(data.IterableDataset):
        def __iter__(self) -> Iterator[Any]:
            info = data.get_worker_info()
            rng = np.random.default_rng([seed, info.id if info else 0])
            while True:
                yield batch(rng)

    # fork: the workers share the decoded images instead of pickling them (Linux, the
    # platform GPUs train on). Forking after the model went to the GPU is safe while the
    # workers only cut crops on the CPU, as here. batch_size=None: each item is a batch.
    yield from data.DataLoader(
        Stream(), batch_size=None, num_workers=workers, prefetch_factor=4, multiprocessing_context="fork"
    )


def _resume(net: Any, opt: Any, sched: Any, folder: Path, args: argparse.Namespace) -> tuple[Any, tuple]:
    """Restore a checkpoint: (scheduler, (step, history, best, best weights, seconds))."""
    import torch

    state = load_checkpoint(folder)
    if state is None:
        return sched, (0, [], None, None, 0.0)
    net.load_state_dict(state["net"])
    opt.load_state_dict(state["optimizer"])
    if state.get("total") == args.steps:
        sched.load_state_dict(state["scheduler"])
    else:  # a longer (or shorter) run from this checkpoint: the schedule stretches to the new total
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=args.lr, total_steps=max(args.steps, state["step"] + 1), pct_start=0.1,
            last_epoch=state["step"] - 1,
        )  # fmt: skip
    return sched, (state["step"], state["history"], state["best"], state["best_state"], state["seconds"])


def onnx_latency_s(path: Path, shape: tuple[int, ...], repeats: int = 3) -> float:
    """Median seconds of one ONNX Runtime call on ``shape`` (CPU, the app's settings)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)
    sess.run(None, {"image": x})
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sess.run(None, {"image": x})
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def write_model_card(out: Path, name: str, meta: dict[str, Any], sources: list[dict], fitted: dict, args: Any) -> None:
    """``NAME.json`` (read by the app) and ``NAME.md`` beside ``NAME.onnx``."""
    onnx = out / f"{name}.onnx"
    card = {
        "name": name,
        "file": onnx.name,
        **meta,
        "size_mb": round(onnx.stat().st_size / 1e6, 2),
        "data": sources,
        "training": {
            "steps": args.steps, "batch": args.batch, "lr": args.lr, "seed": args.seed,
            "seconds": fitted["seconds"], "device": args.device, "best_step": (fitted["best"] or {}).get("step"),
            "workers": getattr(args, "workers", 0),
        },
        "validation": fitted["best"],
        "command": f"rschat train {name} --data {' '.join(args.data)} --out {args.out}",
    }  # fmt: skip
    (out / f"{name}.json").write_text(json.dumps(card, indent=1) + "\n")
    lines = [
        f"# Lite model card: {name}",
        "",
        meta.get("summary", ""),
        "",
        f"- File: `{onnx.name}`, {card['size_mb']} MB, ONNX (opset 17), runs on the CPU with ONNX Runtime.",
        f"- Input: {meta.get('input', 'RGB')}, float32 0-255, NCHW; pixel size {meta.get('gsd_m', 'any')} m "
        "(the app resamples to it).",
        f"- Trained with: `{card['command']}` ({args.steps} steps, batch {args.batch}, seed {args.seed}, "
        f"{fitted['seconds'] / 60:.0f} min on {args.device}).",
        f"- Validation (best step {card['training']['best_step']}): "
        + ", ".join(f"{k} {v:.3f}" for k, v in (fitted["best"] or {}).items() if k != "step"),
        "",
        "## Data, licences and attribution",
        "",
    ]
    for s in sources:
        lines.append(
            f"- **{s['source']}**: `{s['repo']}` at `{s['commit']}`. Licence: {s['licence']}. {s['attribution']}."
        )
    lines += ["", "## Measured", "", *meta.get("measured", ["(see `rschat eval` and benchmarks/lite_models.py)"]), ""]
    (out / f"{name}.md").write_text("\n".join(lines))
