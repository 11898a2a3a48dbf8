"""Latency and memory of detect_changes on a 1024 x 1024 pair (prints figures; no asserts).

    python scripts/bench_change.py [--size 1024] [--repeat 5]

Uses the example NAIP pair tiled up to the size asked, so the pixels are real imagery.
"""

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from rschat.geo import read_raster
from rschat.geo.raster import Raster
from rschat.tools import REGISTRY
from rschat.tools.base import ToolContext

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "examples"


def tiled(r: Raster, size: int) -> Raster:
    reps = (1, -(-size // r.height), -(-size // r.width))
    return Raster(np.tile(r.data, reps)[:, :size, :size], crs=r.crs, transform=r.transform, band_names=r.band_names)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    before = tiled(read_raster(ASSETS / "naip_2009-08-18.tif"), args.size)
    after = tiled(read_raster(ASSETS / "naip_2015-09-26.tif"), args.size)
    after.transform = before.transform  # same grid: measure the detector, not reprojection
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ToolContext(rasters={"before": before, "after": after}, out_dir=Path(tmp))
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            REGISTRY["detect_changes"].run({}, ctx)
            times.append(time.perf_counter() - t0)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"detect_changes {args.size}x{args.size}: median {statistics.median(times):.2f} s, "
        f"min {min(times):.2f} s over {args.repeat} runs; peak RSS {peak_mb:.0f} MB"
    )


if __name__ == "__main__":
    main()
