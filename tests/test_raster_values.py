"""The values of a band (elevation models first): statistics without no-data, where the
extremes lie, the unit as the file states it, and colour images refused as elevations."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine

from rschat.agent import Workspace, turn
from rschat.config import load_settings


@pytest.fixture
def dem(tmp_path: Path) -> Path:
    """A 2 m DEM in UTM 18N: a slope from 10 to 30 (m, unstated), one peak of 55 at
    pixel (30, 20), and a no-data corner of -9999 that must stay out of every figure."""
    z = np.tile(np.linspace(10, 30, 60, dtype=np.float32), (40, 1))
    z[20, 30] = 55.0
    z[:5, :5] = -9999.0
    path = tmp_path / "dem.tif"
    profile = {"driver": "GTiff", "width": 60, "height": 40, "count": 1, "dtype": "float32", "nodata": -9999.0,
               "crs": "EPSG:26918", "transform": Affine(2.0, 0, 320000.0, 0, -2.0, 4300000.0)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(z, 1)
    return path


def _answers(path: Path, *questions: str) -> list:
    ws = Workspace(load_settings())
    try:
        out = []
        for i, q in enumerate(questions):
            steps = list(turn(ws, q, uploads=[path] if i == 0 else None))
            out.append((steps[-1], [s for s in steps if s.kind == "done"]))
        return out
    finally:
        ws.close()


def test_elevation_statistics_leave_no_data_out_and_say_where_the_extremes_are(dem: Path):
    (mean, done), (high, _), (unit, _), (low, _) = _answers(
        dem, "what is the mean elevation?", "where is the highest point?", "what units are the values in?",
        "what is the lowest elevation?",
    )  # fmt: skip
    assert done[0].tool == "raster_values"
    data = done[0].result.data
    assert data["valid_pixels"] == 40 * 60 - 25 and data["value_min"] > 9.9  # no -9999 anywhere
    assert abs(float(mean.short_answer) - data["value_mean"]) < 0.01 and 19 < data["value_mean"] < 21
    assert high.short_answer == "55.00" and "pixel (30, 20)" in high.text and " N, " in high.text
    assert unit.text.startswith("**No unit stated**")
    assert low.short_answer == "10.00"


def test_a_colour_image_is_not_read_as_elevation_and_object_heights_stay_refused():
    from conftest import ASSETS

    (colour, _), (heights, _), (band, done) = _answers(
        ASSETS / "OSBS_029.tif", "what is the mean elevation?", "how tall are the trees?",
        "what is the range of pixel values in band 2?",
    )  # fmt: skip
    assert not colour.answered and "brightness, not elevation" in colour.text
    assert not heights.answered and "heights of buildings or trees" in heights.text
    assert band.answered and done[0].result.data["band"] == 2 and done[0].result.data["value_max"] <= 255
