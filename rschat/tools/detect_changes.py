"""Tool ``detect_changes``: where two images of the same place differ, and by how much. The
change mask itself (rules, learned models, their limits) is made in ``change_mask``."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any, Literal

import numpy as np
from pydantic import Field

from rschat.backends import change_tiled
from rschat.backends.cover_change import CoverChange
from rschat.geo.area import area_text
from rschat.geo.errors import InputError
from rschat.geo.io import write_geotiff, write_png
from rschat.geo.pair import align_pair
from rschat.geo.places import place
from rschat.geo.preview import overlay_mask, rgb_preview
from rschat.geo.raster import Raster
from rschat.geo.shapes import describe_bounds
from rschat.geo.vector import Region, regions_geojson, regions_of, write_geojson
from rschat.geo.windowed import PairSource, read_overview
from rschat.tools.base import (
    Args,
    Artifact,
    Box,
    Kept,
    Layer,
    Phrase,
    Reading,
    Tool,
    ToolContext,
    ToolResult,
    UseRegion,
    box_scope,
    clipped_box,
    crop_to_box,
    largest_region_text,
    region_mask_of,
)
from rschat.tools.change_figures import (
    UNJUDGED,
    ChangeFigures,
    buildings_text,
    change_figures,
    cover_count_text,
    cover_layers,
    cover_parts,
    figures_of,
    summary,
    with_buildings,
    with_cover,
)
from rschat.tools.change_mask import LIMITS, UNCONFIRMED_LIMIT, BuildingChange, detect, sized, tiled_bands
from rschat.tools.tiled import file_source, shown_raster, tile_progress, tile_side, tiled_scope


class ChangeArgs(Args):
    before: str = Field("before", description="name of the earlier image")
    after: str = Field("after", description="name of the later image")
    box: Box = None
    region: UseRegion = False
    target: Literal["any", "building", "water", "trees", "low_vegetation", "vegetation", "bare_soil", "built_up"] = (
        Field(
            "any",
            description="'any': every change; 'building': only buildings that appeared or went (the learned "
            "building model on both dates; pixels of 0.05-1.5 m); a land-cover class: where it was lost and "
            "gained (the land-cover rules on each date)",
        )
    )
    min_area_m2: float | None = Field(None, ge=0, description="buildings only: those larger than this (m2)")
    max_area_m2: float | None = Field(None, gt=0, description="buildings only: those smaller than this (m2)")


PHRASES = (
    Phrase(
        "change",
        re.compile(
            r"chang|differ|\bcompar|appear|disappear|\bnew (building|construction|road|house)|"
            r"\b(?:buildings?|houses?|roads?) (?:that )?(?:is|are|were|was) (?:new|gone|removed)\b|"
            r"\b(?:is|are|were|was) (?:the |these |those |any )?(?:buildings?|houses?|roads?) (?:new|gone|removed)\b|"
            r"torn down|knocked down|\bvanish|"
            r"\bbuilt\b(?![\s-]*up)|demolish|construct|before and after|\bgrew|\bgrown|\blost\b|\bgained\b|\bloss\b|"
            r"shr[iu]nk|expand|deforest|\bdid\b[\w\s]*\bgrow\b|\bcleared\b|\bcut down\b|\bfelled\b|\blogged\b|"
            r"\bbec[oa]me\b|\bturn(?:ed)? into\b|\breplaced\b|\bconverted (?:to|into)\b|"
            r"\bdid the new [\w ]{1,30}? come from\b|\bwhere did the [\w ]{1,30}? gained come from\b",
            re.I,
        ),
        40,
    ),
)


NOT_JUDGED = change_tiled.NOT_JUDGED  # the plain change mask's no-data value
GAINED_RGB = (40, 120, 255)  # a class's gain on the overlay (its loss is the usual change red)


def _artifacts(
    ctx: ToolContext,
    before: Raster,
    after: Raster,
    mask: np.ndarray,
    regions: dict,
    coded: tuple[np.ndarray, str] | None = None,
    judged: np.ndarray | None = None,
) -> list[Artifact]:
    """The change result's files, named by the result id so a later change result never
    overwrites them; ``coded``: the GeoTIFF's values and their description, when they say
    more than changed / not."""
    # Pictures for the browser, at most RSCHAT_OVERVIEW_SIDE on a side: a 64 MP pair would
    # otherwise write (and send) three 100+ MB PNGs. The GeoTIFF keeps full resolution.
    side = ctx.settings.overview_side if ctx.settings else 2048
    small_before, small_after = shown_raster(before, side), shown_raster(after, side)
    step = -(-max(after.width, after.height) // side)
    if coded is None:
        overlay = overlay_mask(rgb_preview(small_after), mask[::step, ::step])
    else:  # a class's loss in red, its gain in blue
        small = coded[0][::step, ::step]
        overlay = overlay_mask(overlay_mask(rgb_preview(small_after), small == 1), small == 2, GAINED_RGB)
    where = "EPSG:4326" if before.georeferenced else "pixel coordinates"
    # Pixels not analysed (either image leaves them uncovered, or outside a drawn region)
    # were not judged: no data, not "unchanged", in GIS.
    if judged is None or judged.shape != mask.shape:
        judged = before.valid_mask() & after.valid_mask()
    values, nodata, label = (
        (np.where(judged, mask, NOT_JUDGED).astype(np.uint8), NOT_JUDGED,
         f"change mask (GeoTIFF, 1 = changed, {NOT_JUDGED} = not analysed: outside either image or the region)")
        if coded is None
        else (coded[0], UNJUDGED, coded[1])
    )  # fmt: skip
    # The three pictures and the GeoTIFF are written in threads: their compressors release
    # the GIL, and on two cores this takes 0.15-0.2 s off a 1024 px pair (the 1.5 s target).
    with ThreadPoolExecutor(max_workers=4) as pool:
        files = [
            pool.submit(write_png, ctx.path("change_overlay.png"), overlay),
            pool.submit(write_png, ctx.path("change_before.png"), rgb_preview(small_before)),
            pool.submit(write_png, ctx.path("change_after.png"), rgb_preview(small_after)),
            pool.submit(write_geotiff, ctx.path("change_mask.tif"), values, before, nodata=nodata),
        ]
        shown_overlay, shown_before, shown_after, tif = (f.result() for f in files)
    return [
        Artifact(
            "overlay",
            shown_overlay,
            "change overlay (red) on the after image"
            if coded is None
            else "lost (red) and gained (blue) on the after image",
        ),
        Artifact("before_preview", shown_before, "before"),
        Artifact("after_preview", shown_after, "after"),
        Artifact("geotiff", tif, label),
        Artifact(
            "geojson", write_geojson(ctx.path("change_regions.geojson"), regions), f"change regions (GeoJSON, {where})"
        ),  # fmt: skip
    ]


def run(args: ChangeArgs, ctx: ToolContext) -> ToolResult:
    before, after = ctx.raster(args.before), ctx.raster(args.after)
    if before.source is not None or after.source is not None:
        return run_tiled(args, ctx, before, after)
    return run_in_memory(args, ctx)


def _within_bounds(
    args: ChangeArgs, before: Raster, split: Any, mask: np.ndarray, notes: list[str]
) -> tuple[Any, np.ndarray]:
    """Building change kept to the asked areas ('new buildings larger than 100 m2'), said
    in the notes."""
    if args.min_area_m2 is None and args.max_area_m2 is None:
        return split, mask
    if not isinstance(split, BuildingChange):
        raise InputError("Area bounds apply to buildings that appeared or went: ask about new or demolished buildings.")
    split = sized(split, before, args.min_area_m2, args.max_area_m2)
    notes.append(f"only buildings {describe_bounds(args.min_area_m2, args.max_area_m2)} are counted")
    return split, split.mask


SEASON_DAYS = 30  # dates further apart in the year than this are in another stage of the growing season


def _cover_outputs(
    parts: Any, mask: np.ndarray, before: Raster, scope: str, figures: ChangeFigures
) -> tuple[tuple[np.ndarray, str], dict, str]:
    """A class's loss and gain: the coded mask and its description, the GeoJSON, and the
    summary with where the largest patches lie."""
    values, what, geojson, where = cover_layers(parts, mask, before)
    said = summary(scope, figures, [], cover=parts.change.target) + (f"; {where}" if where else "")
    return (values, what), geojson, said


def dates_of(args: ChangeArgs, ctx: ToolContext) -> str:
    """' (1985 to 2020)' when both images are dated: which dates a series' pair compares
    (an answer from the map's compare menus said 'the before date' only)."""
    before, after = ctx.raster(args.before), ctx.raster(args.after)
    return f" ({before.date_label} to {after.date_label})" if before.date and after.date else ""


def date_limits(args: ChangeArgs, ctx: ToolContext) -> list[str]:
    """What the images' dates (of the uploads, not the aligned pair) say about the result."""
    before, after = ctx.raster(args.before), ctx.raster(args.after)
    return season_limit(args.target, before, after) + order_limit(args.target, before, after)


def order_limit(target: str | None, before: Raster, after: Raster) -> list[str]:
    """A caveat when neither image is dated: which is 'before' is the upload order, and the
    rules weigh new structure above lost (a LEVIR pair read 65.9% changed one way, 46.1% the
    other)."""
    if target not in (None, "any") or (before.date is not None and after.date is not None):
        return []
    undated = "neither image is dated" if before.date is None and after.date is None else "one image has no date"
    return [
        f"{undated}, so '{before.name}' was taken as the earlier one (the order they came in); the rules "
        "weigh new structure (roofs, roads) above lost, so the figures depend on the order: put the images in the "
        "before and after slots, or give them dates in their file names (e.g. 'site_2015.tif')"
    ]


def season_limit(target: str | None, before: Raster, after: Raster) -> list[str]:
    """A caveat when vegetation is compared between dates of different seasons (NAIP of 18
    August against 26 September: low vegetation '100% lost' was the harvest)."""
    if target not in ("trees", "low_vegetation", "vegetation") or before.date is None or after.date is None:
        return []
    if len(before.date_label) < 10 or len(after.date_label) < 10:
        return []  # a year only: the season is unknown
    apart = abs(before.date.timetuple().tm_yday - after.date.timetuple().tm_yday)
    apart = min(apart, 365 - apart)
    if apart <= SEASON_DAYS:
        return []
    return [
        f"the dates are {apart} days apart in the year ({before.date_label}, {after.date_label}): crops, grass and "
        "leaves change with the season, so part of the vegetation lost or gained may be harvest, mowing or leaf "
        "fall rather than a change of land cover"
    ]


def run_in_memory(args: ChangeArgs, ctx: ToolContext) -> ToolResult:
    # 1. Inputs: the pair on one grid (reprojected or refused, see geo.pair).
    before, after = align_pair(ctx.raster(args.before), ctx.raster(args.after))
    scope = "the whole image"
    if args.box:
        scope = box_scope(clipped_box(args.box, before))
        before, after = crop_to_box(before, args.box), crop_to_box(after, args.box)
    ctx.progress(0.1, "pair aligned")

    # 2. Detect.
    valid = before.valid_mask() & after.valid_mask()
    if not valid.any():
        raise InputError(f"No pixel of {scope} has valid data in both images (all no-data): no change can be measured.")
    mask, method, notes, split, limits = detect(args.target, before, after, valid)
    limits += date_limits(args, ctx)
    split, mask = _within_bounds(args, before, split, mask, notes)
    ctx.progress(0.6, "change mask computed")

    # 3. Restrict to the drawn region (the whole pair is analysed first, so the result is
    #    exactly the full change mask clipped to the region), then measure.
    inside = region_mask_of(args.region, ctx, before)
    if inside is not None:
        valid, mask = valid & inside, mask & inside
        scope = "the region drawn on the map" + ("" if scope == "the whole image" else f" and {scope}")
    labels, regions = regions_of(mask, before)
    figures = figures_of(before, valid, mask, regions)
    parts = cover_parts(split, mask, before) if isinstance(split, CoverChange) else None
    if parts is not None:
        figures = with_cover(figures, before, parts, valid)
    elif isinstance(split, BuildingChange):
        figures = with_buildings(figures, before, split, mask)

    # 4. Artifacts: overlay, previews, GeoTIFF mask, GeoJSON regions (a class's loss and
    #    gain apart, with where they lie).
    coded, said = None, summary(scope + dates_of(args, ctx), figures, regions)
    if parts is not None:
        coded, geojson, said = _cover_outputs(parts, mask, before, scope + dates_of(args, ctx), figures)
    else:
        geojson = regions_geojson(labels, regions, before, "change")
    artifacts = _artifacts(ctx, before, after, mask, geojson, coded, judged=valid)
    ctx.progress(1.0, "artifacts written")

    return ToolResult(
        summary=said,
        figures=figures,
        artifacts=artifacts,
        method=method,
        limits=limits,
        notes=notes,
        kept=Kept(
            mask=mask,
            labels=labels,
            regions=regions,
            scope=scope,
            target=split.target if isinstance(split, CoverChange) else "change",
            grid=(before.crs, before.transform) if before.georeferenced else None,
        ),  # fmt: skip
    )


def _transition_answer(f: ChangeFigures, cover: str, became: bool, source: str) -> str:
    """'What did the water become?': the classes on the after date where the class was lost
    (or, 'where did the new water come from?', on the before date where it was gained)."""
    text, m2 = (f.lost_became, f.lost_m2) if became else (f.gained_was, f.gained_m2)
    what = "lost" if became else "gained"
    if not text:
        return f"**None**: no {cover} was {what} between the dates ({source})."
    head = " ".join(text.split(" ")[:2]) if text.startswith(("low ", "bare ", "built ")) else text.split(" ")[0]
    size = "" if not m2 else f" ({m2 / 1e4:,.2f} ha in all)" if m2 >= 1e4 else f" ({m2:,.0f} m2 in all)"
    where = "became" if became else "was, on the before date,"
    return (
        f"**Mostly {head}**: the {cover} {what}{size} {where} {text} (each date classified on its own by the land-cover "
        f"rules; {source})."
    )


def answer(result: ToolResult, reading: Reading) -> str:
    f = result.figures
    assert isinstance(f, ChangeFigures)
    source = reading.source
    cover = None if f.cover_before_percent is None else (result.kept.target or "the class").replace("_", " ")
    if reading.focus in ("largest", "smallest"):
        what = f"{cover} lost-or-gained" if cover else "change"
        return largest_region_text(result, what, source, smallest=reading.focus == "smallest")
    if cover is not None and reading.focus in ("cover_lost_count", "cover_gained_count"):
        return f"{cover_count_text(f, cover, lost=reading.focus == 'cover_lost_count').capitalize()} ({source})."
    if cover is not None and reading.focus in ("cover_became", "cover_came_from"):
        return _transition_answer(f, cover, became=reading.focus == "cover_became", source=source)
    if cover is not None and reading.focus != "count":
        text = f"**{cover.capitalize()} lost and gained** ({source}): {result.summary}."
        if f.lost_became:
            text += f" The {cover} lost became {f.lost_became}."
        side = {"cover_share_lost": ("lost", f.lost_pixels), "cover_share_gained": ("gained", f.gained_pixels)}
        if reading.focus in side and f.cover_before_pixels:
            what, px = side[reading.focus]
            share = 100 * (px or 0) / f.cover_before_pixels
            text = f"{share:.1f}% of the {cover} on the before date: the share {what}.\n\n{text}"
        return text
    if reading.focus in ("count", "count_gone") and f.appeared_count is not None:
        return f"{buildings_text(f, gone_first=reading.focus == 'count_gone')} ({source})."
    if reading.focus in ("count", "count_gone"):
        return f"There are {f.region_count} separate change regions ({source})."
    if reading.focus == "fraction":
        return f"{f.changed_percent:.1f}% of the analysed area changed ({f.changed_pixels:,} pixels) ({source})."
    if reading.focus == "area" and f.appeared_count is not None:
        return (
            f"Buildings that appeared or went cover {area_text(f.changed_area_m2)}, {f.changed_percent:.1f}% of the "
            f"analysed area: {buildings_text(f)} ({source})."
        )
    if reading.focus == "area":
        return (
            f"The changed area is {area_text(f.changed_area_m2)}, {f.changed_percent:.1f}% of the analysed "
            f"area, in {f.region_count} regions ({source})."
        )
    lines = [f"**What changed** ({source}): {result.summary}."]
    if f.pixel_size_m:
        lines.append(f"Pixel size {f.pixel_size_m:.2f} m; analysed area {area_text(f.analysed_area_m2)}.")
    regions, mask = result.kept.regions, result.kept.mask
    if regions and mask is not None:
        x0, y0, x1, y1 = regions[0].bbox
        # The mask is the box's when one was asked ('what changed in the north half?'): places are its own.
        boxed = "box" in (result.kept.scope or "")  # a region is clipped on the whole image's mask
        of = (result.kept.scope or "the part analysed") if boxed else "the image"
        if (x1 - x0) >= 0.8 * mask.shape[1] and (y1 - y0) >= 0.8 * mask.shape[0]:
            lines.append(f"The largest change reaches across most of {of}.")  # its centre would mislead
        else:
            where = place(regions[0].centroid[0], regions[0].centroid[1], mask.shape[1], mask.shape[0])
            lines.append(f"The largest change is in {where} of {of}.")
    return "\n\n".join(lines)


HELP = (
    "- **change detection** between two images of the same place (*what changed?*, *what changed inside "
    "the box?*): changed share (%), area (m2, ha), regions, overlay, GeoTIFF and GeoJSON; *which buildings are "
    "new?*, *how many buildings were demolished?*: only buildings that appeared or went, counted, with their areas; "
    "*how much forest was lost?*, *did the lake shrink?*: a land-cover class on each date, its loss and gain (ha)"
)


TOOL = Tool(
    name="detect_changes",
    description=(
        "Find what changed between two co-registered images of the same place (before, after). "
        "Returns the change mask, the changed fraction and area (m2, ha), the connected change "
        "regions, an overlay, a GeoTIFF mask and GeoJSON polygons."
    ),
    args=ChangeArgs,
    figures=ChangeFigures,
    function=run,
    answer=answer,
    phrases=PHRASES,
    layer=Layer("changes", "#e31a1c"),
    reads_colours=lambda args: args.get("target", "any") != "any",  # any change: band-agnostic differences
    help=HELP,
    needs=("before", "after"),
)


# -- scenes too large to hold whole: tile by tile from the files ---------------------------


def _tiled_previews(ctx: ToolContext, pair: PairSource, rasters: tuple[Raster, Raster], mask_path) -> list[Artifact]:  # type: ignore[no-untyped-def]
    """Overlay and previews from the overviews in memory (never the full-resolution
    pixels); the mask is read from its own overviews at the same size."""
    side = ctx.settings.overview_side if ctx.settings else 2048
    before, after = (shown_raster(r, side) for r in rasters)
    base = before if pair.warped or (after.height, after.width) != (before.height, before.width) else after
    small_mask = read_overview(mask_path, max(base.height, base.width))[0] == 1
    if small_mask.shape != (base.height, base.width):  # rounding of the decimated sizes
        rows = np.linspace(0, small_mask.shape[0] - 1, base.height).round().astype(int)
        cols = np.linspace(0, small_mask.shape[1] - 1, base.width).round().astype(int)
        small_mask = small_mask[np.ix_(rows, cols)]
    return [
        Artifact("overlay", write_png(ctx.path("change_overlay.png"), overlay_mask(rgb_preview(base), small_mask)),
                 "change overlay (red), from an overview"),
        Artifact("before_preview", write_png(ctx.path("change_before.png"), rgb_preview(before)), "before"),
        Artifact("after_preview", write_png(ctx.path("change_after.png"), rgb_preview(after)), "after"),
    ]  # fmt: skip


def run_tiled(args: ChangeArgs, ctx: ToolContext, before: Raster, after: Raster) -> ToolResult:
    """detect_changes for a scene read tile by tile: memory set by the tile size. Tiles
    run on two threads, or wherever ``ctx.map_tiles`` sends them (rschat batch: Dask)."""
    if args.target != "any":
        raise InputError(
            f"{'Building' if args.target == 'building' else 'Land-cover'} change is not measured yet on scenes read "
            "tile by tile (this pair is too large to hold in "
            "memory): ask what changed (any change, the rules tile by tile), or crop both images to the area first."
        )
    src_b, src_a = file_source(before, ctx, "before"), file_source(after, ctx, "after")
    window, area, scope = tiled_scope(args.box, args.region, ctx, before, src_b)
    pair = PairSource(src_b, src_a, area=area, within=window)
    progress = tile_progress(ctx, "change detection")

    shown = (before.height, before.width)  # the image the user sees: an overview of a large scene
    out = change_tiled.detect_to_file(
        pair, ctx.path("change_mask.tif"), shown_shape=shown, progress=progress, map_tiles=ctx.map_tiles,
        tile_px=tile_side(ctx, 0) or None, **tiled_bands(before, after),
    )  # fmt: skip
    if out is None:
        raise InputError(f"No pixel of {scope} has valid data in both images (all no-data): no change can be measured.")
    # Regions are traced on the shown grid, so follow-ups ("the largest one", a count inside
    # the changes) line up with the image the user sees; pixel counts are the file's.
    labels, regions = regions_of(out.shown_mask, before)
    cell_px = src_b.pixels / (before.height * before.width)
    regions = [replace(r, pixels=round(r.pixels * cell_px)) for r in regions]
    figures = _tiled_figures(out, regions, before, cell_px)
    where = "EPSG:4326" if src_b.georeferenced else "pixel coordinates"
    artifacts = [
        *_tiled_previews(ctx, pair, (before, after), out.mask_path),
        Artifact("geotiff", out.mask_path,
                 f"change mask (Cloud-Optimised GeoTIFF, full resolution, 1 = changed, {NOT_JUDGED} = not analysed: "
                 "outside either image or the area asked about)"),
        Artifact("geojson", write_geojson(ctx.path("change_regions.geojson"), regions_geojson(labels, regions, before, "change")),
                 f"change regions (GeoJSON, {where})"),
    ]  # fmt: skip
    ctx.progress(1.0, "artifacts written")
    notes = [*before.notes, *after.notes]
    notes.append(f"Processed tile by tile at full resolution ({out.tiles} tiles).")
    if cell_px > 1:
        notes.append(f"Change regions are traced on the {before.width}x{before.height} overview shown.")
    return ToolResult(
        summary=summary(scope + dates_of(args, ctx), figures, regions, approximate=cell_px > 1),
        figures=figures,
        artifacts=artifacts,
        method=change_tiled.METHOD_NAME,
        limits=[*LIMITS, UNCONFIRMED_LIMIT, *order_limit(args.target, before, after)],
        notes=notes,
        kept=Kept(mask=out.shown_mask, labels=labels, regions=regions, scope=scope, target="change",
                  grid=(before.crs, before.transform) if before.georeferenced else None),
    )  # fmt: skip


def _tiled_figures(
    out: change_tiled.TiledChange, regions: list[Region], shown: Raster, cell_px: float
) -> ChangeFigures:
    valid_px, changed_px = out.valid_px, out.changed_px
    per_pixel = shown.pixel_area_m2()
    full_px_m2 = None if per_pixel is None else float(np.mean(per_pixel)) / cell_px
    changed_m2, valid_m2 = out.changed_m2, out.valid_m2
    if changed_m2 is None and full_px_m2 is not None:  # stated pixel size, no georeference
        changed_m2, valid_m2 = changed_px * full_px_m2, valid_px * full_px_m2
    pixel = None if full_px_m2 is None else float(np.sqrt(full_px_m2))
    return change_figures(valid_px, changed_px, changed_m2, valid_m2, regions, pixel)
