"""Regions drawn on the map: GeoJSON in EPSG:4326 -> geometry and pixel mask on a raster.

A region is any GeoJSON Polygon or MultiPolygon (a geometry, Feature or
FeatureCollection; several features are united). It is reprojected from EPSG:4326 into
the raster's CRS with pyproj and burnt into the raster's grid with rasterio (a pixel is
inside when its centre is). Rasters without georeference, and regions that miss the
raster, are refused with a message that says what to do instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer
from rasterio import features
from rasterio.transform import xy as rasterio_xy
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from rschat.geo.errors import InputError
from rschat.geo.raster import Raster


def region_geometry(region: dict[str, Any]) -> BaseGeometry:
    """The union of the polygons of a GeoJSON object (EPSG:4326 lon/lat)."""
    kind = region.get("type")
    if kind == "FeatureCollection":
        geoms = [shape(f["geometry"]) for f in region.get("features", []) if f.get("geometry")]
    elif kind == "Feature":
        geoms = [shape(region["geometry"])]
    else:
        geoms = [shape(region)]
    polys = [g for g in geoms if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not polys:
        raise InputError("The region holds no polygon: draw a rectangle or a polygon on the map.")
    geom = unary_union([shapely.make_valid(p) for p in polys])
    lon0, lat0, lon1, lat1 = geom.bounds
    if lon0 < -180 or lon1 > 180 or lat0 < -90 or lat1 > 90:
        raise InputError("The region's coordinates are not longitude/latitude (GeoJSON must be EPSG:4326).")
    return geom


def load_region(path: str | Path) -> dict[str, Any]:
    """Read a GeoJSON file of a region (for the CLI's --region)."""
    try:
        region = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{Path(path).name} is not a readable GeoJSON file ({err}).") from err
    region_geometry(region)  # validates
    return region


def to_raster_crs(geom: BaseGeometry, raster: Raster) -> BaseGeometry:
    assert raster.crs is not None
    transform = Transformer.from_crs("EPSG:4326", raster.crs.to_wkt(), always_xy=True).transform
    return shapely.transform(geom, lambda xy: np.column_stack(transform(xy[:, 0], xy[:, 1])))


def to_wgs84(geom: BaseGeometry, raster: Raster) -> BaseGeometry:
    assert raster.crs is not None
    transform = Transformer.from_crs(raster.crs.to_wkt(), "EPSG:4326", always_xy=True).transform
    return shapely.transform(geom, lambda xy: np.column_stack(transform(xy[:, 0], xy[:, 1])))


def region_mask(region: dict[str, Any], raster: Raster) -> np.ndarray:
    """(H, W) bool: pixels of ``raster`` whose centre lies inside the region."""
    if not raster.georeferenced:
        raise InputError(
            f"'{raster.name}' has no georeference, so a region drawn on the map cannot be placed on it. Draw a "
            "box on the image panel instead (or upload a GeoTIFF)."
        )
    geom = to_raster_crs(region_geometry(region), raster)
    mask = features.rasterize(
        [(mapping(geom), 1)], out_shape=(raster.height, raster.width), transform=raster.transform, fill=0, dtype="uint8"
    ).astype(bool)
    if not mask.any():
        raise InputError(
            f"The drawn region does not overlap '{raster.name}' (or is smaller than one of its "
            f"{raster.pixel_size_m():.1f} m pixels). Draw it over the image's footprint on the map."
        )
    return mask


def footprint_wgs84(raster: Raster) -> dict[str, Any]:
    """The raster's footprint as a GeoJSON polygon in EPSG:4326 (densified edges)."""
    assert raster.transform is not None
    h, w = raster.height, raster.width
    edge = np.linspace(0, 1, 21)
    cols = np.concatenate([edge * w, np.full(21, w), edge[::-1] * w, np.zeros(21)])
    rows = np.concatenate([np.zeros(21), edge * h, np.full(21, h), edge[::-1] * h])
    xs, ys = rasterio_xy(raster.transform, rows, cols, offset="ul")
    poly = shapely.Polygon(np.column_stack([xs, ys]))
    return mapping(to_wgs84(poly, raster))  # type: ignore[return-value]
