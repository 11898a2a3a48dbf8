"""Reading images into ``Raster`` and writing GeoTIFF / PNG.

The format is decided from the file's first bytes, not its name. TIFF and GeoTIFF go
through rasterio (CRS, transform, nodata, band descriptions, date tags); PNG and JPEG go
through Pillow (palette and EXIF orientation handled). The size limit is checked from
the header before any pixel is decoded, so a decompression bomb costs nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
import warnings
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image, ImageOps, UnidentifiedImageError
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

from rschat.geo.bands import UNKNOWN_ORDER, alpha_holds_data, normalise_band_name, unnamed_four_bands
from rschat.geo.errors import InputError, TooLargeError
from rschat.geo.raster import Raster, connected_to_edge

_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PIL_MAGIC = {b"\x89PNG": "PNG", b"\xff\xd8\xff": "JPEG"}
_DATE_IN_NAME = re.compile(r"(?<!\d)((?:19|20)\d{2})[-_]?(\d{2})?[-_]?(\d{2})?(?!\d)")
# A CRS code just before a number: 'crs2056', 'EPSG_2100', 'srid-2000' are not years.
_CODE_BEFORE = re.compile(r"(crs|epsg|srid|utm|zone)[-_ :]?$", re.I)
_LONGEST_NAME = 80  # characters of a file name kept for display and derived names


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
    """A date in a file name: YYYYMMDD, YYYY-MM-DD or a lone YYYY (-> 1 July). Numbers
    that follow a CRS word (``crs2056``, ``EPSG_2100``) and years after this one are codes,
    not acquisition dates."""
    for match in _DATE_IN_NAME.finditer(name):
        year, month, day = match.groups()
        if _CODE_BEFORE.search(name[: match.start()]) or int(year) > dt.date.today().year:
            continue
        try:
            if month and day:
                return dt.date(int(year), int(month), int(day))
            if not month:
                return dt.date(int(year), 7, 1)
        except ValueError:
            continue
    return None


def clean_name(stem: str, longest: int = _LONGEST_NAME) -> str:
    """A file name fit to show in a chat line and to name things by: control characters
    (a newline would break a message or a CSV row) become spaces, and a name longer than
    ``longest`` characters is cut in the middle (both ends usually carry the meaning)."""
    name = "".join(" " if unicodedata.category(c).startswith("C") else c for c in stem).strip() or "image"
    if len(name) > longest:
        half = (longest - 1) // 2
        name = name[:half] + "…" + name[-half:]
    return name


def _check_size(path: Path, width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise TooLargeError(
            f"{path.name} is {width}x{height} pixels ({width * height / 1e6:.0f} MP), over the "
            f"limit of {max_pixels / 1e6:.0f} MP. Crop or downsample it, or raise "
            "RSCHAT_MAX_PIXELS."
        )


def decoded_bytes(width: int, height: int, bands: int, itemsize: int) -> int:
    """Memory an image takes once read: its samples plus the float32 working copy the
    tools make of them (previews, indices, land cover)."""
    return width * height * bands * (itemsize + 4)


def _check_decoded(path: Path, shape: tuple[int, int, int], itemsize: int, limit: int) -> None:
    """Refuse, from the header, an image whose decoded pixels would not fit ``limit``
    bytes: the pixel limit ignores bands and sample size."""
    bands, height, width = shape
    need = decoded_bytes(width, height, bands, itemsize)
    if need > limit:
        raise TooLargeError(
            f"{path.name} is {width}x{height} pixels x {bands} band(s) of {itemsize * 8}-bit samples: "
            f"{need / 1e9:.1f} GB in memory once decoded (with the float32 copy the tools work on), over the "
            f"limit of {limit / 1e9:.1f} GB. Keep fewer bands, crop or downsample it, or raise "
            "RSCHAT_MAX_DECODED_BYTES (in bytes)."
        )


def _read_tiff(path: Path, max_pixels: int, max_decoded: int) -> Raster:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                _check_size(path, ds.width, ds.height, max_pixels)
                itemsize = max(np.dtype(t).itemsize for t in ds.dtypes)
                _check_decoded(path, (ds.count, ds.height, ds.width), itemsize, max_decoded)
                data = ds.read()
                names = tuple(
                    _band_name(i, desc, ci.name, ds.count)
                    for i, (desc, ci) in enumerate(zip(ds.descriptions, ds.colorinterp, strict=True))
                )
                georef, notes = _georef_notes(path, ds.crs, ds.transform)
                names, band_notes = _band_reading(clean_name(path.stem), names, data, ds.nodata)
                nodata: float | None = ds.nodata
                collar: list[str] = []
                if nodata is None and "alpha" not in names:
                    data, nodata, collar = black_collar_nodata(data, clean_name(path.stem))
                return Raster(
                    data=data,
                    crs=ds.crs if georef else None,
                    transform=ds.transform if georef else None,
                    nodata=nodata,
                    band_names=names,
                    date=_date_from_tags(ds.tags()) or date_from_name(path.stem),
                    name=clean_name(path.stem),
                    notes=notes + band_notes + collar,
                )
    except RasterioIOError as err:
        raise InputError(f"{path.name} could not be read as a TIFF: it looks corrupt or truncated ({err}).") from err


def _georef_notes(path: Path, crs: CRS | None, transform: Affine) -> tuple[bool, list[str]]:
    """Whether the file's georeference is usable, and a note when it is set but is not:
    a transform with a pixel size of 0 (or a singular one) maps every pixel to one point,
    so every area would be 0 m2."""
    if crs is None or transform.is_identity:
        return False, []
    if not np.isfinite(transform.determinant) or abs(transform.determinant) < 1e-30:
        return False, [
            f"'{clean_name(path.stem)}' has a CRS ({crs.to_string()[:40]}) but its pixel size is 0 (a degenerate "
            "transform), so its georeference was ignored: areas are unknown unless you state the pixel size."
        ]
    return True, []


def _band_reading(
    name: str, names: tuple[str, ...], data: np.ndarray, nodata: float | None
) -> tuple[tuple[str, ...], list[str]]:
    """The band names to use and a note when they are a guess: four unnamed bands are read
    by ``bands.unnamed_four_bands`` (NIR fourth when bands 1-3 look visible); more than four,
    none named red, green and blue, are previewed as bands 1-3 (on Sentinel-2's order,
    coastal, blue, green)."""
    # 'B04' in a Sentinel-2 file's descriptions is red; in a Landsat 5/7 export 'B4' is NIR, so
    # B-numbers count only where the set looks like Sentinel-2's (B8A, or 12-13 bands).
    sentinel = "b8a" in {n.lower() for n in names} or len(names) >= 12
    known = {normalise_band_name(n) for n in names if sentinel or not re.fullmatch(r"[bB]\d{1,2}", n)}
    if names == ("red", "green", "blue", "alpha") and alpha_holds_data(data, nodata):
        # GDAL's red-green-blue-alpha tags come with any 4-band file written as RGB (a warp
        # with the profile copied), so they say nothing of the bands: read them as unnamed
        # ones. A Landsat SWIR1-NIR-red-green composite warped to UTM was compared, as red,
        # green, blue and NIR, with its own unwarped date read as false colour: 16.3% changed
        # against 8.7%.
        guessed, note = unnamed_four_bands(data, nodata, name)
        if guessed is None:
            return ("band 1", "band 2", "band 3", "band 4"), [note]
        return ("red", "green", "blue", "nir"), [
            f"'{name}' tags band 4 as alpha (transparency), but it holds many values, not a 0/255 mask: it is read "
            "as near-infrared (NAIP's order; GDAL tags the fourth band alpha when a 4-band file is written as RGB). "
            "If it is something else, say the band order."
        ]
    if len(names) == 4 and all(n.startswith("band ") for n in names):
        guessed, note = unnamed_four_bands(data, nodata, name)
        return guessed or names, [note]
    if len(names) <= 4 or {"red", "green", "blue"} <= known:
        return names, []
    # Many bands, none named red, green and blue: which is which cannot be guessed (bands 1-3
    # of a Sentinel-2 stack are coastal, blue, green), so nothing reads colours until told.
    return names, [
        f"'{name}' has {len(names)} bands without red, green and blue names: the {UNKNOWN_ORDER}, so the picture "
        "shows bands 1-3 as red, green and blue, and land cover and indices wait until you say it (e.g. 'the "
        "bands are coastal, blue, green, red, red edge 1, red edge 2, red edge 3, NIR, NIR narrow, water vapour, "
        "cirrus, SWIR1, SWIR2' for Sentinel-2 L1C, or 'the bands are B1, B2, ..., B12' in full)."
    ]


# An edge of pixels black in every band, with no nodata declared, is the fill a warp or a
# crop leaves (QGIS and GDAL exports of rotated or reprojected scenes, RSVQA's orthophoto
# tiles): read as data it is the darkest, smoothest "water" in the image (four of the 25
# RSVQA-HR tiles carry 2-22 black rows; one answered "is there water?" yes from them). It
# is told from a black object by covering part of the outer frame: at least this share of
# the frame's pixels, and at least one image side's worth of pixels in all.
COLLAR_FRAME_SHARE = 0.05


def black_collar_nodata(data: np.ndarray, name: str) -> tuple[np.ndarray, float | None, list[str]]:
    """(data, 0, note) for a colour image (3+ integer bands) with no nodata of its own
    whose edge is black in every band: 0 becomes its nodata, as GDAL's nodata = 0, but only
    the black connected to the edge is the fill. Black inside the picture (a clipped lake
    or shadow in a stretched export) stays data: its first band is raised to 1 in a copy,
    a change of one grey level that keeps the sample type (a float copy with NaN would be
    stretched for display where the other images are not). (data, None, []) otherwise."""
    if data.ndim != 3 or data.shape[0] < 3 or not np.issubdtype(data.dtype, np.integer):
        return data, None, []
    frame = np.concatenate([data[:, 0, :], data[:, -1, :], data[:, :, 0], data[:, :, -1]], axis=1)
    if np.count_nonzero(~frame.any(axis=0)) < COLLAR_FRAME_SHARE * frame.shape[1]:
        return data, None, []
    black = np.asarray(~data.any(axis=0), dtype=bool)
    edge = connected_to_edge(black)
    filled = int(np.count_nonzero(edge))
    if filled < max(data.shape[1:]) or filled == black.size:
        return data, None, []  # too little to be a fill, or a blank image (said as such by the tools)
    inside = black & ~edge
    if inside.any():
        data = data.copy()
        data[0][inside] = 1
    return (
        data,
        0,
        [
            f"'{name}' has a black edge (pixels 0 in every band, {100 * filled / black.size:.1f}% of the image) and "
            "declares no nodata: the edge is read as no data (as GDAL's nodata = 0), so it counts in no class or area."
        ],
    )


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


_CONVERTED = ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1")  # modes read as RGB(A)


def _pil_shape(im: Image.Image) -> tuple[tuple[int, int, int], int]:
    """(bands, H, W) and bytes per sample of a Pillow image once read as an array."""
    bands = (4 if "transparency" in im.info or im.mode == "PA" else 3) if im.mode in _CONVERTED else len(im.getbands())
    itemsize = 2 if im.mode.startswith("I;16") else 4 if im.mode in ("I", "F") else 1
    return (bands, im.height, im.width), itemsize


def _read_pil(path: Path, max_pixels: int, max_decoded: int) -> Raster:
    try:
        with Image.open(path) as opened:
            _check_size(path, opened.width, opened.height, max_pixels)
            _check_decoded(path, *_pil_shape(opened), max_decoded)
            im: Image.Image = ImageOps.exif_transpose(opened)
            if im.mode in _CONVERTED:
                im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
            arr = np.asarray(im)
    except Image.DecompressionBombError as err:  # Pillow refuses before we can read the size
        raise TooLargeError(
            f"{path.name} claims a size over the limit of {max_pixels / 1e6:.0f} MP (Pillow flags it as a "
            "possible decompression bomb); it was not decoded."
        ) from err
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise InputError(f"{path.name} could not be decoded: the file looks corrupt ({err}).") from err
    data = arr[None] if arr.ndim == 2 else np.moveaxis(arr, -1, 0)
    names = {1: ("gray",), 2: ("gray", "alpha"), 3: ("red", "green", "blue"), 4: ("red", "green", "blue", "alpha")}
    nodata: float | None = None
    notes: list[str] = []
    if data.shape[0] in (2, 4):  # an alpha channel becomes a nodata mask, not a band
        alpha = data[-1]
        data = data[:-1].copy()
        if np.any(alpha == 0):
            data = data.astype(np.float32)
            data[:, alpha == 0] = np.nan
    else:
        data, nodata, notes = black_collar_nodata(data, clean_name(path.stem))
    return Raster(
        data=data,
        band_names=names.get(data.shape[0], ()),
        nodata=nodata,
        date=date_from_name(path.stem),
        name=clean_name(path.stem),
        notes=notes,
    )


def read_raster(
    path: str | Path,
    max_pixels: int = 64_000_000,
    max_bytes: int | None = None,
    *,
    max_decoded_bytes: int | None = None,
) -> Raster:
    """Read a PNG, JPEG, TIFF or GeoTIFF into a Raster, refusing bad or oversized input.
    ``max_decoded_bytes`` None: the setting (RSCHAT_MAX_DECODED_BYTES), so every caller is
    bounded whether or not it passes its own."""
    if max_decoded_bytes is None:
        from rschat.config import load_settings

        max_decoded_bytes = load_settings().max_decoded_bytes
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path.name}: no such file.")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{path.name} is empty.")
    if max_bytes is not None and size > max_bytes:
        raise InputError(f"{path.name} is {size / 1e6:.0f} MB, over the {max_bytes / 1e6:.0f} MB limit.")
    fmt = sniff_format(path)
    read = _read_tiff if fmt == "TIFF" else _read_pil
    raster = read(path, max_pixels, max_decoded_bytes)
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
    elif like.gsd_m:  # a stated pixel size: no place on Earth, but GIS measures in metres
        profile.update(transform=Affine(like.gsd_m, 0.0, 0.0, 0.0, -like.gsd_m, 0.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(arr.astype(profile["dtype"]))
    return path


def write_png(path: Path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3|4) uint8 array as PNG. Light compression (zlib level 1): on a
    1024 px aerial overlay it is a quarter faster than Pillow's default (level 6), and
    the file is no bigger (imagery compresses little either way)."""
    Image.fromarray(rgb).save(path, optimize=False, compress_level=1)
    return path
