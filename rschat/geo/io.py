"""Reading images into ``Raster`` and writing GeoTIFF / PNG.

The format is decided from the file's first bytes, not its name. TIFF and GeoTIFF go
through rasterio (CRS, transform, nodata, band descriptions, date tags); PNG and JPEG go
through Pillow (palette and EXIF orientation handled). The size limit is checked from
the header before any pixel is decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image, ImageOps, UnidentifiedImageError
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from rschat.geo.errors import InputError
from rschat.geo.raster import Raster

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PIL_MAGIC = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG"}
_DATE_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2})[-_]?(\d{2})?[-_]?(\d{2})?(?!\d)")


def sniff_format(path: Path) -> str:
    """'TIFF', 'PNG' or 'JPEG' from the magic bytes; InputError for anything else."""
    with path.open("rb") as fh:
        head = fh.read(8)
    if head[:4] in _TIFF_MAGIC:
        return "TIFF"
    for magic, name in _PIL_MAGIC.items():
        if head.startswith(magic):
            return name
    raise InputError(
        f"{path.name} is not a PNG, JPEG or (Geo)TIFF image (its content is not an image format rschat reads)."
    )


def date_from_name(name: str) -> dt.date | None:
    """A date in a file name: YYYYMMDD, YYYY-MM-DD or a lone YYYY (-> 1 July)."""
    for match in _DATE_IN_NAME.finditer(name):
        year, month, day = match.groups()
        try:
            if month and day:
                return dt.date(int(year), int(month), int(day))
            if not month:
                return dt.date(int(year), 7, 1)
        except ValueError:
            continue
    return None


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InputError(
            f"{path.name} is {width}x{height} pixels ({width * height / 1e6:.0f} MP), over the "
            f"limit of {max_pixels / 1e6:.0f} MP. Crop or downsample it, or raise "
            "RSCHAT_MAX_PIXELS."
        )


def _read_tiff(path: Path, max_pixels: int) -> Raster:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                _check_size(path, ds.width, ds.height, max_pixels)
                data = ds.read()
                georef = ds.crs is not None and not ds.transform.is_identity
                names = tuple(
                    _band_name(i, desc, ci.name, ds.count)
                    for i, (desc, ci) in enumerate(zip(ds.descriptions, ds.colorinterp, strict=True))
                )
                tags = ds.tags()
                return Raster(
                    data=data,
                    crs=ds.crs if georef else None,
                    transform=ds.transform if georef else None,
                    nodata=ds.nodata,
                    band_names=names,
                    date=_date_from_tags(tags) or date_from_name(path.stem),
                    name=path.stem,
                )
    except RasterioIOError as err:
        raise InputError(f"{path.name} could not be read as a TIFF: it looks corrupt ({err}).") from err


def _band_name(index: int, description: str | None, interp: str, count: int) -> str:
    """A band's description if set; else its colour interpretation when that names a
    colour (GDAL tags every band of a plain multi-band TIFF 'gray'); else 'band N'."""
    if description:
        return description
    if interp in ("red", "green", "blue", "alpha") or (interp == "gray" and count == 1):
        return interp
    return f"band {index + 1}"


def _date_from_tags(tags: dict[str, str]) -> dt.date | None:
    raw = tags.get("TIFFTAG_DATETIME") or tags.get("ACQUISITION_DATE")
    if not raw:
        return None
    match = re.match(r"(\d{4})[:\-](\d{2})[:\-](\d{2})", raw)
    return dt.date(*map(int, match.groups())) if match else None


def _read_pil(path: Path, max_pixels: int) -> Raster:
    try:
        with Image.open(path) as opened:
            _check_size(path, opened.width, opened.height, max_pixels)
            im: Image.Image = ImageOps.exif_transpose(opened)
            if im.mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            arr = np.asarray(im)
    except Image.DecompressionBombError as err:  # Pillow refuses before we can read the size
        raise InputError(
            f"{path.name} claims a size over the limit of {max_pixels / 1e6:.0f} MP (Pillow flags it as a "
            "possible decompression bomb); it was not decoded."
        ) from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise InputError(f"{path.name} could not be decoded: the file looks corrupt ({err}).") from err
    data = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    names = {1: ("gray",), 2: ("gray", "alpha"), 3: ("red", "green", "blue"), 4: ("red", "green", "blue", "alpha")}
    nodata = None
    if data.shape[0] in (2, 4):  # an alpha channel becomes a nodata mask, not a band
        alpha = data[-1]
        data = data[:-1].copy()
        if np.any(alpha == 0):
            data = data.astype(np.float32)
            data[:, alpha == 0] = np.nan
    return Raster(
        data=data,
        band_names=names.get(data.shape[0], ()),
        nodata=nodata,
        date=date_from_name(path.stem),
        name=path.stem,
    )


def read_raster(path: str | Path, max_pixels: int = 64_000_000, max_bytes: int | None = None) -> Raster:
    """Read a PNG, JPEG, TIFF or GeoTIFF into a Raster, refusing bad or oversized input."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path.name}: no such file.")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path.name} is empty.")
    if max_bytes is not None and size > max_bytes:
        raise InputError(f"{path.name} is {size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit.")
    fmt = sniff_format(path)
    raster = _read_tiff(path, max_pixels) if fmt == "TIFF" else _read_pil(path, max_pixels)
    if raster.data.dtype == bool or raster.data.dtype.kind not in "uif":
        raise InputError(f"{path.name} has an unsupported pixel type ({raster.data.dtype}).")
    return raster


def write_geotiff(path: Path, data: np.ndarray, like: Raster, nodata: float | None = None) -> Path:
    """Write (bands, H, W) or (H, W) data on ``like``'s grid as a Cloud-Optimised GeoTIFF
    (tiled, deflate, overviews), georeferenced when ``like`` is."""
    arr = data[None] if data.ndim == 2 else data
    profile = {
        "driver": "COG",
        "width": arr.shape[2],
        "height": arr.shape[1],
        "count": arr.shape[0],
        "dtype": arr.dtype.name if arr.dtype != bool else "uint8",
        "compress": "deflate",
        "nodata": nodata,
    }
    if like.georeferenced:
        profile.update(crs=like.crs, transform=like.transform)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(arr.astype(profile["dtype"]))
    return path


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3|4) uint8 array as PNG."""
    Image.fromarray(rgb).save(path, optimize=False)
    return path
