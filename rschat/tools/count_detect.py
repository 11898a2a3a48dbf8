"""Which detector finds the objects ``count_objects`` counts in lite mode: the learned tree
and building models, with the rules as their fallback (and the rules' dead-crown finder
beside the tree model), once per image while it lives."""

from __future__ import annotations

import numpy as np

from rschat.backends import counting_classical as cc
from rschat.backends import learned, lite_models
from rschat.geo import memo
from rschat.geo.errors import InputError
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster, connected_to_edge

SUPPORTED = {"tree": "trees", "building": "buildings"}
# Targets the planner knows but lite mode cannot count reliably, with why.
UNRELIABLE = {
    "vehicle": "vehicles are a few pixels across and need a trained detector",
    "ship": "ships need a trained detector (wakes and waves fool simple rules)",
    "pool": "swimming pools need a trained detector",
    "solar_panel": "solar panels need a trained detector",
}
# Pixel sizes assumed only when nothing else is known, per object: tree crowns are counted
# on NEON / drone-like imagery (0.1 m); building images without a georeference are mostly
# aerial or very-high-resolution tiles (LEVIR, SpaceNet: 0.3-0.5 m), the same size change
# detection assumes for a pair. At 0.1 m a LEVIR tile's 18 buildings were read as 1.
ASSUMED_GSD_M = {"tree": 0.1, "building": 0.5}
TREE_MODEL = "learned tree detector (crown-centre heatmap and crown diameter, small U-Net)"
BUILDING_MODEL = "learned building segmenter (small U-Net; footprints are its connected parts)"


def detect_lite(target: str, raster: Raster) -> tuple[list[cc.Detection], str, list[str], list[str], float]:
    """(detections, method, limits, notes, pixel size) from the lite detectors."""
    if target in UNRELIABLE:
        raise InputError(
            f"Counting {target}s is not reliable in lite mode ({UNRELIABLE[target]}). Lite mode counts trees "
            "and buildings (learned lite models, checked on NEON and SpaceNet tiles). Full mode (SAM + CLIP: set RSCHAT_SAM "
            "and RSCHAT_CLIP) counts others."
        )
    gsd, notes = raster.pixel_size_m(), []
    if gsd is None:
        gsd = ASSUMED_GSD_M[target]
        notes.append(
            f"the image has no georeference and no stated pixel size; {gsd} m pixels were assumed "
            "(say 'the pixel size is X m' for a better count)"
        )
    limit = cc.MAX_TREE_GSD_M if target == "tree" else cc.MAX_BUILDING_GSD_M
    if gsd > limit:
        raise InputError(
            f"The pixels are {gsd:.2f} m: too coarse to count single {SUPPORTED[target]} (needs {limit} m or finer). "
            "Ask for the land cover instead (e.g. 'how much is covered by trees?')."
        )
    if target == "tree" and raster.count < 3:
        raise InputError(
            f"'{raster.name}' has {raster.count} band(s): tree crowns are found by their colour, so counting trees "
            "needs an RGB image (buildings can be counted on panchromatic images)."
        )
    rgb = _filled(rgb_preview(raster), raster.valid_mask())
    cc.refuse_blank(rgb)  # before the float copies: a blank 64 MP image would take 2 GB to find nothing
    if target == "tree":
        return (*_trees_lite(rgb, gsd, notes), notes, gsd)
    found = learned.buildings(rgb, gsd)  # panchromatic too: it was trained with pan look-alikes
    if found is not None:
        limits = [
            "learned lite model (trained on OpenAerialMap imagery with OpenStreetMap footprints): touching roofs "
            "may be found as one building (a house with its drive, a terrace). Measured on a tile it never saw "
            "(SpaceNet Atlanta, 43 buildings): 36 found, half of them right, 42% of the buildings found; treat "
            "single buildings and the total as rough"
        ]
        return found, f"{BUILDING_MODEL}: {lite_models.status('buildings')}", limits, notes, gsd
    notes.append(_fallback_note("buildings"))
    dets = cc.count_buildings(rgb.mean(axis=-1).astype(np.float32) / 255.0, gsd)
    limits = [
        "experimental in lite mode: on the SpaceNet test tile the total is close but many single detections "
        "are wrong (lawns, shaded ground); treat the number as rough"
    ]
    return dets, cc.BUILDING_METHOD, limits, notes, gsd


NEAREST_FILL_MAX_PX = 16_000_000  # above this, a no-data edge takes the median colour (memory)


def _filled(rgb: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The picture with the no data along its edge (a warp's fill) given the nearest
    pixel's colour: a black edge is a hard edge the crown and roof finders take for
    objects, and it shifts the rules' image-wide statistics (a quarter of a NEON tile made
    black: 87 trees found in the rest, against 65 in the whole tile). Specks of no data
    inside (OSBS_029 flags its saturated sand, 0.3%) stay as they are: filled, they moved
    that tile's count from 65 to 73 of 61."""
    if valid.all() or not valid.any():
        return rgb
    edge = connected_to_edge(~valid)
    if not edge.any():
        return rgb
    if edge.size > NEAREST_FILL_MAX_PX:  # the index planes would take 8 bytes a pixel: the median colour
        filled = rgb.copy()
        filled[edge] = np.median(rgb[::10, ::10][valid[::10, ::10]], axis=0).astype(rgb.dtype)  # a sample
        return filled
    from scipy import ndimage

    rows, cols = ndimage.distance_transform_edt(edge, return_distances=False, return_indices=True)
    return rgb[rows, cols]


def detected(target: str, raster: Raster) -> tuple[list[cc.Detection], str, list[str], list[str], float]:
    """``detect_lite``, run once per image, pixel size and target while the image lives
    (several questions about one image: all, large, square buildings), as copies."""
    models = (lite_models.status("trees"), lite_models.status("buildings"))
    key = ("detections", target, raster.pixel_size_m(), raster.band_names, raster.nodata, models)
    dets, method, limits, notes, gsd = memo.per_image(raster.data, key, lambda: detect_lite(target, raster))
    return list(dets), method, list(limits), list(notes), gsd


def _trees_lite(rgb: np.ndarray, gsd: float, notes: list[str]) -> tuple[list[cc.Detection], str, list[str]]:
    """(detections, method, limits) for trees: the learned model, or the rules."""
    found = learned.trees(rgb, gsd)
    if found is None:
        notes.append(_fallback_note("trees"))
        dets = cc.count_trees(rgb.astype(np.float32) / 255.0, gsd)
        limits = ["lite mode: crowns that touch may be counted as one, and bright grey ground can pass for dead crowns"]
        return dets, cc.TREE_METHOD, limits
    # The model never saw leafless or dead snags (its data has none), so the rules'
    # dead-crown finder adds those outside the model's crowns: on the NEON SOAP tile
    # (28 of 37 trees dead) this lifts recall from 0.05 to 0.22.
    dead = cc.count_trees(rgb.astype(np.float32) / 255.0, gsd, green=False)
    found += [d for d, inside in zip(dead, _in_any(dead, found), strict=True) if not inside]
    limits = [
        "learned lite model (trained on NAIP urban trees and NEON plots) for crowns, the rules for leafless or "
        "dead ones: crowns that touch may be found as one, and crown boxes are squares of the predicted diameter. "
        "Measured on NEON tiles it never saw: an open pine stand within 7% of the true count (57% of the "
        "detections right), dead snags mostly missed (22% found) and logs on the ground taken for dead crowns"
    ]
    return found, f"{TREE_MODEL}, plus the rules' dead-crown finder: {lite_models.status('trees')}", limits


def _in_any(dets: list[cc.Detection], others: list[cc.Detection]) -> np.ndarray:
    """Whether each detection's centre lies in any of the others' boxes (one array test:
    hundreds of dead-crown candidates against hundreds of crowns took 0.4 s in Python)."""
    if not dets or not others:
        return np.zeros(len(dets), dtype=bool)
    centres = np.array([d.center for d in dets], dtype=np.float64)
    boxes = np.array([o.box for o in others], dtype=np.float64)
    cx, cy = centres[:, :1], centres[:, 1:]
    inside = (boxes[:, 0] <= cx) & (cx <= boxes[:, 2]) & (boxes[:, 1] <= cy) & (cy <= boxes[:, 3])
    return np.asarray(inside.any(axis=1))


def _fallback_note(name: str) -> str:
    return f"the rules counted instead of the learned model: {lite_models.status(name)}"
