"""RGB previews of rasters for the screen, and overlays of masks on them.

A uint8 image with three bands is shown as it is. Anything else (uint16 panchromatic,
float reflectance, multispectral) gets a per-band 2-98 percentile stretch over its valid
pixels, so a 16-bit tile never comes out black. Outputs are (H, W, 3) uint8, HWC.
"""

from __future__ import annotations

import numpy as np

from rschat.geo.raster import Raster

_RGB_NAMES = ("red", "green", "blue")


def rgb_band_indices(raster: Raster) -> list[int]:
    """Which bands make the preview: named red/green/blue, else the first three (or one)."""
    lower = [n.lower() for n in raster.band_names]
    if all(n in lower for n in _RGB_NAMES):
        return [lower.index(n) for n in _RGB_NAMES]
    if raster.count >= 3:
        return [0, 1, 2]
    return [0, 0, 0]


def stretch(band: np.ndarray, valid: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """Linear percentile stretch of one band to uint8; invalid pixels become 0."""
    values = band[valid]
    if values.size == 0:
        return np.zeros(band.shape, dtype=np.uint8)
    lo, hi = np.percentile(values, [low, high])
    if hi <= lo:
        hi = lo + 1.0
    out = (band.astype(np.float32) - lo) / (hi - lo)
    out = np.clip(out * 255.0, 0, 255)
    out[~valid] = 0
    return out.astype(np.uint8)


def rgb_preview(raster: Raster) -> np.ndarray:
    """(H, W, 3) uint8 preview of a raster."""
    idx = rgb_band_indices(raster)
    valid = raster.valid_mask()
    if raster.data.dtype == np.uint8 and raster.count >= 3 and idx == [0, 1, 2]:
        out = np.moveaxis(raster.data[idx], 0, -1).copy()
        out[~valid] = 0
        return out
    return np.stack([stretch(raster.data[i], valid) for i in idx], axis=-1)


def overlay_mask(
    rgb: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (255, 40, 40), alpha: float = 0.45
) -> np.ndarray:
    """Tint the True pixels of an (H, W) mask over an (H, W, 3) uint8 image and outline them."""
    from scipy import ndimage

    out = rgb.astype(np.float32).copy()
    tint = np.array(color, dtype=np.float32)
    out[mask] = (1 - alpha) * out[mask] + alpha * tint
    edge = mask & ~ndimage.binary_erosion(mask, iterations=1)
    out[edge] = tint
    return out.astype(np.uint8)
