"""Tool ``segment``: land-cover classes with their areas, shares and polygons."""

from __future__ import annotations

from typing import Any

import numpy as np

from rschat.backends import landcover_rules as lcr
from rschat.geo.io import write_geotiff, write_png
from rschat.geo.preview import rgb_preview
from rschat.geo.vector import regions_geojson, regions_of, write_geojson
from rschat.tools.base import (
    BOX_SCHEMA,
    REGION_SCHEMA,
    Artifact,
    Tool,
    ToolContext,
    ToolResult,
    region_mask_of,
    scoped_raster,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "default": "image"},
        "target": {"type": "string", "enum": [*lcr.CLASSES, "vegetation", "all"], "default": "all"},
        "box": BOX_SCHEMA,
        "region": REGION_SCHEMA,
    },
    "additionalProperties": False,
}

LIMITS_RGB = (
    "lite mode, colour rules on RGB: dark water and shadow are told apart only by size, grey "
    "sand, rock and dead trees can be labelled built-up, and trees vs low vegetation is judged by texture"
)
LIMITS_MS = "lite mode, spectral-index rules (NDVI, NDWI/MNDWI, NDBI): mixed pixels at class edges are approximate"


def _blend(rgb: np.ndarray, colors: np.ndarray, valid: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    out = rgb.astype(np.float32)
    out[valid] = (1 - alpha) * out[valid] + alpha * colors[valid]
    return out.astype(np.uint8)


def target_mask(lc: lcr.LandCover, target: str) -> np.ndarray:
    if target == "vegetation":
        return lc.mask("trees") | lc.mask("low_vegetation")
    return lc.mask(target)


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    # 1. Inputs.
    raster, scope = scoped_raster(args, ctx)
    target = args.get("target", "all")

    # 2. Classify.
    lc = lcr.classify(raster)
    inside = region_mask_of(args, ctx, raster)
    if inside is not None:
        lc.classes = np.where(inside, lc.classes, -1).astype(np.int8)
        scope += ", inside the region drawn on the map"
    valid = lc.classes >= 0
    valid_px = int(valid.sum())
    ctx.progress(0.6, "classified")

    # 3. Measure every class (pixels, m2, ha, %) and the target's regions.
    data: dict[str, float | int | None] = {
        "analysed_area_m2": raster.area_m2(valid),
        "pixel_size_m": raster.pixel_size_m(),
    }
    for name in lcr.CLASSES:
        m = lc.mask(name)
        area = raster.area_m2(m)
        data[f"{name}_percent"] = 100.0 * m.sum() / valid_px if valid_px else 0.0
        data[f"{name}_area_m2"] = area
        data[f"{name}_area_ha"] = None if area is None else area / 1e4
    if target == "vegetation":
        data["vegetation_percent"] = data["trees_percent"] + data["low_vegetation_percent"]  # type: ignore[operator]
        area = raster.area_m2(target_mask(lc, "vegetation"))
        data["vegetation_area_m2"], data["vegetation_area_ha"] = area, None if area is None else area / 1e4
    focus_mask = target_mask(lc, target) if target != "all" else None
    if focus_mask is not None:
        labels, regions = regions_of(focus_mask, raster)
        data[f"{target}_region_count"] = len(regions)
        data[f"{target}_largest_area_m2"] = regions[0].area_m2 if regions else None
    else:
        labels, regions = lc.classes + 1, []

    # 4. Artifacts: overlay, class GeoTIFF, polygons.
    stem = f"landcover_{raster.name}"
    colors = lcr.colorize(lc).astype(np.float32)
    overlay = _blend(rgb_preview(raster), colors, valid if focus_mask is None else focus_mask)
    geojson = _class_polygons(lc, raster) if focus_mask is None else regions_geojson(labels, regions, raster, target)
    artifacts = [
        Artifact(
            "overlay",
            write_png(ctx.out_dir / f"{stem}_{target}_overlay.png", overlay),
            f"land cover ({target}) overlay",
        ),
        Artifact(
            "geotiff",
            write_geotiff(ctx.out_dir / f"{stem}_classes.tif", (lc.classes + 1).astype(np.uint8), raster, nodata=0),
            "class map (GeoTIFF: 0 no data, " + ", ".join(f"{i + 1} {c}" for i, c in enumerate(lcr.CLASSES)) + ")",
        ),
        Artifact(
            "geojson", write_geojson(ctx.out_dir / f"{stem}_{target}.geojson", geojson), f"{target} polygons (GeoJSON)"
        ),
    ]

    shares = sorted(((data[f"{c}_percent"], c) for c in lcr.CLASSES), reverse=True)
    summary = f"land cover of {scope}: " + ", ".join(
        f"{c.replace('_', ' ')} {p:.1f}%"
        + (f" ({data[c + '_area_ha']:,.2f} ha)" if data[c + "_area_ha"] is not None else "")
        for p, c in shares
        if p >= 0.5  # type: ignore[operator]
    )
    return ToolResult(
        summary=summary,
        data=data,
        artifacts=artifacts,
        method=lcr.METHOD_NAME + (f", indices: {', '.join(lc.used_indices)}" if lc.used_indices else ", RGB only"),
        limits=[LIMITS_MS if lc.used_indices else LIMITS_RGB],
        memory={
            "landcover": lc,
            "mask": focus_mask,
            "regions": regions,
            "labels": labels,
            "target": target,
            "raster": raster,
            "scope": scope,
        },
    )


def _class_polygons(lc: lcr.LandCover, raster) -> dict:  # type: ignore[no-untyped-def]
    features: list[dict] = []
    for name in lcr.CLASSES:
        m = lc.mask(name)
        if not m.any():
            continue
        labels, regions = regions_of(m, raster)
        features += regions_geojson(labels, regions, raster, name)["features"]
    collection = {"type": "FeatureCollection", "features": features}
    if not raster.georeferenced:
        collection["coordinates"] = "pixel (x right, y down); the image has no georeference"
    return collection


TOOL = Tool(
    name="segment",
    description=(
        "Land-cover segmentation of one image into water, trees, low vegetation, bare soil, built-up, "
        "shadow and cloud, with area (m2, ha) and share (%) per class, polygons and an overlay. "
        "Optionally restricted to a box; 'target' picks one class to outline."
    ),
    schema=SCHEMA,
    run=run,
    needs=("image",),
)
