"""Rasters warped for a web map: the preview in Web Mercator (EPSG:3857), the map's own
projection, so a picture lands exactly on its footprint, with its lat/lon bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.transform import from_bounds
from rasterio.warp import Resampling, reproject

from rschat.geo.errors import InputError
from rschat.geo.io import write_png
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster
from rschat.geo.region import outline_lonlat, pole_inside

MERCATOR = CRS.from_epsg(3857)
# The same sphere, with PROJ's +over: longitudes past 180 are kept, not wrapped, so a scene
# across the antimeridian is warped as one picture (179.5 .. 180.5 E), as the map draws it.
_MERCATOR_OVER = CRS.from_proj4(
    "+proj=merc +a=6378137 +b=6378137 +lat_ts=0 +lon_0=0 +x_0=0 +y_0=0 +k=1 +units=m +nadgrids=@null +over +no_defs"
)
_R = 6378137.0
MAX_LAT = 85.0511  # Web Mercator's edge, in degrees
MAX_SIDE = 1024  # map pictures are for looking at; analysis always uses full resolution


def _lonlat_extent(raster: Raster) -> tuple[float, float, float, float]:
    """(west, south, east, north) in degrees of the whole footprint (rotated and sheared
    grids included), cut to Web Mercator's latitudes; a scene around a pole spans all
    longitudes."""
    lon, lat = outline_lonlat(raster)
    west, east, south, north = float(lon.min()), float(lon.max()), float(lat.min()), float(lat.max())
    pole = pole_inside(raster)
    if pole:
        west, east = -180.0, 180.0
        south, north = (south, 90.0) if pole > 0 else (-90.0, north)
    south, north = max(south, -MAX_LAT), min(north, MAX_LAT)
    if south >= north:
        raise InputError(
            f"'{raster.name}' lies beyond {MAX_LAT:.0f} degrees of latitude, where the web map (Web Mercator) "
            "shows nothing; the tools still work on it."
        )
    return west, south, east, north


def _mercator_xy(lon: float, lat: float) -> tuple[float, float]:
    return _R * np.radians(lon), _R * np.log(np.tan(np.pi / 4 + np.radians(lat) / 2))


def mercator_png(raster: Raster, out: Path, max_side: int = MAX_SIDE) -> tuple[Path, list[list[float]]]:
    """The raster's preview warped to EPSG:3857 (transparent outside the image) and
    written to ``out``, with its [[south, west], [north, east]] in degrees (east may pass
    180 for a scene across the antimeridian, as Leaflet expects)."""
    if raster.crs is None or raster.transform is None:
        raise ValueError(f"'{raster.name}' has no georeference: it cannot be placed on a map")
    west, south, east, north = _lonlat_extent(raster)
    rgb = rgb_preview(raster)
    step = max(1, int(np.ceil(max(raster.height, raster.width) / max_side)))
    src = np.moveaxis(rgb[::step, ::step], -1, 0)
    src_transform = raster.transform @ Affine.scale(step, step)
    h, w = src.shape[1:]
    (x0, y0), (x1, y1) = _mercator_xy(west, south), _mercator_xy(east, north)
    # As many pixels as the source, in the footprint's own proportions, at most 2 x max_side a side.
    aspect = (x1 - x0) / (y1 - y0)
    dw = int(np.clip(round(np.sqrt(h * w * aspect)), 1, 2 * max_side))
    dh = int(np.clip(round(np.sqrt(h * w / aspect)), 1, 2 * max_side))
    dst_transform = from_bounds(x0, y0, x1, y1, dw, dh)
    dst = np.zeros((4, dh, dw), dtype=np.uint8)
    planes = [(src[band], dst[band], Resampling.bilinear) for band in range(3)]
    planes.append((np.full((h, w), 255, dtype=np.uint8), dst[3], Resampling.nearest))  # alpha
    for source, target, resampling in planes:
        reproject(source, target, src_transform=src_transform, src_crs=raster.crs, dst_transform=dst_transform,
                  dst_crs=_MERCATOR_OVER, resampling=resampling)  # fmt: skip
    write_png(out, np.moveaxis(dst, 0, -1))
    return out, [[south, west], [north, east]]
