"""Rasters, their georeference and their areas; reading, writing, previews, vectors.

No model library is imported here.
"""

from rschat.geo.errors import InputError
from rschat.geo.io import read_raster, write_geotiff, write_png
from rschat.geo.pair import align_pair
from rschat.geo.preview import overlay_mask, rgb_preview
from rschat.geo.raster import Raster

__all__ = [
    "InputError",
    "Raster",
    "align_pair",
    "overlay_mask",
    "read_raster",
    "rgb_preview",
    "write_geotiff",
    "write_png",
]
