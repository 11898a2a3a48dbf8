"""Tool ``classify_scene`` (full mode, CLIP): what kind of scene an image shows."""

from __future__ import annotations

from typing import Any

from rschat.backends.clip import SCENE_LABELS
from rschat.backends.loading import load_clip
from rschat.geo.preview import rgb_preview
from rschat.tools.base import BOX_SCHEMA, Tool, ToolContext, ToolResult, scoped_raster
from rschat.tools.full_mode import require

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "image": {"type": "string", "default": "image"},
        "labels": {"type": "array", "items": {"type": "string"}, "description": "candidate labels (optional)"},
        "box": BOX_SCHEMA,
    },
    "additionalProperties": False,
}


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    clip = require(load_clip, ctx, "Scene classification (CLIP)")
    raster, scope = scoped_raster(args, ctx)
    labels = tuple(args.get("labels") or SCENE_LABELS)
    ranked = clip.classify(rgb_preview(raster), labels)
    top = ranked[:3]
    data: dict[str, float | int | None] = {f"p_{i + 1}": p for i, (_, p) in enumerate(top)}
    data["labels_scored"] = len(labels)
    summary = f"{scope} looks most like {top[0][0]} (p={top[0][1]:.2f}); then " + ", ".join(
        f"{label} (p={p:.2f})" for label, p in top[1:]
    )
    return ToolResult(
        summary=summary,
        data=data,
        method=f"zero-shot CLIP ({clip.name}) over {len(labels)} labels, prompt 'a satellite image of ...'",
        limits=["zero-shot probabilities are relative to the label list; a scene outside it still gets a label"],
        memory={"ranked": ranked},
    )


TOOL = Tool(
    name="classify_scene",
    description="Zero-shot scene classification with CLIP (airport, forest, harbour, residential, ...); "
    "optionally over given labels or inside a box.",
    schema=SCHEMA,
    run=run,
    needs=("image",),
)
