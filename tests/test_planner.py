"""The rule planner: intents, slots (synonyms, images, boxes, points) and chains."""

import numpy as np
import pytest

from rschat.agent import Workspace
from rschat.agent.planner_rules import plan
from rschat.agent.vocabulary import class_of, object_of
from rschat.geo.raster import Raster


def ws_with(settings, *names: str) -> Workspace:
    ws = Workspace(settings)
    for n in names:
        ws.add_raster(n, Raster(np.zeros((3, 20, 20), np.uint8), name=n))
    return ws


def tools(p) -> list[str]:
    return [c.tool for c in p.calls]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("how many trees are there?", ["count_objects"]),
        ("Count the trees in this box", ["count_objects"]),
        ("number of houses?", ["count_objects"]),
        ("how much of this area is water?", ["segment"]),
        ("what share is covered by forest", ["segment"]),
        ("segment the vegetation", ["segment"]),
        ("map the land cover", ["segment"]),
        ("where is the water", ["segment"]),
        ("describe the scene", ["describe_scene"]),
        ("What's in this image?", ["describe_scene"]),
        ("give me an overview", ["describe_scene"]),
        ("measure the box", ["measure"]),
        ("how big is the lake?", ["segment", "measure"]),
        # the pixels' validity is the file's, not a land cover
        ("how much of the image has no data?", ["image_info"]),
        ("what share of the pixels have data?", ["image_info"]),
        # no pixel size: measure cannot outline one area, the class's result is exported
        ("give me the largest water area as GeoJSON", ["segment"]),
        ("what is the area of the pond", ["segment", "measure"]),
        ("assess the water in the indicated area", ["segment", "measure", "describe_scene"]),
        ("analyse the vegetation", ["segment", "measure", "describe_scene"]),
    ],
)
def test_single_image_intents(settings, message, expected):
    ws = ws_with(settings, "image")
    if "box" in message:  # a question about "the box" needs one (else it is told to draw one)
        ws.add_box((2, 2, 10, 10))
    assert tools(plan(message, ws)) == expected


@pytest.mark.parametrize(
    ("word", "cls", "obj"),
    [
        ("houses", "built_up", "building"),
        ("roofs", "built_up", "building"),
        ("lake", "water", None),
        ("river", "water", None),
        ("pond", "water", None),
        ("woodland", "trees", None),
        ("trees", "trees", "tree"),
        ("forest", "trees", None),
        ("grassland", "low_vegetation", None),
        ("cars", None, "vehicle"),
        ("boats", None, "ship"),
    ],
)
def test_synonyms(word, cls, obj):
    assert class_of(f"the {word} here") == cls
    assert object_of(f"the {word} here") == obj


def test_buildings_that_appeared_are_counted_date_against_date(settings):
    ws = ws_with(settings, "before", "after")
    ws.add_box((2, 2, 15, 15))
    p = plan("How many buildings appeared in the box?", ws)
    assert tools(p) == ["detect_changes"] and p.focus == "count"
    assert p.calls[0].args == {"before": "before", "after": "after", "target": "building", "box": [2, 2, 15, 15]}
    for message in ("which buildings are new?", "were any houses demolished?", "show the new buildings"):
        assert plan(message, ws).calls[0].args.get("target") == "building", message
    assert "target" not in plan("what changed?", ws).calls[0].args
    assert plan("how many buildings were demolished?", ws).focus == "count_gone"  # the number that went
    assert plan("how many buildings were torn down or lost?", ws).focus == "count_gone"
    assert plan("how many buildings were built or demolished?", ws).focus is None  # both numbers, no one answer
    assert plan("the pixel size is 0.5 m. which buildings are new?", ws).focus is None  # 'size', 'm': no area
    for message in ("what changed around the buildings?", "did the roof colours change?", "are the houses new?"):
        target = plan(message, ws).calls[0].args.get("target")
        assert target == ("building" if "new" in message else None), message  # any change unless built or gone


def test_chain_trees_that_appeared_in_the_box(settings):
    ws = ws_with(settings, "before", "after")
    ws.add_box((2, 2, 15, 15))
    p = plan("How many trees appeared in the box?", ws)
    assert tools(p) == ["detect_changes", "count_objects"]
    assert p.calls[0].args["box"] == [2, 2, 15, 15] and "target" not in p.calls[0].args
    assert p.calls[1].args == {"target": "tree", "image": "after", "within_previous_mask": True, "box": [2, 2, 15, 15]}


def test_change_inside_the_box(settings):
    ws = ws_with(settings, "before", "after")
    ws.add_box((0, 0, 10, 10))
    p = plan("what changed inside the box?", ws)
    assert tools(p) == ["detect_changes"] and p.calls[0].args["box"] == [0, 0, 10, 10]


def test_point_question_reads_the_class_at_the_point(settings):
    ws = ws_with(settings, "image")
    ws.add_point(5, 6)
    p = plan("is this water?", ws)
    assert tools(p) == ["segment"] and p.focus == "point" and p.point == (5.0, 6.0)
    assert "box" not in p.calls[0].args


def test_single_image_tools_on_a_pair_use_the_after_image_unless_asked(settings):
    ws = ws_with(settings, "before", "after")
    assert plan("how many trees?", ws).calls[0].args["image"] == "after"
    assert plan("how many trees in the before image?", ws).calls[0].args["image"] == "before"


def test_time_series_needs_a_stack(settings):
    assert "three or more" in plan("show the NDVI trend", ws_with(settings, "image")).reply
    p = plan("show the NDVI trend over time", ws_with(settings, "t1", "t2", "t3"))
    assert tools(p) == ["analyze_timeseries"] and p.calls[0].args["index"] == "ndvi"
    p = plan("how did the water change over time?", ws_with(settings, "t1", "t2", "t3"))
    assert tools(p) == ["analyze_timeseries"] and p.calls[0].args["index"] == "water"


@pytest.mark.parametrize("message", ["generate a harbour scene", "who painted this?"])
def test_unservable_requests_list_what_is_possible(settings, message):
    p = plan(message, ws_with(settings, "image"))
    assert not p.calls and "can't" in p.reply and "change detection" in p.reply


def test_scene_classification_is_served_in_lite_mode(settings):
    """The learned lite scene model (or, without it, a message naming both ways) serves it."""
    assert tools(plan("classify this scene", ws_with(settings, "image"))) == ["classify_scene"]


def test_count_without_a_target_asks_what_to_count(settings):
    assert "What should I count" in plan("count them all", ws_with(settings, "image")).reply


def test_no_image_means_a_clear_request(settings):
    assert "needs an image" in plan("how many trees?", Workspace(settings)).reply


def test_change_between_two_dates_of_a_stack(settings):
    import datetime as dt

    ws = ws_with(settings, "t1", "t2", "t3")
    for name, year in (("t1", 1985), ("t2", 2000), ("t3", 2020)):
        ws.rasters[name].date = dt.date(year, 7, 1)
    p = plan("what changed between 2020 and 1985?", ws)
    assert tools(p) == ["detect_changes"] and (p.calls[0].args["before"], p.calls[0].args["after"]) == ("t1", "t3")


def test_a_question_about_something_new_is_not_a_follow_up(settings, tmp_path):
    """After "is a meadow present?", "is there a military area?" asks about something lite
    mode cannot see: it is refused, not answered with the meadow's share. Bare follow-ups
    ("are there any?", "is there a large one?") still read the last result."""
    from rschat.agent import turn
    from rschat.geo.io import write_png

    image = tmp_path / "fields.png"
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[:, :32] = (90, 160, 60)  # grass
    rgb[:, 32:] = (170, 150, 120)  # bare soil
    write_png(image, rgb)
    ws = Workspace(settings)
    list(turn(ws, "is a meadow present?", uploads=[image]))
    for question, follows in [
        ("is there a military area?", False),
        ("Is a depot present?", False),
        ("are there any?", True),
        ("is there a large one?", True),
        ("are there any large?", True),
        ("are there many?", True),
        ("are there others nearby?", True),
        ("are there any in the north?", True),
        ("are there any depots?", False),
        ("is there a large depot?", False),
    ]:
        p = plan(question, ws)
        assert (p.use_result is not None) is follows, question
    refused = plan("is there a military area?", ws)
    assert not refused.answered and "cannot recognise 'military area'" in refused.reply
    assert "cannot recognise 'depots'" in plan("are there any depots?", ws).reply
    assert "RSCHAT_VLM" in refused.reply and len(refused.reply) < 400  # plain and short, not the whole menu


@pytest.mark.parametrize(
    ("message", "focus"),
    [
        ("how much water is there?", "fraction"),
        ("how much forest is in the image?", "fraction"),
        ("is there a wood?", "presence"),
        ("is there water?", "presence"),
    ],
)
def test_how_much_asks_for_a_share_and_a_wood_is_trees(message, focus):
    from rschat.agent.vocabulary import focus_of

    assert focus_of(message) == focus
    if "wood" in message:
        assert class_of(message) == "trees"


@pytest.mark.parametrize(
    "message",
    [
        "count buildings, skipping the no-data edge",
        "how many trees, leaving out the no data?",
        "how much water is there, ignoring no-data pixels?",
        "what is the mean NDVI of pixels with data?",
        "what changed, ignoring the no data edge?",
        "how much of the vegetation has data?",
        "what is the NDVI where there is no data?",
        "segment the blank areas",
    ],
)
def test_questions_that_only_mention_no_data_are_not_about_it(settings, message):
    """A review found these answered '0.0%' or '100.0%' by image_info."""
    ws = ws_with(settings, "image")
    assert "image_info" not in tools(plan(message, ws))
