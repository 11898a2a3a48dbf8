"""Tool ``measure``: area, perimeter and size of a box, a region or a mask, in metric units."""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
from pydantic import Field
from rasterio import features
from shapely.geometry import shape

from rschat.geo.errors import InputError
from rschat.geo.io import write_png
from rschat.geo.preview import overlay_mask, rgb_preview
from rschat.geo.raster import Raster, clip_box
from rschat.geo.region import region_mask
from rschat.geo.vector import label_regions, regions_geojson, regions_of, write_geojson
from rschat.tools.base import (
    Args,
    Artifact,
    Box,
    Figures,
    ImageName,
    Kept,
    Layer,
    Phrase,
    Tool,
    ToolContext,
    ToolResult,
    plain_answer,
)


class MeasureArgs(Args):
    image: ImageName = "image"
    box: Box = None
    point: list[float] | None = Field(
        None, min_length=2, max_length=2, description="x, y: measure the region of the previous mask under this pixel"
    )
    what: Literal["box", "region", "previous_mask", "largest_region"] = "box"


class MeasureFigures(Figures):
    area_m2: float | None
    area_ha: float | None
    perimeter_m: float
    extent_x_m: float
    extent_y_m: float
    pixels: int
    pixel_size_m: float


NEEDS_SCALE = (
    "The image has no georeference, so distances and areas are unknown. Say the pixel size "
    "(e.g. 'the pixel size is 0.5 m') or upload a GeoTIFF."
)
PHRASES = (
    Phrase(
        "measure",
        re.compile(
            r"\bmeasure|perimeter|\blength\b|\bdistance\b|\barea of\b|\bsize of\b|how (big|large|long|wide)", re.I
        ),
        70,
    ),
)


def _perimeter_px(mask: np.ndarray) -> float:
    return float(sum(shape(g).length for g, v in features.shapes(mask.astype(np.uint8), mask=mask) if v))


def _mask_figures(mask: np.ndarray, raster: Raster, gsd: float) -> MeasureFigures:
    area = raster.area_m2(mask)
    ys, xs = np.nonzero(mask)
    extent = (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) if xs.size else (0, 0)
    return MeasureFigures(
        area_m2=area,
        area_ha=None if area is None else area / 1e4,
        perimeter_m=_perimeter_px(mask) * gsd,
        extent_x_m=float(extent[0] * gsd),
        extent_y_m=float(extent[1] * gsd),
        pixels=int(mask.sum()),
        pixel_size_m=gsd,
    )


def _shape_to_measure(args: MeasureArgs, ctx: ToolContext, raster: Raster) -> tuple[np.ndarray, str]:
    """(mask, what it is in words) for the call: a region of the previous mask under a
    point, the previous mask or its largest region, the drawn region, or the box."""
    prev_mask = ctx.previous.kept.mask if ctx.previous is not None else None
    if prev_mask is not None and prev_mask.shape != (raster.height, raster.width):
        if args.what in ("previous_mask", "largest_region"):
            raise InputError(
                "The previous result was computed inside a box, so its mask does not cover this image: ask about "
                "the result itself (e.g. 'how big is the largest one?'), or measure without a box first."
            )
        prev_mask = None
    if args.point is not None and prev_mask is not None:
        x, y = (int(round(v)) for v in args.point)
        labels, _ = label_regions(prev_mask)
        if not (0 <= y < labels.shape[0] and 0 <= x < labels.shape[1]) or labels[y, x] == 0:
            raise InputError(f"The point ({x}, {y}) is not inside any region of the previous result.")
        return labels == labels[y, x], f"the region under the point ({x}, {y})"
    if args.what in ("previous_mask", "largest_region") and prev_mask is not None:
        if args.what == "previous_mask":
            return prev_mask, "the previous result's mask"
        labels, n = label_regions(prev_mask)
        if n == 0:
            raise InputError("The previous result has no region to measure.")
        biggest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
        return labels == biggest, "the largest region of the previous result"
    if args.what == "region":
        if ctx.region is None:
            raise InputError("No region is drawn: draw a rectangle or polygon on the map (or pass --region).")
        return region_mask(ctx.region, raster), "the region drawn on the map"
    if args.box:
        try:
            x0, y0, x1, y1 = clip_box(args.box, raster.width, raster.height)
        except ValueError as err:
            raise InputError(f"The box cannot be used: {err}.") from err
        mask = np.zeros((raster.height, raster.width), dtype=bool)
        mask[y0:y1, x0:x1] = True
        return mask, f"the box x {x0}-{x1}, y {y0}-{y1}"
    raise InputError("Nothing to measure: draw a box on the image (or give --box), or ask about a result first.")


def run(args: MeasureArgs, ctx: ToolContext) -> ToolResult:
    raster = ctx.raster(args.image)
    gsd = raster.pixel_size_m()
    if gsd is None:
        raise InputError(NEEDS_SCALE)
    mask, subject = _shape_to_measure(args, ctx, raster)
    f = _mask_figures(mask, raster, gsd)
    area_txt = (
        f"{f.area_m2:,.0f} m2 ({f.area_ha:,.3f} ha)"
        if f.area_m2 is not None and f.area_ha is not None
        else "area unknown"
    )
    summary = (
        f"{subject}: {area_txt}, perimeter {f.perimeter_m:,.0f} m, extent {f.extent_x_m:,.0f} m x {f.extent_y_m:,.0f} m"
    )
    overlay = overlay_mask(rgb_preview(raster), mask, color=(255, 210, 0))
    # The shape itself for a GIS ("give me the largest lake as GeoJSON"): its polygon, with
    # its area, in EPSG:4326 (pixel coordinates without a georeference).
    labels, regions = regions_of(mask, raster)
    where = "EPSG:4326" if raster.georeferenced else "pixel coordinates"
    geojson = write_geojson(ctx.path("measured.geojson"), regions_geojson(labels, regions, raster, "measured"))
    return ToolResult(
        summary=summary,
        figures=f,
        artifacts=[
            Artifact("overlay", write_png(ctx.path("measure.png"), overlay), "measured shape"),
            Artifact("geojson", geojson, f"measured shape (GeoJSON, {where})"),
        ],
        method="pixel counting on the raster grid (areas per pixel from its CRS); perimeter along pixel edges",
        limits=["perimeters follow pixel edges, so they run a few % long on curved outlines"],
        notes=[] if raster.georeferenced else [f"pixel size {gsd} m as stated by the user"],
        kept=Kept(mask=mask, scope=subject),
    )


HELP = (
    "- **measuring** a box, a region or a mask in m, m2 and ha (*measure the box*, *how big is the lake?*); "
    "without georeference, tell me the pixel size (*the pixel size is 0.5 m*)"
)


TOOL = Tool(
    name="measure",
    description=(
        "Measure a box, the previous result's mask, its largest region, or the region under a point: "
        "area (m2, ha), perimeter (m) and extent (m). Needs georeference or a stated pixel size."
    ),
    args=MeasureArgs,
    figures=MeasureFigures,
    function=run,
    answer=plain_answer("Measured"),
    phrases=PHRASES,
    layer=Layer("measured shape", "#ffd200"),
    reads_colours=lambda args: False,  # geometry only
    help=HELP,
    needs=("image",),
)
