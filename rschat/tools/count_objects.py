"""Tool ``count_objects``: how many trees or buildings, with boxes and points to show."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from PIL import Image, ImageDraw
from pyproj import Transformer

from rschat.backends import counting_classical as cc
from rschat.geo.errors import InputError
from rschat.geo.io import write_png
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster
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

SUPPORTED = {"tree": "trees", "building": "buildings"}
# Targets the planner knows but lite mode cannot count reliably, with why.
UNRELIABLE = {
    "vehicle": "vehicles are a few pixels across and need a trained detector",
    "ship": "ships need a trained detector (wakes and waves fool simple rules)",
    "pool": "swimming pools need a trained detector",
    "solar_panel": "solar panels need a trained detector",
}
ASSUMED_GSD_M = 0.1  # NEON / drone-like imagery, used only when nothing else is known

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "target": {"type": "string", "enum": [*SUPPORTED, *UNRELIABLE]},
        "image": {"type": "string", "default": "image"},
        "box": BOX_SCHEMA,
        "region": REGION_SCHEMA,
        "within_previous_mask": {"type": "boolean", "description": "count only inside the previous step's mask"},
    },
    "required": ["target"],
    "additionalProperties": False,
}


def _draw(rgb: np.ndarray, dets: list[cc.Detection]) -> np.ndarray:
    im = Image.fromarray(rgb)
    draw = ImageDraw.Draw(im)
    for d in dets:
        color = (255, 200, 0) if "dead" in d.kind else (0, 255, 255) if d.kind == "building" else (255, 40, 40)
        draw.rectangle(d.box, outline=color, width=2)
    return np.asarray(im)


def _geojson(dets: list[cc.Detection], raster: Raster, offset: tuple[int, int]) -> dict:
    """Points (centres) and boxes of detections, EPSG:4326 when georeferenced."""
    transform = raster.transform if raster.georeferenced else None
    to_wgs = (
        Transformer.from_crs(raster.crs.to_wkt(), "EPSG:4326", always_xy=True).transform
        if transform is not None and raster.crs is not None
        else None
    )

    def where(x: float, y: float) -> list[float]:
        x, y = x + offset[0], y + offset[1]
        if transform is None or to_wgs is None:
            return [x, y]
        mx, my = transform @ (x, y)
        lon, lat = to_wgs(mx, my)
        return [round(lon, 8), round(lat, 8)]

    feats = []
    for i, d in enumerate(dets, start=1):
        x0, y0, x1, y1 = d.box
        ring = [where(x0, y0), where(x1, y0), where(x1, y1), where(x0, y1), where(x0, y0)]
        feats.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": where(*d.center)},
                "properties": {"id": i, "kind": d.kind, "box_px": [round(v, 1) for v in d.box], "footprint": ring},
            }
        )
    out: dict = {"type": "FeatureCollection", "features": feats}
    if transform is None:
        out["coordinates"] = "pixel (x right, y down); the image has no georeference"
    return out


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    # 1. Inputs and what can be counted at this resolution.
    target = args["target"]
    if target in UNRELIABLE and ctx.settings is not None and ctx.settings.sam and ctx.settings.clip:
        return _count_with_sam_clip(target, args, ctx)
    if target in UNRELIABLE:
        raise InputError(
            f"Counting {target}s is not reliable in lite mode ({UNRELIABLE[target]}). Lite mode counts trees "
            "(checked on NEON airborne tiles) and buildings (experimental). Full mode (SAM + CLIP) will count others."
        )
    raster, scope = scoped_raster(args, ctx, default=args.get("image", "image"))
    box = args.get("box")
    offset = (min(box[0], box[2]), min(box[1], box[3])) if box else (0, 0)
    gsd = raster.pixel_size_m()
    notes = []
    if gsd is None:
        gsd = ASSUMED_GSD_M
        notes.append(
            f"the image has no georeference and no stated pixel size; {gsd} m pixels were assumed "
            "(say 'the pixel size is X m' for a better count)"
        )
    limit = cc.MAX_TREE_GSD_M if target == "tree" else cc.MAX_BUILDING_GSD_M
    if gsd > limit:
        raise InputError(
            f"The pixels are {gsd:.2f} m: too coarse to count single {SUPPORTED[target]} (needs {limit} m or finer). "
            "Ask for the land cover instead (e.g. 'how much is covered by trees?')."
        )

    if target == "tree" and raster.count < 3:
        raise InputError(
            f"'{raster.name}' has {raster.count} band(s): tree crowns are found by their colour, so counting trees "
            "needs an RGB image (buildings can be counted on panchromatic images)."
        )

    # 2. Detect.
    rgb = rgb_preview(raster)
    if target == "tree":
        dets = cc.count_trees(rgb.astype(np.float32) / 255.0, gsd)
        method, limits = (
            cc.TREE_METHOD,
            ["lite mode: crowns that touch may be counted as one, and bright grey ground can pass for dead crowns"],
        )
    else:
        dets = cc.count_buildings(rgb.mean(axis=-1).astype(np.float32) / 255.0, gsd)
        method, limits = (
            cc.BUILDING_METHOD,
            [
                "experimental in lite mode: on the SpaceNet test tile the total is close but many single detections "
                "are wrong (lawns, shaded ground); treat the number as rough"
            ],
        )

    # 3. Restrict to the previous step's mask (chains such as "buildings that appeared").
    if args.get("within_previous_mask") and ctx.previous is not None and ctx.previous.memory.get("mask") is not None:
        mask = ctx.previous.memory["mask"]
        if box:
            x0, y0 = offset
            mask = mask[y0 : y0 + raster.height, x0 : x0 + raster.width]
        dets = [
            d for d in dets if mask[min(int(d.center[1]), mask.shape[0] - 1), min(int(d.center[0]), mask.shape[1] - 1)]
        ]
        scope += " inside the changed area"

    inside = region_mask_of(args, ctx, raster)
    if inside is not None:
        h, w = inside.shape
        dets = [d for d in dets if inside[min(int(d.center[1]), h - 1), min(int(d.center[0]), w - 1)]]
        scope += ", inside the region drawn on the map"

    # 4. Artifacts.
    plural = SUPPORTED[target]
    stem = f"count_{plural}_{raster.name}"
    path_geo = ctx.out_dir / f"{stem}.geojson"
    path_geo.write_text(json.dumps(_geojson(dets, raster, offset)))
    area_ha = raster.area_m2(inside if inside is not None else np.ones((raster.height, raster.width), bool))
    data: dict[str, float | int | None] = {
        "count": len(dets),
        "density_per_ha": None if area_ha is None or not area_ha else len(dets) / (area_ha / 1e4),
        "pixel_size_m": gsd,
    }
    if target == "tree":
        data["dead_or_leafless"] = sum("dead" in d.kind for d in dets)
    return ToolResult(
        summary=f"{len(dets)} {plural} in {scope}",
        data=data,
        artifacts=[
            Artifact("overlay", write_png(ctx.out_dir / f"{stem}.png", _draw(rgb, dets)), f"{plural} (boxes)"),
            Artifact("geojson", path_geo, f"{plural} as points with boxes (GeoJSON)"),
        ],
        method=method,
        limits=limits,
        notes=notes,
        memory={"detections": dets, "offset": offset, "target": target},
    )


def _count_with_sam_clip(target: str, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    """Full mode: SAM's masks kept when CLIP says the crop shows the target."""
    from rschat.tools import segment_objects

    label = target.replace("_", " ") + "s"
    seg_args = {"image": args.get("image", "image"), "mode": "text", "text": label}
    res = segment_objects.run(seg_args, ctx)
    n = int(res.data["objects"] or 0)
    return ToolResult(
        summary=f"{n} {label} (SAM masks that CLIP names '{label}')",
        data={"count": n, "pixel_size_m": ctx.raster(seg_args["image"]).pixel_size_m()},
        artifacts=res.artifacts,
        method=res.method,
        limits=["counted as SAM masks named by CLIP: touching objects merge and small ones are missed"],
        memory=res.memory,
    )


TOOL = Tool(
    name="count_objects",
    description=(
        "Count objects of one kind in an image: trees (crowns) or buildings, optionally inside a box or inside "
        "the previous step's mask. Returns the count, density per ha, boxes drawn on the image and GeoJSON points."
    ),
    schema=SCHEMA,
    run=run,
    needs=("image",),
)
