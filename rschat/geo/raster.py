"""The ``Raster`` value: pixels plus where they are on the ground.

Pixels are stored band-first, ``data.shape == (bands, H, W)``, in their original dtype.
Pixel coordinates are (col, row) = (x, y) with the origin at the top-left corner of the
top-left pixel; ``transform`` (an affine) maps them to map coordinates in ``crs``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from rschat.geo.area import pixel_area_grid


@dataclass
class Raster:
    data: np.ndarray  # (bands, H, W), any numeric dtype
    crs: CRS | None = None
    transform: Affine | None = None
    nodata: float | None = None
    band_names: tuple[str, ...] = ()
    date: dt.date | None = None
    name: str = "image"
    # Ground sample distance stated by the user (metres per pixel) for a raster with no
    # georeference; used for areas only, never invented.
    gsd_m: float | None = None
    notes: list[str] = field(default_factory=list)
    # For a scene too large to hold whole: the file that tiled tools read by windows
    # (a geo.windowed.RasterSource); ``data`` is then an overview of it. None otherwise.
    source: Any = None

    def __post_init__(self) -> None:
        if self.data.ndim == 2:
            self.data = self.data[None]
        if self.data.ndim != 3:
            raise ValueError(f"Raster data must be (bands, H, W), got shape {self.data.shape}")
        if not self.band_names:
            self.band_names = tuple(f"band {i + 1}" for i in range(self.data.shape[0]))

    @property
    def date_label(self) -> str:
        """The date as known: '2015-09-26', or '1985' when only the year was in the file's
        name (held as 1 July for ordering and trends, never shown as a day)."""
        if self.date is None:
            return ""
        if (self.date.month, self.date.day) == (7, 1) and not re.search(r"0?7\D?01", self.name):
            return str(self.date.year)
        return self.date.isoformat()

    @property
    def count(self) -> int:
        return int(self.data.shape[0])

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None and not self.transform.is_identity

    def valid_mask(self) -> np.ndarray:
        """(H, W) bool: pixels with data in every band (not nodata, not NaN)."""
        valid = np.ones((self.height, self.width), dtype=bool)
        if np.issubdtype(self.data.dtype, np.floating):
            valid &= np.all(np.isfinite(self.data), axis=0)
        if self.nodata is not None and not np.isnan(self.nodata):
            valid &= ~np.all(self.data == self.nodata, axis=0)
        return valid

    def pixel_area_m2(self) -> np.ndarray | None:
        """Ground area of each pixel in m2, broadcastable to (H, W); None if unknown.

        See ``rschat.geo.area`` for how each kind of CRS is handled.
        """
        if self.georeferenced:
            assert self.crs is not None and self.transform is not None
            return pixel_area_grid(self.crs, self.transform, self.height, self.width)
        if self.gsd_m:
            return np.full((1, 1), self.gsd_m**2)
        return None

    def area_m2(self, mask: np.ndarray) -> float | None:
        """Ground area in m2 of the True pixels of an (H, W) mask; None if unknown."""
        per_pixel = self.pixel_area_m2()
        if per_pixel is None:
            return None
        return float(np.sum(np.broadcast_to(per_pixel, mask.shape), where=mask.astype(bool)))

    def pixel_size_m(self) -> float | None:
        """Mean ground sample distance in metres (square root of the mean pixel area)."""
        per_pixel = self.pixel_area_m2()
        return None if per_pixel is None else float(np.sqrt(np.mean(per_pixel)))

    def crop(self, box: tuple[int, int, int, int]) -> Raster:
        """The pixels inside an XYXY pixel box (end exclusive), with the transform moved."""
        x0, y0, x1, y1 = clip_box(box, self.width, self.height)
        transform = self.transform @ Affine.translation(x0, y0) if self.transform is not None else None
        return replace(self, data=self.data[:, y0:y1, x0:x1], transform=transform, notes=list(self.notes), source=None)

    def describe_georef(self) -> str:
        if self.georeferenced:
            assert self.crs is not None
            epsg = self.crs.to_epsg()
            crs = f"EPSG:{epsg}" if epsg else self.crs.to_string()[:60]
            return f"{crs}, {self.pixel_size_m():.2f} m pixels"
        if self.gsd_m:
            return f"no georeference, stated pixel size {self.gsd_m} m"
        return "no georeference"


def clip_box(box: tuple[int, int, int, int] | list[int], width: int, height: int) -> tuple[int, int, int, int]:
    """An XYXY pixel box put in order and clipped to the image; ValueError if empty."""
    x0, x1 = sorted((int(box[0]), int(box[2])))
    y0, y1 = sorted((int(box[1]), int(box[3])))
    x0, x1 = max(0, x0), min(width, x1)
    y0, y1 = max(0, y0), min(height, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        raise ValueError(f"the box {list(box)} does not cover the {width}x{height} image")
    return x0, y0, x1, y1


def connected_to_edge(mask: np.ndarray) -> np.ndarray:
    """The True pixels of an (H, W) mask connected to the image's frame: a warp's or a
    crop's fill, told from a dark object or a speck inside the picture."""
    from scipy import ndimage

    seeds = np.zeros_like(mask, dtype=bool)
    seeds[[0, -1], :], seeds[:, [0, -1]] = mask[[0, -1], :], mask[:, [0, -1]]
    return np.asarray(ndimage.binary_propagation(seeds, mask=mask), dtype=bool)
