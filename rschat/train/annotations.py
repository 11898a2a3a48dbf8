"""Readers of annotations: boxes (CSV, Pascal VOC, COCO, GeoJSON) and masks, in pixels.

Every reader returns ``Box`` values in pixels of the image they belong to (x right, y
down, origin at the top-left corner of the top-left pixel, end exclusive), so the
templates never see a file format or a map coordinate. Bad input raises ``InputError``
with a message that names the file.
"""

from __future__ import annotations

import csv
import json
import os
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rschat.geo.errors import InputError

BOX_SUFFIXES = (".csv", ".xml", ".json", ".geojson")


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float
    label: str

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def area_px(self) -> float:
        return max(0.0, self.x1 - self.x0) * max(0.0, self.y1 - self.y0)


def resolve(base: Path, rel: str) -> Path:
    """A path written in a manifest: absolute, relative to the manifest's folder or, failing
    that, to the nearest ancestor that holds it (../shared/data writes paths relative to
    data/ in manifests that live in data/<task>/)."""
    path = Path(rel)
    if path.is_absolute():
        if path.is_file():
            return path
        raise InputError(f"{rel} (listed in {base.name}) does not exist.")
    folder = base.parent
    for root in [folder, *folder.parents]:
        if (root / path).is_file():
            return root / path
    raise InputError(f"{rel} (listed in {base.name}) was not found next to it or in a folder above it.")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels from the file's header, without decoding the pixels."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return int(src.width), int(src.height)
    except RasterioIOError as err:
        raise InputError(f"{path.name} is not an image that can be read ({err}).") from err


def _label(value: str | None, default: str) -> str:
    """A class name: numeric codes and blanks (DeepForest truth files write 0) fall back to
    the manifest's object name; names are lower case ("Tree" and "tree" are one class)."""
    text = (value or "").strip().lower()
    if not text or text.lstrip("-").isdigit():
        return default
    return text


def _box(xyxy: list[float], label: str) -> Box:
    x0, y0, x1, y1 = xyxy
    return Box(x0, y0, x1, y1, label)


def _checked(box: Box, source: Path) -> Box:
    if not all(np.isfinite(v) for v in box.xyxy) or box.x1 <= box.x0 or box.y1 <= box.y0:
        raise InputError(f"{source.name}: box {box.xyxy} is empty or reversed (expected xmin < xmax, ymin < ymax).")
    return box


def read_csv(path: Path, image: Path | None, default: str) -> list[Box]:
    """Rows with named columns xmin, ymin, xmax, ymax in any order (DeepForest writes
    image_path,xmin,ymin,xmax,ymax,label; NEON truth files xmin,xmax,ymin,ymax). With an
    image_path column, only the rows of ``image`` are kept."""
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {c.strip().lower() for c in (rows[0].keys() if rows else [])}
    missing = {"xmin", "ymin", "xmax", "ymax"} - columns
    if missing:
        raise InputError(
            f"{path.name}: no column {', '.join(sorted(missing))} (CSV boxes need named columns xmin, ymin, xmax, ymax)."
        )
    boxes = []
    for row in rows:
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        if image is not None and row.get("image_path") and Path(row["image_path"]).name != image.name:
            continue
        try:
            xyxy = [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError as err:
            raise InputError(f"{path.name}: a box coordinate is not a number ({err}).") from err
        boxes.append(_checked(_box(xyxy, _label(row.get("label"), default)), path))
    return boxes


def read_voc(path: Path, default: str) -> list[Box]:
    """Pascal VOC XML: one <object> with <name> and <bndbox> per box."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise InputError(f"{path.name} is not valid XML ({err}).") from err
    boxes = []
    for obj in root.iter("object"):
        bnd = obj.find("bndbox")
        if bnd is None:
            continue
        try:
            xyxy = [float(bnd.findtext(k, "nan")) for k in ("xmin", "ymin", "xmax", "ymax")]
        except ValueError as err:
            raise InputError(f"{path.name}: a box coordinate is not a number ({err}).") from err
        boxes.append(_checked(_box(xyxy, _label(obj.findtext("name"), default)), path))
    return boxes


def read_coco(data: dict[str, Any], path: Path, image: Path, default: str) -> list[Box]:
    """COCO detection JSON: the annotations of the entry of ``images`` whose file_name
    ends like ``image``; bbox is [x, y, width, height] in pixels."""
    names = {c.get("id"): str(c.get("name", "")) for c in data.get("categories", [])}
    ids = [im.get("id") for im in data.get("images", []) if Path(str(im.get("file_name", ""))).name == image.name]
    if not ids:
        raise InputError(f"{path.name} has no entry in 'images' for {image.name}.")
    boxes = []
    for ann in data.get("annotations", []):
        if ann.get("image_id") not in ids or len(ann.get("bbox") or []) != 4:
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        boxes.append(_checked(Box(x, y, x + w, y + h, label=_label(names.get(ann.get("category_id")), default)), path))
    return boxes


def _geojson_crs(data: dict[str, Any]) -> str:
    """The CRS a GeoJSON file declares (the pre-RFC 7946 "crs" member); WGS84 without one."""
    name = ((data.get("crs") or {}).get("properties") or {}).get("name")
    return str(name) if name else "EPSG:4326"


def read_geojson(data: dict[str, Any], path: Path, image: Path, default: str) -> list[Box]:
    """Polygons (or any geometry) in map coordinates, mapped through the image's
    geotransform: each feature's box is the pixel extent of its geometry, reprojected to
    the image's CRS first when the file declares another one."""
    import rasterio
    from rasterio.warp import transform_geom
    from shapely.geometry import shape

    with rasterio.open(image) as src:
        if src.crs is None or src.transform.is_identity:
            raise InputError(
                f"{image.name} has no georeference, so the map coordinates of {path.name} cannot be placed on it."
            )
        crs, inverse = src.crs, ~src.transform
    src_crs = _geojson_crs(data)
    boxes = []
    for feature in data.get("features", []):
        geom = feature.get("geometry")
        if not geom:
            continue
        geom = transform_geom(src_crs, crs, geom)
        x0, y0, x1, y1 = shape(geom).bounds
        corners = [inverse @ (x, y) for x in (x0, x1) for y in (y0, y1)]
        cols, rows = [c[0] for c in corners], [c[1] for c in corners]
        props = feature.get("properties") or {}
        label = _label(str(props.get("label") or props.get("class") or props.get("category") or ""), default)
        boxes.append(_checked(Box(min(cols), min(rows), max(cols), max(rows), label=label), path))
    return boxes


def read_boxes(labels: Path, image: Path, default: str = "object") -> list[Box]:
    """The boxes of ``image`` in an annotation file, by its format; clipped to the image,
    dropping boxes that lie wholly outside it."""
    suffix = labels.suffix.lower()
    if suffix == ".csv":
        boxes = read_csv(labels, image, default)
    elif suffix == ".xml":
        boxes = read_voc(labels, default)
    elif suffix in (".json", ".geojson"):
        data = load_json(labels)
        if isinstance(data, dict) and data.get("type") == "FeatureCollection":
            boxes = read_geojson(data, labels, image, default)
        elif isinstance(data, dict) and "annotations" in data and "images" in data:
            boxes = read_coco(data, labels, image, default)
        else:
            raise InputError(
                f"{labels.name} is neither a GeoJSON FeatureCollection nor COCO JSON (images, annotations)."
            )
    else:
        raise InputError(f"{labels.name}: unknown annotation format (expected {', '.join(BOX_SUFFIXES)}).")
    return clip_boxes(boxes, *image_size(image))


def clip_boxes(boxes: list[Box], width: int, height: int) -> list[Box]:
    kept = []
    for b in boxes:
        x0, y0 = min(max(b.x0, 0.0), width), min(max(b.y0, 0.0), height)
        x1, y1 = min(max(b.x1, 0.0), width), min(max(b.y1, 0.0), height)
        if x1 > x0 and y1 > y0:
            kept.append(Box(x0, y0, x1, y1, b.label))
    return kept


def load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"{path.name} is not valid JSON ({err}).") from err


@dataclass(frozen=True)
class MaskFacts:
    """What a change mask says: its share of changed pixels, the changed ground area when
    the pixel size is known, and the box of its largest 8-connected changed region."""

    width: int
    height: int
    changed_percent: float
    changed_m2: float | None
    largest: tuple[int, int, int, int] | None  # pixels, end exclusive


def read_mask(path: Path, pixel_size_m: float | None = None) -> MaskFacts:
    """A change mask (GeoTIFF or PNG, any non-zero pixel is change: 0/255 and 0/1 both
    work). The ground area comes from the mask's georeference, else from ``pixel_size_m``."""
    from rschat.geo.io import read_raster
    from rschat.geo.vector import regions_of

    raster = read_raster(path)
    if raster.pixel_area_m2() is None and pixel_size_m:
        raster.gsd_m = float(pixel_size_m)
    mask = np.any(raster.data != 0, axis=0)
    _, regions = regions_of(mask, raster)
    return MaskFacts(
        width=raster.width,
        height=raster.height,
        changed_percent=100.0 * float(mask.mean()),
        changed_m2=raster.area_m2(mask),
        largest=regions[0].bbox if regions else None,
    )


def relative_or_absolute(path: Path, folder: Path) -> str:
    """How the output names an image: relative to the output file's folder when the image
    lies inside it (the data then moves with its images), else absolute (it then stays
    valid wherever the JSON is copied)."""
    path, folder = path.resolve(), folder.resolve()
    try:
        return path.relative_to(folder).as_posix()
    except ValueError:
        return os.fspath(path)
