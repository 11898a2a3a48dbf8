"""The detect_changes tool on synthetic pairs with hand-computed truth."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from conftest import make_pair
from rschat.tools import REGISTRY
from rschat.tools.base import ToolContext

TOOL = REGISTRY["detect_changes"]


def run(before, after, tmp_path: Path):
    return TOOL.run({}, ToolContext(rasters={"before": before, "after": after}, out_dir=tmp_path))


def test_finds_the_new_building_with_area_in_m2(tmp_path: Path):
    before, after, truth = make_pair(pixel=0.5)
    res = run(before, after, tmp_path)
    mask = res.kept.mask
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.6
    d = res.data
    assert d["changed_pixels"] == mask.sum()
    assert d["changed_area_m2"] == pytest.approx(mask.sum() * 0.25)
    assert d["changed_area_ha"] == pytest.approx(d["changed_area_m2"] / 1e4)
    assert d["region_count"] >= 1 and d["largest_region_area_m2"] <= d["changed_area_m2"]
    assert "m2" in res.summary and "ha" in res.summary


def test_geotiff_and_geojson_keep_the_georeference(tmp_path: Path):
    before, after, truth = make_pair(crs="EPSG:32617")
    res = run(before, after, tmp_path)
    with rasterio.open(res.artifact("geotiff").path) as ds:
        assert ds.crs.to_epsg() == 32617 and ds.transform == before.transform
        np.testing.assert_array_equal(ds.read(1).astype(bool), res.kept.mask)
    fc = json.loads(res.artifact("geojson").path.read_text())
    lon, lat = np.array(fc["features"][0]["geometry"]["coordinates"][0]).mean(axis=0)
    # UTM 17N, E 500000 (the central meridian, -81), N 3000000 -> about 27.1 N.
    assert lon == pytest.approx(-81.0, abs=0.01) and lat == pytest.approx(27.12, abs=0.02)
    assert fc["features"][0]["properties"]["area_m2"] > 0


def test_without_georeference_area_is_null_and_geojson_is_in_pixels(tmp_path: Path):
    before, after, _ = make_pair(crs=None)
    res = run(before, after, tmp_path)
    assert res.data["changed_area_m2"] is None and res.data["changed_pixels"] > 0
    fc = json.loads(res.artifact("geojson").path.read_text())
    assert "pixel" in fc["coordinates"]
    with rasterio.open(res.artifact("geotiff").path) as ds:
        assert ds.crs is None


def test_no_change_gives_no_regions(tmp_path: Path):
    before, _, _ = make_pair()
    res = run(before, before, tmp_path)
    assert res.data["changed_fraction"] < 0.02
