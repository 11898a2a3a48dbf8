"""One turn: message + uploads -> workspace -> plan -> executor -> responder -> Steps.

This is the only entry the UI and the CLI use. It yields ``Step`` events as they happen
and ends with exactly one ``answer`` step.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from rschat.agent import planner_rules, responder
from rschat.agent.executor import execute
from rschat.agent.steps import Step
from rschat.agent.workspace import Workspace
from rschat.geo.bands import parse_band_order
from rschat.geo.errors import InputError

_GSD = re.compile(
    r"(?:pixel size|pixel spacing|resolution|gsd|ground sample distance)\s*(?:is|of|=|:)?\s*"
    r"(\d+(?:\.\d+)?)\s*(cm|m)\b",
    re.I,
)


def stated_gsd(message: str) -> float | None:
    """A pixel size stated in a message ('the pixel size is 0.5 m', 'GSD 30 cm') in metres."""
    m = _GSD.search(message)
    if not m:
        return None
    value = float(m.group(1))
    return value / 100 if m.group(2).lower() == "cm" else value


def backends(ws: Workspace) -> dict[str, str]:
    """Which backend serves each capability in this session (shown in the UI and CLI)."""
    return {
        "planner": "rules (lite)",
        "answers": "template responder (lite)",
        "change_detection": "classical CPU detector (lite)",
        "segmentation": "spectral/colour rules on superpixels (lite)",
        "counting": "blob and shape rules: trees; buildings experimental (lite)",
        "measurement": "raster grid geometry",
        "description": "rule-based caption from land cover (lite)",
        "time_series": "index statistics and trend (lite)",
        "visual_questions": "unavailable in lite mode (set RSCHAT_VLM)",
        "image_generation": "unavailable in lite mode (set RSCHAT_GENERATOR)",
    }


def _describe_uploads(ws: Workspace, names: list[str]) -> str:
    parts = []
    for name in names:
        r = ws.rasters[name]
        date = f", {r.date.isoformat()}" if r.date else ""
        parts.append(f"{name} = {r.name} ({r.width}x{r.height}, {r.count} band(s), {r.describe_georef()}{date})")
    return "; ".join(parts)


def turn(
    ws: Workspace, message: str, uploads: list[Path] | None = None, named: dict[str, Path] | None = None
) -> Iterator[Step]:
    """Run one chat turn. ``uploads`` are files attached to the message (named by
    ``Workspace.load_uploads``); ``named`` maps explicit slots ('before', 'after', 'image')
    to files. Points and boxes are set on the workspace beforehand (UI clicks, CLI flags)."""
    ws.history.append({"role": "user", "content": message})
    said = ws.state(gsd_m=stated_gsd(message), bands=parse_band_order(message))
    try:
        loaded: list[str] = []
        for name, path in (named or {}).items():
            ws.load(name, path)
            loaded.append(name)
        if uploads:
            loaded += ws.load_uploads(list(uploads))
    except InputError as err:
        text = f"I could not use that upload: {err}"
        ws.history.append({"role": "assistant", "content": text})
        yield Step("error", str(err), tool="upload")
        yield Step("answer", text)
        return
    if loaded:
        yield Step("plan", "loaded " + _describe_uploads(ws, loaded))
    if said:
        yield Step("plan", "noted: " + "; ".join(said))

    plan = planner_rules.plan(message, ws)
    if plan.intent == "clear":
        ws.clear_prompts()
    if plan.reply is not None:
        text = plan.reply
        if said and plan.intent in ("unsupported", "vqa"):
            text = "Noted: " + "; ".join(said) + ". Ask a question about the images when you are ready."
    elif plan.use_result is not None:
        stored = next(s for s in ws.results if s.id == plan.use_result)
        reused = Step(
            "done",
            f"reused stored result {stored.id}",
            stored.tool,
            stored.args,
            0.0,
            stored.result,
            stored.id,
            reused=True,
        )
        yield reused
        text = responder.answer([reused], plan.focus, plan.point)
    else:
        yield Step("plan", "plan: " + "; then ".join(f"{c.tool} ({c.why})" for c in plan.calls))
        steps = []
        for step in execute(plan.calls, ws):
            steps.append(step)
            yield step
        text = responder.answer(steps, plan.focus, plan.point)
    ws.history.append({"role": "assistant", "content": text})
    yield Step("answer", text)
