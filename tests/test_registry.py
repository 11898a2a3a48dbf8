"""Every registered tool describes itself completely, and answers through the rule path.

Adding a tool is one file plus one line in ``rschat/tools/__init__.py``
(docs/ARCHITECTURE.md); these tests say which part a new tool forgot, and prove that a
tool unknown to the planner and the responder is planned and answered all the same.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from conftest import ASSETS, ROOT
from fixtures import tiny_models as tiny
from rschat.agent import Workspace, turn, vocabulary
from rschat.agent.executor import execute
from rschat.agent.steps import ToolCall
from rschat.backends import loading
from rschat.config import Settings
from rschat.tools import REGISTRY
from rschat.tools.base import (
    Args,
    Figures,
    Kept,
    Layer,
    Phrase,
    Reading,
    Tool,
    ToolContext,
    ToolResult,
    plain_answer,
)

PAIR = [ASSETS / "naip_2009-08-18.tif", ASSETS / "naip_2015-09-26.tif"]
NEON = ROOT / "tests" / "data" / "neon" / "OSBS_029.tif"
STACK = [ROOT / "tests" / "data" / "pucallpa" / f"{y}.tif" for y in (1985, 2000, 2020)]


def problems(tool: Tool) -> list[str]:
    """What a tool lacks of the parts every tool must declare (empty: complete)."""
    found = []
    if not re.fullmatch(r"[a-z][a-z_]+", tool.name or ""):
        found.append("name: lower_case words")
    if len(tool.description or "") < 30:
        found.append("description: a sentence for a planner")
    if not (isinstance(tool.args, type) and issubclass(tool.args, Args) and tool.args is not Args):
        found.append("args: a subclass of tools.base.Args")
    elif tool.schema().get("type") != "object":
        found.append("args: its JSON schema must be an object")
    if not (isinstance(tool.figures, type) and issubclass(tool.figures, Figures) and tool.figures is not Figures):
        found.append("figures: a subclass of tools.base.Figures")
    elif not tool.figures.model_fields:
        found.append("figures: at least one number")
    if not callable(tool.function):
        found.append("function: run(args, ctx) -> ToolResult")
    if not callable(tool.answer):
        found.append("answer: how the result reads")
    if not tool.phrases or not all(isinstance(p, Phrase) for p in tool.phrases):
        found.append("phrases: what the rule planner maps to it")
    if tool.layer is not None and not isinstance(tool.layer, Layer):
        found.append("layer: a tools.base.Layer or None")
    return found


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_tool_declares_every_part(name):
    tool = REGISTRY[name]
    assert tool.name == name
    assert problems(tool) == []


def test_the_check_catches_an_incomplete_tool():
    incomplete = Tool(
        name="half_done",
        description="",
        args=Args,
        figures=Figures,
        function=None,  # type: ignore[arg-type]
        answer=plain_answer("Half"),
        phrases=(),
        layer=None,
    )
    assert {p.split(":")[0] for p in problems(incomplete)} == {"description", "args", "figures", "function", "phrases"}


@pytest.fixture(scope="module")
def full_settings(tmp_path_factory) -> Settings:
    """SAM, CLIP and a generator configured (tiny random models), no VLM: the rules plan and
    the template responder answers, for every tool."""
    root = tmp_path_factory.mktemp("tiny")
    return Settings(
        sam=f"{tiny.SAM_TYPE}:{tiny.build_sam(root / 'sam' / 'tiny_sam.pth')}",
        clip=f"{tiny.CLIP_NAME}:{tiny.build_clip(root / 'clip' / 'tiny_clip.pt')}",
        generator=str(tiny.build_stable_diffusion(root / "sd")),
        work_dir=root / "work",
    )


# One question per tool that the rule planner maps to it, with the files it needs.
RULE_PATH = {
    "detect_changes": ("what changed?", PAIR),
    "segment": ("how much of this is water?", [NEON]),
    "count_objects": ("how many trees are there?", [NEON]),
    "measure": ("measure the box", [NEON]),
    "describe_scene": ("describe the scene", [NEON]),
    "analyze_timeseries": ("show the NDVI trend", STACK),
    "classify_scene": ("classify this scene", [NEON]),
    "segment_objects": ("segment everything", [NEON]),
    "generate_image": ("generate a 64 px harbour scene in 2 steps", []),
    "image_info": ("what is the pixel size?", [NEON]),
    "spectral_index": ("what is the mean NDVI?", STACK),
    "raster_values": ("what is the range of pixel values in band 2?", [NEON]),
}


def test_the_rule_path_covers_every_tool():
    assert set(RULE_PATH) == set(REGISTRY)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_tool_answers_through_the_rules(name, full_settings, tmp_path):
    loading.clear_cache()
    question, files = RULE_PATH[name]
    ws = Workspace(Settings(**{**full_settings.__dict__, "work_dir": tmp_path}))
    if name == "measure":
        ws.add_box((10, 10, 110, 60))
    steps = list(turn(ws, question, uploads=[Path(f) for f in files] or None))
    done = [s for s in steps if s.kind == "done"]
    errors = [s.text for s in steps if s.kind == "error"]
    assert not errors, errors
    assert done and done[-1].tool == name, [(s.kind, s.tool, s.text[:80]) for s in steps]
    answer = steps[-1].text
    assert steps[-1].kind == "answer" and f"`{name}`" in answer and len(answer) > 40


def test_a_call_that_does_not_fit_the_schema_is_a_visible_failed_step(settings):
    ws = Workspace(settings)
    ws.load_uploads([NEON])
    steps = list(execute([ToolCall("segment", {"target": "lava"})], ws))
    assert [s.kind for s in steps] == ["error"]
    assert "does not fit its schema" in steps[0].text and "target" in steps[0].text
    steps = list(execute([ToolCall("segment", {"colour": "red"})], ws))
    assert "colour" in steps[0].text  # unknown arguments are refused, not ignored
    steps = list(execute([ToolCall("no_such_tool", {})], ws))
    assert steps[0].kind == "error" and "no tool called" in steps[0].text


def test_defaults_are_filled_once_by_the_executor(settings):
    ws = Workspace(settings)
    ws.load_uploads([NEON])
    steps = list(execute([ToolCall("segment", {})], ws))
    assert steps[-1].kind == "done"
    assert steps[-1].args == {"image": "image", "target": "all", "region": False}
    assert ws.results[0].args == steps[-1].args


# A tool the planner and the responder have never heard of: one file's worth of code.
class BrightnessArgs(Args):
    image: str = "image"
    band: Literal["all", "red"] = "all"


class BrightnessFigures(Figures):
    mean_brightness_percent: float


def _brightness(args: BrightnessArgs, ctx: ToolContext) -> ToolResult:
    rgb = ctx.raster(args.image).data[: 1 if args.band == "red" else 3].astype(np.float32)
    value = float(100 * rgb.mean() / 255)
    return ToolResult(f"mean brightness {value:.1f}%", BrightnessFigures(mean_brightness_percent=value), kept=Kept())


BRIGHTNESS = Tool(
    name="measure_brightness",
    description="Mean brightness of an image, in percent of the brightest value.",
    args=BrightnessArgs,
    figures=BrightnessFigures,
    function=_brightness,
    answer=lambda result, reading: f"**Brightness** ({reading.source}): {result.summary}.",
    phrases=(Phrase("brightness", re.compile(r"\bhow bright\b", re.I), 45),),
    layer=None,
    needs=("image",),
    help="- **brightness** of an image (*how bright is it?*)",
    slots=lambda message: {"band": "red"} if "red" in message else {},
)


def test_a_new_tool_is_one_file_plus_one_registry_line(settings, monkeypatch):
    monkeypatch.setitem(REGISTRY, BRIGHTNESS.name, BRIGHTNESS)
    vocabulary.intents.cache_clear()
    try:
        ws = Workspace(settings)
        steps = list(turn(ws, "how bright is this image?", uploads=[NEON]))
        list(turn(ws, "how bright is the red band?"))
        help_text = list(turn(ws, "help"))[-1].text
    finally:
        monkeypatch.delitem(REGISTRY, BRIGHTNESS.name)
        vocabulary.intents.cache_clear()
    assert any(s.kind == "done" and s.tool == "measure_brightness" for s in steps)
    assert "**Brightness**" in steps[-1].text and "mean brightness" in steps[-1].text
    assert BRIGHTNESS.answer(ws.results[0].result, Reading("x")).startswith("**Brightness**")
    assert ws.results[1].args["band"] == "red"  # its own slot, read by the generic planner
    assert "**brightness**" in help_text  # its help line joins the capability list
