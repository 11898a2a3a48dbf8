"""Size and shape words ("large buildings", "circular water areas") and comparisons ("are
there more X than Y?"), from the shape measures to the chat's short answer."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.transform import rotate

from conftest import rschat
from rschat.agent import Workspace, turn
from rschat.agent.planner_rules import plan
from rschat.agent.vocabulary import attributes_of, comparison_of
from rschat.config import load_settings
from rschat.geo.shapes import matches, shape_of, size_of, size_unresolved

YY, XX = np.mgrid[:120, :120]


def _rect(w: int, h: int) -> np.ndarray:
    m = np.zeros((120, 120), bool)
    m[10 : 10 + h, 10 : 10 + w] = True
    return m


@pytest.mark.parametrize(
    ("mask", "shape"),
    [
        ((XX - 60) ** 2 + (YY - 60) ** 2 <= 30**2, "circular"),
        ((XX - 60) ** 2 + (YY - 60) ** 2 <= 4**2, "circular"),
        (_rect(40, 40), "square"),
        (_rect(60, 20), "rectangular"),
        (_rect(80, 1), "rectangular"),
        (rotate(_rect(50, 50).astype(float), 45, center=(35, 35)) > 0.5, "square"),
        (rotate(_rect(60, 25).astype(float), 30, center=(40, 22)) > 0.5, "rectangular"),
        (_rect(60, 15) | _rect(15, 60), None),  # an L
        (((XX - 60) / 45) ** 2 + ((YY - 60) / 15) ** 2 <= 1, None),  # a 3:1 ellipse
        (_rect(3, 3), None),  # too few pixels to tell
    ],
)
def test_shape_words(mask, shape):
    assert shape_of(mask) == shape


def test_size_words_and_when_they_can_be_judged():
    assert [size_of(a) for a in (40.0, 99.9, 100.0, 499.0, 500.0, 9e4)] == [
        "small",
        "small",
        "medium",
        "medium",
        "large",
        "large",
    ]
    assert matches(800.0, "square", "large", "rectangular")  # a square is a rectangle
    assert not matches(800.0, "rectangular", "large", "square")
    assert not matches(None, None, "small", None)  # no area: no size
    assert size_unresolved("small", 0.3) is None and size_unresolved("large", 10.0) is None
    assert "5 m or finer" in (size_unresolved("small", 10.0) or "")
    assert "no pixel size" in (size_unresolved("medium", None) or "")


def test_trees_are_sized_by_crown_not_by_building_footprint():
    # a 10 m crown (79 m2) is a large tree, though a 79 m2 building is a small one
    assert [size_of(a, "tree") for a in (12.0, 19.0, 20.0, 78.0, 79.0, 300.0)] == [
        "small", "small", "medium", "medium", "large", "large",
    ]  # fmt: skip
    assert size_of(79.0) == "small"
    assert matches(90.0, None, "large", None, "tree") and not matches(90.0, None, "large", None)
    assert size_unresolved("small", 2.5, "tree") is not None and size_unresolved("small", 2.5) is None
    assert "crown" in (size_unresolved("medium", None, "tree") or "")


def test_question_words():
    assert attributes_of("Is there a large building?") == ("large", None)
    assert attributes_of("How many round ponds are there?") == (None, "circular")
    assert attributes_of("How large is the lake?") == (None, None)
    assert attributes_of("How many square metres are covered by water?") == (None, None)
    assert attributes_of("Is there a large amount of water?") == (None, None)
    assert attributes_of("Are there buildings above 500 m2?") == (None, None)
    assert comparison_of("Are there more buildings than water areas in the image?") == (
        "more",
        "buildings",
        "water areas",
    )
    assert comparison_of("Are there fewer trees than buildings?") == ("less", "trees", "buildings")
    assert comparison_of("Is the number of square buildings equal to the number of roads?") == (
        "equal",
        "square buildings",
        "roads",
    )


@pytest.fixture(scope="module")
def ponds(tmp_path_factory) -> Path:
    """Grass with four blue ponds: two discs, a square and a 100x30 rectangle."""
    rng = np.random.default_rng(0)
    img = np.clip(np.full((400, 400, 3), (110, 150, 70)) + rng.normal(0, 4, (400, 400, 3)), 0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:400, :400]
    water = (30, 90, 200)
    for cy, cx, r in ((80, 80, 30), (300, 320, 20)):
        img[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = water
    img[200:260, 40:100] = water
    img[60:90, 200:300] = water
    path = tmp_path_factory.mktemp("ponds") / "ponds.png"
    Image.fromarray(img).save(path)
    return path


def _short_answers(path: Path, *questions: str, gsd: float = 2.0) -> list[dict]:
    ws = Workspace(load_settings())
    try:
        # 2 m pixels: every pond is large, and too coarse for the building model to
        # take the square ponds for roofs.
        for _ in turn(ws, f"the pixel size is {gsd:g} m", uploads=[path]):
            pass
        out = []
        for q in questions:
            final = [s for s in turn(ws, q) if s.kind == "answer"][-1]
            out.append({"short": final.short_answer, "text": final.text, "answered": final.answered})
        return out
    finally:
        ws.close()


def test_sizes_shapes_and_comparisons_in_a_chat(ponds: Path):
    ask = _short_answers(
        ponds,
        "How many water areas are there?",
        "How many circular water areas are there?",
        "How many square water areas are there?",
        "How many rectangular water areas are there?",
        "Is there a large water area?",
        "Are there more circular water areas than square water areas?",
        "Is the number of circular water areas equal to the number of rectangular water areas?",
        "Are there fewer square water areas than water areas?",
        "How many small water areas are there?",
        "Is there a water area next to the grass?",
    )
    shorts = [a["short"] for a in ask]
    assert shorts[:8] == ["4", "2", "1", "2", "yes", "yes", "yes", "yes"]
    assert (
        ask[5]["text"].startswith("**Yes.**") and "Compared: 2 circular water areas against 1 square" in ask[5]["text"]
    )
    # a count is a number, not a yes ("Yes: 19 of the 90 ..." to "how many?"); a presence is a yes
    assert ask[1]["text"].startswith("**2** of the 4 water areas are circular")
    assert ask[4]["text"].startswith("**Yes**: ")
    assert shorts[8] == "0"  # every pond is over 100 m2 at 2 m pixels
    assert shorts[9] is None and ask[9]["answered"] is False and "relative" in ask[9]["text"]


def test_a_size_word_after_a_count_counts_the_same_objects_of_that_size():
    from conftest import ASSETS

    ws = Workspace(load_settings())
    try:
        for _ in turn(ws, "How many trees are there?", uploads=[ASSETS / "OSBS_029.tif"]):
            pass
        calls = {}
        for question in ("How many of them are large?", "Are any of them medium?", "And how many are small?"):
            calls[question] = [(c.tool, c.args.get("target"), c.args.get("size")) for c in plan(question, ws).calls]
        assert calls == {
            "How many of them are large?": [("count_objects", "tree", "large")],
            "Are any of them medium?": [("count_objects", "tree", "medium")],
            "And how many are small?": [("count_objects", "tree", "small")],
        }
        assert plan("How many of them are large?", ws).focus == "count"
        assert plan("Are any of them medium?", ws).focus == "presence"
        # a thing of its own is not the last count's
        assert plan("How many large water areas are there?", ws).calls[0].tool == "segment"
    finally:
        ws.close()


def test_sizes_too_small_for_the_pixels_are_said_plainly(ponds: Path):
    (small,) = _short_answers(ponds, "How many small water areas are there?", gsd=10.0)
    assert small["short"] is None and "5 m or finer" in small["text"]


def test_building_sizes_need_resolved_and_known_pixels(ponds: Path):
    # 10 m pixels: 'large buildings' is never answered from built-up land
    (coarse,) = _short_answers(ponds, "Is there a large building?", gsd=10.0)
    assert coarse["short"] is None and "too coarse" in coarse["text"]
    ws = Workspace(load_settings())
    try:  # no pixel size: counts use an assumed one, sizes are not measured on it
        for _ in turn(ws, "here is the image", uploads=[ponds]):
            pass
        final = [s for s in turn(ws, "How many large buildings are there?") if s.kind == "answer"][-1]
        assert final.short_answer is None and "no pixel size" in final.text
    finally:
        ws.close()


def test_closed_questions_plan_the_counting_call(ponds: Path):
    ws = Workspace(load_settings())
    try:
        for _ in turn(ws, "the pixel size is 0.3 m", uploads=[ponds]):
            pass
        large = plan("Is a large building present?", ws)
        assert [(c.tool, c.args.get("size")) for c in large.calls] == [("count_objects", "large")]
        trees = plan("Is there a large tree?", ws)  # single crowns, not tree-covered areas
        assert [(c.tool, c.args.get("target"), c.args.get("size")) for c in trees.calls] == [
            ("count_objects", "tree", "large")
        ]
        area = plan("What is the area covered by buildings?", ws)
        assert area.focus == "area" and area.calls[0].tool == "count_objects"
        # the footprints' share, not the built-up land's (roads and yards with the roofs)
        share = plan("What percentage of the image is covered by buildings?", ws)
        assert share.focus == "fraction" and [c.tool for c in share.calls] == ["count_objects"]
        built = plan("How much of the image is built-up?", ws)
        assert [(c.tool, c.args.get("target")) for c in built.calls] == [("segment", "built_up")]
        # exports: one largest land-cover area is measure's polygon; the largest building is
        # the count's; several largest, and a class not yet computed, are the class's result
        assert [c.tool for c in plan("export the largest building", ws).calls] == ["count_objects"]
        assert [c.tool for c in plan("give me the largest lake as GeoJSON", ws).calls] == ["segment", "measure"]
        assert [c.tool for c in plan("export the 3 largest lakes", ws).calls] == ["segment"]
        saved = plan("save the water as a GeoPackage", ws)
        assert [(c.tool, c.args.get("target")) for c in saved.calls] == [("segment", "water")]
        assert "Export" in (saved.note or "")
    finally:
        ws.close()
    ws = Workspace(load_settings())
    try:  # no pixel size: the footprints have no area, so the share is the built-up land's
        for _ in turn(ws, "here is the image", uploads=[ponds]):
            pass
        share = plan("What percentage of the image is covered by buildings?", ws)
        assert [(c.tool, c.args.get("target")) for c in share.calls] == [("segment", "built_up")]
        largest = plan("give me the largest lake as GeoJSON", ws)  # measure needs a pixel size
        assert [c.tool for c in largest.calls] == ["segment"]
        compare = plan("Are there more buildings than water areas?", ws)
        assert compare.focus == "compare_more" and [c.tool for c in compare.calls] == ["count_objects", "segment"]
        roads = plan("Are there more roads than buildings?", ws)
        assert roads.answered is False and not roads.calls  # roads are out of lite mode's reach
        parks = plan("Are there less grass areas than parks?", ws)
        assert parks.answered is False and "parks" in (parks.reply or "")
        # an amount is not a number of things: said plainly, not answered with patch counts
        amount = plan("Is there more water than forest?", ws)
        assert amount.answered is False and "amount" in (amount.reply or "")
        squares = plan("How many square metres are covered by water?", ws)
        assert [c.args.get("shape") for c in squares.calls] == [None]
    finally:
        ws.close()


def test_count_objects_reports_footprint_area_and_refuses_shapes_of_boxes():
    """The CLI path: buildings' footprint area comes with the count; trees are boxes, so
    their shape is refused plainly rather than counted as none."""
    from conftest import ASSETS

    proc = rschat(
        "ask",
        "--image",
        str(ASSETS / "OSBS_029.tif"),
        "--json",
        "What is the area covered by buildings?",
        "How many square trees are there?",
    )
    area, trees = json.loads(proc.stdout)
    assert area["short_answer"] is not None and area["short_answer"].endswith(" m2")
    assert trees["short_answer"] is None and "boxes" in trees["answer"]


def test_per_image_results_are_kept_for_that_array_only():
    from rschat.geo import memo

    memo.clear()
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    a = np.zeros((3, 8, 8), np.uint8)
    assert memo.per_image(a, "k", compute) == 1 and memo.per_image(a, "k", compute) == 1  # once
    assert memo.per_image(a, "other", compute) == 2  # another key: computed
    b = a.copy()
    assert memo.per_image(b, "k", compute) == 3  # equal pixels, another image: never shared
    alive = [np.zeros((1, 2, 2)) for _ in range(memo.MAX_ENTRIES + 2)]
    for i, image in enumerate(alive):  # bounded: the oldest go
        memo.per_image(image, i, compute)
    assert len(memo._ENTRIES) == memo.MAX_ENTRIES
    del alive, a, b, image
    fresh = np.zeros((1, 2, 2))
    memo.per_image(fresh, "new", compute)
    assert len(memo._ENTRIES) == 1  # images gone with their sessions leave nothing behind
    memo.clear()


def test_hazy_satellite_forest_is_not_called_water():
    """A dark, hazy true-colour file at 10 m (as Sentinel-2 L1C PNGs are): blotchy canopy
    and smooth sea are equally dark and blue-cast; the canopy's texture, faint in absolute
    terms but large for its brightness, keeps it out of the water (it was 'water' before)."""
    from scipy import ndimage

    from rschat.backends import landcover_rules as lcr
    from rschat.geo.raster import Raster

    rng = np.random.default_rng(0)
    blot = ndimage.gaussian_filter(rng.normal(0, 1, (256, 256)), 1.0)
    img = np.full((256, 256, 3), (35.0, 51.0, 68.0)) + (blot / blot.std())[..., None] * np.array([3, 4, 4])
    img[:, 170:] = np.array([45.0, 76.0, 98.0]) + rng.normal(0, 0.4, (256, 86, 3))
    raster = Raster(data=np.clip(img, 0, 255).astype(np.uint8).transpose(2, 0, 1).copy(), gsd_m=10, name="hazy")
    lc = lcr.classify(raster)
    assert lc.mask("water")[:, :160].mean() < 0.05 and lc.mask("trees")[:, :160].mean() > 0.9
    assert lc.mask("water")[:, 180:].mean() > 0.9


# -- rivers: channel-shaped water, not any water (session 2026-12-07) ------------------------

PUCALLPA_2020 = Path(__file__).parent / "data" / "pucallpa" / "2020.tif"
OSBS = Path(__file__).parent / "data" / "neon" / "OSBS_029.tif"


def test_a_river_is_the_channel_shaped_water_not_a_lake():
    from rschat.geo.shapes import channels

    water = np.zeros((200, 200), bool)
    water[90:102, :] = True  # a river across the image
    water[20:60, 20:60] = (YY[:40, :40] - 20) ** 2 + (XX[:40, :40] - 20) ** 2 < 400  # a round lake
    found = channels(water)
    assert found[95].all() and not found[20:60, 20:60].any()
    assert attributes_of("is there a river?") == (None, "channel")
    assert attributes_of("how many streams are there?") == (None, "channel")
    assert attributes_of("is there water?") == (None, None)


def test_is_there_a_river_on_real_imagery(settings):
    ws = Workspace(settings)
    steps = list(turn(ws, "is there a river?", uploads=[PUCALLPA_2020]))  # the Ucayali, with oxbow lakes
    done = next(s for s in steps if s.kind == "done")
    assert done.args["shape"] == "channel" and steps[-1].short_answer == "yes"
    assert done.result.data["selected_count"] < done.result.data["water_region_count"]  # the lakes are not rivers
    assert list(turn(ws, "how many rivers are there?"))[-1].short_answer == "1"
    dry = Workspace(settings)
    assert list(turn(dry, "is there a river?", uploads=[OSBS]))[-1].short_answer == "no"


NAIP_2012 = Path(__file__).parents[2] / "shared" / "data" / "timeseries" / "naip" / "m_4709963_se_14_1_20120731.tif"


@pytest.mark.skipif(not NAIP_2012.exists(), reason="needs ../shared/data (NAIP time series)")
def test_a_flooded_pothole_lake_with_an_outlet_is_no_river(settings):
    """Prairie potholes flooded in 2012: a lake narrowing to a tail across the north-west
    corner read as a river (its widths spread 2.2x; rivers keep theirs within 2x)."""
    ws = Workspace(settings)
    assert list(turn(ws, "is there a river?", uploads=[NAIP_2012]))[-1].short_answer == "no"
    assert "river" not in list(turn(ws, "describe the scene"))[-1].text


def test_area_bounds_are_written_without_exponents_in_the_unit_asked():
    """'larger than 1 km2' read '10 of the 10 water areas are larger than 0.0001e+0.0006 ha'."""
    from rschat.geo.shapes import describe_bounds

    assert describe_bounds(1e6, None, "ha") == "larger than 100 ha"
    assert describe_bounds(1e5, 2e6, "ha") == "of 10-200 ha"
    assert describe_bounds(None, 1e6) == "smaller than 1,000,000 m2"
    assert describe_bounds(200, None) == "larger than 200 m2"
