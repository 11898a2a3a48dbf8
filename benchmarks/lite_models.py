"""Each learned lite model beside the rule it replaces, on the same data.

    .venv/bin/python benchmarks/lite_models.py [--data ../shared/data] [--prepared DIR] [--out benchmarks]

- Counting (trees on the NEON tiles, buildings on the SpaceNet tile): ``rschat eval count``
  with the shipped models, and again with ``RSCHAT_LITE_MODELS=none`` (the rules).
- Trees on the source's own test split (urban-trees, NAIP 0.6 m, points within 2 m),
  buildings on ramp's test mosaics and scenes on UC Merced's held-back split, when
  ``--prepared`` holds ``rschat data prepare`` output (``DIR/urban-trees``, ``DIR/ramp``,
  ``DIR/ucmerced``). There is no lite rule for scenes.
- Land use at 10 m: EuroSAT's held-back split (``DIR/eurosat``), and rural/urban on
  RSVQA's Sentinel-2 tiles with the rules alone and with the land-use model.
- Change: ``rschat eval change`` with the rules alone, the rules' regions confirmed by
  the change model, the rules plus the building model's appeared/gone buildings, and both
  (what ships). The false alarms on nearly unchanged NAIP pairs are
  ``benchmarks/change_false_alarms.py``'s.
- Speed: each tool on a 1024x1024 RGB image, learned and rules (median of 3, after one
  warm-up), each in a process of its own.

Prints the tables and writes ``OUT/LITE_MODELS.md``.
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
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from run_all import commit, machine, md_table  # noqa: E402


def rschat_json(*args: str, rules: bool = False, lite: str = "") -> dict[str, Any]:
    """``rschat ARGS --json`` with the shipped models, the rules alone, or the models in ``lite``."""
    env = {**os.environ, "RSCHAT_LITE_MODELS": "none" if rules else lite} if rules or lite else dict(os.environ)
    out = subprocess.run([sys.executable, "-m", "rschat.cli", *args, "--json"], capture_output=True, text=True, env=env)
    if out.returncode not in (0, 1) or not out.stdout.strip():
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout[out.stdout.index("{") :])


def counting(data: Path) -> str:
    manifest = data / "counting" / "manifest.json"
    if not manifest.is_file():
        return "Counting: skipped (no ../shared/data/counting).\n"
    learned = {r["image"]: r for r in rschat_json("eval", "count", "--manifest", str(manifest))["rows"]}
    rules = {r["image"]: r for r in rschat_json("eval", "count", "--manifest", str(manifest), rules=True)["rows"]}
    rows = []
    for image, lr in learned.items():
        rr = rules[image]
        rows.append([Path(image).name, lr["true"],
                     rr.get("predicted"), rr.get("precision"), rr.get("recall"),
                     lr.get("predicted"), lr.get("precision"), lr.get("recall")])  # fmt: skip
    header = ["image", "true", "rules: count", "rules: P", "rules: R", "learned: count", "learned: P", "learned: R"]
    return "## Counting (../shared/data/counting)\n\n" + md_table(header, rows) + "\n"


def _pooled_rows(totals: dict[str, list[int]]) -> list[list[Any]]:
    """[method, true, found, precision, recall, F1] from {method: [hits, found, true]}."""
    rows = []
    for name, (tp, n_found, n_true) in totals.items():
        p, r = tp / max(1, n_found), tp / max(1, n_true)
        rows.append([name, n_true, n_found, p, r, 2 * p * r / max(1e-9, p + r)])
    return rows


def _test_items(manifest: Path) -> list[dict]:
    return [it for it in json.loads(manifest.read_text())["items"] if it["split"] == "test"]


def urban_trees(prepared: Path) -> str:
    manifest = prepared / "urban-trees" / "manifest.json"
    if not manifest.is_file():
        return "Urban trees test split: skipped (no prepared urban-trees).\n"
    from PIL import Image

    from rschat.backends import counting_classical as cc
    from rschat.backends import learned
    from rschat.train.trees import match_points

    tests = _test_items(manifest)
    totals = {"rules": [0, 0, 0], "learned": [0, 0, 0]}
    for it in tests:
        rgb = np.asarray(Image.open(manifest.parent / it["image"]).convert("RGB"))
        truth = np.array(it["points"], np.float32).reshape(-1, 2)
        for name, dets in (
            ("rules", cc.count_trees(rgb.astype(np.float32) / 255, 0.6)),
            ("learned", learned.trees(rgb, 0.6)),
        ):
            found = np.array([d.center for d in dets or []], np.float32).reshape(-1, 2)
            hits = match_points(found, truth, 2.0 / 0.6)
            t = totals[name]
            t[0], t[1], t[2] = t[0] + hits, t[1] + len(found), t[2] + len(truth)
    rows = _pooled_rows(totals)
    return (f"## Trees, urban-trees test split ({len(tests)} NAIP tiles, 0.6 m; a tree is found within 2 m)\n\n"
            + md_table(["method", "true", "found", "precision", "recall", "F1"], rows) + "\n")  # fmt: skip


def ramp_buildings(prepared: Path) -> str:
    """Buildings on the ramp test mosaics (OpenAerialMap RGB, OSM footprints): a detection
    is right when its box overlaps an unmatched footprint's box with IoU >= 0.3 or its
    centre lies inside it."""
    manifest = prepared / "ramp" / "manifest.json"
    if not manifest.is_file():
        return "Buildings, ramp test split: skipped (no prepared ramp).\n"
    from PIL import Image
    from scipy import ndimage

    from rschat.backends import counting_classical as cc
    from rschat.backends import learned
    from rschat.eval.labels import LabelBox, match

    tests = _test_items(manifest)
    totals = {"rules": [0, 0, 0], "learned": [0, 0, 0]}
    for it in tests:
        rgb = np.asarray(Image.open(manifest.parent / it["image"]).convert("RGB"))
        mask = np.asarray(Image.open(manifest.parent / it["mask"]))
        labels, _ = ndimage.label(mask == 255)
        truth = [
            LabelBox(sl[1].start, sl[0].start, sl[1].stop, sl[0].stop) for sl in ndimage.find_objects(labels) if sl
        ]
        gsd = it["gsd_m"]
        runs = {
            "rules": cc.count_buildings(rgb.mean(-1).astype(np.float32) / 255, gsd),
            "learned": learned.buildings(rgb, gsd),
        }
        for name, dets in runs.items():
            boxes = [d.box for d in dets or []]
            hits = match(boxes, truth, by_iou=True)
            t = totals[name]
            t[0], t[1], t[2] = t[0] + hits, t[1] + len(boxes), t[2] + len(truth)
    return (f"## Buildings, ramp test split ({len(tests)} OpenAerialMap mosaics, RGB; IoU >= 0.3 or centre inside)\n\n"
            + md_table(["method", "true", "found", "precision", "recall", "F1"], _pooled_rows(totals)) + "\n")  # fmt: skip


def scenes(prepared: Path) -> str:
    manifest = prepared / "ucmerced" / "manifest.json"
    if not manifest.is_file():
        return "Scenes: skipped (no prepared ucmerced).\n"
    m = json.loads(manifest.read_text())
    entries = [
        {"image": str(manifest.parent / it["image"]), "label": it["label"]}
        for it in m["items"]
        if it["split"] == "test"
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scene.json"
        path.write_text(json.dumps(entries))
        report = rschat_json("eval", "scene", "--manifest", str(path))
    acc = report.get("accuracy")
    return (f"## Scenes, UC Merced held-back split ({len(entries)} images, 21 classes)\n\n"
            + md_table(["method", "accuracy"], [["rules", "none (no lite rule classifies scenes)"], ["learned", acc]]) + "\n")  # fmt: skip


def landuse(prepared: Path, data: Path) -> str:
    """EuroSAT's held-back split (no rule classifies land use), and what the model changes
    for a user: rural or urban on RSVQA's Sentinel-2 tiles, rules against the model."""
    rows = []
    manifest = prepared / "eurosat" / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        entries = [{"image": str(manifest.parent / it["image"]), "label": it["label"], "pixel_size_m": 10.0}
                   for it in m["items"] if it["split"] == "test"]  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "eurosat.json"
            path.write_text(json.dumps(entries))
            acc = rschat_json("eval", "scene", "--manifest", str(path)).get("accuracy")
        rows.append([f"EuroSAT held-back split ({len(entries)} tiles, 10 classes): accuracy", "none (refused)", acc])
    vqa = data / "vqa" / "manifest.json"
    if vqa.is_file():
        asked = [dict(e, image=str(vqa.parent / e["image"])) for e in json.loads(vqa.read_text())
                 if e["set"] == "RSVQA-LR" and e["type"] == "rural_urban"]  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "lr.json"
            path.write_text(json.dumps(asked))
            got = [rschat_json("eval", "vqa", "--manifest", str(path), rules=rules) for rules in (True, False)]
        base = got[0]["per_type"]["rural_urban"]["baseline"]
        rows.append([f"RSVQA-LR rural/urban ({len(asked)} tiles; always 'rural': {base:.2f})",
                     *(g["per_type"]["rural_urban"]["accuracy"] for g in got)])  # fmt: skip
    if not rows:
        return "## Land use at 10 m\n\nSkipped (no prepared eurosat, no ../shared/data/vqa).\n"
    return "## Land use at 10 m (landuse.onnx)\n\n" + md_table(["measure", "rules", "learned"], rows) + "\n"


def change(data: Path) -> str:
    manifest = data / "change" / "manifest.json"
    if not manifest.is_file():
        return "Change: skipped.\n"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        only = {}
        for name in ("change", "buildings"):  # a folder with one shipped model, to see each one's part
            only[name] = Path(tmp, name)
            only[name].mkdir()
            for f in (ROOT / "checkpoints" / "lite").glob(f"{name}.*"):
                (only[name] / f.name).write_bytes(f.read_bytes())
        runs = (
            ("rules (classical detector)", "none", []),
            ("rules, regions confirmed by the change model", str(only["change"]), []),
            ("rules + buildings appeared/gone (building model)", str(only["buildings"]), []),
            ("shipped: confirmed rules + buildings", "", []),
            ("shipped; LEVIR asked for building change (target building)", "", ["--target", "levir=building"]),
        )
        for name, lite, extra in runs:
            report = rschat_json("eval", "change", "--manifest", str(manifest), *extra, rules=lite == "none",
                                 lite=lite if lite != "none" else "")  # fmt: skip
            pooled, per = report["pooled"], report["per_dataset"]
            rows.append([name, pooled["precision"], pooled["recall"], pooled["f1"], pooled["iou"],
                         per["levir"]["f1"], per["dsifn"]["f1"]])  # fmt: skip
    return ("## Change (../shared/data/change, evaluation only; pixels pooled)\n\n"
            + md_table(["method", "precision", "recall", "F1", "IoU", "LEVIR F1", "DSIFN F1"], rows) + "\n")  # fmt: skip


def speed() -> str:
    """Each tool as a user runs it (files written, figures computed) on a 1024 x 1024 RGB
    GeoTIFF, with the learned models and with the rules (``RSCHAT_LITE_MODELS=none``)."""
    rows = []
    for name, env in (("learned", {}), ("rules", {"RSCHAT_LITE_MODELS": "none"})):
        out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lite_models.py"), "--speed-only"],
                             capture_output=True, text=True, env={**os.environ, **env})  # fmt: skip
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-2000:])
        for tool, seconds in json.loads(out.stdout.splitlines()[-1]).items():
            rows.append([tool, name, f"{seconds:.2f} s"])
    return (
        "## Speed (each tool, 1024x1024 RGB NEON texture declared at 0.3 m, 2 CPU cores, median of 3)\n\n"
        + md_table(["tool", "backend", "median"], rows)
        + "\n"
    )


def _time_tools() -> dict[str, float]:
    from affine import Affine
    from rasterio.crs import CRS

    from rschat.config import Settings
    from rschat.geo import memo, read_raster
    from rschat.geo.raster import Raster
    from rschat.tools import REGISTRY
    from rschat.tools.base import ToolContext

    # Real texture (the NEON OSBS tile, mirrored out to 1024 x 1024), declared at 0.3 m; the
    # "after" image is the same with a brighter block pasted in.
    tile = read_raster(ROOT / "tests" / "data" / "neon" / "OSBS_029.tif").data[:3]
    data = np.pad(tile, ((0, 0), (0, 1024 - tile.shape[1]), (0, 1024 - tile.shape[2])), "symmetric")
    later = data.copy()
    later[:, 300:420, 500:640] = 210
    grid = {
        "crs": CRS.from_epsg(32617),
        "transform": Affine(0.3, 0, 400000, 0, -0.3, 3280000),
        "band_names": ("red", "green", "blue"),
    }
    before, after = Raster(data, name="before", **grid), Raster(later, name="after", **grid)
    calls = {
        "count_objects (trees)": ("count_objects", {"target": "tree"}),
        "count_objects (buildings)": ("count_objects", {"target": "building"}),
        "classify_scene": ("classify_scene", {}),
        "segment": ("segment", {}),
        "detect_changes": ("detect_changes", {}),
    }
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        ctx = ToolContext(
            {"image": after, "before": before, "after": after}, Path(tmp), settings=Settings(work_dir=Path(tmp))
        )
        for label, (tool, args) in calls.items():
            try:
                REGISTRY[tool].run(args, ctx)
            except Exception as err:  # e.g. scene classification without its model: not timed
                print(f"{label}: not timed ({type(err).__name__}: {err})", file=sys.stderr)
                continue
            times = []
            for _ in range(3):
                memo.clear()  # a first question on the image, not a cached repeat
                t = time.perf_counter()
                REGISTRY[tool].run(args, ctx)
                times.append(time.perf_counter() - t)
            timings[label] = float(np.median(times))
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--prepared", default="", help="rschat data prepare output (urban-trees/, ucmerced/)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks"))
    parser.add_argument("--speed-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--only", default="", help="comma-separated sections to rerun in the existing report")
    args = parser.parse_args()
    if args.speed_only:
        print(json.dumps(_time_tools()))
        return 0
    data, prepared = Path(args.data), Path(args.prepared or "/nonexistent")
    sections = {
        "counting": lambda: counting(data),
        "urban_trees": lambda: urban_trees(prepared),
        "ramp": lambda: ramp_buildings(prepared),
        "scenes": lambda: scenes(prepared),
        "landuse": lambda: landuse(prepared, data),
        "change": lambda: change(data),
        "speed": speed,
    }
    only = [s for s in args.only.split(",") if s]
    if unknown := set(only) - set(sections):
        parser.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(sections)}")
    report = Path(args.out, "LITE_MODELS.md")
    if only:  # the other sections stay as the last full run wrote them
        parts = _sections(report.read_text())
        if len(parts) == len(sections) and "landuse" in only:  # a report written before the land-use section
            parts.insert(list(sections).index("landuse") + 1, "")
        if len(parts) != len(sections) + 1:
            parser.error(
                f"--only: {report} does not hold the {len(sections)} sections of a full run; run without --only"
            )
        parts[0] = (
            f"# Learned lite models beside the rules\n\nCommit {commit()}; {machine()} (sections {args.only}; the others from an earlier run).\n"
        )
    else:
        parts = [f"# Learned lite models beside the rules\n\nCommit {commit()}; {machine()}.\n"]
    for i, (name, part) in enumerate(sections.items(), start=1):
        if only and name not in only:
            continue
        text = part()
        print(text)
        if only:
            parts[i] = text
        else:
            parts.append(text)
    report.write_text("\n".join(parts))
    return 0


def _sections(text: str) -> list[str]:
    """The report's header and its "## " sections, in order."""
    chunks = text.split("\n## ")
    return [chunks[0] + "\n", *("## " + c for c in chunks[1:])]


if __name__ == "__main__":
    raise SystemExit(main())
