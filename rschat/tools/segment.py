"""Tool ``segment``: land-cover classes with their areas, shares and polygons."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any, Literal, get_args

import numpy as np
from pydantic import Field, create_model

from rschat.backends import landcover_rules as lcr
from rschat.backends import landcover_tiled as lct
from rschat.backends import landuse, lite_models
from rschat.geo import memo
from rschat.geo.area import area_text
from rschat.geo.errors import InputError
from rschat.geo.io import write_geotiff, write_png
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster
from rschat.geo.shapes import RegionShape, Size, channels, describe, matches, shape_of, size_unresolved
from rschat.geo.vector import PIXEL_COORDINATES, Region, regions_geojson, regions_of, write_geojson
from rschat.tools.base import (
    Args,
    Artifact,
    Box,
    Figures,
    ImageName,
    Kept,
    Layer,
    Phrase,
    Reading,
    Tool,
    ToolContext,
    ToolResult,
    UseRegion,
    covers,
    largest_region_text,
    region_mask_of,
    scoped_raster,
)
from rschat.tools.tiled import file_source, shown_raster, tile_progress, tile_side, tiled_scope

Target = Literal["water", "trees", "low_vegetation", "bare_soil", "built_up", "shadow", "cloud", "vegetation", "all"]
TARGETS: tuple[str, ...] = (*lcr.CLASSES, "vegetation")
assert set(get_args(Target)) == {*TARGETS, "all"}, "Target must list the land-cover classes"


class SegmentArgs(Args):
    image: ImageName = "image"
    target: Target = "all"
    box: Box = None
    region: UseRegion = False
    size: Size | None = Field(
        None, description="also count the target's areas of this size (small < 100 m2 <= medium < 500 m2 <= large)"
    )
    shape: RegionShape | None = Field(
        None, description="also count the target's areas of this outline ('channel': rivers, streams, canals)"
    )


# Per-class figures for every class (and "vegetation" = trees + low vegetation), built from
# the class list so that a new class gets its figures without a second list to keep in step.
_per_class: dict[str, Any] = {}
for _name in TARGETS:
    _per_class |= {f"{_name}_percent": (float | None, None), f"{_name}_area_m2": (float | None, None),
                   f"{_name}_area_ha": (float | None, None), f"{_name}_region_count": (int | None, None),
                   f"{_name}_largest_area_m2": (float | None, None)}  # fmt: skip
SegmentFigures: type[Any] = create_model(  # type: ignore[call-overload]
    "SegmentFigures",
    __base__=Figures,
    analysed_area_m2=(float | None, None),
    pixel_size_m=(float | None, None),
    # The target's areas of the asked size or shape ("large water areas"), when asked.
    selection=(str | None, None),
    selected_count=(int | None, None),
    selected_area_m2=(float | None, None),
    # Ground under the learned building model's footprints (%), where it served.
    buildings_percent=(float | None, None),
    **_per_class,
)

LIMITS_RGB = (
    "lite mode, colour rules on RGB: dark water and shadow are told apart by size and stillness (a shadow "
    "keeps the texture of what it falls on), grey sand, rock and dead trees can be labelled built-up, and "
    "trees vs low vegetation is judged by texture (by greenness at satellite pixel sizes)"
)
LIMITS_MS = "lite mode, spectral-index rules (NDVI, NDWI/MNDWI, NDBI): mixed pixels at class edges are approximate"
TREES_BY_SWIR = "trees vs low vegetation by SWIR moisture (NDMI), by texture where haze compresses the indices"
TREES_BY_TEXTURE = (
    "trees vs low vegetation by texture and darkness (no SWIR band: at 10-20 m grass and crops can read as trees)"
)


def _limits(lc: lcr.LandCover) -> list[str]:
    if not lc.used_indices:
        return [LIMITS_RGB]
    return [f"{LIMITS_MS}; {TREES_BY_SWIR if 'ndbi' in lc.used_indices else TREES_BY_TEXTURE}"]


PHRASES = (
    Phrase(
        "segment",
        re.compile(
            r"\bsegment|land.?cover|\bmask\b|\bmap (the|all)|how much|\bshare\b|percent|\bcover(ed|age)?\b|"
            r"\bis (this|it|that|here)\b|\bwhere\b|\bfind\b",
            re.I,
        ),
        100,
    ),
)
CLASS_COLORS = {"water": "#1e5ac8", "trees": "#146e1e", "low_vegetation": "#8cc850", "bare_soil": "#be965a",
                "built_up": "#dc283c", "shadow": "#3c3c3c", "cloud": "#f5f5f5"}  # fmt: skip


def _blend(rgb: np.ndarray, colors: np.ndarray, valid: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    out = rgb.astype(np.float32)
    out[valid] = (1 - alpha) * out[valid] + alpha * colors[valid]
    return out.astype(np.uint8)


def target_mask(lc: lcr.LandCover, target: str) -> np.ndarray:
    if target == "vegetation":
        return lc.mask("trees") | lc.mask("low_vegetation")
    return lc.mask(target)


def _class_figures(lc: lcr.LandCover, raster: Raster, target: str) -> dict[str, float | int | None]:
    """Share (%) and area (m2, ha) of every class (and of vegetation when asked)."""
    valid = lc.classes >= 0
    valid_px = int(valid.sum())
    data: dict[str, float | int | None] = {
        "analysed_area_m2": raster.area_m2(valid),
        "pixel_size_m": raster.pixel_size_m(),
    }
    for name in lcr.CLASSES if target != "vegetation" else TARGETS:
        m = target_mask(lc, name)
        area = raster.area_m2(m)
        data[f"{name}_percent"] = 100.0 * m.sum() / valid_px if valid_px else 0.0
        data[f"{name}_area_m2"] = area
        data[f"{name}_area_ha"] = None if area is None else area / 1e4
    if lc.buildings is not None and valid_px:
        data["buildings_percent"] = 100.0 * float((lc.buildings & valid).sum()) / valid_px
    return data


def run(args: SegmentArgs, ctx: ToolContext) -> ToolResult:
    if ctx.raster(args.image).source is not None:
        return run_tiled(args, ctx, ctx.raster(args.image))
    # 1. Inputs.
    raster, scope = scoped_raster(args.image, args.box, ctx)
    target = args.target

    # 2. Classify (the rules, with buildings from the learned model where it serves).
    lc, building_note = _classified(raster)
    inside = region_mask_of(args.region, ctx, raster)
    if inside is not None:
        lc.classes = np.where(inside, lc.classes, -1).astype(np.int8)
        scope += ", inside the region drawn on the map"
    valid = lc.classes >= 0
    if not valid.any():
        raise InputError(f"{scope[0].upper()}{scope[1:]} has no valid pixels (all no-data): nothing to classify.")
    ctx.progress(0.6, "classified")

    # 3. Measure every class (pixels, m2, ha, %) and the target's regions.
    data = _class_figures(lc, raster, target)
    focus_mask = target_mask(lc, target) if target != "all" else None
    if focus_mask is not None:
        labels, regions = regions_of(focus_mask, raster)
        data[f"{target}_region_count"] = len(regions)
        data[f"{target}_largest_area_m2"] = regions[0].area_m2 if regions else None
        data |= _selected_regions(labels, regions, args, raster.pixel_size_m())
    else:
        labels, regions = lc.classes + 1, []

    # 4. Artifacts: overlay, class GeoTIFF, polygons.
    colors = lcr.colorize(lc).astype(np.float32)
    overlay = _blend(rgb_preview(raster), colors, valid if focus_mask is None else focus_mask)
    geojson = _class_polygons(lc, raster) if focus_mask is None else regions_geojson(labels, regions, raster, target)
    artifacts = [
        Artifact(
            "overlay", write_png(ctx.path(f"landcover_{target}_overlay.png"), overlay), f"land cover ({target}) overlay"
        ),  # fmt: skip
        Artifact(
            "geotiff",
            write_geotiff(ctx.path("landcover_classes.tif"), (lc.classes + 1).astype(np.uint8), raster, nodata=0),
            "class map (GeoTIFF: 0 no data, " + ", ".join(f"{i + 1} {c}" for i, c in enumerate(lcr.CLASSES)) + ")",
        ),
        Artifact(
            "geojson", write_geojson(ctx.path(f"landcover_{target}.geojson"), geojson), f"{target} polygons (GeoJSON)"
        ),  # fmt: skip
    ]

    return ToolResult(
        summary=_summary(data, scope),
        figures=SegmentFigures(**data),
        artifacts=artifacts,
        method=lcr.METHOD_NAME
        + (f", indices: {', '.join(lc.used_indices)}" if lc.used_indices else ", RGB only")
        + building_note,
        limits=_limits(lc),
        kept=Kept(mask=focus_mask, labels=labels, regions=regions, landcover=lc, target=target, scope=scope),
    )


def _selected_regions(
    labels: np.ndarray, regions: list[Region], args: SegmentArgs, gsd: float | None
) -> dict[str, Any]:
    """How many of the target's areas are of the asked size and shape, and their area
    together (no figures when neither was asked)."""
    if args.size is None and args.shape is None:
        return {}
    if (why := size_unresolved(args.size, gsd)) is not None:
        raise InputError(f"I can't tell the {args.size} {args.target.replace('_', ' ')} areas apart: {why}.")
    if args.shape == "channel":  # "is there a river?": the areas that are part of a channel
        river_ids = set(np.unique(labels[channels(labels > 0)]).tolist())
        picked = [r for r in regions if r.id in river_ids and matches(r.area_m2, None, args.size, None)]
    else:
        picked = []
        for r in regions:
            x0, y0, x1, y1 = r.bbox
            outline = shape_of(labels[y0:y1, x0:x1] == r.id) if args.shape else None
            if matches(r.area_m2, outline, args.size, args.shape):  # type: ignore[arg-type]
                picked.append(r)
    areas = [r.area_m2 for r in picked]
    return {
        "selection": describe(args.size, args.shape),
        "selected_count": len(picked),
        "selected_area_m2": None if any(a is None for a in areas) else float(sum(a or 0.0 for a in areas)),
    }


def _classified(raster: Raster) -> tuple[lcr.LandCover, str]:
    """The land cover of these pixels, computed once per image and pixel size while the
    image lives (a chat asks several questions of one image); a copy, so that restricting
    it to a region never changes the kept one."""

    def classify() -> tuple[lcr.LandCover, str]:
        lc = lcr.classify(raster)
        note = landuse.add_built_up(lc, raster)
        lc.classes.flags.writeable = lc.superpixels.flags.writeable = False  # shared: never edited in place
        return lc, note

    key = (
        "landcover",
        raster.pixel_size_m(),
        raster.band_names,
        raster.nodata,
        lite_models.status("buildings"),
        lite_models.status("landuse"),
    )
    lc, note = memo.per_image(raster.data, key, classify)
    return replace(lc), note


def _summary(data: dict[str, Any], scope: str) -> str:
    shares = sorted(((data[f"{c}_percent"] or 0.0, c) for c in lcr.CLASSES), reverse=True)
    return f"land cover of {scope}: " + ", ".join(
        f"{c.replace('_', ' ')} {p:.1f}%"
        + (f" ({data[c + '_area_ha']:,.2f} ha)" if data[c + "_area_ha"] is not None else "")
        for p, c in shares
        if p >= 0.5
    )


def _tiled_figures(out: lct.TiledClasses, shown: Raster, cell_px: float, target: str) -> dict[str, Any]:
    """Shares and areas from the per-tile counts at full resolution."""
    valid_px = int(out.class_px.sum())
    per_pixel = shown.pixel_area_m2()
    full_px_m2 = None if per_pixel is None else float(np.mean(per_pixel)) / cell_px
    m2 = out.class_m2 if out.class_m2 is not None else (None if full_px_m2 is None else out.class_px * full_px_m2)
    data: dict[str, Any] = {
        "analysed_area_m2": None if m2 is None else float(m2.sum()),
        "pixel_size_m": None if full_px_m2 is None else float(np.sqrt(full_px_m2)),
    }
    names = list(lcr.CLASSES) + (["vegetation"] if target == "vegetation" else [])
    for name in names:
        ids = [lcr.CLASSES.index(c) for c in (("trees", "low_vegetation") if name == "vegetation" else (name,))]
        px = int(out.class_px[ids].sum())
        area = None if m2 is None else float(m2[ids].sum())
        data[f"{name}_percent"] = 100.0 * px / valid_px if valid_px else 0.0
        data[f"{name}_area_m2"] = area
        data[f"{name}_area_ha"] = None if area is None else area / 1e4
    return data


def run_tiled(args: SegmentArgs, ctx: ToolContext, image: Raster) -> ToolResult:
    """Land cover of a large scene, tile by tile from its file; regions and follow-ups on
    the overview shown."""
    src = file_source(image, ctx, args.image)
    window, area, scope = tiled_scope(args.box, args.region, ctx, image, src)
    scope = f"{scope} '{image.name}'" if scope == "the whole image" else scope
    out = lct.classify_to_file(
        src, image.band_names, ctx.path("landcover_classes.tif"), (image.height, image.width),
        tile_progress(ctx, "land cover"), within=window, area=area, map_tiles=ctx.map_tiles,
        tile_px=tile_side(ctx, lct.TILE_PX),
    )  # fmt: skip
    if not out.class_px.any():
        raise InputError(f"{scope[0].upper()}{scope[1:]} has no valid pixels (all no-data): nothing to classify.")
    target, cell_px = args.target, src.pixels / (image.height * image.width)
    data = _tiled_figures(out, image, cell_px, target)
    lc = lcr.LandCover(
        classes=out.shown, superpixels=np.zeros(out.shown.shape, dtype=np.int32), used_indices=out.used_indices
    )
    focus_mask = target_mask(lc, target) if target != "all" else None
    labels, regions = regions_of(focus_mask, image) if focus_mask is not None else (lc.classes + 1, [])
    regions = [replace(r, pixels=round(r.pixels * cell_px)) for r in regions]
    if focus_mask is not None:
        data[f"{target}_region_count"] = len(regions)
        data[f"{target}_largest_area_m2"] = regions[0].area_m2 if regions else None
        data |= _selected_regions(labels, regions, args, data.get("pixel_size_m"))  # the file's pixels
    shown = shown_raster(image, ctx.settings.overview_side if ctx.settings else 2048)
    step = image.width // shown.width
    colors = lcr.colorize(lcr.LandCover(lc.classes[::step, ::step], lc.superpixels, [])).astype(np.float32)
    picked = (lc.classes >= 0) if focus_mask is None else focus_mask
    overlay = _blend(rgb_preview(shown), colors, picked[::step, ::step])
    geojson = _class_polygons(lc, image) if focus_mask is None else regions_geojson(labels, regions, image, target)
    artifacts = [
        Artifact("overlay", write_png(ctx.path(f"landcover_{target}_overlay.png"), overlay),
                 f"land cover ({target}) overlay, from an overview"),
        Artifact("geotiff", out.path, "class map (Cloud-Optimised GeoTIFF, full resolution: 0 no data, "
                 + ", ".join(f"{i + 1} {c}" for i, c in enumerate(lcr.CLASSES)) + ")"),
        Artifact("geojson", write_geojson(ctx.path(f"landcover_{target}.geojson"), geojson),
                 f"{target} polygons (GeoJSON, traced on the overview)"),
    ]  # fmt: skip
    notes = [*image.notes, f"Classified tile by tile at full resolution ({out.tiles} tiles)."]
    return ToolResult(
        summary=_summary(data, scope),
        figures=SegmentFigures(**data),
        artifacts=artifacts,
        method=lcr.METHOD_NAME
        + (f", indices: {', '.join(lc.used_indices)}" if lc.used_indices else ", RGB only")
        + out.note,
        limits=_limits(lc),
        notes=notes,
        kept=Kept(mask=focus_mask, labels=labels, regions=regions, landcover=lc, target=target, scope=scope),
    )


def _class_polygons(lc: lcr.LandCover, raster: Raster) -> dict:
    features: list[dict] = []
    for name in lcr.CLASSES:
        m = lc.mask(name)
        if not m.any():
            continue
        labels, regions = regions_of(m, raster)
        features += regions_geojson(labels, regions, raster, name)["features"]
    collection = {"type": "FeatureCollection", "features": features}
    if not raster.georeferenced:
        collection["coordinates"] = PIXEL_COORDINATES
    return collection


PRESENT_PERCENT = 0.5  # below this share a class is noise of the rules, not a presence
# Pixel size above which rural or urban is not judged from land cover: beyond the land-use
# model's range a town is a few mixed pixels, and the colour rules' built-up land is grey
# rock and bare ground as much as towns (Rocky Mountain NP at 146 m: 15.9%, read "urban").
URBAN_MAX_GSD_M = landuse.LANDUSE_GSD_M[1]


def _in_areas(regions: object) -> str:
    return "in 1 area" if regions == 1 else f"in {regions} separate areas"


def _presence(result: ToolResult, target: str, source: str) -> str:
    """'Is there water?': yes or no first, then the evidence (share, area, regions)."""
    d = result.data
    pct, m2 = d.get(f"{target}_percent") or 0.0, d.get(f"{target}_area_m2")
    name = target.replace("_", " ")
    subject = f"{name} {covers(name)}"
    size = f" ({area_text(m2)})" if m2 is not None else ""
    where = f" of {result.kept.scope}" if result.kept.scope else ""
    if pct >= PRESENT_PERCENT:
        regions = d.get(f"{target}_region_count")
        return f"**Yes**: {subject} {pct:.1f}%{where}{size}, {_in_areas(regions)} ({source})."
    return f"**No**: {subject} {pct:.1f}%{where}, under the {PRESENT_PERCENT}% the rules can vouch for ({source})."


def _selected_text(result: ToolResult, target: str, source: str, focus: str | None) -> str:
    """'Yes: 2 of the 5 water areas are large (>= 500 m2), 3,400 m2 together' to 'is there a
    large water area?'; without the yes to 'how many large water areas?'."""
    d = result.data
    n, of, which = d["selected_count"], d.get(f"{target}_region_count") or 0, d.get("selection")
    m2 = d.get("selected_area_m2")
    together = f", {area_text(m2)} together" if n and m2 is not None else ""
    verb = "is" if n == 1 else "are"
    text = f"{n} of the {of} {target.replace('_', ' ')} areas {verb} {which}{together} ({source})."
    if focus == "count":
        return f"**{n}** of the {text.split(' of the ', 1)[1]}"
    return f"**{'Yes' if n else 'No'}**: {text}"


def answer(result: ToolResult, reading: Reading) -> str:
    d, target, lc, source = result.data, result.kept.target or "all", result.kept.landcover, reading.source
    if reading.focus == "point" and reading.point is not None and lc is not None:
        x, y = int(reading.point[0]), int(reading.point[1])
        if not (0 <= y < lc.classes.shape[0] and 0 <= x < lc.classes.shape[1]):
            return f"The point ({x}, {y}) is outside the image ({source})."
        k = int(lc.classes[y, x])
        name = lcr.CLASSES[k] if k >= 0 else "no data"
        verdict = ""
        if target not in ("all", "vegetation"):
            verdict = "Yes: " if name == target else "No: "
        elif target == "vegetation":
            verdict = "Yes: " if name in ("trees", "low_vegetation") else "No: "
        return f"{verdict}the point ({x}, {y}) is {name.replace('_', ' ')} ({source})."
    if d.get("selected_count") is not None and target != "all":
        return _selected_text(result, target, source, reading.focus)
    if reading.focus == "presence" and target != "all":
        return _presence(result, target, source)
    if reading.focus in ("largest", "smallest") and target != "all":
        return largest_region_text(result, target.replace("_", " "), source, smallest=reading.focus == "smallest")
    if reading.focus == "rural_urban" and float(d.get("pixel_size_m") or 0.0) > URBAN_MAX_GSD_M:
        return (
            f"I cannot tell rural from urban at {d['pixel_size_m']:,.0f} m pixels: a town is a few pixels there, and "
            f"grey rock and bare ground take the colour of built-up land (land coloured as built-up covers "
            f"{d.get('built_up_percent') or 0.0:.1f}% of {result.kept.scope or 'the image'}). At "
            f"{landuse.LANDUSE_GSD_M[0]:g}-{URBAN_MAX_GSD_M:g} m pixels "
            f"(Sentinel-2, Landsat) the land-use model reads towns ({source})."
        )
    if reading.focus == "rural_urban" and d.get("buildings_percent") is not None:
        return (
            f"**Buildings** (the learned building model) cover {d['buildings_percent']:.1f}% of {result.kept.scope}, "
            f"and built-up land (buildings, paving and what the colour rules take for it: grey sand, rock) "
            f"{d.get('built_up_percent') or 0.0:.1f}% ({source})."
        )
    if target != "all":
        pct, ha, m2 = d.get(f"{target}_percent") or 0.0, d.get(f"{target}_area_ha"), d.get(f"{target}_area_m2")
        where = f" in {result.kept.scope}" if result.kept.scope else ""
        size = f", {ha:,.2f} ha ({m2:,.0f} m2)" if ha is not None and m2 is not None else ""
        regions = d.get(f"{target}_region_count")
        name = target.replace("_", " ").capitalize()
        return f"**{name}** {covers(name)} {pct:.1f}%{size}{where}, {_in_areas(regions)} ({source})."
    return f"**Land cover** ({source}): {result.summary}."


HELP = (
    "- **land cover** (*how much of this is water?*, *is there water?*, *segment the vegetation*): water, "
    "trees, low vegetation, bare soil, built-up, shadow, cloud, with areas and shares; NDVI/NDWI/NDBI when "
    "the bands are named (*the bands are SWIR1, NIR, red, green*)"
)


TOOL = Tool(
    name="segment",
    description=(
        "Land-cover segmentation of one image into water, trees, low vegetation, bare soil, built-up, "
        "shadow and cloud, with area (m2, ha) and share (%) per class, polygons and an overlay. "
        "Optionally restricted to a box; 'target' picks one class to outline."
    ),
    args=SegmentArgs,
    figures=SegmentFigures,
    function=run,
    answer=answer,
    phrases=PHRASES,
    layer=Layer("land cover", "#1f78b4", class_colors=CLASS_COLORS),
    help=HELP,
    needs=("image",),
)
