"""Tool ``classify_scene``: what kind of scene an image shows. Full mode asks CLIP
(zero-shot, any labels); lite mode uses the learned scene model (UC Merced's 21 classes,
``checkpoints/lite/scene.onnx``), tile by tile at the training scenes' ground size."""

from __future__ import annotations

import re

from pydantic import Field

from rschat.backends import learned, lite_models
from rschat.backends.clip import SCENE_LABELS
from rschat.backends.loading import load_clip
from rschat.geo.errors import InputError
from rschat.geo.preview import rgb_preview
from rschat.tools.base import (
    Args,
    Box,
    Figures,
    ImageName,
    Kept,
    Phrase,
    Reading,
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


# UC Merced's scenes are 0.3 m aerial photographs. At 2 m a 76.8 m scene is 38 pixels,
# enlarged 6.7 times for the model; coarser than that it sees a blur and still answers
# with confidence (Sentinel-2 tiles came out "beach"), so lite mode refuses instead.
MAX_SCENE_GSD_M = 2.0


class OutOfScale(InputError):
    """The image's pixels are too coarse for the lite scene classifier (a refusal about one
    image, not a missing model)."""


PHRASES = (Phrase("classify", re.compile(r"\bclassify\b|what (kind|type) of (scene|place|area)|scene type", re.I), 80),)


def _run_lite(args: ClassifyArgs, ctx: ToolContext) -> ToolResult:
    """The learned lite classifier (UC Merced classes)."""
    raster, scope = scoped_raster(args.image, args.box, ctx)
    gsd = raster.pixel_size_m()
    if gsd is not None and gsd > MAX_SCENE_GSD_M:
        raise OutOfScale(
            f"The lite scene classifier knows 0.3 m aerial scenes (UC Merced) and works up to {MAX_SCENE_GSD_M:g} m "
            f"pixels; {scope}'s pixels are {gsd:.3g} m, where a 76.8 m scene is {76.8 / gsd:.0f} pixels across, "
            "too few to tell a scene's kind. Ask 'describe the scene' for its land cover instead, or set "
            "RSCHAT_CLIP for full mode."
        )
    ranked = learned.scene(rgb_preview(raster), gsd)
    if ranked is None:
        raise InputError(
            "Scene classification is unavailable: the lite scene model is missing "
            f"({lite_models.status('scene')}) and CLIP is not configured. Set RSCHAT_CLIP for full mode, or "
            "train the lite model with 'rschat train scene' (see the README)."
        )
    ranked = [(label.replace("harbor", "harbour"), p) for label, p in ranked]
    top = ranked[:3]
    figures = ClassifyFigures(labels_scored=len(ranked), **{f"p_{i + 1}": p for i, (_, p) in enumerate(top)})
    summary = f"{scope} looks most like {top[0][0]} (p={top[0][1]:.2f})"
    summary += "; then " + ", ".join(f"{label} (p={p:.2f})" for label, p in top[1:])
    notes = []
    if args.labels:
        notes.append("lite mode knows UC Merced's 21 classes only; your labels need CLIP (full mode, RSCHAT_CLIP)")
    if gsd is None:
        notes.append("the image has no pixel size, so it was classified whole; say 'the pixel size is X m' to "
                     "classify it at the training scenes' scale")  # fmt: skip
    return ToolResult(
        summary=summary,
        figures=figures,
        method=f"learned lite scene classifier over UC Merced's 21 classes ({lite_models.status('scene')}), "
        "averaged over 76.8 m tiles",
        limits=["trained on 0.3 m US orthophotos (UC Merced): other regions, sensors and scales are less sure"],
        notes=notes,
        kept=Kept(ranked=ranked, target=top[0][0], scope=scope),
    )


def run(args: ClassifyArgs, ctx: ToolContext) -> ToolResult:
    if ctx.settings is None or not ctx.settings.clip:
        return _run_lite(args, ctx)
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


HELP = (
    "- **scene classification**: UC Merced's 21 classes in lite mode, any labels with CLIP "
    "(*classify this scene*, *what kind of place is this?*)"
)


TOOL = Tool(
    name="classify_scene",
    description="Scene classification: UC Merced's 21 land-use classes (lite model) or zero-shot CLIP over any "
    "labels (full mode); optionally inside a box.",
    args=ClassifyArgs,
    figures=ClassifyFigures,
    function=run,
    answer=answer,
    phrases=PHRASES,
    layer=None,
    help=HELP,
    needs=("image",),
)
