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


# "the bands are SWIR1, NIR, red, green": a statement about the image, not the question.
BAND_STATEMENT = re.compile(r"bands?\s+(?:are|is|order(?:\s+is)?)\s*:?\s*([a-z0-9 ,\-/]+)", re.I)


def _band_list(text: str) -> tuple[list[str], int, int] | None:
    """(band names, start, end) of a statement of at least two band names in a message
    ('the bands are SWIR1, NIR, red, green'): the names run while they are band names, so
    a question after them ('..., green, how much is water?') is not part of the list."""
    match = BAND_STATEMENT.search(text)
    if not match:
        return None
    names, end = [], match.start(1)
    for token in re.finditer(r"\s*(?:,|/|\band\b)?\s*([a-z0-9\-]+)", text[match.start(1) : match.end(1)], re.I):
        name = normalise_band_name(token.group(1))
        if name is None:
            break
        names.append(name)
        end = match.start(1) + token.end()
    return (names, match.start(), end) if len(names) >= 2 else None


def parse_band_order(text: str) -> list[str] | None:
    """Band names stated in a message: 'the bands are SWIR1, NIR, red, green' -> list."""
    found = _band_list(text)
    return None if found is None else found[0]


def without_band_order(text: str) -> str:
    """The message without its statement of the band order (the question that remains)."""
    found = _band_list(text)
    return text if found is None else text[: found[1]] + " " + text[found[2] :]


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
