"""The rule planner: a chat message (and the session's state) -> a plan of tool calls.

Two stages, as small models are also asked to do: classify the task (intent), then fill
the slots (target class or object with synonyms, which image, which box or point, which
index). Some requests become chains ("how many buildings appeared in the box?" ->
detect_changes in the box -> count_objects inside the changed area); vague ones are
decomposed ("assess the water in the indicated area" -> segment water in the box ->
measure it -> describe the box). A follow-up that names no task refers to the last result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rschat.agent.steps import ToolCall
from rschat.agent.vocabulary import (
    BEFORE_WORDS,
    CAPABILITIES,
    INDEX_WORDS,
    NOT_YET,
    REFERS_BACK,
    TEXT_TARGET,
    THIS,
    VARIATION,
    class_of,
    focus_of,
    intent_of,
    object_of,
)
from rschat.agent.workspace import Workspace
from rschat.tools.analyze_timeseries import stack_names


@dataclass
class Plan:
    intent: str
    calls: list[ToolCall] = field(default_factory=list)
    focus: str | None = None  # which number the user asked about
    reply: str | None = None  # a direct answer when no tool runs (help, not yet, missing input)
    use_result: str | None = None  # id of a stored result a follow-up refers to
    point: tuple[float, float] | None = None  # a clicked point the answer is about


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


def _full_mode_plan(intent: str | None, message: str, ws: Workspace) -> Plan | None:
    """Plans that need full-mode models, when the settings name them (else None)."""
    st = ws.settings
    image = _single_image(message, ws)
    if intent == "generate" and st.generator:
        from_image = bool(image == "image" and VARIATION.search(message))
        return Plan(
            "generate",
            [
                ToolCall(
                    "generate_image",
                    {"prompt": message, "from_image": from_image},
                    "generate an image" + (" from the session's image" if from_image else ""),
                )
            ],
        )
    if intent == "classify" and st.clip and image:
        return Plan("classify", [ToolCall("classify_scene", _with_box({"image": image}, ws), "classify the scene")])
    if st.sam and image and intent in ("segment", None):
        if (ws.current_point() or ws.current_box()) and THIS.search(message):
            args: dict[str, Any] = {"image": image, "mode": "prompt"}
            if ws.points:
                args["points"] = [[x, y, 1 if pos else 0] for x, y, pos in ws.points]
            if ws.current_box():
                args["box"] = list(ws.current_box())  # type: ignore[arg-type]
            return Plan("segment", [ToolCall("segment_objects", args, "outline the marked object with SAM")])
        if re.search(r"\b(everything|all objects)\b", message, re.I):
            return Plan(
                "segment",
                [ToolCall("segment_objects", {"image": image, "mode": "everything"}, "segment everything with SAM")],
            )
        m = TEXT_TARGET.search(message)
        if st.clip and m and class_of(m.group(1)) is None:
            target = m.group(1).strip()
            return Plan(
                "segment",
                [
                    ToolCall(
                        "segment_objects",
                        {"image": image, "mode": "text", "text": target},
                        f"outline '{target}' with SAM, named by CLIP",
                    )
                ],
            )
    return None


def _dated_pair(message: str, ws: Workspace) -> tuple[str, str] | None:
    """Two images of a dated stack named by their years in the message ('between 1990
    and 2020'), earlier first; None when the message names fewer than two stack dates."""
    stack = stack_names(ws.rasters)
    by_year = {ws.rasters[n].date.year: n for n in stack if ws.rasters[n].date is not None}  # type: ignore[union-attr]
    years = sorted({int(y) for y in re.findall(r"\b(19\d\d|20\d\d)\b", message)} & set(by_year))
    if len(years) < 2:
        return None
    return by_year[years[0]], by_year[years[-1]]


def _need_image(what: str) -> Plan:
    return Plan("missing", reply=f"{what} needs an image: upload one (PNG, JPEG or GeoTIFF) and ask again.")


def plan(message: str, ws: Workspace) -> Plan:
    intent = intent_of(message)
    focus = focus_of(message)
    cls, obj = class_of(message), object_of(message)

    if intent == "help":
        return Plan("help", reply=f"Here is what I can do:\n\n{CAPABILITIES}")
    if intent == "clear":
        return Plan("clear", reply="The points and boxes are cleared.")
    full = _full_mode_plan(intent, message, ws)
    if full is not None:
        return full
    if intent in NOT_YET:
        return Plan(intent, reply=f"I can't do {NOT_YET[intent]} in lite mode. What I can do:\n\n{CAPABILITIES}")

    if intent == "timeseries":
        if len(stack_names(ws.rasters)) < 3:
            return Plan(
                "timeseries",
                reply="A time series needs three or more dated images: upload them together "
                "(dates in the file names such as 1985.tif or scene_20200831.tif), then ask again.",
            )
        index = m.group(1).lower() if (m := INDEX_WORDS.search(message)) else "water" if cls == "water" else "auto"
        return Plan(
            "timeseries",
            [
                ToolCall(
                    "analyze_timeseries",
                    _with_box({"index": index}, ws),
                    {"water": "a water index (MNDWI, else NDWI)", "auto": "NDVI (else brightness)"}.get(
                        index, index.upper()
                    )
                    + " through the dated images",
                )
            ],
            focus,
        )

    if intent == "change":
        pair = _dated_pair(message, ws)
        if pair is not None:
            a, b = pair
            call = ToolCall("detect_changes", _with_box({"before": a, "after": b}, ws), f"compare {a} with {b}")
            return Plan("change", [call], focus)
        if not {"before", "after"} <= set(ws.rasters):
            have = "one image" if "image" in ws.rasters else "no images"
            return Plan(
                "change",
                focus=focus,
                reply=(
                    f"Change detection needs two images of the same place, and this session has {have}. Upload a before "
                    "and an after image (two files in one message, or the before/after slots), then ask again."
                ),
            )
        calls = [
            ToolCall(
                "detect_changes",
                _with_box({"before": "before", "after": "after"}, ws),
                "compare the before and after images"
                + (" inside the box" if ws.current_box() else "")
                + (" inside the drawn region" if ws.region else ""),
            )
        ]
        if focus == "count" and obj is not None:
            calls.append(
                ToolCall(
                    "count_objects",
                    _with_box({"target": obj, "image": "after", "within_previous_mask": True}, ws),
                    f"count {obj}s on the after image inside the changed area",
                )
            )
            focus = None
        return Plan("change", calls, focus)

    last = ws.last_result()
    refers_back = intent in (None, "count", "measure") and (intent is None or REFERS_BACK.search(message))
    if refers_back and focus is not None and last is not None and obj is None and cls is None:
        return Plan("followup", focus=focus, use_result=last.id)

    image = _single_image(message, ws)
    if intent in ("count", "measure", "segment", "describe", "assess") and image is None:
        return _need_image("That")

    if intent == "count":
        target = obj or ("tree" if cls == "trees" else None)
        if target is None:
            return Plan(
                "count",
                reply="What should I count? Lite mode counts trees (and buildings, experimental): "
                "ask e.g. *how many trees are in this box?*",
            )
        return Plan(
            "count",
            [
                ToolCall(
                    "count_objects",
                    _with_box({"target": target, "image": image}, ws),
                    f"count {target}s" + (" in the box" if ws.current_box() else ""),
                )
            ],
            "count",
        )

    if intent == "measure":
        if cls is not None and cls != "vegetation":
            return Plan(
                "measure",
                [
                    ToolCall("segment", {"image": image, "target": cls}, f"find the {cls.replace('_', ' ')}"),
                    ToolCall(
                        "measure", {"image": image, "what": "largest_region"}, f"measure the largest {cls} region"
                    ),
                ],
                "measure",
            )
        if ws.region is not None and ws.current_box() is None:
            return Plan(
                "measure", [ToolCall("measure", {"image": image, "what": "region"}, "measure the drawn region")]
            )
        if ws.current_box() is None and last is not None:
            return Plan("followup", focus="area", use_result=last.id)
        box = ws.current_box()
        return Plan(
            "measure",
            [
                ToolCall(
                    "measure", {"image": image, "what": "box", **({"box": list(box)} if box else {})}, "measure the box"
                )
            ],
        )

    if intent == "assess":
        target = cls or "all"
        calls = [
            ToolCall(
                "segment",
                _with_box({"image": image, "target": target}, ws),
                f"segment {target.replace('_', ' ')}" + (" in the box" if ws.current_box() else ""),
            )
        ]
        if target != "all" and ws.current_box() is None:
            calls.append(
                ToolCall("measure", {"image": image, "what": "largest_region"}, f"measure the largest {target} area")
            )
        calls.append(ToolCall("describe_scene", _with_box({"image": image}, ws), "describe the area"))
        return Plan("assess", calls)

    if intent == "describe":
        return Plan("describe", [ToolCall("describe_scene", _with_box({"image": image}, ws), "describe the scene")])

    point = ws.current_point()
    if intent == "segment" or (cls is not None and intent is None):
        target = cls or "all"
        if point and re.search(r"\bis (this|it|that|here)\b|\bwhat is (this|here)\b", message, re.I):
            # A question about a clicked point: classify the whole image, read the point.
            call = ToolCall("segment", {"image": image, "target": target}, f"land cover at the point {point}")
            return Plan("segment", [call], focus="point", point=point)
        return Plan(
            "segment",
            [
                ToolCall(
                    "segment",
                    _with_box({"image": image, "target": target}, ws),
                    f"land cover ({target.replace('_', ' ')})",
                )
            ],
            focus=focus,
        )

    return Plan(
        intent or "unsupported",
        reply=(f"I can't do {NOT_YET['vqa']} in lite mode, and I won't guess. What I can do:\n\n{CAPABILITIES}"),
    )
