"""Rasters too large to hold in memory: read by windows, previewed from overviews.

A ``RasterSource`` is the header of a (Geo)TIFF plus its path; nothing is decoded until a
window is asked for. Every read opens the file anew, so tiles can be read from several
threads or Dask workers at once (a rasterio dataset must not be shared between threads).

A pair is read on the *before* image's grid: when the after image lies on another grid
(CRS, resolution or extent), a GDAL warped VRT reprojects each window on the fly, so the
alignment of two huge scenes never needs either of them whole in memory.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from rschat.geo.errors import InputError
from rschat.geo.raster import Raster

# Bytes of one strip read while decimating a scene to its overview.
STRIP_BYTES = 64 * 1024**2
# Largest internal block (or full-width row) of a scene read by windows: GDAL decodes a
# whole block to read any window of it, so a 500-byte TIFF of one 2000 x 2,000,000 px strip
# asked for 7.5 GiB. Real tiled or striped files have blocks of a few MB.
MAX_BLOCK_BYTES = 256 * 1024**2


@dataclass(frozen=True)
class RasterSource:
    path: Path
    width: int
    height: int
    count: int
    dtype: str
    crs: CRS | None
    transform: Affine | None
    nodata: float | None

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None and not self.transform.is_identity

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @contextlib.contextmanager
    def dataset(self) -> Iterator[rasterio.io.DatasetReader]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            try:
                with rasterio.open(self.path) as ds:
                    yield ds
            except RasterioIOError as err:
                raise InputError(f"{self.path.name} could not be read: {err}.") from err

    def overview(self, max_side: int) -> tuple[np.ndarray, Affine | None]:
        """The whole image decimated so its longer side is at most ``max_side``, with the
        transform of that coarser grid. From the file's own overviews when it has them;
        otherwise each cell takes the pixel at its centre (as ``tiles.GridSampler`` does),
        read strip by strip on two threads, so each block is decoded once, in parallel,
        and no more than two strips are ever in memory."""
        scale = max(1.0, max(self.width, self.height) / max_side)
        out_h, out_w = max(1, round(self.height / scale)), max(1, round(self.width / scale))
        transform = None
        if self.transform is not None:
            transform = self.transform @ Affine.scale(self.width / out_w, self.height / out_h)
        with self.dataset() as ds:
            if ds.overviews(1) or scale == 1.0:
                return ds.read(out_shape=(ds.count, out_h, out_w), resampling=Resampling.average), transform
            # Full-width strips of whole blocks, as many rows as fit STRIP_BYTES (two are in
            # memory at once): a 1,000,000 px wide file read 256 rows at a time took 2 GB.
            row_bytes = self.width * self.count * np.dtype(self.dtype).itemsize
            strip_rows = max(ds.block_shapes[0][0], min(256, max(1, STRIP_BYTES // row_bytes)))
        rows = ((np.arange(out_h) + 0.5) * self.height / out_h).astype(np.int64)
        cols = ((np.arange(out_w) + 0.5) * self.width / out_w).astype(np.int64)
        out = np.zeros((self.count, out_h, out_w), dtype=self.dtype)

        def strip(top: int) -> tuple[np.ndarray, np.ndarray]:
            picked = np.flatnonzero((rows >= top) & (rows < top + strip_rows))
            if not picked.size:
                return picked, np.zeros((self.count, 0, out_w), dtype=self.dtype)
            with self.dataset() as ds:
                data = ds.read(window=Window(0, top, self.width, min(strip_rows, self.height - top)))
            return picked, data[:, rows[picked] - top][:, :, cols]

        from rschat.geo.tiles import map_threaded

        for picked, values in map_threaded()(strip, list(range(0, self.height, strip_rows))):
            out[:, picked] = values
        return out, transform


def read_window(source: RasterSource, window: Window, band_names: tuple[str, ...]) -> Raster:
    """One window of a source as a Raster (its own transform), for tools that run their
    in-memory code tile by tile."""
    from rasterio.windows import transform as window_transform

    with source.dataset() as ds:
        data = ds.read(window=window)
    return Raster(
        data=data,
        crs=source.crs,
        transform=window_transform(window, source.transform) if source.transform is not None else None,
        nodata=source.nodata,
        band_names=band_names,
        name=source.path.stem,
    )


def area_mask(area: dict | None, source: RasterSource, window: Window, shape: tuple[int, int]) -> np.ndarray | None:
    """The pixels of a window inside ``area`` (GeoJSON in the source's CRS); None = all."""
    if area is None or source.transform is None:
        return None
    from rasterio.features import geometry_mask
    from rasterio.windows import transform as window_transform

    return geometry_mask([area], out_shape=shape, transform=window_transform(window, source.transform), invert=True)


def open_source(path: str | Path) -> RasterSource:
    """The header of a TIFF, or an InputError."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            with rasterio.open(path) as ds:
                georef = ds.crs is not None and not ds.transform.is_identity
                return RasterSource(
                    path=path,
                    width=ds.width,
                    height=ds.height,
                    count=ds.count,
                    dtype=ds.dtypes[0],
                    crs=ds.crs if georef else None,
                    transform=ds.transform if georef else None,
                    nodata=ds.nodata,
                )
        except RasterioIOError as err:
            raise InputError(f"{path.name} could not be read as a TIFF ({err}).") from err


def overview_raster(source: RasterSource, max_side: int, raster: Raster) -> Raster:
    """``raster`` (the header's names, date, notes) filled with a decimated read of the file."""
    data, transform = source.overview(max_side)
    return Raster(
        data=data,
        crs=source.crs,
        transform=transform,
        nodata=source.nodata,
        band_names=raster.band_names,
        date=raster.date,
        name=raster.name,
        notes=list(raster.notes),
    )


@dataclass(frozen=True)
class PairSource:
    """Two sources read window by window on the before image's grid."""

    before: RasterSource
    after: RasterSource
    # What to analyse: a polygon (GeoJSON geometry in the before grid's CRS) and a window
    # of the before grid (its bounding box, or a box drawn on the image); None = all.
    area: dict | None = None
    within: Window | None = None

    @property
    def extent(self) -> Window:
        return self.within or Window(0, 0, self.before.width, self.before.height)

    @property
    def warped(self) -> bool:
        b, a = self.before, self.after
        if not (b.georeferenced and a.georeferenced):
            return False
        assert b.transform is not None and a.transform is not None
        return not (
            b.crs == a.crs and (b.width, b.height) == (a.width, a.height) and b.transform.almost_equals(a.transform)
        )

    def check(self) -> None:
        """InputError when the pair cannot be put on one grid."""
        b, a = self.before, self.after
        if b.count != a.count:
            raise InputError(
                f"The pair has different bands: '{b.path.name}' has {b.count}, '{a.path.name}' has {a.count}."
            )
        if not self.warped and (b.width, b.height) != (a.width, a.height):
            raise InputError(
                f"The pair does not line up: '{b.path.name}' is {b.width}x{b.height} and '{a.path.name}' is "
                f"{a.width}x{a.height} pixels, without a georeference on both to match them by."
            )

    def read(self, window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(before, after, valid) for a window of the before grid: (bands, h, w) arrays in
        the files' own types and an (h, w) mask of pixels with data in both."""
        with self.before.dataset() as ds, warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NodataShadowWarning)  # nodata wins: as intended
            before = ds.read(window=window)
            valid = np.all(ds.read_masks(window=window) > 0, axis=0)
        with self.after.dataset() as ds, self._on_before_grid(ds) as src, warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NodataShadowWarning)
            after = src.read(window=window)
            valid &= np.all(src.read_masks(window=window) > 0, axis=0)
        for block, source in ((before, self.before), (after, self.after)):
            if block.dtype.kind == "f":
                valid &= np.all(np.isfinite(block), axis=0)
            if source.nodata is not None:  # also a black edge's 0, which the file does not declare
                valid &= ~np.all(block == source.nodata, axis=0)
        if self.area is not None and self.before.transform is not None:
            from rasterio.features import geometry_mask
            from rasterio.windows import transform as window_transform

            valid &= geometry_mask(
                [self.area],
                out_shape=valid.shape,
                transform=window_transform(window, self.before.transform),
                invert=True,
            )
        return before, after, valid

    @contextlib.contextmanager
    def _on_before_grid(self, ds: rasterio.io.DatasetReader) -> Iterator[rasterio.io.DatasetReader | WarpedVRT]:
        if not self.warped:
            yield ds
            return
        b = self.before
        # A black edge the file does not declare (source.nodata 0, found on reading) is no
        # data for the warp too: blended into its neighbours it would be a dark seam of data.
        fill = {} if self.after.nodata is None else {"src_nodata": self.after.nodata, "nodata": self.after.nodata}
        with WarpedVRT(
            ds,
            crs=b.crs,
            transform=b.transform,
            width=b.width,
            height=b.height,
            resampling=Resampling.bilinear,
            **fill,
        ) as vrt:
            yield vrt


class MaskWriter:
    """A single-band uint8 raster (a mask or a class map) written window by window, finished as a Cloud-Optimised
    GeoTIFF. Blocks go to a tiled GeoTIFF first (the COG driver cannot be written in
    pieces); ``close`` adds overviews and copies it to COG, which GDAL streams block by
    block, so no step holds the whole raster."""

    def __init__(self, path: Path, grid: RasterSource, nodata: int | None = None) -> None:
        self.path = path
        self._tmp = path.with_name(path.stem + ".part.tif")
        profile = {
            "driver": "GTiff",
            "width": grid.width,
            "height": grid.height,
            "count": 1,
            "dtype": "uint8",
            "tiled": True,
            "blockxsize": 512,
            "blockysize": 512,
            "BIGTIFF": "IF_SAFER",  # uncompressed: a scratch file, compressed once, into the COG
            "nodata": nodata,
        }
        if grid.georeferenced:
            profile.update(crs=grid.crs, transform=grid.transform)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            self._dst = rasterio.open(self._tmp, "w", **profile)

    def write(self, window: Window, block: np.ndarray) -> None:
        self._dst.write(block.astype(np.uint8), 1, window=window)

    def close(self) -> Path:
        from rasterio.shutil import copy as gdal_copy

        self._dst.close()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            gdal_copy(
                self._tmp,
                self.path,
                driver="COG",
                compress="deflate",
                overview_resampling="nearest",
                num_threads="ALL_CPUS",
                bigtiff="IF_SAFER",
            )
        self._tmp.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        self._dst.close()
        self._tmp.unlink(missing_ok=True)


def read_overview(path: Path, max_side: int) -> np.ndarray:
    """A decimated read of a whole file (nearest: for masks), from its overviews."""
    with rasterio.open(path) as ds:
        scale = max(1.0, max(ds.width, ds.height) / max_side)
        shape = (ds.count, max(1, round(ds.height / scale)), max(1, round(ds.width / scale)))
        return ds.read(out_shape=shape, resampling=Resampling.nearest)


def _described(source: RasterSource) -> Raster:
    """A Raster carrying the file's band names and date, with no pixels read yet."""
    from rschat.geo.io import _band_name, _date_from_tags, clean_name, date_from_name

    with source.dataset() as ds:
        names = tuple(
            _band_name(i, desc, ci.name, ds.count)
            for i, (desc, ci) in enumerate(zip(ds.descriptions, ds.colorinterp, strict=True))
        )
        date = _date_from_tags(ds.tags()) or date_from_name(source.path.stem)
    empty = np.broadcast_to(np.zeros((1, 1, 1), dtype=np.uint8), (source.count, 1, 1))
    return Raster(data=empty, band_names=names, date=date, name=clean_name(source.path.stem))


def _check_blocks(source: RasterSource) -> None:
    """Refuse a scene whose blocks, or rows, are too large to read by windows (see
    ``MAX_BLOCK_BYTES``), with how to make it readable."""
    itemsize = np.dtype(source.dtype).itemsize
    with source.dataset() as ds:
        block_h, block_w = ds.block_shapes[0]
        bands = source.count if ds.interleaving is not None and ds.interleaving.name == "PIXEL" else 1
    block = block_h * block_w * itemsize * bands
    row = source.width * source.count * itemsize
    if max(block, row) > MAX_BLOCK_BYTES:
        raise InputError(
            f"{source.path.name} ({source.width}x{source.height} pixels) stores its pixels in "
            + (
                f"blocks of {block_w}x{block_h} pixels, {block / 1024**2:,.0f} MB each"
                if block >= row
                else f"rows of {row / 1024**2:,.0f} MB"
            )  # fmt: skip
            + f": too large to read window by window (the limit is {MAX_BLOCK_BYTES / 1024**2:,.0f} MB). Save it tiled, "
            "e.g. `gdal_translate -co TILED=YES -co COMPRESS=DEFLATE in.tif out.tif`, and upload that."
        )


def read_scene(
    path: str | Path,
    *,
    max_pixels: int,
    max_bytes: int | None,
    tile_above: int,
    max_scene_pixels: int,
    overview_side: int,
    max_decoded_bytes: int | None = None,
) -> Raster:
    """Read an image for a session. Up to ``tile_above`` pixels, or any PNG/JPEG: whole,
    as ``read_raster`` does. A larger TIFF also keeps its ``RasterSource`` for tiled tools,
    and over ``max_pixels`` its in-memory pixels are an overview (with a note saying so)."""
    from rschat.geo.io import _band_reading, _check_decoded, black_collar_nodata, read_raster, sniff_format

    path = Path(path)

    def whole(size_limit: int | None = max_bytes) -> Raster:
        return read_raster(path, max_pixels=max_pixels, max_bytes=size_limit, max_decoded_bytes=max_decoded_bytes)

    if not (path.is_file() and path.stat().st_size > 0 and sniff_format(path) == "TIFF"):
        return whole()
    source = open_source(path)
    if source.pixels <= tile_above:
        return whole()
    if source.pixels > max_scene_pixels:
        raise InputError(
            f"{path.name} is {source.width}x{source.height} pixels ({source.pixels / 1e6:,.0f} MP), over the "
            f"limit of {max_scene_pixels / 1e6:,.0f} MP for tiled processing (RSCHAT_MAX_SCENE_PIXELS)."
        )
    _check_blocks(source)
    if source.pixels <= max_pixels:
        raster = whole(None)
    else:
        # The overview is decoded whole: bound it like any image (300 float64 bands of a
        # 2048 x 2048 overview would be 10 GB).
        scale = max(1.0, max(source.width, source.height) / overview_side)
        shape = (source.count, round(source.height / scale), round(source.width / scale))
        limit = max_decoded_bytes if max_decoded_bytes is not None else 2 * 1024**3
        _check_decoded(path, shape, np.dtype(source.dtype).itemsize, limit)
        raster = overview_raster(source, overview_side, _described(source))
        raster.band_names, band_notes = _band_reading(raster.name, raster.band_names, raster.data, raster.nodata)
        raster.notes += band_notes
        if raster.nodata is None:  # a black edge, as read_raster finds it on a whole image
            raster.data, raster.nodata, collar = black_collar_nodata(raster.data, raster.name)
            raster.notes += collar
        raster.notes.append(
            f"'{raster.name}' is {source.width}x{source.height} pixels ({source.pixels / 1e6:,.0f} MP): change "
            f"detection reads it tile by tile at full resolution; other tools work on a {raster.width}x"
            f"{raster.height} overview of it."
        )
    if source.nodata is None and raster.nodata == 0:
        # The black edge found on the pixels read holds for the file's tiles too.
        source = replace(source, nodata=0)
    raster.source = source
    return raster


def read_for_session(path: str | Path, settings: Any, tile_above: int | None = None) -> Raster:
    """``read_scene`` under a ``Settings``' limits (an upload, a CLI file, an eval or
    batch item); ``tile_above`` overrides the setting (rschat batch tiles everything)."""
    return read_scene(
        path,
        max_pixels=settings.max_pixels,
        max_bytes=settings.max_file_bytes,
        tile_above=settings.tile_above_pixels if tile_above is None else tile_above,
        max_scene_pixels=settings.max_scene_pixels,
        overview_side=settings.overview_side,
        max_decoded_bytes=settings.max_decoded_bytes,
    )
