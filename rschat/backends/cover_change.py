"""Change of one land-cover class between two dates: post-classification comparison.

Each date is classified on its own by the land-cover rules (with the building model's
footprints as built-up where it serves), and the class's pixels on one date and not the
other are its loss and its gain. This answers "how much forest was lost?", which the
any-change detector cannot: it reports every change, whatever the class. Pixels that are
cloud, shadow or no data on either date are judged on neither.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rschat.backends import landcover_rules as lcr
from rschat.backends import landuse
from rschat.geo.raster import Raster

# The classes whose change can be asked for ("vegetation" is trees and low vegetation).
COVER_CLASSES = ("water", "trees", "low_vegetation", "vegetation", "bare_soil", "built_up")
_UNJUDGED = ("cloud", "shadow")

METHOD = (
    "land cover on each date by the lite rules (colour, NDVI where there is near-infrared, texture), compared "
    "pixel by pixel: the class on the before date and not the after is lost, the reverse gained"
)
LIMITS = [
    "each date is classified on its own: haze, season or a different sensor on one date reads as loss or gain, "
    "and the classes are cover, not use (a clear-cut is lost trees whether or not it grows back). Cloud and "
    "shadow on either date are left out",
]


@dataclass(frozen=True)
class CoverChange:
    """Where a class was lost and gained, and where it stood on each date (judged pixels)."""

    target: str
    lost: np.ndarray  # (H, W) bool
    gained: np.ndarray
    before: np.ndarray  # the class on the before date
    after: np.ndarray
    judged: np.ndarray  # valid on both dates, neither cloud nor shadow
    # Every pixel's class on each date (indices into landcover_rules.CLASSES, -1 no data):
    # what the loss became and what the gain was before ("what did the forest turn into?").
    classes_before: np.ndarray | None = None
    classes_after: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray:
        return self.lost | self.gained


def _class_mask(raster: Raster, target: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(the class, pixels that cannot be judged, every pixel's class) on one date."""
    lc = lcr.classify(raster)
    if target == "built_up":  # buildings, or towns at satellite pixel sizes (the models cost time: only here)
        landuse.add_built_up(lc, raster)
    names = ("trees", "low_vegetation") if target == "vegetation" else (target,)
    found = np.isin(lc.classes, [lcr.CLASSES.index(n) for n in names])
    unjudged = (lc.classes < 0) | np.isin(lc.classes, [lcr.CLASSES.index(n) for n in _UNJUDGED])
    return found, unjudged, lc.classes


def cover_change(target: str, before: Raster, after: Raster, valid: np.ndarray) -> CoverChange:
    """The class's loss and gain between two aligned rasters (see the module doc)."""
    if target not in COVER_CLASSES:
        raise ValueError(f"no land-cover class {target!r} (one of {', '.join(COVER_CLASSES)})")
    was, unjudged_before, classes_before = _class_mask(before, target)
    now, unjudged_after, classes_after = _class_mask(after, target)
    judged = valid & ~unjudged_before & ~unjudged_after
    was, now = was & judged, now & judged
    # Every pixel counts, single ones too: the cover on each date, less what was lost, plus
    # what was gained, is the cover on the other date, to the pixel (specks left out of the
    # loss would break that sum in the answer).
    return CoverChange(target, was & ~now, now & ~was, was, now, judged, classes_before, classes_after)


def transitions(c: CoverChange, pixels: np.ndarray, became: bool) -> list[tuple[str, int]]:
    """What the lost pixels became on the after date (``became``), or what the gained ones
    were on the before date: [(class, pixels)], largest first."""
    classes = c.classes_after if became else c.classes_before
    if classes is None:
        return []
    counts = np.bincount(classes[pixels & (classes >= 0)].astype(np.int64), minlength=len(lcr.CLASSES))
    return sorted(((lcr.CLASSES[i], int(n)) for i, n in enumerate(counts) if n), key=lambda t: -t[1])


AGREEMENT = 0.3  # under this share of the smaller date's cover found on both dates, the dates disagree


def unreliable(c: CoverChange) -> str | None:
    """A warning when the two dates' classifications barely agree on where the class is: on
    the Pucallpa pair (Landsat, 1985 and 2020) built-up land is found on neither date where
    it is on the other, so "all of it lost" would be the classifier's disagreement, not the
    city's."""
    smaller = min(int(c.before.sum()), int(c.after.sum()))
    if smaller == 0:
        return None
    both = int((c.before & c.after).sum())
    if both >= AGREEMENT * smaller:
        return None
    name = c.target.replace("_", " ")
    return (
        f"the two dates agree on only {100 * both / smaller:.0f}% of the {name} (of the date with less of it): the "
        "classifications disagree, so much of the loss and gain may be the classifier's (haze, season, sensor), "
        "not the ground's. Check the overlay"
    )
