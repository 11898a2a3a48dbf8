"""How ``detect_changes`` makes the change mask of an aligned pair, and the limits each way
carries: the colour and NDVI rules (backends.change_classical), their regions kept where
the learned change model confirms them, plus the buildings the learned building model sees
on one date and not the other; or, for building change, those buildings alone. Apart from
the tool's file so the tool reads as inputs -> mask -> figures -> answer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from rschat.backends import change_classical, cover_change, learned, lite_models
from rschat.backends.cover_change import CoverChange
from rschat.geo.bands import band_index, spectral_index
from rschat.geo.errors import InputError
from rschat.geo.preview import rgb_band_indices, rgb_preview
from rschat.geo.raster import Raster
from rschat.tools.base import to_float_rgb

LIMITS = [
    "lite mode: the rules respond to new structures (roofs, roads) and to colour change, "
    "whatever their cause: 'changed' is any change of the ground (new lawns, roads and cleared land as well as "
    "buildings; on LEVIR-CD's pairs, whose labels are buildings only, 1.5-3 times the labelled share), so for "
    "buildings alone ask about them ('how many buildings were built?'). Vegetation of the same kind on both dates (growth, mowing, the season: "
    "canopy stays canopy, grass or crop stays herbaceous) and shadows narrower than the object "
    "scale are left out, so one crop replacing another is not reported; without a near-infrared "
    "band, green-tinted water can pass for vegetation. Small changes (under ~64 pixels) are dropped",
]
SHARE = round(100 * learned.CONFIRMED_SHARE)
CONFIRMED_LIMIT = (
    f"a region of the rules stands only where the learned change model calls at least {SHARE}% of it changed "
    "(or keeps its own parts of it): the model learned from synthetic change (buildings and land pasted into "
    "real NAIP pairs), so a real change unlike those can be dropped, and changes under about 10 m2 are rarely "
    "confirmed. On held-out NAIP pairs two years apart (California, 0.6 m) about 6% of a nearly unchanged pair "
    "still comes out as changed; other sensors are unmeasured"
)
UNCONFIRMED_LIMIT = (
    "the rules' regions were not checked by the learned change model (it judges colour pairs of 0.1-1.0 m, "
    "read whole, not tile by tile): about a fifth of a nearly unchanged pair can come out as changed"
)

BUILDING_LIMITS = [
    "the learned building model on each date: a building counts as appeared (or gone) when under 30% of its "
    "footprint was seen as building on the other date, so an extension joined to a standing building is "
    "reported only when it is most of the joined footprint; "
    "touching buildings count as one, and a change of use or height is not seen",
]


ASSUMED_PAIR_GSD_M = 0.5  # change pairs without a pixel size: typical of aerial and very-high-resolution pairs


@dataclass(frozen=True)
class BuildingChange:
    """Where the learned building model sees a building on one date and not the other."""

    appeared: np.ndarray  # (H, W) bool
    gone: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        return self.appeared | self.gone


def building_change(before: Raster, after: Raster, valid: np.ndarray, grey: bool = False) -> BuildingChange | str:
    """Buildings that appeared or went (post-classification change), or why it cannot be
    judged (the model does not serve, the pixels are too coarse to see single buildings,
    or the images are not colour and ``grey`` is False: the model reads panchromatic
    images, but the hybrid with the colour rules was only measured on colour pairs). On
    the development pairs adding it to the rules' change raises pooled F1 from 0.464 to
    0.559."""
    if not grey and (before.count < 3 or after.count < 3):
        return "the building model needs colour (RGB) images"
    gsd = before.pixel_size_m()
    lo, hi = learned.BUILDING_GSD_M
    if gsd is not None and gsd > hi:
        return f"the pixels ({gsd:.2f} m) are too coarse for single buildings (the model needs {hi} m or finer)"
    if gsd is not None and gsd < lo:
        return f"the pixels ({gsd:.3f} m) are finer than the building model reads ({lo}-{hi} m)"
    found = learned.building_change(rgb_preview(before), rgb_preview(after), gsd or ASSUMED_PAIR_GSD_M, valid)
    if found is None:
        return f"the building model is not available ({lite_models.status('buildings')})"
    return BuildingChange(*found)


def sized(b: BuildingChange, raster: Raster, min_m2: float | None, max_m2: float | None) -> BuildingChange:
    """Only the buildings that appeared or went within the area bounds ('new buildings
    larger than 100 m2'); each building is a connected part of its mask, as counted."""
    if min_m2 is None and max_m2 is None:
        return b
    per_pixel = raster.pixel_area_m2()
    if per_pixel is None:
        raise InputError(
            "I can't sort the buildings by area: the pair has no pixel size (say 'the pixel size is X m')."
        )
    area = np.broadcast_to(per_pixel, b.appeared.shape).astype(np.float64)

    def keep(mask: np.ndarray) -> np.ndarray:
        labels, n = ndimage.label(mask)
        if n == 0:
            return mask
        m2 = np.asarray(ndimage.sum(area, labels, index=np.arange(1, n + 1)))
        ok = np.ones(n, dtype=bool)
        if min_m2 is not None:
            ok &= m2 > min_m2
        if max_m2 is not None:
            ok &= m2 < max_m2
        return np.concatenate([[False], ok])[labels]

    return BuildingChange(keep(b.appeared), keep(b.gone))


ASSUMED_NOTE = (
    f"no pixel size: the learned models read the pair at {ASSUMED_PAIR_GSD_M} m pixels (say 'the pixel size is X m')"
)


def detect(
    target: str, before: Raster, after: Raster, valid: np.ndarray
) -> tuple[np.ndarray, str, list[str], BuildingChange | CoverChange | None, list[str]]:
    """(mask, method, notes, building or land-cover change or None, limits) for a target:
    "any" change, only "building"s that appeared or went, or a land-cover class's loss and
    gain ("trees", "water", ...: backends.cover_change)."""
    notes = [*before.notes, *after.notes]
    if target in cover_change.COVER_CLASSES:
        found = cover_change.cover_change(target, before, after, valid)
        if not found.judged.any():
            raise InputError("No pixel can be judged on both dates (cloud, shadow or no data on one of them).")
        if (why := cover_change.unreliable(found)) is not None:
            notes.append(why)
        return found.mask, cover_change.METHOD, notes, found, list(cover_change.LIMITS)
    assumed = [ASSUMED_NOTE] if before.pixel_size_m() is None else []
    buildings = building_change(before, after, valid, grey=target == "building")
    model = f"{lite_models.status('buildings')} on both dates"
    if target == "building":
        if isinstance(buildings, str):
            raise InputError(
                f"Building change cannot be measured here: {buildings}. Ask what changed instead (any change)."
            )
        method = f"buildings that appeared or went: {model}, compared date to date (post-classification change)"
        return buildings.mask, method, notes + assumed, buildings, list(BUILDING_LIMITS)
    ndvi = spectral_index(before, "ndvi"), spectral_index(after, "ndvi")
    both = None if ndvi[0] is None or ndvi[1] is None else (ndvi[0], ndvi[1])
    out = change_classical.detect(to_float_rgb(before), to_float_rgb(after), valid=valid, ndvi=both)
    # The rules' regions that the learned change model confirms (where it serves and the pixels
    # suit it). On the development pairs, with the buildings below, pooled F1 0.559 -> 0.571; on
    # 192 held-out NAIP pairs two years apart (nearly unchanged) 24.1% -> 5.7% flagged.
    confirmed = learned.confirmed_in_pair(out.mask, before, after, valid, ASSUMED_PAIR_GSD_M)
    mask, method, limits = out.mask, change_classical.METHOD_NAME, [*LIMITS, UNCONFIRMED_LIMIT]
    if isinstance(confirmed, str):
        notes.append(f"change regions not checked by a learned model: {confirmed}")
    else:
        mask, limits = confirmed, [*LIMITS, CONFIRMED_LIMIT]
        method += f"; a region is kept where the {lite_models.status('change')} calls at least {SHARE}% of it changed"
    if not (isinstance(confirmed, str) and isinstance(buildings, str)):
        notes += assumed  # a learned model ran at the assumed pixel size
    if isinstance(buildings, str):
        return mask, method, notes, None, limits
    # hybrid: the rules' change, plus buildings that appeared or went
    return mask | buildings.mask, f"{method}; plus buildings that appeared or went ({model})", notes, None, limits


# -- band choice for the tiled detector (backends.change_tiled) ---------------------------


def tiled_bands(before: Raster, after: Raster) -> dict:
    """Each file's own RGB bands (one may be stored blue-green-red) and, where both files
    have them, red and near-infrared for NDVI: the tiled detector's band arguments."""
    rgb, after_rgb = tuple(rgb_band_indices(before)), tuple(rgb_band_indices(after))
    red_nir, after_red_nir = _red_nir(before), _red_nir(after)
    if red_nir is None or after_red_nir is None:
        red_nir = after_red_nir = None
    return {
        "bands": rgb,
        "after_bands": None if after_rgb == rgb else after_rgb,
        "red_nir": red_nir,
        "after_red_nir": None if after_red_nir == red_nir else after_red_nir,
    }


def _red_nir(raster: Raster) -> tuple[int, int] | None:
    """The red and near-infrared band indices of one file, where it has both."""
    red, nir = band_index(raster, "red"), band_index(raster, "nir")
    return None if red is None or nir is None else (red, nir)
