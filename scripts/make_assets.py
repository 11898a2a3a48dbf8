"""Build the example pair in assets/examples/ from ../shared/data (run once; outputs are committed).

Two NAIP dates (2009-08-18, 2015-09-26) of the same 512 x 512 pixel (2.56 x 2.56 km)
window of tile m_4709963_se_14_1, North Dakota, 5 m, RGBN, EPSG:26914. The window is
cut by ground bounds so both files cover the same area even though the tiles' grids are
offset by a few metres. Source: opengeos/data (MIT); NAIP imagery is public domain (USDA).
"""

from pathlib import Path

import rasterio
from rasterio.windows import Window, from_bounds

SRC = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "timeseries" / "naip"
DST = Path(__file__).resolve().parents[1] / "assets" / "examples"
DATES = {"2009-08-18": "m_4709963_se_14_1_20090818.tif", "2015-09-26": "m_4709963_se_14_1_20150926.tif"}


def main() -> None:
    DST.mkdir(parents=True, exist_ok=True)
    with rasterio.open(SRC / DATES["2009-08-18"]) as ref:
        bounds = ref.window_bounds(Window(0, 0, 512, 512))
    for date, name in DATES.items():
        with rasterio.open(SRC / name) as src:
            window = from_bounds(*bounds, src.transform).round_offsets().round_lengths()
            data = src.read(window=window)
            profile = src.profile | {
                "width": data.shape[2],
                "height": data.shape[1],
                "transform": src.window_transform(window),
                "compress": "deflate",
                "tiled": True,
                "blockxsize": 256,
                "blockysize": 256,
                "photometric": "minisblack",
            }
        with rasterio.open(DST / f"naip_{date}.tif", "w", **profile) as dst:
            dst.write(data)
            dst.descriptions = ("red", "green", "blue", "nir")
            dst.update_tags(TIFFTAG_DATETIME=f"{date.replace('-', ':')} 00:00:00", SOURCE=f"NAIP {name}")
        print(DST / f"naip_{date}.tif", data.shape)


if __name__ == "__main__":
    main()
