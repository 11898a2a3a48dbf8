"""Tool ``raster_values``: the values of one band of an image and where its extremes lie:
minimum, maximum, mean, median, spread, over the image, a box or the drawn region.

Elevation and height models (DSM, DTM, height above ground), temperature or index
products and any single band are read for their values, not their colours: "what is the
mean elevation?", "where is the highest point?", "what is the range of pixel values?".
The unit is what the file states; a GeoTIFF elevation model rarely states one (its values
are then given as stored, usually metres). Written here because the statistics are a few
NumPy calls, and what matters is keeping no-data out and saying where the extremes are."""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
from pydantic import Field

from rschat.backends import learned
from rschat.geo.errors import InputError
from rschat.geo.vector import pixel_to_lonlat
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
    UseRegion,
    region_mask_of,
    scoped_raster,
)

Statistic = Literal["all", "mean", "median", "min", "max", "unit"]
Quantity = Literal["value", "elevation"]


class ValuesArgs(Args):
    image: ImageName = "image"
    band: int = Field(1, ge=1, description="which band (1 = the first)")
    box: Box = None
    region: UseRegion = False
    about: Statistic = Field("all", description="the statistic the question asks for; the answer states it first")
    quantity: Quantity = Field("value", description="'elevation' when the question asks for heights or elevations")


class ValuesFigures(Figures):
    band: int
    value_mean: float
    value_median: float
    value_min: float
    value_max: float
    value_std: float
    value_p10: float
    value_p90: float
    valid_pixels: int
    pixel_size_m: float | None
    # Where the extremes are: pixels of the image, and longitude / latitude when georeferenced.
    max_x: int
    max_y: int
    min_x: int
    min_y: int
    max_lon: float | None = None
    max_lat: float | None = None
    min_lon: float | None = None
    min_lat: float | None = None


# "what is the mean elevation?", "where is the highest point?", "pixel values", "value
# range", "band statistics"; spectral indices (NDVI) have their own tool, tried first.
_STAT = r"(?:mean|average|median|minimum|maximum|min|max|highest|lowest|range of|spread of)"
_QUANTITY = r"(?:elevations?|heights?|altitudes?|pixel values?|values?|dns?|digital numbers?)"
PHRASES = (
    Phrase(
        "raster_values",
        re.compile(
            rf"\b{_STAT}\b[^.?!]{{0,25}}\b{_QUANTITY}\b|\b(?:highest|lowest) (?:point|spot|ground|place)\b"
            r"|\bpixel values?\b|\bvalue range\b|\brange of (?:the )?values\b|\bband statistics\b"
            r"|\bstatistics of (?:the |band )|\bunits? of (?:the )?(?:pixel )?values\b|\bvalues? (?:are )?in what units?\b"
            r"|\bwhat units? (?:are|is) (?:the |its )?(?:pixel )?values?\b|\bhow (?:high|low) is the (?:ground|terrain|land)\b",
            re.I,
        ),
        36,
    ),
)
ELEVATION_WORDS = re.compile(r"\b(?:elevations?|heights?|altitudes?|terrain|dsm|dtm|dem)\b", re.I)


def slots(message: str) -> dict[str, str | int]:
    """The statistic asked ('the highest point' -> max), the band named ('band 4') and
    whether the values are asked for as elevations."""
    stat = re.search(r"\b(mean|average|median|minimum|maximum|min|max|highest|lowest|units?)\b", message, re.I)
    word = stat.group(1).lower().rstrip("s") if stat else "all"
    about = {"average": "mean", "minimum": "min", "maximum": "max", "highest": "max", "lowest": "min"}.get(word, word)
    out: dict[str, str | int] = {"about": about}
    band = re.search(r"\bband\s*(\d{1,2})\b", message, re.I)
    if band:
        out["band"] = int(band.group(1))
    if ELEVATION_WORDS.search(message):
        out["quantity"] = "elevation"
    return out


def run(args: ValuesArgs, ctx: ToolContext) -> ToolResult:
    raster, scope = scoped_raster(args.image, args.box, ctx)
    if args.band > raster.count:
        raise InputError(f"'{raster.name}' has {raster.count} band(s); there is no band {args.band}.")
    if args.quantity == "elevation" and learned.true_colour(raster):
        raise InputError(
            f"'{raster.name}' is a colour image ({', '.join(raster.band_names)}): its values are brightness, not "
            "elevation. Heights need an elevation model (a one-band DSM, DTM or height-above-ground GeoTIFF)."
        )
    values = raster.data[args.band - 1].astype(np.float64)
    ok = raster.valid_mask() & np.isfinite(values)
    inside = region_mask_of(args.region, ctx, raster)
    if inside is not None:
        ok &= inside
        scope += ", inside the region drawn on the map"
    if not ok.any():
        raise InputError(f"{scope[0].upper()}{scope[1:]} has no valid pixel in band {args.band} (all no-data).")
    valid = values[ok]
    p10, median, p90 = (float(v) for v in np.percentile(valid, [10, 50, 90]))
    hi_y, hi_x = np.unravel_index(np.argmax(np.where(ok, values, -np.inf)), values.shape)
    lo_y, lo_x = np.unravel_index(np.argmin(np.where(ok, values, np.inf)), values.shape)
    dx, dy = (args.box[0], args.box[1]) if args.box else (0, 0)  # the box's pixels -> the image's
    figures = ValuesFigures(
        band=args.band, value_mean=float(valid.mean()), value_median=median, value_min=float(valid.min()),
        value_max=float(valid.max()), value_std=float(valid.std()), value_p10=p10, value_p90=p90,
        valid_pixels=int(valid.size), pixel_size_m=raster.pixel_size_m(),
        max_x=int(hi_x) + dx, max_y=int(hi_y) + dy, min_x=int(lo_x) + dx, min_y=int(lo_y) + dy,
    )  # fmt: skip
    if raster.georeferenced:
        where = pixel_to_lonlat(raster)
        figures.max_lon, figures.max_lat = where(hi_x + 0.5, hi_y + 0.5)
        figures.min_lon, figures.min_lat = where(lo_x + 0.5, lo_y + 0.5)
    name = raster.band_names[args.band - 1]
    what = "elevation" if args.quantity == "elevation" else f"band {args.band} ({name})"
    summary = (
        f"{what} over {scope}: mean {_v(figures.value_mean)}, median {_v(median)} (10-90%: {_v(p10)} to {_v(p90)}); "
        f"from {_v(figures.value_min)} to {_v(figures.value_max)} over {figures.valid_pixels:,} pixels"
    )
    return ToolResult(
        summary=summary,
        figures=figures,
        method=f"statistics of band {args.band} over the pixels with data (no-data and NaN left out)",
        limits=[
            "values as the file stores them: the file states no unit (elevation models are usually metres above "
            "a datum, which the file does not name)"
        ],
        notes=list(raster.notes),
        kept=Kept(target=args.quantity, scope=scope),
    )


def _v(x: float) -> str:
    """A value as an analyst reads it: 4 significant digits, thousands separated."""
    return f"{x:,.2f}" if abs(x) < 1e5 else f"{x:,.0f}"


def _place(f: ValuesFigures, which: str) -> str:
    x, y = (f.max_x, f.max_y) if which == "max" else (f.min_x, f.min_y)
    lon, lat = (f.max_lon, f.max_lat) if which == "max" else (f.min_lon, f.min_lat)
    at = f"pixel ({x}, {y})"
    if lon is not None and lat is not None:
        at += f", {abs(lat):.5f} {'N' if lat >= 0 else 'S'}, {abs(lon):.5f} {'E' if lon >= 0 else 'W'}"
    return at


def answer(result: ToolResult, reading: Reading) -> str:
    f = result.figures
    assert isinstance(f, ValuesFigures)
    label = "Elevation" if result.kept.target == "elevation" else f"Band {f.band}"
    stat = reading.focus if reading.focus in ("mean", "median", "min", "max") else None
    if reading.focus == "unit":  # "what units are the values in?": what the file says, then the values
        return (
            f"**No unit stated**: the file gives its values without a unit (elevation models are usually metres "
            f"above a datum it does not name). {result.summary[0].upper()}{result.summary[1:]} ({reading.source})."
        )
    if stat is None:
        return f"**{label}** ({reading.source}): {result.summary}. Highest at {_place(f, 'max')}."
    value = {"mean": f.value_mean, "median": f.value_median, "min": f.value_min, "max": f.value_max}[stat]
    word = {"mean": "mean", "median": "median", "min": "lowest", "max": "highest"}[stat]
    where = f", at {_place(f, stat)}" if stat in ("min", "max") else ""
    return f"**{_v(value)}**\n\nThe {word} {label.lower()} is {_v(value)}{where} ({result.summary}; {reading.source})."


HELP = (
    "- **values of a band** (*what is the mean elevation?*, *where is the highest point?*, *pixel values of band "
    "2*): minimum, maximum, mean, median and where the extremes are, for elevation models and any band"
)


TOOL = Tool(
    name="raster_values",
    description=(
        "Statistics of one band's values (an elevation model, a height model, any band) over the image, a box or "
        "the drawn region: mean, median, min, max, spread, and where the highest and lowest pixels are."
    ),
    args=ValuesArgs,
    figures=ValuesFigures,
    function=run,
    answer=answer,
    phrases=PHRASES,
    layer=None,
    reads_colours=lambda args: False,
    help=HELP,
    needs=("image",),
    slots=slots,
)
