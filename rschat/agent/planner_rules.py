"""The rule planner: a chat message (and the session's state) -> a plan of tool calls.

Two stages, as small models are also asked to do: classify the task (intent, from the
tools' own phrases and the agent's, see ``vocabulary.intents``), then fill the slots
(target class or object with synonyms, which image, which box or point, which index) in
a planner for that intent. Some requests become chains ("how many buildings appeared in
the box?" -> detect_changes in the box -> count_objects inside the changed area); vague
ones are decomposed ("assess the water in the indicated area" -> segment water in the
box -> measure it -> describe the box). A follow-up that names no task refers to the last
result. An intent with no planner of its own gets a call of its tool with the image, box
and region, so a new tool is planned without touching this file. Change questions are
planned in ``planner_change``, closed questions and counts in ``planner_closed``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rschat.agent.planner_change import dated_pair, patch_followup, plan_change
from rschat.agent.planner_closed import plan_closed, plan_compare, plan_count, recount_bounded
from rschat.agent.planner_export import plan_export
from rschat.agent.planner_landuse import plan_land_use
from rschat.agent.plans import Plan, Request, need_image, plan_largest, single_image, where, with_box
from rschat.agent.short_answer import regions_within_focus
from rschat.agent.steps import ToolCall
from rschat.agent.vocabulary import (
    BOX_WORDS,
    BUILDING_USE,
    BUILDING_USE_CANNOT,
    GENERATION_SLOTS,
    INDEX_WORDS,
    REFERS_BACK,
    TEXT_TARGET,
    THIS,
    VARIATION,
    VQA_NEEDS,
    WHOLE_IMAGE,
    area_bounds_of,
    asked_area_unit,
    asked_per_unit,
    asked_thing,
    attributes_of,
    capabilities,
    class_of,
    fix_typos,
    focus_of,
    intent_of,
    named_part,
    names_new_thing,
    object_of,
    out_of_reach,
    scope_followup,
    second_area_unit,
)
from rschat.agent.workspace import StoredResult, Workspace
from rschat.backends.counting_classical import MAX_BUILDING_GSD_M
from rschat.geo.bands import without_band_order
from rschat.geo.stack import stack_names
from rschat.tools import REGISTRY
from rschat.tools.base import Tool
from rschat.tools.image_info import about_of


def _tools_for(intent: str) -> list[Tool]:
    return [t for t in REGISTRY.values() if any(p.intent == intent for p in t.phrases)]


def _unavailable(req: Request) -> Plan | None:
    """A reply when every tool serving the intent needs a model the settings do not name."""
    tools = _tools_for(req.intent or "")
    missing = [t.unavailable(req.ws.settings) for t in tools]
    if not tools or not all(missing):
        return None
    what = missing[0].missing  # type: ignore[union-attr]
    reply = f"I can't do {what} in lite mode. What I can do:\n\n{capabilities(req.ws.settings)}"
    return Plan(req.intent or "", reply=reply, answered=False)


# -- full-mode planners ----------------------------------------------------------------


def _plan_generate(req: Request) -> Plan | None:
    """Text to image, or a variation of the session's image; '256 px', 'in 10 steps' and
    'seed 7' in the message set the size, steps and seed."""
    from_image = bool(req.image == "image" and VARIATION.search(req.message))
    args: dict[str, Any] = {"prompt": req.message, "from_image": from_image}
    for key, pattern in GENERATION_SLOTS.items():
        if m := pattern.search(req.message):
            args[key] = int(m.group(1))
    why = "generate an image" + (" from the session's image" if from_image else "")
    return Plan("generate", [ToolCall("generate_image", args, why)])


def _plan_outline(req: Request) -> Plan | None:
    """SAM: the object under the user's point or box, everything, or objects named in text."""
    ws, image = req.ws, req.image
    if not ws.settings.sam or image is None:
        return None
    if (ws.current_point() or ws.current_box()) and THIS.search(req.message):
        args: dict[str, Any] = {"image": image, "mode": "prompt"}
        if ws.points:
            args["points"] = [[x, y, 1 if pos else 0] for x, y, pos in ws.points]
        if req.box:
            args["box"] = list(req.box)
        return Plan("segment", [ToolCall("segment_objects", args, "outline the marked object with SAM")])
    if re.search(r"\b(everything|all objects)\b", req.message, re.I):
        call = ToolCall("segment_objects", {"image": image, "mode": "everything"}, "segment everything with SAM")
        return Plan("segment", [call])
    m = TEXT_TARGET.search(req.message)
    if ws.settings.clip and m and class_of(m.group(1)) is None:
        target = m.group(1).strip()
        args = {"image": image, "mode": "text", "text": target}
        return Plan("segment", [ToolCall("segment_objects", args, f"outline '{target}' with SAM, named by CLIP")])
    return None


def _out_of_reach(req: Request) -> Plan | None:
    """A plain 'cannot tell' for a question about something no tool recognises (roads,
    harbours, species), instead of a land-cover table that reads as an answer. Change,
    time series and counts of a known object keep their tools, unless the question asks
    for buildings of one use ("how many commercial buildings?", "how many new
    residential buildings?"), which would silently be all buildings."""
    if BUILDING_USE.search(req.message) and req.intent not in ("help", "clear"):
        cannot: str | None = BUILDING_USE_CANNOT
    elif req.intent in ("change", "timeseries", "help", "clear") or (req.intent == "count" and req.obj):
        return None
    else:
        cannot = out_of_reach(req.message)
    if cannot is None:
        return None
    reply = (
        f"Lite mode cannot {cannot}, so I won't guess. Set RSCHAT_VLM to a vision-language model for "
        f"free-form questions (full mode; see the README). What I can do:\n\n{capabilities(req.ws.settings)}"
    )
    return Plan("vqa", reply=reply, answered=False)


_HEALTH = re.compile(r"\b(?:health(?:y)?|unhealthy|diseased?|stressed|vigou?r(?:ous)?|condition|in good shape)\b", re.I)


def _plan_tree_health(req: Request) -> Plan | None:
    """'Are the trees healthy?': lite mode sees leaves, not health, so the trees are counted
    and the answer gives how many look leafless or dead, and what would judge more."""
    if req.obj != "tree" and req.cls != "trees" or not _HEALTH.search(req.message) or req.image is None:
        return None
    if req.intent in ("change", "timeseries", "count"):  # "how many healthy trees?" is a count of living ones
        return None
    args = with_box({"target": "tree", "image": req.image}, req.ws)
    return Plan(
        "count",
        [ToolCall("count_objects", args, "count the trees and the leafless or dead ones" + where(req.ws))],
        "tree_health",
    )


# -- lite planners, one per intent -------------------------------------------------------


def _plan_timeseries(req: Request) -> Plan:
    if len(stack_names(req.ws.rasters)) < 3:
        return Plan(
            "timeseries",
            reply="A time series needs three or more dated images: upload them together "
            "(dates in the file names such as 1985.tif or scene_20200831.tif), then ask again.",
            answered=False,
        )
    m = INDEX_WORDS.search(req.message)
    index = m.group(1).lower() if m else "water" if req.cls == "water" else "auto"
    names = {"water": "a water index (MNDWI, else NDWI)", "auto": "NDVI (else brightness)"}
    why = names.get(index, index.upper()) + " through the dated images"
    return Plan("timeseries", [ToolCall("analyze_timeseries", with_box({"index": index}, req.ws), why)], req.focus)


# A year, or a full date ("on 2016-06-15": that date's row, not every row of 2016).
_ONE_YEAR = re.compile(r"\b(?:in|on|for|of|at|about)\s+((?:19|20)\d\d(?:-\d\d-\d\d)?)\b")


def _plan_date_followup(req: Request) -> Plan | None:
    """'What is the NDVI in 2005?' after a time series: that date's row of its table, not
    the land cover of the last image. Change between years ('between 1990 and 2020') and a
    new series keep their own planners."""
    last = req.ws.last_result()
    m = _ONE_YEAR.search(req.message)
    if last is None or last.tool != "analyze_timeseries" or m is None or req.intent not in (None, "spectral_index"):
        return None  # "how many trees in 2020?", "describe the image of 2020": their own tools
    if req.obj:
        return None
    index = INDEX_WORDS.search(req.message)
    series = last.result.kept.target or ""
    if (index and index.group(1).lower() != series) or req.cls not in (None, "vegetation"):
        return None  # "the NDWI in 2005" after an NDVI series, "how much forest in 2000?"
    return Plan("followup", focus=f"date:{m.group(1)}", use_result=last.id)


# "which year had the most water?", "when was the NDVI highest?": a date asked for, not "what
# is the largest lake?" nor "the maximum NDVI in the last image".
_EXTREME_DATE = re.compile(
    r"\b(?:(?:which|what) (?:year|date|time|image|month|season)s?|when)\b"
    r"(?=[^.?!]{0,80}?\b(lowest|least|minimum|smallest|highest|most|maximum|largest|peak(?:ed)?)\b)",
    re.I,
)


_WHEN_CHANGED = re.compile(
    r"(?:^|[.!?;])\s*when\b[^.!?]*\b(?:mov|chang|shift|shr[iu]nk|grow|grew|appear|disappear|flood|dr(?:y|ied)|clear|cut|lost|retreat|"
    r"expand|migrat|meander)",
    re.I,
)


def _plan_when_changed(req: Request) -> Plan | None:
    """'When did the river move?', 'when was the forest cleared?' on three or more dated
    images: the index through the dates, answered with the interval that changed most (for
    water, the pixels that turned water or land)."""
    if not _WHEN_CHANGED.search(req.message) or len(stack_names(req.ws.rasters)) < 3:
        return None
    m = INDEX_WORDS.search(req.message)
    index = m.group(1).lower() if m else "water" if req.cls == "water" else "auto"
    why = ("a water index" if index == "water" else index.upper()) + " through the dated images: when it changed most"
    call = ToolCall("analyze_timeseries", with_box({"index": index}, req.ws), why)
    return Plan("timeseries", [call], "when_changed")


def _plan_other_dates(req: Request) -> Plan | None:
    """'What about between 2000 and 2020 only?' after a change question: the same comparison
    between the two dates named."""
    last = req.ws.last_result()
    pair = dated_pair(req.message, req.ws)
    series_class = {"ndvi": "vegetation", "ndwi": "water", "mndwi": "water"}.get(
        str(last.result.kept.target) if last is not None else ""
    )
    if (
        last is not None
        and last.tool == "analyze_timeseries"
        and pair is not None
        and req.intent is None
        and req.obj is None
        and req.cls in (None, series_class)
    ):
        # after a trend: the index on those two dates, from its table
        return Plan("followup", focus=f"between:{pair[0]}:{pair[1]}", use_result=last.id)
    if last is None or last.tool != "detect_changes" or pair is None or req.intent is not None or req.obj:
        return None
    if req.cls not in (None, last.args.get("target")):
        return None  # another class: a question of its own
    args = {**last.args, "before": pair[0], "after": pair[1]}
    why = f"the last comparison again, between {pair[0]} and {pair[1]}"
    return Plan("followup", [ToolCall("detect_changes", args, why)], req.ws.last_focus)


# no two adjacent quantifiers over the same characters: linear on 300 kB of spaces
_YEAR_ONLY = re.compile(r"\W*(?:(?:and|what about|how about)\s+)?(?:(?:in|for|on|at)\s+)?((?:19|20)\d\d)\W*", re.I)


def _plan_other_year(req: Request) -> Plan | None:
    """'And in 1985?' after a one-image question about a dated stack's image: the same
    call on the image of that year."""
    last = req.ws.last_result()
    m = _YEAR_ONLY.fullmatch(req.message)
    if last is None or m is None or "image" not in last.args:
        return None
    stack = stack_names(req.ws.rasters)
    by_year = {req.ws.rasters[n].date.year: n for n in stack if req.ws.rasters[n].date is not None}  # type: ignore[union-attr]
    name = by_year.get(int(m.group(1)))
    if name is None:
        return None
    why = f"the last question ({last.tool.replace('_', ' ')}) again on {name} ({m.group(1)})"
    return Plan("followup", [ToolCall(last.tool, {**last.args, "image": name}, why)], req.ws.last_focus)


def _plan_extreme_date(req: Request) -> Plan | None:
    """'Which year had the lowest NDVI?', 'which year had the most water?' on a dated stack:
    the date of the series' lowest (or highest) mean, from the stored series of that index
    (the last one, whatever was asked since), else from a new series of it (a water index
    for water, NDVI for vegetation)."""
    m = _EXTREME_DATE.search(req.message)
    if m is None or req.obj or len(stack_names(req.ws.rasters)) < 3:
        return None
    named = INDEX_WORDS.search(req.message)
    asked = named.group(1).lower() if named else {"water": "water", "vegetation": "ndvi"}.get(req.cls or "")
    if asked is None and req.cls is not None:
        return None  # a class's cover through the years: not a series of an index
    low = m.group(1).lower() in ("lowest", "least", "minimum", "smallest")
    water = ":water" if asked == "water" else ""  # "the most water": its share, not the mean index
    focus = f"date_of:{'min' if low else 'max'}{water}"
    held = [r for r in reversed(req.ws.results) if r.tool == "analyze_timeseries" and req.ws.is_current(r)]
    kinds = (asked,) if asked != "water" else ("ndwi", "mndwi")
    series = held[0] if held and asked is None else next((r for r in held if r.result.kept.target in kinds), None)
    if series is not None:
        return Plan("followup", focus=focus, use_result=series.id)
    if asked is None:
        return None
    why = ("a water index (MNDWI, else NDWI)" if asked == "water" else asked.upper()) + " through the dated images"
    return Plan("timeseries", [ToolCall("analyze_timeseries", with_box({"index": asked}, req.ws), why)], focus)


def _plan_object_size(req: Request) -> Plan | None:
    """'How big is the largest building?', 'the average tree?', 'the tree density?': single
    objects' sizes or their number per ha from the count (footprints, crowns), not the
    class's largest patch or cover share of land cover; answered
    from the last count of the same objects when there is one."""
    if req.obj not in ("tree", "building") or req.focus not in (
        "largest",
        "smallest",
        "average",
        "average_diameter",
        "density",
    ):
        return None
    last = req.ws.last_result()
    if last is not None and last.tool == "count_objects" and _same_objects(req, last.args):
        return Plan("followup", focus=req.focus, use_result=last.id)
    plan = plan_count(req)
    plan.focus = req.focus
    return plan


def _same_objects(req: Request, counted: dict[str, Any]) -> bool:
    """Whether a count is of the objects a question asks about: the same kind, image and
    box, and the same size, shape and area words ('the tree density' after 'how many of
    them are large?' asks about all the trees, not the large ones)."""
    size, shape = attributes_of(req.message)
    asked = {"target": req.obj, "image": req.image, "box": list(req.box) if req.box else None,
             "size": size, "shape": shape, **dict.fromkeys(("min_area_m2", "max_area_m2")),
             **area_bounds_of(req.message)}  # fmt: skip
    return all(counted.get(k) == v for k, v in asked.items())


def _plan_rescoped(req: Request) -> Plan | None:
    """'And in the box?', 'what about the whole image?': the last call again, over the box,
    the drawn region or the whole image, asking for the same figure."""
    scope = scope_followup(req.message)
    last = req.ws.last_result()
    if scope is None or last is None or req.obj is not None or req.cls is not None:
        return None
    takes = REGISTRY[last.tool].schema().get("properties", {})
    if scope.split()[0] in _OTHER_DATE:  # "what about the other image?": the same area of the other date
        return _on_other_image(req, last, scope, takes)
    if "box" not in takes:
        return None
    args = {k: v for k, v in last.args.items() if k not in ("box", "region")}
    if scope == "box" and req.box is not None:
        args["box"] = list(req.box)
    elif "region" in scope or scope == "area i drew":
        if req.ws.region is None or "region" not in takes:
            return Plan("missing", reply="There is no region drawn on the map: draw one on the Map tab, then ask "
                        "again.", answered=False)  # fmt: skip
        args["region"] = True
    why = f"the last question ({last.tool.replace('_', ' ')}) again{where(req.ws) if 'box' in args else ''}"
    return Plan("followup", [ToolCall(last.tool, args, why)], req.ws.last_focus)


_OTHER_DATE = {"other": None, "before": "before", "first": "before", "earlier": "before", "older": "before",
               "after": "after", "second": "after", "later": "after", "newer": "after"}  # fmt: skip


def _on_other_image(req: Request, last: StoredResult, scope: str, takes: dict[str, Any]) -> Plan | None:
    """The last one-image call on the pair's other image (or the one named)."""
    image = last.args.get("image")
    rasters = req.ws.rasters
    if image == "image" and req.ws.paired_by_upload():  # the single image is also one of the pair
        image = next((n for n in ("after", "before") if rasters.get(n) is rasters.get("image")), image)
    if "image" not in takes or image not in ("before", "after") or not {"before", "after"} <= set(rasters):
        return None
    wanted = _OTHER_DATE[scope.split()[0]] or ("after" if image == "before" else "before")
    args = {**last.args, "image": wanted}
    why = f"the last question ({last.tool.replace('_', ' ')}) again on the {wanted} image"
    return Plan("followup", [ToolCall(last.tool, args, why)], req.ws.last_focus)


# "and in acres?", "how much in hectares?" (the second half of "what changed, and how much
# in hectares?"): the last figure again, in a unit
_IN_UNIT = re.compile(r"\s*(?:(?:and|so|what about|how about)\s+)?(?:how much\s+)?in\s", re.I)


_NAMES_FIGURE = re.compile(
    r"\b(?:area|cover(?:s|ed)?|footprints?|largest|smallest|biggest|average)\b|"
    r"\bhow many (?:hectares|acres|square|sq|km2|m2)\b",
    re.I,
)


def _plan_unit_followup(req: Request) -> Plan | None:
    """'How much is that in acres?': the last answer's figure again, in the unit asked."""
    last = req.ws.last_result()
    # "how much is that in acres?", or a bare "and in square feet?"
    asks_again = REFERS_BACK.search(req.message) or _IN_UNIT.match(req.message)
    if last is None or req.cls is not None or req.obj is not None or not asks_again:
        return None
    if asked_area_unit(req.message) is None:
        return None
    if req.ws.last_unanswered:
        reply = (
            "Your last question was not answered, so there is no figure of it to give in that unit: ask it again "
            "with the unit (*how much of it is forest, in acres?*)."
        )
        return Plan("followup", reply=reply, answered=False)
    # "how much area do they cover, in acres?" after a count asks for their area, not the
    # count again; "and in square feet?" for the last figure asked, whatever it was
    names_figure = _NAMES_FIGURE.search(req.message)
    asked = req.focus if names_figure and req.focus in ("area", "largest", "smallest", "average") else None
    # "in acres?" after a share or a count: the area behind it (a percent has no acres)
    last_focus = req.ws.last_focus
    kept = (
        last_focus
        if last_focus in ("largest", "smallest", "average") or (last_focus or "").startswith("cover_")
        else None
    )
    return Plan("followup", focus=asked or kept or "area", use_result=last.id)


def _plan_followup(req: Request) -> Plan | None:
    """A question about the last result ('how big is the largest one?'), answered from it."""
    last = req.ws.last_result()
    # "is there a depot?" after "is there grass?" asks about a depot, not the grass
    names_something_new = req.focus in ("presence", "count") and names_new_thing(req.message)
    # "how much area do they cover?" reads as land cover ("how much"), but "they" are the last answer's
    refers_back = req.intent in (None, "count", "measure", "segment") and (
        REFERS_BACK.search(req.message) if req.intent is not None else not names_something_new
    )
    if refers_back and req.focus is not None and last is not None and req.obj is None and req.cls is None:
        return Plan("followup", focus=req.focus, use_result=last.id)
    return None


def _buildings_footprints(req: Request, focus: str = "area") -> Plan | None:
    """'What is the total area of the buildings?', 'what percentage is covered by
    buildings?': their footprints, from the last count of buildings or a new one, where the
    pixels resolve single buildings; not the largest built-up region, nor the built-up
    land's share (roads, drives and yards with the roofs: 62% of a LEVIR tile whose
    buildings cover 25%)."""
    raster = req.ws.rasters.get(req.image or "")
    if req.obj != "building" or raster is None or (raster.pixel_size_m() or 0.0) > MAX_BUILDING_GSD_M:
        return None
    if focus == "fraction" and raster.pixel_size_m() is None:
        return None  # a share needs the footprints' area: without a pixel size, the built-up land's
    last = req.ws.last_result()
    if last is not None and last.tool == "count_objects" and _same_objects(req, last.args):
        return Plan("followup", focus=focus, use_result=last.id)
    plan = plan_count(req)
    plan.focus = focus
    return plan


def _plan_measure(req: Request) -> Plan:
    ws, image, cls = req.ws, req.image, req.cls
    if (footprints := _buildings_footprints(req)) is not None:
        return footprints
    if cls is not None and cls != "vegetation":
        return plan_largest(req, cls)
    if ws.region is not None and req.box is None:
        return Plan("measure", [ToolCall("measure", {"image": image, "what": "region"}, "measure the drawn region")])
    last = ws.last_result()
    if req.box is None and last is not None:
        return Plan("followup", focus="area", use_result=last.id)
    args = {"image": image, "what": "box", **({"box": list(req.box)} if req.box else {})}
    return Plan("measure", [ToolCall("measure", args, "measure the box")])


def _plan_assess(req: Request) -> Plan:
    ws, image, target = req.ws, req.image, req.cls or "all"
    segment_why = f"segment {target.replace('_', ' ')}" + (" in the box" if req.box else "")
    calls = [ToolCall("segment", with_box({"image": image, "target": target}, ws), segment_why)]
    if target != "all" and req.box is None:
        calls.append(
            ToolCall("measure", {"image": image, "what": "largest_region"}, f"measure the largest {target} area")
        )
    calls.append(ToolCall("describe_scene", with_box({"image": image}, ws), "describe the area"))
    return Plan("assess", calls)


def _plan_describe(req: Request) -> Plan:
    return Plan("describe", [ToolCall("describe_scene", with_box({"image": req.image}, req.ws), "describe the scene")])


def _plan_segment(req: Request) -> Plan:
    if req.focus == "fraction" and (footprints := _buildings_footprints(req, "fraction")) is not None:
        return footprints
    target = req.cls or "all"
    point = req.ws.current_point()
    if point and re.search(r"\bis (this|it|that|here)\b|\bwhat is (this|here)\b", req.message, re.I):
        # A question about a clicked point: classify the whole image, read the point.
        call = ToolCall("segment", {"image": req.image, "target": target}, f"land cover at the point {point}")
        return Plan("segment", [call], focus="point", point=point)
    if req.focus == "rural_urban" and _only_buildings_readable(req):
        args = with_box({"target": "building", "image": req.image}, req.ws)
        why = "rural or urban from the buildings' share (one band: no land cover)"
        return Plan("segment", [ToolCall("count_objects", args, why)], focus=req.focus)
    args = with_box({"image": req.image, "target": target}, req.ws)
    return Plan("segment", [ToolCall("segment", args, f"land cover ({target.replace('_', ' ')})")], focus=req.focus)


def _only_buildings_readable(req: Request) -> bool:
    """A one-band (panchromatic) image at building scale: land cover needs colour, but the
    building model reads grey roofs, so the buildings' share can say rural or urban."""
    raster = req.ws.rasters.get(req.image or "")
    if raster is None or raster.count != 1:
        return False
    gsd = raster.pixel_size_m()
    return gsd is None or gsd <= MAX_BUILDING_GSD_M


# "when were these taken?", "what are the acquisition dates?" (of a pair: both)
_EVERY_IMAGE = re.compile(r"\b(these|those|they|both|all|each|every)\b|\bimages\b|\bdates\b", re.I)


def _plan_image_info(req: Request) -> Plan:
    """Facts about the image the question names, or about each image ('when were these
    images taken?')."""
    about = about_of(req.message)
    every = stack_names(req.ws.rasters) or list(req.ws.rasters)  # a stack's dates, not its before/after aliases
    names = every if _EVERY_IMAGE.search(req.message) else [req.image]
    calls = [ToolCall("image_info", {"image": n, "about": about}, f"read the facts of {n}") for n in names]
    return Plan("image_info", calls, focus=about if len(calls) == 1 else None)


def _plan_tool(req: Request) -> Plan | None:
    """Any other tool's intent: call its first available tool with the image, the box and
    the region where its arguments take them."""
    tools = [t for t in _tools_for(req.intent or "") if t.unavailable(req.ws.settings) is None]
    if not tools:
        return None
    tool = tools[0]
    takes = tool.schema().get("properties", {})
    args: dict[str, Any] = {"image": req.image} if "image" in takes else {}
    if tool.slots is not None:
        args |= tool.slots(req.message)
    if "box" in takes and req.box:
        args["box"] = list(req.box)
    if "region" in takes and req.ws.region is not None:
        args["region"] = True
    # A tool whose slots read what the question asks about ("about": the pixel size, the
    # CRS) answers that first, and the short answer is that figure.
    focus = args.get("about", req.focus)
    call = ToolCall(tool.name, args, f"{tool.name.replace('_', ' ')}{where(req.ws)}")
    return Plan(req.intent or tool.name, [call], focus=focus)


# Planners that need no image of their own check (they say what is missing themselves).
_SESSION_PLANNERS: dict[str, Callable[[Request], Plan]] = {"timeseries": _plan_timeseries, "change": plan_change}
# Planners for one image ("image", "after" or the last date).
_IMAGE_PLANNERS: dict[str, Callable[[Request], Plan]] = {
    "count": plan_count,
    "measure": _plan_measure,
    "assess": _plan_assess,
    "describe": _plan_describe,
    "segment": _plan_segment,
    "image_info": _plan_image_info,
}


def _request(message: str, ws: Workspace) -> Request:
    # What the message asks, without what it states about the image ("the bands are SWIR1,
    # NIR, red, green": its "green" is no vegetation).
    asked = without_band_order(message)
    intent = intent_of(asked)
    cls = class_of(asked)
    if intent == "outline" and not ws.settings.sam and cls is not None:
        intent = "segment"  # "outline the lake" without SAM: the lake from the land cover
    return Request(asked, ws, intent, focus_of(asked), cls, object_of(asked), single_image(asked, ws))


def plan(message: str, ws: Workspace) -> Plan:
    # what the message asks, read as meant: without what it states about the bands ("the
    # bands are r, g, b" is no question), shorthand and misspelt domain words corrected
    message = fix_typos(without_band_order(message))
    if WHOLE_IMAGE.search(message) and (ws.boxes or ws.region is not None):
        with ws.prompts_set_aside():  # "how much water in the whole image?" with a box drawn
            planned = _plan(message, ws)
    elif (part := _part_as_box(message, ws)) is not None:
        label, box = part
        with ws.box_for_question(box):  # "what changed in the north half?"
            planned = _plan(message, ws)
        for call in planned.calls:
            if call.args.get("box") == list(box):
                call.why += f" (the {label}: pixels x {box[0]}-{box[2]}, y {box[1]}-{box[3]})"
    else:
        planned = _plan(message, ws)
    planned = _recomputed_if_stale(planned, ws)
    counts_areas = planned.focus == "count" and planned.calls and planned.calls[-1].tool == "segment"
    if counts_areas and (bounds := area_bounds_of(message)):  # "how many water bodies are larger than 10 ha?"
        planned.focus = regions_within_focus(bounds)
    planned.unit = asked_area_unit(message)
    planned.also_unit = second_area_unit(message)
    if planned.focus == "density":  # "how many trees per acre?": the density in that unit
        planned.unit = planned.unit or asked_per_unit(message)
    if (which := _asks_dead_or_living(message, planned, ws)) is not None:
        planned.focus = which  # "how many dead trees?", "and how many living ones?": part of the count
    return planned


def _part_as_box(message: str, ws: Workspace) -> tuple[str, tuple[int, int, int, int]] | None:
    """A part of the image named in words, as a box in pixels of the image the prompts are
    drawn on (the single image, or a pair's before image, whose grid the after image is
    reprojected onto)."""
    part = named_part(message)
    shown = next((n for n in ("image", "before") if n in ws.rasters), next(iter(ws.rasters), None))
    if part is None or shown is None:
        return None
    label, (fx0, fy0, fx1, fy1) = part
    r = ws.rasters[shown]
    return label, (round(fx0 * r.width), round(fy0 * r.height), round(fx1 * r.width), round(fy1 * r.height))


def _recomputed_if_stale(planned: Plan, ws: Workspace) -> Plan:
    """A follow-up on a result computed before its images changed (a pixel size or band
    order stated since, a new upload under the same name) runs that call again on the
    images as they are now, rather than answering from figures that no longer apply."""
    stored = next((s for s in ws.results if s.id == planned.use_result), None)
    if stored is None or ws.is_current(stored):
        return planned
    why = f"{stored.tool.replace('_', ' ')} again: the images changed since result {stored.id}"
    return Plan(planned.intent, [ToolCall(stored.tool, dict(stored.args), why)], planned.focus)


_DEAD = re.compile(r"\b(?:dead|leafless|snags?|dying)\b", re.I)
_LIVING = re.compile(r"\b(?:living|alive|live|healthy|green|leafy)\b", re.I)


def _asks_dead_or_living(message: str, planned: Plan, ws: Workspace) -> str | None:
    """'count_dead' or 'count_living' when a count of trees (run now, or the stored one a
    follow-up reads) asks for its leafless-or-dead or its living part."""
    if planned.focus != "count":
        return None
    stored = next((s for s in ws.results if s.id == planned.use_result), None)
    calls = [*planned.calls, *([ToolCall(stored.tool, stored.args, "")] if stored else [])]
    if not any(c.tool == "count_objects" and c.args.get("target") == "tree" for c in calls):
        return None
    return "count_dead" if _DEAD.search(message) else "count_living" if _LIVING.search(message) else None


def _plan(message: str, ws: Workspace) -> Plan:
    req = _request(message, ws)
    if req.intent == "help":
        return Plan("help", reply=f"Here is what I can do:\n\n{capabilities(req.ws.settings)}")
    if req.intent == "clear":
        return Plan("clear", reply="The points and boxes are cleared.")
    if req.intent == "export":
        return plan_export(req)
    if BOX_WORDS.search(message) and req.box is None and ws.rasters:
        reply = (
            "There is no box on the image yet: drag one on the image (or give `--box X0,Y0,X1,Y1` in the CLI), "
            "then ask again."
        )
        return Plan(req.intent or "box", reply=reply, answered=False)
    full = _plan_generate(req) if req.intent == "generate" and ws.settings.generator else None
    if full is None and req.intent in ("outline", "segment", None):
        full = _plan_outline(req)
    if full is not None:
        return full
    unavailable = _unavailable(req)
    if unavailable is not None:
        return unavailable
    beyond = plan_land_use(req) or _plan_tree_health(req) or _out_of_reach(req)
    if beyond is not None:
        return beyond
    if req.intent in _SESSION_PLANNERS:
        return _SESSION_PLANNERS[req.intent](req)
    followup = (
        _plan_rescoped(req)
        or patch_followup(req)
        or _plan_unit_followup(req)
        or recount_bounded(req)
        or _plan_date_followup(req)
        or _plan_extreme_date(req)
        or _plan_other_year(req)
        or _plan_other_dates(req)
        or _plan_object_size(req)
        or _plan_followup(req)
    )
    if followup is not None:
        return followup
    when = _plan_when_changed(req)
    if when is not None:
        return when
    closed = plan_compare(req) if req.focus == "compare" else plan_closed(req)
    if closed is not None:
        return closed
    if req.intent is None and req.cls is not None:
        req.intent = "segment"  # a class named with no task: its land cover
    if req.intent is not None and req.image is None and (req.intent in _IMAGE_PLANNERS or _tools_for(req.intent)):
        return need_image("That")
    if req.intent in _IMAGE_PLANNERS:
        return _IMAGE_PLANNERS[req.intent](req)
    generic = _plan_tool(req) if req.intent else None
    if generic is not None:
        return generic
    return _unsupported(req)


def _unsupported(req: Request) -> Plan:
    """No tool serves the message. A closed question about a named thing ("is there a
    depot?") is told plainly that lite mode cannot see it; anything else gets the list of
    what lite mode does."""
    thing = asked_thing(req.message) if req.focus in ("presence", "count") else None
    if thing is not None:
        reply = (
            f"Lite mode cannot recognise {thing!r} in an image, so I won't guess. It maps land cover (water, trees, "
            "low vegetation, bare soil, built-up) and counts trees and buildings; set RSCHAT_VLM to a "
            "vision-language model for free-form questions (full mode; see the README), or ask *help*."
        )
        return Plan(req.intent or "unsupported", reply=reply, answered=False)
    return Plan(
        req.intent or "unsupported",
        reply=f"I can't do {VQA_NEEDS} in lite mode, and I won't guess. What I can do:\n\n{capabilities(req.ws.settings)}",
        answered=False,
    )
