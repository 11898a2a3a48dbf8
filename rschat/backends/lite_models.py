"""The learned lite models: small ONNX networks in ``checkpoints/lite/`` (trained by
``rschat train trees|buildings|scene|change|landuse`` on openly licensed data), run on the CPU with ONNX
Runtime. No torch here: a lite turn never imports it.

Each model is ``NAME.onnx`` with its card ``NAME.json`` (pixel size, input side, classes,
thresholds, metrics). ``model(name)`` gives a loaded model or None when the file is missing
or fails to load; ``status()`` says which, so the tools fall back to their rules and the
answer and the ``backends`` JSON say which one ran.

Images of any size are resampled to the model's pixel size and run in overlapping tiles;
each output pixel is taken from the tile where it lies farthest from an edge (the centre
crop of each tile), so tile seams do not show.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from rschat.resources import data_dir

_LOCK = threading.Lock()
_LOADED: dict[str, Any] = {}  # name -> LiteModel | str (why it failed)


@dataclass
class LiteModel:
    name: str
    card: dict[str, Any]
    session: Any  # onnxruntime.InferenceSession

    @property
    def label(self) -> str:
        return f"learned lite model ({self.card.get('file')}, {self.card.get('size_mb')} MB, ONNX Runtime)"

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """One call on float32 NCHW 0-255."""
        return self.session.run(None, {"image": np.ascontiguousarray(batch, dtype=np.float32)})


OFF = "none"  # RSCHAT_LITE_MODELS=none: the rules only (to compare them with the models)


def lite_dir() -> Path:
    """Where the shipped models are (``RSCHAT_LITE_MODELS`` names another folder)."""
    return Path(os.environ.get("RSCHAT_LITE_MODELS") or data_dir("checkpoints") / "lite")


def _load(name: str) -> LiteModel | str:
    if os.environ.get("RSCHAT_LITE_MODELS", "").lower() == OFF:
        return "learned lite models switched off (RSCHAT_LITE_MODELS=none)"
    folder = lite_dir()
    onnx, card = folder / f"{name}.onnx", folder / f"{name}.json"
    if not onnx.is_file() or not card.is_file():
        return f"no checkpoint {onnx}"
    try:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(os.environ.get("RSCHAT_LITE_THREADS", "0"))
        session = ort.InferenceSession(str(onnx), opts, providers=["CPUExecutionProvider"])
        return LiteModel(name, json.loads(card.read_text()), session)
    except Exception as err:  # a corrupt or incompatible file: the rules serve instead
        return f"{onnx.name} failed to load: {type(err).__name__}: {str(err)[:160]}"


def model(name: str) -> LiteModel | None:
    """The loaded model, or None (missing or broken: see ``status``). Loaded once per process."""
    with _LOCK:
        if name not in _LOADED:
            _LOADED[name] = _load(name)
        found = _LOADED[name]
    return found if isinstance(found, LiteModel) else None


def status(name: str) -> str:
    """'learned ...' when the model serves, else why not (for the backends JSON)."""
    m = model(name)
    return m.label if m is not None else str(_LOADED.get(name))


def forget() -> None:
    """Drop loaded models (tests switch ``RSCHAT_LITE_MODELS``)."""
    with _LOCK:
        _LOADED.clear()


# --- resampling and tiles -------------------------------------------------------------


def resample(rgb: np.ndarray, scale: float) -> np.ndarray:
    """RGB uint8 resized by ``scale`` (area averaging when shrinking)."""
    if abs(scale - 1) < 1e-3:
        return rgb
    from PIL import Image

    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(
        Image.fromarray(rgb).resize(size, Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR)
    )


def run_tiled(m: LiteModel, rgb: np.ndarray, tile: int = 512, overlap: int = 64, stride: int = 1) -> list[np.ndarray]:
    """The model's dense outputs over a whole image (H, W, C uint8: RGB, or a pair's six bands), in
    overlapping tiles.

    ``stride`` is the outputs' stride relative to the input. Each output keeps the centre of
    each tile (``overlap`` px trimmed from inner edges), so results do not depend on where
    the tiles fall (beyond the network's own receptive field)."""
    h, w = rgb.shape[:2]
    unit = 16  # the encoder's total stride: tiles are padded to a multiple of it
    th, tw = min(tile, _ceil(h, unit)), min(tile, _ceil(w, unit))
    step_y, step_x = max(unit, th - 2 * overlap), max(unit, tw - 2 * overlap)
    outs: list[np.ndarray] | None = None
    for y0 in _starts(h, th, step_y):
        for x0 in _starts(w, tw, step_x):
            part = rgb[y0 : y0 + th, x0 : x0 + tw].astype(np.float32)
            pad = ((0, th - part.shape[0]), (0, tw - part.shape[1]), (0, 0))
            crop = np.pad(part, pad, "reflect") if pad[0][1] or pad[1][1] else part  # reflection, not black
            result = m.run(crop.transpose(2, 0, 1)[None])
            if outs is None:
                outs = [
                    np.zeros((r.shape[1], _ceil(h, stride) // stride, _ceil(w, stride) // stride), np.float32)
                    for r in result
                ]
            # The core of this tile: trim the overlap on sides that have a neighbour.
            cy0 = 0 if y0 == 0 else overlap
            cx0 = 0 if x0 == 0 else overlap
            cy1 = min(th, h - y0) if y0 + th >= h else th - overlap
            cx1 = min(tw, w - x0) if x0 + tw >= w else tw - overlap
            for o, r in zip(outs, result, strict=True):
                o[:, (y0 + cy0) // stride : (y0 + cy1) // stride, (x0 + cx0) // stride : (x0 + cx1) // stride] = r[
                    0, :, cy0 // stride : cy1 // stride, cx0 // stride : cx1 // stride
                ]
    assert outs is not None
    return outs


def tiled_pixels(shape: tuple[int, int], tile: int, overlap: int) -> int:
    """Pixels the network runs over for an image of ``shape`` in ``run_tiled``'s tiles."""
    h, w = shape
    unit = 16
    th, tw = min(tile, _ceil(h, unit)), min(tile, _ceil(w, unit))
    rows = _starts(h, th, max(unit, th - 2 * overlap))
    cols = _starts(w, tw, max(unit, tw - 2 * overlap))
    return len(rows) * len(cols) * th * tw


def _ceil(n: int, unit: int) -> int:
    return -(-n // unit) * unit


def _starts(n: int, size: int, step: int) -> list[int]:
    if n <= size:
        return [0]
    starts = list(range(0, n - size, step))
    return [*starts, n - size]


# --- decoding -------------------------------------------------------------------------


def peaks(heat: np.ndarray, threshold: float, min_distance: int = 1) -> np.ndarray:
    """Local maxima of a heatmap above ``threshold``: (N, 2) array of (row, col)."""
    footprint = np.ones((2 * min_distance + 1,) * 2, bool)
    top = ndimage.maximum_filter(heat, footprint=footprint, mode="constant")
    rows, cols = np.nonzero((heat >= top) & (heat > threshold))
    order = np.argsort(-heat[rows, cols])
    return np.stack([rows[order], cols[order]], axis=1) if len(rows) else np.zeros((0, 2), int)
