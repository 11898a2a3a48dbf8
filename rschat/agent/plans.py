"""What the rule planner makes of a message: the ``Request`` (the message with its slots
filled) and the ``Plan`` (tool calls, or a direct reply), with the helpers every intent's
planner shares (which image, the user's box and region)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rschat.agent.steps import ToolCall
from rschat.agent.vocabulary import BEFORE_WORDS
from rschat.agent.workspace import Workspace
from rschat.geo.stack import stack_names


@dataclass
class Plan:
    intent: str
    calls: list[ToolCall] = field(default_factory=list)
    focus: str | None = None  # which number the user asked about
    reply: str | None = None  # a direct answer when no tool runs (help, not yet, missing input)
    use_result: str | None = None  # id of a stored result a follow-up refers to
    point: tuple[float, float] | None = None  # a clicked point the answer is about
    answered: bool = True  # False: the reply says what is missing or out of reach (CLI exits 1)
    unit: str | None = None  # the unit an area's short answer is asked in ('ha', 'acres'); m2 otherwise
    also_unit: str | None = None  # a second unit asked for ('in m2 and in acres'), given beside the first
    note: str | None = None  # said before the answer (a file format rschat does not write, and what it gives)


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


def _file_like(name: str) -> bool:
    """A name that can only mean its file ('OSBS_029', 'naip_2015-09-26'), not a word of the
    question: a pasted 'image.png' or a 'forest.tif' would answer for 'this image' or 'how much
    forest'; a bare number ('2000') is a year or a distance."""
    return len(name) > 2 and not name.isdigit() and re.search(r"[\d_\-]", name) is not None


def single_image(message: str, ws: Workspace) -> str | None:
    """Which raster a one-image tool should use: the single image, else the after (or
    before when asked), else the date of a stack the message names ("how much forest was
    there in 1995?"), else its last date."""
    if "before" in ws.rasters and BEFORE_WORDS.search(message):
        return "before"
    # The image named by its file ("how many trees are in OSBS_029?"): the slot holding it.
    lowered = message.lower()
    # A name that is a number ("2000.tif") is read as a year below, or is a distance.
    named_file = {
        slot
        for slot, r in ws.rasters.items()
        if _file_like(r.name) and re.search(rf"\b{re.escape(r.name.lower())}\b", lowered)
    }
    holders = {id(ws.rasters[slot]) for slot in named_file}
    if len(holders) == 1:
        return next(slot for slot in ("image", "after", "before", *sorted(named_file)) if slot in named_file)
    stack = stack_names(ws.rasters)
    dated = stack or [n for n in ("before", "after") if n in ws.rasters]
    # A full date first ("on 2016-05-06"): its year alone names every date of that year.
    days = {str(ws.rasters[n].date): n for n in dated if ws.rasters[n].date is not None}
    said_days = {"-".join(d) for d in re.findall(r"\b((?:19|20)\d\d)[-/.](\d\d)[-/.](\d\d)\b", message)}
    if len(on_day := {days[d] for d in said_days if d in days}) == 1:
        return on_day.pop()
    years = {str(ws.rasters[n].date.year): n for n in dated if ws.rasters[n].date is not None}  # type: ignore[union-attr]
    said = re.findall(
        r"\b(?:in|of|for|from|on|at|about|image)\s+((?:19|20)\d\d)\b(?!\s*(?:m2|m\b|km|ha\b|px))", message
    )
    named = {years[y] for y in said if y in years}
    if len(named) == 1:
        return named.pop()
    for name in ("image", "after"):
        if name in ws.rasters:
            return name
    return stack[-1] if stack else None


def with_box(args: dict[str, Any], ws: Workspace) -> dict[str, Any]:
    """Arguments restricted to the user's current box and map region, when there are any."""
    box = ws.current_box()
    out = {**args, "box": list(box)} if box else dict(args)
    if ws.region is not None:
        out["region"] = True
    return out


def where(ws: Workspace) -> str:
    return (" in the box" if ws.current_box() else "") + (" inside the drawn region" if ws.region else "")


def need_image(what: str) -> Plan:
    reply = f"{what} needs an image: upload one (PNG, JPEG or GeoTIFF) and ask again."
    return Plan("missing", reply=reply, answered=False)


def plan_largest(req: Request, cls: str) -> Plan:
    """A land-cover class, then its largest area measured (with its polygon for a GIS):
    'how big is the largest lake?', 'give me the largest water area as GeoJSON'."""
    return Plan(
        "measure",
        [
            ToolCall("segment", {"image": req.image, "target": cls}, f"find the {cls.replace('_', ' ')}"),
            ToolCall("measure", {"image": req.image, "what": "largest_region"}, f"measure the largest {cls} region"),
        ],
        "measure",
    )
