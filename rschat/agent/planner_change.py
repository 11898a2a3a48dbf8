"""The rule planner for change questions: which pair (two uploads, or two years of a dated
stack), and what change: any, buildings that appeared or went, or a land-cover class lost
and gained ("how much forest was lost between 1985 and 2020?"), with the figure asked for."""

from __future__ import annotations

import re
from typing import Any

from rschat.agent.plans import Plan, Request, where, with_box
from rschat.agent.short_answer import regions_within_focus
from rschat.agent.steps import ToolCall
from rschat.agent.vocabulary import area_bounds_of
from rschat.agent.workspace import Workspace
from rschat.backends.cover_change import COVER_CLASSES
from rschat.geo.stack import stack_names


def dated_pair(message: str, ws: Workspace) -> tuple[str, str] | None:
    """Two images of a dated stack named by their years in the message ('between 1990
    and 2020'), earlier first; None when the message names fewer than two stack dates."""
    stack = stack_names(ws.rasters)
    by_year = {ws.rasters[n].date.year: n for n in stack if ws.rasters[n].date is not None}  # type: ignore[union-attr]
    years = sorted({int(y) for y in re.findall(r"\b(19\d\d|20\d\d)\b", message)} & set(by_year))
    if len(years) < 2:
        return None
    return by_year[years[0]], by_year[years[-1]]


_BUILDING_CHANGE = re.compile(
    r"\bnew\b|appear|\bbuilt\b(?![\s-]*up)|\bbuild\b|construct|demolish|\bgone\b|\bremoved?\b|\bwent\b|torn down|knocked down|"
    r"\blost\b|vanish"
)


_BUILDING_GONE = re.compile(r"demolish|\bgone\b|\bremoved?\b|\bwent\b|disappear|torn down|knocked down|\blost\b|vanish")
_BUILDING_NEW = re.compile(r"\bnew\b|\bbuilt\b(?![\s-]*up)|\bbuild\b|construct|(?<!dis)appear")


_COVER_LOST = re.compile(
    r"\blost\b|\bloss\b|shr[iu]nk|clear(ed|ing)|cut\s+down|\bfell(ed)?\b|\blogged\b|deforest|declin|decreas|reced|"
    r"retreat|disappear"
)
_COVER_GAINED = re.compile(r"\bgain|\bgr[eo]w\b|\bgrown\b|expand|increas|spread")


_PATCHES = re.compile(r"\b(patch|area|region|part|place|stand|clearing|block|spot)(e?s)?\b")


_BECAME = re.compile(r"\bbec[oa]me\b|\bturn(?:ed)? into\b|\breplaced\b|\bconverted\b")
_CAME_FROM = re.compile(r"\bdid the new [\w ]{1,30}? come from\b|\bcame from\b|\bwhat was there before\b")


def _cover_focus(focus: str | None, said: str) -> str | None:
    """Which figure of a class's change is asked: its loss or gain (an area), whether it
    shrank or grew overall (yes/no), a share (the answer's text, no short answer), how
    many patches were lost or gained, or what the loss became (where the gain came from)."""
    if _BECAME.search(said):  # "what did the forest turn into?"
        return "cover_became"
    if _CAME_FROM.search(said):  # "where did the new water come from?"
        return "cover_came_from"
    if focus == "count":  # "how many patches of forest were cleared?"
        return "cover_lost_count" if _COVER_LOST.search(said) else "cover_gained_count"
    if focus == "fraction":  # "what percent of the forest was lost?": the share of the first date's cover
        return "cover_share_lost" if _COVER_LOST.search(said) else "cover_share_gained"
    if said.lstrip().startswith("where"):  # "where did the forest disappear?": the places, no figure
        return None
    # "what is the net change in forest?", "how much did the water area change?": gain less loss
    if re.search(r"\bnet\b", said) or not (_COVER_LOST.search(said) or _COVER_GAINED.search(said)):
        return "cover_net"
    lost = bool(_COVER_LOST.search(said))
    if lost and _COVER_GAINED.search(said):  # "did the lakes shrink or grow?": which, and by how much
        return "cover_net"
    if re.match(r"\W*(did|has|have|is|are|was|were)\b", said):
        if re.search(r"\blost\b|\bgained\b|clear(ed|ing)|disappear", said):  # "was forest lost?": any loss
            return "cover_any_lost" if lost else "cover_any_gained"
        return "cover_shrank" if lost else "cover_grew"  # "did the lake shrink?": its net change
    return "cover_lost" if lost else "cover_gained"


# "How much did the water area change?", "how has the forest changed?": the class's own
# change (gain less loss), not every change in the image.
# "How much water is there in 2020 compared with 1985?": the class on both dates, and its net change.
_CLASS_CHANGED = re.compile(
    r"\bhow (?:much|has|have|did)\b[^.?!]{0,80}?\bchang(?:e|ed|es)\b|\bcompared (?:with|to)\b|\bversus\b|\bvs\b"
)


def _cover_target(cls: str | None, said: str) -> str | None:
    """The land-cover class whose loss or gain a change question asks about ("how much
    forest was lost?", "did the lake shrink?"), or None for any change."""
    if "deforest" in said:
        cls = "trees"
    if cls in COVER_CLASSES and (
        _BECAME.search(said)
        or _CAME_FROM.search(said)
        or _COVER_LOST.search(said)
        or _COVER_GAINED.search(said)
        or re.search(r"\bnet\b", said)
        or _CLASS_CHANGED.search(said)
    ):
        return cls
    return None


def patch_followup(req: Request) -> Plan | None:
    """'How big is the largest patch lost?', 'how many patches?' after a class's loss and
    gain: that result's figure, not a new detection of any change."""
    said = req.message.lower()
    last = req.ws.last_result()
    if last is None or last.tool != "detect_changes" or last.args.get("target") not in COVER_CLASSES:
        return None
    if req.cls is not None or req.obj is not None or req.focus not in ("largest", "area", "count"):
        return None
    if not _PATCHES.search(said):
        return None
    kind = "gained" if _COVER_GAINED.search(said) and not _COVER_LOST.search(said) else "lost"
    figure = "count" if req.focus == "count" else "largest"
    return Plan("followup", focus=f"cover_{kind}_{figure}", use_result=last.id)


def _target_args(building_change: bool, cover: str | None, said: str) -> dict[str, Any]:
    """detect_changes' target: buildings that appeared or went (within the area bounds
    asked: 'new buildings larger than 100 m2'), a class's loss and gain, or any change."""
    if building_change:
        return {"target": "building", **area_bounds_of(said)}
    return {"target": cover} if cover else {}


def _change_focus(req: Request, focus: str | None, building_change: bool, cover: str | None) -> str | None:
    """The figure a change question asks for: a class's loss or gain, change regions within
    area bounds, or the buildings that went."""
    said = req.message.lower()
    if cover is not None:  # "how much forest was lost?": the class's loss (or gain) is the figure asked for
        focus = _cover_focus(focus, said)
    if (
        focus == "count"
        and not building_change
        and cover is None
        and req.obj is None
        and (bounds := area_bounds_of(said))
    ):
        focus = regions_within_focus(bounds)  # "how many change regions are larger than 10 ha?"
    if building_change and focus == "count" and _BUILDING_GONE.search(said):
        # "how many were demolished?": the number that went; "built or demolished?": both
        # numbers in the answer, and no single short answer.
        focus = None if _BUILDING_NEW.search(said) else "count_gone"
    return focus


def plan_change(req: Request) -> Plan:
    ws, focus = req.ws, req.focus
    said = req.message.lower()
    if (followup := patch_followup(req)) is not None:
        return followup
    pair = dated_pair(req.message, ws)
    # "Which buildings are new?": only buildings that appeared or went, not every change;
    # "what changed around the buildings?" still asks for any change.
    building_change = req.obj == "building" and _BUILDING_CHANGE.search(said)
    # A count is of the class's patches ("how many patches of forest were lost?"), unless it
    # counts objects ("how many trees were cut down?": trees counted in the changed area).
    counts_objects = focus == "count" and req.obj is not None and not _PATCHES.search(said)
    cover = None if building_change else _cover_target(req.cls, said)
    target = _target_args(bool(building_change), cover, said)
    if counts_objects and cover is not None:  # "how many trees were cut down?": trees in the trees' loss
        cover = None
    focus = _change_focus(req, focus, bool(building_change), cover)
    # "What share of the area changed?" after "what changed between 2018 and 2020?" asks about
    # that pair, not the first and last dates; a bare "what changed?" compares those.
    kept = _last_pair(ws) if pair is None and focus is not None and not counts_objects else None
    if pair is not None or kept is not None:
        a, b = pair or kept  # type: ignore[misc]
        call = ToolCall(
            "detect_changes",
            with_box({"before": a, "after": b, **target}, ws),
            f"compare {a} with {b}"
            + (f" ({str(target['target']).replace('_', ' ')} lost and gained)" if cover else "")
            + (" (the dates compared last)" if kept else ""),
        )
        return Plan("change", [call], focus)
    if not {"before", "after"} <= set(ws.rasters):
        have = "one image" if "image" in ws.rasters else "no images"
        reply = (
            f"Change detection needs two images of the same place, and this session has {have}. Upload a before "
            "and an after image (two files in one message, or the before/after slots), then ask again."
        )
        return Plan("change", focus=focus, reply=reply, answered=False)
    args = with_box({"before": "before", "after": "after", **target}, ws)
    kind = target.get("target")
    what = (
        "buildings that appeared or went"
        if kind == "building"
        else f"{kind.replace('_', ' ')} lost and gained on the before and after images"
        if kind
        else "the before and after images"
    )
    calls = [ToolCall("detect_changes", args, f"compare {what}" + where(ws))]
    if focus == "count" and req.obj is not None and not building_change:
        # "how many trees appeared?": count on the after image inside the changed area; "how
        # many trees were cut down?" on the before image, where they still stand (buildings are
        # counted by detect_changes itself, date against date).
        side = "before" if _COVER_LOST.search(said) or _BUILDING_GONE.search(said) else "after"
        count_args = with_box({"target": req.obj, "image": side, "within_previous_mask": True}, ws)
        calls.append(
            ToolCall("count_objects", count_args, f"count {req.obj}s on the {side} image inside the changed area")
        )
        focus = None
    return Plan("change", calls, focus)


def _last_pair(ws: Workspace) -> tuple[str, str] | None:
    """The two dates of a stack the last change detection compared, when they were not the
    first and last (the images still as they were then); None otherwise."""
    last = next((r for r in reversed(ws.results) if r.tool == "detect_changes"), None)
    if last is None or not ws.is_current(last):
        return None
    a, b = last.args.get("before", "before"), last.args.get("after", "after")
    if (a, b) == ("before", "after") or a not in ws.rasters or b not in ws.rasters:
        return None
    return a, b
