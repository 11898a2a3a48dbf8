"""Each learned lite model beside the rule it replaces, on the same data.

    .venv/bin/python benchmarks/lite_models.py [--data ../shared/data] [--prepared DIR] [--out benchmarks]

- Counting (trees on the NEON tiles, buildings on the SpaceNet tile): ``rschat eval count``
  with the shipped models, and again with ``RSCHAT_LITE_MODELS=none`` (the rules).
- Trees on the source's own test split (urban-trees, NAIP 0.6 m, points within 2 m) and
  scenes on UC Merced's held-back split, when ``--prepared`` holds ``rschat data prepare``
  output (``DIR/urban-trees``, ``DIR/ucmerced``). There is no lite rule for scenes.
- Change: ``rschat eval change`` as is (the change detector has no learned model yet).
- Speed: each learned tool on a 1024x1024 RGB image (median of 3, after one warm-up).

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


def rschat_json(*args: str, rules: bool = False) -> dict[str, Any]:
    env = {**os.environ, "RSCHAT_LITE_MODELS": "none"} if rules else dict(os.environ)
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


def urban_trees(prepared: Path) -> str:
    manifest = prepared / "urban-trees" / "manifest.json"
    if not manifest.is_file():
        return "Urban trees test split: skipped (no prepared urban-trees).\n"
    from rschat.backends import counting_classical as cc
    from rschat.backends import learned
    from rschat.train.trees import match_points

    m = json.loads(manifest.read_text())
    tests = [it for it in m["items"] if it["split"] == "test"]
    totals = {"rules": [0, 0, 0], "learned": [0, 0, 0]}
    for it in tests:
        from PIL import Image

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
    rows = []
    for name, (tp, n_found, n_true) in totals.items():
        p, r = tp / max(1, n_found), tp / max(1, n_true)
        rows.append([name, n_true, n_found, p, r, 2 * p * r / max(1e-9, p + r)])
    return (f"## Trees, urban-trees test split ({len(tests)} NAIP tiles, 0.6 m; a tree is found within 2 m)\n\n"
            + md_table(["method", "true", "found", "precision", "recall", "F1"], rows) + "\n")  # fmt: skip


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


def change(data: Path) -> str:
    manifest = data / "change" / "manifest.json"
    if not manifest.is_file():
        return "Change: skipped.\n"
    r = rschat_json("eval", "change", "--manifest", str(manifest))
    pooled = r.get("pooled", r)
    return ("## Change (../shared/data/change, evaluation only)\n\n"
            + md_table(["method", "pooled F1", "pooled IoU"], [["classical detector (no learned model yet)", pooled.get("f1"), pooled.get("iou")]]) + "\n")  # fmt: skip


def speed() -> str:
    from rschat.backends import counting_classical as cc
    from rschat.backends import learned

    rgb = np.random.default_rng(0).integers(0, 255, (1024, 1024, 3)).astype(np.uint8)
    runs = {
        "trees, learned (0.1 m)": lambda: learned.trees(rgb, 0.1),
        "trees, rules (0.1 m)": lambda: cc.count_trees(rgb.astype(np.float32) / 255, 0.1),
        "buildings, learned (0.5 m)": lambda: learned.buildings(rgb, 0.5),
        "buildings, rules (0.5 m)": lambda: cc.count_buildings(rgb.mean(-1).astype(np.float32) / 255, 0.5),
        "scene, learned (0.3 m)": lambda: learned.scene(rgb, 0.3),
    }
    rows = []
    for name, fn in runs.items():
        fn()
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        rows.append([name, f"{np.median(times):.2f} s"])
    return "## Speed (1024x1024 RGB, 2 CPU cores)\n\n" + md_table(["tool", "median"], rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--prepared", default="", help="rschat data prepare output (urban-trees/, ucmerced/)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks"))
    args = parser.parse_args()
    data, prepared = Path(args.data), Path(args.prepared or "/nonexistent")
    parts = [f"# Learned lite models beside the rules\n\nCommit {commit()}; {machine()}.\n"]
    for part in (
        lambda: counting(data),
        lambda: urban_trees(prepared),
        lambda: scenes(prepared),
        lambda: change(data),
        speed,
    ):
        text = part()
        print(text)
        parts.append(text)
    Path(args.out, "LITE_MODELS.md").write_text("\n".join(parts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
