"""Land use at satellite pixel sizes from the learned lite land-use model
(``checkpoints/lite/landuse.onnx``: EuroSAT's ten classes, Sentinel-2 true colour, 64 px
tiles at 10 m, trained by ``rschat train landuse``).

At 4-30 m a pixel is a roof, a garden and a street at once: the colour rules cannot tell a
town from a ploughed field (RSVQA's Sentinel-2 towns read as bare soil), but the pattern
of 640 m of ground can. Two uses:

- ``read``: the classes of a whole image (or box) and their shares, for ``classify_scene``;
- ``add_urban_land``: residential and industrial land marked as built-up in a land cover,
  so ``describe the scene``, ``segment`` and rural/urban see towns at 10 m.

Returns None / '' when the model is missing or the pixels are out of its range, and the
callers keep their rules.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rschat.backends import learned
from rschat.backends.landcover_rules import CLASSES, LandCover
from rschat.backends.lite_models import model, resample, status
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster

# Pixel sizes the model reads: trained at 10 m, it sees a 640 m tile resampled to 64 px;
# below ~4 m single buildings are resolved (the building model's range) and above 30 m a
# tile is 21 px enlarged three times.
LANDUSE_GSD_M = (4.0, 30.0)
# EuroSAT's class names as an analyst says them.
READABLE = {
    "AnnualCrop": "annual crops", "Forest": "forest", "HerbaceousVegetation": "herbaceous vegetation",
    "Highway": "highway", "Industrial": "industrial or commercial land", "Pasture": "pasture",
    "PermanentCrop": "permanent crops (orchards, vineyards)", "Residential": "residential land",
    "River": "river", "SeaLake": "sea or lake",
}  # fmt: skip
URBAN = ("Industrial", "Residential")  # land use that is built-up land at 10 m


def in_range(gsd_m: float | None) -> bool:
    return gsd_m is not None and LANDUSE_GSD_M[0] <= gsd_m <= LANDUSE_GSD_M[1]


# Windows per image at half-tile steps, beyond which they step a whole tile (about 0.6 ms
# each on 2 cores): a 1024 px image at 10 m is 961 half-overlapping windows.
MAX_WINDOWS = 1024


def _windows(length: int, side: int, step: int) -> list[int]:
    """Window starts every ``step`` pixels, the last one flush with the end."""
    if length <= side:
        return [0]
    starts = list(range(0, length - side + 1, step))
    return starts if starts[-1] == length - side else [*starts, length - side]


def _cells(h: int, w: int, side: int) -> list[tuple[int, int]]:
    """Window corners: half-overlapping where that stays within MAX_WINDOWS."""
    step = side // 2
    if len(_windows(h, side, step)) * len(_windows(w, side, step)) > MAX_WINDOWS:
        step = side
    return [(r, c) for r in _windows(h, side, step) for c in _windows(w, side, step)]


def probability(rgb: np.ndarray, gsd_m: float) -> tuple[np.ndarray, list[str]] | None:
    """(C, H, W) class probabilities at the input's pixels (each pixel the mean of the
    640 m windows over it) and the class names; None without the model."""
    m = model("landuse")
    if m is None:
        return None
    side, classes = int(m.card["input_side"]), list(m.card["classes"])
    # As the file has it: products differ in stretch, gamma and haze, and the model was
    # trained with those varied (``rschat.train.landuse``). A per-image stretch was tried
    # and dropped: on EuroSAT's held-back tiles it cost 8 points (0.938 -> 0.853; a 640 m
    # tile's percentiles say what is in it, a lake or a quarry, not how it was stretched),
    # and on RSVQA's dark Sentinel-2 tiles it changed little.
    work = resample(rgb, gsd_m / float(m.card["gsd_m"]))
    h, w = work.shape[:2]
    if min(h, w) < side:  # smaller than one tile: mirrored out to one (a 300 m crop of a field is a field)
        work = np.pad(work, ((0, max(0, side - h)), (0, max(0, side - w)), (0, 0)), mode="reflect")
    cells = _cells(work.shape[0], work.shape[1], side)
    crops = np.stack([work[r : r + side, c : c + side] for r, c in cells]).transpose(0, 3, 1, 2)
    # 64 tiles a run: ONNX Runtime keeps its arena at the largest batch it has seen, per
    # concurrent run, so moderate batches keep many sessions' memory level.
    probs = np.concatenate([m.run(crops[i : i + 64])[0] for i in range(0, len(crops), 64)])
    total = np.zeros((len(classes), *work.shape[:2]), np.float32)
    weight = np.zeros(work.shape[:2], np.float32)
    for (r, c), p in zip(cells, probs, strict=True):
        total[:, r : r + side, c : c + side] += p[:, None, None]
        weight[r : r + side, c : c + side] += 1
    total = total[:, :h, :w] / np.maximum(weight[:h, :w], 1)
    from PIL import Image

    size = (rgb.shape[1], rgb.shape[0])
    full = np.stack([np.asarray(Image.fromarray(p).resize(size, Image.Resampling.BILINEAR)) for p in total])
    return full, classes


@dataclass
class LandUse:
    ranked: list[tuple[str, float]]  # readable classes by mean probability over the image
    shares: dict[str, float]  # EuroSAT class -> % of the valid pixels where it is the most likely


def _shares(top: np.ndarray, inside: np.ndarray, classes: list[str]) -> dict[str, float]:
    """% of the pixels inside where each class is the most likely (``top``: argmax map)."""
    counts = np.bincount(top[inside], minlength=len(classes))
    return {c: 100.0 * float(n) / max(int(inside.sum()), 1) for c, n in zip(classes, counts, strict=True)}


def read(rgb: np.ndarray, gsd_m: float, valid: np.ndarray | None = None) -> LandUse | None:
    """The image's land use (valid pixels only), or None without the model."""
    got = probability(rgb, gsd_m)
    if got is None:
        return None
    prob, classes = got
    inside = valid if valid is not None and valid.any() else np.ones(prob.shape[1:], bool)
    mean = prob[:, inside].mean(axis=1)
    order = np.argsort(-mean)
    ranked = [(READABLE.get(classes[i], classes[i]), float(mean[i])) for i in order]
    return LandUse(ranked, _shares(prob.argmax(axis=0), inside, classes))


def add_urban_land(lc: LandCover, raster: Raster) -> str:
    """Mark the bare soil and shadow of residential and industrial land (the land-use
    model's most likely class) as built-up in a land cover at satellite pixel sizes, and
    take the rules' built-up out of other land. Returns the method's addition."""
    gsd = raster.pixel_size_m()
    if not in_range(gsd) or not learned.true_colour(raster):  # EuroSAT is true colour: not SWIR/NIR composites
        return ""
    valid = lc.classes >= 0
    got = probability(rgb_preview(raster), float(gsd))  # type: ignore[arg-type]
    if got is None:
        return ""
    prob, classes = got
    top = prob.argmax(axis=0)
    shares = _shares(top, valid, classes)
    lc.land_use = {READABLE.get(c, c): v for c, v in sorted(shares.items(), key=lambda kv: -kv[1])}
    urban = np.isin(top, [classes.index(c) for c in URBAN if c in classes])
    built, bare = CLASSES.index("built_up"), CLASSES.index("bare_soil")
    # In towns, what the colour rules call bare soil or shadow is roofs and streets (at 10 m
    # a town reads as bare soil); their parks, trees and canals stay what they are. Grey
    # texture outside towns (sand, mudflats, quarries) is what the rules call built-up at
    # this size; the model reads the pattern around it and says it is not a town.
    paved = np.isin(lc.classes, [bare, CLASSES.index("shadow")])
    lc.classes = np.where((lc.classes == built) & ~urban, bare, lc.classes)
    lc.classes = np.where(urban & paved, built, lc.classes).astype(np.int8)
    return f"; residential and industrial land as built-up from the {status('landuse')}"


def add_built_up(lc: LandCover, raster: Raster) -> str:
    """The learned models' built-up land in a land cover: buildings at fine pixels (the
    building model), towns at satellite pixel sizes (this one). Returns the method's
    addition ('' where neither serves)."""
    return learned.add_buildings(lc, raster) or add_urban_land(lc, raster)
