"""Tool ``generate_image`` (full mode, diffusers): a new image from text, or a variation of
the session's image when there is one."""

from __future__ import annotations

from typing import Any

from rschat.backends.loading import load_generator
from rschat.geo.io import write_png
from rschat.geo.preview import rgb_preview
from rschat.tools.base import Artifact, Tool, ToolContext, ToolResult
from rschat.tools.full_mode import require

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "prompt": {"type": "string"},
        "from_image": {"type": "boolean", "default": False, "description": "vary the session's image"},
        "steps": {"type": "integer", "minimum": 1, "maximum": 100, "default": 25},
        "size": {"type": "integer", "enum": [64, 256, 512, 768, 1024], "default": 512},
        "seed": {"type": "integer", "default": 0},
    },
    "required": ["prompt"],
    "additionalProperties": False,
}


def run(args: dict[str, Any], ctx: ToolContext) -> ToolResult:
    gen = require(load_generator, ctx, "Image generation")
    prompt, steps, seed = args["prompt"], int(args.get("steps", 25)), int(args.get("seed", 0))
    if args.get("from_image") and "image" in ctx.rasters:
        rgb = gen.image_to_image(prompt, rgb_preview(ctx.rasters["image"]), steps=steps, seed=seed)
        how = "image-to-image from the session's image"
    else:
        size = int(args.get("size", 512))
        rgb = gen.text_to_image(prompt, steps=steps, size=size, seed=seed)
        how = "text-to-image"
    path = write_png(ctx.out_dir / f"generated_{seed}_{abs(hash(prompt)) % 10_000}.png", rgb)
    return ToolResult(
        summary=f"generated a {rgb.shape[1]}x{rgb.shape[0]} image ({how}) for '{prompt}'",
        data={"width": rgb.shape[1], "height": rgb.shape[0], "steps": steps, "seed": seed},
        artifacts=[Artifact("overlay", path, "generated image (synthetic, not a real observation)")],
        method=f"diffusers pipeline {gen.name}, {steps} steps, seed {seed}",
        limits=["a synthetic image: it shows no real place and must not be measured as one"],
    )


TOOL = Tool(
    name="generate_image",
    description="Generate a remote-sensing-style image from a text prompt with a diffusion model, or a variation "
    "of the session's image (from_image).",
    schema=SCHEMA,
    run=run,
    needs=(),
)
