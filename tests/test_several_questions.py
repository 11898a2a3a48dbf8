"""A message that asks several things gets each answered, in order, under its own heading
(it used to be answered for its first question only)."""

from __future__ import annotations

import pytest

from conftest import ROOT
from rschat.agent import Workspace, turn
from rschat.agent.agent import _questions
from rschat.agent.questions import MAX_QUESTIONS, split_questions

NEON = ROOT / "tests" / "data" / "neon" / "OSBS_029.tif"


@pytest.mark.parametrize(
    ("message", "parts"),
    [
        ("How many trees are there? Is there any water?", ["How many trees are there?", "Is there any water?"]),
        ("how many trees are there and what percentage is water?",
         ["How many trees are there?", "What percentage is water?"]),
        ("what is the pixel size, and how many trees are there?", ["What is the pixel size?", "How many trees are there?"]),
        ("count the trees and describe the scene", ["Count the trees", "Describe the scene"]),
        # one question: a shared verb, a fragment, a single sentence
        ("is there water and forest?", ["is there water and forest?"]),
        ("what changed, and where?", ["what changed, and where?"]),
        ("how many trees and buildings are there?", ["how many trees and buildings are there?"]),
        ("a? " * (MAX_QUESTIONS + 1), ["a? " * (MAX_QUESTIONS + 1)]),
    ],
)  # fmt: skip
def test_messages_are_cut_into_whole_questions(message, parts):
    assert split_questions(message) == parts


def test_cutting_is_linear_on_a_hostile_message():
    message = "and what, " * 20_000 + "?"
    assert split_questions(message) == [message]  # parts of one word: not read as questions


def test_each_question_is_answered_under_its_heading(settings):
    ws = Workspace(settings)
    steps = list(turn(ws, "How many trees are there? Is there any water?", uploads=[NEON]))
    done = [s.tool for s in steps if s.kind == "done"]
    answer = steps[-1]
    assert done == ["count_objects", "segment"] and answer.answered
    assert "*Question 1 of 2: How many trees are there?*" in answer.text
    assert "*Question 2 of 2: Is there any water?*" in answer.text
    count, water = answer.short_answer.split("; ")
    assert int(count) > 10 and water == "no"
    assert [h["role"] for h in ws.history] == ["user", "assistant"]  # one turn, not two


def test_a_later_question_about_the_first_ones_objects_uses_its_result(settings):
    ws = Workspace(settings)
    steps = list(turn(ws, "How many trees are there? How big are they on average?", uploads=[NEON]))
    answer = steps[-1]
    assert [s.tool for s in steps if s.kind == "done"] == ["count_objects", "count_objects"]
    assert [s.reused for s in steps if s.kind == "done"] == [False, True]  # the count's result, not a rerun
    assert answer.short_answer.endswith(" m2") and "average" in answer.text


def test_a_later_question_about_the_first_ones_area_uses_its_mask(settings):
    ws = Workspace(settings)
    steps = list(turn(ws, "find the trees and calculate its area", uploads=[NEON]))
    assert [s.tool for s in steps if s.kind == "done"][0] == "segment" and steps[-1].answered
    assert "*Question 2 of 2: Calculate its area*" in steps[-1].text


def test_a_part_that_plans_nothing_keeps_the_message_whole(settings):
    ws = Workspace(settings)
    list(turn(ws, "", uploads=[NEON]))
    message = "how many trees are there and what about the weather?"
    assert _questions(ws, message) == [message]
    assert _questions(ws, "how many trees are there and is it urban?") == ["How many trees are there?", "Is it urban?"]


# -- found by a new-user trial (session 2026-12-04, 3) ---------------------------------

SPACENET = ROOT / "tests" / "data" / "spacenet" / "sample_geotiff.tif"


def test_a_built_up_share_on_one_image_is_land_cover_not_change(settings):
    """'built up' held the word 'built', which asked for change detection on one image."""
    for question in ("what share is built up?", "how much built-up area is there?"):
        steps = list(turn(Workspace(settings), question, uploads=[NEON]))
        assert [s.tool for s in steps if s.kind == "done"] == ["segment"], question
        assert "Change detection needs two images" not in steps[-1].text


def test_how_many_dead_trees_is_the_dead_ones_not_every_tree(settings):
    steps = list(turn(Workspace(settings), "how many dead trees are there?", uploads=[NEON]))
    done = next(s for s in steps if s.kind == "done")
    assert steps[-1].short_answer == str(done.result.data["dead_or_leafless"]) != str(done.result.data["count"])


def test_a_bare_unit_follow_up_converts_the_figure_asked_last(settings):
    """'how big is the largest one?' then 'and in square feet?' gave the footprints' total."""
    ws = Workspace(settings)
    list(turn(ws, "how many buildings are there?", uploads=[SPACENET]))
    largest = list(turn(ws, "how big is the largest one?"))[-1].short_answer
    feet = list(turn(ws, "and in square feet?"))[-1].short_answer
    assert largest.endswith(" m2") and feet.endswith(" sq ft")
    assert abs(float(feet.split()[0]) * 0.09290304 - float(largest.split()[0])) <= 1
