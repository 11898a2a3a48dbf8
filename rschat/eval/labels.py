"""Readers for object labels as boxes in the image's pixels, and box matching.

Formats (chosen by the file's extension):
- ``.csv`` with named columns ``xmin, ymin, xmax, ymax`` in pixels, in any order (the
  DeepForest ``image_path,xmin,ymin,xmax,ymax,label`` and NEON's ``xmin,xmax,ymin,ymax``
  files both read by name); with an ``image_path`` column, only the image's own rows;
- ``.xml``: Pascal VOC (``object/bndbox``);
- ``.geojson`` / ``.json``: polygons in any CRS (the legacy ``crs`` member, else
  EPSG:4326 as RFC 7946 says), mapped to pixels through the image's geotransform.
"""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rschat.geo.errors import InputError
from rschat.geo.raster import Raster

BUILDING_IOU = 0.3  # a building detection also counts when it overlaps a true footprint this much


@dataclass(frozen=True)
class LabelBox:
    x0: float
    y0: float
    x1: float
    y1: float
    label: str = ""

    def contains(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


def read_boxes(path: Path, raster: Raster, image_name: str | None = None) -> list[LabelBox]:
    """The labelled boxes of one image, in its pixels (x right, y down)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return _csv_boxes(path, image_name)
        if suffix == ".xml":
            return _voc_boxes(path)
        if suffix in (".geojson", ".json"):
            return _geojson_boxes(path, raster)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, ET.ParseError) as err:
        raise InputError(f"{path.name} could not be read as {suffix[1:]} labels ({err}).") from err
    raise InputError(f"{path.name}: labels must be .csv, Pascal VOC .xml or .geojson, not '{suffix}'.")


def _csv_boxes(path: Path, image_name: str | None) -> list[LabelBox]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = set(rows[0]) if rows else set()
    if rows and not {"xmin", "ymin", "xmax", "ymax"} <= columns:
        raise InputError(f"{path.name} needs columns xmin, ymin, xmax, ymax (it has {', '.join(sorted(columns))}).")
    if image_name and "image_path" in columns:
        own = [r for r in rows if Path(r["image_path"]).name == image_name]
        if not own:
            raise InputError(f"{path.name} has no rows for {image_name} (column image_path).")
        rows = own
    return [_box(r["xmin"], r["ymin"], r["xmax"], r["ymax"], r.get("label") or "") for r in rows]


def _voc_boxes(path: Path) -> list[LabelBox]:
    root = ET.parse(path).getroot()  # a local annotation file, not untrusted network input
    boxes = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        get = lambda tag, bb=bb: bb.findtext(tag) or ""  # noqa: E731
        boxes.append(_box(get("xmin"), get("ymin"), get("xmax"), get("ymax"), obj.findtext("name") or ""))
    return boxes


def _box(x0: Any, y0: Any, x1: Any, y1: Any, label: str) -> LabelBox:
    a, b, c, d = (float(v) for v in (x0, y0, x1, y1))
    return LabelBox(min(a, c), min(b, d), max(a, c), max(b, d), str(label))


def _geojson_boxes(path: Path, raster: Raster) -> list[LabelBox]:
    """Each polygon's bounds in pixels: reprojected to the image's CRS, then through the
    inverse geotransform (rows grow southwards, so y0/y1 swap on the way)."""
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom

    if not raster.georeferenced or raster.crs is None or raster.transform is None:
        raise InputError(f"{path.name} holds map coordinates, but the image has no georeference to place them.")
    data = json.loads(path.read_text())
    name = (data.get("crs") or {}).get("properties", {}).get("name", "EPSG:4326")
    src = CRS.from_user_input(name.replace("urn:ogc:def:crs:", "").replace("::", ":"))
    inverse = ~raster.transform
    boxes = []
    for feature in data.get("features", []):
        geom = feature.get("geometry")
        if not geom or geom.get("type") not in ("Polygon", "MultiPolygon"):
            continue
        if src != raster.crs:
            geom = transform_geom(src, raster.crs, geom)
        cols, rows = zip(*(inverse @ tuple(xy[:2]) for xy in _points(geom["coordinates"])), strict=True)
        label = str((feature.get("properties") or {}).get("label", "")) if feature.get("properties") else ""
        boxes.append(LabelBox(min(cols), min(rows), max(cols), max(rows), label))
    return boxes


def _points(coords: Any) -> list[list[float]]:
    """The positions in nested GeoJSON coordinates."""
    if coords and isinstance(coords[0], int | float):
        return [coords]
    return [p for part in coords for p in _points(part)]


def box_iou(a: tuple[float, float, float, float], b: LabelBox) -> float:
    w = min(a[2], b.x1) - max(a[0], b.x0)
    h = min(a[3], b.y1) - max(a[1], b.y0)
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter
    return inter / union if union > 0 else 0.0


def match(detections: list[tuple[float, float, float, float]], truth: list[LabelBox], by_iou: bool) -> int:
    """True positives under one-to-one greedy matching, detections in the given order
    (highest score first): a detection matches an unmatched true box that holds its
    centre, or (``by_iou``, for buildings, whose centres fall off irregular footprints)
    one it overlaps with IoU >= 0.3; among several, the one it overlaps most."""
    free = list(range(len(truth)))
    hits = 0
    for box in detections:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        ok = [i for i in free if truth[i].contains(cx, cy) or (by_iou and box_iou(box, truth[i]) >= BUILDING_IOU)]
        if ok:
            free.remove(max(ok, key=lambda i: box_iou(box, truth[i])))
            hits += 1
    return hits
