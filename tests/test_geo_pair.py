"""Putting a pair on one grid: same grid, reprojection, and the errors."""

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import calculate_default_transform

from conftest import make_pair
from rschat.geo import InputError, align_pair
from rschat.geo.raster import Raster


def test_same_grid_is_used_as_is():
    before, after, _ = make_pair()
    b, a = align_pair(before, after)
    assert a is after and b is before


def test_different_crs_is_reprojected_onto_the_first_grid():
    before, after, _ = make_pair(crs="EPSG:32617", pixel=2.0, size=96)
    # Express the after image in Web Mercator (a different CRS and grid).
    dst_crs = CRS.from_epsg(3857)
    tr, w, h = calculate_default_transform(before.crs, dst_crs, 96, 96, *_bounds(before))
    from rasterio.warp import Resampling, reproject

    data = np.zeros((3, h, w), np.uint8)
    reproject(
        after.data,
        data,
        src_transform=after.transform,
        src_crs=after.crs,
        dst_transform=tr,
        dst_crs=dst_crs,
        resampling=Resampling.nearest,
    )
    merc = Raster(data, crs=dst_crs, transform=tr, name="after_3857")
    b, a = align_pair(before, merc)
    assert a.data.shape == before.data.shape and a.crs == before.crs
    assert "reprojected" in a.notes[0] and "of that grid" in a.notes[0]
    # The bright square lands where it was.
    assert np.nanmean(a.data[0, 44:60, 54:78]) > 180


def _bounds(r: Raster):
    t = r.transform
    return t.c, t.f + t.e * r.height, t.c + t.a * r.width, t.f


def test_different_sizes_without_georeference_is_an_error():
    a = Raster(np.zeros((3, 10, 10), np.uint8), name="a")
    b = Raster(np.zeros((3, 12, 10), np.uint8), name="b")
    with pytest.raises(InputError, match="does not line up"):
        align_pair(a, b)


def test_nearly_the_same_size_without_georeference_shares_the_top_left_corner():
    """JPEG exports of NAIP's 2018 and 2020 tiles (724 and 723 rows) were refused: sizes a
    pixel or two apart are the same ground, lined up on the corner, the missing row no data."""
    rng = np.random.default_rng(1)
    before = Raster(rng.integers(0, 255, (3, 724, 934)).astype(np.uint8), name="naip2018")
    after = Raster(before.data[:, :723].copy(), name="naip2020")
    b, a = align_pair(before, after)
    assert b is before and a.data.shape == (3, 724, 934)
    assert np.array_equal(a.data[:, :723], before.data[:, :723]) and not a.valid_mask()[723:].any()
    assert "same top-left corner" in a.notes[-1]
    wider = Raster(rng.integers(0, 255, (3, 724, 936)).astype(np.uint8), name="wider")
    assert align_pair(before, wider)[1].data.shape == (3, 724, 934)  # cut to the first image
    with pytest.raises(InputError, match="does not line up"):
        align_pair(before, Raster(before.data[:, :700], name="cropped"))  # a crop, not a rounding


def test_disjoint_footprints_are_an_error():
    before, after, _ = make_pair()
    far = Raster(after.data, crs=after.crs, transform=Affine(0.5, 0, 900000, 0, -0.5, 3000000), name="far")
    with pytest.raises(InputError, match="do not overlap"):
        align_pair(before, far)


def test_band_count_mismatch_is_an_error():
    a = Raster(np.zeros((3, 10, 10), np.uint8), name="a")
    b = Raster(np.zeros((4, 10, 10), np.uint8), name="b")
    with pytest.raises(InputError, match="different bands"):
        align_pair(a, b)


def test_images_of_different_places_are_told_so_before_their_bands():
    """A NAIP tile (4 bands) beside the NEON OSBS tile (3 bands), a new user's mistake, was
    answered 'the pair has different bands'; the real problem is that they do not overlap."""
    from conftest import ASSETS
    from rschat.geo.io import read_raster

    naip, osbs = read_raster(ASSETS / "naip_2009-08-18.tif"), read_raster(ASSETS / "OSBS_029.tif")
    with pytest.raises(InputError, match="do not overlap on the ground: they are images of different places"):
        align_pair(naip, osbs)
