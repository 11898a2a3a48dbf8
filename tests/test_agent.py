"""The agent end to end in lite mode: steps, answers, follow-ups, bad input."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ASSETS
from rschat.agent import Workspace, turn
from rschat.agent.vocabulary import focus_of, intent_of

PAIR = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]


@pytest.fixture
def ws(settings):
    w = Workspace(settings)
    yield w
    w.close()


def kinds(steps):
    return [s.kind for s in steps]


def test_change_turn_streams_plan_tool_and_answer(ws):
    steps = list(turn(ws, "What changed?", uploads=list(reversed(PAIR))))  # order fixed by dates
    progress = [s.text for s in steps if s.kind == "progress"]
    assert progress and progress[0].startswith("10%") and progress[-1].startswith("100%")
    steps = [s for s in steps if s.kind != "progress"]
    assert kinds(steps) == ["plan", "plan", "start", "done", "answer"]
    assert ws.rasters["before"].date.year == 2009 and ws.rasters["after"].date.year == 2015
    done = steps[3]
    assert done.duration_s > 0 and done.result.data["changed_area_m2"] > 0
    answer = steps[-1].text
    pct = f"{done.result.data['changed_percent']:.1f}%"
    assert pct in answer and "ha" in answer and "Method" in answer and "Limits" in answer


def test_follow_up_reuses_the_stored_result(ws):
    list(turn(ws, "what changed?", uploads=PAIR))
    steps = list(turn(ws, "How big is the largest change?"))
    reused = [s for s in steps if s.kind == "done"]
    assert reused and reused[0].reused and reused[0].result_id == "r1"
    assert len(ws.results) == 1  # nothing recomputed
    biggest = ws.results[0].result.kept.regions[0]
    assert f"{biggest.area_m2:,.0f} m2" in steps[-1].text
    steps = list(turn(ws, "and how many regions are there?"))
    assert str(ws.results[0].result.data["region_count"]) in steps[-1].text


def test_change_question_with_one_image_explains_what_is_needed(ws):
    steps = list(turn(ws, "what changed here?", uploads=PAIR[:1]))
    assert kinds(steps)[-1] == "answer" and "two images" in steps[-1].text
    assert not ws.results


def test_corrupt_upload_is_reported_and_the_session_goes_on(ws, tmp_path: Path):
    bad = tmp_path / "broken.tif"
    bad.write_bytes(b"II*\x00" + b"\x00" * 50)
    steps = list(turn(ws, "what changed?", uploads=[bad, PAIR[1]]))
    assert kinds(steps) == ["error", "answer"] and "broken.tif" in steps[-1].text
    steps = list(turn(ws, "what changed?", uploads=PAIR))
    assert kinds(steps)[-1] == "answer" and ws.results


def test_mismatched_pair_is_a_visible_tool_error(ws, tmp_path: Path):
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.zeros((50, 40, 3), np.uint8)).save(tmp_path / "b.png")
    steps = list(turn(ws, "what changed?", uploads=[tmp_path / "a.png", tmp_path / "b.png"]))
    errors = [s for s in steps if s.kind == "error"]
    assert errors and "does not line up" in errors[0].text
    assert "could not run" in steps[-1].text


def test_help_and_honest_not_yet(ws):
    assert "change detection" in list(turn(ws, "help"))[-1].text
    text = list(turn(ws, "generate a harbour scene"))[-1].text
    assert "can't" in text and "RSCHAT_GENERATOR" in text
    text = list(turn(ws, "what is the meaning of this picture?"))[-1].text
    assert "can't" in text and "change detection" in text


@pytest.mark.parametrize(
    ("message", "intent"),
    [
        ("what changed?", "change"),
        ("Compare the two dates", "change"),
        ("Were new buildings built?", "change"),
        ("what's different between them", "change"),
        ("help", "help"),
        ("What can you do?", "help"),
        ("how many trees are there", "count"),
        ("segment the water", "segment"),
        ("describe the scene", "describe"),
        ("generate an image of a harbour", "generate"),
        ("show the NDVI trend", "timeseries"),
    ],
)
def test_intents(message, intent):
    assert intent_of(message) == intent


@pytest.mark.parametrize(
    ("message", "focus"),
    [
        ("how big is the largest change?", "largest"),
        ("how many regions?", "count"),
        ("what percentage changed", "fraction"),
        ("how much area in hectares", "area"),
    ],
)
def test_focus(message, focus):
    assert focus_of(message) == focus


def test_sessions_do_not_share_state(settings):
    a, b = Workspace(settings), Workspace(settings)
    list(turn(a, "what changed?", uploads=PAIR))
    assert not b.rasters and not b.results and a.out_dir != b.out_dir


def test_a_note_said_of_several_uploads_is_said_once():
    """An 8-date stack of false-colour composites printed the same warning 8 times."""
    from rschat.agent.agent import _grouped

    notes = [(y, f"'{y}' has 4 unnamed bands (their lowest correlation is -0.{i}): state the order") for i, y in
             enumerate(("1985", "1990", "1995"), start=2)]  # fmt: skip
    assert _grouped([*notes, ("x", "'x' is small")]) == [
        notes[0][1] + " Likewise for '1990' and '1995'.",
        "'x' is small",
    ]


def test_notes_that_differ_only_in_the_image_are_said_once():
    from rschat.agent.workspace import merged_notes

    same = "4 unnamed bands: read as red, green, blue and near-infrared."
    notes = [f"'a' has {same}", "Reprojected onto the first date's grid.", f"'b' has {same}", f"'c' has {same}",
             "'d' has no georeference."]  # fmt: skip
    assert merged_notes(notes) == [
        f"'a', 'b' and 'c' have {same}",
        "Reprojected onto the first date's grid.",
        "'d' has no georeference.",
    ]
