"""The lite toolset on real imagery in tests/data (NEON, SpaceNet, Landsat; see ATTRIBUTION files)."""

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from rschat.geo import InputError, read_raster
from rschat.geo.bands import parse_band_order, spectral_index
from rschat.tools import REGISTRY
from rschat.tools.base import ToolContext

NEON = ROOT / "tests" / "data" / "neon"
SPACENET = ROOT / "tests" / "data" / "spacenet"
PUCALLPA = ROOT / "tests" / "data" / "pucallpa"


def run(tool: str, args: dict, rasters: dict, tmp_path: Path, previous=None):
    return REGISTRY[tool].run(args, ToolContext(rasters, tmp_path, previous=previous))


def neon_truth(name: str) -> list[tuple[float, float, float, float]]:
    if name == "SOAP_061.png":
        objs = ET.parse(NEON / "SOAP_061.xml").findall("object")
        return [tuple(float(o.find("bndbox").find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")) for o in objs]
    labels = "OSBS_029.csv" if name.startswith("OSBS") else name.replace(".tif", "_truth.csv")
    return [
        (float(r["xmin"]), float(r["ymin"]), float(r["xmax"]), float(r["ymax"]))
        for r in csv.DictReader((NEON / labels).open())
    ]


def test_tree_counts_on_three_neon_tiles_within_30_percent_mape(tmp_path, monkeypatch):
    """The rules (the fallback when the learned model is missing; tests/test_lite_models.py
    checks the learned model on the same tiles)."""
    from rschat.backends import lite_models

    monkeypatch.setenv("RSCHAT_LITE_MODELS", "none")
    lite_models.forget()
    errors = []
    for name in ("OSBS_029.tif", "SOAP_061.png", "2018_SJER_3_252000_4107000_image_477.tif"):
        raster = read_raster(NEON / name)
        res = run("count_objects", {"target": "tree"}, {"image": raster}, tmp_path)
        truth = neon_truth(name)
        errors.append(abs(res.data["count"] - len(truth)) / len(truth))
    assert np.mean(errors) <= 0.30, errors
    lite_models.forget()


def test_tree_detections_sit_on_trees_in_osbs(tmp_path, monkeypatch):
    """The rules' detections (the learned model's: tests/test_lite_models.py)."""
    from rschat.backends import lite_models

    monkeypatch.setenv("RSCHAT_LITE_MODELS", "none")
    lite_models.forget()
    raster = read_raster(NEON / "OSBS_029.tif")
    res = run("count_objects", {"target": "tree"}, {"image": raster}, tmp_path)
    truth = neon_truth("OSBS_029.tif")
    inside = [
        any(b[0] <= d.center[0] <= b[2] and b[1] <= d.center[1] <= b[3] for b in truth) for d in res.kept.detections
    ]
    assert np.mean(inside) >= 0.6
    fc = json.loads(res.artifact("geojson").path.read_text())
    lon, lat = fc["features"][0]["geometry"]["coordinates"]
    assert -83 < lon < -81 and 29 < lat < 30.5  # OSBS, Florida (UTM 17N)
    # per hectare of the pixels with data (the file flags its saturated sand, 0.3%, as no data)
    assert res.data["density_per_ha"] == pytest.approx(res.data["count"] / (0.16 * raster.valid_mask().mean()))
    lite_models.forget()


def test_building_count_on_spacenet_within_30_percent(tmp_path):
    res = run(
        "count_objects", {"target": "building"}, {"image": read_raster(SPACENET / "sample_geotiff.tif")}, tmp_path
    )
    assert abs(res.data["count"] - 43) / 43 <= 0.30
    assert "learned building segmenter" in res.method or "experimental" in res.limits[0]  # model, or the rules


def test_unreliable_targets_and_coarse_pixels_say_so(tmp_path):
    with pytest.raises(InputError, match="not reliable in lite mode"):
        run("count_objects", {"target": "vehicle"}, {"image": read_raster(NEON / "OSBS_029.tif")}, tmp_path)
    coarse = read_raster(PUCALLPA / "2020.tif")
    with pytest.raises(InputError, match="too coarse"):
        run("count_objects", {"target": "tree"}, {"image": coarse}, tmp_path)


def test_count_in_a_box_counts_fewer(tmp_path):
    raster = read_raster(NEON / "OSBS_029.tif")
    whole = run("count_objects", {"target": "tree"}, {"image": raster}, tmp_path).data["count"]
    part = run("count_objects", {"target": "tree", "box": [0, 0, 200, 200]}, {"image": raster}, tmp_path).data["count"]
    assert 0 < part < whole


def test_counts_in_boxes_that_tile_the_image_add_up_to_the_whole(tmp_path):
    """A box keeps the whole image's detections whose centres fall in it: four quadrants
    give the image's count, and a box never counts more than the image (a crop detected on
    its own found other crowns at its edges: 77 in a box against 65 in the image)."""
    raster = read_raster(NEON / "OSBS_029.tif")
    whole = run("count_objects", {"target": "tree"}, {"image": raster}, tmp_path).data["count"]
    h, w = raster.height, raster.width
    boxes = [[0, 0, w // 2, h // 2], [w // 2, 0, w, h // 2], [0, h // 2, w // 2, h], [w // 2, h // 2, w, h]]
    parts = [run("count_objects", {"target": "tree", "box": b}, {"image": raster}, tmp_path) for b in boxes]
    assert sum(p.data["count"] for p in parts) == whole
    big = run("count_objects", {"target": "tree", "box": [5, 5, 99999, 99999]}, {"image": raster}, tmp_path)
    assert big.data["count"] <= whole
    for part in parts:  # boxes in the crop's pixels
        assert all(0 <= d.box[0] <= d.box[2] <= w // 2 + 1 for d in part.kept.detections)


def test_a_large_images_no_data_edge_takes_the_median_colour(monkeypatch):
    """Over NEAREST_FILL_MAX_PX the nearest-pixel fill's index planes would cost 8 bytes a
    pixel (512 MB at 64 MP): the edge takes the median colour of the data instead."""
    from rschat.tools import count_detect

    rgb = np.full((40, 40, 3), 100, np.uint8)
    rgb[:10] = 0
    valid = rgb.any(axis=-1)
    monkeypatch.setattr(count_detect, "NEAREST_FILL_MAX_PX", 100)
    filled = count_detect._filled(rgb, valid)
    assert (filled[:10] == 100).all() and (rgb[:10] == 0).all()  # a copy, the input untouched


def test_objects_on_no_data_are_not_counted(tmp_path):
    """A warp's black edge held 3 of 6 'buildings' on an RSVQA tile: detections whose
    centre is on no data are dropped, and the answer says how much was no data."""
    from dataclasses import replace

    raster = read_raster(NEON / "OSBS_029.tif")
    edged = raster.data.copy()
    edged[:, :100] = 0
    with_edge = replace(raster, data=edged, nodata=0)
    result = run("count_objects", {"target": "tree"}, {"image": with_edge}, tmp_path)
    assert all(d.center[1] >= 100 for d in result.kept.detections)
    assert any(n.startswith("25.0% of the image is no data") for n in result.notes)
    whole = run("count_objects", {"target": "tree"}, {"image": raster}, tmp_path)
    assert 0 < result.data["count"] < whole.data["count"]
    # the share is the counted area's: a box over the data has none, a box across the edge half
    clear = run("count_objects", {"target": "tree", "box": [0, 200, 400, 400]}, {"image": with_edge}, tmp_path)
    assert not any("no data" in n for n in clear.notes)
    across = run("count_objects", {"target": "tree", "box": [0, 0, 400, 200]}, {"image": with_edge}, tmp_path)
    assert any(n.startswith("50.0% of the box is no data") for n in across.notes)


def test_the_largest_counted_building_is_given_in_m2(tmp_path):
    from rschat.tools.base import Reading

    raster = read_raster(SPACENET / "sample_geotiff.tif")
    result = run("count_objects", {"target": "building"}, {"image": raster}, tmp_path)
    text = REGISTRY["count_objects"].answer(result, Reading("src", focus="largest"))
    big = max(result.kept.detections, key=lambda d: d.area_m2)
    assert text.startswith(
        f"The largest of the {result.data['count']} buildings covers {big.area_m2:,.0f} m2 (footprint"
    )
    # where it is, so it can be found on a map ("where is the largest building? give lat/lon")
    import re

    from rschat.geo.vector import pixels_to_lonlat

    ((lon, lat),) = pixels_to_lonlat(raster, [big.center[0]], [big.center[1]])
    assert f"centred at {lat:.5f} N, {-lon:.5f} W" in text
    assert re.search(r", in the (north|south|centre|east|west)[\w-]* of the whole image", text)
    text = REGISTRY["count_objects"].answer(result, Reading("src", focus="smallest"))
    least = min(d.area_m2 for d in result.kept.detections)
    assert text.startswith(f"The smallest of the {result.data['count']} buildings covers {least:,.0f} m2 (footprint")


def test_water_segmentation_follows_the_river(tmp_path):
    raster = read_raster(PUCALLPA / "2020.tif")
    assert raster.band_names == ("SWIR1", "NIR", "red", "green")
    res = run("segment", {"target": "water"}, {"image": raster}, tmp_path)
    water = res.kept.landcover.mask("water")
    mndwi = spectral_index(raster, "mndwi") > 0.1
    iou = (water & mndwi).sum() / (water | mndwi).sum()
    assert iou > 0.6
    assert res.data["water_area_ha"] == pytest.approx(res.data["water_area_m2"] / 1e4)
    assert 5 < res.data["water_percent"] < 40
    shares = sum(
        res.data[f"{c}_percent"]
        for c in ("water", "trees", "low_vegetation", "bare_soil", "built_up", "shadow", "cloud")
    )
    assert shares == pytest.approx(100.0)
    assert "ndvi" in res.method and "mndwi" in res.method


def test_rgb_segmentation_finds_vegetation_on_neon(tmp_path):
    res = run("segment", {"target": "vegetation"}, {"image": read_raster(NEON / "SOAP_061.png")}, tmp_path)
    assert res.data["vegetation_percent"] > 60  # a conifer stand with green undergrowth
    assert "RGB only" in res.method


def test_measure_a_box_in_utm(tmp_path):
    raster = read_raster(NEON / "OSBS_029.tif")  # 0.1 m pixels
    res = run("measure", {"box": [10, 20, 110, 70]}, {"image": raster}, tmp_path)
    assert res.data["area_m2"] == pytest.approx(10 * 5)
    assert res.data["perimeter_m"] == pytest.approx(2 * (10 + 5))
    assert res.data["extent_x_m"] == pytest.approx(10) and res.data["extent_y_m"] == pytest.approx(5)


def test_measure_needs_a_scale(tmp_path):
    raster = read_raster(NEON / "SOAP_061.png")
    with pytest.raises(InputError, match="pixel size"):
        run("measure", {"box": [0, 0, 10, 10]}, {"image": raster}, tmp_path)
    raster.gsd_m = 0.5
    assert run("measure", {"box": [0, 0, 10, 10]}, {"image": raster}, tmp_path).data["area_m2"] == pytest.approx(25)


def test_measure_the_largest_water_body(tmp_path):
    raster = read_raster(PUCALLPA / "2020.tif")
    seg = run("segment", {"target": "water"}, {"image": raster}, tmp_path)
    res = run("measure", {"what": "largest_region"}, {"image": raster}, tmp_path, previous=seg)
    assert res.data["area_m2"] == pytest.approx(seg.data["water_largest_area_m2"], rel=1e-6)


def test_describe_scene_names_the_river(tmp_path):
    res = run("describe_scene", {}, {"image": read_raster(PUCALLPA / "2020.tif")}, tmp_path)
    assert "river" in res.summary and "crosses" in res.summary
    assert "mostly" in res.summary


def test_time_series_table_plot_and_trend(tmp_path):
    stack = {f"t{i + 1}": read_raster(PUCALLPA / f"{y}.tif") for i, y in enumerate((1985, 2000, 2020))}
    res = run("analyze_timeseries", {"index": "mndwi"}, stack, tmp_path)
    rows = res.kept.rows
    assert [r["date"][:4] for r in rows] == ["1985", "2000", "2020"]
    assert res.artifact("plot").path.stat().st_size > 5000
    table = list(csv.DictReader(res.artifact("table").path.open()))
    assert len(table) == 3 and float(table[0]["mean"]) == pytest.approx(rows[0]["mean"])
    assert "trend_per_year" in res.data and 0 < res.data["first_water_percent"] < 60
    with pytest.raises(InputError, match="three or more"):
        run("analyze_timeseries", {}, {"t1": stack["t1"], "t2": stack["t2"]}, tmp_path)


S2 = ["coastal", "blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir_narrow", "water_vapour",
      "cirrus", "swir1", "swir2"]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "bands"),
    [
        ("the bands are SWIR1, NIR, red, green", ["swir1", "nir", "red", "green"]),
        ("Band order: red, green, blue and NIR", ["red", "green", "blue", "nir"]),
        ("the bands are banana, cherry", None),
        # Sentinel-2 L1C in full: multi-word names are one band each, B-numbers are Sentinel-2's
        (
            "the bands are coastal, blue, green, red, red edge 1, red edge 2, red edge 3, nir, nir narrow, water vapour, "
            "cirrus, swir1, swir2",
            S2,
        ),
        ("the bands are B1, B2, B3, B4, B5, B6, B7, B8, B8A, B9, B10, B11, B12. what is the mean NDVI?", S2),
        ("the bands are red, green, blue, how much is water?", ["red", "green", "blue"]),
    ],
)
def test_band_order_from_text(text, bands):
    assert parse_band_order(text) == bands


def test_many_unnamed_bands_wait_for_their_names(tmp_path):
    """A 13-band Sentinel-2 stack without names had its land cover read from bands 1-3
    (coastal, blue, green) as red, green and blue; now it is refused until named."""
    import rasterio
    from affine import Affine

    from rschat.agent import Workspace, turn
    from rschat.config import Settings

    rng = np.random.default_rng(0)
    data = rng.uniform(0.02, 0.3, (13, 40, 40)).astype(np.float32)
    path = tmp_path / "s2.tif"
    with rasterio.open(path, "w", driver="GTiff", width=40, height=40, count=13, dtype="float32",
                       crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 5100000)) as dst:  # fmt: skip
        dst.write(data)
    ws = Workspace(Settings(work_dir=tmp_path / "work"))
    try:
        refused = list(turn(ws, "what is the land cover?", uploads=[path]))[-1]
        assert not refused.answered and "band order is unknown" in refused.text
        list(turn(ws, "the bands are B1, B2, B3, B4, B5, B6, B7, B8, B8A, B9, B10, B11, B12"))
        assert list(turn(ws, "what is the mean NDVI?"))[-1].answered
    finally:
        ws.close()


def test_time_series_of_an_ndvi_product(tmp_path):
    import datetime as dt

    from rschat.geo.raster import Raster

    stack = {}
    for i, value in enumerate((0.2, 0.4, 0.6, 0.8)):
        data = np.full((1, 8, 8), value, dtype=np.float32)
        data[0, 0, 0] = np.nan  # a cloud-masked pixel
        stack[f"t{i + 1}"] = Raster(data, band_names=("NDVI",), date=dt.date(2020 + i, 6, 1))
    res = run("analyze_timeseries", {"index": "ndvi"}, stack, tmp_path)
    assert res.data["first_mean"] == pytest.approx(0.2) and res.data["last_mean"] == pytest.approx(0.8)
    assert res.data["trend_per_year"] == pytest.approx(0.2, rel=0.01)


def test_single_band_images_are_not_classified_or_tree_counted(tmp_path):
    pan = read_raster(SPACENET / "sample_geotiff.tif")  # panchromatic, 1 band
    for tool, args in (("segment", {}), ("count_objects", {"target": "tree"})):
        with pytest.raises(InputError, match="band"):
            run(tool, args, {"image": pan}, tmp_path)
    # described by its grid and values, with what can be asked of it, not a land cover
    described = run("describe_scene", {}, {"image": pan}, tmp_path)
    assert "1-band image" in described.summary and described.data.get("trees_percent") is None


def test_a_count_on_a_pair_says_which_date_it_counted(tmp_path):
    """LEVIR's before and after files share a name: the scope names the date instead."""
    raster = read_raster(NEON / "OSBS_029.tif")
    result = run("count_objects", {"target": "tree", "image": "after"}, {"before": raster, "after": raster}, tmp_path)
    assert "in the whole after image 'OSBS_029'" in result.summary
    boxed = run(
        "count_objects", {"target": "tree", "image": "before", "box": [0, 0, 50, 50]}, {"before": raster}, tmp_path
    )
    assert "of the before image 'OSBS_029'" in boxed.summary
    if boxed.data["count"] == 1:
        assert boxed.summary.startswith("1 tree in")


def test_a_river_that_cuts_a_corner_is_not_said_to_cross_from_a_place_to_itself():
    from rschat.tools.describe_scene import river_sentence

    water = np.zeros((300, 300), bool)
    for i in range(80):  # a channel across the north-east corner, touching the north and east edges
        water[max(0, i - 3) : i + 3, 220 + i - 3 : 220 + i + 3] = True
    said = river_sentence(water)
    assert said is None or "from the north-east to the north-east" not in said


def test_a_river_broken_by_a_sandbar_still_crosses_and_joined_lakes_do_not():
    """The Ucayali at 30 m is two long pieces (a sandbar between): each unmistakably a
    channel, together they cross from north to south. Prairie potholes joined by flooded
    narrows (NAIP 2018) touch two edges too, but their width jumps: no river."""
    from rschat.tools.describe_scene import river_sentence

    river = np.zeros((400, 400), bool)
    river[0:190, 197:203] = True  # north half of a 6 px channel
    river[200:400, 197:203] = True  # south half, after a 10 px sandbar
    assert river_sentence(river) == "a river or channel crosses the image from the north to the south"

    lakes = np.zeros((400, 400), bool)
    yy, xx = np.mgrid[:400, :400]
    lakes[(yy - 60) ** 2 + (xx - 60) ** 2 < 70**2] = True  # a lake in the north-west corner
    lakes[(yy - 250) ** 2 + (xx - 250) ** 2 < 60**2] = True  # another in the middle
    lakes[60:250, 155:160] = True  # a flooded narrow joining them ...
    lakes[250:400, 250:256] = True  # ... and a ditch on to the south edge
    assert river_sentence(lakes) is None


def test_the_main_line_of_a_branched_shape_is_its_longest_path():
    from rschat.geo.vector import centre_line, skeleton_length

    comb = np.zeros((120, 420), bool)
    comb[55:65, 10:410] = True  # a 400 px spine ...
    for x in range(30, 400, 40):
        comb[10:60, x : x + 6] = True  # ... with ten 45 px teeth
    length, widths = centre_line(comb)
    assert 380 <= length <= 470 < skeleton_length(comb)  # the spine (and a tooth at most), not every branch
    assert np.median(widths) >= 5


def test_blobs_found_in_two_halves_are_those_of_the_whole_image():
    """The tree tool's blob finder runs on two halves in two threads (the 1.5 s target on 2
    cores); the blobs must be those scikit-image finds on the whole image, across the seam
    too."""
    from skimage import feature

    from rschat.backends.counting_classical import BLOB_OVERLAP, blob_log_in_halves

    rng = np.random.default_rng(0)
    image = np.zeros((800, 600), np.float32)
    yy, xx = np.mgrid[:800, :600]
    for y, x, r in [
        *zip(rng.integers(0, 800, 60), rng.integers(0, 600, 60), rng.uniform(3, 12, 60), strict=True),
        (400, 300, 10),
        (396, 310, 6),
    ]:
        image += np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / (2 * r * r)).astype(np.float32)
    args = {"min_sigma": 2.0, "max_sigma": 9.0, "threshold": 0.1}
    whole = feature.blob_log(image, num_sigma=8, overlap=BLOB_OVERLAP, **args)
    halves = blob_log_in_halves(image, **args)
    assert sorted(map(tuple, whole.round(3))) == sorted(map(tuple, halves.round(3)))
