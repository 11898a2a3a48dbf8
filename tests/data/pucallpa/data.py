"""Build the small time-series fixture from ../shared/data (outputs are committed).

Three Landsat composites of Pucallpa, Peru (1985, 2000, 2020; bands SWIR1, NIR, red,
green; EPSG:4326), cut to a 160 x 160 window over the Ucayali river so that river
migration shows. Source: opengeos/data (MIT); Landsat imagery is public domain (USGS).
"""

from pathlib import Path

import rasterio
from rasterio.windows import Window

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[3] / "shared" / "data" / "timeseries" / "landsat_pucallpa"
WINDOW = Window(260, 120, 160, 160)

if __name__ == "__main__":
    for year in (1985, 2000, 2020):
        with rasterio.open(SRC / f"{year}.tif") as src:
            data = src.read(window=WINDOW)
            profile = src.profile | {
                "width": 160,
                "height": 160,
                "transform": src.window_transform(WINDOW),
                "compress": "deflate",
                "tiled": False,
            }
            profile.pop("blockxsize", None)
            profile.pop("blockysize", None)
        with rasterio.open(HERE / f"{year}.tif", "w", **profile) as dst:
            dst.write(data)
            dst.descriptions = ("SWIR1", "NIR", "red", "green")
        print(HERE / f"{year}.tif")
