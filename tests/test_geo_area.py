"""Pixel areas against hand-computed truth in a projected CRS, EPSG:4326 and Web Mercator."""

import math

import numpy as np
import pytest
from affine import Affine
from rasterio.crs import CRS

from rschat.geo.raster import Raster

R_AUTHALIC = 6371007.2  # radius of the sphere with the WGS84 ellipsoid's area, m


def sphere_cell_area(lat0: float, lat1: float, dlon: float) -> float:
    """Area of a lon/lat cell on the authalic sphere: R^2 * dlon * (sin lat1 - sin lat0)."""
    return R_AUTHALIC**2 * math.radians(dlon) * abs(math.sin(math.radians(lat1)) - math.sin(math.radians(lat0)))


def raster(crs: str, transform: Affine, h: int = 10, w: int = 10) -> Raster:
    return Raster(np.zeros((1, h, w), np.uint8), crs=CRS.from_string(crs), transform=transform)


def test_utm_pixel_area_is_nominal():
    r = raster("EPSG:32617", Affine(0.5, 0, 400000, 0, -0.5, 3300000))
    assert r.area_m2(np.ones((10, 10), bool)) == pytest.approx(100 * 0.25)
    assert r.pixel_size_m() == pytest.approx(0.5)


def test_feet_based_projected_crs_converts_units():
    # EPSG:2263 (NY Long Island, US survey feet): a 10 ft pixel is 9.29 m2.
    r = raster("EPSG:2263", Affine(10, 0, 1000000, 0, -10, 200000))
    assert r.area_m2(np.ones((1, 1), bool)) == pytest.approx((10 * 0.3048006096) ** 2, rel=1e-4)


@pytest.mark.parametrize("lat", [0.0, 45.0, 60.0])
def test_geographic_pixel_area_matches_sphere_formula(lat: float):
    d = 0.001  # degrees per pixel, about 111 m at the equator
    r = raster("EPSG:4326", Affine(d, 0, 10.0, 0, -d, lat + 10 * d))
    per_row = r.pixel_area_m2()
    assert per_row.shape == (10, 1)
    top = sphere_cell_area(lat + 10 * d, lat + 9 * d, d)
    # The ellipsoid and the authalic sphere differ locally by up to ~0.7% between 0 and 60 degrees.
    assert per_row[0, 0] == pytest.approx(top, rel=1e-2)


def test_web_mercator_area_is_scaled_by_cos_squared_latitude():
    # At 60 N a 10 m Web Mercator pixel covers 10 * cos(60) = 5 m on the ground each way.
    y60 = 6378137.0 * math.log(math.tan(math.pi / 4 + math.radians(60) / 2))
    r = raster("EPSG:3857", Affine(10, 0, 0, 0, -10, y60 + 5))  # row 0 centred on 60 N
    assert r.pixel_area_m2()[0, 0] == pytest.approx(25.0, rel=1e-2)


def test_no_georeference_gives_no_area_unless_gsd_stated():
    r = Raster(np.zeros((1, 4, 4), np.uint8))
    assert r.area_m2(np.ones((4, 4), bool)) is None
    r.gsd_m = 2.0
    assert r.area_m2(np.ones((4, 4), bool)) == pytest.approx(64.0)
