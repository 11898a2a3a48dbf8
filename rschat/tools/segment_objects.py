"""Tool ``segment_objects`` (full mode, SAM [+ CLIP]): outline what the user points at,
everything in the image, or objects named in text ("segment the solar panels")."""

from __future__ import annotations

from typing import Any

import numpy as np

from rschat.backends.loading import load_clip, load_sam
from rschat.geo.io import write_geotiff, write_png
from rschat.geo.preview import overlay_mask, rgb_preview
from rschat.geo.vector import regions_geojson, regions_of, write_geojson
from rschat.tools.base import BOX_SCHEMA, Artifact, Tool, ToolContext, ToolResult
from rschat.tools.full_mode import require

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "default": "image"},
        "mode": {"type": "string", "enum": ["prompt", "everything", "text"], "default": "prompt"},
        "points": {
            "type": "array",
            "items": {"type": "array", "items": {"type": "number"}, "minItems": 3, "maxItems": 3},
            "description": "[x, y, 1|0] in pixels",
        },
        "box": BOX_SCHEMA,
        "text": {"type": "string", "description": "what to outline, for mode 'text' (e.g. 'solar panels')"},
        "min_score": {"type": "number", "default": 0.5, "description": "CLIP probability to keep a mask (text mode)"},
    },
    "additionalProperties": False,
}


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    # 1. Inputs and models.
    sam = require(load_sam, ctx, "Segmentation with SAM")
    raster = ctx.raster(args.get("image", "image"))
    rgb = rgb_preview(raster)
    mode = args.get("mode", "prompt")

    # 2. Masks.
    if mode == "prompt":
        points = [(p[0], p[1], bool(p[2])) for p in args.get("points") or []]
        found = sam.predict(rgb, points=points or None, box=tuple(args["box"]) if args.get("box") else None)
        masks, what = [found.mask], "the prompted object"
        scores = [found.score]
    else:
        candidates = sam.everything(rgb)
        masks = [m.mask for m in candidates]
        scores = [m.score for m in candidates]
        what = "all objects"
        if mode == "text":
            target = args.get("text") or "objects"
            clip = require(load_clip, ctx, "Naming SAM's masks from text (CLIP)")
            probs = clip.crops_match(rgb, [m.box for m in candidates], target)
            keep = [i for i, p in enumerate(probs) if p >= args.get("min_score", 0.5)]
            masks, scores, what = [masks[i] for i in keep], [float(probs[i]) for i in keep], target
    union = np.any(masks, axis=0) if masks else np.zeros(rgb.shape[:2], dtype=bool)
    ctx.progress(0.7, "masks ready")

    # 3. Measure and export.
    labels, regions = regions_of(union, raster)
    area = raster.area_m2(union)
    stem = f"sam_{mode}_{raster.name}"
    data: dict[str, float | int | None] = {
        "objects": len(masks),
        "area_m2": area,
        "area_ha": None if area is None else area / 1e4,
        "percent": 100.0 * union.mean(),
        "mean_score": float(np.mean(scores)) if scores else None,
    }
    return ToolResult(
        summary=f"{len(masks)} mask(s) for {what}, covering {data['percent']:.1f}% of the image"
        + (f" ({area:,.0f} m2, {area / 1e4:,.2f} ha)" if area is not None else ""),
        data=data,
        artifacts=[
            Artifact("overlay", write_png(ctx.out_dir / f"{stem}.png", overlay_mask(rgb, union, (0, 200, 255))), what),
            Artifact(
                "geotiff", write_geotiff(ctx.out_dir / f"{stem}.tif", union.astype(np.uint8), raster), "mask (GeoTIFF)"
            ),
            Artifact(
                "geojson",
                write_geojson(ctx.out_dir / f"{stem}.geojson", regions_geojson(labels, regions, raster, what)),
                "outlines (GeoJSON)",
            ),
        ],
        method=f"segment-anything ({sam.name})" + (" with CLIP naming" if mode == "text" else ""),
        limits=["SAM outlines objects; it does not know what they are, and CLIP's naming of small crops is rough"],
        memory={"mask": union, "masks": masks, "regions": regions, "labels": labels},
    )


TOOL = Tool(
    name="segment_objects",
    description="Outline objects with segment-anything: the object under the user's points or box ('prompt'), "
    "everything ('everything'), or objects named in text ('text', named by CLIP). Returns masks, area and outlines.",
    schema=SCHEMA,
    run=run,
    needs=("image",),
)
