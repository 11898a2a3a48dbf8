"""What the map shows, as one JSON-able dict built from the session (no Gradio here).

- ``overlays``: the session's georeferenced images as PNGs warped to Web Mercator (the
  map's projection, so the picture lands exactly on its footprint), with lat/lon bounds;
  a dated stack becomes a list the map's date slider flips through.
- ``layers``: GeoJSON (EPSG:4326) from the latest results (change regions, land cover,
  counted objects, outlines) and the drawn region, each with a colour for the legend.
- ``fit``: the bounds the map zooms to.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

from rschat.agent import Workspace
from rschat.geo.io import write_png
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster
from rschat.geo.region import footprint_wgs84

MERCATOR = CRS.from_epsg(3857)
MAX_SIDE = 1024  # overlays are for looking at; analysis always uses full resolution
LAYER_COLORS = {"detect_changes": "#e31a1c", "segment": "#1f78b4", "count_objects": "#ffcc00",
                "segment_objects": "#00c8ff", "grounding": "#ff6600", "region": "#ff00ff"}  # fmt: skip
CLASS_COLORS = {"water": "#1e5ac8", "trees": "#146e1e", "low_vegetation": "#8cc850", "bare_soil": "#be965a",
                "built_up": "#dc283c", "shadow": "#3c3c3c", "cloud": "#f5f5f5"}  # fmt: skip
LAYER_NAMES = {"detect_changes": "changes", "segment": "land cover", "count_objects": "counted objects",
               "segment_objects": "outlines (SAM)"}  # fmt: skip


def file_url(path: Path | str) -> str:
    """The URL under which Gradio serves a file from an allowed path."""
    return f"/gradio_api/file={Path(path).resolve()}"


def mercator_png(raster: Raster, out: Path) -> tuple[Path, list[list[float]]]:
    """The raster's preview warped to EPSG:3857, and its [[south, west], [north, east]]."""
    assert raster.crs is not None and raster.transform is not None
    rgb = rgb_preview(raster)
    step = max(1, int(np.ceil(max(raster.height, raster.width) / MAX_SIDE)))
    src = np.moveaxis(rgb[::step, ::step], -1, 0)
    src_transform = raster.transform @ raster.transform.scale(step, step)
    h, w = src.shape[1:]
    bounds = (
        src_transform.c,
        src_transform.f + src_transform.e * h,
        src_transform.c + src_transform.a * w,
        src_transform.f,
    )
    dst_transform, dw, dh = calculate_default_transform(raster.crs, MERCATOR, w, h, *bounds)
    dst = np.zeros((4, dh, dw), dtype=np.uint8)
    alpha_src = np.full((1, h, w), 255, dtype=np.uint8)
    for band in range(3):
        reproject(
            src[band],
            dst[band],
            src_transform=src_transform,
            src_crs=raster.crs,
            dst_transform=dst_transform,
            dst_crs=MERCATOR,
            resampling=Resampling.bilinear,
        )
    reproject(
        alpha_src[0],
        dst[3],
        src_transform=src_transform,
        src_crs=raster.crs,
        dst_transform=dst_transform,
        dst_crs=MERCATOR,
        resampling=Resampling.nearest,
    )
    write_png(out, np.moveaxis(dst, 0, -1))
    west, south, east, north = transform_bounds(
        MERCATOR,
        "EPSG:4326",
        dst_transform.c,
        dst_transform.f + dst_transform.e * dh,
        dst_transform.c + dst_transform.a * dw,
        dst_transform.f,
    )
    return out, [[south, west], [north, east]]


def _overlay(ws: Workspace, name: str) -> dict[str, Any] | None:
    raster = ws.rasters[name]
    if not raster.georeferenced:
        return None
    path = ws.out_dir / f"map_{name}_{ws.raster_uids[name]}.png"
    if path.exists() and path.with_suffix(".json").exists():
        bounds = json.loads(path.with_suffix(".json").read_text())
    else:
        _, bounds = mercator_png(raster, path)
        path.with_suffix(".json").write_text(json.dumps(bounds))
    label = name + (f" {raster.date.isoformat()}" if raster.date else "")
    return {"name": label, "url": file_url(path), "bounds": bounds, "footprint": footprint_wgs84(raster)}


def build(ws: Workspace, max_results: int = 4) -> dict[str, Any]:
    """The map's state for a session (see module docstring)."""
    state: dict[str, Any] = {"overlays": [], "dates": [], "layers": [], "fit": None, "note": ""}
    stack = ws.stack()
    if stack:
        state["dates"] = [o for o in (_overlay(ws, n) for n in stack) if o]
    for name in ("image", "before", "after"):
        if name in ws.rasters and not stack:
            overlay = _overlay(ws, name)
            if overlay:
                state["overlays"].append(overlay)
    shown = state["overlays"] + state["dates"]
    if shown:
        south = min(o["bounds"][0][0] for o in shown)
        west = min(o["bounds"][0][1] for o in shown)
        north = max(o["bounds"][1][0] for o in shown)
        east = max(o["bounds"][1][1] for o in shown)
        state["fit"] = [[south, west], [north, east]]
    elif ws.rasters:
        state["note"] = "The images have no georeference, so they cannot be placed on the map: use the image panel."

    for overlay in state["overlays"][:1] + state["dates"][:1]:  # all images of a session share a place
        state["layers"].append(
            {"name": "image footprint", "color": "#444444", "region": True, "geojson": overlay["footprint"]}
        )
    for stored in ws.results[-max_results:]:
        geo = stored.result.artifact("geojson")
        if geo is None or not geo.path.exists():
            continue
        collection = json.loads(geo.path.read_text())
        if "coordinates" in collection:  # pixel coordinates: not for a map
            continue
        state["layers"].append(
            {
                "name": f"{LAYER_NAMES.get(stored.tool, stored.tool)} ({stored.id})",
                "color": LAYER_COLORS.get(stored.tool, "#ff7f00"),
                "classColors": CLASS_COLORS if stored.tool == "segment" else None,
                "points": stored.tool == "count_objects",
                "geojson": collection,
            }
        )
    if ws.region is not None:
        state["layers"].append(
            {"name": "drawn region", "color": LAYER_COLORS["region"], "geojson": ws.region, "region": True}
        )
    return state
