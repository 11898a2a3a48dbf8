"""From masks to regions and GeoJSON.

Regions are 8-connected components of a mask. Their polygons are traced with
``rasterio.features.shapes`` in the raster's CRS and written as GeoJSON in EPSG:4326
(RFC 7946). A raster without georeference gets polygons in pixel coordinates (x right,
y down), and the file says so in its ``"coordinates"`` member.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio import features
from rasterio.crs import CRS
from scipy import ndimage
from shapely.geometry import MultiPolygon, mapping, shape

from rschat.geo.raster import Raster

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass
class Region:
    id: int
    pixels: int
    area_m2: float | None
    bbox: tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, exclusive end
    centroid: tuple[float, float]  # x, y in pixels


def label_regions(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected labels of an (H, W) bool mask: (labels int32, count)."""
    labels, count = ndimage.label(mask, structure=_EIGHT)
    return labels.astype(np.int32), int(count)


SKELETON_SIDE = 512  # pixels: thinning costs about side cubed (1024: 1.4 s, 2048: 12 s on a full blob)


def _thinnable(mask: np.ndarray, max_side: int) -> tuple[np.ndarray, int]:
    """The mask on blocks of ``step`` pixels when it is larger than ``max_side`` (a block is
    set when any pixel in it is, so a one-pixel river stays connected), and that step."""
    h, w = mask.shape
    step = max(1, -(-max(h, w) // max_side))
    if step == 1:
        return mask, 1
    padded = np.zeros((-(-h // step) * step, -(-w // step) * step), dtype=bool)
    padded[:h, :w] = mask
    return np.asarray(
        padded.reshape(padded.shape[0] // step, step, padded.shape[1] // step, step).any(axis=(1, 3))
    ), step


def skeleton_length(mask: np.ndarray, max_side: int = SKELETON_SIDE) -> float:
    """Length in pixels of a mask's skeleton (its centre lines). A mask larger than
    ``max_side`` is thinned on blocks of pixels and the length scaled back by the block's
    side: a length is one-dimensional. Without it an 8000 px blank image took minutes."""
    from skimage import morphology

    reduced, step = _thinnable(mask, max_side)
    return float(morphology.skeletonize(reduced).sum()) * step


def centre_line(mask: np.ndarray, max_side: int = SKELETON_SIDE) -> tuple[float, np.ndarray]:
    """(length of the main line of one connected mask, its width at each skeleton pixel),
    in pixels. The main line is the longest path along the skeleton, so a lake's ragged
    shore, which branches the skeleton, does not make the lake long; a channel keeps its
    width along its length, lakes joined by narrows do not."""
    from skimage import morphology

    reduced, step = _thinnable(mask, max_side)
    skeleton = morphology.skeletonize(reduced)
    widths = 2.0 * ndimage.distance_transform_edt(reduced)[skeleton] * step
    return _longest_path(skeleton) * step, widths


def _longest_path(skeleton: np.ndarray) -> float:
    """The longest shortest path along an 8-connected skeleton, in pixels: two sweeps (the
    farthest pixel from any pixel, then the farthest from that), exact on a tree."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    ys, xs = np.nonzero(skeleton)
    n = len(ys)
    if n < 2:
        return float(n)
    index = np.full(skeleton.shape, -1, dtype=np.int64)
    index[ys, xs] = np.arange(n)
    h, w = skeleton.shape
    rows, cols, steps = [], [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        y2, x2 = ys + dy, xs + dx
        inside = (y2 < h) & (x2 >= 0) & (x2 < w)
        j = index[y2[inside], x2[inside]]
        linked = j >= 0
        rows.append(np.nonzero(inside)[0][linked])
        cols.append(j[linked])
        steps.append(np.full(int(linked.sum()), float(np.hypot(dy, dx))))
    graph = csr_matrix((np.concatenate(steps), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    far = dijkstra(graph, directed=False, indices=0)
    start = int(np.argmax(np.where(np.isfinite(far), far, -1.0)))
    far = dijkstra(graph, directed=False, indices=start)
    return float(np.max(far[np.isfinite(far)]))


def regions_of(mask: np.ndarray, raster: Raster) -> tuple[np.ndarray, list[Region]]:
    """Connected regions of a mask with their pixel count, ground area and box, largest first."""
    labels, count = label_regions(mask)
    if count == 0:
        return labels, []
    ids = np.arange(1, count + 1)
    pixels = ndimage.sum_labels(np.ones_like(labels), labels, ids).astype(int)
    per_pixel = raster.pixel_area_m2()
    if per_pixel is None:
        areas: list[float | None] = [None] * count
    else:
        weights = np.broadcast_to(per_pixel, mask.shape)
        areas = [float(a) for a in ndimage.sum_labels(weights, labels, ids)]
    slices = ndimage.find_objects(labels)
    centroids = ndimage.center_of_mass(np.ones_like(labels), labels, ids)
    regions = [
        Region(
            id=int(i),
            pixels=int(p),
            area_m2=a,
            bbox=(s[1].start, s[0].start, s[1].stop, s[0].stop),
            centroid=(float(c[1]), float(c[0])),
        )
        for i, p, a, s, c in zip(ids, pixels, areas, slices, centroids, strict=True)
    ]
    regions.sort(key=lambda r: r.pixels, reverse=True)
    return labels, regions


def regions_geojson(labels: np.ndarray, regions: list[Region], raster: Raster, kind: str) -> dict:
    """A FeatureCollection of the regions' polygons (EPSG:4326, or pixels without georef)."""
    georef = raster.georeferenced
    transform = raster.transform if georef else Affine.identity()
    to_wgs84 = (
        Transformer.from_crs(raster.crs.to_wkt(), "EPSG:4326", always_xy=True).transform
        if georef and raster.crs is not None
        else None
    )
    by_id = {r.id: r for r in regions}
    polygons: dict[int, list] = {}
    for geom, value in features.shapes(labels, mask=labels > 0, transform=transform, connectivity=8):
        polygons.setdefault(int(value), []).append(shape(geom))
    feats = []
    for rid, parts in polygons.items():
        region = by_id[rid]
        geom = parts[0] if len(parts) == 1 else MultiPolygon(parts)
        if to_wgs84 is not None:
            geom = shapely.transform(geom, to_wgs84, interleaved=False)
        feats.append(
            {
                "type": "Feature",
                "geometry": mapping(geom),
                "properties": {
                    "kind": kind,
                    "region_id": rid,
                    "pixels": region.pixels,
                    "area_m2": None if region.area_m2 is None else round(region.area_m2, 2),
                    "area_ha": None if region.area_m2 is None else round(region.area_m2 / 1e4, 4),
                },
            }
        )
    collection: dict = {"type": "FeatureCollection", "features": feats}
    if not georef:
        collection["coordinates"] = PIXEL_COORDINATES
    return collection


# What a FeatureCollection of an image without georeference says of its coordinates.
PIXEL_COORDINATES = "pixel (x right, y down); the image has no georeference"
# GeoJSON without a "crs" member is read as lon/lat (RFC 7946): pixel coordinates landed off
# the globe in QGIS. GDAL reads this legacy member as a local engineering CRS, which QGIS
# leaves unprojected instead.
_PIXEL_CRS = {
    "type": "name",
    "properties": {
        "name": 'LOCAL_CS["image pixels (x right, y down), no georeference",LOCAL_DATUM["image",0],'
        'UNIT["pixel",1],AXIS["x",EAST],AXIS["y",SOUTH]]'
    },
}


def write_geojson(path: Path, collection: dict) -> Path:
    if collection.get("coordinates") == PIXEL_COORDINATES:
        collection = {**collection, "crs": _PIXEL_CRS}
    path.write_text(json.dumps(collection))
    return path


def pixels_to_lonlat(raster: Raster, xs: np.ndarray, ys: np.ndarray, offset: tuple[float, float] = (0.0, 0.0)) -> list:
    """``pixel_to_lonlat`` for many points in one transform: [[lon, lat], ...] (a count's
    thousands of boxes took 13,000 single transforms)."""
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if not raster.georeferenced or raster.transform is None or raster.crs is None:
        return np.stack([xs + offset[0], ys + offset[1]], axis=-1).tolist()
    return grid_lonlat(raster.crs, raster.transform, xs, ys)


def grid_lonlat(crs: CRS, transform: Affine, xs: np.ndarray, ys: np.ndarray) -> list:
    """[[lon, lat], ...] (EPSG:4326, 8 decimals) of pixel positions on a grid."""
    t = transform
    mx, my = t.a * xs + t.b * ys + t.c, t.d * xs + t.e * ys + t.f
    lon, lat = Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True).transform(mx, my)
    return np.round(np.stack([lon, lat], axis=-1), 8).tolist()


def lat_lon_text(lat: float, lon: float) -> str:
    """'33.63840 N, 84.47894 W' (5 decimals: about a metre)."""
    return f"{abs(lat):.5f} {'N' if lat >= 0 else 'S'}, {abs(lon):.5f} {'E' if lon >= 0 else 'W'}"


def pixel_to_lonlat(raster: Raster, offset: tuple[float, float] = (0.0, 0.0)):  # type: ignore[no-untyped-def]
    """A function (x, y) in pixels of ``raster`` -> [lon, lat] (EPSG:4326, 8 decimals),
    or, without georeference, -> [x, y] in pixels of the full image that ``raster`` was
    cropped from at ``offset`` (a crop's transform already includes its offset)."""
    transform = raster.transform if raster.georeferenced else None
    to_wgs = (
        Transformer.from_crs(raster.crs.to_wkt(), "EPSG:4326", always_xy=True).transform
        if transform is not None and raster.crs is not None
        else None
    )

    def where(x: float, y: float) -> list[float]:
        if transform is None or to_wgs is None:
            return [x + offset[0], y + offset[1]]
        mx, my = transform @ (x, y)
        lon, lat = to_wgs(mx, my)
        return [round(lon, 8), round(lat, 8)]

    return where
