"""Rasters, their georeference and their areas; reading, writing, previews, vectors.

No model library is imported here.
"""

import os

# GDAL's block cache defaults to 5% of the machine's memory, which on a large machine is
# most of the budget of a tiled run (tiles are read once, so a cache barely helps). 256 MB
# unless the user set it; GDAL reads this when it first caches a block.
os.environ.setdefault("GDAL_CACHEMAX", "256")

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
