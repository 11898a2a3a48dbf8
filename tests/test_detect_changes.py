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


SPACENET = Path(__file__).parent / "data" / "spacenet"


def _spacenet_with_buildings_removed() -> tuple:
    """The SpaceNet pan tile as 'after', and as 'before' the same tile with every other
    labelled building covered by real ground: the pixels of the same footprint shifted to
    the nearest place where no building is. Those buildings appeared."""
    from dataclasses import replace

    from rasterio import features
    from scipy import ndimage
    from shapely.geometry import shape

    from rschat.geo import read_raster

    after = read_raster(SPACENET / "sample_geotiff.tif")
    polygons = [shape(f["geometry"]) for f in json.loads((SPACENET / "geotiff_labels.geojson").read_text())["features"]]
    grid = {"out_shape": (after.height, after.width), "transform": after.transform}
    buildings = ndimage.binary_dilation(features.rasterize(polygons, **grid) > 0, iterations=6)
    data, removed = after.data.copy(), np.zeros(grid["out_shape"], bool)
    shifts = [(dy, dx) for r in range(20, 200, 10) for dy, dx in ((r, 0), (-r, 0), (0, r), (0, -r), (r, r), (-r, -r))]
    for polygon in polygons[::2]:
        rows, cols = np.nonzero(features.rasterize([polygon], **grid) > 0)
        for dy, dx in shifts:
            r, c = rows + dy, cols + dx
            inside = (r >= 0) & (r < after.height) & (c >= 0) & (c < after.width)
            if inside.all() and not buildings[r, c].any():
                data[0][rows, cols] = after.data[0][r, c]
                removed[rows, cols] = True
                break
    return replace(after, data=data, name="before"), after, removed


def test_building_target_finds_the_buildings_that_appeared(tmp_path: Path):
    from scipy import ndimage

    before, after, removed = _spacenet_with_buildings_removed()
    res = TOOL.run({"target": "building"}, ToolContext(rasters={"before": before, "after": after}, out_dir=tmp_path))
    d, mask = res.data, res.kept.mask
    labels, count = ndimage.label(removed)
    found = sum(bool((mask & (labels == i)).any()) for i in range(1, count + 1))
    # The model sees 42% of this tile's buildings (most stand under trees: see the counting
    # figures), so about that share of the covered ones can be found again.
    assert count >= 15 and found >= 0.35 * count, (found, count)
    near = ndimage.binary_dilation(removed, iterations=6)
    assert d["appeared_pixels"] > 0 and (mask & near).sum() >= 0.65 * mask.sum()  # change where it was made
    assert d["gone_pixels"] <= 0.4 * d["appeared_pixels"]  # and mostly 'appeared', as made
    assert d["appeared_area_m2"] == pytest.approx(d["appeared_pixels"] * 0.25, rel=0.01)
    assert "buildings appeared" in res.summary and "m2" in res.summary
    from rschat.agent import short_answer
    from rschat.tools.base import Reading

    assert short_answer.derive(res, "count", "building") == str(d["appeared_count"])
    assert short_answer.derive(res, "count_gone", "building") == str(d["gone_count"])
    area = TOOL.answer(res, Reading(source="r1", focus="area"))
    assert area.startswith("Buildings that appeared or went cover") and "buildings appeared" in area
    gone_first = TOOL.answer(res, Reading(source="r1", focus="count_gone"))
    assert gone_first.startswith(f"{d['gone_count']} building") and "disappeared" in gone_first.split(",")[0]
    assert "buildings that appeared or went" in res.method and "buildings.onnx" in res.method


def test_building_target_is_refused_where_buildings_cannot_be_seen(tmp_path: Path):
    from rschat.geo.errors import InputError

    before, after, _ = make_pair(pixel=5.0)
    with pytest.raises(InputError, match=r"too coarse for single buildings .*Ask what changed instead"):
        TOOL.run({"target": "building"}, ToolContext(rasters={"before": before, "after": after}, out_dir=tmp_path))
    fine_before, fine_after, _ = make_pair(pixel=0.01)
    with pytest.raises(InputError, match=r"finer than the building model reads \(0.05-1.5 m\)"):
        TOOL.run(
            {"target": "building"}, ToolContext(rasters={"before": fine_before, "after": fine_after}, out_dir=tmp_path)
        )
    assert run(before, after, tmp_path).data.get("appeared_count") is None  # any change: no building split


def test_vegetation_on_both_dates_and_shadow_are_not_change() -> None:
    """Grass that greened up, and a shadow cast across a roof, differ between dates but
    nothing on the ground changed; a grey roof that replaced grass did, to its edge."""
    from rschat.backends.change_classical import not_ground_change

    grass, greener = np.array([0.35, 0.45, 0.25]), np.array([0.25, 0.55, 0.2])
    roof, shadow = np.array([0.6, 0.6, 0.62]), np.array([0.05, 0.06, 0.08])
    before = np.broadcast_to(grass, (64, 96, 3)).copy()
    after = np.broadcast_to(greener, (64, 96, 3)).copy()
    after[:, 32:64] = roof  # new roof on the grass
    before[:, 64:] = roof
    after[:, 64:] = roof
    after[:, 84:90] = shadow  # a shadow 6 px wide over the unchanged roof
    out = not_ground_change(before, after, scale_px=8)
    assert out[:, :24].all()  # vegetation on both dates
    assert not out[:, 32:64].any()  # grass -> roof stays change, edges included
    assert out[:, 84:90].all() and not out[:, 66:80].any()  # the thin shadow; the lit roof


@pytest.mark.parametrize(
    "before_colour, after_colour",
    [
        ((0.35, 0.45, 0.25), (0.05, 0.07, 0.09)),  # grass -> dark water (no near-infrared)
        ((0.35, 0.45, 0.25), (0.08, 0.08, 0.09)),  # grass -> asphalt
        ((0.12, 0.22, 0.10), (0.09, 0.08, 0.07)),  # forest -> burn scar
        ((0.12, 0.22, 0.10), (0.45, 0.55, 0.30)),  # forest cleared to pasture
    ],
)
def test_real_changes_of_cover_are_kept(before_colour, after_colour) -> None:
    """What the step must not take out: new dark surfaces wider than a shadow, and
    vegetation of another kind (canopy -> herbaceous)."""
    from rschat.backends.change_classical import not_ground_change

    before = np.broadcast_to(np.array(before_colour), (64, 64, 3)).copy()
    after = before.copy()
    after[16:48, 16:48] = after_colour
    out = not_ground_change(before, after, scale_px=8)
    assert out[20:44, 20:44].mean() < 0.05


def test_the_step_keeps_whole_small_roofs_at_every_scoring_scale() -> None:
    """A 12 px roof on grass survives detection at full resolution and on the half-
    resolution grid large images are scored on (800 px)."""
    from rschat.backends.change_classical import detect

    rng = np.random.default_rng(0)
    for side in (128, 800):
        before = np.clip(
            np.broadcast_to([0.35, 0.45, 0.25], (side, side, 3)) + rng.normal(0, 0.01, (side, side, 3)), 0, 1
        )
        after = before.copy()
        after[side // 2 : side // 2 + 12, side // 2 : side // 2 + 12] = (0.6, 0.6, 0.62)
        mask = detect(before, after).mask
        assert mask[side // 2 : side // 2 + 12, side // 2 : side // 2 + 12].mean() > 0.9


def test_building_change_is_per_building_not_per_pixel() -> None:
    """A building on both dates whose edge probabilities differ is not new; a footprint
    mostly absent before is, whole."""
    from rschat.backends.learned import _new_buildings

    then, now = np.zeros((60, 60), np.float32), np.zeros((60, 60), np.float32)
    then[10:30, 10:30] = 0.9
    now[7:33, 7:33] = 0.9  # the same roof, seen 3 px wider: its rim differs by 0.9
    now[40:50, 40:55] = 0.8  # a new building
    then[40:50, 40:43] = 0.7  # a fifth of its footprint already read as building
    new = _new_buildings(now, then, 0.5, np.ones((60, 60), bool), small=10)
    assert not new[:35, :35].any()
    assert new[41:49, 41:54].all() and new.sum() >= 0.95 * 150  # whole (the opening rounds its corners)


def test_with_near_infrared_green_water_over_grass_stays_change() -> None:
    """A flooded field: the water is green-tinted (excess green as high as grass), so by
    colour alone it reads as vegetation on both dates; its NDVI below zero says water."""
    from rschat.backends.change_classical import not_ground_change

    grass, green_water = np.array([0.35, 0.45, 0.25]), np.array([0.28, 0.42, 0.3])  # turbid, as bright as grass
    before = np.broadcast_to(grass, (32, 32, 3)).copy()
    after = np.broadcast_to(green_water, (32, 32, 3)).copy()
    assert not_ground_change(before, after, scale_px=8).all()  # colour alone: "vegetation both dates"
    ndvi = (np.full((32, 32), 0.6, np.float32), np.full((32, 32), -0.2, np.float32))
    assert not not_ground_change(before, after, scale_px=8, ndvi=ndvi).any()


def test_vegetation_compared_across_seasons_says_so():
    """NAIP of 18 August against 26 September: 'low vegetation lost' was the harvest."""
    import datetime as dt

    from rschat.tools.detect_changes import season_limit

    before, after, _ = make_pair()
    before.date, after.date = dt.date(2009, 8, 18), dt.date(2015, 9, 26)
    before.name, after.name = "naip_20090818", "naip_20150926"
    (said,) = season_limit("low_vegetation", before, after)
    assert said.startswith("the dates are 39 days apart in the year (2009-08-18, 2015-09-26)")
    assert season_limit("water", before, after) == []  # water has no growing season
    after.date = dt.date(2015, 8, 30)
    assert season_limit("trees", before, after) == []  # the same time of year
    before.date, before.name = dt.date(2009, 7, 1), "1985"  # a year only: the season is unknown
    assert season_limit("trees", before, after) == []


def test_histogram_matching_on_8_bit_levels_is_scikit_images():
    """The change detector matches the after image's histogram on 256 levels (fast); the
    result must be scikit-image's match_histograms, and other inputs go to it."""
    from skimage import exposure

    from rschat.backends.change_classical import matched_histograms

    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (120, 90, 3)).astype(np.float32) / 255
    b = rng.integers(30, 200, (120, 90, 3)).astype(np.float32) / 255
    assert np.abs(matched_histograms(a, b) - exposure.match_histograms(a, b, channel_axis=-1)).max() < 1e-6
    c = b + 0.001  # not 8-bit levels: scikit-image itself
    assert np.array_equal(matched_histograms(a, c), exposure.match_histograms(a, c, channel_axis=-1))


def test_an_undated_pair_says_the_order_is_the_upload_order():
    """A LEVIR pair read 65.9% changed one way and 46.1% the other, with nothing said."""
    import datetime as dt

    from rschat.tools.detect_changes import order_limit

    before, after, _ = make_pair()
    before.date = after.date = None
    (said,) = order_limit(None, before, after)
    assert "neither image is dated" in said and "depend on the order" in said
    assert order_limit("building", before, after) == []  # appeared and gone are told apart
    after.date = dt.date(2015, 9, 26)
    assert "one image has no date" in order_limit(None, before, after)[0]
    before.date = dt.date(2009, 8, 18)
    assert order_limit(None, before, after) == []  # the dates order the pair


def test_a_dated_pair_names_its_dates_in_the_answer(tmp_path):
    """A comparison picked on the map's date menus answered 'on the before date' only."""
    import datetime as dt

    before, after, _ = make_pair()
    before.date, after.date = dt.date(1985, 7, 1), dt.date(2020, 7, 1)
    before.name, after.name = "pucallpa_1985", "pucallpa_2020"
    ctx = ToolContext({"before": before, "after": after}, tmp_path)
    result = REGISTRY["detect_changes"].run({}, ctx)
    assert result.summary.startswith("in the whole image (1985 to 2020), ")
