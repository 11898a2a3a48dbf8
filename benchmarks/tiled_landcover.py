"""Time land cover on a large scene, tile by tile, with the building model and without.

    python benchmarks/tiled_landcover.py [--side 4096] [--pixel 0.3]

Builds a georeferenced RGB GeoTIFF of SIDE x SIDE pixels from the NEON OSBS example tile
(repeated) declared at PIXEL m, makes it a "large scene" (tiled), and runs `segment` on it
twice: with the learned lite models (each tile takes the building model's footprints as
built-up) and with RSCHAT_LITE_MODELS=none (the rules alone). Prints the wall time and the
built-up share of each.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

ROOT = Path(__file__).resolve().parents[1]


def _scene(path: Path, side: int, pixel: float) -> None:
    with rasterio.open(ROOT / "assets" / "examples" / "OSBS_029.tif") as ds:
        tile = ds.read()[:3]
    reps = side // min(tile.shape[1:]) + 1
    big = np.tile(tile, (1, reps, reps))[:, :side, :side]
    profile = {"driver": "GTiff", "width": side, "height": side, "count": 3, "dtype": big.dtype,
               "crs": "EPSG:32617", "transform": from_origin(400000, 3300000, pixel, pixel),
               "tiled": True, "blockxsize": 512, "blockysize": 512}  # fmt: skip
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(big)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=4096)
    parser.add_argument("--pixel", type=float, default=0.3)
    args = parser.parse_args()

    from rschat.agent import Workspace
    from rschat.backends import lite_models
    from rschat.config import load_settings
    from rschat.tools import REGISTRY
    from rschat.tools.base import ToolContext

    work = Path(tempfile.mkdtemp(prefix="rschat-tiled-"))
    scene = work / "scene.tif"
    _scene(scene, args.side, args.pixel)
    print(f"{args.side} x {args.side} RGB at {args.pixel} m ({args.side**2 / 1e6:.1f} MP), {os.cpu_count()} cores")
    for models in ("learned", "none"):
        if models == "none":
            os.environ["RSCHAT_LITE_MODELS"] = "none"
        lite_models.forget()
        settings = dataclasses.replace(load_settings({}), work_dir=work / models, tile_above_pixels=args.side**2 // 4)
        ws = Workspace(settings)
        ws.load("image", scene)
        ctx = ToolContext(rasters=ws.rasters, out_dir=ws.out_dir, settings=ws.settings)
        start = time.perf_counter()
        result = REGISTRY["segment"].run({"target": "built_up"}, ctx)
        took = time.perf_counter() - start
        building = "building model" if "buildings in built-up" in result.method else "rules alone"
        print(f"{building:>14}: {took:5.1f} s, built-up {result.data['built_up_percent']:.2f}%  ({result.notes[-1]})")


if __name__ == "__main__":
    main()
