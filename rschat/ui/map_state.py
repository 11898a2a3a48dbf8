"""What the map shows, as one JSON-able dict built from the session (no Gradio here).

- ``overlays``: the session's georeferenced images as PNGs warped to Web Mercator (the
  map's projection, so the picture lands exactly on its footprint), with lat/lon bounds;
  a dated stack becomes a list the map's date slider flips through.
- ``layers``: GeoJSON (EPSG:4326) from the latest results (change regions, land cover,
  counted objects, outlines) and the drawn region, each with a colour for the legend.
- ``fit``: the bounds the map zooms to (the latest upload's footprint).
- ``note``: a line under the map (no georeference; a drawn region off the images).

Only the latest upload is shown: an older image elsewhere, results computed from
rasters since replaced (stale: ``Workspace.is_current``) and their layers are left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rschat.agent import Workspace
from rschat.geo.region import footprint_wgs84
from rschat.geo.warp import mercator_png
from rschat.tools import REGISTRY
from rschat.tools.base import result_color

REGION_COLOR = "#ff00ff"


def file_url(path: Path | str) -> str:
    """The URL under which Gradio serves a file from an allowed path."""
    return f"/gradio_api/file={Path(path).resolve()}"


def _overlay(ws: Workspace, name: str, files: dict[str, str]) -> dict[str, Any] | None:
    raster = ws.rasters[name]
    if not raster.georeferenced:
        return None
    path = ws.out_dir / f"map_{name}_{ws.raster_uids[name]}.png"
    if path.exists() and path.with_suffix(".json").exists():
        bounds = json.loads(path.with_suffix(".json").read_text())
    else:
        _, bounds = mercator_png(raster, path)
        path.with_suffix(".json").write_text(json.dumps(bounds))
    label = file_label(raster.name, files)
    if raster.date and raster.date_label not in label:  # '1985', not '1985 1985'
        label += f" {raster.date_label}"
    # "date": what the compare menus show and send ("what changed between 1985 and 2020?")
    date = raster.date_label if raster.date else None
    return {"name": label, "date": date, "url": file_url(path), "bounds": bounds, "footprint": footprint_wgs84(raster)}


def file_label(stem: str, files: dict[str, str]) -> str:
    """A raster's name as the user knows it: the uploaded file's name (``OSBS_029.tif``)."""
    return files.get(stem, stem)


def _fit(shown: list[dict[str, Any]]) -> list[list[float]]:
    south = min(o["bounds"][0][0] for o in shown)
    west = min(o["bounds"][0][1] for o in shown)
    north = max(o["bounds"][1][0] for o in shown)
    east = max(o["bounds"][1][1] for o in shown)
    return [[south, west], [north, east]]


def build(ws: Workspace, max_results: int = 4, files: dict[str, str] | None = None) -> dict[str, Any]:
    """The map's state for a session (see module docstring). Only the latest upload (the
    image, the pair or the dated stack) is shown and fitted, with the results computed
    from exactly those rasters; ``files`` maps raster names (file stems) to file names."""
    files = files or {}
    state: dict[str, Any] = {"overlays": [], "dates": [], "layers": [], "fit": None, "note": ""}
    shown_names = ws.newest_names()
    stack = [n for n in ws.stack() if n in shown_names]
    if stack:
        state["dates"] = [o for o in (_overlay(ws, n, files) for n in stack) if o]
    else:
        state["overlays"] = [o for o in (_overlay(ws, n, files) for n in shown_names) if o]
    shown = state["overlays"] + state["dates"]
    if shown:
        state["fit"] = _fit(shown)
    elif ws.rasters:
        state["note"] = "The images have no georeference, so they cannot be placed on the map: use the image panel."

    for overlay in shown[:1]:  # all images of an upload share a place
        state["layers"].append(
            {"name": "image footprint", "color": "#444444", "region": True, "geojson": overlay["footprint"]}
        )
    state["layers"] += _result_layers(ws, set(shown_names), max_results)
    if ws.region is not None:
        outside = bool(shown) and ws.region_outside(shown_names)
        name = "drawn region (outside the images)" if outside else "drawn region"
        state["layers"].append({"name": name, "color": REGION_COLOR, "geojson": ws.region, "region": True})
        if outside:
            state["note"] = (
                "The drawn region does not overlap the images shown: questions about it would fail. "
                "Clear it (button below) or draw a new one."
            )
    return state


# A class's loss and gain ("trees lost", "trees gained" features of one change result): red
# and blue, as on the image panel's overlay, whatever the result's own colour (a second
# result's hue turned green, and green outlines on a green false-colour Landsat vanished).
LOST_GAINED = {" lost": "#ff0000", " gained": "#2878ff"}


def _lost_gained(collection: dict[str, Any]) -> dict[str, str]:
    kinds = {str((f.get("properties") or {}).get("kind", "")) for f in collection.get("features", [])}
    return {k: c for k in kinds for end, c in LOST_GAINED.items() if k.endswith(end)}


def _result_layers(ws: Workspace, shown: set[str], max_results: int) -> list[dict[str, Any]]:
    """Layers of the latest results computed from the rasters shown (stale ones left out),
    each in a colour of its own."""
    out = []
    current = [s for s in ws.results if ws.is_current(s) and {n for n, _ in s.inputs if n != "region"} <= shown]
    for stored in current[-max_results:]:
        geo = stored.result.artifact("geojson")
        if geo is None or not geo.path.exists():
            continue
        collection = json.loads(geo.path.read_text())
        if "coordinates" in collection:  # pixel coordinates: not for a map
            continue
        layer = REGISTRY[stored.tool].layer if stored.tool in REGISTRY else None
        if layer is None:
            continue
        colors = dict(layer.class_colors) if layer.class_colors else _lost_gained(collection)
        out.append(
            {
                "name": f"{layer.name} ({stored.id})",
                "color": result_color(layer, stored.id),
                "classColors": colors or None,
                "points": layer.points,
                "geojson": collection,
            }
        )
    return out
