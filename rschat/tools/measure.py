"""Tool ``measure``: area, perimeter and size of a box, a region or a mask, in metric units."""

from __future__ import annotations

from typing import Any

import numpy as np
from rasterio import features
from shapely.geometry import shape

from rschat.geo.errors import InputError
from rschat.geo.io import write_png
from rschat.geo.preview import overlay_mask, rgb_preview
from rschat.geo.raster import Raster, clip_box
from rschat.geo.region import region_mask
from rschat.geo.vector import label_regions
from rschat.tools.base import BOX_SCHEMA, Artifact, Tool, ToolContext, ToolResult

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "default": "image"},
        "box": BOX_SCHEMA,
        "point": {
            "type": "array",
            "items": {"type": "number"},
            "minItems": 2,
            "maxItems": 2,
            "description": "x, y: measure the region of the previous mask under this pixel",
        },
        "what": {"type": "string", "enum": ["box", "region", "previous_mask", "largest_region"], "default": "box"},
    },
    "additionalProperties": False,
}
NEEDS_SCALE = (
    "The image has no georeference, so distances and areas are unknown. Say the pixel size "
    "(e.g. 'the pixel size is 0.5 m') or upload a GeoTIFF."
)


def _perimeter_px(mask: np.ndarray) -> float:
    return float(sum(shape(g).length for g, v in features.shapes(mask.astype(np.uint8), mask=mask) if v))


def _mask_figures(mask: np.ndarray, raster: Raster, gsd: float) -> dict[str, float | int | None]:
    area = raster.area_m2(mask)
    ys, xs = np.nonzero(mask)
    extent = (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) if xs.size else (0, 0)
    return {
        "area_m2": area,
        "area_ha": None if area is None else area / 1e4,
        "perimeter_m": _perimeter_px(mask) * gsd,
        "extent_x_m": extent[0] * gsd,
        "extent_y_m": extent[1] * gsd,
        "pixels": int(mask.sum()),
    }


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    # 1. Inputs: the raster, its scale, and which shape to measure.
    raster = ctx.raster(args.get("image", "image"))
    gsd = raster.pixel_size_m()
    if gsd is None:
        raise InputError(NEEDS_SCALE)
    what = args.get("what", "box")
    prev_mask = ctx.previous.memory.get("mask") if ctx.previous is not None else None
    if prev_mask is not None and prev_mask.shape != (raster.height, raster.width):
        prev_mask = None  # the previous step worked on a crop: measure its own figures instead

    # 2. Build the mask to measure.
    if args.get("point") is not None and prev_mask is not None:
        x, y = (int(round(v)) for v in args["point"])
        labels, _ = label_regions(prev_mask)
        if not (0 <= y < labels.shape[0] and 0 <= x < labels.shape[1]) or labels[y, x] == 0:
            raise InputError(f"The point ({x}, {y}) is not inside any region of the previous result.")
        mask, subject = labels == labels[y, x], f"the region under the point ({x}, {y})"
    elif what in ("previous_mask", "largest_region") and prev_mask is not None:
        mask, subject = prev_mask, "the previous result's mask"
        if what == "largest_region":
            labels, n = label_regions(prev_mask)
            if n == 0:
                raise InputError("The previous result has no region to measure.")
            biggest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
            mask, subject = labels == biggest, "the largest region of the previous result"
    elif what == "region":
        if ctx.region is None:
            raise InputError("No region is drawn: draw a rectangle or polygon on the map (or pass --region).")
        mask, subject = region_mask(ctx.region, raster), "the region drawn on the map"
    elif args.get("box"):
        x0, y0, x1, y1 = clip_box(args["box"], raster.width, raster.height)
        mask = np.zeros((raster.height, raster.width), dtype=bool)
        mask[y0:y1, x0:x1] = True
        subject = f"the box x {x0}-{x1}, y {y0}-{y1}"
    else:
        raise InputError("Nothing to measure: draw a box on the image (or give --box), or ask about a result first.")

    # 3. Measure.
    data = _mask_figures(mask, raster, gsd)
    data["pixel_size_m"] = gsd
    area_txt = (
        f"{data['area_m2']:,.0f} m2 ({data['area_ha']:,.3f} ha)" if data["area_m2"] is not None else "area unknown"
    )
    summary = (
        f"{subject}: {area_txt}, perimeter {data['perimeter_m']:,.0f} m, extent "
        f"{data['extent_x_m']:,.0f} m x {data['extent_y_m']:,.0f} m"
    )
    overlay = overlay_mask(rgb_preview(raster), mask, color=(255, 210, 0))
    return ToolResult(
        summary=summary,
        data=data,
        artifacts=[
            Artifact("overlay", write_png(ctx.out_dir / f"measure_{raster.name}.png", overlay), "measured shape")
        ],
        method="pixel counting on the raster grid (areas per pixel from its CRS); perimeter along pixel edges",
        limits=["perimeters follow pixel edges, so they run a few % long on curved outlines"],
        notes=[] if raster.georeferenced else [f"pixel size {gsd} m as stated by the user"],
        memory={"mask": mask},
    )


TOOL = Tool(
    name="measure",
    description=(
        "Measure a box, the previous result's mask, its largest region, or the region under a point: "
        "area (m2, ha), perimeter (m) and extent (m). Needs georeference or a stated pixel size."
    ),
    schema=SCHEMA,
    run=run,
    needs=("image",),
)
