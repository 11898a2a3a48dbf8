"""Planning with the vision-language model: classify the task, then fill the arguments.

Small models plan poorly when unconstrained, so the model is asked two narrow questions:
which task (one word from a list), then which calls for that task's tools, as JSON that
must validate against the tools' argument models (the executor's own check). Each question gets one retry with
the validation error; after that the rule planner decides, and the steps say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rschat.agent import planner_rules
from rschat.agent.plans import Plan
from rschat.agent.prompts import fill
from rschat.agent.steps import ToolCall
from rschat.agent.workspace import Workspace
from rschat.geo.errors import InputError
from rschat.tools import REGISTRY

# Task -> the tools the model may call for it (empty: the model answers directly).
TASKS: dict[str, tuple[str, ...]] = {
    "change": ("detect_changes", "count_objects"),
    "segment": ("segment", "segment_objects"),
    "count": ("count_objects",),
    "measure": ("segment", "measure"),
    "describe": ("describe_scene",),
    "timeseries": ("analyze_timeseries", "detect_changes"),
    "classify": ("classify_scene",),
    "generate": ("generate_image",),
    "question": (),
    "help": (),
}
TASK_HELP = {
    "change": "what changed between two images (before/after) or two dates",
    "segment": "land cover, or outlining named objects (water, trees, solar panels, ...)",
    "count": "how many objects of a kind",
    "measure": "area, perimeter or size of a box, region or class",
    "describe": "describe or summarise a scene",
    "timeseries": "a trend through three or more dated images",
    "classify": "what kind of scene it is",
    "generate": "make a new image from text",
    "question": "any other question about the images (answered by looking at them)",
    "help": "what the assistant can do",
}


def tasks() -> dict[str, tuple[str, ...]]:
    """Task -> (help text, *tool names): the tasks above, plus every registered tool's own intents, so
    a new tool is offered to the model without a change here."""
    out: dict[str, tuple[str, ...]] = {task: (TASK_HELP[task], *tools) for task, tools in TASKS.items()}
    for tool in REGISTRY.values():
        for phrase in tool.phrases:
            help_text, *tools = out.get(phrase.intent, (tool.description,))
            if tool.name not in tools:
                out[phrase.intent] = (help_text, *tools, tool.name)
    return out


@dataclass
class ModelPlan:
    plan: Plan | None  # None: fall back to the rule planner
    notes: list[str] = field(default_factory=list)  # what happened, shown as plan steps


def session_state(ws: Workspace) -> str:
    images = ", ".join(f"{n} ({r.width}x{r.height}, {r.count} bands)" for n, r in ws.rasters.items()) or "no images"
    prompts = []
    if ws.current_box():
        prompts.append(f"box {list(ws.current_box())}")  # type: ignore[arg-type]
    if ws.current_point():
        prompts.append(f"point {list(ws.current_point())}")  # type: ignore[arg-type]
    return f"images: {images}; prompts: {', '.join(prompts) or 'none'}"


def first_json(text: str) -> Any:
    """The first JSON object in a model's text (models wrap JSON in prose or code fences)."""
    start = text.find("{")
    while start != -1:
        depth = 0
        for i in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            if depth == 0:
                try:
                    return json.loads(text[start : i + 1])
                except json.JSONDecodeError:
                    break
        start = text.find("{", start + 1)
    raise ValueError("the answer holds no JSON object")


def _ask(model: Any, prompt: str, validate: Any, notes: list[str], what: str) -> Any | None:
    """Ask, validate, retry once with the error; None if both fail."""
    messages = [{"role": "user", "content": [{"type": "text", "text": prompt}]}]
    for attempt in (1, 2):
        reply = model.complete(messages, max_new_tokens=256)
        try:
            return validate(first_json(reply))
        except (ValueError, InputError) as err:
            error = str(err)
            notes.append(f"the model's {what} was not valid (try {attempt}: {error[:160]})")
            messages += [
                {"role": "assistant", "content": [{"type": "text", "text": reply}]},
                {"role": "user", "content": [{"type": "text", "text": fill("retry", error=error)}]},
            ]
    return None


def _validate_task(obj: Any) -> str:
    task = obj.get("task") if isinstance(obj, dict) else None
    known = tasks()
    if task not in known:
        raise ValueError(f'"task" must be one of {", ".join(known)}, got {task!r}')
    return str(task)


def _validator(allowed: tuple[str, ...]) -> Any:
    def validate(obj: Any) -> list[ToolCall]:
        calls = obj.get("calls") if isinstance(obj, dict) else None
        if not isinstance(calls, list) or not calls:
            raise ValueError('the answer needs a non-empty "calls" list')
        out = []
        for call in calls:
            name = call.get("tool") if isinstance(call, dict) else None
            if name not in allowed:
                raise ValueError(f"unknown tool {name!r}; use one of {', '.join(allowed)}")
            args = call.get("args", {})
            if not isinstance(args, dict):
                raise ValueError(f'"args" of {name} must be an object')
            REGISTRY[name].validate(args)  # the executor validates again and fills defaults
            out.append(ToolCall(name, dict(args), "planned by the model"))
        return out

    return validate


def plan_with_model(message: str, ws: Workspace, model: Any) -> ModelPlan:
    notes: list[str] = []
    state = session_state(ws)
    menu = "\n".join(f"- {t}: {help_text}" for t, (help_text, *_) in tasks().items())
    task = _ask(model, fill("classify_task", tasks=menu, state=state, message=message), _validate_task, notes, "task")
    if task is None:
        return ModelPlan(None, [*notes, "falling back to the rule planner"])
    notes.append(f"the model classified the request as '{task}'")
    if task == "help":
        return ModelPlan(planner_rules.plan("help", ws), notes)
    if task == "question":
        return ModelPlan(Plan("vqa"), notes)

    allowed = tuple(t for t in tasks()[task][1:] if t in REGISTRY)
    if not allowed:
        return ModelPlan(None, [*notes, f"no tool serves '{task}' in this build; falling back to the rule planner"])
    schemas = "\n".join(
        f"- {name}: {REGISTRY[name].description} Schema: {json.dumps(REGISTRY[name].schema())}" for name in allowed
    )
    calls = _ask(
        model,
        fill("fill_arguments", task=task, tools=schemas, state=state, message=message),
        _validator(allowed),
        notes,
        "tool calls",
    )
    if calls is None:
        return ModelPlan(None, [*notes, "falling back to the rule planner"])
    box = ws.current_box()
    for call in calls:  # the user's box and drawn region are authoritative where a tool takes them
        takes = REGISTRY[call.tool].schema().get("properties", {})
        if box and "box" in takes and "box" not in call.args:
            call.args["box"] = list(box)
        if ws.region is not None and "region" in takes and "region" not in call.args:
            call.args["region"] = True
    rules = planner_rules.plan(message, ws)
    return ModelPlan(Plan(task, calls, focus=rules.focus, point=rules.point), notes)
