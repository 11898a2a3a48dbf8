"""Training-free object counting: tree crowns (blob detection) and buildings (shape rules).

Trees. Crowns are blobs a few metres across in two evidence maps, each self-normalised
by its 99.5th percentile: living crowns in excess green, leafless or dead crowns in
"bright, grey and textured" (L* minus chroma plus texture). Laplacian-of-Gaussian blob
detection (scikit-image ``blob_log``) runs at 0.2-0.25 m per pixel over crown radii of
0.7-3 m; dead-crown blobs that overlap a living one are dropped. Measured on the three
NEON tiles of ../shared/data/counting: see README.

Buildings. Roofs are smooth, mid-grey, compact and rectangular: low local texture and a
mid-range brightness make candidates, which are kept when their area (40-600 m2),
solidity, rectangularity (area over the minimum rotated rectangle) and elongation fit a
house. This is weak evidence under tree canopy; the tool says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage
from shapely.geometry import MultiPoint
from skimage import color, feature, measure, morphology

from rschat.geo.errors import InputError
from rschat.geo.shapes import Shape

TREE_METHOD = "lite tree-crown detector (excess-green and dead-crown evidence, Laplacian-of-Gaussian blobs)"
BUILDING_METHOD = "lite building detector (smooth mid-grey compact rectangles; shape rules)"
MAX_TREE_GSD_M = 0.6  # coarser pixels cannot resolve single crowns
MAX_BUILDING_GSD_M = 1.5


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels
    score: float
    kind: str  # e.g. "tree (green crown)", "tree (leafless/dead crown)", "building"
    area_m2: float | None = None  # footprint area, where the detector outlines the object
    shape: Shape | None = None  # the outline's shape word (rschat.geo.shapes), None when it has none
    # The footprint's outline, a closed ring of (x, y) pixel corners, where the detector
    # outlines the object (the building model's masks); None for boxes only.
    outline: tuple[tuple[float, float], ...] | None = None

    @property
    def center(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2

    def shifted(self, dx: float, dy: float) -> Detection:
        """The detection moved by (dx, dy) pixels (a tile's detections into the file's grid)."""
        x0, y0, x1, y1 = self.box
        ring = None if self.outline is None else tuple((x + dx, y + dy) for x, y in self.outline)
        return replace(self, box=(x0 + dx, y0 + dy, x1 + dx, y1 + dy), outline=ring)


def _local_std(x: np.ndarray, sigma: float) -> np.ndarray:
    mean = ndimage.gaussian_filter(x, sigma)
    return np.sqrt(np.clip(ndimage.gaussian_filter(x * x, sigma) - mean * mean, 0, None))


def _zscore(x: np.ndarray) -> np.ndarray:
    return (x - np.median(x)) / (x.std() + 1e-6)


def _unit(x: np.ndarray) -> np.ndarray:
    return np.clip(x / (np.percentile(x, 99.5) + 1e-6), 0, 1)


def _blobs(score: np.ndarray, px_per_m: float, r_min_m: float, r_max_m: float, threshold: float, step: int):
    # float32: the eight Laplacians of Gaussian run twice as fast as on float64, and
    # the blobs found on the NEON and NAIP tiles are the same.
    small = np.ascontiguousarray(score[::step, ::step], dtype=np.float32)
    px = px_per_m / step
    found = blob_log_in_halves(
        small, min_sigma=r_min_m * px / np.sqrt(2), max_sigma=r_max_m * px / np.sqrt(2), threshold=threshold
    )
    return [(y * step, x * step, s * step * np.sqrt(2), float(small[int(y), int(x)])) for y, x, s in found]


BLOB_OVERLAP = 0.3  # blobs sharing more of the smaller one's disc than this are one (the smaller goes)
_HALVES_FROM_PX = 512  # smaller images: one call is as fast


def blob_log_in_halves(image: np.ndarray, min_sigma: float, max_sigma: float, threshold: float) -> np.ndarray:
    """scikit-image's blob_log (8 scales), run on the top and bottom halves of a large
    image in two threads: its Gaussian filters and maximum filter release the GIL and run
    on one core each, so two cores take about half the time (the tree tool's 1.5 s target
    on 2 cores). Each half carries a margin of 4 sigma so that its filters see what the
    whole image's would; a blob belongs to the half its centre is in, and blobs across the
    seam are pruned as blob_log prunes (the smaller of two that overlap goes)."""
    from concurrent.futures import ThreadPoolExecutor

    h = image.shape[0]
    args = {"min_sigma": min_sigma, "max_sigma": max_sigma, "num_sigma": 8, "threshold": threshold}
    if h < _HALVES_FROM_PX:
        return feature.blob_log(image, overlap=BLOB_OVERLAP, **args)
    mid, margin = h // 2, int(np.ceil(4 * max_sigma)) + 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        top, bottom = pool.map(
            lambda part: feature.blob_log(part, overlap=BLOB_OVERLAP, **args),
            (image[: mid + margin], image[mid - margin :]),
        )
    bottom = bottom + np.array([mid - margin, 0, 0])
    blobs = np.concatenate([top[top[:, 0] < mid], bottom[bottom[:, 0] >= mid]]).reshape(-1, 3)
    return _pruned_across(blobs, mid, 2 * np.sqrt(2) * max_sigma)


def _pruned_across(blobs: np.ndarray, seam: int, reach: float) -> np.ndarray:
    """Blobs near the seam that overlap one from the other half by more than BLOB_OVERLAP
    of the smaller's disc lose the smaller (radius sigma * sqrt(2), as blob_log)."""
    near = np.flatnonzero(np.abs(blobs[:, 0] - seam) < reach)
    drop: set[int] = set()
    for a in near:
        for b in near:
            if a >= b or a in drop or b in drop or (blobs[a, 0] < seam) == (blobs[b, 0] < seam):
                continue
            r1, r2 = blobs[a, 2] * np.sqrt(2), blobs[b, 2] * np.sqrt(2)
            d = float(np.hypot(*(blobs[a, :2] - blobs[b, :2])))
            if _disc_overlap(d, r1, r2) > BLOB_OVERLAP:
                drop.add(int(a) if r1 < r2 else int(b))
    return np.delete(blobs, sorted(drop), axis=0)


def _disc_overlap(d: float, r1: float, r2: float) -> float:
    """The area two discs share, as a share of the smaller's area."""
    small, large = sorted((r1, r2))
    if d >= r1 + r2:
        return 0.0
    if d <= large - small:
        return 1.0
    a = small**2 * np.arccos((d**2 + small**2 - large**2) / (2 * d * small))
    b = large**2 * np.arccos((d**2 + large**2 - small**2) / (2 * d * large))
    c = 0.5 * np.sqrt((-d + small + large) * (d + small - large) * (d - small + large) * (d + small + large))
    return float((a + b - c) / (np.pi * small**2))


def refuse_blank(image: np.ndarray) -> None:
    """InputError for an image with one value everywhere: a blank export has nothing to
    count, and its filters would run for minutes on a large one to find nothing."""
    if image.size and image.max() == image.min():
        raise InputError(
            "The image is blank: every pixel of its picture has the same value, so there is nothing to count. "
            "Check the file (an empty export or a failed download?)."
        )


def _living(rgb: np.ndarray, px: float) -> np.ndarray:
    """Living-crown evidence: smoothed excess green, as a one-sided z-score."""
    exg = (2 * rgb[..., 1] - rgb[..., 0] - rgb[..., 2]) / (rgb.sum(axis=-1) + 1e-6)
    return np.clip(_zscore(ndimage.gaussian_filter(exg, 0.1 * px)), 0, None)


def count_trees(rgb: np.ndarray, gsd_m: float, green: bool = True) -> list[Detection]:
    """Tree crowns in an (H, W, 3) float RGB image in [0, 1] with pixels of ``gsd_m`` metres;
    ``green=False``: only the leafless or dead ones (the learned model finds the others)."""
    refuse_blank(rgb)
    px = 1.0 / gsd_m
    lab = color.rgb2lab(rgb)
    lightness, chroma = lab[..., 0], np.hypot(lab[..., 1], lab[..., 2])
    texture = _zscore(ndimage.gaussian_filter(_local_std(lightness, 0.15 * px), 0.3 * px))
    dead = _zscore(ndimage.gaussian_filter(lightness, 0.4 * px)) - _zscore(ndimage.gaussian_filter(chroma, 0.4 * px))
    dead = np.clip(dead + texture, 0, None)

    step = max(1, int(0.25 * px))
    green_blobs = _blobs(_unit(_living(rgb, px)), px, 0.7, 3.0, 0.3, step) if green else []
    dead_blobs = _blobs(_unit(dead), px, 0.5, 2.5, 0.4, step)
    kept = [(y, x, r, s, "tree (green crown)") for y, x, r, s in green_blobs]
    # A dead-crown blob is kept when it overlaps no blob kept before it (living ones first).
    # Kept centres and radii live in arrays, so each test is one vectorised distance.
    centres = np.zeros((len(kept) + len(dead_blobs), 2))
    radii = np.zeros(len(centres))
    for n, (y, x, r, *_) in enumerate(kept):
        centres[n], radii[n] = (y, x), r
    n = len(kept)
    for y, x, r, s in dead_blobs:
        if not (np.hypot(centres[:n, 0] - y, centres[:n, 1] - x) <= r + radii[:n]).any():
            kept.append((y, x, r, s, "tree (leafless/dead crown)"))
            centres[n], radii[n] = (y, x), r
            n += 1
    h, w = rgb.shape[:2]
    return [
        Detection((max(0.0, x - r), max(0.0, y - r), min(w, x + r), min(h, y + r)), s, kind)
        for y, x, r, s, kind in kept
    ]


def count_buildings(gray: np.ndarray, gsd_m: float) -> list[Detection]:
    """Building candidates in an (H, W) float image in [0, 1] with ``gsd_m`` metre pixels."""
    refuse_blank(gray)
    px = 1.0 / gsd_m
    smooth = ndimage.median_filter(gray, 3)
    texture = _local_std(smooth, 2.0 * px)
    lo, hi = np.percentile(smooth, [10, 97])
    candidates = (texture < np.percentile(texture, 50)) & (smooth > lo) & (smooth < hi)
    candidates = morphology.opening(candidates, morphology.disk(2))
    out: list[Detection] = []
    for region in measure.regionprops(measure.label(candidates)):
        area_m2 = region.area * gsd_m**2
        if not 40 <= area_m2 <= 600 or region.solidity < 0.8:
            continue
        if region.axis_minor_length <= 0 or region.axis_major_length / region.axis_minor_length > 4:
            continue
        rect = MultiPoint(region.coords[:, ::-1].astype(float)).minimum_rotated_rectangle
        if region.area / max(rect.area, 1.0) < 0.6:
            continue
        y0, x0, y1, x1 = region.bbox
        out.append(Detection((float(x0), float(y0), float(x1), float(y1)), float(region.solidity), "building"))
    return out
