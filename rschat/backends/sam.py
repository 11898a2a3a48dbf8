"""segment-anything behind rschat's conventions: numpy in (HWC uint8 RGB), masks out.

Points are (x, y, positive) and boxes XYXY, both in pixels of the full image. Large
images are handled in tiles the size of the encoder's input: a prompt is answered in
the tile window around it, and "segment everything" runs the automatic mask generator
tile by tile and pastes the masks back (the encoder never sees more than one tile).
The embedding of the last prompted window is kept, so a second prompt on the same image
does not run the encoder again.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np


def build_sam_model(model_type: str, checkpoint: str | None) -> Any:
    """A SAM of a type in segment_anything's ``sam_model_registry`` (vit_h, vit_l, vit_b, or
    one registered there by the caller), with the checkpoint's weights when one is given."""
    from segment_anything import sam_model_registry

    if model_type not in sam_model_registry:
        raise ValueError(f"unknown SAM model type {model_type!r} (known: {', '.join(sam_model_registry)})")
    return sam_model_registry[model_type](checkpoint=checkpoint).eval()


@dataclass
class SamMask:
    mask: np.ndarray  # (H, W) bool, full image
    score: float  # SAM's predicted IoU
    box: tuple[int, int, int, int]  # XYXY pixels


class SamBackend:
    """A SAM model with one ``SamPredictor`` that keeps the embedding of the last image
    window it encoded, as segment-anything's predictor does between ``set_image`` and
    ``predict``: further prompts on the same window are answered without re-encoding.
    One call at a time per backend (the predictor's image is shared state)."""

    def __init__(self, model: Any, name: str) -> None:
        from segment_anything import SamPredictor

        self.model = model
        self.name = name
        self.tile = int(model.image_encoder.img_size)
        self._predictor = SamPredictor(model)
        self._encoded: tuple[Any, ...] | None = None  # fingerprint of the window the predictor holds
        self._lock = threading.Lock()

    def _set_image(self, window: np.ndarray) -> None:
        """Encode ``window`` (HWC uint8 RGB, C-contiguous) unless the predictor holds it
        already. The caller holds the lock."""
        key = (window.shape, window.dtype.str, hashlib.blake2b(window.data, digest_size=16).digest())
        if key != self._encoded:
            self._encoded = None  # a failed encoding leaves no stale fingerprint
            self._predictor.set_image(window)
            self._encoded = key

    def _window(self, center_x: float, center_y: float, width: int, height: int) -> tuple[int, int, int, int]:
        """XYXY pixel window of up to two encoder sizes around a prompt's centre. Its origin
        is snapped to a half-tile grid, so nearby prompts share a window (and its embedding);
        the centre stays at least three quarters of a tile from the window's edges."""
        side = min(max(width, height), self.tile * 2)
        step = max(self.tile // 2, 1)

        def origin(center: float, size: int) -> int:
            return int(min(max(round((center - side / 2) / step) * step, 0), max(size - side, 0)))

        x0, y0 = origin(center_x, width), origin(center_y, height)
        return x0, y0, min(width, x0 + side), min(height, y0 + side)

    def predict(
        self,
        rgb: np.ndarray,
        points: list[tuple[float, float, bool]] | None = None,
        box: tuple[float, float, float, float] | None = None,
    ) -> SamMask:
        """The best mask for the prompts (points and/or a box)."""
        import torch

        h, w = rgb.shape[:2]
        pts = points or []
        if box is not None:
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        elif pts:
            cx, cy = float(np.mean([p[0] for p in pts])), float(np.mean([p[1] for p in pts]))
        else:
            raise ValueError("SAM needs a point or a box")
        x0, y0, x1, y1 = self._window(cx, cy, w, h) if max(h, w) > 2 * self.tile else (0, 0, w, h)
        with self._lock, torch.inference_mode():
            self._set_image(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
            masks, scores, _ = self._predictor.predict(
                point_coords=np.array([[p[0] - x0, p[1] - y0] for p in pts], dtype=np.float32) if pts else None,
                point_labels=np.array([1 if p[2] else 0 for p in pts]) if pts else None,
                box=np.array([box[0] - x0, box[1] - y0, box[2] - x0, box[3] - y0], dtype=np.float32) if box else None,
                multimask_output=box is None,
            )
        best = int(np.argmax(scores))
        full = np.zeros((h, w), dtype=bool)
        full[y0:y1, x0:x1] = masks[best]
        return SamMask(full, float(scores[best]), _bbox(full))

    def everything(self, rgb: np.ndarray, points_per_side: int = 16, min_area_px: int = 16) -> list[SamMask]:
        """All masks SAM's automatic generator finds, run tile by tile on large images."""
        import torch
        from segment_anything import SamAutomaticMaskGenerator

        gen = SamAutomaticMaskGenerator(
            self.model,
            points_per_side=points_per_side,
            min_mask_region_area=0,
            pred_iou_thresh=0.0,
            stability_score_thresh=0.0,
        )
        h, w = rgb.shape[:2]
        step = self.tile * 2
        out: list[SamMask] = []
        with self._lock, torch.inference_mode():
            for ty in range(0, h, step):
                for tx in range(0, w, step):
                    tile = np.ascontiguousarray(rgb[ty : ty + step, tx : tx + step])
                    if min(tile.shape[:2]) < 8:
                        continue
                    for m in gen.generate(tile):
                        if m["area"] < min_area_px:
                            continue
                        full = np.zeros((h, w), dtype=bool)
                        full[ty : ty + tile.shape[0], tx : tx + tile.shape[1]] = m["segmentation"]
                        out.append(SamMask(full, float(m["predicted_iou"]), _bbox(full)))
        return out


def _bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    if xs.size == 0:
        return (0, 0, 0, 0)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
