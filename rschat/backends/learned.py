"""The learned lite detectors: trees, buildings, scene classes and change from the ONNX models in
``checkpoints/lite/`` (see ``lite_models``). Each function returns None when its model is
missing or failed to load, and the caller falls back to its rules.

Inputs are RGB uint8 (H, W, 3) with a pixel size in metres; outputs are in the input's
pixels. A panchromatic image comes as three equal bands (the building model was trained
with grey crops for that).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage import morphology

from rschat.backends.counting_classical import Detection
from rschat.backends.landcover_rules import CLASSES, LandCover
from rschat.backends.lite_models import model, peaks, resample, run_tiled, status, tiled_pixels
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster
from rschat.geo.shapes import shape_of
from rschat.geo.vector import label_regions

# Network tile sides at the model's pixel size: 1024 px runs a 1024 x 1024 image at once,
# 2.2x faster than 512 px tiles (9 runs with their overlaps), for about 300 MB more of ONNX
# Runtime's memory per model; just above 1024 px, 512 px tiles cover less padding.
TILES = (512, 1024)
OVERLAP = 64  # trimmed from inner tile edges: wider than the networks' useful context


def best_tile(shape: tuple[int, int]) -> int:
    """The tile side of TILES that runs the fewest pixels over an image of this shape."""
    return min(TILES, key=lambda side: (tiled_pixels(shape, side, OVERLAP), -side))


def trees(rgb: np.ndarray, gsd_m: float) -> list[Detection] | None:
    """Tree crowns: centres from the heatmap's peaks, crowns as squares of the predicted
    diameter."""
    m = model("trees")
    if m is None:
        return None
    scale = gsd_m / m.card["gsd_m"]
    work = resample(rgb, scale)
    stride = int(m.card["stride"])
    heat, diameter = run_tiled(m, work, best_tile(work.shape[:2]), OVERLAP, stride)
    found = crown_nms(peaks(heat[0], float(m.card["threshold"])), diameter[0], stride)
    h, w = rgb.shape[:2]
    out = []
    for r, c in found:
        x, y = (c * stride + 0.5) / scale, (r * stride + 0.5) / scale
        half = float(diameter[0, r, c]) / scale / 2
        box = (max(0.0, x - half), max(0.0, y - half), min(float(w), x + half), min(float(h), y + half))
        out.append(Detection(box, float(heat[0, r, c]), "tree (crown)"))
    return out


def crown_nms(found: np.ndarray, diameter: np.ndarray, stride: int, share: float = 0.5) -> np.ndarray:
    """Peaks (strongest first) without those inside a stronger peak's crown: a peak closer
    to a kept one than ``share`` of the kept crown's diameter is the same tree (large oaks
    give several peaks). A k-d tree keeps this fast with thousands of peaks."""
    if len(found) == 0:
        return found.reshape(0, 2)
    from scipy.spatial import cKDTree

    points = found.astype(np.float64) * stride
    reach = share * diameter[found[:, 0], found[:, 1]]
    tree = cKDTree(points)
    dropped = np.zeros(len(found), bool)
    kept = []
    for i in range(len(found)):
        if dropped[i]:
            continue
        kept.append(i)
        near = np.asarray(tree.query_ball_point(points[i], float(reach[i]) - 1e-9), int)
        dropped[near[near > i]] = True
    return found[kept]


def building_probability(rgb: np.ndarray, gsd_m: float) -> np.ndarray | None:
    """P(building) for every pixel of the input (float32 H x W), or None without the model."""
    m = model("buildings")
    if m is None:
        return None
    scale = gsd_m / m.card["gsd_m"]
    work = resample(rgb, scale)
    (prob,) = run_tiled(m, work, best_tile(work.shape[:2]), OVERLAP, 1)
    return _back_to(prob[0], rgb.shape[:2])


def _back_to(prob: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A probability map at the model's pixel size, resized to the input's pixels."""
    if prob.shape == tuple(shape):
        return prob
    from PIL import Image

    return np.asarray(Image.fromarray(prob).resize((shape[1], shape[0]), Image.Resampling.BILINEAR))


def change_probability(before_rgb: np.ndarray, after_rgb: np.ndarray, gsd_m: float) -> np.ndarray | None:
    """P(changed) for every pixel of a co-registered pair (float32 H x W), from the
    learned change model; None without it."""
    m = model("change")
    if m is None:
        return None
    scale = gsd_m / m.card["gsd_m"]
    pair = np.concatenate([resample(before_rgb, scale), resample(after_rgb, scale)], axis=2)
    (prob,) = run_tiled(m, pair, best_tile(pair.shape[:2]), OVERLAP, 1)
    return _back_to(prob[0], before_rgb.shape[:2])


def building_mask(rgb: np.ndarray, gsd_m: float) -> np.ndarray | None:
    prob = building_probability(rgb, gsd_m)
    m = model("buildings")
    return None if prob is None or m is None else prob > float(m.card["threshold"])


BUILDING_GSD_M = (0.05, 1.5)  # pixel sizes where single buildings are resolved (the model saw 0.4 m)
MIN_BUILDING_M2 = 10.0  # a garden shed; OpenStreetMap footprints (the model's labels) are rarely smaller


def building_change(
    before_rgb: np.ndarray, after_rgb: np.ndarray, gsd_m: float, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(appeared, gone) masks: buildings the model sees on one date that were mostly not
    there on the other. None without the model."""
    pb = building_probability(before_rgb, gsd_m)
    if pb is None:
        return None
    pa = building_probability(after_rgb, gsd_m)
    assert pa is not None
    threshold = float(model("buildings").card["threshold"])  # type: ignore[union-attr]
    small = max(1, round(MIN_BUILDING_M2 / gsd_m**2)) - 1
    return _new_buildings(pa, pb, threshold, valid, small), _new_buildings(pb, pa, threshold, valid, small)


NEW_BUILDING_SHARE = 0.3  # a building is new when under this share of it was building before


def _new_buildings(now: np.ndarray, then: np.ndarray, threshold: float, valid: np.ndarray, small: int) -> np.ndarray:
    """Footprints on ``now`` (connected parts over the threshold, opened to drop speckle)
    of which under NEW_BUILDING_SHARE was building on ``then``. Whole buildings, not
    pixels: the two dates' probabilities differ at every roof edge and across large roofs
    with the sun and the season, and a pixel difference (now - then > 0.5) made those
    "change". On 100 NAIP pairs two years apart (nearly unchanged) the pixel rule marked
    8.7% of the area as buildings appeared or gone, this one 4.6%; on
    ../shared/data/change, LEVIR asked for building change F1 0.574 -> 0.587."""
    found = ndimage.binary_opening(now > threshold) & valid
    labels, n = ndimage.label(found)
    if n == 0:
        return found
    size = np.bincount(labels.ravel(), minlength=n + 1)
    before = np.bincount(labels.ravel(), weights=(then > threshold).ravel(), minlength=n + 1)
    new = before < NEW_BUILDING_SHARE * size
    new[0] = False
    return morphology.remove_small_objects(new[labels], max_size=small)


CHANGE_GSD_M = (0.1, 1.0)  # pixel sizes the change model judges (it saw 0.45-0.8 m; finer is averaged down)
CONFIRMED_SHARE = 0.3  # a region stands when the change model calls at least this share of it changed
MIN_CONFIRMED_PART_PX = 64  # the rules' smallest region


def confirmed_change(
    regions: np.ndarray, before_rgb: np.ndarray, after_rgb: np.ndarray, gsd_m: float
) -> np.ndarray | None:
    """The change regions (8-connected parts of ``regions``, the rules' mask, as the answer
    reports them) that the learned change model confirms: at least CONFIRMED_SHARE of a
    region's pixels over the model's threshold. Whole regions are kept, so the rules'
    outlines stay and the model judges whether a region is change on the ground; it was
    trained to ignore what the rules' Otsu split cannot (season, sun, a sensor's colour, a
    pixel of misregistration). Inside a region it rejects, its own parts of at least the
    rules' smallest region size stay: a new road across a field whose season changed is one
    large region of the rules. None without the model."""
    m = model("change")
    if m is None:
        return None
    labels, n = label_regions(regions)
    if n == 0:
        return regions.copy()
    prob = change_probability(before_rgb, after_rgb, gsd_m)
    assert prob is not None
    over: np.ndarray = prob > float(m.card["threshold"])
    size = np.bincount(labels.ravel(), minlength=n + 1)
    hits = np.bincount(labels.ravel(), weights=over.ravel(), minlength=n + 1)
    keep = hits >= CONFIRMED_SHARE * size
    keep[0] = False
    kept = keep[labels]
    return kept | morphology.remove_small_objects(regions & ~kept & over, max_size=MIN_CONFIRMED_PART_PX - 1)


def confirmed_in_pair(
    mask: np.ndarray, before: Raster, after: Raster, valid: np.ndarray, assumed_gsd_m: float
) -> np.ndarray | str:
    """``confirmed_change`` for a pair of rasters (``assumed_gsd_m`` where they have no
    pixel size), or why the change model did not judge the regions (not colour, pixels
    out of its range, no model)."""
    if not (true_colour(before) and true_colour(after)):
        return "the change model reads colour (RGB) pairs"
    gsd = before.pixel_size_m()
    lo, hi = CHANGE_GSD_M
    if gsd is not None and not lo <= gsd <= hi:
        return f"the change model judges pixels of {lo}-{hi} m (these are {gsd:.2f} m)"
    b, a = rgb_preview(before), rgb_preview(after)
    b[~valid], a[~valid] = 0, 0  # no data on either date looks the same on both, not like change
    kept = confirmed_change(mask, b, a, gsd or assumed_gsd_m)
    return f"the change model is not available ({status('change')})" if kept is None else kept


def true_colour(raster: Raster) -> bool:
    """Three or more bands that are red, green and blue: named so, or unnamed (a PNG, a
    JPEG). A false-colour image (near-infrared, red, green) is not."""
    names = {n.lower() for n in raster.band_names}
    if names & {"red", "green", "blue", "nir", "near-infrared"}:
        return {"red", "green", "blue"} <= names
    return raster.count >= 3


def add_buildings(lc: LandCover, raster: Raster) -> str:
    """Mark the building model's footprints as built-up in a land cover (over what the
    colour rules called vegetation, soil or shadow; never over water or cloud), for an
    image in memory and for each tile of a large scene alike. Returns the method's
    addition ('' when the model does not serve or the pixels are too coarse)."""
    gsd = raster.pixel_size_m()
    if gsd is None or not BUILDING_GSD_M[0] <= gsd <= BUILDING_GSD_M[1]:
        return ""
    mask = building_mask(rgb_preview(raster), gsd)
    if mask is None:
        return ""
    keep = np.isin(lc.classes, [CLASSES.index("water"), CLASSES.index("cloud"), -1])
    lonely = _far_from_buildings(mask, gsd) & (lc.classes == CLASSES.index("built_up"))
    lc.classes = np.where(lonely, CLASSES.index("bare_soil"), lc.classes)
    lc.classes = np.where(mask & ~keep, CLASSES.index("built_up"), lc.classes).astype(np.int8)
    lc.buildings = mask & ~keep
    return f"; buildings in built-up from the {status('buildings')}, grey ground far from any building as bare soil"


# Built-up land is buildings and the paving around them (drives, yards, streets, car
# parks). Grey textured ground where buildings cover under 1% of the surrounding 100 m is
# sand, rock or dry grass (the colour rules called 35% of the NEON pine-on-sand tile and
# 38% of the oak-savanna tile built-up, with no building in either); a lone false
# footprint of 30 m2 is 0.3% of that and keeps none of it built-up.
NEIGHBOURHOOD_M = 100.0
MIN_BUILDING_SHARE = 0.01


def _far_from_buildings(mask: np.ndarray, gsd_m: float) -> np.ndarray:
    """Pixels whose surrounding NEIGHBOURHOOD_M holds under MIN_BUILDING_SHARE of
    building, on a grid of about 2 m cells (the share changes slowly, and 0.1 m pixels
    would make the window 1000 px wide)."""
    step = max(1, int(round(2.0 / gsd_m)))
    h, w = mask.shape
    hs, ws = -(-h // step), -(-w // step)
    padded = np.zeros((hs * step, ws * step), np.float32)
    padded[:h, :w] = mask
    cells = padded.reshape(hs, step, ws, step).mean(axis=(1, 3))
    size = max(1, int(round(NEIGHBOURHOOD_M / (gsd_m * step))))
    share = ndimage.uniform_filter(cells, size=size, mode="constant")  # beyond the image: no buildings known
    far = share < MIN_BUILDING_SHARE
    return np.repeat(np.repeat(far, step, axis=0), step, axis=1)[:h, :w]


def buildings(rgb: np.ndarray, gsd_m: float) -> list[Detection] | None:
    """Building footprints: connected parts of the mask above the card's minimum area."""
    mask = building_mask(rgb, gsd_m)
    m = model("buildings")
    if mask is None or m is None:
        return None
    labels, n = ndimage.label(mask)
    min_px = float(m.card["min_area_m2"]) / gsd_m**2
    out = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        own = labels[sl] == i
        area = int(own.sum())
        if area >= min_px:
            y, x = sl
            box = (float(x.start), float(y.start), float(x.stop), float(y.stop))
            m2 = area * gsd_m**2
            ring = outline(own, x.start, y.start)
            out.append(Detection(box, m2, "building", area_m2=m2, shape=shape_of(own), outline=ring))
    return out


def outline(own: np.ndarray, x0: int, y0: int) -> tuple[tuple[float, float], ...]:
    """A footprint mask's outer boundary as a closed ring of (x, y) pixel coordinates in
    the image (the mask's crop starts at x0, y0), simplified to within half a pixel: what
    a GIS user loads as the building's polygon."""
    from shapely import Polygon
    from skimage import measure

    contours = measure.find_contours(np.pad(own, 1).astype(np.uint8), 0.5)
    rows_cols = max(contours, key=len)
    # contour points are at pixel centres, padded by one: (row - 1 + 0.5, col - 1 + 0.5)
    ring = Polygon([(c - 0.5 + x0, r - 0.5 + y0) for r, c in rows_cols]).simplify(0.5)
    return tuple((round(x, 2), round(y, 2)) for x, y in ring.exterior.coords)


def scene(rgb: np.ndarray, gsd_m: float | None, max_tiles: int = 64) -> list[tuple[str, float]] | None:
    """Scene classes ranked by probability. With a pixel size, the image is cut into tiles
    of the training scenes' ground size (76.8 m) and the tiles' probabilities averaged (a
    spread of at most ``max_tiles``); without one, or when the image is smaller than a
    tile, the whole image is classified as one scene."""
    m = model("scene")
    if m is None:
        return None
    side, classes = int(m.card["input_side"]), list(m.card["classes"])
    h, w = rgb.shape[:2]
    tile = int(round(m.card["tile_m"] / gsd_m)) if gsd_m else 0
    crops = []
    if tile and tile <= min(h, w):
        rows, cols = max(1, h // tile), max(1, w // tile)
        cells = [(r, c) for r in range(rows) for c in range(cols)]
        if len(cells) > max_tiles:
            cells = [cells[i] for i in np.linspace(0, len(cells) - 1, max_tiles).astype(int)]
        crops = [rgb[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile] for r, c in cells]
    else:
        crops = [rgb]
    from PIL import Image

    batch = np.stack([np.asarray(Image.fromarray(c).resize((side, side), Image.Resampling.BILINEAR)) for c in crops])
    probs = np.concatenate([m.run(batch[i : i + 16].transpose(0, 3, 1, 2))[0] for i in range(0, len(batch), 16)])
    mean = probs.mean(axis=0)
    order = np.argsort(-mean)
    return [(classes[i], float(mean[i])) for i in order]
