"""Questions a new user asks (issue 9): what the tools can answer is answered in its own
terms (yes/no first, with the evidence); what they cannot is said plainly, never
answered with a land-cover table; every result owns its files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import ASSETS, ROOT, rschat
from rschat.agent import Workspace, turn

NEON = ROOT / "tests" / "data" / "neon" / "OSBS_029.tif"
PUCALLPA = ROOT / "tests" / "data" / "pucallpa" / "1985.tif"
PAIR = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]


def ask(settings, question, files=None):  # type: ignore[no-untyped-def]
    ws = Workspace(settings)
    return ws, list(turn(ws, question, uploads=files))


@pytest.mark.parametrize(
    ("question", "cannot"),
    [
        ("where is the harbour?", "harbours"),
        ("is there a road in this image?", "roads"),
        ("what kind of trees are these?", "species"),
        ("is there a place of worship?", "what a building is used for"),
    ],
)
def test_questions_beyond_the_tools_are_refused_plainly(settings, question, cannot):
    _, steps = ask(settings, question, [NEON])
    answer = steps[-1]
    assert not [s for s in steps if s.kind == "done"]  # no land-cover table that reads as an answer
    assert "Lite mode cannot" in answer.text and cannot in answer.text and "RSCHAT_VLM" in answer.text
    assert "built up" not in answer.text and not answer.answered


def test_presence_questions_get_yes_or_no_first_with_the_evidence(settings):
    _, steps = ask(settings, "the bands are SWIR1, NIR, red, green. is there water?", [PUCALLPA])
    assert steps[-1].text.startswith("**Yes**: water covers") and " ha" in steps[-1].text
    _, steps = ask(settings, "is there water?", [NEON])  # a dry pine stand
    assert steps[-1].text.startswith("**No**: water covers 0.0%")
    _, steps = ask(settings, "are there trees?", [NEON])
    assert steps[-1].text.startswith("**Yes**: trees cover")


@pytest.mark.parametrize(
    "question",
    ["how many trees?", "describe the scene", "is there water?", "measure the box", "what changed?",
     "show the NDVI trend", "segment the vegetation", "how big is the lake?", "classify this scene"],
)  # fmt: skip
def test_without_an_image_no_message_names_an_image_none(settings, question):
    _, steps = ask(settings, question)
    text = " ".join(s.text for s in steps)
    assert "'None'" not in text and "None" not in text
    assert not steps[-1].answered


def test_cli_exit_codes_follow_one_rule(tmp_path):
    env = {"RSCHAT_WORK_DIR": str(tmp_path)}
    proc = rschat("ask", "--image", str(PAIR[0]), "what changed?", env=env)
    assert proc.returncode == 1 and "two images" in proc.stdout  # not answered: exit 1
    proc = rschat("ask", "--image", str(NEON), "where is the harbour?", env=env)
    assert proc.returncode == 1 and "Lite mode cannot" in proc.stdout
    proc = rschat("ask", "--image", str(NEON), "is there water?", env=env)
    assert proc.returncode == 0 and "**No**" in proc.stdout
    proc = rschat("ask", "--image", str(NEON), "--box", "nonsense", "is there water?", env=env)
    assert proc.returncode == 2  # a command line that does not parse


def test_each_result_owns_its_files(settings):
    """Two change runs (whole pair, then inside a box) and two tree counts keep their own
    files: no later result overwrites an earlier one's mask, polygons or overlay."""
    ws, _ = ask(settings, "what changed?", PAIR)
    ws.add_box((0, 0, 120, 120))
    list(turn(ws, "what changed in the box?"))
    first, second = (s.result for s in ws.results[:2])
    paths = [a.path for r in (first, second) for a in r.artifacts]
    assert len(set(paths)) == len(paths) and all(p.exists() for p in paths)
    assert all(a.path.name.startswith("r1_") for a in first.artifacts)
    assert all(a.path.name.startswith("r2_") for a in second.artifacts)
    for result in (first, second):
        regions = json.loads(result.artifact("geojson").path.read_text())["features"]
        assert len(regions) == result.data["region_count"]  # each file matches its own numbers
    from rschat.geo.io import read_raster

    masks = [read_raster(r.artifact("geotiff").path).data[0] for r in (first, second)]
    assert masks[0].shape != masks[1].shape or not np.array_equal(masks[0], masks[1])

    ws2, _ = ask(settings, "how many trees?", [NEON])
    ws2.add_box((0, 0, 200, 200))
    list(turn(ws2, "how many trees in the box?"))
    files = [a.path for s in ws2.results for a in s.result.artifacts]
    assert len(set(files)) == len(files) == 4


def test_an_enormous_message_is_refused_quickly_and_the_session_goes_on(settings):
    import time

    ws = Workspace(settings)
    started = time.perf_counter()
    steps = list(turn(ws, "clear " * 50_000))  # 300 kB: this took 177 s in the old planner
    assert time.perf_counter() - started < 1.0
    assert "characters long" in steps[-1].text and not steps[-1].answered
    steps = list(turn(ws, "clear " * 600 + "the points"))  # just under the limit: still fast
    assert time.perf_counter() - started < 2.0 and steps[-1].text == "The points and boxes are cleared."
    assert list(turn(ws, "help"))[-1].text.startswith("Here is what I can do")


def _nodata_raster(name: str = "empty"):  # type: ignore[no-untyped-def]
    from affine import Affine
    from rasterio.crs import CRS

    from rschat.geo.raster import Raster

    data = np.zeros((3, 64, 64), np.uint8)
    return Raster(data, crs=CRS.from_epsg(32617), transform=Affine(0.5, 0, 5e5, 0, -0.5, 3e6), nodata=0, name=name)


@pytest.mark.parametrize(
    ("tool", "args", "rasters"),
    [
        ("segment", {}, {"image": "x"}),
        ("describe_scene", {}, {"image": "x"}),
        ("detect_changes", {}, {"before": "x", "after": "x"}),
    ],
)
def test_all_nodata_is_said_not_measured(tool, args, rasters, tmp_path):
    from rschat.geo.errors import InputError
    from rschat.tools import REGISTRY
    from rschat.tools.base import ToolContext

    ctx = ToolContext({k: _nodata_raster() for k in rasters}, tmp_path)
    with pytest.raises(InputError, match="(no|No pixel of the whole image has) valid"):
        REGISTRY[tool].run(args, ctx)


def test_time_series_with_a_bad_box_or_a_dateless_gap_answers_plainly(settings):
    stack = [ROOT / "tests" / "data" / "pucallpa" / f"{y}.tif" for y in (1985, 2000, 2020)]
    ws = Workspace(settings)
    ws.load_uploads(stack)
    ws.add_box((5000, 5000, 6000, 6000))
    steps = list(turn(ws, "show the NDVI trend"))
    errors = [s.text for s in steps if s.kind == "error"]
    assert errors and "The box cannot be used" in errors[0] and "unexpectedly" not in errors[0]
    ws.clear_prompts()
    ws.rasters["t2"].data[:] = 0  # one date without data
    ws.rasters["t2"].nodata = 0
    ws.raster_uids["t2"] += 1000
    steps = list(turn(ws, "the bands are SWIR1, NIR, red, green. show the NDVI trend"))
    text = steps[-1].text
    assert "nan" not in text.lower() and "left out of the trend" in text and steps[-1].answered


def test_a_redrawn_region_is_measured_again(settings):
    from rschat.geo.raster import Raster  # noqa: F401  (the NEON tile is georeferenced)
    from rschat.geo.region import footprint_wgs84

    ws = Workspace(settings)
    ws.load_uploads([NEON])
    ring = footprint_wgs84(ws.rasters["image"])["coordinates"][0]
    (w, s), (e, n) = min(ring), max(ring)

    def box(frac: float) -> dict:
        e2, n2 = w + (e - w) * frac, s + (n - s) * frac
        return {"type": "Polygon", "coordinates": [[[w, s], [e2, s], [e2, n2], [w, n2], [w, s]]]}

    ws.set_region(box(0.3))
    small = list(turn(ws, "measure the drawn region"))[-2]
    ws.set_region(box(0.9))
    large = list(turn(ws, "measure the drawn region"))[-2]
    assert not large.reused and large.result.data["area_m2"] > 5 * small.result.data["area_m2"]


def test_box_scope_is_the_clipped_box(settings):
    ws = Workspace(settings)
    ws.load_uploads([NEON])
    ws.add_box((-50, -50, 100, 80))
    text = list(turn(ws, "how much of this is water?"))[-1].text
    assert "x 0-100, y 0-80" in text and "-50" not in text


def test_a_change_mask_is_not_laid_on_an_after_image_of_another_grid(settings):
    """The change mask lies on the before image's grid; an after image of the same size but
    shifted must not be restricted by it pixel for pixel (it would be misplaced)."""
    from affine import Affine

    from conftest import make_pair
    from rschat.agent.executor import execute
    from rschat.agent.steps import ToolCall

    before, after, _ = make_pair(size=128)
    after.transform = after.transform * Affine.translation(10, 0)  # 10 pixels east, same size
    ws = Workspace(settings)
    ws.add_raster("before", before)
    ws.add_raster("after", after)
    calls = [
        ToolCall("detect_changes", {}),
        ToolCall("count_objects", {"target": "tree", "image": "after", "within_previous_mask": True}),
    ]
    count = [s for s in execute(calls, ws) if s.kind == "done"][-1].result
    assert "inside the changed area" not in count.summary
    assert any("not restricted" in n for n in count.notes)

    ws.add_raster("after", make_pair(size=128)[1])  # the same grid: restricted as before
    count = [s for s in execute(calls, ws) if s.kind == "done"][-1].result
    assert "inside the changed area" in count.summary
