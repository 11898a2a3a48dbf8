"""Training-free land-cover segmentation: spectral rules decided per superpixel.

1. Superpixels: SLIC on the RGB preview (at half resolution for large images), so each
   decision covers a small homogeneous object, not a noisy pixel.
2. Per-superpixel features: CIELAB lightness and chroma, excess green (2g - r - b on
   chromatic coordinates), local texture (std of L*), and, when the bands exist, NDVI,
   NDWI (green/NIR), MNDWI (green/SWIR1) and NDBI (SWIR1/NIR).
3. Rules, in order: cloud, water, shadow, vegetation (trees vs low vegetation by SWIR
   moisture where there is SWIR, else by texture and darkness, or greenness at satellite
   pixel sizes), built-up, bare soil. With NIR/SWIR the indices decide; from RGB alone
   colour and texture do, and dark smooth areas are water when they are still for their
   brightness and form large bodies, shadow otherwise (RGB cannot tell them apart
   spectrally).

Thresholds are the usual ones from the index literature (NDVI > 0.3 vegetation, NDWI >
0 water, NDBI > 0 built-up) and were checked on ../shared/data; see README for figures.
Written here because no maintained library ships a training-free land-cover classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import color, segmentation

from rschat.geo.bands import band_index, spectral_index
from rschat.geo.errors import InputError
from rschat.geo.preview import rgb_preview
from rschat.geo.raster import Raster

CLASSES = ("water", "trees", "low_vegetation", "bare_soil", "built_up", "shadow", "cloud")
PALETTE = {
    "water": (30, 90, 200),
    "trees": (20, 110, 30),
    "low_vegetation": (140, 200, 80),
    "bare_soil": (190, 150, 90),
    "built_up": (220, 40, 60),
    "shadow": (60, 60, 60),
    "cloud": (245, 245, 245),
}
# Texture (local std of L*, 0-100 scale) below which a superpixel is smooth (water, cloud,
# bare fields) and above which it is structured (tree crowns, buildings).
SMOOTH_TEXTURE = 3.5
ROUGH_TEXTURE = 5.0
STILL_WATER = 0.02  # at satellite pixel sizes: dark and smooth = local std of L* under 2% of L*
DARK_L = 38  # L* under which a smooth area may be water (RGB rules)
VEG_NDVI = 0.3  # NDVI above which a pixel is vegetation (index rules)
VEG_GREEN = 0.04  # excess green (2G - R - B) / (R + G + B) above which true colour is vegetation
TREE_DARK_L = 40  # L* under which vegetation is canopy whatever its texture (fine pixels)
DARK_CANOPY_MAX_GSD_M = 2.0  # pixel size from which darkness no longer says canopy
SHADOW_L = 25  # L* under which what is not water is shadow (RGB rules)
FOREST_NDMI = 0.3  # NDMI (NIR - SWIR1) / (NIR + SWIR1) above which vegetation is canopy
# Blue reflectance of vegetation above which a scene is hazy (clear Sentinel-2 L1C
# vegetation ~0.07-0.08, the thin-haze Slovenia scene 0.15): indices are compressed there.
HAZE_BLUE = 0.12
WATER_BLUE_RED = 2.5  # blue over this times red is open water in true colour (satellite pixel sizes)
HERB_GREEN = 0.08  # excess green above which coarse true-colour vegetation is herbaceous
MIN_SIDE = 2  # pixels: superpixels and texture need a neighbourhood
METHOD_NAME = "lite land-cover rules (SLIC superpixels; colour, texture and spectral indices)"


@dataclass
class LandCover:
    classes: np.ndarray  # (H, W) int8: index into CLASSES, -1 = no data
    superpixels: np.ndarray  # (H, W) int32 labels
    used_indices: list[str]  # spectral indices that took part
    # The learned building model's footprints, where it served (fine pixels, RGB), else
    # None: the share of ground under buildings tells settlement from grey sand or rock.
    buildings: np.ndarray | None = None
    # The learned land-use model's shares (% of valid pixels per readable class, largest
    # first) where it served (satellite pixel sizes), else None.
    land_use: dict[str, float] | None = None

    def mask(self, name: str) -> np.ndarray:
        return self.classes == CLASSES.index(name)


def _superpixels(rgb: np.ndarray, valid: np.ndarray, size_px: int = 10) -> np.ndarray:
    h, w = rgb.shape[:2]
    factor = 2 if min(h, w) >= 768 else 1
    small = rgb[::factor, ::factor]
    n = max(16, (small.shape[0] * small.shape[1]) // (size_px * size_px))
    labels = segmentation.slic(small, n_segments=n, compactness=10, start_label=1, channel_axis=-1)
    if factor > 1:
        labels = np.repeat(np.repeat(labels, factor, axis=0), factor, axis=1)[:h, :w]
    labels = labels.astype(np.int32)
    labels[~valid] = 0
    return labels


def local_std(x: np.ndarray, sigma: float) -> np.ndarray:
    mean = ndimage.gaussian_filter(x, sigma)
    return np.sqrt(np.clip(ndimage.gaussian_filter(x * x, sigma) - mean * mean, 0, None))


def is_blank(raster: Raster, valid: np.ndarray) -> bool:
    """Whether every valid pixel has the same value in every band (an empty export, a
    failed download): there is nothing in it to tell apart."""
    whole = bool(valid.all())
    for band in raster.data:
        values = band if whole else band[valid]
        if values.size and values.max() != values.min():
            return False
    return True


def check_has_content(raster: Raster) -> None:
    """InputError for an image with no valid pixel or one value everywhere: rules on a
    blank image would call it all water (dark, smooth, one large body) or all cloud, and a
    uniform body is the worst case of the later steps (a skeleton of the whole image)."""
    valid = raster.valid_mask()
    if not valid.any():
        raise InputError(f"'{raster.name}' has no valid pixels (all no-data): there is no land cover to classify.")
    if min(raster.width, raster.height) < MIN_SIDE:
        raise InputError(
            f"'{raster.name}' is {raster.width}x{raster.height} pixels: too small for land cover, which decides on "
            f"patches of pixels (it needs at least {MIN_SIDE}x{MIN_SIDE})."
        )
    if is_blank(raster, valid):
        value = ", ".join(f"{band.flat[int(np.argmax(valid))]:g}" for band in raster.data[:4])
        raise InputError(
            f"'{raster.name}' is blank: every valid pixel has the same value ({value}) in every band, so there is "
            "no land cover to tell apart. Check the file (an empty export or a failed download?)."
        )


def _common_scale_rgb(raster: Raster) -> np.ndarray:
    """(H, W, 3) red, green, blue on one scale for all three (0-1 at the brightest band's
    99th percentile): the preview stretches each band on its own, which clips the dark end
    of red to 0 and makes any blue-over-red ratio meaningless (a uint16 forest read 34% water)."""
    idx = [band_index(raster, b) for b in ("red", "green", "blue")]
    picked = [i if i is not None else k for k, i in enumerate(idx)] if raster.count >= 3 else [0, 0, 0]
    rgb = np.moveaxis(raster.data[picked].astype(np.float32), 0, -1)
    rgb[~raster.valid_mask()] = np.nan
    top = float(np.nanpercentile(rgb, 99)) if np.isfinite(rgb).any() else 1.0
    return np.nan_to_num(rgb / (top if top > 0 else 1.0))


def classify(raster: Raster) -> LandCover:
    """Land-cover classes for every valid pixel of a raster (see module docstring)."""
    # Long on purpose: the rules read top to bottom in the order they are applied, each
    # class taking only what the ones before it left; split up, the order would hide.
    check_has_content(raster)
    indices = {name: spectral_index(raster, name) for name in ("ndvi", "ndwi", "mndwi", "ndbi")}
    if raster.count < 3 and all(v is None for v in indices.values()):
        raise InputError(
            f"'{raster.name}' has {raster.count} band(s) ({', '.join(raster.band_names)}): land cover needs colour "
            "(red, green, blue) or multispectral bands. A panchromatic image or an elevation model cannot be "
            "classified this way; if the bands are mislabelled, say their order ('the bands are red, green, blue')."
        )
    valid = raster.valid_mask()
    rgb = rgb_preview(raster).astype(np.float32) / 255.0
    # Index rules are robust per pixel, so they get finer superpixels (narrow rivers,
    # field edges); colour rules need larger ones to average out texture.
    labels = _superpixels(rgb, valid, size_px=5 if indices["ndvi"] is not None else 10)
    ids = np.arange(labels.max() + 1)

    counts = np.maximum(np.bincount(labels.ravel(), minlength=len(ids)), 1)

    def per_sp(x: np.ndarray) -> np.ndarray:
        return np.bincount(labels.ravel(), weights=np.nan_to_num(x).ravel(), minlength=len(ids)) / counts

    lab = color.rgb2lab(rgb)
    total = rgb.sum(axis=-1) + 1e-6
    exg = (2 * rgb[..., 1] - rgb[..., 0] - rgb[..., 2]) / total
    L, chroma = per_sp(lab[..., 0]), per_sp(np.hypot(lab[..., 1], lab[..., 2]))
    a_star, b_star = per_sp(lab[..., 1]), per_sp(lab[..., 2])
    texture = per_sp(local_std(lab[..., 0], 1.5))
    green = per_sp(exg)

    used = [k for k, v in indices.items() if v is not None]
    sp_index = {k: per_sp(v) for k, v in indices.items() if v is not None}

    cls = np.full(ids.shape, CLASSES.index("bare_soil"), dtype=np.int8)
    smooth = texture < SMOOTH_TEXTURE
    textured = texture >= ROUGH_TEXTURE
    grey_structure = (chroma < 12) & (L >= 35) & (L <= 88) & textured

    gsd = raster.pixel_size_m()
    coarse = gsd is not None and gsd > 5
    blue_water = None  # pixels blue enough to be water (true colour at satellite pixel sizes)
    if "ndvi" in sp_index:
        ndvi = sp_index["ndvi"]
        water = sp_index["mndwi"] > 0.1 if "mndwi" in sp_index else sp_index["ndwi"] > 0.0
        veg = ndvi > VEG_NDVI
        built = (sp_index["ndbi"] > 0.0) & (ndvi < 0.2) if "ndbi" in sp_index else grey_structure & (ndvi < 0.15)
        shadow = (L < 20) & ~water & ~veg
    else:
        still = (L >= DARK_L) | (texture < STILL_WATER * np.maximum(L, 1.0))  # see below
        if coarse:
            # Satellite pixels from an unstretched true-colour file (Sentinel-2 L1C PNGs) are
            # dark and hazy: every dark texture falls under SMOOTH_TEXTURE and the haze's blue
            # cast reaches dark forest and fields. Dark open water is smooth for its brightness
            # (local std / L* about 0.01 on the RSVQA sea tiles; forest and fields 0.04-0.08);
            # brighter pixels (clouds, sand, bright water) keep the absolute threshold.
            smooth &= still
        veg = (green > VEG_GREEN) | ((a_star < -6) & (L > 15) & ~smooth)
        # Water is still for its brightness at any pixel size. At 0.1-1 m the shaded street,
        # grass or roof under a shadow keeps its texture (local std / L* 0.04-0.13 on the
        # RSVQA-HR tiles, 21 of 23 "water" answers there were shadows), and a shadow is as
        # dark and as blue as a pond; calm water is under STILL_WATER. (Coarse images had
        # this test above, before vegetation: there it also decides canopy under haze.)
        smooth &= still
        dark_smooth = (L < DARK_L) & smooth & ~(green > 0.08)
        # Dark smooth superpixels: water if they join into a large body, shadow if small.
        body = ndimage.label(dark_smooth[labels] & (labels > 0))[0]
        body_px = np.bincount(body.ravel())
        large = (body > 0) & (body_px[body] > max(400, labels.size // 400))
        if coarse:
            large = body > 0  # at this resolution object shadows are not resolved: dark smooth is water
        in_body = per_sp(large.astype(np.float32)) > 0.5
        water = (dark_smooth & in_body) | ((b_star < -4) & smooth & (L < 75))
        shadow = (L < SHADOW_L) & ~water
        if coarse:
            # Water absorbs red: blue over WATER_BLUE_RED times red (and over green) is open
            # water at satellite pixel sizes, smooth or not (sun glint, small clouds and
            # 8-bit noise in a dark lake defeat the stillness test: Lake Granby at 146 m and
            # the Bahamas' sea in Landsat true colour read as trees and low vegetation).
            # Land stays under it even under haze (0-0.5% of the 25 RSVQA Sentinel-2 tiles).
            # Per superpixel, and per pixel at the end: a lake 10 px across shares its
            # superpixels with the shore.
            raw = _common_scale_rgb(raster)
            r_sp, g_sp, b_sp = (per_sp(raw[..., i]) for i in range(3))
            water |= (b_sp > g_sp) & (b_sp > WATER_BLUE_RED * r_sp + 1 / 255)
            blue_water = (raw[..., 2] > raw[..., 1]) & (raw[..., 2] > WATER_BLUE_RED * raw[..., 0] + 1 / 255)
            # Object shadows are below the resolution: what is dark, smooth for its
            # brightness and not green is water; dark and textured is canopy under haze.
            water |= shadow & ~veg & smooth
            veg |= shadow & ~water & ~smooth
            shadow = np.zeros_like(shadow)
        built = grey_structure & ~veg
    # Darkness marks canopy where crowns and their shade are resolved (under 2 m); at 2 m
    # and coarser a dark green crop or meadow is as dark as a wood (NAIP at 5 m: prairie
    # fields read 43% trees by darkness), and only texture tells a stand of trees.
    fine = gsd is None or gsd < DARK_CANOPY_MAX_GSD_M
    trees = veg & (textured | ((L < TREE_DARK_L) & fine))
    blue = band_index(raster, "blue")
    blue_sp = None  # per-superpixel blue reflectance, where the file holds reflectance
    if blue is not None and np.issubdtype(raster.data.dtype, np.floating) and np.nanmax(raster.data[blue]) <= 2.0:
        blue_sp = per_sp(raster.data[blue].astype(np.float32))
    hazy = blue_sp is not None and veg.any() and float(np.median(blue_sp[veg])) > HAZE_BLUE
    if "ndbi" in sp_index and not hazy:
        # SWIR sees canopy water: forest keeps NDMI (= -NDBI) above ~0.3 where grass and
        # crops sit at 0.1-0.26 (measured on the eo-learn Slovenia scenes). Texture cannot
        # tell them apart at 10-20 m, where grass fields are as mottled as crowns. Under
        # haze every index is compressed (forest 0.23, grass 0.20 in the hazy Slovenia
        # scene): no split holds there, and the texture rule above stays.
        trees = veg & (sp_index["ndbi"] < -FOREST_NDMI)
    elif "ndvi" not in sp_index and coarse:
        # True colour at satellite pixel sizes is dark throughout, so darkness says nothing:
        # pasture and crops are bright yellow-green (excess green ~0.15, b* ~ -1 on the RSVQA
        # Sentinel-2 tiles), canopy is dark and drowned in the haze's blue (~0, b* ~ -12).
        trees = veg & (green < HERB_GREEN)
    cloud = (L > 88) & (chroma < 8) & smooth & ~water
    if blue_sp is not None:
        # Surface reflectance: clouds and thick haze are bright in the blue band, which
        # land rarely is (> 0.2), whatever the preview's stretch makes of them.
        cloud |= blue_sp > 0.2

    cls[built] = CLASSES.index("built_up")
    cls[veg & ~trees] = CLASSES.index("low_vegetation")
    cls[trees] = CLASSES.index("trees")
    cls[shadow] = CLASSES.index("shadow")
    cls[water] = CLASSES.index("water")
    cls[cloud] = CLASSES.index("cloud")

    classes = cls[labels]
    if blue_water is not None:
        classes[blue_water & ~cloud[labels]] = CLASSES.index("water")
    classes[labels == 0] = -1
    return LandCover(classes=classes, superpixels=labels, used_indices=used)


def colorize(lc: LandCover) -> np.ndarray:
    """(H, W, 3) uint8 colour map of the classes (black = no data)."""
    out = np.zeros((*lc.classes.shape, 3), dtype=np.uint8)
    for i, name in enumerate(CLASSES):
        out[lc.classes == i] = PALETTE[name]
    return out
