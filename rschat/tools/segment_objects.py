"""Tool ``segment_objects`` (full mode, SAM [+ CLIP]): outline what the user points at,
everything in the image, or objects named in text ("segment the solar panels")."""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
from pydantic import Field

from rschat.backends.loading import load_clip, load_sam
from rschat.backends.named_objects import named_objects
from rschat.geo.errors import InputError
from rschat.geo.io import write_geotiff, write_png
from rschat.geo.preview import overlay_mask, rgb_preview
from rschat.geo.vector import regions_geojson, regions_of, write_geojson
from rschat.tools.base import (
    Args,
    Artifact,
    Box,
    Figures,
    ImageName,
    Kept,
    Layer,
    Phrase,
    Reading,
    Requires,
    Tool,
    ToolContext,
    ToolResult,
)
from rschat.tools.full_mode import require


class SegmentObjectsArgs(Args):
    image: ImageName = "image"
    mode: Literal["prompt", "everything", "text"] = "prompt"
    points: list[list[float]] | None = Field(None, description="[x, y, 1|0] in pixels")
    box: Box = None
    text: str | None = Field(None, description="what to outline, for mode 'text' (e.g. 'solar panels')")
    min_score: float = Field(0.5, description="CLIP probability to keep a mask (text mode)")


class SegmentObjectsFigures(Figures):
    objects: int
    area_m2: float | None
    area_ha: float | None
    percent: float
    mean_score: float | None


PHRASES = (Phrase("outline", re.compile(r"\b(outline|delineate)\b|\bsegment (everything|all objects)\b", re.I), 95),)


def _masks(args: SegmentObjectsArgs, ctx: ToolContext, rgb: np.ndarray) -> tuple[list[np.ndarray], list[float], str]:
    """(masks, scores, what they are) for the call's mode."""
    sam = require(load_sam, ctx, "Segmentation with SAM")
    if args.mode == "prompt":
        points = [(p[0], p[1], bool(p[2])) for p in args.points or [] if len(p) == 3]
        if not points and not args.box:
            raise InputError("Outlining an object needs a point or a box on the image: click it, then ask again.")
        box = (args.box[0], args.box[1], args.box[2], args.box[3]) if args.box else None
        found = sam.predict(rgb, points=points or None, box=box)
        return [found.mask], [found.score], "the prompted object"
    if args.mode == "text":
        clip = require(load_clip, ctx, "Naming SAM's masks from text (CLIP)")
        target = args.text or "objects"
        kept, probs = named_objects(sam, clip, rgb, target, args.min_score)
        return [m.mask for m in kept], probs, target
    candidates = sam.everything(rgb)
    return [m.mask for m in candidates], [m.score for m in candidates], "all objects"


def run(args: SegmentObjectsArgs, ctx: ToolContext) -> ToolResult:
    raster = ctx.raster(args.image)
    rgb = rgb_preview(raster)
    masks, scores, what = _masks(args, ctx, rgb)
    union = np.any(masks, axis=0) if masks else np.zeros(rgb.shape[:2], dtype=bool)
    ctx.progress(0.7, "masks ready")

    labels, regions = regions_of(union, raster)
    area = raster.area_m2(union)
    figures = SegmentObjectsFigures(
        objects=len(masks),
        area_m2=area,
        area_ha=None if area is None else area / 1e4,
        percent=100.0 * float(union.mean()),
        mean_score=float(np.mean(scores)) if scores else None,
    )
    name = ctx.path(f"sam_{args.mode}")
    return ToolResult(
        summary=f"{len(masks)} mask(s) for {what}, covering {figures.percent:.1f}% of the image"
        + (f" ({area:,.0f} m2, {area / 1e4:,.2f} ha)" if area is not None else ""),
        figures=figures,
        artifacts=[
            Artifact("overlay", write_png(name.with_suffix(".png"), overlay_mask(rgb, union, (0, 200, 255))), what),
            Artifact(
                "geotiff", write_geotiff(name.with_suffix(".tif"), union.astype(np.uint8), raster), "mask (GeoTIFF)"
            ),
            Artifact(
                "geojson",
                write_geojson(name.with_suffix(".geojson"), regions_geojson(labels, regions, raster, what)),
                "outlines (GeoJSON)",
            ),
        ],
        method=f"segment-anything ({ctx.settings.sam})" + (" with CLIP naming" if args.mode == "text" else ""),
        limits=["SAM outlines objects; it does not know what they are, and CLIP's naming of small crops is rough"],
        kept=Kept(mask=union, masks=masks, regions=regions, labels=labels, target=what),
    )


def answer(result: ToolResult, reading: Reading) -> str:
    return f"**Outlined** ({reading.source}): {result.summary}."


HELP = (
    "- **outlining objects** with SAM: the one you click (*outline this*), everything, or named ones "
    "(*segment the solar panels*)"
)


TOOL = Tool(
    name="segment_objects",
    description="Outline objects with segment-anything: the object under the user's points or box ('prompt'), "
    "everything ('everything'), or objects named in text ('text', named by CLIP). Returns masks, area and outlines.",
    args=SegmentObjectsArgs,
    figures=SegmentObjectsFigures,
    function=run,
    answer=answer,
    phrases=PHRASES,
    layer=Layer("outlines (SAM)", "#00c8ff"),
    help=HELP,
    needs=("image",),
    requires=(Requires("sam", "outlining objects (it needs SAM: full mode, RSCHAT_SAM)"),),
)
