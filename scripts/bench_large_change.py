"""Change detection on a pair of large GeoTIFFs: peak memory and time against a plain
numpy pass (prints figures; no asserts).

    python scripts/bench_large_change.py [--side 20000] [--dir /tmp/rschat-large] [--keep]

Writes a pair of ``side`` x ``side`` RGB GeoTIFFs (tiled, deflate; 20000 -> 400 MP each)
built from the example NAIP pair, then runs, each in its own process:

1. a plain numpy pass: read both rasters block by block (1024 x 1024), write the
   per-pixel absolute difference summed over bands (uint8) to a tiled GeoTIFF;
2. ``rschat ask "what changed?" --before ... --after ... --json`` (the whole path a user
   takes: loading, tiled detection, COG mask, previews, regions, answer).

Peak RSS is the child's own maximum resident set (from wait4).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

ASSETS = Path(__file__).resolve().parents[1] / "assets" / "examples"
BLOCK = 1024


def make_scene(src: Path, dst: Path, side: int) -> None:
    """A side x side RGB GeoTIFF (0.5 m pixels, UTM 14N) tiling the 512 x 512 example."""
    with rasterio.open(src) as ds:
        tile = ds.read([1, 2, 3])[:, :510, :510]
    th, tw = tile.shape[1:]
    profile = {
        "driver": "GTiff",
        "width": side,
        "height": side,
        "count": 3,
        "dtype": "uint8",
        "crs": "EPSG:26914",
        "transform": Affine(0.5, 0, 600000, 0, -0.5, 3300000),
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
        "compress": "deflate",
        "BIGTIFF": "YES",
        "photometric": "RGB",
    }
    with rasterio.open(dst, "w", **profile) as out:
        for row in range(0, side, BLOCK):
            h = min(BLOCK, side - row)
            rows = np.arange(row, row + h) % th
            strip = tile[:, rows][:, :, np.arange(side) % tw]
            out.write(strip, window=Window(0, row, side, h))


def numpy_pass(before: Path, after: Path, out: Path) -> None:
    with rasterio.open(before) as a, rasterio.open(after) as b:
        profile = a.profile | {"count": 1, "dtype": "uint8", "photometric": "MINISBLACK"}
        with rasterio.open(out, "w", **profile) as dst:
            for row in range(0, a.height, BLOCK):
                for col in range(0, a.width, BLOCK):
                    w = Window(col, row, min(BLOCK, a.width - col), min(BLOCK, a.height - row))
                    diff = np.abs(a.read(window=w).astype(np.int16) - b.read(window=w)).sum(axis=0)
                    dst.write(np.clip(diff, 0, 255).astype(np.uint8), 1, window=w)


def measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, stdout) of a child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{cmd[:3]} failed ({status}):\n{out}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=20000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the generated pair")
    args = parser.parse_args()
    folder = args.dir or Path(tempfile.mkdtemp(prefix="rschat-large-"))
    folder.mkdir(parents=True, exist_ok=True)
    before, after = folder / f"before_{args.side}.tif", folder / f"after_{args.side}.tif"
    for src, dst in ((ASSETS / "naip_2009-08-18.tif", before), (ASSETS / "naip_2015-09-26.tif", after)):
        if not dst.exists():
            t0 = time.perf_counter()
            make_scene(src, dst, args.side)
            print(f"wrote {dst} ({dst.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.0f} s")
    mp = args.side**2 / 1e6
    code = (
        "import sys; sys.path.insert(0, {!r}); from bench_large_change import numpy_pass; "
        "from pathlib import Path; numpy_pass(Path({!r}), Path({!r}), Path({!r}))"
    ).format(str(Path(__file__).parent), str(before), str(after), str(folder / "numpy_diff.tif"))
    base_s, base_mb, _ = measured([sys.executable, "-c", code])
    print(
        f"numpy block pass      {args.side}x{args.side} ({mp:.0f} MP) pair: {base_s:6.1f} s, peak RSS {base_mb:6.0f} MB"
    )
    env = os.environ | {"RSCHAT_WORK_DIR": str(folder / "work")}
    cli = [sys.executable, "-m", "rschat.cli", "ask", "what changed?", "--before", str(before), "--after", str(after)]
    ours_s, ours_mb, out = measured([*cli, "--out", str(folder / "out"), "--json"], env)
    print(
        f"rschat detect_changes {args.side}x{args.side} ({mp:.0f} MP) pair: {ours_s:6.1f} s, peak RSS {ours_mb:6.0f} MB"
    )
    print(f"time ratio (rschat / numpy pass): {ours_s / base_s:.2f}")
    try:
        print("answer:", json.loads(out).get("answer", "")[:400])
    except json.JSONDecodeError:
        print(out[-800:])
    if not args.keep:
        for path in (before, after, folder / "numpy_diff.tif"):
            path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
