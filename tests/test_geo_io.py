"""Reading images: formats, dtypes, nodata, previews, and refusing bad input."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

from rschat.geo import InputError, read_raster, rgb_preview
from rschat.geo.io import date_from_name


def write_tif(path: Path, data: np.ndarray, crs="EPSG:32616", nodata=None, descriptions=None) -> Path:
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "crs": crs,
        "transform": Affine(0.5, 0, 700000, 0, -0.5, 3700000),
        "nodata": nodata,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions:
            dst.descriptions = descriptions
    return path


def test_png_and_jpeg(tmp_path: Path):
    rgb = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "a.jpg")
    png = read_raster(tmp_path / "a.png")
    assert png.data.shape == (3, 20, 30) and not png.georeferenced
    np.testing.assert_array_equal(rgb_preview(png), rgb)
    assert read_raster(tmp_path / "a.jpg").data.shape == (3, 20, 30)


def test_uint16_panchromatic_preview_is_not_black(tmp_path: Path):
    pan = (np.random.default_rng(1).normal(400, 60, (1, 50, 50))).clip(0).astype(np.uint16)
    r = read_raster(write_tif(tmp_path / "pan.tif", pan))
    assert r.crs.to_epsg() == 32616 and r.pixel_size_m() == pytest.approx(0.5)
    prev = rgb_preview(r)
    assert prev.shape == (50, 50, 3) and prev.mean() > 60  # a plain cast to uint8 would be ~ (400 % 256)


def test_float_multiband_with_nodata_and_band_names(tmp_path: Path):
    data = np.random.default_rng(2).random((4, 16, 16)).astype(np.float32)
    data[:, :4, :] = -9999
    r = read_raster(write_tif(tmp_path / "ms.tif", data, nodata=-9999, descriptions=("red", "green", "blue", "nir")))
    assert r.band_names == ("red", "green", "blue", "nir")
    assert r.valid_mask().sum() == 12 * 16
    assert rgb_preview(r)[:4].max() == 0


def test_band_descriptions_with_their_numbers_are_read_by_their_names(tmp_path: Path):
    """'B04 red', 'B08 NIR', 'B11 SWIR1' (as a Sentinel-2 export writes them) were unknown:
    NDVI, water and land cover were refused on a 13-band stack that named every band."""
    from rschat.geo.bands import band_index, normalise_band_name

    said = {"B04 red": "red", "B8A narrow NIR": "nir_narrow", "red (B4)": "red", "band 8 - NIR": "nir",
            "B11_SWIR1": "swir1", "B05 red edge 1": "rededge1", "band 4": None, "B04 reddish": None}  # fmt: skip
    assert {name: normalise_band_name(name) for name in said} == said
    data = np.random.default_rng(3).random((4, 8, 8)).astype(np.float32)
    r = read_raster(write_tif(tmp_path / "s2.tif", data, descriptions=("B02 blue", "B03 green", "B04 red", "B08 NIR")))
    assert [band_index(r, b) for b in ("blue", "green", "red", "nir")] == [0, 1, 2, 3]


def test_a_fourth_band_tagged_alpha_that_holds_data_is_read_as_nir(tmp_path: Path):
    """GDAL tags band 4 alpha when a 4-band file is written as RGB (NAIP warped with its
    profile copied): its NIR went unused and one date of a pair lost all its lakes."""
    rng = np.random.default_rng(4)
    soft = np.full((32, 32), 255)
    soft[:4] = 0
    soft[4:6] = 128  # a mask with soft edges is still a mask
    visible = rng.integers(0, 200, (1, 32, 32)) + rng.integers(0, 40, (3, 32, 32))  # bands that vary together
    for band4, expect in ((rng.integers(0, 255, (32, 32)), "nir"), (np.full((32, 32), 255), "alpha"), (soft, "alpha")):
        data = np.concatenate([visible, band4[None]]).astype(np.uint8)
        r = read_raster(_tagged_rgba(write_tif(tmp_path / f"{expect}.tif", data)))
        assert r.band_names[3] == expect and (expect == "alpha" or "tags band 4 as alpha" in r.notes[0])
    # The tags come with any 4-band file written as RGB: a false-colour composite (Landsat's
    # SWIR1, NIR, red, green, whose bands 1-3 do not vary together) is read as its unwarped
    # date is, unnamed and said to be false colour, not as red, green, blue and NIR.
    false_colour = np.concatenate([rng.integers(0, 255, (3, 32, 32)), rng.integers(0, 255, (1, 32, 32))])
    r = read_raster(_tagged_rgba(write_tif(tmp_path / "landsat.tif", false_colour.astype(np.uint8))))
    assert r.band_names == ("band 1", "band 2", "band 3", "band 4") and "false-colour" in r.notes[0]


def _tagged_rgba(path: Path) -> Path:
    from rasterio.enums import ColorInterp

    with rasterio.open(path, "r+") as ds:
        ds.colorinterp = [ColorInterp.red, ColorInterp.green, ColorInterp.blue, ColorInterp.alpha]
    return path


def test_a_black_edge_without_nodata_is_no_data(tmp_path: Path):
    """A warped or cropped export's black fill (RSVQA's orthophoto tiles carry 2-22 black
    rows) read as pixels was the darkest, smoothest 'water' in the image; a black object
    inside the picture, or one black pixel on the edge, does not make black no data."""
    rng = np.random.default_rng(3)
    rgb = rng.integers(20, 235, (64, 64, 3), dtype=np.uint8)
    collared = rgb.copy()
    collared[:10] = 0
    Image.fromarray(collared).save(tmp_path / "collar.png")
    r = read_raster(tmp_path / "collar.png")
    assert r.nodata == 0 and r.valid_mask()[:10].sum() == 0 and r.valid_mask()[10:].all()
    assert "black edge" in r.notes[0] and "15.6%" in r.notes[0]
    tif = read_raster(write_tif(tmp_path / "collar.tif", np.moveaxis(collared, -1, 0)))
    assert tif.nodata == 0 and tif.valid_mask().sum() == 54 * 64
    inside = rgb.copy()
    inside[20:40, 20:40] = 0  # a black roof: not on the frame
    inside[0, 0] = 0  # and one black pixel on it
    Image.fromarray(inside).save(tmp_path / "inside.png")
    assert read_raster(tmp_path / "inside.png").nodata is None
    # with a collar, black inside the picture (a clipped lake) stays data, one grey level up
    both = inside.copy()
    both[:10] = 0
    Image.fromarray(both).save(tmp_path / "both.png")
    r = read_raster(tmp_path / "both.png")
    assert r.nodata == 0 and r.data.dtype == np.uint8 and r.valid_mask()[20:40, 20:40].all()
    assert r.valid_mask().sum() == 54 * 64 and int(r.data[:, 30, 30].max()) == 1
    declared = read_raster(write_tif(tmp_path / "declared.tif", np.moveaxis(collared, -1, 0), nodata=255))
    assert declared.nodata == 255  # a file's own nodata is kept


def test_corrupt_and_non_image_files_are_refused(tmp_path: Path):
    (tmp_path / "notes.png").write_text("this is not an image")
    with pytest.raises(InputError, match="not a PNG, JPEG"):
        read_raster(tmp_path / "notes.png")
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(good)
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:60])
    with pytest.raises(InputError, match="corrupt"):
        read_raster(tmp_path / "cut.png")
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_raster(tmp_path / "empty.tif")


def test_decompression_bomb_refused_from_header(tmp_path: Path):
    # A valid PNG header that claims 100000 x 100000 pixels, with almost no data behind it.
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b"")
    )
    (tmp_path / "bomb.png").write_bytes(bomb)
    with pytest.raises(InputError, match="over the limit"):
        read_raster(tmp_path / "bomb.png", max_pixels=64_000_000)


def test_size_limit_is_configurable(tmp_path: Path):
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.raises(InputError, match="RSCHAT_MAX_PIXELS"):
        read_raster(tmp_path / "a.png", max_pixels=5000)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("m_4709963_se_14_1_20090818", "2009-08-18"),
        ("pucallpa_1985", "1985-07-01"),
        ("s2_2020-05-03", "2020-05-03"),
        ("image", None),
    ],
)
def test_dates_from_file_names(name, expected):
    got = date_from_name(name)
    assert (got.isoformat() if got else None) == expected
