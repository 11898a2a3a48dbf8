"""Rasters warped for a web map: the preview in Web Mercator (EPSG:3857), the map's own
projection, so a picture lands exactly on its footprint, with its lat/lon bounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rasterio.crs import CRS
from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

from rschat.geo.io import write_png
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster

MERCATOR = CRS.from_epsg(3857)
MAX_SIDE = 1024  # map pictures are for looking at; analysis always uses full resolution


def mercator_png(raster: Raster, out: Path, max_side: int = MAX_SIDE) -> tuple[Path, list[list[float]]]:
    """The raster's preview warped to EPSG:3857 (transparent outside the image) and
    written to ``out``, with its [[south, west], [north, east]] in degrees."""
    if raster.crs is None or raster.transform is None:
        raise ValueError(f"'{raster.name}' has no georeference: it cannot be placed on a map")
    rgb = rgb_preview(raster)
    step = max(1, int(np.ceil(max(raster.height, raster.width) / max_side)))
    src = np.moveaxis(rgb[::step, ::step], -1, 0)
    src_transform = raster.transform @ raster.transform.scale(step, step)
    h, w = src.shape[1:]
    bounds = (src_transform.c, src_transform.f + src_transform.e * h, src_transform.c + src_transform.a * w,
              src_transform.f)  # fmt: skip
    dst_transform, dw, dh = calculate_default_transform(raster.crs, MERCATOR, w, h, *bounds)
    dst = np.zeros((4, dh, dw), dtype=np.uint8)
    planes = [(src[band], dst[band], Resampling.bilinear) for band in range(3)]
    planes.append((np.full((h, w), 255, dtype=np.uint8), dst[3], Resampling.nearest))  # alpha
    for source, target, resampling in planes:
        reproject(source, target, src_transform=src_transform, src_crs=raster.crs, dst_transform=dst_transform,
                  dst_crs=MERCATOR, resampling=resampling)  # fmt: skip
    write_png(out, np.moveaxis(dst, 0, -1))
    west, south, east, north = transform_bounds(
        MERCATOR, "EPSG:4326", dst_transform.c, dst_transform.f + dst_transform.e * dh,
        dst_transform.c + dst_transform.a * dw, dst_transform.f,
    )  # fmt: skip
    return out, [[south, west], [north, east]]
