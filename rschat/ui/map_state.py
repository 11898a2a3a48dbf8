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

from rschat.agent import Workspace
from rschat.geo.region import footprint_wgs84
from rschat.geo.warp import mercator_png
from rschat.tools import REGISTRY

REGION_COLOR = "#ff00ff"


def file_url(path: Path | str) -> str:
    """The URL under which Gradio serves a file from an allowed path."""
    return f"/gradio_api/file={Path(path).resolve()}"


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
        layer = REGISTRY[stored.tool].layer if stored.tool in REGISTRY else None
        if layer is None:
            continue
        state["layers"].append(
            {
                "name": f"{layer.name} ({stored.id})",
                "color": layer.color,
                "classColors": dict(layer.class_colors) if layer.class_colors else None,
                "points": layer.points,
                "geojson": collection,
            }
        )
    if ws.region is not None:
        state["layers"].append({"name": "drawn region", "color": REGION_COLOR, "geojson": ws.region, "region": True})
    return state
