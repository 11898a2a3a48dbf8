"""Land cover of a scene of any size, tile by tile, in bounded memory.

The land-cover rules (``landcover_rules.classify``) are per superpixel with fixed
thresholds, so each tile can be classified on its own: a tile is read with a margin
(superpixels and the water-body rule see across the tile edge) and only its core is
kept. Two things stay tile-local and the notes say so: the percentile stretch of
non-8-bit RGB previews, and the "large dark body = water" rule, which sizes a body
against the tile rather than the scene.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.windows import Window

from rschat.backends.landcover_rules import CLASSES, classify
from rschat.backends.landuse import add_built_up
from rschat.geo.area import pixel_area_grid
from rschat.geo.errors import InputError
from rschat.geo.tiles import GridSampler, Tile, map_threaded, tile_grid
from rschat.geo.windowed import MaskWriter, RasterSource, area_mask, read_window

TILE_PX = 2048
MARGIN_PX = 64


@dataclass
class TileClasses:
    tile: Tile
    classes: np.ndarray  # (h, w) int8 on the core: index into CLASSES, -1 = no data
    class_px: np.ndarray  # (len(CLASSES),) pixels per class
    class_m2: np.ndarray | None  # (len(CLASSES),) m2 per class, when georeferenced
    used_indices: list[str]
    note: str = ""  # the method's addition when the building model marked built-up land


def tile_classes(source: RasterSource, band_names: tuple[str, ...], tile: Tile, area: dict | None) -> TileClasses:
    """Classify one tile with its margin; keep the core, with its pixels and m2 per class."""
    raster = read_window(source, tile.read_window, band_names)
    note = ""
    try:
        lc = classify(raster)
        note = add_built_up(lc, raster)  # as in memory, so both give the same built-up land
        classes, used = lc.classes, lc.used_indices
    except InputError:  # a blank or all-no-data tile: nothing to classify there
        classes, used = np.full((raster.height, raster.width), -1, dtype=np.int8), []
    inside = area_mask(area, source, tile.read_window, classes.shape)
    if inside is not None:
        classes = np.where(inside, classes, -1).astype(np.int8)
    core = tile.core_of(classes)
    class_px = np.bincount(core[core >= 0].ravel(), minlength=len(CLASSES))
    class_m2 = None
    if source.georeferenced:
        assert source.crs is not None and source.transform is not None
        per_pixel = np.broadcast_to(
            pixel_area_grid(source.crs, source.transform @ Affine.translation(tile.col, tile.row), *core.shape),
            core.shape,
        )
        class_m2 = np.bincount(core[core >= 0].ravel(), weights=per_pixel[core >= 0], minlength=len(CLASSES))
    return TileClasses(tile, core, class_px, class_m2, used, note)


@dataclass
class TiledClasses:
    path: Path  # class map, Cloud-Optimised GeoTIFF: 0 no data, i + 1 = CLASSES[i]
    shown: np.ndarray  # the classes on the grid of the image shown (int8, -1 = no data)
    class_px: np.ndarray
    class_m2: np.ndarray | None
    tiles: int
    used_indices: list[str] = field(default_factory=list)
    note: str = ""  # the building model's part in the method, when it served a tile


def classify_to_file(
    source: RasterSource,
    band_names: tuple[str, ...],
    out_path: Path,
    shown_shape: tuple[int, int],
    progress: Callable[[int, int, float], None] = lambda done, total, elapsed: None,
    within: Window | None = None,
    area: dict | None = None,
    map_tiles: Callable[[Callable[[Tile], TileClasses], list[Tile]], Iterator[TileClasses]] | None = None,
    tile_px: int = TILE_PX,
) -> TiledClasses:
    """Land cover of ``within`` (default: all) of a source, written to ``out_path``."""
    tiles = tile_grid(source.height, source.width, tile_px, MARGIN_PX, within=within)
    sampler = GridSampler((source.height, source.width), shown_shape)
    shown = np.full(shown_shape, -1, dtype=np.int8)
    class_px = np.zeros(len(CLASSES), dtype=np.int64)
    class_m2 = np.zeros(len(CLASSES)) if source.georeferenced else None
    used: set[str] = set()
    note = ""
    writer, start = MaskWriter(out_path, source, nodata=0), time.perf_counter()
    try:
        run = (map_tiles or map_threaded())(lambda tile: tile_classes(source, band_names, tile, area), tiles)
        for done, result in enumerate(run, start=1):
            writer.write(result.tile.window, (result.classes + 1).astype(np.uint8))
            sampler.paste(shown, result.tile, result.classes)
            class_px += result.class_px
            if class_m2 is not None and result.class_m2 is not None:
                class_m2 += result.class_m2
            used.update(result.used_indices)
            note = note or result.note
            progress(done, len(tiles), time.perf_counter() - start)
    except BaseException:
        writer.abort()
        raise
    return TiledClasses(writer.close(), shown, class_px, class_m2, len(tiles), sorted(used), note)
