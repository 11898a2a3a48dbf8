"""What the tools that read large scenes tile by tile share: the file to read, the part
of it to analyse, progress in the chat, and previews that never touch full resolution.

A large scene is shown (and clicked, and boxed) as its overview, while the tiles read the
file: ``tiled_scope`` turns a box drawn on the overview into a window of the file, and a
region drawn on the map into that window plus a polygon in the file's CRS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from rasterio import windows
from shapely.geometry import mapping

from rschat.geo.io import write_geotiff
from rschat.geo.raster import Raster
from rschat.geo.region import region_geometry, to_raster_crs
from rschat.geo.windowed import RasterSource, open_source
from rschat.tools.base import ToolContext, box_scope, clipped_box, region_mask_of


def file_source(raster: Raster, ctx: ToolContext, name: str) -> RasterSource:
    """The file a tiled run reads: the raster's own, or (for a small image paired with a
    large one) the image written to the session folder."""
    if raster.source is not None:
        return raster.source
    return open_source(write_geotiff(ctx.path(f"{name}_input.tif"), raster.data, raster, nodata=raster.nodata))


def tiled_scope(
    box: list[int] | None, use_region: bool, ctx: ToolContext, shown: Raster, src: RasterSource
) -> tuple[windows.Window, dict | None, str]:
    """The window of the file to analyse (box, drawn region or all), the region as GeoJSON
    in the file's CRS, and the scope in words. ``shown`` is the raster the user sees."""
    window, scope, area = windows.Window(0, 0, src.width, src.height), "the whole image", None
    if box:
        x0, y0, x1, y1 = clipped_box(box, shown)
        sx, sy = src.width / shown.width, src.height / shown.height
        window = windows.Window(x0 * sx, y0 * sy, (x1 - x0) * sx, (y1 - y0) * sy)
        scope = box_scope((x0, y0, x1, y1))
    if use_region:
        if ctx.region is None or src.transform is None:
            region_mask_of(True, ctx, shown)  # raises the usual message
        geom = to_raster_crs(region_geometry(ctx.region), shown)  # type: ignore[arg-type]
        area = mapping(geom)
        window = window.intersection(windows.from_bounds(*geom.bounds, transform=src.transform))
        scope = "the region drawn on the map" + ("" if scope == "the whole image" else f" and {scope}")
    full = windows.Window(0, 0, src.width, src.height)
    return window.round_offsets().round_lengths().intersection(full), area, scope


def tile_progress(ctx: ToolContext, what: str) -> Callable[[int, int, float], None]:
    """A progress callback that tells the chat the tiles done and the time left (and
    lets a cancelled turn stop between tiles: ctx.progress raises then)."""

    def progress(done: int, total: int, elapsed: float) -> None:
        left = elapsed / done * (total - done)
        ctx.progress(0.05 + 0.85 * done / total, f"{what}: tile {done}/{total}, about {left:.0f} s left")

    return progress


def shown_raster(raster: Raster, side: int) -> Raster:
    """A raster small enough to preview: itself when its longer side is at most ``side``
    (a large scene's in-memory pixels are already an overview), else every k-th pixel."""
    step = max(1, -(-max(raster.width, raster.height) // side))
    return raster if step == 1 else replace(raster, data=raster.data[:, ::step, ::step], source=None)


def tile_side(ctx: ToolContext, default: int) -> int:
    """The tile side a tiled run uses: the RSCHAT_TILE_PX setting when set, else the tool's."""
    chosen = getattr(ctx.settings, "tile_px", 0) if ctx.settings is not None else 0
    return int(chosen) or default
