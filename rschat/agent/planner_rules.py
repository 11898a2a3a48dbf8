"""The rule planner: a chat message (and the session's state) -> a plan of tool calls.

Two stages, as small models are also asked to do: classify the task (intent, from the
tools' own phrases and the agent's, see ``vocabulary.intents``), then fill the slots
(target class or object with synonyms, which image, which box or point, which index) in
a planner for that intent. Some requests become chains ("how many buildings appeared in
the box?" -> detect_changes in the box -> count_objects inside the changed area); vague
ones are decomposed ("assess the water in the indicated area" -> segment water in the
box -> measure it -> describe the box). A follow-up that names no task refers to the last
result. An intent with no planner of its own gets a call of its tool with the image, box
and region, so a new tool is planned without touching this file.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rschat.agent.steps import ToolCall
from rschat.agent.vocabulary import (
    BEFORE_WORDS,
    COUNTABLE,
    GENERATION_SLOTS,
    INDEX_WORDS,
    REFERS_BACK,
    RELATION,
    TEXT_TARGET,
    THIS,
    VARIATION,
    VQA_NEEDS,
    asked_thing,
    attributes_of,
    capabilities,
    class_of,
    comparison_of,
    focus_of,
    intent_of,
    names_new_thing,
    object_of,
    out_of_reach,
)
from rschat.agent.workspace import Workspace
from rschat.backends.counting_classical import MAX_BUILDING_GSD_M
from rschat.geo.stack import stack_names
from rschat.tools import REGISTRY
from rschat.tools.base import Tool


@dataclass
class Plan:
    intent: str
    calls: list[ToolCall] = field(default_factory=list)
    focus: str | None = None  # which number the user asked about
    reply: str | None = None  # a direct answer when no tool runs (help, not yet, missing input)
    use_result: str | None = None  # id of a stored result a follow-up refers to
    point: tuple[float, float] | None = None  # a clicked point the answer is about
    answered: bool = True  # False: the reply says what is missing or out of reach (CLI exits 1)


@dataclass
class Request:
    """A message with its slots filled, and the session it is about."""

    message: str
    ws: Workspace
    intent: str | None
    focus: str | None
    cls: str | None  # land-cover class named in the message
    obj: str | None  # countable object named in the message
    image: str | None  # which raster a one-image tool should use

    @property
    def box(self) -> tuple[int, int, int, int] | None:
        return self.ws.current_box()


def _single_image(message: str, ws: Workspace) -> str | None:
    """Which raster a one-image tool should use: the single image, else the after (or
    before when asked), else the last date of a stack."""
    if "before" in ws.rasters and BEFORE_WORDS.search(message):
        return "before"
    for name in ("image", "after"):
        if name in ws.rasters:
            return name
    stack = stack_names(ws.rasters)
    return stack[-1] if stack else None


def _with_box(args: dict[str, Any], ws: Workspace) -> dict[str, Any]:
    """Arguments restricted to the user's current box and map region, when there are any."""
    box = ws.current_box()
    out = {**args, "box": list(box)} if box else dict(args)
    if ws.region is not None:
        out["region"] = True
    return out


def _where(ws: Workspace) -> str:
    return (" in the box" if ws.current_box() else "") + (" inside the drawn region" if ws.region else "")


def _need_image(what: str) -> Plan:
    reply = f"{what} needs an image: upload one (PNG, JPEG or GeoTIFF) and ask again."
    return Plan("missing", reply=reply, answered=False)


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
    time series and counts of a known object keep their tools."""
    if req.intent in ("change", "timeseries", "help", "clear") or (req.intent == "count" and req.obj):
        return None
    cannot = out_of_reach(req.message)
    if cannot is None:
        return None
    reply = (
        f"Lite mode cannot {cannot}, so I won't guess. Set RSCHAT_VLM to a vision-language model for "
        f"free-form questions (full mode; see the README). What I can do:\n\n{capabilities(req.ws.settings)}"
    )
    return Plan("vqa", reply=reply, answered=False)


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
    return Plan("timeseries", [ToolCall("analyze_timeseries", _with_box({"index": index}, req.ws), why)], req.focus)


def _dated_pair(message: str, ws: Workspace) -> tuple[str, str] | None:
    """Two images of a dated stack named by their years in the message ('between 1990
    and 2020'), earlier first; None when the message names fewer than two stack dates."""
    stack = stack_names(ws.rasters)
    by_year = {ws.rasters[n].date.year: n for n in stack if ws.rasters[n].date is not None}  # type: ignore[union-attr]
    years = sorted({int(y) for y in re.findall(r"\b(19\d\d|20\d\d)\b", message)} & set(by_year))
    if len(years) < 2:
        return None
    return by_year[years[0]], by_year[years[-1]]


_BUILDING_CHANGE = re.compile(
    r"\bnew\b|appear|\bbuilt\b|\bbuild\b|construct|demolish|\bgone\b|\bremoved?\b|\bwent\b|torn down|knocked down|"
    r"\blost\b|vanish"
)


_BUILDING_GONE = re.compile(r"demolish|\bgone\b|\bremoved?\b|\bwent\b|disappear|torn down|knocked down|\blost\b|vanish")
_BUILDING_NEW = re.compile(r"\bnew\b|\bbuilt\b|\bbuild\b|construct|(?<!dis)appear")


def _plan_change(req: Request) -> Plan:
    ws, focus = req.ws, req.focus
    pair = _dated_pair(req.message, ws)
    # "Which buildings are new?": only buildings that appeared or went, not every change;
    # "what changed around the buildings?" still asks for any change.
    building_change = req.obj == "building" and _BUILDING_CHANGE.search(req.message.lower())
    target = {"target": "building"} if building_change else {}
    said = req.message.lower()
    if building_change and focus == "count" and _BUILDING_GONE.search(said):
        # "how many were demolished?": the number that went; "built or demolished?": both
        # numbers in the answer, and no single short answer.
        focus = None if _BUILDING_NEW.search(said) else "count_gone"
    if pair is not None:
        a, b = pair
        call = ToolCall("detect_changes", _with_box({"before": a, "after": b, **target}, ws), f"compare {a} with {b}")
        return Plan("change", [call], focus)
    if not {"before", "after"} <= set(ws.rasters):
        have = "one image" if "image" in ws.rasters else "no images"
        reply = (
            f"Change detection needs two images of the same place, and this session has {have}. Upload a before "
            "and an after image (two files in one message, or the before/after slots), then ask again."
        )
        return Plan("change", focus=focus, reply=reply, answered=False)
    args = _with_box({"before": "before", "after": "after", **target}, ws)
    what = "buildings that appeared or went" if target else "the before and after images"
    calls = [ToolCall("detect_changes", args, f"compare {what}" + _where(ws))]
    if focus == "count" and req.obj is not None and not target:
        # "how many trees appeared?": count on the after image inside the changed area (buildings
        # are counted by detect_changes itself, date against date).
        count_args = _with_box({"target": req.obj, "image": "after", "within_previous_mask": True}, ws)
        calls.append(
            ToolCall("count_objects", count_args, f"count {req.obj}s on the after image inside the changed area")
        )
        focus = None
    return Plan("change", calls, focus)


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
    if obj == "building" and (resolved or focus == "count" or picked):
        args = _with_box({"target": "building", "image": req.image, **picked}, req.ws)
        return ToolCall("count_objects", args, f"count {describe_words(size, shape)}buildings" + _where(req.ws))
    if obj == "tree" and focus == "count":
        args = _with_box({"target": "tree", "image": req.image, **picked}, req.ws)
        return ToolCall("count_objects", args, f"count {describe_words(size, shape)}trees" + _where(req.ws))
    if cls is None:
        return None
    args = _with_box({"image": req.image, "target": cls, **picked}, req.ws)
    what = f"{describe_words(size, shape)}{cls.replace('_', ' ')} areas"
    return ToolCall("segment", args, f"find the {what}" + _where(req.ws))


def describe_words(size: str | None, shape: str | None) -> str:
    return "".join(f"{w} " for w in (size, shape) if w)


def _plan_closed(req: Request) -> Plan | None:
    """A closed question about a named thing ('is there a large building?', 'how many
    water areas are there?', 'what is the area covered by buildings?'): the call that
    counts or measures it, so the short answer comes from its figures. Where one thing
    lies relative to another is not judged: that gets a plain reply."""
    if req.focus not in ("presence", "count", "area") or req.image is None or req.intent not in _CLOSED_INTENTS:
        return None
    if RELATION.search(req.message):
        return _relation_reply()
    call = _counting_call(req, req.message, req.focus)
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


def _plan_compare(req: Request) -> Plan | None:
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


def _plan_followup(req: Request) -> Plan | None:
    """A question about the last result ('how big is the largest one?'), answered from it."""
    last = req.ws.last_result()
    # "is there a depot?" after "is there grass?" asks about a depot, not the grass
    names_something_new = req.focus in ("presence", "count") and names_new_thing(req.message)
    refers_back = req.intent in (None, "count", "measure") and (
        REFERS_BACK.search(req.message) if req.intent is not None else not names_something_new
    )
    if refers_back and req.focus is not None and last is not None and req.obj is None and req.cls is None:
        return Plan("followup", focus=req.focus, use_result=last.id)
    return None


def _plan_count(req: Request) -> Plan:
    target = req.obj or ("tree" if req.cls == "trees" else None)
    if target is None:
        return Plan(
            "count",
            reply="What should I count? Lite mode counts trees and buildings: "
            "ask e.g. *how many trees are in this box?*",
            answered=False,
        )
    args = _with_box({"target": target, "image": req.image}, req.ws)
    return Plan("count", [ToolCall("count_objects", args, f"count {target}s" + _where(req.ws))], "count")


def _plan_measure(req: Request) -> Plan:
    ws, image, cls = req.ws, req.image, req.cls
    if cls is not None and cls != "vegetation":
        return Plan(
            "measure",
            [
                ToolCall("segment", {"image": image, "target": cls}, f"find the {cls.replace('_', ' ')}"),
                ToolCall("measure", {"image": image, "what": "largest_region"}, f"measure the largest {cls} region"),
            ],
            "measure",
        )
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
    calls = [ToolCall("segment", _with_box({"image": image, "target": target}, ws), segment_why)]
    if target != "all" and req.box is None:
        calls.append(
            ToolCall("measure", {"image": image, "what": "largest_region"}, f"measure the largest {target} area")
        )
    calls.append(ToolCall("describe_scene", _with_box({"image": image}, ws), "describe the area"))
    return Plan("assess", calls)


def _plan_describe(req: Request) -> Plan:
    return Plan("describe", [ToolCall("describe_scene", _with_box({"image": req.image}, req.ws), "describe the scene")])


def _plan_segment(req: Request) -> Plan:
    target = req.cls or "all"
    point = req.ws.current_point()
    if point and re.search(r"\bis (this|it|that|here)\b|\bwhat is (this|here)\b", req.message, re.I):
        # A question about a clicked point: classify the whole image, read the point.
        call = ToolCall("segment", {"image": req.image, "target": target}, f"land cover at the point {point}")
        return Plan("segment", [call], focus="point", point=point)
    args = _with_box({"image": req.image, "target": target}, req.ws)
    return Plan("segment", [ToolCall("segment", args, f"land cover ({target.replace('_', ' ')})")], focus=req.focus)


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
    return Plan(req.intent or tool.name, [ToolCall(tool.name, args, f"{tool.name.replace('_', ' ')}{_where(req.ws)}")])


# Planners that need no image of their own check (they say what is missing themselves).
_SESSION_PLANNERS: dict[str, Callable[[Request], Plan]] = {"timeseries": _plan_timeseries, "change": _plan_change}
# Planners for one image ("image", "after" or the last date).
_IMAGE_PLANNERS: dict[str, Callable[[Request], Plan]] = {
    "count": _plan_count,
    "measure": _plan_measure,
    "assess": _plan_assess,
    "describe": _plan_describe,
    "segment": _plan_segment,
}


def _request(message: str, ws: Workspace) -> Request:
    intent = intent_of(message)
    cls = class_of(message)
    if intent == "outline" and not ws.settings.sam and cls is not None:
        intent = "segment"  # "outline the lake" without SAM: the lake from the land cover
    return Request(message, ws, intent, focus_of(message), cls, object_of(message), _single_image(message, ws))


def plan(message: str, ws: Workspace) -> Plan:
    req = _request(message, ws)
    if req.intent == "help":
        return Plan("help", reply=f"Here is what I can do:\n\n{capabilities(req.ws.settings)}")
    if req.intent == "clear":
        return Plan("clear", reply="The points and boxes are cleared.")
    full = _plan_generate(req) if req.intent == "generate" and ws.settings.generator else None
    if full is None and req.intent in ("outline", "segment", None):
        full = _plan_outline(req)
    if full is not None:
        return full
    unavailable = _unavailable(req)
    if unavailable is not None:
        return unavailable
    beyond = _out_of_reach(req)
    if beyond is not None:
        return beyond
    if req.intent in _SESSION_PLANNERS:
        return _SESSION_PLANNERS[req.intent](req)
    followup = _plan_followup(req)
    if followup is not None:
        return followup
    closed = _plan_compare(req) if req.focus == "compare" else _plan_closed(req)
    if closed is not None:
        return closed
    if req.intent is None and req.cls is not None:
        req.intent = "segment"  # a class named with no task: its land cover
    if req.intent is not None and req.image is None and (req.intent in _IMAGE_PLANNERS or _tools_for(req.intent)):
        return _need_image("That")
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
