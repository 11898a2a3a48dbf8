"""Putting two rasters of the same place on one pixel grid.

- Same size, and either no georeference or the same grid: used as they are.
- Both georeferenced on different grids (another CRS, resolution or extent): the second
  is reprojected onto the first's grid with rasterio; pixels it does not cover become
  nodata (NaN), and a footprint with no overlap is an error.
- Different sizes without a georeference (on either side): there is no way to know how
  they line up, so an error says so.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from rasterio.warp import Resampling, reproject

from rschat.geo.errors import InputError
from rschat.geo.raster import Raster


def _same_grid(a: Raster, b: Raster) -> bool:
    return (
        a.height == b.height
        and a.width == b.width
        and a.crs == b.crs
        and a.transform is not None
        and b.transform is not None
        and a.transform.almost_equals(b.transform)
    )


def _apart(a: Raster, b: Raster) -> bool:
    """Whether two georeferenced rasters' footprints miss each other on the ground (their
    bounds in longitude and latitude do not intersect)."""
    from rasterio.transform import array_bounds
    from rasterio.warp import transform_bounds

    boxes = [transform_bounds(r.crs, "EPSG:4326", *array_bounds(r.height, r.width, r.transform)) for r in (a, b)]
    (w1, s1, e1, n1), (w2, s2, e2, n2) = boxes
    return e1 < w2 or e2 < w1 or n1 < s2 or n2 < s1


def align_pair(before: Raster, after: Raster) -> tuple[Raster, Raster]:
    """Return (before, after) on before's grid, or raise InputError explaining why not.
    Two images of different places are told so first, whatever else differs."""
    if before.georeferenced and after.georeferenced and _apart(before, after):
        raise InputError(
            f"'{before.name}' and '{after.name}' do not overlap on the ground: they are images of different places "
            "(their footprints are disjoint), so there is nothing to compare. Upload two images of the same place."
        )
    if before.count != after.count:
        raise InputError(
            f"The pair has different bands: '{before.name}' has {before.count}, '{after.name}' has "
            f"{after.count}. Both images must carry the same bands in the same order."
        )
    if before.georeferenced and after.georeferenced:
        if _same_grid(before, after):
            return before, after
        return before, _reproject_onto(after, before)
    if _nearly_same_size(before, after):
        after = _on_corner_of(after, before)
    if (before.height, before.width) != (after.height, after.width):
        missing = [r.name for r in (before, after) if not r.georeferenced]
        raise InputError(
            f"The pair does not line up: '{before.name}' is {before.width}x{before.height} and "
            f"'{after.name}' is {after.width}x{after.height} pixels, and {', '.join(missing)} has "
            "no georeference to match them by. Upload two images of the same size covering the "
            "same area, or GeoTIFFs."
        )
    if before.georeferenced != after.georeferenced:
        geo, plain = (before, after) if before.georeferenced else (after, before)
        note = f"'{plain.name}' has no georeference; it was assumed to cover the same grid as '{geo.name}' (same size)."
        adopted = replace(plain, crs=geo.crs, transform=geo.transform, notes=[*plain.notes, note])
        return (before, adopted) if plain is after else (adopted, after)
    return before, after


# Without a georeference, sizes this close are the same ground exported with a different
# rounding (NAIP's 2018 and 2020 tiles of one quarter quad are 724 and 723 rows), not two
# framings: the pair is lined up on its top-left corner.
SAME_SIZE_PX = 2


def _nearly_same_size(a: Raster, b: Raster) -> bool:
    if a.georeferenced or b.georeferenced or (a.height, a.width) == (b.height, b.width):
        return False
    dh, dw = abs(a.height - b.height), abs(a.width - b.width)
    return dh <= SAME_SIZE_PX and dw <= SAME_SIZE_PX and max(dh / a.height, dw / a.width) <= 0.01


def _on_corner_of(src: Raster, ref: Raster) -> Raster:
    """``src`` cut or padded (with no data) to ``ref``'s size, sharing its top-left corner.
    Its sample type is kept (a float copy would be stretched for display, the other date
    not): the padding is its nodata, or NaN, or 0 made the nodata (as GDAL would)."""
    floating = np.issubdtype(src.data.dtype, np.floating)
    nodata = src.nodata if src.nodata is not None or floating else 0
    fill = np.nan if nodata is None else nodata
    data = np.full((src.count, ref.height, ref.width), fill, dtype=src.data.dtype)
    h, w = min(src.height, ref.height), min(src.width, ref.width)
    data[:, :h, :w] = src.data[:, :h, :w]
    padded = h < ref.height or w < ref.width
    note = (
        f"'{src.name}' is {src.width}x{src.height} pixels and '{ref.name}' {ref.width}x{ref.height}, neither "
        f"georeferenced: they were taken to cover the same ground from the same top-left corner (the pixels one "
        "lacks are no data). If they are framed differently, upload GeoTIFFs."
    )
    return replace(src, data=data, nodata=nodata if padded else src.nodata, notes=[*src.notes, note])


def _reproject_onto(src: Raster, ref: Raster) -> Raster:
    """Reproject ``src`` onto ``ref``'s grid (bilinear); uncovered pixels become NaN."""
    dst = np.full((src.count, ref.height, ref.width), np.nan, dtype=np.float32)
    source = src.data.astype(np.float32)
    if src.nodata is not None:
        source = np.where(source == src.nodata, np.nan, source)
    reproject(
        source=source,
        destination=dst,
        src_transform=src.transform,
        src_crs=src.crs,
        src_nodata=np.nan,
        dst_transform=ref.transform,
        dst_crs=ref.crs,
        dst_nodata=np.nan,
        resampling=Resampling.bilinear,
    )
    covered = np.all(np.isfinite(dst), axis=0)
    if covered.mean() == 0:
        raise InputError(
            f"'{src.name}' and '{ref.name}' do not overlap on the ground: their footprints are "
            "disjoint, so there is nothing to compare."
        )
    note = (
        f"'{src.name}' was reprojected onto the grid of '{ref.name}' "
        f"({ref.describe_georef()}); it covers {100 * covered.mean():.1f}% of that grid."
    )
    return Raster(
        data=dst,
        crs=ref.crs,
        transform=ref.transform,
        nodata=None,
        band_names=src.band_names,
        date=src.date,
        name=src.name,
        notes=[*src.notes, note],
    )
