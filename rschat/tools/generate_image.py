"""Tool ``generate_image`` (full mode, diffusers): a new image from text, or a variation of
the session's image when there is one."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field

from rschat.backends.loading import load_generator
from rschat.geo.io import write_png
from rschat.geo.preview import rgb_preview
from rschat.tools.base import (
    Args,
    Artifact,
    Figures,
    Phrase,
    Reading,
    Requires,
    Tool,
    ToolContext,
    ToolResult,
)
from rschat.tools.full_mode import require


class GenerateArgs(Args):
    prompt: str
    from_image: bool = Field(False, description="vary the session's image")
    steps: int = Field(25, ge=1, le=100)
    size: Literal[64, 256, 512, 768, 1024] = 512
    seed: int = 0


class GenerateFigures(Figures):
    width: int
    height: int
    steps: int
    seed: int


PHRASES = (
    Phrase(
        "generate",
        re.compile(r"\b(generate|synthesi[sz]e|render|draw me|imagine)\b|\bcreate an? (image|scene|picture)", re.I),
        20,
    ),
)


def run(args: GenerateArgs, ctx: ToolContext) -> ToolResult:
    gen = require(load_generator, ctx, "Image generation")
    if args.from_image and "image" in ctx.rasters:
        rgb = gen.image_to_image(args.prompt, rgb_preview(ctx.rasters["image"]), steps=args.steps, seed=args.seed)
        how = "image-to-image from the session's image"
    else:
        rgb = gen.text_to_image(args.prompt, steps=args.steps, size=args.size, seed=args.seed)
        how = "text-to-image"
    path = write_png(ctx.path(f"generated_{args.seed}.png"), rgb)
    return ToolResult(
        summary=f"generated a {rgb.shape[1]}x{rgb.shape[0]} image ({how}) for '{args.prompt}'",
        figures=GenerateFigures(width=rgb.shape[1], height=rgb.shape[0], steps=args.steps, seed=args.seed),
        artifacts=[Artifact("overlay", path, "generated image (synthetic, not a real observation)")],
        method=f"diffusers pipeline {gen.name}, {args.steps} steps, seed {args.seed}",
        limits=["a synthetic image: it shows no real place and must not be measured as one"],
    )


def answer(result: ToolResult, reading: Reading) -> str:
    return f"**Generated** ({reading.source}): {result.summary}. It is synthetic: it shows no real place."


HELP = "- **image generation** (*generate a 512 px harbour scene*); synthetic, never measured"


TOOL = Tool(
    name="generate_image",
    description="Generate a remote-sensing-style image from a text prompt with a diffusion model, or a variation "
    "of the session's image (from_image).",
    args=GenerateArgs,
    figures=GenerateFigures,
    function=run,
    answer=answer,
    phrases=PHRASES,
    layer=None,
    reads_colours=lambda args: False,  # reads no image
    help=HELP,
    needs=(),
    requires=(Requires("generator", "image generation (it needs a diffusion model: full mode, RSCHAT_GENERATOR)"),),
)
