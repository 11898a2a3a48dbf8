"""The rule planner for export requests: "give me the change polygons as a shapefile",
"export the building footprints as GeoJSON", "export the NDVI series as CSV".

The files of every answer are written when it runs (GeoTIFF, GeoJSON, CSV, PNG), so an
export request is answered from the stored result it names: the answer is shown again and
the downloads offer that result's files. A thing named but not yet computed is computed
(the building footprints); a format rschat does not write (shapefile, KML) is said so,
with the one it writes and how to convert it. "Export" alone points at the Export button,
which writes the whole session (GeoPackage, GeoJSON, HTML map, transcript); so does
"export everything", or "export it" with nothing named.
"""

from __future__ import annotations

import re

from rschat.agent.planner_change import plan_change
from rschat.agent.planner_closed import plan_count
from rschat.agent.plans import Plan, Request, plan_largest, with_box
from rschat.agent.steps import ToolCall
from rschat.agent.vocabulary import EXPORT_REPLY, FILE_FORMAT, INDEX_WORDS, NOT_WRITTEN
from rschat.agent.workspace import StoredResult
from rschat.backends.counting_classical import MAX_BUILDING_GSD_M

_CHANGE = re.compile(r"\bchang|\blost\b|\bloss\b|\bgain", re.I)
_SERIES = re.compile(r"\bseries\b|\btrend\b|\bthrough time\b|\bover time\b", re.I)
_CROWNS = re.compile(r"\bcrowns?\b", re.I)
_FOOTPRINTS = re.compile(r"\bfootprints?\b", re.I)
_LARGEST = re.compile(r"\b(?:largest|biggest)\b", re.I)
_SEVERAL = re.compile(r"\b(?:\d+|two|three|four|five|six|seven|eight|nine|ten)\s+(?:largest|biggest)\b", re.I)


def _format_note(message: str) -> str | None:
    """What to say about the format asked for, when rschat does not write it."""
    asked = [m.group(1).lower() for m in FILE_FORMAT.finditer(message)]
    missing = [a for a in asked if a in NOT_WRITTEN]
    if not missing and any(a in ("geopackage", "gpkg") for a in asked):
        # One GeoPackage holds the whole session: each answer's own files are GeoJSON.
        return (
            "The GeoPackage is written by the **Export the session** button, under Downloads (every layer of the session, in its "
            "image's CRS; `rschat ask --export` in the CLI); each answer's own files are GeoJSON."
        )
    if not missing:
        return None
    return (
        f"rschat does not write {missing[0]} files: the downloads hold GeoJSON (EPSG:4326), and the **Export the session** button "
        "writes a GeoPackage of every layer; QGIS and ArcGIS open both. To convert one: "
        '`ogr2ogr -f "ESRI Shapefile" out.shp FILE.geojson` (GDAL).'
    )


def _latest(req: Request, tool: str, target: object = None) -> StoredResult | None:
    """The newest current result of a tool (with this target, when one is given)."""
    for stored in reversed(req.ws.results):
        if stored.tool != tool or not req.ws.is_current(stored):
            continue
        if target is None or stored.args.get("target") == target or stored.result.kept.target == target:
            return stored
    return None


def _named_result(req: Request) -> tuple[bool, StoredResult | None]:
    """(whether the message names what to export, the stored result it names or None)."""
    said = req.message
    if _SERIES.search(said) or (INDEX_WORDS.search(said) and _latest(req, "analyze_timeseries")):
        index = INDEX_WORDS.search(said)
        return True, _latest(req, "analyze_timeseries", index.group(1).lower() if index else None)
    if req.obj in ("tree", "building") or _CROWNS.search(said) or _FOOTPRINTS.search(said):
        obj = req.obj or ("tree" if _CROWNS.search(said) else "building")
        if obj == "tree" and not _CROWNS.search(said) and req.cls == "trees":  # "the trees": crowns or canopy
            return True, _latest(req, "count_objects", "tree") or _latest(req, "segment", "trees")
        return True, _latest(req, "count_objects", obj)
    if _CHANGE.search(said):
        return True, _latest(req, "detect_changes", req.cls)
    if req.cls is not None:
        return True, _latest(req, "segment", req.cls) or _latest(req, "detect_changes", req.cls)
    return False, None


def _one_largest_area(req: Request) -> bool:
    """'Give me the largest lake as GeoJSON': one land-cover area, which measure outlines
    (the class's result holds all of them); not the largest building or tree (the count's
    objects), not 'the 3 largest lakes', and not without a pixel size (measure needs one)."""
    said = req.message
    if not _LARGEST.search(said) or _SEVERAL.search(said) or _CHANGE.search(said):
        return False
    raster = req.ws.rasters.get(req.image or "")
    return (
        req.obj is None and req.cls not in (None, "vegetation") and raster is not None and bool(raster.pixel_size_m())
    )


def _compute_named(req: Request) -> Plan | None:
    """What an export names, computed when no result holds it yet: change, the counted
    objects where the pixels resolve them, else the land-cover class ('save the water as a
    GeoPackage' as a first message)."""
    if _CHANGE.search(req.message):
        return plan_change(req)
    raster = req.ws.rasters.get(req.image or "")
    resolved = raster is not None and (raster.pixel_size_m() or 0.0) <= MAX_BUILDING_GSD_M
    if req.obj is not None and (resolved or req.cls is None):
        return plan_count(req)
    if req.cls is not None:
        call = ToolCall("segment", with_box({"image": req.image, "target": req.cls}, req.ws), f"find the {req.cls}")
        return Plan("segment", [call])
    return None


def plan_export(req: Request) -> Plan:
    note = _format_note(req.message)
    if _one_largest_area(req):
        one = plan_largest(req, str(req.cls))
        one.note = note
        return one
    named, stored = _named_result(req)
    if stored is None and not named and FILE_FORMAT.search(req.message):  # "give me that as a shapefile"
        shown = req.ws.shown_results()
        stored = shown[-1] if shown else None
    if stored is not None:
        return Plan("export", use_result=stored.id, note=note)
    if named and req.ws.rasters:  # "export the building footprints" before any count: count them
        plan = _compute_named(req)
        if plan is not None and plan.calls:
            plan.note = note
            return plan
    return Plan("export", reply="\n\n".join(t for t in (note, EXPORT_REPLY) if t))
