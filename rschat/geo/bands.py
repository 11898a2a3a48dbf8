"""Which band is which, and the spectral indices built from them.

Band names come from the GeoTIFF's band descriptions or colour interpretation, or from
the user ("the bands are SWIR1, NIR, red, green"). Names are normalised to a small
vocabulary: blue, green, red, nir, swir1, swir2 (plus rededge, pan, gray). Indices are
computed in float32 and are NaN where the denominator is zero or the pixel is invalid.
"""

from __future__ import annotations

import re

import numpy as np

from rschat.geo.raster import Raster

_ALIASES = {
    "b": "blue", "blue": "blue", "b2": "blue", "coastal": "coastal",
    "g": "green", "green": "green", "b3": "green",
    "r": "red", "red": "red", "b4": "red",
    "nir": "nir", "near infrared": "nir", "near-infrared": "nir", "infrared": "nir", "b8": "nir", "n": "nir",
    "swir1": "swir1", "swir 1": "swir1", "swir-1": "swir1", "swir": "swir1", "b11": "swir1",
    "swir2": "swir2", "swir 2": "swir2", "swir-2": "swir2", "b12": "swir2",
    "rededge": "rededge", "red edge": "rededge", "pan": "pan", "panchromatic": "pan", "gray": "gray",
}  # fmt: skip

INDICES = {
    "ndvi": ("nir", "red"),  # vegetation
    "ndwi": ("green", "nir"),  # open water (McFeeters)
    "mndwi": ("green", "swir1"),  # water, robust to built-up (Xu)
    "ndbi": ("swir1", "nir"),  # built-up
}


def normalise_band_name(name: str) -> str | None:
    return _ALIASES.get(name.strip().lower())


def band_index(raster: Raster, band: str) -> int | None:
    """Index of a named band (normalised vocabulary) in the raster, or None."""
    for i, name in enumerate(raster.band_names):
        if normalise_band_name(name) == band:
            return i
    return None


def parse_band_order(text: str) -> list[str] | None:
    """Band names stated in a message: 'the bands are SWIR1, NIR, red, green' -> list."""
    match = re.search(r"bands?\s+(?:are|is|order(?:\s+is)?)\s*:?\s*([a-z0-9 ,\-/]+)", text, re.I)
    if not match:
        return None
    parts = [p for p in re.split(r"\s*(?:,|/|\band\b)\s*", match.group(1).strip()) if p]
    names = [normalise_band_name(p) for p in parts]
    if len(names) < 2 or any(n is None for n in names):
        return None
    return [n for n in names if n is not None]


def spectral_index(raster: Raster, index: str) -> np.ndarray | None:
    """(H, W) float32 normalised difference index, or None if a band is missing. A band
    that already is the index (named 'NDVI', as in an NDVI product) is used as it is."""
    for i, name in enumerate(raster.band_names):
        if name.strip().lower() == index:
            out = raster.data[i].astype(np.float32)
            out[~raster.valid_mask()] = np.nan
            return out
    a_name, b_name = INDICES[index]
    ia, ib = band_index(raster, a_name), band_index(raster, b_name)
    if ia is None or ib is None:
        return None
    a = raster.data[ia].astype(np.float32)
    b = raster.data[ib].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - b) / (a + b)
    out[~raster.valid_mask()] = np.nan
    return out


def available_indices(raster: Raster) -> list[str]:
    names = {n.strip().lower() for n in raster.band_names}
    return [
        name
        for name, bands in INDICES.items()
        if name in names or all(band_index(raster, b) is not None for b in bands)
    ]
