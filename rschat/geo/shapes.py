"""Size and shape words for objects and regions: "small", "large", "square", "circular".

Users ask about "large buildings" or "circular water areas"; these functions turn a
footprint (its area in m2, its pixel mask) into the words, so that every tool that finds
objects answers such questions the same way.

Sizes follow RSVQA's convention, the one published set of such questions on aerial
imagery (Lobry et al., 2020): small under 100 m2, medium 100-500 m2, large 500 m2 and
over. Those are buildings' and land areas' sizes; a tree crown of 500 m2 would be 25 m
across, so trees are sized by crown diameter as foresters say it: small under 5 m
across, medium 5-10 m, large 10 m and over (about 20 and 79 m2 of crown). Shapes are measured on the mask (shapely's minimum rotated rectangle, scikit-image's perimeter):
- rectangular: the region fills at least 85% of its minimum rotated rectangle (an L, a
  ring or a disc, which fills pi/4 = 0.785, falls below);
- square: rectangular with the short side at least 75% of the long one;
- circular: not rectangular, isoperimetric quotient 4*pi*A/P^2 at least 0.7 and a
  minor/major axis ratio at least 0.8 (an ellipse of 2.5:1 is none of the three).
A square counts as rectangular when rectangles are asked for, as in plain speech.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage
from shapely import MultiPoint
from skimage import measure

from rschat.geo.vector import centre_line, label_regions

Size = Literal["small", "medium", "large"]
Shape = Literal["square", "rectangular", "circular"]
# Land-cover areas also take "channel": a river, stream or canal (``channels``), judged on
# the class's whole mask, since a river crosses the image in pieces.
RegionShape = Literal["square", "rectangular", "circular", "channel"]
SIZES: tuple[Size, ...] = ("small", "medium", "large")
SHAPES: tuple[Shape, ...] = ("square", "rectangular", "circular")
MEDIUM_FROM_M2 = 100.0
LARGE_FROM_M2 = 500.0
# Size classes per kind of object: (medium from, large from) in m2, and how to say them.
SizeKind = Literal["area", "tree"]
_BOUNDS: dict[str, tuple[float, float]] = {
    "area": (MEDIUM_FROM_M2, LARGE_FROM_M2),
    "tree": (float(np.pi * 2.5**2), float(np.pi * 5.0**2)),  # crowns 5 m and 10 m across
}
MIN_SHAPE_PX = 16  # a shape needs a few pixels across to be told apart at all
RECT_FILL = 0.85  # share of the minimum rotated rectangle a rectangle fills (a disc: 0.785)
SQUARE_SIDES = 0.75  # short side / long side of a square
ROUND = 0.7  # isoperimetric quotient 4*pi*A/P^2 of a circle (1 ideal; pixel discs measure lower)

SIZE_TEXT = {
    "small": f"small (< {MEDIUM_FROM_M2:g} m2)",
    "medium": f"medium ({MEDIUM_FROM_M2:g}-{LARGE_FROM_M2:g} m2)",
    "large": f"large (>= {LARGE_FROM_M2:g} m2)",
}
TREE_SIZE_TEXT = {
    "small": "small (crown under 5 m across, < 20 m2)",
    "medium": "medium (crown 5-10 m across, 20-79 m2)",
    "large": "large (crown 10 m or more across, >= 79 m2)",
}


def size_text(size: Size, kind: SizeKind = "area") -> str:
    return (TREE_SIZE_TEXT if kind == "tree" else SIZE_TEXT)[size]


def size_of(area_m2: float, kind: SizeKind = "area") -> Size:
    medium_from, large_from = _BOUNDS[kind]
    if area_m2 < medium_from:
        return "small"
    return "medium" if area_m2 < large_from else "large"


def _min_rect(points: np.ndarray) -> tuple[float, float]:
    """Sides of the minimum-area rotated rectangle around points (shapely); (0, 0) when
    the points span no area."""
    rect = MultiPoint(points).minimum_rotated_rectangle
    if rect.geom_type != "Polygon":
        return 0.0, 0.0
    (x0, y0), (x1, y1), (x2, y2) = np.asarray(rect.exterior.coords)[:3]
    return float(np.hypot(x1 - x0, y1 - y0)), float(np.hypot(x2 - x1, y2 - y1))


def shape_of(mask: np.ndarray) -> Shape | None:
    """The shape word for one object's (H, W) bool mask, or None when it is none of them
    (or too small to tell)."""
    area = int(mask.sum())
    if area < MIN_SHAPE_PX:
        return None
    # The rim is enough for the hull (a large region has far more inner pixels).
    ys, xs = np.nonzero(mask & ~ndimage.binary_erosion(mask))
    # Pixel corners, not centres: a 1-pixel-wide bar has a rectangle, not a line.
    corners = np.concatenate([np.stack([xs + dx, ys + dy], axis=1) for dx in (0, 1) for dy in (0, 1)]).astype(float)
    a, b = _min_rect(np.unique(corners, axis=0))
    fill = area / (a * b) if a * b > 0 else 0.0
    sides = min(a, b) / max(a, b) if max(a, b) > 0 else 0.0
    if fill >= RECT_FILL:
        return "square" if sides >= SQUARE_SIDES else "rectangular"
    props = measure.regionprops(mask.astype(np.uint8))[0]
    roundness = 4 * np.pi * area / max(float(props.perimeter), 1.0) ** 2
    if roundness >= ROUND and sides >= 0.8:
        return "circular"  # a disc fills pi/4 = 0.785 of its square: below RECT_FILL
    return None


def size_unresolved(size: Size | None, gsd_m: float | None, kind: SizeKind = "area") -> str | None:
    """Why a size word cannot be judged on these pixels (None when it can): a small or
    medium object must span a few pixels (4) to be told from a large one's part or noise
    (buildings and areas: pixels of 5 m or finer; tree crowns: about 2 m); without a pixel
    size no size is known."""
    if size is None:
        return None
    text = size_text(size, kind)
    if gsd_m is None:
        return f"the image has no pixel size, so '{size}' ({text}) cannot be measured (say 'the pixel size is X m')"
    medium_from = _BOUNDS[kind][0]
    if size != "large" and 4 * gsd_m**2 > medium_from:
        return (
            f"at {gsd_m:g} m pixels a {text} {'crown' if kind == 'tree' else 'area'} is under 4 pixels, too small "
            f"to be measured; this needs pixels of {np.sqrt(medium_from / 4):.2g} m or finer"
        )
    return None


def matches(
    area_m2: float | None, shape: Shape | None, size: Size | None, wanted_shape: Shape | None, kind: SizeKind = "area"
) -> bool:
    """Whether an object with this area and shape is of the asked size and shape; a
    square counts as rectangular, as in plain speech."""
    if size is not None and (area_m2 is None or size_of(area_m2, kind) != size):
        return False
    if wanted_shape is None:
        return True
    return shape == wanted_shape or (wanted_shape == "rectangular" and shape == "square")


def describe(size: Size | None, shape: str | None, kind: SizeKind = "area") -> str:
    """'large (>= 500 m2) square' for a result's scope; '' without either."""
    shown = "channel-shaped (rivers, streams, canals)" if shape == "channel" else shape
    return " ".join(w for w in (size_text(size, kind) if size else "", shown or "") if w)


CHANNEL_ELONGATION = 6.0
CHANNEL_ELONGATION_ALONE = 20.0  # long enough to be a river piece without touching two edges
# A river keeps its width: the 90th percentile of its widths within twice the median (1.4-1.8
# on the Pucallpa Landsat river, 1985-2020); a lake with an outlet is wider at one end (2.2 on
# the flooded NAIP 2012 prairie pothole tile, which read as a river at 3).
CHANNEL_WIDTH_SPREAD = 2.0


def channels(water: np.ndarray) -> np.ndarray:
    """The water shaped as channels: long for its width and of even width. Pieces of a
    river broken by sandbars or a bridge count together when each is unmistakably long;
    a shorter body only when it crosses the image on its own (two edges, over a third of
    its side). Lakes are none."""
    labels, n = label_regions(water)
    found = np.zeros_like(water, dtype=bool)
    h, w = water.shape
    for body in measure.regionprops(labels) if n else []:
        if body.area < 0.001 * water.size:
            continue
        length, widths = centre_line(body.image)  # bounded: thinning costs side cubed
        elongation = length * length / body.area
        if widths.size == 0 or np.percentile(widths, 90) > CHANNEL_WIDTH_SPREAD * max(float(np.median(widths)), 1.0):
            continue
        y0, x0, y1, x1 = body.bbox
        edges = (y0 == 0) + (x0 == 0) + (y1 == h) + (x1 == w)
        crosses = edges >= 2 and length >= min(h, w) / 3  # not a pond in a corner
        if elongation >= CHANNEL_ELONGATION_ALONE or (elongation >= CHANNEL_ELONGATION and crosses):
            found[body.slice] |= body.image
    return found


def within(area_m2: float | None, min_m2: float | None, max_m2: float | None) -> bool:
    """Whether an area lies in the asked bounds ('larger than 200 m2': min 200, exclusive;
    'smaller than 50 m2': max 50, exclusive); an unknown area is in no bounds."""
    if min_m2 is None and max_m2 is None:
        return True
    if area_m2 is None:
        return False
    return (min_m2 is None or area_m2 > min_m2) and (max_m2 is None or area_m2 < max_m2)


def describe_bounds(min_m2: float | None, max_m2: float | None, unit: str = "m2") -> str:
    """'larger than 200 m2', 'of 100-300 m2', 'smaller than 50 m2', or ''; ``unit="ha"``
    gives the bounds in hectares ('larger than 100 ha' for 1 km2)."""
    per = 1e4 if unit == "ha" else 1.0

    def num(v: float) -> str:  # never an exponent: 1e+06 m2 read "0.0001e+0.0006 ha" once
        return f"{v / per:,.10g}"

    if min_m2 is not None and max_m2 is not None:
        return f"of {num(min_m2)}-{num(max_m2)} {unit}"
    if min_m2 is not None:
        return f"larger than {num(min_m2)} {unit}"
    return f"smaller than {num(max_m2)} {unit}" if max_m2 is not None else ""
