"""Tool ``classify_scene`` (full mode, CLIP): what kind of scene an image shows."""

from __future__ import annotations

import re

from pydantic import Field

from rschat.backends.clip import SCENE_LABELS
from rschat.backends.loading import load_clip
from rschat.geo.preview import rgb_preview
from rschat.tools.base import (
    Args,
    Box,
    Figures,
    ImageName,
    Kept,
    Phrase,
    Reading,
    Requires,
    Tool,
    ToolContext,
    ToolResult,
    scoped_raster,
)
from rschat.tools.full_mode import require


class ClassifyArgs(Args):
    image: ImageName = "image"
    labels: list[str] | None = Field(None, description="candidate labels (optional)")
    box: Box = None


class ClassifyFigures(Figures):
    p_1: float
    p_2: float | None = None
    p_3: float | None = None
    labels_scored: int


PHRASES = (Phrase("classify", re.compile(r"\bclassify\b|what (kind|type) of (scene|place|area)|scene type", re.I), 80),)


def run(args: ClassifyArgs, ctx: ToolContext) -> ToolResult:
    clip = require(load_clip, ctx, "Scene classification (CLIP)")
    raster, scope = scoped_raster(args.image, args.box, ctx)
    labels = tuple(args.labels or SCENE_LABELS)
    ranked = clip.classify(rgb_preview(raster), labels)
    top = ranked[:3]
    figures = ClassifyFigures(labels_scored=len(labels), **{f"p_{i + 1}": p for i, (_, p) in enumerate(top)})
    summary = f"{scope} looks most like {top[0][0]} (p={top[0][1]:.2f})"
    if len(top) > 1:
        summary += "; then " + ", ".join(f"{label} (p={p:.2f})" for label, p in top[1:])
    return ToolResult(
        summary=summary,
        figures=figures,
        method=f"zero-shot CLIP ({clip.name}) over {len(labels)} labels, prompt 'a satellite image of ...'",
        limits=["zero-shot probabilities are relative to the label list; a scene outside it still gets a label"],
        kept=Kept(ranked=ranked, target=top[0][0], scope=scope),
    )


def answer(result: ToolResult, reading: Reading) -> str:
    return f"**Scene class** ({reading.source}): {result.summary}."


HELP = "- **scene classification** with CLIP (*classify this scene*, *what kind of place is this?*)"


TOOL = Tool(
    name="classify_scene",
    description="Zero-shot scene classification with CLIP (airport, forest, harbour, residential, ...); "
    "optionally over given labels or inside a box.",
    args=ClassifyArgs,
    figures=ClassifyFigures,
    function=run,
    answer=answer,
    phrases=PHRASES,
    layer=None,
    help=HELP,
    needs=("image",),
    requires=(Requires("clip", "scene classification (it needs CLIP: full mode, RSCHAT_CLIP)"),),
)
