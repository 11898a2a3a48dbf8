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


def _geometries(region: Any) -> list[BaseGeometry]:
    """The geometries of a GeoJSON geometry, Feature or FeatureCollection; InputError for
    anything shapely cannot build (a ring of fewer than 4 positions, text for numbers)."""
    if not isinstance(region, dict):
        raise InputError("The region is not a GeoJSON object: draw a rectangle or a polygon on the map.")
    try:
        kind = region.get("type")
        if kind == "FeatureCollection":
            return [shape(f["geometry"]) for f in region.get("features", []) if f.get("geometry")]
        return [shape(region["geometry"] if kind == "Feature" else region)]
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, shapely.errors.ShapelyError) as err:
        raise InputError(
            f"The region's GeoJSON is not a valid geometry ({type(err).__name__}: {str(err)[:120]}); a polygon needs "
            "a closed ring of at least 4 [longitude, latitude] number pairs."
        ) from err


# Corners read from a region: a country's outline has tens of thousands, a drawn polygon tens.
MAX_REGION_CORNERS = 200_000
# Corners of self-crossing polygons repaired (shapely.make_valid): the cost grows with the
# crossings, about the square of the corners (double combs: 128 corners 1.8 s, 300 18 s).
MAX_REPAIRED_CORNERS = 100


def region_geometry(region: dict[str, Any]) -> BaseGeometry:
    """The union of the polygons of a GeoJSON object (EPSG:4326 lon/lat)."""
    polys = [g for g in _geometries(region) if g.geom_type in ("Polygon", "MultiPolygon") and not g.is_empty]
    if not polys:
        raise InputError("The region holds no polygon: draw a rectangle or a polygon on the map.")
    corners = int(shapely.get_num_coordinates(polys).sum())
    if corners > MAX_REGION_CORNERS:
        raise InputError(f"The region has {corners:,} corners, over the {MAX_REGION_CORNERS:,} read: simplify it.")
    crossing = [p for p in polys if not p.is_valid]
    if sum(int(shapely.get_num_coordinates(p)) for p in crossing) > MAX_REPAIRED_CORNERS:
        raise InputError(
            "The region's outline crosses itself and has too many corners to repair: draw it again without "
            "crossing lines (or fix it in QGIS: Vector > Geometry Tools > Fix Geometries)."
        )
    geom = unary_union([shapely.make_valid(p) if not p.is_valid else p for p in polys])
    if geom.area == 0 or not np.all(np.isfinite(geom.bounds)):
        raise InputError(
            "The region's polygon has no area (its corners lie on one line or repeat): draw a polygon with at "
            "least three distinct corners."
        )
    lon0, lat0, lon1, lat1 = geom.bounds
    # Web maps give longitudes past +-180 east or west of the antimeridian (a wrapped world copy).
    if lon0 < -360 or lon1 > 360 or lat0 < -90 or lat1 > 90:
        raise InputError("The region's coordinates are not longitude/latitude (GeoJSON must be EPSG:4326).")
    return geom


def load_region(path: str | Path) -> dict[str, Any]:
    """Read a GeoJSON file of a region (for the CLI's --region)."""
    try:
        region = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:  # ValueError: bad JSON, or bytes that are not UTF-8 text
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


def outline_lonlat(raster: Raster, n: int = 21) -> tuple[np.ndarray, np.ndarray]:
    """Longitudes and latitudes of the raster's outline (``n`` points an edge, all four
    corners through its transform, so a rotated or sheared grid is outlined whole).
    Longitudes are unwrapped across the antimeridian: a footprint from 179.5 E to
    180.5 E stays one piece (179.5 .. 180.5) instead of spanning the globe."""
    assert raster.transform is not None and raster.crs is not None
    h, w = raster.height, raster.width
    edge = np.linspace(0, 1, n)
    cols = np.concatenate([edge * w, np.full(n, w), edge[::-1] * w, np.zeros(n)])
    rows = np.concatenate([np.zeros(n), edge * h, np.full(n, h), edge[::-1] * h])
    xs, ys = rasterio_xy(raster.transform, rows, cols, offset="ul")
    to_lonlat = Transformer.from_crs(raster.crs.to_wkt(), "EPSG:4326", always_xy=True)
    lon, lat = (np.asarray(v, dtype=float) for v in to_lonlat.transform(xs, ys))
    if np.ptp(lon) > 180:
        lon = np.where(lon < 0, lon + 360.0, lon)
    return lon, lat


def pole_inside(raster: Raster) -> int:
    """+1 when the raster covers the north pole, -1 the south pole, 0 neither (a polar
    stereographic scene centred on a pole has an outline that circles the globe)."""
    assert raster.transform is not None and raster.crs is not None
    to_raster = Transformer.from_crs("EPSG:4326", raster.crs.to_wkt(), always_xy=True)
    for sign in (1, -1):
        x, y = to_raster.transform(0.0, 90.0 * sign)
        if not (np.isfinite(x) and np.isfinite(y)):
            continue
        col, row = ~raster.transform @ (x, y)
        if 0 <= col <= raster.width and 0 <= row <= raster.height:
            return sign
    return 0


def footprint_wgs84(raster: Raster) -> dict[str, Any]:
    """The raster's footprint as a GeoJSON polygon in EPSG:4326 (densified edges;
    longitudes may run past 180 for a scene across the antimeridian, as web maps draw it)."""
    pole = pole_inside(raster)
    lon, lat = outline_lonlat(raster)
    if pole:  # the outline circles the pole: the footprint is the cap beyond its lowest latitude
        edge = float(lat.min()) if pole > 0 else float(lat.max())
        return mapping(shapely.box(-180.0, min(edge, 90.0 * pole), 180.0, max(edge, 90.0 * pole)))  # type: ignore[return-value]
    return mapping(shapely.Polygon(np.column_stack([lon, lat])))  # type: ignore[return-value]
