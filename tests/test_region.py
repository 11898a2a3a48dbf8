"""Regions drawn on the map: reprojection, masks, and tools restricted to them."""

import json

import numpy as np
import pytest
from affine import Affine
from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import box as shapely_box
from shapely.geometry import mapping

from conftest import ASSETS, make_pair, rschat
from rschat.agent import Workspace, turn
from rschat.geo import InputError, read_raster
from rschat.geo.raster import Raster
from rschat.geo.region import footprint_wgs84, region_geometry, region_mask, to_raster_crs, to_wgs84

PAIR = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]


def lonlat_box(raster: Raster, x0: float, y0: float, x1: float, y1: float) -> dict:
    """A GeoJSON rectangle (EPSG:4326) around pixel box corners of a raster."""
    to_ll = Transformer.from_crs(raster.crs.to_wkt(), "EPSG:4326", always_xy=True)
    (ax, ay), (bx, by) = raster.transform * (x0, y0), raster.transform * (x1, y1)
    (lon0, lat0), (lon1, lat1) = to_ll.transform(ax, ay), to_ll.transform(bx, by)
    geom = shapely_box(min(lon0, lon1), min(lat0, lat1), max(lon0, lon1), max(lat0, lat1))
    return {"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {}, "geometry": mapping(geom)}]}


@pytest.mark.parametrize("epsg", [32617, 3857, 4326])
def test_round_trip_4326_to_raster_crs_and_back(epsg):
    scale = 1e-4 if epsg == 4326 else 10.0
    origin = (-80.5, 27.2) if epsg == 4326 else Transformer.from_crs(4326, epsg, always_xy=True).transform(-80.5, 27.2)
    r = Raster(
        np.zeros((1, 100, 100), np.uint8),
        crs=CRS.from_epsg(epsg),
        transform=Affine(scale, 0, origin[0], 0, -scale, origin[1]),
    )
    geom = region_geometry(footprint_wgs84(r))
    back = to_wgs84(to_raster_crs(geom, r), r)
    assert back.symmetric_difference(geom).area < 1e-6 * geom.area
    native = to_raster_crs(geom, r)
    assert native.area == pytest.approx(100 * 100 * scale * scale, rel=1e-3)


def test_mask_of_a_utm_rectangle_drawn_in_lonlat():
    before, _, _ = make_pair(crs="EPSG:32617", pixel=0.5, size=128)
    region = lonlat_box(before, 20, 30, 60, 90)
    mask = region_mask(region, before)
    ys, xs = np.nonzero(mask)
    # The lon/lat rectangle of a UTM rectangle differs from it by grid convergence: ~1 px.
    assert abs(xs.min() - 20) <= 1 and abs(xs.max() - 59) <= 1 and abs(ys.min() - 30) <= 1 and abs(ys.max() - 89) <= 1


def test_regions_refused_without_georeference_or_outside():
    plain = Raster(np.zeros((3, 10, 10), np.uint8))
    with pytest.raises(InputError, match="no georeference"):
        region_mask({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, plain)
    before, _, _ = make_pair()
    far = {"type": "Polygon", "coordinates": [[[10, 10], [10.1, 10], [10.1, 10.1], [10, 10]]]}
    with pytest.raises(InputError, match="does not overlap"):
        region_mask(far, before)
    with pytest.raises(InputError, match="longitude/latitude"):
        region_geometry(
            {"type": "Polygon", "coordinates": [[[500000, 3e6], [500100, 3e6], [500100, 3.1e6], [500000, 3e6]]]}
        )


def test_changed_area_in_region_equals_full_mask_clipped(settings):
    full_ws = Workspace(settings)
    list(turn(full_ws, "what changed?", uploads=PAIR))
    full = full_ws.results[-1].result
    before = full_ws.rasters["before"]
    region = lonlat_box(before, 0, 0, 256, 300)
    ws = Workspace(settings)
    ws.set_region(region)
    steps = list(turn(ws, "what changed inside the region I drew?", uploads=PAIR))
    clipped = ws.results[-1].result
    inside = region_mask(region, before)
    expected_m2 = before.area_m2(full.kept.mask & inside)
    assert clipped.data["changed_area_m2"] == pytest.approx(expected_m2)
    assert clipped.data["analysed_area_m2"] == pytest.approx(before.area_m2(inside & before.valid_mask()), rel=0.01)
    assert "drawn region" in " ".join(s.text for s in steps if s.kind == "plan")
    assert "region drawn on the map" in steps[-1].text


def test_segment_count_and_measure_in_a_region(settings, tmp_path):
    neon = read_raster(ASSETS.parents[1] / "tests" / "data" / "neon" / "OSBS_029.tif")
    region = lonlat_box(neon, 0, 0, 200, 200)
    ws = Workspace(settings)
    ws.add_raster("image", neon)
    ws.set_region(region)
    list(turn(ws, "how many trees are there?"))
    in_region = ws.results[-1].result.data["count"]
    list(turn(ws, "measure the region"))
    assert ws.results[-1].result.data["area_m2"] == pytest.approx(400, rel=0.03)  # 20 m x 20 m
    list(turn(ws, "how much of it is covered by trees?"))
    assert ws.results[-1].result.data["analysed_area_m2"] == pytest.approx(400, rel=0.03)
    ws.clear_prompts()
    list(turn(ws, "how many trees are there?"))
    assert 0 < in_region < ws.results[-1].result.data["count"]


def test_cli_region_flag(tmp_path):
    before = read_raster(PAIR[0])
    path = tmp_path / "region.geojson"
    path.write_text(json.dumps(lonlat_box(before, 0, 0, 256, 300)))
    proc = rschat(
        "ask",
        "--before",
        str(PAIR[0]),
        "--after",
        str(PAIR[1]),
        "--region",
        str(path),
        "--json",
        "what changed?",
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    step = json.loads(proc.stdout)["steps"][0]
    assert step["args"]["region"] is True and "region drawn on the map" in step["summary"]
    (tmp_path / "bad.geojson").write_text("{not json")
    proc = rschat("ask", "--image", str(PAIR[0]), "--region", str(tmp_path / "bad.geojson"), "what is here?")
    assert proc.returncode == 1 and "bad.geojson" in proc.stderr


def test_a_self_crossing_outline_is_repaired_when_small_and_refused_when_costly():
    """make_valid's cost grows with the crossings (a 300-corner double comb took 18 s, the
    server's light events have no time limit): a drawn bow-tie is repaired, a comb refused."""
    import time

    from rschat.geo.errors import InputError
    from rschat.geo.region import region_geometry

    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    assert region_geometry(bowtie).area == pytest.approx(0.5)
    teeth = [(x / 100, y) for i in range(100) for x, y in ((2 * i, 0), (2 * i + 1, 1))]
    comb = teeth + [(2, -0.5), (0, -0.5)]
    ring = comb + [(y, x) for x, y in comb] + [comb[0]]
    started = time.perf_counter()
    with pytest.raises(InputError, match="crosses itself"):
        region_geometry({"type": "Polygon", "coordinates": [ring]})
    assert time.perf_counter() - started < 1.0
