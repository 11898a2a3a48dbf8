"""The tiled path of ``count_objects``: a scene too large to hold whole is counted tile by
tile at full resolution from its file (each tile as an image of its own, with a margin so
an object on a tile edge is counted once); boxes are shown on the overview and points
placed from the file's grid."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from rasterio import windows

from rschat.backends import counting_classical as cc
from rschat.geo.errors import InputError
from rschat.geo.io import write_png
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster
from rschat.geo.tiles import Tile, map_threaded, tile_grid
from rschat.geo.vector import write_geojson
from rschat.geo.windowed import RasterSource, area_mask, read_window
from rschat.tools.base import Artifact, Kept, ToolContext, ToolResult, region_mask_of
from rschat.tools.count_detect import ASSUMED_GSD_M, SUPPORTED, detect_lite
from rschat.tools.count_objects import (
    CountArgs,
    CountFigures,
    _draw,
    _footprints_m2,
    _geojson,
    _mean_size_m2,
    _previous_mask,
    _selected,
    _singular,
    _what,
    cover_percent,
    outlines_geojson,
)
from rschat.tools.tiled import file_source, shown_raster, tile_progress, tile_side, tiled_scope

TILE_PX = 2048  # tiles of a large scene (each counted as an image of its own)


def _tile_detections(
    target: str, source: RasterSource, image: Raster, tile: Tile, area: dict | None
) -> list[cc.Detection]:
    """The lite detector on one tile (with its margin), as if the tile were the image;
    only detections whose centre is in the tile's core (and in the area) are kept, so an
    object on a tile edge is counted once. Boxes come back in the file's pixels."""
    raster = read_window(source, tile.read_window, image.band_names)
    if not raster.georeferenced and image.gsd_m:  # a stated pixel size, scaled to the file's pixels
        raster.gsd_m = image.gsd_m * image.width / source.width
    try:
        dets = detect_lite(target, raster)[0]
    except InputError:  # a blank tile (no data, one value): nothing to count there
        return []
    inside = area_mask(area, source, tile.read_window, (raster.height, raster.width))
    valid = raster.valid_mask()  # no object is counted on no data (a warp's black edge)
    inside = valid if inside is None else inside & valid
    kept = []
    for d in dets:
        cx, cy = d.center
        in_core = (
            tile.row <= tile.read_row + cy < tile.row + tile.height
            and tile.col <= tile.read_col + cx < tile.col + tile.width
        )
        if in_core and inside[min(int(cy), raster.height - 1), min(int(cx), raster.width - 1)]:
            kept.append(d.shifted(tile.read_col, tile.read_row))
    return kept


def _count_tiles(
    args: CountArgs, ctx: ToolContext, image: Raster, src: RasterSource
) -> tuple[list[cc.Detection], str, list[str], list[str], float, str, windows.Window]:
    """Run the lite detector over the tiles of the analysed window; (detections in the
    file's pixels, method, limits, notes, pixel size, scope, window)."""
    window, area, scope = tiled_scope(args.box, args.region, ctx, image, src)
    first = read_window(
        src,
        windows.Window(window.col_off, window.row_off, min(64, window.width), min(64, window.height)),
        image.band_names,
    )
    if not first.georeferenced and image.gsd_m:
        first.gsd_m = image.gsd_m * image.width / src.width
    gsd = first.pixel_size_m() or ASSUMED_GSD_M[args.target]
    margin = min(256, int(np.ceil(30.0 / gsd)))  # wider than a crown or a house, in pixels
    tiles = tile_grid(src.height, src.width, tile_side(ctx, TILE_PX), margin, within=window)
    _, method, limits, notes, _ = detect_lite(args.target, _probe(first))
    progress, dets = tile_progress(ctx, f"counting {SUPPORTED[args.target]}"), []
    start = time.perf_counter()
    for done, found in enumerate(
        (ctx.map_tiles or map_threaded())(lambda t: _tile_detections(args.target, src, image, t, area), tiles), 1
    ):
        dets += found
        progress(done, len(tiles), time.perf_counter() - start)
    notes.append(
        f"Counted tile by tile at full resolution ({len(tiles)} tiles); an object on a tile edge is counted once."
    )
    return dets, method, limits, notes, gsd, scope, window


def _inside_flags(dets: list[cc.Detection], mask: np.ndarray) -> list[bool]:
    h, w = mask.shape
    return [bool(mask[min(int(d.center[1]), h - 1), min(int(d.center[0]), w - 1)]) for d in dets]


def _analysed_area_m2(
    args: CountArgs, ctx: ToolContext, image: Raster, src: RasterSource, window: windows.Window
) -> float | None:
    """The analysed area in m2, measured on the overview's grid (its pixels' areas are
    exact for it): the window's pixels with data, and the drawn region when the count is
    restricted to it."""
    sx, sy = image.width / src.width, image.height / src.height
    mask = np.zeros((image.height, image.width), dtype=bool)
    mask[int(window.row_off * sy) : int(np.ceil((window.row_off + window.height) * sy)),
         int(window.col_off * sx) : int(np.ceil((window.col_off + window.width) * sx))] = True  # fmt: skip
    inside = region_mask_of(args.region, ctx, image)
    mask &= image.valid_mask()
    return image.area_m2(mask if inside is None else mask & inside)


def _file_grid(src: RasterSource, image: Raster) -> Raster:
    """A pixel-free Raster on the file's grid (to place full-resolution boxes)."""
    empty = np.broadcast_to(np.zeros((1, 1, 1), dtype=np.uint8), (1, src.height, src.width))
    return Raster(data=empty, crs=src.crs, transform=src.transform, name=image.name)


def _probe(raster: Raster) -> Raster:
    """A small, non-blank stand-in with the scene's bands and pixel size, to get the lite
    detector's checks (pixel size, bands), method and limits once, before the tiles."""
    data = np.random.default_rng(0).integers(0, 255, (raster.count, 64, 64)).astype(raster.data.dtype)
    return replace(raster, data=data, nodata=None)


def run_tiled(args: CountArgs, ctx: ToolContext, image: Raster) -> ToolResult:
    """count_objects on a large scene: the lite detector tile by tile at full resolution;
    boxes are shown on the overview, points placed from the file's grid."""
    src = file_source(image, ctx, args.image)
    found, method, limits, notes, gsd, scope, window = _count_tiles(args, ctx, image, src)
    scope = f"{scope} '{image.name}'" if scope == "the whole image" else scope
    sx, sy = image.width / src.width, image.height / src.height
    shown = [replace(d, box=(d.box[0] * sx, d.box[1] * sy, d.box[2] * sx, d.box[3] * sy)) for d in found]
    if args.within_previous_mask:
        prev = _previous_mask(ctx, image, image, (0, 0))
        if prev is None:
            notes.append("the previous step left no mask on this image's grid, so the count is not restricted to it")
        else:
            keep = [i for i, d in enumerate(_inside_flags(shown, prev)) if d]
            found, shown = [found[i] for i in keep], [shown[i] for i in keep]
            scope += " inside the changed area"
    known = gsd if image.pixel_size_m() is not None else None  # never the assumed size
    keep_ids = {id(d) for d in _selected(found, args, known)}
    pairs = [(f, s) for f, s in zip(found, shown, strict=True) if id(f) in keep_ids]
    found, shown = [f for f, _ in pairs], [s for _, s in pairs]
    plural = _what(args, SUPPORTED[args.target])
    area_m2 = _analysed_area_m2(args, ctx, image, src, window)
    figures = CountFigures(
        count=len(found),
        density_per_ha=len(found) / (area_m2 / 1e4) if area_m2 else None,
        pixel_size_m=gsd,
        area_m2=_footprints_m2(found) if known else None,
        mean_size_m2=_mean_size_m2(found, known),
    )
    figures.cover_percent = cover_percent(figures.area_m2, area_m2)
    if args.target == "tree":
        figures.dead_or_leafless = sum("dead" in d.kind for d in found)
    path_geo = ctx.path(f"count_{args.target}.geojson")
    write_geojson(path_geo, _geojson(found, _file_grid(src, image), (0, 0)))
    path_shapes = ctx.path(f"count_{args.target}_outlines.geojson")
    write_geojson(path_shapes, outlines_geojson(found, _file_grid(src, image), (0, 0)))
    preview = shown_raster(image, ctx.settings.overview_side if ctx.settings else 2048)
    step = image.width / preview.width
    boxes = [replace(d, box=tuple(v / step for v in d.box)) for d in shown]  # type: ignore[arg-type]
    overlay = write_png(ctx.path(f"count_{args.target}.png"), _draw(rgb_preview(preview), boxes))
    return ToolResult(
        summary=f"{len(found)} {_singular(plural) if len(found) == 1 else plural} in {scope}",
        figures=figures,
        artifacts=[Artifact("overlay", overlay, f"{plural} (boxes, on an overview)"),
                   Artifact("geojson", path_geo, f"{plural} as points with boxes (GeoJSON)"),
                   Artifact("geojson", path_shapes, f"{plural} as polygons (GeoJSON)")],
        method=method,
        limits=limits,
        notes=[*image.notes, *notes],
        kept=Kept(detections=shown, offset=(0, 0), target=args.target, scope=scope),
    )  # fmt: skip
