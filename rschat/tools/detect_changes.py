"""Tool ``detect_changes``: where two images of the same place differ, and by how much."""

from __future__ import annotations

from typing import Any

import numpy as np

from rschat.backends import change_classical
from rschat.geo.errors import InputError
from rschat.geo.io import write_geotiff, write_png
from rschat.geo.pair import align_pair
from rschat.geo.preview import overlay_mask, rgb_preview
from rschat.geo.vector import regions_geojson, regions_of, write_geojson
from rschat.tools.base import (
    BOX_SCHEMA,
    REGION_SCHEMA,
    Artifact,
    Tool,
    ToolContext,
    ToolResult,
    region_mask_of,
    to_float_rgb,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "before": {"type": "string", "description": "name of the earlier image", "default": "before"},
        "after": {"type": "string", "description": "name of the later image", "default": "after"},
        "box": BOX_SCHEMA,
        "region": REGION_SCHEMA,
    },
    "additionalProperties": False,
}

LIMITS = [
    "lite mode: a training-free detector; it responds to new structures (roofs, roads) and "
    "to colour change, so seasonal vegetation or shadows can show as change and small "
    "changes (under ~64 pixels) are dropped",
]


def _fmt_area(m2: float | None) -> str:
    if m2 is None:
        return "area unknown (no georeference)"
    return f"{m2:,.0f} m2 ({m2 / 1e4:,.2f} ha)"


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    # 1. Inputs: the pair on one grid (reprojected or refused, see geo.pair).
    before, after = align_pair(ctx.raster(args.get("before", "before")), ctx.raster(args.get("after", "after")))
    scope = "the whole image"
    if args.get("box"):
        try:
            before, after = before.crop(tuple(args["box"])), after.crop(tuple(args["box"]))
        except ValueError as err:
            raise InputError(f"The box cannot be used: {err}.") from err
        x0, y0, x1, y1 = args["box"]
        scope = f"the box x {x0}-{x1}, y {y0}-{y1}"
    ctx.progress(0.1, "pair aligned")

    # 2. Detect.
    valid = before.valid_mask() & after.valid_mask()
    out = change_classical.detect(to_float_rgb(before), to_float_rgb(after), valid=valid)
    ctx.progress(0.6, "change mask computed")

    # 3. Restrict to the drawn region (the whole pair is analysed first, so the result is
    #    exactly the full change mask clipped to the region), then measure.
    mask = out.mask
    inside = region_mask_of(args, ctx, before)
    if inside is not None:
        valid, mask = valid & inside, mask & inside
        scope = "the region drawn on the map" + ("" if scope == "the whole image" else f" and {scope}")
    valid_px = int(valid.sum())
    changed_px = int(mask.sum())
    labels, regions = regions_of(mask, before)
    changed_m2 = before.area_m2(mask)
    largest = regions[0] if regions else None
    data: dict[str, float | int | None] = {
        "changed_fraction": changed_px / valid_px if valid_px else 0.0,
        "changed_percent": 100.0 * changed_px / valid_px if valid_px else 0.0,
        "changed_pixels": changed_px,
        "changed_area_m2": changed_m2,
        "changed_area_ha": None if changed_m2 is None else changed_m2 / 1e4,
        "analysed_area_m2": before.area_m2(valid),
        "region_count": len(regions),
        "largest_region_pixels": largest.pixels if largest else 0,
        "largest_region_area_m2": largest.area_m2 if largest else (0.0 if changed_m2 is not None else None),
        "pixel_size_m": before.pixel_size_m(),
    }

    # 4. Artifacts: overlay on the after image, GeoTIFF mask, GeoJSON regions.
    stem = f"change_{before.name}_{after.name}"
    overlay = overlay_mask(rgb_preview(after), mask)
    artifacts = [
        Artifact(
            "overlay",
            write_png(ctx.out_dir / f"{stem}_overlay.png", overlay),
            "change overlay (red) on the after image",
        ),
        Artifact("before_preview", write_png(ctx.out_dir / f"{stem}_before.png", rgb_preview(before)), "before"),
        Artifact("after_preview", write_png(ctx.out_dir / f"{stem}_after.png", rgb_preview(after)), "after"),
        Artifact(
            "geotiff",
            write_geotiff(ctx.out_dir / f"{stem}_mask.tif", mask.astype(np.uint8), before),
            "change mask (GeoTIFF, 1 = changed)",
        ),
        Artifact(
            "geojson",
            write_geojson(ctx.out_dir / f"{stem}_regions.geojson", regions_geojson(labels, regions, before, "change")),
            "change regions (GeoJSON, EPSG:4326)"
            if before.georeferenced
            else "change regions (GeoJSON, pixel coordinates)",
        ),
    ]
    ctx.progress(1.0, "artifacts written")

    summary = (
        f"in {scope}, {data['changed_percent']:.1f}% of the analysed area changed ({changed_px:,} pixels, "
        f"{_fmt_area(changed_m2)}) in {len(regions)} regions"
    )
    if largest:
        summary += f"; the largest covers {_fmt_area(largest.area_m2)} ({largest.pixels:,} pixels)"
    return ToolResult(
        summary=summary,
        data=data,
        artifacts=artifacts,
        method=change_classical.METHOD_NAME,
        limits=list(LIMITS),
        notes=[*before.notes, *after.notes],
        memory={"mask": mask, "labels": labels, "regions": regions, "georef": before.describe_georef(), "scope": scope},
    )


TOOL = Tool(
    name="detect_changes",
    description=(
        "Find what changed between two co-registered images of the same place (before, after). "
        "Returns the change mask, the changed fraction and area (m2, ha), the connected change "
        "regions, an overlay, a GeoTIFF mask and GeoJSON polygons."
    ),
    schema=SCHEMA,
    run=run,
    needs=("before", "after"),
)
