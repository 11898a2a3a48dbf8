"""A corpus of hostile inputs, generated (as torchgeo does) rather than committed.

``make_corpus(out_dir)`` writes every file into ``out_dir`` and returns {name: path}.
Everything is small on disk: the bombs are a few hundred KB that decode to gigabytes
(a zlib stream of zeros, a sparse GeoTIFF whose tiles are never written). Used by
tests/test_bad_inputs.py and by scripts/make_bad_inputs.py.
"""

from __future__ import annotations

import json
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning

# A texture that any tool can work on (noise plus a bright square), uint8 RGB.
_RNG = np.random.default_rng(0)


def _textured(h: int, w: int, bands: int = 3, dtype: str = "uint8") -> np.ndarray:
    img = _RNG.integers(60, 120, size=(bands, h, w)).astype(np.float64)
    img[:, h // 4 : h // 2, w // 4 : w // 2] += 100
    if dtype == "uint16":
        img *= 40
    return img.astype(dtype)


def _tif(path: Path, data: np.ndarray, crs: str | None = None, transform: Affine | None = None, **extra) -> Path:
    profile = {"driver": "GTiff", "count": data.shape[0], "height": data.shape[1], "width": data.shape[2]}
    profile |= {"dtype": data.dtype.name, "crs": crs, "transform": transform or Affine.identity(), **extra}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
    return path


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def zero_png(path: Path, width: int, height: int, channels: int = 3) -> Path:
    """An all-black PNG streamed row by row through zlib: tiny on disk, width*height*channels
    bytes when decoded, never held in memory here."""
    color_type = {1: 0, 3: 2}[channels]
    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + width * channels)  # filter byte + pixels
    parts = []
    rows_per_chunk = max(1, 8_000_000 // len(row))
    for start in range(0, height, rows_per_chunk):
        parts.append(comp.compress(row * min(rows_per_chunk, height - start)))
    parts.append(comp.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    body = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", b"".join(parts))
    path.write_bytes(body + _png_chunk(b"IEND", b""))
    return path


def _utm(x0: float = 500_000.0, y0: float = 5_000_000.0, pixel: float = 1.0) -> Affine:
    return Affine(pixel, 0, x0, 0, -pixel, y0)


def _bombs(d: Path) -> dict[str, Path]:
    sparse = d / "sparse_2000x2000x300_float64.tif"
    with rasterio.open(
        sparse, "w", driver="GTiff", width=2000, height=2000, count=300, dtype="float64", crs="EPSG:32632",
        transform=_utm(), tiled=True, blockxsize=512, blockysize=512, interleave="pixel", SPARSE_OK=True,
    ):  # fmt: skip
        pass  # no tile written: 156 KB of offsets for 9.6 GB of float64
    one_strip = d / "one_strip_20000x20000.tif"
    with rasterio.open(
        one_strip, "w", driver="GTiff", width=20_000, height=20_000, count=1, dtype="uint16", crs="EPSG:32632",
        transform=_utm(), tiled=False, blockysize=20_000, compress="deflate", SPARSE_OK=True,
    ):  # fmt: skip
        pass  # one compressed strip of 800 MB: reading any window of it decodes it all
    return {
        "one_strip.tif": one_strip,
        # Under the pixel limit (64 MP exactly) but blank: the skeletonize cost case of the issue.
        "black_8000x8000.png": zero_png(d / "black_8000x8000.png", 8000, 8000),
        # 900 MP: over the pixel limit, refused from the header.
        "bomb_30000x30000.png": zero_png(d / "bomb_30000x30000.png", 30_000, 30_000, channels=1),
        "sparse_float64.tif": sparse,
    }


def _truncated(d: Path) -> Path:
    whole = _tif(d / "whole.tif", _textured(256, 256), "EPSG:32632", _utm())
    path = d / "truncated.tif"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    whole.unlink()
    return path


def _shapes_and_values(d: Path) -> dict[str, Path]:
    nodata = np.full((1, 64, 64), -9999.0, dtype=np.float32)
    nan = np.full((3, 64, 64), np.nan, dtype=np.float32)
    inf = _textured(64, 64).astype(np.float32)
    inf[:, :16] = np.inf
    inf[:, 16:32] = -np.inf
    inf[:, 32:40] = np.nan
    wide = np.tile(np.linspace(0, 255, 100_000, dtype=np.uint8), (3, 1))
    Image.fromarray(wide).convert("RGB").save(d / "wide_100000x3.png")
    Image.fromarray(np.full((1, 1, 3), 128, np.uint8)).save(d / "one_pixel.png")
    return {
        "one_pixel.png": d / "one_pixel.png",
        "wide_100000x3.png": d / "wide_100000x3.png",
        "all_nodata.tif": _tif(d / "all_nodata.tif", nodata, "EPSG:32632", _utm(), nodata=-9999.0),
        "all_nan.tif": _tif(d / "all_nan.tif", nan, "EPSG:32632", _utm()),
        "inf_values.tif": _tif(d / "inf_values.tif", inf, "EPSG:32632", _utm()),
        "uint16_2band.tif": _tif(d / "uint16_2band.tif", _textured(64, 64, 2, "uint16"), "EPSG:32632", _utm()),
        "uint16_13band.tif": _tif(d / "uint16_13band.tif", _textured(64, 64, 13, "uint16"), "EPSG:32632", _utm()),
    }


def _colour_modes(d: Path) -> dict[str, Path]:
    rgb = Image.fromarray(np.moveaxis(_textured(64, 64), 0, -1))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    palette.save(d / "palette.png", transparency=0)
    rgb.convert("CMYK").save(d / "cmyk.jpg")
    return {"palette.png": d / "palette.png", "cmyk.jpg": d / "cmyk.jpg"}


def _georef(d: Path) -> dict[str, Path]:
    img = _textured(64, 64)
    rot = Affine.translation(500_000, 5_000_000) @ Affine.rotation(30) @ Affine.scale(1, -1)
    shear = Affine.translation(500_000, 5_000_000) @ Affine.shear(20, 0) @ Affine.scale(1, -1)
    return {
        "rotated.tif": _tif(d / "rotated.tif", img, "EPSG:32632", rot),
        "sheared.tif": _tif(d / "sheared.tif", img, "EPSG:32632", shear),
        # NSIDC north polar stereographic, 1 km pixels around the pole.
        "polar_3413.tif": _tif(d / "polar_3413.tif", img, "EPSG:3413", _utm(-32_000, 32_000, 1000)),
        # Swiss LV95; the name holds "2056", which is not a year.
        "swiss_crs2056.tif": _tif(d / "swiss_crs2056.tif", img, "EPSG:2056", _utm(2_600_000, 1_200_000, 2)),
        # Lon/lat crossing the antimeridian (179.5 E to 180.5 E).
        "antimeridian_4326.tif": _tif(d / "antimeridian_4326.tif", img, "EPSG:4326", _utm(179.5, -16.5, 1 / 64)),
        # A ground pixel size of 0 (degenerate transform).
        "zero_pixel.tif": _tif(d / "zero_pixel.tif", img, "EPSG:32632", Affine(0, 0, 500_000, 0, 0, 5_000_000)),
    }


def _pairs(d: Path) -> dict[str, Path]:
    img = _textured(64, 64)
    Image.fromarray(np.moveaxis(img, 0, -1)).save(d / "pair_size_a.png")
    Image.fromarray(np.moveaxis(_textured(48, 64), 0, -1)).save(d / "pair_size_b.png")
    return {
        "pair_size_a.png": d / "pair_size_a.png",
        "pair_size_b.png": d / "pair_size_b.png",
        "pair_crs_a.tif": _tif(d / "pair_crs_a.tif", img, "EPSG:32632", _utm(500_000, 5_000_000, 1)),
        # The same ground in lon/lat (UTM 32N 500000, 5000000 is 9 E, 45.1535 N), 1e-5 degree pixels.
        "pair_crs_b.tif": _tif(d / "pair_crs_b.tif", img, "EPSG:4326", _utm(9.0, 45.1535, 1e-5)),
        "pair_far_a.tif": _tif(d / "pair_far_a.tif", img, "EPSG:32632", _utm(500_000, 5_000_000)),
        "pair_far_b.tif": _tif(d / "pair_far_b.tif", img, "EPSG:32632", _utm(600_000, 5_100_000)),
    }


def _polygon(coords: list) -> dict:
    return {"type": "Polygon", "coordinates": [coords]}


def _regions(d: Path) -> dict[str, Path]:
    far = [[100.0, 10.0], [100.1, 10.0], [100.1, 10.1], [100.0, 10.0]]
    docs: dict[str, object] = {
        "region_outside.geojson": _polygon(far),
        "region_not_lonlat.geojson": _polygon([[500000, 5e6], [500100, 5e6], [500100, 5000100], [500000, 5e6]]),
        "region_three_coords.geojson": _polygon([[9.0, 45.0], [9.1, 45.0], [9.0, 45.0]]),
        "region_two_coords.geojson": _polygon([[9.0, 45.0], [9.1, 45.0]]),
        "region_strings.geojson": _polygon([["a", "b"], ["c", "d"], ["e", "f"], ["a", "b"]]),
        "region_point.geojson": {"type": "Point", "coordinates": [9.0, 45.0]},
    }
    out = {}
    for name, doc in docs.items():
        (d / name).write_text(json.dumps(doc))
        out[name] = d / name
    (d / "region_garbage.geojson").write_text("{not json")
    out["region_garbage.geojson"] = d / "region_garbage.geojson"
    return out


def _not_images(d: Path) -> dict[str, Path]:
    files = {
        "text_as.tif": b"hello, this is text\n",
        "html_as.png": b"<html><body>not a picture</body></html>",
        "zip_as.jpg": b"PK\x03\x04" + b"\x00" * 64,
        "empty.png": b"",
        "png_header_only.png": b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0)),
    }
    for name, content in files.items():
        (d / name).write_bytes(content)
    return {name: d / name for name in files}


def _hostile_names(d: Path) -> dict[str, Path]:
    png = Image.fromarray(np.moveaxis(_textured(64, 64), 0, -1))
    names = {
        "long_name.png": "x" * 250 + ".png",  # 254 bytes: a derived name with a prefix is too long
        "shell_name.png": "a b;$(touch pwned)'\"`é.png",
        "dash_name.png": "-rf.png",
        "newline_name.png": "two\nlines.png",
    }
    out = {}
    for key, name in names.items():
        png.save(d / name, format="PNG")
        out[key] = d / name
    return out


GENERATORS: tuple[Callable[[Path], dict[str, Path]], ...] = (
    _bombs, _shapes_and_values, _colour_modes, _georef, _pairs, _regions, _not_images, _hostile_names,
)  # fmt: skip


def make_corpus(out_dir: Path | str) -> dict[str, Path]:
    """Write every hostile file into ``out_dir``; {name: path}."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    corpus = {"truncated.tif": _truncated(d)}
    for make in GENERATORS:
        corpus |= make(d)
    return corpus
