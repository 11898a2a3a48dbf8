"""The lite change detector on rasters of any size, tile by tile, in bounded memory.

``change_classical.detect`` needs the whole pair in memory: its histogram matching, its
robust normalisation (medians) and its Otsu threshold are statistics of the whole image.
Here those statistics are estimated once from a spread-out sample of tiles
(``estimate_stats``), and then every tile is scored with the same, fixed statistics
(``tile_change``), so tiles agree with each other and the stitched mask has no seams.
Each tile is read with a margin wider than the detector's reach (see ``MARGIN_PX``).

Everything a tile needs is in ``ChangeStats`` and a ``Tile``, both plain picklable
values, so the same function runs in a loop, in threads or on Dask workers
(rschat.batch). Peak memory is set by ``TILE_PX``, not by the size of the scene.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from affine import Affine
from scipy import ndimage
from skimage import filters, morphology

from rschat.backends.change_classical import WEIGHTS, evidence, not_ground_change
from rschat.geo.area import pixel_area_grid
from rschat.geo.tiles import GridSampler, Tile, map_threaded, tile_grid
from rschat.geo.windowed import MaskWriter, PairSource

METHOD_NAME = (
    "lite change detector, tiled (histogram matching + structure-gain and chromatic CVA, Otsu, vegetation and "
    "shadow taken out, object clean-up; statistics from a sample of tiles)"
)
TILE_PX = 1024
SCALE_PX = 16.0  # the detector's object scale at full resolution (as change_classical.detect)
MARGIN_PX = 96  # > 4 sigma of the widest Gaussian (scale_px) plus the Sobel and upsampling reach
SAMPLE_TILES = 9
MIN_REGION_PX = 64


@dataclass(frozen=True)
class ChangeStats:
    """What every tile must share: how to turn pixels into [0, 1] RGB, the histogram
    match of after onto before, the evidence medians, the threshold and the scale."""

    bands: tuple[int, int, int]
    stretch_before: np.ndarray | None  # (3, 2) low/high per RGB band; None = uint8 as is
    stretch_after: np.ndarray | None
    lut: np.ndarray  # (3, 256) after level -> matched value in [0, 1]
    medians: tuple[float, float, float]
    threshold: float
    factor: int  # the score is computed on a grid this many times coarser
    red_nir: tuple[int, int] | None = None  # band indices for NDVI, where both images have near-infrared
    after_bands: tuple[int, int, int] | None = None  # the after file's RGB bands, where its order differs
    after_red_nir: tuple[int, int] | None = None  # and its red and near-infrared bands

    @property
    def rgb_after(self) -> tuple[int, int, int]:
        return self.after_bands or self.bands


# The change mask files' no-data: pixels outside either image or the area asked about were
# not judged, which GIS must not read as "unchanged" (0).
NOT_JUDGED = 255


@dataclass
class TileChange:
    tile: Tile
    mask: np.ndarray  # (h, w) bool on the tile's core
    valid: np.ndarray  # (h, w) bool: data in both images (and inside the area asked about)
    valid_px: int
    changed_px: int
    valid_m2: float | None
    changed_m2: float | None


def scoring_factor(pixels: int) -> int:
    """2 as in the in-memory detector; 4 for scenes over 100 MP, where a 4x coarser score
    (a quarter of the work) still resolves objects of ``SCALE_PX`` / 4 cells."""
    return 4 if pixels > 100_000_000 else 2


def _percentile_stretch(values: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(values, [2.0, 98.0]) if values.size else (0.0, 1.0)
    return np.array([lo, max(hi, lo + 1.0)], dtype=np.float64)


def to_levels(block: np.ndarray, bands: tuple[int, int, int], stretch: np.ndarray | None) -> np.ndarray:
    """(bands, h, w) pixels -> (h, w, 3) uint8 levels, as geo.preview.rgb_preview makes them."""
    rgb = block[list(bands)]
    if stretch is None and rgb.dtype == np.uint8:
        return np.ascontiguousarray(np.moveaxis(rgb, 0, -1))
    if stretch is None:
        return np.moveaxis(np.clip(rgb, 0, 255), 0, -1).astype(np.uint8)
    lo, hi = stretch[:, 0, None, None], stretch[:, 1, None, None]
    out = np.clip((rgb - lo) / (hi - lo) * 255.0, 0, 255)
    return np.moveaxis(np.nan_to_num(out), 0, -1).astype(np.uint8)


def _match_lut(before_levels: np.ndarray, after_levels: np.ndarray) -> np.ndarray:
    """(3, 256): the value each after level takes when the after histogram is matched to
    the before one (quantile mapping, as skimage.exposure.match_histograms does)."""
    lut = np.tile(np.arange(256, dtype=np.float32) / 255.0, (3, 1))
    for b in range(3):
        hist_b = np.bincount(before_levels[:, b], minlength=256).astype(np.float64)
        hist_a = np.bincount(after_levels[:, b], minlength=256).astype(np.float64)
        if hist_b.sum() == 0 or hist_a.sum() == 0:
            continue
        keep_b, keep_a = hist_b > 0, hist_a > 0
        q_b = np.cumsum(hist_b[keep_b]) / hist_b.sum()
        q_a = np.cumsum(hist_a[keep_a]) / hist_a.sum()
        lut[b, keep_a] = np.interp(q_a, q_b, np.flatnonzero(keep_b)) / 255.0
    return lut


def _level_pair(
    before: np.ndarray, after: np.ndarray, valid: np.ndarray, stats: ChangeStats
) -> tuple[np.ndarray, np.ndarray]:
    """Before and matched after as (h, w, 3) uint8 levels, zero outside ``valid``.
    Everything at full resolution stays in uint8: it is most of a tile's pixels."""
    b = to_levels(before, stats.bands, stats.stretch_before)
    levels = to_levels(after, stats.rgb_after, stats.stretch_after)
    lut = np.round(stats.lut * 255).astype(np.uint8)
    a = np.stack([lut[i][levels[..., i]] for i in range(3)], axis=-1)
    b[~valid] = 0
    a[~valid] = 0
    return b, a


def _coarse(levels: np.ndarray, factor: int) -> np.ndarray:
    """Block mean of (h, w, 3) uint8 levels as float [0, 1] (integer sums: fast)."""
    h, w = (levels.shape[0] // factor) * factor, (levels.shape[1] // factor) * factor
    total = np.zeros((h // factor, w // factor, 3), dtype=np.uint16)  # 16 x 255 fits
    for i in range(factor):  # strided adds: far faster than a reshaped sum over two axes
        for j in range(factor):
            total += levels[i:h:factor, j:w:factor]
    return total.astype(np.float32) / (255.0 * factor * factor)


def _parts(
    before: np.ndarray, after: np.ndarray, valid: np.ndarray, stats: ChangeStats
) -> tuple[tuple[np.ndarray, ...], np.ndarray, np.ndarray]:
    """The evidence maps on the coarse grid, the coarse valid mask (a cell is valid when
    all its pixels are) and the cells whose difference is not a change on the ground
    (vegetation on both dates, shadow on either; as change_classical.detect)."""
    b, a = _level_pair(before, after, valid, stats)
    f = stats.factor
    h, w = (valid.shape[0] // f) * f, (valid.shape[1] // f) * f
    coarse_valid: np.ndarray = np.asarray(valid[:h, :w].reshape(h // f, f, w // f, f).all(axis=(1, 3)))
    coarse_b = _coarse(b, f)
    parts = evidence(coarse_b, _coarse(a, f), SCALE_PX / f)
    # Vegetation and shadow are judged on each date's own colours, not on the after image
    # matched to the before one (as in memory).
    own_after = to_levels(after, stats.rgb_after, stats.stretch_after)
    own_after[~valid] = 0  # as the matched levels, and as in memory
    ndvi = None
    if stats.red_nir is not None:
        later = stats.after_red_nir or stats.red_nir
        ndvi = (_coarse_ndvi(before, valid, stats.red_nir, f), _coarse_ndvi(after, valid, later, f))
    return parts, coarse_valid, not_ground_change(coarse_b, _coarse(own_after, f), SCALE_PX / f, ndvi)


def _coarse_ndvi(block: np.ndarray, valid: np.ndarray, red_nir: tuple[int, int], factor: int) -> np.ndarray:
    """NDVI of a (bands, h, w) block, block-averaged to the coarse grid (0 where undefined
    or without data, as in memory)."""
    red, nir = block[red_nir[0]].astype(np.float32), block[red_nir[1]].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = np.nan_to_num((nir - red) / (nir + red), nan=0.0, posinf=0.0, neginf=0.0)
    ndvi[~valid] = 0.0
    h, w = (ndvi.shape[0] // factor) * factor, (ndvi.shape[1] // factor) * factor
    return ndvi[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _coarse_score(parts: tuple[np.ndarray, ...], coarse_valid: np.ndarray, stats: ChangeStats) -> np.ndarray:
    score = sum(w * p / (m + 1e-6) for w, p, m in zip(WEIGHTS, parts, stats.medians, strict=True))
    assert isinstance(score, np.ndarray)
    score[~coarse_valid] = 0.0
    return score.astype(np.float32)


def _full_mask(coarse: np.ndarray, shape: tuple[int, int], factor: int) -> np.ndarray:
    """A coarse mask back on the full grid (each cell becomes factor x factor pixels;
    the edge rows and columns a partial cell left out copy their neighbours)."""
    mask = np.repeat(np.repeat(coarse, factor, axis=0), factor, axis=1)
    pad = ((0, shape[0] - mask.shape[0]), (0, shape[1] - mask.shape[1]))
    return np.pad(mask, pad, mode="edge") if mask.size else np.zeros(shape, dtype=bool)


def tile_change(pair: PairSource, tile: Tile, stats: ChangeStats) -> TileChange:
    """Read one tile with its margin, score it with the shared statistics, decide and
    clean on the coarse grid, and keep the core at full resolution. The unit of work
    for loops, threads and Dask alike."""
    before, after, valid = pair.read(tile.read_window)
    mask = np.zeros(valid.shape, dtype=bool)
    if valid.any():
        parts, coarse_valid, not_ground = _parts(before, after, valid, stats)
        coarse = (_coarse_score(parts, coarse_valid, stats) > stats.threshold) & coarse_valid
        smallest = max(1, MIN_REGION_PX // stats.factor**2) - 1
        coarse = morphology.remove_small_objects(coarse, max_size=smallest)
        coarse = morphology.remove_small_objects(ndimage.binary_fill_holes(coarse) & ~not_ground, max_size=smallest)
        mask = _full_mask(coarse, valid.shape, stats.factor) & valid
    core, core_valid = tile.core_of(mask), tile.core_of(valid)
    valid_m2 = changed_m2 = None
    grid = pair.before
    if grid.georeferenced:
        assert grid.crs is not None and grid.transform is not None
        per_pixel = pixel_area_grid(grid.crs, grid.transform @ Affine.translation(tile.col, tile.row), *core.shape)
        valid_m2 = float(np.sum(np.broadcast_to(per_pixel, core.shape), where=core_valid))
        changed_m2 = float(np.sum(np.broadcast_to(per_pixel, core.shape), where=core))
    return TileChange(tile, core, core_valid, int(core_valid.sum()), int(core.sum()), valid_m2, changed_m2)


def sample_tiles(tiles: list[Tile], count: int = SAMPLE_TILES) -> list[Tile]:
    """Up to ``count`` tiles spread evenly over the grid (deterministic: same scene, same
    statistics)."""
    if len(tiles) <= count:
        return list(tiles)
    picks = np.linspace(0, len(tiles) - 1, count).round().astype(int)
    return [tiles[i] for i in sorted(set(picks.tolist()))]


def estimate_stats(
    pair: PairSource,
    tiles: list[Tile],
    bands: tuple[int, int, int],
    red_nir: tuple[int, int] | None = None,
    after_bands: tuple[int, int, int] | None = None,
    after_red_nir: tuple[int, int] | None = None,
) -> ChangeStats | None:
    """The shared statistics from a sample of tiles; None when no sampled pixel is valid.
    ``after_bands``, ``after_red_nir``: the after file's bands, where they are not
    ``bands`` and ``red_nir`` (one file ordered blue-green-red, say)."""
    threads = map_threaded()
    reads = list(threads(lambda t: pair.read(t.read_window), sample_tiles(tiles)))
    if not any(v.any() for _, _, v in reads):  # a sparse scene or region: first tile with data
        found = (r for r in (pair.read(t.read_window) for t in tiles) if r[2].any())
        reads = [next(found, reads[0])]
    valid_px = [(b[:, v], a[:, v]) for b, a, v in reads]
    if not any(v.any() for _, _, v in reads):
        return None
    before_vals = np.concatenate([b for b, _ in valid_px], axis=1)
    after_vals = np.concatenate([a for _, a in valid_px], axis=1)
    stretch_b = stretch_a = None
    if pair.before.dtype != "uint8":
        stretch_b = np.stack([_percentile_stretch(before_vals[i]) for i in bands])
        stretch_a = np.stack([_percentile_stretch(after_vals[i]) for i in after_bands or bands])
    lut = _match_lut(
        to_levels(before_vals[:, None, :], bands, stretch_b)[0],
        to_levels(after_vals[:, None, :], after_bands or bands, stretch_a)[0],
    )
    factor = scoring_factor(int(pair.extent.width * pair.extent.height))
    draft = ChangeStats(
        bands, stretch_b, stretch_a, lut, (1.0, 1.0, 1.0), np.inf, factor, red_nir, after_bands, after_red_nir
    )
    sampled = list(threads(lambda r: _parts(r[0], r[1], r[2], draft), [r for r in reads if r[2].any()]))
    m0, m1, m2 = (float(np.median(np.concatenate([parts[i][cv] for parts, cv, _ in sampled]))) for i in range(3))
    stats = replace(draft, medians=(m0, m1, m2))
    scores = np.concatenate([_coarse_score(parts, cv, stats)[cv] for parts, cv, _ in sampled])
    threshold = float(filters.threshold_otsu(scores)) if scores.size and np.ptp(scores) > 0 else np.inf
    return replace(stats, threshold=threshold)


def plan(pair: PairSource, tile_px: int | None = None) -> list[Tile]:
    """The tiles of the analysed extent (a window of the before grid), aligned to the
    scoring grid. Margins stay inside the extent, as if the extent were cropped out."""
    ext = pair.extent
    factor = scoring_factor(int(ext.height * ext.width))
    tile_px = tile_px or TILE_PX * factor // 2  # the same work per tile at either factor
    return tile_grid(pair.before.height, pair.before.width, tile_px, MARGIN_PX, align=factor, within=ext)


# -- running all tiles ---------------------------------------------------------------------

MapTiles = Callable[[Callable[[Tile], TileChange], list[Tile]], Iterator[TileChange]]
Progress = Callable[[int, int, float], None]  # tiles done, tiles in all, seconds elapsed


@dataclass
class TiledChange:
    mask_path: Path  # full-resolution mask, Cloud-Optimised GeoTIFF, 1 = changed, NOT_JUDGED = no data
    shown_mask: np.ndarray  # the mask on the grid of the image shown (``shown_shape``)
    valid_px: int
    changed_px: int
    valid_m2: float | None
    changed_m2: float | None
    tiles: int
    stats: ChangeStats


def detect_to_file(
    pair: PairSource,
    out_path: Path,
    bands: tuple[int, int, int],
    shown_shape: tuple[int, int],
    progress: Progress = lambda done, total, elapsed: None,
    map_tiles: MapTiles | None = None,
    tile_px: int | None = None,
    red_nir: tuple[int, int] | None = None,
    after_bands: tuple[int, int, int] | None = None,
    after_red_nir: tuple[int, int] | None = None,
) -> TiledChange | None:
    """The change mask of a pair of any size, written to ``out_path`` at full resolution
    and sampled onto the grid of the image shown (``shown_shape``, the same ground); None
    when no pixel has data in both images. ``red_nir``: the bands for NDVI, when both
    images have them (vegetation is then judged by NDVI, as in memory). ``after_bands``:
    the after file's RGB bands where its order differs from ``bands`` (``after_red_nir``
    likewise)."""
    pair.check()
    tiles = plan(pair, tile_px)
    # Statistics from 1024 px samples: as good as whole tiles for a median and a
    # threshold, and a quarter of the reading on a large scene.
    stats = estimate_stats(
        pair, plan(pair, min(tile_px or TILE_PX, TILE_PX)), bands, red_nir, after_bands, after_red_nir
    )
    if stats is None:
        return None
    sampler = GridSampler((pair.before.height, pair.before.width), shown_shape)
    shown = np.zeros(shown_shape, dtype=bool)
    totals = np.zeros(4)
    writer, start = MaskWriter(out_path, pair.before, nodata=NOT_JUDGED), time.perf_counter()
    try:
        run = (map_tiles or map_threaded())(lambda tile: tile_change(pair, tile, stats), tiles)
        for done, result in enumerate(run, start=1):
            writer.write(result.tile.window, np.where(result.valid, result.mask, NOT_JUDGED))
            sampler.paste(shown, result.tile, result.mask)
            totals += (result.valid_px, result.changed_px, result.valid_m2 or 0.0, result.changed_m2 or 0.0)
            progress(done, len(tiles), time.perf_counter() - start)
    except BaseException:
        writer.abort()
        raise
    georef = pair.before.georeferenced
    return TiledChange(
        mask_path=writer.close(),
        shown_mask=shown,
        valid_px=int(totals[0]),
        changed_px=int(totals[1]),
        valid_m2=float(totals[2]) if georef else None,
        changed_m2=float(totals[3]) if georef else None,
        tiles=len(tiles),
        stats=stats,
    )
