"""segment-anything behind rschat's conventions: numpy in (HWC uint8 RGB), masks out.

Points are (x, y, positive) and boxes XYXY, both in pixels of the full image. Large
images are handled in tiles the size of the encoder's input: a prompt is answered in
the tile window around it, and "segment everything" runs the automatic mask generator
tile by tile and pastes the masks back (the encoder never sees more than one tile).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


def build_sam_model(model_type: str, checkpoint: str | None) -> Any:
    """A SAM of a registry type (vit_h, vit_l, vit_b) or the 64-pixel 'tiny' test type,
    with the checkpoint's weights when one is given."""
    import torch
    from segment_anything import sam_model_registry
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    if model_type != "tiny":
        if model_type not in sam_model_registry:
            raise ValueError(f"unknown SAM model type {model_type!r}")
        return sam_model_registry[model_type](checkpoint=checkpoint)
    prompt_dim, size, patch = 32, 64, 16
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=size,
            patch_size=patch,
            embed_dim=64,
            depth=2,
            num_heads=2,
            out_chans=prompt_dim,
            global_attn_indexes=(1,),
            window_size=2,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=prompt_dim,
            image_embedding_size=(size // patch, size // patch),
            input_image_size=(size, size),
            mask_in_chans=8,
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=prompt_dim, mlp_dim=64, num_heads=2),
            transformer_dim=prompt_dim,
            iou_head_depth=2,
            iou_head_hidden_dim=32,
        ),
    )
    if checkpoint:
        sam.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True))
    return sam.eval()


@dataclass
class SamMask:
    mask: np.ndarray  # (H, W) bool, full image
    score: float  # SAM's predicted IoU
    box: tuple[int, int, int, int]  # XYXY pixels


class SamBackend:
    def __init__(self, model: Any, name: str) -> None:
        self.model = model
        self.name = name
        self.tile = int(model.image_encoder.img_size)

    def _window(self, center_x: float, center_y: float, width: int, height: int) -> tuple[int, int, int, int]:
        side = min(max(width, height), self.tile * 2)  # up to two encoder sizes of context
        x0 = int(min(max(center_x - side / 2, 0), max(width - side, 0)))
        y0 = int(min(max(center_y - side / 2, 0), max(height - side, 0)))
        return x0, y0, min(width, x0 + side), min(height, y0 + side)

    def predict(
        self,
        rgb: np.ndarray,
        points: list[tuple[float, float, bool]] | None = None,
        box: tuple[float, float, float, float] | None = None,
    ) -> SamMask:
        """The best mask for the prompts (points and/or a box)."""
        import torch
        from segment_anything import SamPredictor

        h, w = rgb.shape[:2]
        pts = points or []
        if box is not None:
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        elif pts:
            cx, cy = float(np.mean([p[0] for p in pts])), float(np.mean([p[1] for p in pts]))
        else:
            raise ValueError("SAM needs a point or a box")
        x0, y0, x1, y1 = self._window(cx, cy, w, h) if max(h, w) > 2 * self.tile else (0, 0, w, h)
        predictor = SamPredictor(self.model)
        with torch.inference_mode():
            predictor.set_image(np.ascontiguousarray(rgb[y0:y1, x0:x1]))
            masks, scores, _ = predictor.predict(
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
        with torch.inference_mode():
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
