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
    "b": "blue", "blue": "blue", "b2": "blue", "b02": "blue",
    "coastal": "coastal", "coastal aerosol": "coastal", "aerosol": "coastal", "b1": "coastal", "b01": "coastal",
    "g": "green", "green": "green", "b3": "green", "b03": "green",
    "r": "red", "red": "red", "b4": "red", "b04": "red",
    "nir": "nir", "near infrared": "nir", "near-infrared": "nir", "infrared": "nir", "b8": "nir", "b08": "nir",
    "n": "nir",
    "swir1": "swir1", "swir 1": "swir1", "swir-1": "swir1", "swir": "swir1", "b11": "swir1",
    "swir2": "swir2", "swir 2": "swir2", "swir-2": "swir2", "b12": "swir2",
    "rededge": "rededge", "red edge": "rededge", "red-edge": "rededge", "pan": "pan", "panchromatic": "pan",
    "gray": "gray",
    # Sentinel-2's other bands, so that a 13-band L1C stack can be named in full
    "rededge1": "rededge1", "red edge 1": "rededge1", "re1": "rededge1", "b5": "rededge1", "b05": "rededge1",
    "rededge2": "rededge2", "red edge 2": "rededge2", "re2": "rededge2", "b6": "rededge2", "b06": "rededge2",
    "rededge3": "rededge3", "red edge 3": "rededge3", "re3": "rededge3", "b7": "rededge3", "b07": "rededge3",
    "nir narrow": "nir_narrow", "narrow nir": "nir_narrow", "nir2": "nir_narrow", "b8a": "nir_narrow",
    "b08a": "nir_narrow",
    "water vapour": "water_vapour", "water vapor": "water_vapour", "wv": "water_vapour", "b9": "water_vapour",
    "b09": "water_vapour",
    "cirrus": "cirrus", "swir cirrus": "cirrus", "b10": "cirrus",
    "thermal": "thermal", "tir": "thermal",
}  # fmt: skip
# Band numbers (B1-B12, B8A) are Sentinel-2's; Landsat's differ (say the names instead).
# The separator's own spaces sit inside its optional group: two free \s* in a row split a
# run of spaces every way (quadratic: 4,000 spaces held the server 14 s).
_ALIAS_TOKEN = re.compile(
    r"\s*(?:(?:,|/|\band\b)\s*)?("
    + "|".join(re.escape(a) for a in sorted(_ALIASES, key=len, reverse=True))
    + r")(?![a-z0-9])",
    re.I,
)

INDICES = {
    "ndvi": ("nir", "red"),  # vegetation
    "ndwi": ("green", "nir"),  # open water (McFeeters)
    "mndwi": ("green", "swir1"),  # water, robust to built-up (Xu)
    "ndbi": ("swir1", "nir"),  # built-up
}


# A band number beside the name in a description ("B04 red", "B8A narrow NIR", "red (B4)",
# "band 8 - NIR"): the name says which band it is whatever the sensor's numbering.
_NUMBER_BESIDE = re.compile(
    r"^(?:band\s*|b)\d{1,2}a?(?![a-z0-9])[\s:_\-.]*|[\s_\-]*[(\[](?:band\s*|b)?\d{1,2}a?[)\]]$", re.I
)


def normalise_band_name(name: str) -> str | None:
    key = name.strip().lower()
    if key in _ALIASES:
        return _ALIASES[key]
    words = re.sub(r"[\s_]+", " ", _NUMBER_BESIDE.sub("", key).strip(" ()[]"))
    return _ALIASES.get(words) if words and words != key else None


def band_index(raster: Raster, band: str) -> int | None:
    """Index of a named band (normalised vocabulary) in the raster, or None."""
    for i, name in enumerate(raster.band_names):
        if normalise_band_name(name) == band:
            return i
    return None


# "the bands are SWIR1, NIR, red, green": a statement about the image, not the question.
# Also "bands: swir1 nir red green" and "a Landsat composite: SWIR1, NIR, red, green".
BAND_STATEMENT = re.compile(
    r"(?:bands?\s+(?:are|is|order(?:\s+is)?)|\bbands?\s*:|\bcomposite\s*(?:of|:))\s*:?\s*([a-z0-9 ,\-/]+)", re.I
)
# "band 1 is SWIR1, band 2 is NIR, band 3 is red and band 4 is green"
_NUMBERED_BAND = re.compile(r"\bband\s*(\d{1,2})\s*(?:is|=|:)\s*([a-z0-9\-]+)", re.I)


def _numbered_bands(text: str) -> tuple[list[str], int, int] | None:
    """(names, start, end) of 'band 1 is X, band 2 is Y, ...' naming bands 1..N in order."""
    found = list(_NUMBERED_BAND.finditer(text))
    names = {int(m.group(1)): normalise_band_name(m.group(2)) for m in found}
    if len(names) < 2 or sorted(names) != list(range(1, len(names) + 1)) or None in names.values():
        return None
    return [str(names[i]) for i in range(1, len(names) + 1)], found[0].start(), found[-1].end()


def _band_list(text: str) -> tuple[list[str], int, int] | None:
    """(band names, start, end) of a statement of at least two band names in a message
    ('the bands are SWIR1, NIR, red, green'): the names run while they are band names, so
    a question after them ('..., green, how much is water?') is not part of the list."""
    match = BAND_STATEMENT.search(text)
    if not match:
        return _numbered_bands(text)
    names, end = [], match.start(1)
    # Longest names first, so that 'red edge 1' and 'water vapour' are one band each.
    while (token := _ALIAS_TOKEN.match(text, end, match.end(1))) is not None:
        names.append(_ALIASES[re.sub(r"\s+", " ", token.group(1).lower())])
        end = token.end()
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


# Bands 1-3 of a true-colour image rise and fall together (bright roofs are bright in all
# three, shade is dark in all three): on the NAIP tiles in shared/ their pairwise
# correlations are 0.86-0.97. A false-colour composite breaks this: in Landsat's SWIR1,
# NIR, red, the NIR band is anticorrelated with red (-0.26 to -0.41 on the Pucallpa stack).
_VISIBLE_MIN_CORRELATION = 0.5
FALSE_COLOUR = "looks like a false-colour composite"  # in the note; ``band_doubt`` finds it
UNKNOWN_ORDER = "band order is unknown"  # many unnamed bands: likewise


def _sample(data: np.ndarray, nodata: float | None, limit: int = 200_000) -> np.ndarray:
    """(bands, N) float64 pixels with data in every band, at most about ``limit`` of them."""
    flat = data.reshape(data.shape[0], -1)
    step = max(1, flat.shape[1] // limit)
    flat = flat[:, ::step].astype(np.float64)
    valid = np.all(np.isfinite(flat), axis=0)
    if nodata is not None and not np.isnan(nodata):
        valid &= ~np.all(flat == nodata, axis=0)
    return flat[:, valid]


def unnamed_four_bands(data: np.ndarray, nodata: float | None, image: str) -> tuple[tuple[str, ...] | None, str]:
    """How to read a 4-band image whose bands have no names (GDAL marks them gray and
    undefined): (band names or None to leave them unnamed, a note saying what was assumed).

    Most 4-band aerial and satellite products put near-infrared fourth (NAIP: red, green,
    blue, NIR; Planet and Pleiades: blue, green, red, NIR), so when bands 1-3 behave as
    visible bands do and band 4 is not a 0/255 mask, band 4 is read as NIR and NDVI and
    water use it. Otherwise nothing is guessed and the note asks for the order."""
    pixels = _sample(data, nodata)
    say = "say the band order (e.g. 'the bands are red, green, blue, NIR')"
    if pixels.shape[1] < 100:
        return None, f"'{image}' has 4 unnamed bands: bands 1-3 are read as red, green and blue; {say}."
    if np.unique(pixels[3][:5000]).size <= 2:
        return None, f"'{image}' has 4 unnamed bands and band 4 holds two values (a mask): it is not used."
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = np.nan_to_num(np.corrcoef(pixels[:3]), nan=0.0)
    lowest = float(min(corr[0, 1], corr[0, 2], corr[1, 2]))
    if lowest >= _VISIBLE_MIN_CORRELATION:
        return ("red", "green", "blue", "nir"), (
            f"'{image}' has 4 unnamed bands: bands 1-3 vary together as visible bands do, so they are read as red, "
            "green and blue and band 4 as near-infrared (NAIP's order). If the order differs, say the band order "
            "(Planet and Pleiades: 'the bands are blue, green, red, NIR')."
        )
    return None, (
        f"'{image}' has 4 unnamed bands and bands 1-3 do not vary together as red, green and blue do (their "
        f"lowest correlation is {lowest:.2f}): it {FALSE_COLOUR}, so colours, land cover and "
        "indices from it are unreliable until you say the band order (a Landsat composite is often 'the bands "
        "are SWIR1, NIR, red, green')."
    )


def alpha_holds_data(data: np.ndarray, nodata: float | None) -> bool:
    """Whether the last band, tagged alpha, holds more than a 0/255 mask: GDAL tags the
    fourth band alpha when a 4-band file is written as RGB (a NAIP tile warped with its
    profile copied), and its near-infrared then went unused on one date of a pair."""
    last = _sample(data, nodata)[-1]  # spread over the whole image, not its top rows
    if last.size == 0:
        return False
    full = 255.0 if data.dtype == np.uint8 else float(np.nanmax(last))
    # A mask, even with soft edges (0, 128, 200, 255), is mostly 0 and full.
    return bool(np.mean((last != 0) & (last != full)) > 0.5)


def band_doubt(raster: Raster) -> str | None:
    """The note saying that the image's band order is unknown and it is not true colour, or
    None (it goes once the user states the order)."""
    return next((n for n in raster.notes if FALSE_COLOUR in n or UNKNOWN_ORDER in n), None)
