"""Tool ``spectral_index``: a normalised-difference index of one image (NDVI, NDWI, MNDWI,
NDBI) and its statistics over the image, a box or the drawn region, with the index as a
float GeoTIFF and a coloured map. "What is the mean NDVI?" is a number of the index, not
the share of vegetation that the land cover gives."""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
from pydantic import Field

from rschat.geo.bands import INDICES, spectral_index
from rschat.geo.errors import InputError
from rschat.geo.io import write_geotiff, write_png
from rschat.tools.base import (
    Args,
    Artifact,
    Box,
    Figures,
    ImageName,
    Kept,
    Phrase,
    Reading,
    Tool,
    ToolContext,
    ToolResult,
    UseRegion,
    region_mask_of,
    scoped_raster,
)

Index = Literal["ndvi", "ndwi", "mndwi", "ndbi"]
Statistic = Literal["all", "mean", "median", "min", "max"]
BAND_WORDS = {"nir": "near-infrared", "swir1": "SWIR1 (shortwave infrared)"}
WHAT = {"ndvi": "vegetation", "ndwi": "open water", "mndwi": "open water", "ndbi": "built-up land"}


class IndexArgs(Args):
    image: ImageName = "image"
    index: Index = "ndvi"
    box: Box = None
    region: UseRegion = False
    about: Statistic = Field("all", description="the statistic the question asks for; the answer states it first")


class IndexFigures(Figures):
    index_mean: float
    index_median: float
    index_min: float
    index_max: float
    index_std: float
    index_p10: float
    index_p90: float
    above_zero_percent: float  # share of valid pixels with the index above 0
    valid_pixels: int
    pixel_size_m: float | None


# "what is the mean NDVI?", "compute the NDWI", "map the NDVI", "NDVI statistics"; not "the
# NDVI trend" (time series, tried first) nor "the NDVI in 2005" (a row of that series).
_NAME = r"(ndvi|ndwi|mndwi|ndbi)"
_STAT = r"(?:mean|average|median|minimum|maximum|min|max|compute|calculate|map|range|distribution|histogram|statistics|stats)"
PHRASES = (
    Phrase(
        "spectral_index",
        re.compile(
            rf"\b{_STAT}\b[^.?!]{{0,30}}\b{_NAME}\b|\b{_NAME}\b[^.?!]{{0,20}}\b(?:map|values?|statistics|stats|range)\b"
            # "what is the NDVI?", "whats the ndvi in 2000?", "show me the NDWI of the after image"
            rf"|\A\W*(?:what is|what's|whats|show|show me|give me|tell me) (?:the |its )?{_NAME}"
            rf"(?:\s+(?:in|on|for|of)\s+[\w -]{{1,30}})?\W*\Z",
            re.I,
        ),
        35,
    ),
)


def slots(message: str) -> dict[str, str]:
    """The index named and the statistic asked ('the mean NDWI' -> ndwi, mean)."""
    index = re.search(r"\b(mndwi|ndwi|ndbi|ndvi)\b", message, re.I)
    stat = re.search(r"\b(mean|average|median|minimum|maximum|min|max)\b", message, re.I)
    if stat is None:  # "what is the NDVI?" asks for one number: its mean
        about = "mean" if re.match(r"\W*(?:what is|what's)\b", message, re.I) else "all"
    else:
        word = stat.group(1).lower()
        about = {"average": "mean", "minimum": "min", "maximum": "max"}.get(word, word)
    return {"index": index.group(1).lower() if index else "ndvi", "about": about}


def _colours(values: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8: -1 brown, 0 pale yellow, +1 dark green; no data black."""
    v = np.clip(np.nan_to_num(values, nan=0.0), -1.0, 1.0)[..., None]
    brown, pale, green = np.array([140, 80, 30]), np.array([250, 240, 190]), np.array([0, 100, 20])
    rgb = np.where(v < 0, pale + (brown - pale) * -v, pale + (green - pale) * v)
    rgb[np.isnan(values)] = 0
    return rgb.astype(np.uint8)


def run(args: IndexArgs, ctx: ToolContext) -> ToolResult:
    raster, scope = scoped_raster(args.image, args.box, ctx)
    values = spectral_index(raster, args.index)
    name = args.index.upper()
    if values is None:
        a, b = (BAND_WORDS.get(band, band) for band in INDICES[args.index])
        raise InputError(
            f"{name} needs the {a} and {b} bands, and "
            f"'{raster.name}' has {', '.join(raster.band_names)}. If it has them, say the band order ('the bands are "
            "red, green, blue, NIR'); an RGB image has no near-infrared."
        )
    inside = region_mask_of(args.region, ctx, raster)
    if inside is not None:
        values = np.where(inside, values, np.nan)
        scope += ", inside the region drawn on the map"
    valid = values[np.isfinite(values)]
    if valid.size == 0:
        raise InputError(f"{scope[0].upper()}{scope[1:]} has no pixel where {name} can be computed (no data).")
    p10, median, p90 = (float(v) for v in np.percentile(valid, [10, 50, 90]))
    figures = IndexFigures(
        index_mean=float(valid.mean()), index_median=median, index_min=float(valid.min()),
        index_max=float(valid.max()), index_std=float(valid.std()), index_p10=p10, index_p90=p90,
        above_zero_percent=100.0 * float((valid > 0).mean()), valid_pixels=int(valid.size),
        pixel_size_m=raster.pixel_size_m(),
    )  # fmt: skip
    tif = write_geotiff(ctx.path(f"{args.index}.tif"), values.astype(np.float32), raster, nodata=float("nan"))
    png = write_png(ctx.path(f"{args.index}.png"), _colours(values))
    summary = (
        f"{name} over {scope}: mean {figures.index_mean:.3f}, median {median:.3f} (10-90%: {p10:.3f} to {p90:.3f}; "
        f"{figures.index_min:.3f} to {figures.index_max:.3f}); {figures.above_zero_percent:.1f}% of "
        f"{figures.valid_pixels:,} pixels above 0"
    )
    return ToolResult(
        summary=summary,
        figures=figures,
        artifacts=[
            Artifact("overlay", png, f"{name} (brown -1, yellow 0, green +1)"),
            Artifact("geotiff", tif, f"{name} (GeoTIFF, float32, NaN where no data)"),
        ],  # fmt: skip
        method=f"({INDICES[args.index][0]} - {INDICES[args.index][1]}) / (sum) per pixel, on the file's values "
        "(digital numbers unless the file holds reflectance)",
        limits=[
            f"higher {name} means more {WHAT[args.index]}; on digital numbers the values shift with "
            "sensor and illumination, so compare dates of one sensor only"
        ],  # fmt: skip
        notes=list(raster.notes),
        kept=Kept(target=args.index, scope=scope),
    )


def answer(result: ToolResult, reading: Reading) -> str:
    return f"**{(result.kept.target or 'index').upper()}** ({reading.source}): {result.summary}."


HELP = (
    "- **spectral indices** of one image (*what is the mean NDVI?*, *map the NDWI*): NDVI, NDWI, MNDWI, NDBI "
    "statistics and a float GeoTIFF, when the bands are named"
)


TOOL = Tool(
    name="spectral_index",
    description=(
        "A normalised-difference index (NDVI, NDWI, MNDWI, NDBI) of one image over the image, a box or the "
        "drawn region: mean, median, percentiles, share above 0, a float GeoTIFF and a coloured map."
    ),
    args=IndexArgs,
    figures=IndexFigures,
    function=run,
    answer=answer,
    phrases=PHRASES,
    layer=None,
    reads_colours=lambda args: False,  # named bands only: an unnamed false-colour file has none
    help=HELP,
    needs=("image",),
    slots=slots,
)
