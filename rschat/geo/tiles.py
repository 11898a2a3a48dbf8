"""Cutting a large grid into overlapping tiles and putting the results back together.

A tile is read with a margin (``overlap`` pixels on each side, clipped at the image
edge) so that neighbourhood operations (smoothing, gradients, small-object removal) see
the same pixels near a tile edge as they would on the whole image; only the tile's core
is kept. With a margin wider than the operation's reach and global (not per-tile)
statistics, the stitched result has no seams.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
from rasterio.windows import Window


@dataclass(frozen=True)
class Tile:
    index: int
    row: int  # core's top-left, in pixels of the full grid
    col: int
    height: int  # core size
    width: int
    read_row: int  # window read (core plus margin, clipped to the image)
    read_col: int
    read_height: int
    read_width: int

    @property
    def window(self) -> Window:
        """The core, as a rasterio window of the full grid (where the result is written)."""
        return Window(self.col, self.row, self.width, self.height)

    @property
    def read_window(self) -> Window:
        return Window(self.read_col, self.read_row, self.read_width, self.read_height)

    def core_of(self, block):  # type: ignore[no-untyped-def]
        """The core of an array computed on the read window (last two axes are rows, cols)."""
        top, left = self.row - self.read_row, self.col - self.read_col
        return block[..., top : top + self.height, left : left + self.width]


def tile_grid(
    height: int, width: int, size: int, overlap: int, align: int = 1, within: Window | None = None
) -> list[Tile]:
    """Tiles of ``size`` x ``size`` pixels (the last row and column smaller) covering an
    image, each with ``overlap`` pixels of margin. ``align`` makes every core and read
    window start on a multiple of it (for work done on a grid ``align`` times coarser).
    With ``within`` (a window of the image), only that window is tiled and margins stay
    inside it, as if it had been cropped out; tiles keep the image's coordinates."""
    if size <= 0 or overlap < 0:
        raise ValueError(f"bad tiling: size {size}, overlap {overlap}")
    row0, col0 = (int(within.row_off), int(within.col_off)) if within is not None else (0, 0)
    if within is not None:
        height, width = int(within.height), int(within.width)
    size = max(align, size - size % align)
    overlap = overlap + (-overlap) % align
    tiles: list[Tile] = []
    for row in range(0, height, size):
        for col in range(0, width, size):
            h, w = min(size, height - row), min(size, width - col)
            r0, c0 = max(0, row - overlap), max(0, col - overlap)
            r1, c1 = min(height, row + h + overlap), min(width, col + w + overlap)
            tiles.append(Tile(len(tiles), row + row0, col + col0, h, w, r0 + row0, c0 + col0, r1 - r0, c1 - c0))
    return tiles


class GridSampler:
    """Puts tile cores of a full grid onto a coarser grid covering the same ground (the
    overview a large scene is shown and asked about), by nearest sampling: each coarse
    cell takes the full-resolution pixel at its centre. Used for results that must line
    up with the image the user sees (regions, follow-up masks)."""

    def __init__(self, full_shape: tuple[int, int], shape: tuple[int, int]) -> None:
        self.shape = shape
        self._rows = ((np.arange(shape[0]) + 0.5) * full_shape[0] / shape[0]).astype(np.int64)
        self._cols = ((np.arange(shape[1]) + 0.5) * full_shape[1] / shape[1]).astype(np.int64)
        self.cell_px = full_shape[0] * full_shape[1] / (shape[0] * shape[1])  # full pixels per cell

    def paste(self, out: np.ndarray, tile: Tile, core: np.ndarray) -> None:
        """Copy the cells whose centre pixel lies in ``tile``'s core from ``core``."""
        rows = np.flatnonzero((self._rows >= tile.row) & (self._rows < tile.row + tile.height))
        cols = np.flatnonzero((self._cols >= tile.col) & (self._cols < tile.col + tile.width))
        if rows.size and cols.size:
            out[np.ix_(rows, cols)] = core[np.ix_(self._rows[rows] - tile.row, self._cols[cols] - tile.col)]


T = TypeVar("T")
A = TypeVar("A")


def map_threaded(workers: int = 2) -> Callable[[Callable[[A], T], list[A]], Iterator[T]]:
    """Run tiles on a thread pool (numpy, scipy and GDAL release the GIL for most of a
    tile), keeping at most 2 x ``workers`` tiles in flight so memory stays bounded.
    Results come in the order they finish."""

    def map_tiles(fn: Callable[[A], T], tiles: list[A]) -> Iterator[T]:
        pending: set[Future[T]] = set()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                for tile in tiles:
                    pending.add(pool.submit(fn, tile))
                    if len(pending) >= 2 * workers:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        yield from (f.result() for f in done)
                for f in list(pending):
                    yield f.result()
            finally:  # cancelled or failed: drop what has not started
                for f in pending:
                    f.cancel()

    return map_tiles
