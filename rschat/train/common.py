"""What every training command shares: a fixed seed, a progress bar with the loss and the
time left, a resumable checkpoint, and the training card written beside the result.

The API is small and stable (``rschat.train.vlm``, ``clip`` and ``diffusion`` use it)::

    seed_everything(0)
    state = load_checkpoint(out / "checkpoint")          # None on a fresh run
    with ProgressBar(total=steps, desc="train", initial=start) as bar:
        for step in range(start, steps):
            ...
            bar.update(loss=loss.item())
            if (step + 1) % every == 0:
                save_checkpoint(out / "checkpoint", step + 1, optimizer=opt.state_dict(), ...)
    write_card(out, base=..., data=..., data_sha256=file_sha256(path), ...)

torch is imported inside the functions, so importing this module stays cheap (the CLI's
parser imports every training module).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

CHECKPOINT_FILE = "checkpoint.pt"
CARD_FILE = "training_card.json"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (CPU and every GPU), so two runs with
    the same seed, data and device draw the same shuffles, splits and LoRA initialisations."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:  # pragma: no cover - numpy is a core dependency
        pass
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)  # also seeds every CUDA device


class ProgressBar:
    """A tqdm bar counting steps, showing elapsed time, time left and the latest metrics
    (``loss=0.731``). Iterable when built with ``iterable``; otherwise call ``update``."""

    def __init__(
        self,
        total: int | None = None,
        desc: str = "",
        initial: int = 0,
        iterable: Iterable[Any] | None = None,
        unit: str = "step",
        disable: bool | None = None,
    ) -> None:
        from tqdm.auto import tqdm

        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self._iterable = iterable
        # disable=None: tqdm hides the bar when stderr is not a terminal only if asked; keep
        # it on (logs of a long run should show progress) unless the caller says otherwise.
        self._bar = tqdm(
            total=total,
            desc=desc,
            initial=initial,
            unit=unit,
            dynamic_ncols=True,
            file=sys.stderr,
            disable=bool(disable),
            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]",
        )
        self.metrics: dict[str, float] = {}

    def set(self, **metrics: float) -> None:
        """Show these metrics (e.g. ``loss``, ``val_loss``) without advancing."""
        self.metrics.update({k: float(v) for k, v in metrics.items()})
        self._bar.set_postfix({k: f"{v:.4g}" for k, v in self.metrics.items()}, refresh=False)

    def update(self, n: int = 1, **metrics: float) -> None:
        """Advance by ``n`` steps and show the given metrics."""
        if metrics:
            self.set(**metrics)
        self._bar.update(n)

    def write(self, text: str) -> None:
        """Print a line above the bar (validation results, checkpoint notes)."""
        self._bar.write(text, file=sys.stderr)

    @property
    def time_left_s(self) -> float | None:
        """Estimated seconds left at the current rate; None before the first step."""
        info = self._bar.format_dict
        total, n, elapsed = info.get("total"), info.get("n", 0), info.get("elapsed", 0.0)
        done = n - self._bar.initial  # steps run in this process (a resumed run starts later)
        if not total or done <= 0 or elapsed <= 0:
            return None
        return max(0.0, (total - n) * elapsed / done)

    def close(self) -> None:
        self._bar.close()

    def __iter__(self) -> Iterator[Any]:
        if self._iterable is None:
            raise TypeError("ProgressBar was built without an iterable; call update() instead")
        for item in self._iterable:
            yield item
            self._bar.update(1)

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress(iterable: Iterable[Any], total: int | None = None, desc: str = "") -> ProgressBar:
    """A ``ProgressBar`` over an iterable: ``for batch in (bar := progress(batches, n, "train")):
    ... bar.set(loss=...)``."""
    return ProgressBar(total=total, desc=desc, iterable=iterable)


def save_checkpoint(directory: str | Path, step: int, **state: Any) -> Path:
    """Write ``step`` and ``state`` (state dicts of the trainable weights and the optimizer,
    numbers, lists) to ``directory/checkpoint.pt``, plus the random generators' states so a
    resumed run draws what the uninterrupted one would have. Written to a temporary file
    and renamed, so an interrupted save never leaves a truncated checkpoint."""
    import torch

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = {"step": int(step), "state": state, "rng": _rng_state(), "saved_at": time.time()}
    target = directory / CHECKPOINT_FILE
    tmp = target.with_suffix(".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, target)
    (directory / "checkpoint.json").write_text(json.dumps({"step": int(step), "file": CHECKPOINT_FILE}) + "\n")
    return target


def load_checkpoint(directory: str | Path) -> dict[str, Any] | None:
    """The dict given to ``save_checkpoint`` (``step`` plus its state keys) from
    ``directory/checkpoint.pt``, after restoring the random generators; None if there is
    none. Tensors are loaded on the CPU (the caller moves them)."""
    import torch

    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        return None
    # weights_only: a checkpoint holds tensors, numbers, strings and containers only, so the
    # safe unpickler suffices and a tampered file cannot run code.
    payload = torch.load(path, map_location="cpu", weights_only=True)
    _restore_rng(payload.get("rng") or {})
    return {"step": int(payload["step"]), **payload.get("state", {})}


def _rng_state() -> dict[str, Any]:
    import torch

    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {"python": [py_version, list(py_state), py_gauss], "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _restore_rng(state: dict[str, Any]) -> None:
    import torch

    if "python" in state:
        version, values, gauss = state["python"]
        random.setstate((version, tuple(values), gauss))
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file (the training data's fingerprint in the card)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def peak_memory_mb() -> dict[str, float]:
    """Peak memory of this process in MiB: ``gpu`` (torch's peak allocation, when CUDA was
    used) and ``cpu_rss`` (the resident set's high-water mark)."""
    out: dict[str, float] = {}
    try:
        import resource

        # ru_maxrss is in KiB on Linux, bytes on macOS.
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["cpu_rss"] = round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)
    except ImportError:  # pragma: no cover - Windows
        pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        out["gpu"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def write_card(directory: str | Path, **fields: Any) -> Path:
    """Write ``directory/training_card.json``: the given fields (base model, data file and
    its hash, steps, losses, time, ...) plus when it was written and the peak memory, unless
    the caller gave its own."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    card: dict[str, Any] = {"written_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    card.update(fields)
    card.setdefault("peak_memory_mb", peak_memory_mb())
    path = directory / CARD_FILE
    path.write_text(json.dumps(card, indent=2, default=str) + "\n")
    return path
