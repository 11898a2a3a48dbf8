"""Ground area of pixels, in square metres, for any CRS.

- Projected CRS whose grid is meant for measuring (UTM, national grids, equal-area):
  the nominal cell area |det(transform)| times the square of the linear unit in metres.
- Geographic CRS (degrees, e.g. EPSG:4326) and Mercator-family CRS (Web Mercator
  EPSG:3857, whose "metres" are only true at the equator): the geodesic area of each
  pixel's footprint on the WGS84 ellipsoid. For a north-up grid this depends on the row
  only, so one value per row is computed; a rotated grid gets one value per pixel.

Written here rather than taken from a library because no library answers "area of this
pixel" for all three cases; pyproj supplies the geodesy.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from affine import Affine
from pyproj import CRS as ProjCRS
from pyproj import Geod, Transformer
from rasterio.crs import CRS

_GEOD = Geod(ellps="WGS84")


@lru_cache(maxsize=64)
def _needs_geodesic(wkt: str) -> tuple[bool, float]:
    """(whether areas must be geodesic, linear unit in metres) for a CRS."""
    crs = ProjCRS.from_wkt(wkt)
    if crs.is_geographic:
        return True, 1.0
    method = crs.coordinate_operation.method_name if crs.coordinate_operation else ""
    mercator = "mercator" in method.lower() and "transverse" not in method.lower()
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    return mercator, float(unit)


def _polygon_areas(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Geodesic areas (m2) of quadrilaterals given as (..., 4) corner arrays."""
    flat_lon = lon.reshape(-1, 4)
    flat_lat = lat.reshape(-1, 4)
    areas = np.array([abs(_GEOD.polygon_area_perimeter(lo, la)[0]) for lo, la in zip(flat_lon, flat_lat, strict=True)])
    return areas.reshape(lon.shape[:-1])


def pixel_area_grid(crs: CRS, transform: Affine, height: int, width: int) -> np.ndarray:
    """Area of each pixel in m2 as an array broadcastable to (height, width)."""
    geodesic, unit_m = _needs_geodesic(crs.to_wkt())
    if not geodesic:
        return np.full((1, 1), abs(transform.determinant) * unit_m**2)

    to_lonlat = Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True)
    north_up = transform.b == 0 and transform.d == 0
    if north_up:
        rows = np.arange(height, dtype=float)
        cols = np.zeros_like(rows) + width / 2.0  # area does not vary along a row
    else:
        # Rotated grids are rare; sample every `step` pixels (area varies slowly).
        step = max(1, max(height, width) // 64)
        rr, cc = np.mgrid[0:height:step, 0:width:step]
        rows, cols = rr.ravel().astype(float), cc.ravel().astype(float)
    # The four corners of each pixel, in pixel coordinates, then map, then lon/lat.
    dc = np.array([0.0, 1.0, 1.0, 0.0])
    dr = np.array([0.0, 0.0, 1.0, 1.0])
    pc = cols[:, None] + dc[None, :]
    pr = rows[:, None] + dr[None, :]
    x = transform.c + transform.a * pc + transform.b * pr
    y = transform.f + transform.d * pc + transform.e * pr
    lon, lat = to_lonlat.transform(x, y)
    areas = _polygon_areas(np.asarray(lon), np.asarray(lat))
    if north_up:
        return areas.reshape(height, 1)
    coarse = areas.reshape(rr.shape)
    return np.repeat(np.repeat(coarse, step, axis=0), step, axis=1)[:height, :width]


def area_text(m2: float | None) -> str:
    """'12,345 m2 (1.23 ha)', or what to do when the ground area is unknown."""
    if m2 is None:
        return "an unknown ground area (the image has no georeference; say the pixel size to get one)"
    return f"{m2:,.0f} m2 ({m2 / 1e4:,.2f} ha)"


def share_text(percent: float) -> str:
    """'12.6%', or '< 0.1%' for a share above 0 that rounds to nothing."""
    return "< 0.1%" if 0 < percent < 0.05 else f"{percent:.1f}%"
