"""Latency of every lite tool on a 1024 x 1024 RGB image, and accuracy on real data.

    python scripts/bench_tools.py [--data ../shared/data]

Prints figures; asserts nothing. Accuracy parts are skipped when the data folder is absent
(the NEON and SpaceNet samples are also in tests/data).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from rasterio import features

from rschat.geo import read_raster
from rschat.geo.raster import Raster
from rschat.tools import REGISTRY
from rschat.tools.base import ToolContext

ROOT = Path(__file__).resolve().parents[1]


def tiled(r: Raster, size: int) -> Raster:
    reps = (1, -(-size // r.height), -(-size // r.width))
    return Raster(np.tile(r.data, reps)[:, :size, :size], crs=r.crs, transform=r.transform, band_names=r.band_names)


def latency(out: Path) -> None:
    print("latency, 1024 x 1024 (median of 3 runs, 2 CPU cores here)")
    rgb = tiled(read_raster(ROOT / "tests/data/neon/OSBS_029.tif"), 1024)
    after = tiled(read_raster(ROOT / "tests/data/neon/SOAP_061.png"), 1024)
    after.crs, after.transform = rgb.crs, rgb.transform
    stack = {
        f"t{i + 1}": tiled(read_raster(ROOT / f"tests/data/pucallpa/{y}.tif"), 1024)
        for i, y in enumerate((1985, 2000, 2020))
    }
    for r in stack.values():
        r.band_names = ("swir1", "nir", "red", "green")
    cases = [
        ("detect_changes", {}, {"before": rgb, "after": after}),
        ("segment", {}, {"image": rgb}),
        ("count_objects", {"target": "tree"}, {"image": rgb}),
        ("measure", {"box": [0, 0, 512, 512]}, {"image": rgb}),
        ("describe_scene", {}, {"image": rgb}),
        ("analyze_timeseries", {"index": "ndvi"}, stack),
    ]
    for name, args, rasters in cases:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            REGISTRY[name].run(args, ToolContext(rasters, out))
            times.append(time.perf_counter() - t0)
        print(f"  {name:<20} {statistics.median(times):.2f} s")


def _boxes(kind: str, path: Path) -> list[tuple[float, float, float, float]]:
    if kind == "deepforest":
        return [
            (float(r["xmin"]), float(r["ymin"]), float(r["xmax"]), float(r["ymax"]))
            for r in csv.DictReader(path.open())
        ]
    if kind == "voc":
        return [
            tuple(float(o.find("bndbox").find(k).text) for k in ("xmin", "ymin", "xmax", "ymax"))  # type: ignore[misc,union-attr]
            for o in ET.parse(path).findall("object")
        ]
    return [
        (float(r["xmin"]), float(r["ymin"]), float(r["xmax"]), float(r["ymax"])) for r in csv.DictReader(path.open())
    ]


def trees(out: Path) -> None:
    d = ROOT / "tests/data/neon"
    tiles = [
        ("OSBS_029.tif", "OSBS_029.csv", "deepforest"),
        ("SOAP_061.png", "SOAP_061.xml", "voc"),
        ("2018_SJER_3_252000_4107000_image_477.tif", "2018_SJER_3_252000_4107000_image_477_truth.csv", "sjer"),
    ]
    errors = []
    print(
        "trees (NEON, 10 cm): count vs truth; precision = detections whose centre is in a true box; "
        "recall = true boxes holding a detection centre"
    )
    for image, labels, kind in tiles:
        truth = _boxes(kind, d / labels)
        raster = read_raster(d / image)
        if not raster.georeferenced:
            raster.gsd_m = 0.1
        res = REGISTRY["count_objects"].run({"target": "tree"}, ToolContext({"image": raster}, out))
        dets = res.kept.detections
        inside = [any(b[0] <= dt.center[0] <= b[2] and b[1] <= dt.center[1] <= b[3] for b in truth) for dt in dets]
        held = [any(b[0] <= dt.center[0] <= b[2] and b[1] <= dt.center[1] <= b[3] for dt in dets) for b in truth]
        err = abs(len(dets) - len(truth)) / len(truth)
        errors.append(err)
        print(
            f"  {image[:24]:<24} truth {len(truth):3d}  counted {len(dets):3d}  error {100 * err:5.1f}%  "
            f"precision {np.mean(inside):.2f}  recall {np.mean(held):.2f}"
        )
    print(f"  mean absolute percentage error {100 * np.mean(errors):.1f}%")


def buildings(out: Path) -> None:
    d = ROOT / "tests/data/spacenet"
    raster = read_raster(d / "sample_geotiff.tif")
    polys = json.loads((d / "geotiff_labels.geojson").read_text())["features"]
    truth = features.rasterize(
        [(f["geometry"], i + 1) for i, f in enumerate(polys)],
        out_shape=(raster.height, raster.width),
        transform=raster.transform,
    )
    res = REGISTRY["count_objects"].run({"target": "building"}, ToolContext({"image": raster}, out))
    dets = res.kept.detections
    hits = [int(truth[int(dt.center[1]), int(dt.center[0])]) for dt in dets]
    print(
        f"buildings (SpaceNet, 0.5 m): truth {len(polys)}, counted {len(dets)} "
        f"(error {100 * abs(len(dets) - len(polys)) / len(polys):.1f}%), precision {np.mean([h > 0 for h in hits]):.2f}, "
        f"buildings found {len(set(hits) - {0})}"
    )


def landcover_slovenia(data: Path, out: Path) -> None:
    base = data / "timeseries/eolearn_slovenia/example_data"
    if not base.exists():
        return
    scenes = np.load(base / "REFERENCE_SCENES.npy")  # (5, H, W, 13) Sentinel-2 L1C reflectance
    lulc = np.load(base / "TestEOPatch/mask_timeless/LULC.npy")[..., 0]
    names = (
        "coastal",
        "blue",
        "green",
        "red",
        "rededge",
        "rededge",
        "rededge",
        "nir",
        "nir8a",
        "wv",
        "cirrus",
        "swir1",
        "swir2",
    )
    # LULC codes of eo-learn's Slovenia set: 1 cultivated, 2 forest, 3 grassland, 4 shrubland, 8 artificial.
    truth_veg = np.isin(lulc, (1, 2, 3, 4))
    print("land cover vs eo-learn Slovenia LULC (Sentinel-2, 10 m, 5 reference scenes)")
    for i, scene in enumerate(scenes):
        raster = Raster(np.moveaxis(scene, -1, 0), band_names=names, gsd_m=10.0)
        res = REGISTRY["segment"].run({}, ToolContext({"image": raster}, out))
        lc = res.kept.landcover
        veg = lc.mask("trees") | lc.mask("low_vegetation")
        forest_truth = lulc == 2
        print(
            f"  scene {i}: vegetation agreement {np.mean(veg == truth_veg):.2f}; forest recall as trees "
            f"{np.mean(lc.mask('trees')[forest_truth]):.2f}; cloud {res.data['cloud_percent']:.1f}%"
        )


def ndvi_stack_slovenia(data: Path, out: Path) -> None:
    """The eo-learn Sentinel-2 NDVI stack (68 dates, cloud masks) through analyze_timeseries."""
    import datetime as dt

    base = data / "timeseries/eolearn_slovenia/example_data/TestEOPatch"
    if not base.exists():
        return
    ndvi = np.load(base / "data/NDVI.npy")[..., 0]  # (T, H, W)
    clouds = np.load(base / "mask/CLM.npy")[..., 0].astype(bool)
    dates = [dt.datetime.fromisoformat(t).date() for t in json.loads((base / "timestamps.json").read_text())]
    rasters = {}
    for values, cloudy, date in zip(ndvi, clouds, dates, strict=True):
        if cloudy.mean() > 0.2:
            continue  # mostly cloudy dates say nothing about the ground
        data_i = np.where(cloudy, np.nan, values).astype(np.float32)
        rasters[f"t{len(rasters) + 1}"] = Raster(data_i[None], band_names=("NDVI",), date=date, gsd_m=10.0)
    res = REGISTRY["analyze_timeseries"].run({"index": "ndvi"}, ToolContext(rasters, out))
    print(
        f"Sentinel-2 NDVI stack (eo-learn Slovenia): {len(rasters)} of {len(dates)} dates under 20% cloud; "
        f"{res.summary}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        latency(out)
        trees(out)
        buildings(out)
        landcover_slovenia(Path(args.data), out)
        ndvi_stack_slovenia(Path(args.data), out)


if __name__ == "__main__":
    main()
