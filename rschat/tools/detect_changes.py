"""Tool ``detect_changes``: where two images of the same place differ, and by how much."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from pydantic import Field
from scipy import ndimage

from rschat.backends import change_classical, change_tiled, learned, lite_models
from rschat.geo.area import area_text
from rschat.geo.bands import band_index, spectral_index
from rschat.geo.errors import InputError
from rschat.geo.io import write_geotiff, write_png
from rschat.geo.pair import align_pair
from rschat.geo.places import place
from rschat.geo.preview import overlay_mask, rgb_band_indices, rgb_preview
from rschat.geo.raster import Raster
from rschat.geo.vector import Region, regions_geojson, regions_of, write_geojson
from rschat.geo.windowed import PairSource, read_overview
from rschat.tools.base import (
    Args,
    Artifact,
    Box,
    Figures,
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
    to_float_rgb,
)
from rschat.tools.tiled import file_source, shown_raster, tile_progress, tile_side, tiled_scope


class ChangeArgs(Args):
    before: str = Field("before", description="name of the earlier image")
    after: str = Field("after", description="name of the later image")
    box: Box = None
    region: UseRegion = False
    target: Literal["any", "building"] = Field(
        "any",
        description="'any': every change; 'building': only buildings that appeared or went (the learned building "
        "model on both dates; pixels of 0.05-1.5 m)",
    )


class ChangeFigures(Figures):
    changed_fraction: float
    changed_percent: float
    changed_pixels: int
    changed_area_m2: float | None
    changed_area_ha: float | None
    analysed_area_m2: float | None
    region_count: int
    largest_region_pixels: int
    largest_region_area_m2: float | None
    pixel_size_m: float | None
    # target 'building' only: the changed pixels split into buildings that appeared and went.
    appeared_count: int | None = None  # connected parts: touching buildings count as one
    gone_count: int | None = None
    appeared_pixels: int | None = None
    gone_pixels: int | None = None
    appeared_area_m2: float | None = None
    gone_area_m2: float | None = None


LIMITS = [
    "lite mode: the rules respond to new structures (roofs, roads) and to colour change, "
    "whatever their cause. Vegetation of the same kind on both dates (growth, mowing, the season: "
    "canopy stays canopy, grass or crop stays herbaceous) and shadows narrower than the object "
    "scale are left out, so one crop replacing another is not reported; without a near-infrared "
    "band, green-tinted water can pass for vegetation. Small changes (under ~64 pixels) are dropped",
]
SHARE = round(100 * learned.CONFIRMED_SHARE)
CONFIRMED_LIMIT = (
    f"a region of the rules stands only where the learned change model calls at least {SHARE}% of it changed "
    "(or keeps its own parts of it): the model learned from synthetic change (buildings and land pasted into "
    "real NAIP pairs), so a real change unlike those can be dropped, and changes under about 10 m2 are rarely "
    "confirmed. On held-out NAIP pairs two years apart (California, 0.6 m) about 6% of a nearly unchanged pair "
    "still comes out as changed; other sensors are unmeasured"
)
UNCONFIRMED_LIMIT = (
    "the rules' regions were not checked by the learned change model (it judges colour pairs of 0.1-1.0 m, "
    "read whole, not tile by tile): about a fifth of a nearly unchanged pair can come out as changed"
)

BUILDING_LIMITS = [
    "the learned building model on each date: a building counts as appeared (or gone) when under 30% of its "
    "footprint was seen as building on the other date, so an extension joined to a standing building is "
    "reported only when it is most of the joined footprint; "
    "touching buildings count as one, and a change of use or height is not seen",
]
PHRASES = (
    Phrase(
        "change",
        re.compile(
            r"chang|differ|\bcompar|appear|disappear|\bnew (building|construction|road|house)|"
            r"\b(?:buildings?|houses?|roads?) (?:that )?(?:is|are|were|was) (?:new|gone|removed)\b|"
            r"\b(?:is|are|were|was) (?:the |these |those |any )?(?:buildings?|houses?|roads?) (?:new|gone|removed)\b|"
            r"torn down|knocked down|\bvanish|"
            r"\bbuilt\b|demolish|construct|before and after|\bgrew|\bgrown|\blost\b|\bgained\b",
            re.I,
        ),
        40,
    ),
)


def _fmt_area(m2: float | None) -> str:
    if m2 is None:
        return "area unknown (no georeference)"
    return f"{m2:,.0f} m2 ({m2 / 1e4:,.2f} ha)"


def _artifacts(ctx: ToolContext, before: Raster, after: Raster, mask: np.ndarray, regions: dict) -> list[Artifact]:
    """The change result's files, named by the result id so a later change result never
    overwrites them."""
    # Pictures for the browser, at most RSCHAT_OVERVIEW_SIDE on a side: a 64 MP pair would
    # otherwise write (and send) three 100+ MB PNGs. The GeoTIFF keeps full resolution.
    side = ctx.settings.overview_side if ctx.settings else 2048
    small_before, small_after = shown_raster(before, side), shown_raster(after, side)
    step = -(-max(after.width, after.height) // side)
    overlay = overlay_mask(rgb_preview(small_after), mask[::step, ::step])
    where = "EPSG:4326" if before.georeferenced else "pixel coordinates"
    return [
        Artifact(
            "overlay", write_png(ctx.path("change_overlay.png"), overlay), "change overlay (red) on the after image"
        ),
        Artifact("before_preview", write_png(ctx.path("change_before.png"), rgb_preview(small_before)), "before"),
        Artifact("after_preview", write_png(ctx.path("change_after.png"), rgb_preview(small_after)), "after"),
        Artifact(
            "geotiff",
            write_geotiff(ctx.path("change_mask.tif"), mask.astype(np.uint8), before),
            "change mask (GeoTIFF, 1 = changed)",
        ),  # fmt: skip
        Artifact(
            "geojson", write_geojson(ctx.path("change_regions.geojson"), regions), f"change regions (GeoJSON, {where})"
        ),  # fmt: skip
    ]


def _summary(scope: str, f: ChangeFigures, regions: list[Region], approximate: bool = False) -> str:
    """The result in one line; a region's pixels traced on an overview are approximate."""
    if f.appeared_count is not None:
        text = (
            f"in {scope}, {_buildings_text(f)}; together they cover {f.changed_percent:.1f}% of the analysed area "
            f"({f.changed_pixels:,} pixels)"
        )
    else:
        text = (
            f"in {scope}, {f.changed_percent:.1f}% of the analysed area changed ({f.changed_pixels:,} pixels, "
            f"{_fmt_area(f.changed_area_m2)}) in {len(regions)} regions"
        )
    if regions:
        about = "about " if approximate else ""
        text += f"; the largest covers {_fmt_area(regions[0].area_m2)} ({about}{regions[0].pixels:,} pixels)"
    return text


def _buildings_text(f: ChangeFigures, gone_first: bool = False) -> str:
    """'3 buildings appeared (1,240 m2) and 1 building disappeared, demolished or no longer seen
    (90 m2)' (pixels where the pixel size is unknown); the ones that went first when asked."""

    def size(px: int | None, m2: float | None) -> str:
        return f"{m2:,.0f} m2" if m2 is not None else f"{px:,} pixels"

    def buildings(n: int | None) -> str:
        return f"{n} building" + ("" if n == 1 else "s")

    appeared = f"{buildings(f.appeared_count)} appeared ({size(f.appeared_pixels, f.appeared_area_m2)})"
    gone = (
        f"{buildings(f.gone_count)} disappeared, demolished or no longer seen ({size(f.gone_pixels, f.gone_area_m2)})"
    )
    return f"{gone}, and {appeared}" if gone_first else f"{appeared} and {gone}"


def _with_buildings(f: ChangeFigures, before: Raster, b: BuildingChange, mask: np.ndarray) -> ChangeFigures:
    """The figures with the changed pixels split into buildings that appeared and went
    (inside the final mask, so a drawn region clips them too)."""
    appeared, gone = b.appeared & mask, b.gone & mask
    return f.model_copy(
        update={
            "appeared_count": int(ndimage.label(appeared)[1]),
            "gone_count": int(ndimage.label(gone)[1]),
            "appeared_pixels": int(appeared.sum()),
            "gone_pixels": int(gone.sum()),
            "appeared_area_m2": before.area_m2(appeared),
            "gone_area_m2": before.area_m2(gone),
        }
    )


def _figures(before: Raster, valid: np.ndarray, mask: np.ndarray, regions: list[Region]) -> ChangeFigures:
    """Changed share, area and regions of a change mask over the valid pixels."""
    return _change_figures(
        int(valid.sum()), int(mask.sum()), before.area_m2(mask), before.area_m2(valid), regions, before.pixel_size_m()
    )


def _change_figures(
    valid_px: int,
    changed_px: int,
    changed_m2: float | None,
    valid_m2: float | None,
    regions: list[Region],
    pixel_size_m: float | None,
) -> ChangeFigures:
    """The figures from pixel counts and areas (in memory and tiled alike)."""
    largest = regions[0] if regions else None
    return ChangeFigures(
        changed_fraction=changed_px / valid_px if valid_px else 0.0,
        changed_percent=100.0 * changed_px / valid_px if valid_px else 0.0,
        changed_pixels=changed_px,
        changed_area_m2=changed_m2,
        changed_area_ha=None if changed_m2 is None else changed_m2 / 1e4,
        analysed_area_m2=valid_m2,
        region_count=len(regions),
        largest_region_pixels=largest.pixels if largest else 0,
        largest_region_area_m2=largest.area_m2 if largest else (0.0 if changed_m2 is not None else None),
        pixel_size_m=pixel_size_m,
    )


ASSUMED_PAIR_GSD_M = 0.5  # change pairs without a pixel size: typical of aerial and very-high-resolution pairs


@dataclass(frozen=True)
class BuildingChange:
    """Where the learned building model sees a building on one date and not the other."""

    appeared: np.ndarray  # (H, W) bool
    gone: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.appeared | self.gone


def _building_change(before: Raster, after: Raster, valid: np.ndarray, grey: bool = False) -> BuildingChange | str:
    """Buildings that appeared or went (post-classification change), or why it cannot be
    judged (the model does not serve, the pixels are too coarse to see single buildings,
    or the images are not colour and ``grey`` is False: the model reads panchromatic
    images, but the hybrid with the colour rules was only measured on colour pairs). On
    the development pairs adding it to the rules' change raises pooled F1 from 0.464 to
    0.559."""
    if not grey and (before.count < 3 or after.count < 3):
        return "the building model needs colour (RGB) images"
    gsd = before.pixel_size_m()
    lo, hi = learned.BUILDING_GSD_M
    if gsd is not None and gsd > hi:
        return f"the pixels ({gsd:.2f} m) are too coarse for single buildings (the model needs {hi} m or finer)"
    if gsd is not None and gsd < lo:
        return f"the pixels ({gsd:.3f} m) are finer than the building model reads ({lo}-{hi} m)"
    found = learned.building_change(rgb_preview(before), rgb_preview(after), gsd or ASSUMED_PAIR_GSD_M, valid)
    if found is None:
        return f"the building model is not available ({lite_models.status('buildings')})"
    return BuildingChange(*found)


ASSUMED_NOTE = (
    f"no pixel size: the learned models read the pair at {ASSUMED_PAIR_GSD_M} m pixels (say 'the pixel size is X m')"
)


def _detect(
    args: ChangeArgs, before: Raster, after: Raster, valid: np.ndarray
) -> tuple[np.ndarray, str, list[str], BuildingChange | None, list[str]]:
    """(mask, method, notes, building change or None, limits) for the call's target."""
    notes = [*before.notes, *after.notes]
    assumed = [ASSUMED_NOTE] if before.pixel_size_m() is None else []
    buildings = _building_change(before, after, valid, grey=args.target == "building")
    model = f"{lite_models.status('buildings')} on both dates"
    if args.target == "building":
        if isinstance(buildings, str):
            raise InputError(
                f"Building change cannot be measured here: {buildings}. Ask what changed instead (any change)."
            )
        method = f"buildings that appeared or went: {model}, compared date to date (post-classification change)"
        return buildings.mask, method, notes + assumed, buildings, list(BUILDING_LIMITS)
    ndvi = spectral_index(before, "ndvi"), spectral_index(after, "ndvi")
    both = None if ndvi[0] is None or ndvi[1] is None else (ndvi[0], ndvi[1])
    out = change_classical.detect(to_float_rgb(before), to_float_rgb(after), valid=valid, ndvi=both)
    # The rules' regions that the learned change model confirms (where it serves and the pixels
    # suit it). On the development pairs, with the buildings below, pooled F1 0.559 -> 0.571; on
    # 192 held-out NAIP pairs two years apart (nearly unchanged) 24.1% -> 5.7% flagged.
    confirmed = learned.confirmed_in_pair(out.mask, before, after, valid, ASSUMED_PAIR_GSD_M)
    mask, method, limits = out.mask, change_classical.METHOD_NAME, [*LIMITS, UNCONFIRMED_LIMIT]
    if isinstance(confirmed, str):
        notes.append(f"change regions not checked by a learned model: {confirmed}")
    else:
        mask, limits = confirmed, [*LIMITS, CONFIRMED_LIMIT]
        method += f"; a region is kept where the {lite_models.status('change')} calls at least {SHARE}% of it changed"
    if not (isinstance(confirmed, str) and isinstance(buildings, str)):
        notes += assumed  # a learned model ran at the assumed pixel size
    if isinstance(buildings, str):
        return mask, method, notes, None, limits
    # hybrid: the rules' change, plus buildings that appeared or went
    return mask | buildings.mask, f"{method}; plus buildings that appeared or went ({model})", notes, None, limits


def run(args: ChangeArgs, ctx: ToolContext) -> ToolResult:
    before, after = ctx.raster(args.before), ctx.raster(args.after)
    if before.source is not None or after.source is not None:
        return run_tiled(args, ctx, before, after)
    return run_in_memory(args, ctx)


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
    mask, method, notes, buildings, limits = _detect(args, before, after, valid)
    ctx.progress(0.6, "change mask computed")

    # 3. Restrict to the drawn region (the whole pair is analysed first, so the result is
    #    exactly the full change mask clipped to the region), then measure.
    inside = region_mask_of(args.region, ctx, before)
    if inside is not None:
        valid, mask = valid & inside, mask & inside
        scope = "the region drawn on the map" + ("" if scope == "the whole image" else f" and {scope}")
    labels, regions = regions_of(mask, before)
    figures = _figures(before, valid, mask, regions)
    if buildings is not None:
        figures = _with_buildings(figures, before, buildings, mask)

    # 4. Artifacts: overlay, previews, GeoTIFF mask, GeoJSON regions.
    artifacts = _artifacts(ctx, before, after, mask, regions_geojson(labels, regions, before, "change"))
    ctx.progress(1.0, "artifacts written")

    return ToolResult(
        summary=_summary(scope, figures, regions),
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
            target="change",
            grid=(before.crs, before.transform) if before.georeferenced else None,
        ),  # fmt: skip
    )


def answer(result: ToolResult, reading: Reading) -> str:
    f = result.figures
    assert isinstance(f, ChangeFigures)
    source = reading.source
    if reading.focus == "largest":
        return largest_region_text(result, "change", source)
    if reading.focus in ("count", "count_gone") and f.appeared_count is not None:
        return f"{_buildings_text(f, gone_first=reading.focus == 'count_gone')} ({source})."
    if reading.focus in ("count", "count_gone"):
        return f"There are {f.region_count} separate change regions ({source})."
    if reading.focus == "fraction":
        return f"{f.changed_percent:.1f}% of the analysed area changed ({f.changed_pixels:,} pixels) ({source})."
    if reading.focus == "area" and f.appeared_count is not None:
        return (
            f"Buildings that appeared or went cover {area_text(f.changed_area_m2)}, {f.changed_percent:.1f}% of the "
            f"analysed area: {_buildings_text(f)} ({source})."
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
        where = place(regions[0].centroid[0], regions[0].centroid[1], mask.shape[1], mask.shape[0])
        lines.append(f"The largest change is in {where} of the image.")
    return "\n\n".join(lines)


HELP = (
    "- **change detection** between two images of the same place (*what changed?*, *what changed inside "
    "the box?*): changed share (%), area (m2, ha), regions, overlay, GeoTIFF and GeoJSON; *which buildings are "
    "new?*, *how many buildings were demolished?*: only buildings that appeared or went, counted, with their areas"
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
    small_mask = read_overview(mask_path, max(base.height, base.width))[0] > 0
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
    if args.target == "building":
        raise InputError(
            "Building change is not measured yet on scenes read tile by tile (this pair is too large to hold in "
            "memory): ask what changed (any change, the rules tile by tile), or crop both images to the area first."
        )
    src_b, src_a = file_source(before, ctx, "before"), file_source(after, ctx, "after")
    window, area, scope = tiled_scope(args.box, args.region, ctx, before, src_b)
    pair = PairSource(src_b, src_a, area=area, within=window)
    progress = tile_progress(ctx, "change detection")

    shown = (before.height, before.width)  # the image the user sees: an overview of a large scene
    out = change_tiled.detect_to_file(
        pair, ctx.path("change_mask.tif"), shown_shape=shown, progress=progress, map_tiles=ctx.map_tiles,
        tile_px=tile_side(ctx, 0) or None, **_bands_of(before, after),
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
        Artifact("geotiff", out.mask_path, "change mask (Cloud-Optimised GeoTIFF, full resolution, 1 = changed)"),
        Artifact("geojson", write_geojson(ctx.path("change_regions.geojson"), regions_geojson(labels, regions, before, "change")),
                 f"change regions (GeoJSON, {where})"),
    ]  # fmt: skip
    ctx.progress(1.0, "artifacts written")
    notes = [*before.notes, *after.notes]
    notes.append(f"Processed tile by tile at full resolution ({out.tiles} tiles).")
    if cell_px > 1:
        notes.append(f"Change regions are traced on the {before.width}x{before.height} overview shown.")
    return ToolResult(
        summary=_summary(scope, figures, regions, approximate=cell_px > 1),
        figures=figures,
        artifacts=artifacts,
        method=change_tiled.METHOD_NAME,
        limits=[*LIMITS, UNCONFIRMED_LIMIT],
        notes=notes,
        kept=Kept(mask=out.shown_mask, labels=labels, regions=regions, scope=scope, target="change",
                  grid=(before.crs, before.transform) if before.georeferenced else None),
    )  # fmt: skip


def _bands_of(before: Raster, after: Raster) -> dict:
    """Each file's own RGB bands (one may be stored blue-green-red) and, where both files
    have them, red and near-infrared for NDVI: the tiled detector's band arguments."""
    rgb, after_rgb = tuple(rgb_band_indices(before)), tuple(rgb_band_indices(after))
    red_nir, after_red_nir = _red_nir(before), _red_nir(after)
    if red_nir is None or after_red_nir is None:
        red_nir = after_red_nir = None
    return {
        "bands": rgb,
        "after_bands": None if after_rgb == rgb else after_rgb,
        "red_nir": red_nir,
        "after_red_nir": None if after_red_nir == red_nir else after_red_nir,
    }


def _red_nir(raster: Raster) -> tuple[int, int] | None:
    """The red and near-infrared band indices of one file, where it has both."""
    red, nir = band_index(raster, "red"), band_index(raster, "nir")
    return None if red is None or nir is None else (red, nir)


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
    return _change_figures(valid_px, changed_px, changed_m2, valid_m2, regions, pixel)
