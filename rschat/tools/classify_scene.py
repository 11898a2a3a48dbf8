"""Tool ``classify_scene``: what kind of scene an image shows. Full mode asks CLIP
(zero-shot, any labels); lite mode uses the learned scene model (UC Merced's 21 classes,
``checkpoints/lite/scene.onnx``) up to 2 m pixels and the land-use model (EuroSAT's 10
classes, ``landuse.onnx``) at 4-30 m, tile by tile at the training tiles' ground size."""

from __future__ import annotations

import re

import numpy as np
from pydantic import Field

from rschat.backends import landcover_rules as lcr
from rschat.backends import landuse, learned, lite_models
from rschat.backends.clip import SCENE_LABELS
from rschat.backends.loading import load_clip
from rschat.geo.errors import InputError
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster
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
    # Land use at satellite pixel sizes: the share of the area where it is the most likely
    # class, and that area (the buildings themselves are not resolved at 10 m).
    residential_land_percent: float | None = None
    industrial_land_percent: float | None = None
    residential_land_ha: float | None = None
    industrial_land_ha: float | None = None


# UC Merced's scenes are 0.3 m aerial photographs. At 2 m a 76.8 m scene is 38 pixels,
# enlarged 6.7 times for the model; coarser than that it sees a blur and still answers
# with confidence (Sentinel-2 tiles came out "beach"), so lite mode refuses instead.
MAX_SCENE_GSD_M = 2.0


class OutOfScale(InputError):
    """The image's pixels are too coarse for the lite scene classifier (a refusal about one
    image, not a missing model)."""


PHRASES = (Phrase("classify", re.compile(r"\bclassify\b|what (kind|type) of (scene|place|area)|scene type", re.I), 80),)


def _lite_ranking(raster: Raster, scope: str) -> tuple[list[tuple[str, float]], str, str, dict[str, float]]:
    """(ranked classes, method, limit, land-use figures) from the lite model for the
    image's pixel size: UC Merced's scenes up to 2 m, EuroSAT's land use at 4-30 m
    (``rschat.backends.landuse``)."""
    gsd = raster.pixel_size_m()
    if gsd is not None and gsd > MAX_SCENE_GSD_M:
        if not landuse.in_range(gsd):
            raise OutOfScale(
                f"The lite classifiers know 0.3 m aerial scenes (UC Merced, up to {MAX_SCENE_GSD_M:g} m pixels) and "
                f"10 m satellite land use (EuroSAT, {landuse.LANDUSE_GSD_M[0]:g}-{landuse.LANDUSE_GSD_M[1]:g} m); "
                f"the pixels of {scope} are {gsd:.3g} m. Ask 'describe the scene' for its land cover instead, or set "
                "RSCHAT_CLIP for full mode."
            )
        if not learned.true_colour(raster):
            raise OutOfScale(
                f"The lite land-use model reads true colour (red, green, blue) at {gsd:.3g} m; {scope} has bands "
                f"{', '.join(raster.band_names)}. Say the band order if they are mislabelled, or set RSCHAT_CLIP."
            )
        valid = raster.valid_mask()
        use = landuse.read(rgb_preview(raster), gsd, valid)
        if use is None:
            raise OutOfScale(
                f"The pixels of {scope} are {gsd:.3g} m, too coarse for the scene model, and the lite land-use model is "
                f"missing ({lite_models.status('landuse')}): train it with 'rschat train landuse' (see the README), "
                "or set RSCHAT_CLIP for full mode."
            )
        method = (
            f"learned lite land-use classifier over EuroSAT's 10 classes ({lite_models.status('landuse')}), "
            "averaged over half-overlapping 640 m tiles"
        )
        ha = float(valid.sum()) * gsd * gsd / 1e4 / 100.0  # hectares per percent
        shares = {"residential": use.shares.get("Residential", 0.0), "industrial": use.shares.get("Industrial", 0.0)}
        land = {f"{k}_land_percent": v for k, v in shares.items()} | {f"{k}_land_ha": v * ha for k, v in shares.items()}
        limit = (
            "trained on Sentinel-2 true colour over Europe at 10 m (EuroSAT): other sensors and regions are less sure"
        )
        return use.ranked, method, limit, land
    ranked = learned.scene(rgb_preview(raster), gsd)
    if ranked is None:
        raise InputError(
            "Scene classification is unavailable: the lite scene model is missing "
            f"({lite_models.status('scene')}) and CLIP is not configured. Set RSCHAT_CLIP for full mode, or "
            "train the lite model with 'rschat train scene' (see the README)."
        )
    ranked = [(label.replace("harbor", "harbour"), p) for label, p in ranked]
    method = (
        f"learned lite scene classifier over UC Merced's 21 classes ({lite_models.status('scene')}), "
        "averaged over 76.8 m tiles"
    )
    limit = "trained on 0.3 m US orthophotos (UC Merced): other regions, sensors and scales are less sure"
    return ranked, method, limit, {}


UNSURE_P = 0.4  # a top class under this is no classification (ten classes: 0.1 is chance)
# A top class under this is a leaning, said as such: on images unlike its training tiles the
# scene model is sure of wrong classes at 0.5-0.6 (a New York suburban street 'tenniscourt'
# at 0.55, Chinese cropland with a village 'river' at 0.54).
LEANING_P = 0.7


def _run_lite(args: ClassifyArgs, ctx: ToolContext) -> ToolResult:
    """The learned lite classifiers (UC Merced scenes; EuroSAT land use at satellite pixels)."""
    raster, scope = scoped_raster(args.image, args.box, ctx)
    ranked, method, limit, land = _lite_ranking(raster, scope)
    top = ranked[:3]
    figures = ClassifyFigures(labels_scored=len(ranked), **{f"p_{i + 1}": p for i, (_, p) in enumerate(top)}, **land)
    summary = f"{scope} looks most like {top[0][0]} (p={top[0][1]:.2f})"
    summary += "; then " + ", ".join(f"{label} (p={p:.2f})" for label, p in top[1:])
    if top[0][1] < UNSURE_P:
        # NAIP prairie with pothole lakes reads 'industrial or commercial land' at p=0.23-0.29,
        # the same at 5 m and resampled to 10 m: a scene unlike the training tiles, not a scale.
        summary += (
            f"; no class stands out (the most likely has p={top[0][1]:.2f}): the scene may be unlike the model's "
            "training tiles, so take the class as a guess"
        )
    elif top[0][1] < LEANING_P:
        summary += (
            f"; the model leans to {top[0][0]} but is not sure (p={top[0][1]:.2f}, under {LEANING_P:g}): on images "
            "unlike its training tiles it can lean to a wrong class, so check it against the picture"
        )
    notes = []
    if args.labels:
        notes.append("lite mode knows its models' classes only; your labels need CLIP (full mode, RSCHAT_CLIP)")
    if raster.pixel_size_m() is None:
        notes.append("the image has no pixel size, so it was classified whole as an aerial scene; say 'the pixel "
                     "size is X m' to classify it at the training scenes' scale (10 m satellite images get "
                     "EuroSAT's land-use classes)")  # fmt: skip
    return ToolResult(
        summary=summary,
        figures=figures,
        method=method,
        limits=[limit],
        notes=notes,
        kept=Kept(ranked=ranked, target=top[0][0], scope=scope),
    )


def run(args: ClassifyArgs, ctx: ToolContext) -> ToolResult:
    raster = ctx.raster(args.image)
    if lcr.is_blank(raster, raster.valid_mask()):  # a model gives any picture a class (black: 'forest')
        raise InputError(
            f"'{raster.name}' is blank: every valid pixel has the same value, so there is no scene to classify. "
            "Check the file (an empty export or a failed download?)."
        )
    if raster.count == 1 and np.issubdtype(raster.data.dtype, np.floating):
        # A single band of measurements (an elevation model, an index), not a picture: a scene
        # model gives it a class anyway (a DSM came out 'baseballdiamond').
        raise InputError(
            f"'{raster.name}' holds one band of measured values ({raster.band_names[0]}, floating point: an "
            "elevation model or an index?), not a picture of the ground, so it has no scene class. Ask for its values "
            "('what is the mean elevation?'), or classify an image of the same place."
        )
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
    focus = reading.focus or ""
    if focus.startswith(LAND_USE_FOCUS) and result.data.get("residential_land_percent") is not None:
        return _land_use_answer(result, reading, focus)
    return f"**Scene class** ({reading.source}): {result.summary}."


# "land_use:residential:buildings" (is there a residential building?), "land_use:industrial:land"
# (is there an industrial area?), "land_use_share:residential" (how much residential land?)
LAND_USE_FOCUS = "land_use"


def _land_use_answer(result: ToolResult, reading: Reading, focus: str) -> str:
    """Residential or industrial land asked of a satellite image: its share and area, and
    what 10 m pixels can and cannot say about buildings."""
    use = focus.split(":")[1]
    d = result.data
    share, ha = float(d[f"{use}_land_percent"] or 0.0), d.get(f"{use}_land_ha")
    name = "residential land" if use == "residential" else "industrial or commercial land"
    area = f" ({float(ha):,.1f} ha)" if ha is not None else ""
    text = (
        f"**{name[0].upper() + name[1:]}** covers {share:.1f}%{area} of {result.kept.scope}, where it is the most "
        f"likely of EuroSAT's ten land-use classes ({reading.source}). Overall, {result.summary}."
    )
    if focus.endswith(":buildings"):
        if share > 0:
            text += " Single buildings are not resolved at this pixel size: this is the land they stand on."
        else:
            text += (" No tile of about 640 m reads as such land; isolated buildings (a farm, a shop) are below what "
                     "the model sees at this pixel size, so I cannot rule them out.")  # fmt: skip
    return text


HELP = (
    "- **scene classification**: UC Merced's 21 classes in lite mode (EuroSAT's 10 land-use classes for "
    "4-30 m satellite images), any labels with CLIP "
    "(*classify this scene*, *what kind of place is this?*)"
)


TOOL = Tool(
    name="classify_scene",
    description="Scene classification: UC Merced's 21 land-use classes (lite model; EuroSAT's 10 at 4-30 m) or zero-shot CLIP over any "
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
