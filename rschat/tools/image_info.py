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

from rschat.geo.area import share_text
from rschat.geo.raster import Raster
from rschat.geo.vector import lat_lon_text, pixel_to_lonlat
from rschat.tools.base import Args, Figures, ImageName, Phrase, Reading, Tool, ToolContext, ToolResult

About = Literal["all", "pixel_size", "crs", "area", "bands", "date", "where", "size", "sensor", "no_data", "data"]


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
    extent_x_m: float | None = None  # the grid's width and height on the ground
    extent_y_m: float | None = None
    valid_percent: float = 100.0  # pixels with data in every band


# "what is the pixel size?", "which CRS?", "what area does the image cover?", "how many
# bands?", "when was it taken?", "where is this image?", "image info". Tried before the
# land-cover and counting phrases ("how many bands" is no count of objects, "what area
# does the image cover" no class's area).
_IMAGE = r"(?:image|images|scene|tile|file|raster|photo|picture)"
# "how much of the image ...", "what share of the pixels ...": the image's own coverage
_SHARE_OF_IMAGE = (
    r"\b(?:how much|how many|what (?:share|part|fraction|percent(?:age)?|proportion)) of (?:the |this |its )?"
    rf"(?:{_IMAGE[3:-1]}|pixels)\b[^.?!;,]{{0,30}}\b"
)
ABOUT_WORDS: list[tuple[About, re.Pattern[str]]] = [
    ("pixel_size", re.compile(
        r"\b(?:what|which)(?: is|'s| are)? (?:the |its |this image's |the image's )?(?:spatial |ground )?"
        r"(?:pixel size|pixel spacing|resolution|gsd|ground sample distance)\b"
        rf"|\b(?:pixel size|resolution|gsd) of (?:the|this|that|each) (?:{_IMAGE[3:-1]}|pixel)\b"
        r"|\bhow (?:big|large) (?:is|are) (?:a|the|its|each) pixels?\b"
        r"|\b(?:tell|give|show) me (?:the |its )?(?:spatial |ground )?(?:pixel size|pixel spacing|resolution|gsd)\b", re.I)),
    ("crs", re.compile(r"\b(crs|coordinate (reference )?system|projection|epsg|datum|utm zone)\b", re.I)),
    # "how wide is the image?", "the image size in pixels", "its dimensions": the grid's size
    ("size", re.compile(
        rf"\b{_IMAGE} size\b|\bsize in pixels\b|\bhow many pixels (?:wide|tall|high|across|long)\b|\bhow many pixels (?:does|do|is|are in) (?:the|this|it)\b(?! ?\w* ?(?:water|tree|built|vegetation|soil|cloud|shadow|grass|forest))|\bdimensions?\b"
        rf"|\bhow (?:wide|tall|long|high) is (?:the|this|that|it)\b|\b(?:width|height) of (?:the|this) {_IMAGE}", re.I)),
    ("area", re.compile(
        rf"\b(?:area|extent|footprint|size) of (?:the|this|that) (?:whole )?{_IMAGE}"
        rf"|\b(?:how much|what) (?:area|ground|land) does (?:the|this|that|it) (?:{_IMAGE} )?cover"
        rf"|\b(?:area|ground) covered by (?:the|this|that) (?:whole )?{_IMAGE}"
        rf"|\bhow (?:big|large) is (?:the|this|that) (?:whole )?{_IMAGE}", re.I)),
    ("bands", re.compile(
        r"\b(?:how many|what|which) bands\b|\b(?:what|which) are (?:the|its|the image's) bands\b"
        r"|\bband names\b|\bband order\b(?!\s*(?:is|:|=))", re.I)),
    ("date", re.compile(
        r"\bwhen (?:was|were) (?:it|they|this|these|that|the)(?: (?:before|after|first|second|other|last))?"
        rf"(?: {_IMAGE})? (?:taken|acquired|captured|flown|recorded|made|shot)\b"
        r"|\b(?:acquisition|capture) dates?\b|\bwhat (?:date|year)\b", re.I)),
    ("where", re.compile(
        rf"\bwhere (?:is|was|are|were) (?:this|it|these|they|the|that)(?: {_IMAGE}| place)?(?: (?:located|situated|taken|from))?\W*$"
        rf"|\b(?:coordinates|bounds|bounding box|location|centre|center) of (?:the|this) {_IMAGE}", re.I)),
    ("sensor", re.compile(r"\b(?:what|which) (?:sensor|satellite|platform|camera|instrument)\b", re.I)),
    # "how much of the image has no data?", "what share of the pixels have data?": read from
    # the pixels' validity (nodata, NaN, a black edge), not a land cover
    ("no_data", re.compile(
        rf"{_SHARE_OF_IMAGE}(?:is|are|has|have|holds?) (?:no[ -]?data|missing|empty|blank)\b"
        r"|^\W*(?:is|are) there (?:any )?(?:no[ -]?data|missing data|empty pixels)(?: pixels| areas?)?(?: in (?:the|this) \w+)?\W*$", re.I)),
    ("data", re.compile(rf"{_SHARE_OF_IMAGE}(?:has|have|holds?) (?:valid )?data\W*$", re.I)),
    ("all", re.compile(rf"\b{_IMAGE} (?:info|information|metadata|properties|details)\b|\bmetadata\b", re.I)),
]  # fmt: skip
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


def _degree_steps(raster: Raster) -> tuple[float, float, float, float] | None:
    """For a geographic CRS: the file's pixel (east-west, north-south) in metres at the
    image's centre and in degrees. A degree of longitude shrinks with latitude, so one
    size in metres hid that the pixels of a 0.0015-degree grid at 40 N are 127 x 167 m."""
    if not (raster.georeferenced and raster.crs is not None and raster.crs.is_geographic and raster.transform):
        return None
    from pyproj import Geod

    scale = raster.width / raster.source.width if raster.source is not None else 1.0
    dx, dy = abs(raster.transform.a) * scale, abs(raster.transform.e) * scale
    lon, lat = pixel_to_lonlat(raster)(raster.width / 2, raster.height / 2)
    geod = Geod(ellps="WGS84")
    ew = geod.inv(lon - dx / 2, lat, lon + dx / 2, lat)[2]
    ns = geod.inv(lon, lat - dy / 2, lon, lat + dy / 2)[2]
    return ew, ns, dx, dy


def _pixel_text(raster: Raster, gsd: float | None) -> str:
    if gsd is None:
        return "no pixel size (no georeference: say 'the pixel size is X m')"
    if (steps := _degree_steps(raster)) is not None:
        ew, ns, dx, dy = steps
        return (
            f"{gsd:.3g} m pixels on average: {ew:.3g} m east-west x {ns:.3g} m north-south at the centre "
            f"({dx:.6g} x {dy:.6g} degrees in the file's CRS)"
        )
    return f"{gsd:.3g} m pixels" + ("" if raster.georeferenced else " (as you stated)")


def _bounds_text(raster: Raster) -> str:
    """'bounds (lon/lat, EPSG:4326) west ..., north ...': the grid's corners."""
    where = pixel_to_lonlat(raster)
    corners = [where(x, y) for x in (0, raster.width) for y in (0, raster.height)]
    lons, lats = [c[0] for c in corners], [c[1] for c in corners]
    return (
        f"bounds (lon/lat, EPSG:4326) west {min(lons):.5f}, south {min(lats):.5f}, east {max(lons):.5f}, "
        f"north {max(lats):.5f}"
    )


def _date_text(raster: Raster) -> str:
    if raster.date is None:
        return "no date in the file or its name"
    if raster.date_label == str(raster.date.year):
        return f"from {raster.date.year} (the year in its name; no day given)"
    return f"dated {raster.date.isoformat()}"


def _parts(raster: Raster, f: InfoFigures) -> dict[str, str]:
    """Each fact as a phrase, by what a question asks about."""
    gsd, area = f.pixel_size_m, f.area_m2
    extent = "" if f.extent_x_m is None else f" ({f.extent_x_m:,.0f} x {f.extent_y_m:,.0f} m)"
    where = (
        "" if f.centre_lat is None or f.centre_lon is None else f"centred at {lat_lon_text(f.centre_lat, f.centre_lon)}"
    )
    return {
        "size": f"{f.width_px:,} x {f.height_px:,} pixels{extent}",
        "bands": f"{raster.count} band(s) ({', '.join(raster.band_names)}; {raster.data.dtype})",
        "crs": _crs_text(raster),
        "pixel_size": _pixel_text(raster, gsd),
        "area": "" if area is None else f"covering {area / 1e4:,.2f} ha ({area / 1e6:,.3f} km2, {area:,.0f} m2)",
        "where": f"{where}; {_bounds_text(raster)}" if where else "",
        "date": _date_text(raster),
        "sensor": "the sensor is not named in what rschat reads from the file (its bands, grid and date)",
        "no_data": f"{share_text(100 - f.valid_percent)} of its pixels are no data",
        "data": f"{share_text(f.valid_percent)} of its pixels hold data",
    }


def run(args: InfoArgs, ctx: ToolContext) -> ToolResult:
    raster = ctx.raster(args.image)
    width, height, gsd = _file_grid(raster)
    per_pixel = raster.pixel_area_m2()
    area = None if per_pixel is None else float(np.mean(per_pixel)) * raster.width * raster.height
    centre = pixel_to_lonlat(raster)(raster.width / 2, raster.height / 2) if raster.georeferenced else [None, None]
    steps = _degree_steps(raster)
    step_x, step_y = (steps[0], steps[1]) if steps is not None else (gsd, gsd)
    figures = InfoFigures(
        width_px=width, height_px=height, bands=raster.count, pixel_size_m=gsd, area_m2=area,
        area_ha=None if area is None else area / 1e4, epsg=_epsg(raster), centre_lon=centre[0], centre_lat=centre[1],
        extent_x_m=None if step_x is None else width * step_x, extent_y_m=None if step_y is None else height * step_y,
        valid_percent=100.0 * float(raster.valid_mask().mean()),
    )  # fmt: skip
    parts = _parts(raster, figures)
    order = [args.about] if args.about != "all" else []
    order += [k for k in ("size", "bands", "crs", "pixel_size", "area", "where", "date") if k not in order]
    text = "; ".join(parts[k] for k in order if parts[k])
    summary = f"'{raster.name}': {text}" + (f"; {parts['data']}" if args.about not in ("data", "no_data") else "")
    return ToolResult(
        summary=summary,
        figures=figures,
        method="read from the file's header and grid (rasterio); areas from the pixel grid (geodesic for "
        "geographic CRSs)",
        notes=list(raster.notes),
    )


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
