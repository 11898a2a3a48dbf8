"""Tool ``image_info``: what an image file is: its size, bands, CRS, pixel size, the ground
it covers and where, and its date. Analysts ask these first ("what is the pixel size?",
"which CRS is it in?", "what area does it cover?"); they are read from the file's header
and grid, never from its pixels' content."""

from __future__ import annotations

import re
from typing import Literal

import numpy as np
from pydantic import Field
from pyproj import CRS as ProjCRS  # noqa: N811

from rschat.geo.raster import Raster
from rschat.geo.vector import pixel_to_lonlat
from rschat.tools.base import Args, Figures, ImageName, Phrase, Reading, Tool, ToolContext, ToolResult

About = Literal["all", "pixel_size", "crs", "area", "bands", "date", "where", "size"]


class InfoArgs(Args):
    image: ImageName = "image"
    about: About = Field("all", description="what the question asks about; the answer states it first")


class InfoFigures(Figures):
    width_px: int
    height_px: int
    bands: int
    pixel_size_m: float | None
    area_m2: float | None  # the ground the whole grid covers
    area_ha: float | None
    epsg: int | None
    centre_lon: float | None
    centre_lat: float | None
    valid_percent: float  # pixels with data in every band


# "what is the pixel size?", "which CRS?", "what area does the image cover?", "how many
# bands?", "when was it taken?", "where is this image?", "image info". Tried before the
# land-cover and counting phrases ("how many bands" is no count of objects, "what area
# does the image cover" no class's area).
ABOUT_WORDS: list[tuple[About, re.Pattern[str]]] = [
    (
        "pixel_size",
        re.compile(
            r"\b(?:what|which)(?: is|'s| are)? (?:the |its |this image's |the image's )?(?:spatial |ground )?"
            r"(?:pixel size|pixel spacing|resolution|gsd|ground sample distance)\b"
            r"|\b(?:pixel size|resolution|gsd) of (?:the|this|that|each) (?:image|scene|tile|file|raster|pixel)\b"
            r"|\bhow (?:big|large) (?:is|are) (?:a|the|its|each) pixels?\b",
            re.I,
        ),
    ),  # fmt: skip
    ("crs", re.compile(r"\b(crs|coordinate (reference )?system|projection|epsg|datum|utm zone)\b", re.I)),
    (
        "area",
        re.compile(
            r"\b(?:area|extent|footprint|size) of (?:the|this|that) (?:whole )?(?:image|scene|tile|file|raster)\b"
            r"|\b(?:how much|what) (?:area|ground|land) does (?:the|this|that|it) (?:image|scene|tile|file|raster)? ?cover"
            r"|\bhow (?:big|large) is (?:the|this|that) (?:whole )?(?:image|scene|tile|file|raster)\b",
            re.I,
        ),
    ),  # fmt: skip
    ("bands", re.compile(r"\b(how many|what|which) bands\b|\bband (names|order)\?", re.I)),
    (
        "date",
        re.compile(
            r"\bwhen was (it|this|the image|the scene|that) (taken|acquired|captured|flown|recorded)\b"
            r"|\b(acquisition|capture) date\b|\bwhat date\b",
            re.I,
        ),
    ),  # fmt: skip
    (
        "where",
        re.compile(
            r"\bwhere (is|was) (this|the|that) (image|scene|tile|place|photo|file)\b"
            r"|\b(coordinates|bounds|bounding box|location) of (the|this) (image|scene|tile|file)\b",
            re.I,
        ),
    ),  # fmt: skip
    ("all", re.compile(r"\b(image|file|raster) (info|information|metadata|properties|details)\b|\bmetadata\b", re.I)),
]
PHRASES = (Phrase("image_info", re.compile("|".join(f"(?:{p.pattern})" for _, p in ABOUT_WORDS), re.I), 5),)


def about_of(message: str) -> About:
    """What an image-information question asks about ('pixel_size', 'crs', ...)."""
    return next((about for about, pattern in ABOUT_WORDS if pattern.search(message)), "all")


def _file_grid(raster: Raster) -> tuple[int, int, float | None]:
    """(width, height, pixel size in m) of the file: a large scene held as an overview
    reports its own full size, not the overview's."""
    size = raster.pixel_size_m()
    if raster.source is None:
        return raster.width, raster.height, size
    scale = raster.width / raster.source.width
    return raster.source.width, raster.source.height, None if size is None else size * scale


def _epsg(raster: Raster) -> int | None:
    return raster.crs.to_epsg() if raster.georeferenced and raster.crs is not None else None


def _crs_text(raster: Raster) -> str:
    """'EPSG:26914 (NAD83 / UTM zone 14N)'; the WKT's start when it has no EPSG code."""
    if not raster.georeferenced or raster.crs is None:
        return "no CRS (the file has no georeference)"
    epsg = _epsg(raster)
    code = f"EPSG:{epsg}" if epsg else raster.crs.to_string()[:60]
    return f"{code} ({ProjCRS.from_wkt(raster.crs.to_wkt()).name})"


def run(args: InfoArgs, ctx: ToolContext) -> ToolResult:
    raster = ctx.raster(args.image)
    width, height, gsd = _file_grid(raster)
    per_pixel = raster.pixel_area_m2()
    area = None if per_pixel is None else float(np.mean(per_pixel)) * raster.width * raster.height
    valid = raster.valid_mask()
    lon = lat = None
    if raster.georeferenced:
        lon, lat = pixel_to_lonlat(raster)(raster.width / 2, raster.height / 2)
    figures = InfoFigures(
        width_px=width, height_px=height, bands=raster.count, pixel_size_m=gsd, area_m2=area,
        area_ha=None if area is None else area / 1e4, epsg=_epsg(raster), centre_lon=lon, centre_lat=lat,
        valid_percent=100.0 * float(valid.mean()),
    )  # fmt: skip
    names = ", ".join(raster.band_names)
    parts = {
        "size": f"{width:,} x {height:,} pixels",
        "bands": f"{raster.count} band(s) ({names}; {raster.data.dtype})",
        "crs": _crs_text(raster),
        "pixel_size": (
            f"{gsd:.3g} m pixels" + ("" if raster.georeferenced else " (as you stated)")
            if gsd is not None
            else "no pixel size (no georeference: say 'the pixel size is X m')"
        ),
        "area": "" if area is None else f"covering {area / 1e4:,.2f} ha ({area / 1e6:,.3f} km2, {area:,.0f} m2)",
        "where": "" if lat is None or lon is None else f"centred at {_lat_lon(lat, lon)}",
        "date": f"dated {raster.date.isoformat()}" if raster.date else "no date in the file or its name",
    }
    order = [args.about] if args.about != "all" else []
    order += [k for k in ("size", "bands", "crs", "pixel_size", "area", "where", "date") if k not in order]
    text = "; ".join(parts[k] for k in order if parts[k])
    summary = f"'{raster.name}': {text}; {figures.valid_percent:.1f}% of its pixels hold data"
    return ToolResult(
        summary=summary,
        figures=figures,
        method="read from the file's header and grid (rasterio); areas from the pixel grid (geodesic for "
        "geographic CRSs)",
        notes=list(raster.notes),
    )


def _lat_lon(lat: float, lon: float) -> str:
    return f"{abs(lat):.5f} {'N' if lat >= 0 else 'S'}, {abs(lon):.5f} {'E' if lon >= 0 else 'W'}"


def answer(result: ToolResult, reading: Reading) -> str:
    return f"**Image** ({reading.source}): {result.summary}."


HELP = (
    "- **image information**: size, bands, CRS, pixel size, ground covered, place and date (*what is the pixel size?*)"
)


TOOL = Tool(
    name="image_info",
    description=(
        "What an image file is: size in pixels, bands, CRS, pixel size (m), the ground it covers (m2, ha), "
        "its centre (lon/lat) and date. 'about' names what the question asks for."
    ),
    args=InfoArgs,
    figures=InfoFigures,
    function=run,
    answer=answer,
    phrases=PHRASES,
    layer=None,
    reads_colours=lambda args: False,  # the header and grid only
    help=HELP,
    needs=("image",),
    slots=lambda message: {"about": about_of(message)},
)
