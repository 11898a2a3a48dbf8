"""Tool ``describe_scene``: a caption built from land-cover masks, with places in words.

Rule-based captioning in the mask-to-box / box-to-caption manner: each class's share
and where it lies (the image split 3 x 3, north up), the largest water body and whether
it crosses the image like a river, and tree crowns when the resolution allows.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from pydantic import create_model

from rschat.backends import landcover_rules as lcr
from rschat.backends import landuse
from rschat.geo.bands import spectral_index
from rschat.geo.errors import InputError
from rschat.geo.io import write_png
from rschat.geo.places import place
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster
from rschat.geo.shapes import channels
from rschat.tools.base import (
    Args,
    Artifact,
    Box,
    Figures,
    ImageName,
    Kept,
    Phrase,
    Tool,
    ToolContext,
    ToolResult,
    UseRegion,
    covers,
    plain_answer,
    region_mask_of,
    scoped_raster,
)


class DescribeArgs(Args):
    image: ImageName = "image"
    box: Box = None
    region: UseRegion = False


_shares: dict[str, Any] = {f"{c}_percent": (float | None, None) for c in lcr.CLASSES}  # None: no land cover
DescribeFigures: type[Any] = create_model(  # type: ignore[call-overload]
    "DescribeFigures", __base__=Figures, pixel_size_m=(float | None, None), **_shares
)
PHRASES = (
    Phrase(
        "describe",
        re.compile(
            r"\bdescribe|caption|what('s| is) (in|on|shown)|summar|overview|tell me about"
            r"|\bwhat(?:'s| is) (?:this|that|the) (?:image|picture|photo|scene|tile|file|raster)\W*$",
            re.I,
        ),
        90,
    ),
)
NAMES = {
    "water": "water",
    "trees": "trees",
    "low_vegetation": "low vegetation",
    "bare_soil": "bare soil",
    "built_up": "built-up land",
    "shadow": "shadow",
    "cloud": "cloud",
}


def _edge_side(x: float, y: float, width: int, height: int) -> str:
    d = {"west": x, "east": width - 1 - x, "north": y, "south": height - 1 - y}
    return min(d, key=lambda k: d[k])


# A channel's main line is this many times longer than the channel is wide (its length
# squared over its area); its width varies less than CHANNEL_WIDTH_SPREAD (90th percentile
# over the median, along its centre line). Measured: the Ucayali's pieces at 30 m 50-61,
# prairie potholes (NAIP, North Dakota) up to 11, and 17 for potholes joined by flooded
# narrows, whose width spread is 3.8 (the river's 1.4-1.6).
def river_sentence(water: np.ndarray) -> str | None:
    """'a river crosses from the north-west to the south-east' when the channel-shaped
    water (see ``channels``) covers enough of the image and touches two of its edges;
    None otherwise."""
    h, w = water.shape
    body = channels(water)
    if body.sum() < 0.005 * water.size:
        return None
    ys, xs = np.nonzero(body)
    border = (xs == 0) | (ys == 0) | (xs == w - 1) | (ys == h - 1)
    if border.sum() < 2:
        return None
    bx, by = xs[border], ys[border]
    sides = {_edge_side(x, y, w, h) for x, y in zip(bx, by, strict=True)}
    if len(sides) < 2:
        return None
    # The two border points farthest apart are where the river enters and leaves.
    pts = np.stack([bx, by], 1)[:: max(1, border.sum() // 200)]
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    i, j = np.unravel_index(np.argmax(d), d.shape)
    a, b = sorted([pts[i], pts[j]], key=lambda p: (p[1], p[0]))
    start, end = place(a[0], a[1], w, h), place(b[0], b[1], w, h)
    if start == end:  # both ends in one ninth of the image (a corner): it cuts across that corner
        return f"a river or channel cuts across {start} of the image"
    return f"a river or channel crosses the image from {start} to {end}"


_WATER = ("river", "sea or lake")  # land-use classes the land cover already gives as water


def run(args: DescribeArgs, ctx: ToolContext) -> ToolResult:
    raster, scope = scoped_raster(args.image, args.box, ctx)
    prev = ctx.previous.kept.landcover if ctx.previous is not None else None
    learned_note = ""
    if prev is not None and prev.classes.shape == (raster.height, raster.width):
        lc = prev
    elif raster.count < 3 and spectral_index(raster, "ndvi") is None and spectral_index(raster, "ndwi") is None:
        return _one_band(raster, scope)  # panchromatic, an elevation model: no colour to caption
    else:
        lc = lcr.classify(raster)
        learned_note = landuse.add_built_up(lc, raster)  # as segment: buildings, or towns at satellite pixel sizes
    inside = region_mask_of(args.region, ctx, raster)
    if inside is not None:
        lc = lcr.LandCover(np.where(inside, lc.classes, -1).astype(np.int8), lc.superpixels, lc.used_indices)
    valid = lc.classes >= 0
    if not valid.any():
        raise InputError(f"{scope[0].upper()}{scope[1:]} has no valid pixels (all no-data): nothing to describe.")
    h, w = lc.classes.shape
    shares = {c: 100.0 * lc.mask(c).sum() / max(valid.sum(), 1) for c in lcr.CLASSES}
    ranked = [c for c in sorted(shares, key=lambda c: -shares[c]) if shares[c] >= 3]

    sentences = []
    if ranked:
        main = ranked[0]
        sentences.append(f"The scene is mostly {NAMES[main]} ({shares[main]:.0f}%)")
        for c in ranked[1:4]:
            ys, xs = np.nonzero(lc.mask(c))
            sentences.append(
                f"{NAMES[c]} {covers(NAMES[c])} {shares[c]:.0f}%, mostly in {place(xs.mean(), ys.mean(), w, h)}"
            )
    river = river_sentence(lc.mask("water"))
    if river:
        sentences.append(river)
    # Water is the land cover's (rivers told by their shape above); the land use says what
    # the land is used for.
    uses = [f"{name} {share:.0f}%" for name, share in (lc.land_use or {}).items() if share >= 3 and name not in _WATER]
    if uses:
        sentences.append("its land use (EuroSAT classes, 640 m tiles) reads " + ", ".join(uses[:4]))
    caption = "; ".join(sentences) if sentences else "no land cover could be recognised"
    caption = caption[0].upper() + caption[1:]
    figures = DescribeFigures(
        pixel_size_m=raster.pixel_size_m(), **{f"{c}_percent": float(shares[c]) for c in lcr.CLASSES}
    )
    overlay = (0.5 * rgb_preview(raster) + 0.5 * lcr.colorize(lc)).astype(np.uint8)
    return ToolResult(
        summary=caption,  # the answer adds the full stop
        figures=figures,
        artifacts=[Artifact("overlay", write_png(ctx.path("describe.png"), overlay), "land cover")],
        method="rule-based caption from the lite land-cover masks (" + lcr.METHOD_NAME + learned_note + ")",
        limits=[
            "a caption from class masks: it names land cover and where it lies, not objects or activities; "
            "free-form description needs full mode (RSCHAT_VLM)"
        ],
        kept=Kept(landcover=lc, caption=caption, scope=scope),
    )


def _one_band(raster: Raster, scope: str) -> ToolResult:
    """What can be said of an image without colour (panchromatic, an elevation model): its
    grid and values, and what lite mode can do with it, instead of a failed land cover."""
    values = raster.data[0][raster.valid_mask()]
    if values.size == 0:
        raise InputError(f"{scope[0].upper()}{scope[1:]} has no valid pixels (all no-data): nothing to describe.")
    gsd = raster.pixel_size_m()
    grid = f"{raster.width} x {raster.height} pixels" + (f" at {gsd:.2f} m" if gsd else "")
    if raster.crs is not None and raster.crs.to_epsg():
        grid += f" (EPSG:{raster.crs.to_epsg()})"
    lo, hi, mean = float(values.min()), float(values.max()), float(values.mean())
    name = raster.band_names[0] if raster.count == 1 else ", ".join(raster.band_names)
    caption = (
        f"A {raster.count}-band image ({name}), {grid}, values {lo:,.2f} to {hi:,.2f} (mean {mean:,.2f}); without "
        "colour bands there is no land-cover caption. On it lite mode can count buildings (*how many buildings?*), "
        "read its values (*what is the mean value?*, or *the mean elevation?* for an elevation model) and measure "
        "boxes"
    )
    return ToolResult(
        summary=caption,
        figures=DescribeFigures(pixel_size_m=gsd),
        method="the image's grid and values (land cover needs red, green and blue or multispectral bands)",
        limits=["no caption of what the image shows without colour; full mode (RSCHAT_VLM) can describe it"],
        kept=Kept(caption=caption, scope=scope),
    )


HELP = "- **scene description** from the land cover, with places in words (*describe the scene*)"


TOOL = Tool(
    name="describe_scene",
    description="Describe an image in words: land-cover shares, where each class lies, rivers crossing the scene.",
    args=DescribeArgs,
    figures=DescribeFigures,
    function=run,
    answer=plain_answer("Scene"),
    phrases=PHRASES,
    layer=None,
    help=HELP,
    needs=("image",),
)
