"""The rule planner: a chat message (and the session's state) -> a plan.

Intents are recognised from keywords in order of specificity; slots (what the user wants
to know: the largest region, an area, a count, a share) steer the answer. A follow-up
that names no task ("how big is the largest one?") refers to the last result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rschat.agent.steps import ToolCall
from rschat.agent.workspace import Workspace

CAPABILITIES = (
    "- **change detection** between two images of the same place: upload a before and an "
    "after image (two files in one message, or the before/after slots) and ask *what "
    "changed?*; I answer with the changed share (%), area (m2, ha), the change regions, an "
    "overlay and downloads (GeoTIFF mask, GeoJSON regions)\n"
    "- **follow-ups** on a result: *how big is the largest change?*, *how many regions?*, "
    "*what share changed?*, answered from the stored result without recomputing\n"
    "- **help**: this list"
)

# Tasks the design card promises that this build cannot serve yet, with what they need.
_NOT_YET = {
    "segment": "land-cover segmentation (water, vegetation, built-up)",
    "count": "object counting (trees, buildings)",
    "measure": "measuring areas and lengths of boxes or drawn regions",
    "describe": "scene descriptions and captions",
    "classify": "scene classification",
    "timeseries": "time-series analysis of an index over dated images",
    "generate": "image generation (it needs a diffusion model: full mode, RSCHAT_GENERATOR)",
    "vqa": "free-form visual questions (they need a vision-language model: full mode, RSCHAT_VLM)",
}

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("help", re.compile(r"^\s*(help|\?|hi|hello|hey)\b|what can you do|how do (i|you) use|\bcommands?\b", re.I)),
    ("generate", re.compile(r"\b(generate|synthesi[sz]e|render|create|draw me|make)\b.*\b(image|scene|picture)", re.I)),
    (
        "change",
        re.compile(
            r"chang|differ|\bcompar|appear|disappear|\bnew (building|construction|road)|"
            r"\bbuilt\b|demolish|construct|before and after|\bgrew|\bgrown|\blost\b|\bgained\b",
            re.I,
        ),
    ),
    ("timeseries", re.compile(r"\btrend|time.?series|over time|\bndvi\b|\bsince (19|20)\d\d", re.I)),
    ("count", re.compile(r"\bhow many\b|\bcount|\bnumber of\b", re.I)),
    ("measure", re.compile(r"\bmeasure|perimeter|\blength\b|\bdistance\b|\barea of\b", re.I)),
    ("segment", re.compile(r"\bsegment|land.?cover|\bwater\b|vegetation|\bforest|built.?up|\bmask\b", re.I)),
    ("classify", re.compile(r"\bclassify|kind of (scene|place|area)|scene type", re.I)),
    ("describe", re.compile(r"\bdescribe|caption|what('s| is) (in|on|shown)|summar", re.I)),
]

_FOCUS: list[tuple[str, re.Pattern[str]]] = [
    ("largest", re.compile(r"larg|bigg|main|major", re.I)),
    ("count", re.compile(r"how many|number of|count", re.I)),
    ("fraction", re.compile(r"percent|%|fraction|share|proportion|ratio", re.I)),
    ("area", re.compile(r"how (big|large|much)|\barea\b|hectare|\bha\b|m2|square|size", re.I)),
]


# Words that point at an earlier result ("how many regions?", "how big is it?").
_REFERS_BACK = re.compile(r"\bregions?\b|\bones?\b|\bit\b|\bthem\b|\bthose\b|\bthat\b|\bpolygons?\b", re.I)


@dataclass
class Plan:
    intent: str
    calls: list[ToolCall] = field(default_factory=list)
    focus: str | None = None  # which number the user asked about
    reply: str | None = None  # a direct answer when no tool runs (help, not yet, missing input)
    use_result: str | None = None  # id of a stored result a follow-up refers to


def intent_of(message: str) -> str | None:
    for intent, pattern in _PATTERNS:
        if pattern.search(message):
            return intent
    return None


def focus_of(message: str) -> str | None:
    for focus, pattern in _FOCUS:
        if pattern.search(message):
            return focus
    return None


def plan(message: str, ws: Workspace) -> Plan:
    intent = intent_of(message)
    focus = focus_of(message)

    if intent == "help":
        return Plan("help", reply=f"Here is what I can do in this build:\n\n{CAPABILITIES}")

    if intent == "change":
        missing = [n for n in ("before", "after") if n not in ws.rasters]
        if missing:
            have = "one image" if "image" in ws.rasters else "no images"
            return Plan(
                "change",
                focus=focus,
                reply=(
                    f"Change detection needs two images of the same place, and this session has {have}. "
                    "Upload a before and an after image (two files in one message, or the "
                    "before/after slots), then ask again."
                ),
            )
        call = ToolCall("detect_changes", {"before": "before", "after": "after"}, "compare the before and after images")
        return Plan("change", calls=[call], focus=focus)

    last = ws.last_result()
    refers_back = intent in (None, "count", "measure") and (intent is None or _REFERS_BACK.search(message))
    if refers_back and focus is not None and last is not None:
        return Plan("followup", focus=focus, use_result=last.id)

    if intent in _NOT_YET or intent is None:
        what = _NOT_YET.get(intent or "vqa", _NOT_YET["vqa"])
        return Plan(
            intent or "unsupported",
            reply=(f"I can't do {what} in this build yet, and I won't guess. What I can do now:\n\n{CAPABILITIES}"),
        )
    raise AssertionError(f"unhandled intent {intent}")
