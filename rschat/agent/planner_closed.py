"""The rule planner for closed questions about named things: *is there a large building?*,
*how many water areas are there?*, *what is the area covered by buildings?*, *are there
more than 10 buildings?*, *are there more buildings than water areas?*, and counts (*how
many trees larger than 20 m2?*). Each becomes the call that counts or measures the thing,
so that the short answer comes from that call's figures."""

from __future__ import annotations

import re

from rschat.agent.plans import Plan, Request, where, with_box
from rschat.agent.short_answer import regions_within_focus
from rschat.agent.steps import ToolCall
from rschat.agent.vocabulary import (
    COUNT_BOUND_FOCUS,
    COUNTABLE,
    RELATION,
    area_bounds_of,
    asked_thing,
    attributes_of,
    class_of,
    comparison_of,
    names_new_thing,
    object_of,
)
from rschat.backends.counting_classical import MAX_BUILDING_GSD_M
from rschat.geo.shapes import describe_bounds


def _counting_call(req: Request, text: str, focus: str) -> ToolCall | None:
    """The call that counts (or finds, or measures) the thing a phrase names, with its
    size and shape words: single buildings where the pixels resolve them, trees when
    counted, else the land-cover class's areas. None when the phrase names nothing a lite
    tool recognises."""
    obj, cls = object_of(text), class_of(text)
    size, shape = attributes_of(text)
    picked = {k: v for k, v in (("size", size), ("shape", shape)) if v}
    gsd = req.ws.rasters[req.image].pixel_size_m() if req.image in req.ws.rasters else None
    resolved = gsd is not None and gsd <= MAX_BUILDING_GSD_M
    # Counted buildings are single buildings (count_objects says when the pixels are too
    # coarse, or when a size cannot be measured); where they are not resolved, whether any
    # are there is built-up land, but "large buildings" are never built-up areas.
    # "larger than 200 m2" follows the thing counted, so it is read from the whole message.
    bounds = area_bounds_of(req.message) if obj in ("building", "tree") else {}
    if obj == "building" and (resolved or focus == "count" or picked or bounds):
        args = with_box({"target": "building", "image": req.image, **picked, **bounds}, req.ws)
        what = f"{describe_words(size, shape)}buildings{_bounded(bounds)}"
        return ToolCall("count_objects", args, f"count {what}" + where(req.ws))
    if obj == "tree" and (focus == "count" or size or bounds):  # "is there a large tree?": single crowns
        args = with_box({"target": "tree", "image": req.image, **picked, **bounds}, req.ws)
        return ToolCall(
            "count_objects", args, f"count {describe_words(size, shape)}trees{_bounded(bounds)}" + where(req.ws)
        )
    if cls is None:
        return None
    args = with_box({"image": req.image, "target": cls, **picked}, req.ws)
    what = f"{describe_words(size, shape)}{cls.replace('_', ' ')} areas"
    return ToolCall("segment", args, f"find the {what}" + where(req.ws))


def _bounded(bounds: dict[str, float]) -> str:
    text = describe_bounds(bounds.get("min_area_m2"), bounds.get("max_area_m2"))
    return f" {text}" if text else ""


def describe_words(size: str | None, shape: str | None) -> str:
    return "".join(f"{w} " for w in (size, shape) if w)


def _asked_head(message: str) -> str | None:
    """The thing a closed question counts, without the place named after it: 'how many cows
    are in the field?' asks for cows, not fields."""
    thing = asked_thing(message)
    if thing is None or re.match(
        r"(square|sq\b|hectares?|ha\b|acres?|m2|km2|metres?|meters?|pixels?|per ?cent|%|areas?\b|regions?\b|"
        r"patches|parts?\b|of\b)",
        thing,
    ):
        return None  # "how many square metres are covered by water?": an area, of the message's class
    return re.split(r"\s+(?:are|is|were|was|in|on|at|near|along|inside|within|by|around)\b", thing)[0]


def plan_closed(req: Request) -> Plan | None:
    """A closed question about a named thing ('is there a large building?', 'how many
    water areas are there?', 'what is the area covered by buildings?'): the call that
    counts or measures it, so the short answer comes from its figures. Where one thing
    lies relative to another is not judged: that gets a plain reply."""
    # "are there more than 10 buildings?" counts them
    asked = "count" if COUNT_BOUND_FOCUS.fullmatch(req.focus or "") else req.focus
    if asked not in ("presence", "count", "area") or req.image is None or req.intent not in _CLOSED_INTENTS:
        return None
    if RELATION.search(req.message):
        return _relation_reply()
    call = _counting_call(req, _asked_head(req.message) or req.message, asked)
    if call is None or (req.focus == "area" and call.tool == "count_objects" and call.args["target"] == "tree"):
        return None
    return Plan("count" if call.tool == "count_objects" else "segment", [call], req.focus)


_CLOSED_INTENTS = (None, "segment", "count")  # "how big is the lake?" measures the lake itself


def _relation_reply() -> Plan:
    reply = (
        "Lite mode does not judge where one object lies relative to another (next to, left of, above), so I "
        "won't guess. Ask about each thing on its own (e.g. *how many buildings are there?*), or set RSCHAT_VLM "
        "for free-form questions (full mode)."
    )
    return Plan("vqa", reply=reply, answered=False)


def plan_compare(req: Request) -> Plan | None:
    """'Are there more buildings than water areas?': count both, compare the counts."""
    sides = comparison_of(req.message)
    if sides is None or req.image is None:
        return None
    relation, first, second = sides
    if RELATION.search(first) or RELATION.search(second):
        return _relation_reply()
    amounts = [t for t in (first, second) if object_of(t) is None and not COUNTABLE.search(t)]
    if amounts:
        reply = (
            f"I compare numbers of things (e.g. *are there more water areas than forests?*); '{amounts[0]}' is an "
            "amount, not a number. For amounts, ask for the land cover (*how much of the image is water?*) and "
            "compare the shares it gives."
        )
        return Plan("compare", reply=reply, answered=False)
    calls = [_counting_call(req, text, "count") for text in (first, second)]
    if None in calls:
        unknown = first if calls[0] is None else second
        reply = (
            f"I can't count '{unknown}' in lite mode, so I won't compare. Lite mode counts trees, buildings and "
            "the areas of a land-cover class (water, trees, grass, bare soil, built-up)."
        )
        return Plan("compare", reply=reply, answered=False)
    return Plan("compare", [c for c in calls if c is not None], f"compare_{relation}")


def recount_bounded(req: Request) -> Plan | None:
    """'How many are larger than 200 m2?', 'how many of them are under 50 m2?', 'how many of
    them are large?' after a count: the same objects, over the same image and box, counted
    again within the bounds or of that size or shape."""
    last = req.ws.last_result()
    bounds = area_bounds_of(req.message)
    if not bounds and last is not None and last.tool == "count_objects":
        return _recount_sized(req, last.args)
    if not bounds or last is None or req.obj is not None or req.cls is not None:
        return None
    if last.tool == "detect_changes" and last.args.get("target") == "building" and req.focus == "count":
        # "how many of them are bigger than 100 m2?" after new buildings: that change again, within the bounds
        args = {k: v for k, v in last.args.items() if k not in ("min_area_m2", "max_area_m2")} | bounds
        return Plan(
            "count", [ToolCall("detect_changes", args, f"buildings that appeared or went{_bounded(bounds)}")], "count"
        )
    if last.tool in ("detect_changes", "segment") and last.args.get("target") != "building" and req.focus == "count":
        # "how many are larger than 10 ha?" after "what changed?": the stored regions within the bounds
        return Plan("followup", focus=regions_within_focus(bounds), use_result=last.id)
    if last.tool != "count_objects":
        return None
    thing = asked_thing(req.message)
    if req.focus not in ("count", "presence") or (
        thing and not re.match(r"(are|is|were|was|there)\b", thing) and names_new_thing(req.message)
    ):
        return None  # "how many depots are larger than 200 m2?" names a thing of its own
    args = {k: v for k, v in last.args.items() if k not in ("min_area_m2", "max_area_m2")} | bounds
    why = f"count the {args.get('target')}s again{_bounded(bounds)}"
    return Plan("count", [ToolCall("count_objects", args, why)], req.focus)


def plan_count(req: Request) -> Plan:
    target = req.obj or ("tree" if req.cls == "trees" else None)
    if target is None:
        thing = _asked_head(req.message) if names_new_thing(req.message) else None
        if thing and re.match(r"(are|is|were|was|there)\b", thing):  # "how many are there?"
            thing = None
        what = f"Lite mode cannot recognise {thing!r}, so I won't guess. " if thing else "What should I count? "
        return Plan(
            "count",
            reply=f"{what}Lite mode counts trees and buildings (ask e.g. *how many trees are in this box?*); full "
            "mode counts other objects named in text (SAM + CLIP: set RSCHAT_SAM and RSCHAT_CLIP, see the README).",
            answered=False,
        )
    bounds = area_bounds_of(req.message)
    args = with_box({"target": target, "image": req.image, **bounds}, req.ws)
    return Plan(
        "count", [ToolCall("count_objects", args, f"count {target}s{_bounded(bounds)}" + where(req.ws))], "count"
    )


def _recount_sized(req: Request, last: dict) -> Plan | None:
    """'How many of them are large?', 'are any of them square?' after a count: the same
    count again with the size or shape word (None when the message has neither, or names a
    thing of its own)."""
    size, shape = attributes_of(req.message)
    picked = {k: v for k, v in (("size", size), ("shape", shape)) if v}
    if not picked or req.obj is not None or req.cls is not None or req.focus not in ("count", "presence"):
        return None
    if last.get("within_previous_mask"):  # counted inside a change: that chain again, not this count alone
        return None
    thing = asked_thing(req.message)
    if (
        thing
        and not re.match(r"(are|is|were|was|there|of|them|those|these|any)\b", thing)
        and names_new_thing(req.message)
    ):
        return None
    args = {k: v for k, v in last.items() if k not in ("size", "shape")} | picked
    why = f"count the {describe_words(size, shape)}{args.get('target')}s"
    return Plan("count", [ToolCall("count_objects", args, why)], req.focus)
