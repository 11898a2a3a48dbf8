"""Run every ``rschat eval`` on the development set and write one report.

    .venv/bin/python benchmarks/run_all.py [--data ../shared/data] [--out benchmarks] [--limit 500]

Writes ``OUT/REPORT.md`` (tables, with the date, the commit and the machine) and its PNG
plots beside it. Evals whose data is missing are listed as skipped, with why:
- change: ``DATA/change/manifest.json``; count: ``DATA/counting/manifest.json``;
- segment: ``DATA/segment/manifest.json`` when there is one; else a case built here from
  the eo-learn Slovenia patch (three clear Sentinel-2 reference scenes against its LULC
  map) and the SpaceNet footprint mask, in a temporary folder;
- vqa: ``rschat.eval.vqa.evaluate_vqa(manifest, limit)`` on ``DATA/vqa/manifest.json``
  (``--limit`` questions; skipped with a note when that module is not there);
- caption, scene: ``DATA/caption/manifest.json``, ``DATA/scene/manifest.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + (" (with uncommitted changes)" if git("status", "--porcelain") else "")


def shown(path: Path) -> str:
    """A path as the report shows it: relative to the checkout (../shared/data/...)."""
    return os.path.relpath(path, ROOT)


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        return "-" if v is None else str(v).replace("|", "/")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def timed(section: Callable[[], str]) -> str:
    start = time.perf_counter()
    text = section()
    return text + f"\n\n*({time.perf_counter() - start:.1f} s)*\n"


# ---- sections ---------------------------------------------------------------------------


def change_section(data: Path) -> str:
    from rschat.eval.change import evaluate_manifest

    manifest = data / "change" / "manifest.json"
    if not manifest.is_file():
        return f"## Change detection\n\nSkipped: no {shown(manifest)}."
    r = evaluate_manifest(manifest)
    rows = [[name, s["precision"], s["recall"], s["f1"], s["iou"]] for name, s in r["per_dataset"].items()]
    rows.append(["pooled", *(r["pooled"][k] for k in ("precision", "recall", "f1", "iou"))])
    return (
        f"## Change detection\n\n`rschat eval change --manifest {shown(manifest)}` ({r['pairs']} pairs, pixels pooled)\n\n"
        + md_table(["dataset", "precision", "recall", "F1", "IoU"], rows)
    )


def count_section(data: Path, out: Path, settings: Any) -> str:
    from rschat.eval.count import evaluate_count

    manifest = data / "counting" / "manifest.json"
    if not manifest.is_file():
        return f"## Counting\n\nSkipped: no {shown(manifest)}."
    r = evaluate_count(manifest, settings)
    rows = [[Path(x["image"]).name, x["object"], x["true"], x.get("predicted"), x.get("error_count"),
             x.get("matched"), x.get("precision"), x.get("recall"), x.get("refused", "")] for x in r["rows"]]  # fmt: skip
    o = r["overall"]
    plot = plot_counts(r["rows"], out / "count_true_vs_predicted.png")
    return (
        f"## Counting\n\n`rschat eval count --manifest {shown(manifest)}` (count_objects, lite detectors)\n\n"
        + md_table(["image", "object", "true", "predicted", "error", "matched", "precision", "recall", "note"], rows)
        + f"\n\nMAE **{o['mae']:.2f}** objects, MAPE **{o['mape_percent']:.1f}%** over {o['images']} images; "
        f"localisation pooled over the labelled boxes: precision **{o['precision']:.3f}**, recall "
        f"**{o['recall']:.3f}** (a detection is right when its centre is in an unmatched true box, one-to-one; "
        f"buildings also at box IoU >= 0.3).\n\n![true vs predicted counts]({plot})"
    )


def plot_counts(rows: list[dict], path: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in rows if r.get("predicted") is not None]
    names = [Path(r["image"]).stem[:18] for r in done]
    x = np.arange(len(done))
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(x - 0.2, [r["true"] for r in done], 0.4, label="true")
    ax.bar(x + 0.2, [r["predicted"] for r in done], 0.4, label="predicted")
    ax.set_xticks(x, names, rotation=15, fontsize=8)
    ax.set_ylabel("objects per image")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def plot_bars(values: dict[str, float | None], path: Path, ylabel: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [k for k, v in values.items() if v is not None]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(names, [values[k] for k in names], color="#3a7")
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def build_segment_case(data: Path, folder: Path) -> Path | None:
    """A segment manifest from permissive data in the development set: the eo-learn
    Slovenia patch (Sentinel-2 reference scenes 3-5, the clear ones, 6 bands named for the
    tool; LULC: 1 cultivated, 2 forest, 3 grassland, 4 shrubland, 8 artificial surface,
    0 no data) and the SpaceNet tile with its footprint mask (0/255)."""
    import rasterio
    from rasterio.transform import from_bounds

    eo = data / "timeseries" / "eolearn_slovenia" / "example_data"
    entries: list[dict] = []
    if (eo / "REFERENCE_SCENES.npy").is_file():
        scenes = np.load(eo / "REFERENCE_SCENES.npy")
        lulc = np.load(eo / "TestEOPatch" / "mask_timeless" / "LULC.npy")[..., 0].astype(np.uint8)
        ring = json.loads((eo / "TestEOPatch" / "bbox.geojson").read_text())["coordinates"][0]
        xs, ys = [p[0] for p in ring], [p[1] for p in ring]
        h, w = lulc.shape
        profile = {"driver": "GTiff", "height": h, "width": w, "crs": "EPSG:32633",
                   "transform": from_bounds(min(xs), min(ys), max(xs), max(ys), w, h)}  # fmt: skip
        with rasterio.open(folder / "slovenia_lulc.tif", "w", count=1, dtype="uint8", **profile) as ds:
            ds.write(lulc[None])
        bands = {"blue": 1, "green": 2, "red": 3, "nir": 7, "swir1": 11, "swir2": 12}  # Sentinel-2 L1C order
        classes = {"1": "low_vegetation", "2": "trees", "3": "low_vegetation", "4": "low_vegetation", "8": "built_up"}
        for i in (2, 3, 4):
            with rasterio.open(folder / f"slovenia_s2_{i + 1}.tif", "w", count=6, dtype="float32", **profile) as ds:
                ds.write(np.stack([scenes[i][..., b] for b in bands.values()]).astype(np.float32))
                ds.descriptions = tuple(bands)
            entries.append({"image": f"slovenia_s2_{i + 1}.tif", "mask": "slovenia_lulc.tif", "classes": classes,
                            "ignore": [0]})  # fmt: skip
    tile = data / "geotiff"
    if (tile / "sample_fp_mask.tif").is_file():
        entries.append({"image": str(tile / "sample_geotiff.tif"), "mask": str(tile / "sample_fp_mask.tif"),
                        "classes": {"255": "building"}})  # fmt: skip
    if not entries:
        return None
    (folder / "manifest.json").write_text(json.dumps(entries, indent=1))
    return folder / "manifest.json"


def segment_section(data: Path, out: Path, settings: Any) -> str:
    from rschat.eval.segment import evaluate_segment

    with tempfile.TemporaryDirectory() as tmp:
        manifest = data / "segment" / "manifest.json"
        how = f"`rschat eval segment --manifest {shown(manifest)}`"
        if not manifest.is_file():
            manifest = build_segment_case(data, Path(tmp))  # type: ignore[assignment]
            how = ("no segment manifest in the data; built here (benchmarks/run_all.py, `build_segment_case`): "
                   "eo-learn Slovenia Sentinel-2 scenes against its LULC map, and the SpaceNet footprints")  # fmt: skip
            if manifest is None:
                return "## Segmentation\n\nSkipped: no segment manifest and no eo-learn/SpaceNet data."
        r = evaluate_segment(manifest, settings)
    names = list(r["per_class"])
    rows = [[Path(x["image"]).name, *(x["iou"].get(n) for n in names), x.get("refused", "")] for x in r["rows"]]
    rows.append(["pooled", *(r["per_class"][n] for n in names), ""])
    plot = plot_bars(r["per_class"], out / "segment_iou_per_class.png", "IoU (pooled pixels)")
    return (
        f"## Segmentation (land cover)\n\n{how}\n\n"
        + md_table(["image", *(f"IoU {n}" for n in names), "note"], rows)
        + f"\n\nMean IoU **{r['mean_iou']:.3f}** over {len(names)} classes.\n\n![IoU per class]({plot})"
    )


def vqa_section(data: Path, limit: int | None) -> str:
    manifest = data / "vqa" / "manifest.json"
    if not manifest.is_file():
        return f"## Visual question answering\n\nSkipped: no {shown(manifest)}."
    try:
        from rschat.eval.vqa import evaluate_vqa  # written beside this script; may be absent
    except ImportError as err:
        return f"## Visual question answering\n\nSkipped: `rschat.eval.vqa.evaluate_vqa` is not available ({err})."
    r = evaluate_vqa(manifest, limit)
    parts = [f"## Visual question answering\n\n`rschat eval vqa --manifest {shown(manifest)}`"
             + (f" (first {limit} questions)" if limit else "")]  # fmt: skip
    parts.append(f"Overall accuracy **{r['overall']:.3f}**" if isinstance(r.get("overall"), float) else "")
    for group in ("per_type", "per_set"):
        parts.append(f"### {group.replace('_', ' ')}\n\n" + dict_table(r.get(group) or {}))
    return "\n\n".join(p for p in parts if p)


def dict_table(groups: dict[str, Any]) -> str:
    """A table of {row: {column: value}} or {row: value}."""
    if not groups:
        return "(none)"
    columns = sorted({k for v in groups.values() if isinstance(v, dict) for k in v}) or ["value"]
    rows = [[name, *((v.get(c) for c in columns) if isinstance(v, dict) else [v])] for name, v in groups.items()]
    return md_table(["", *columns], rows)


def caption_section(data: Path, settings: Any) -> str:
    manifest = data / "caption" / "manifest.json"
    if not manifest.is_file():
        return f"## Captions\n\nSkipped: no {shown(manifest)} in the development set (`rschat eval caption` is tested on small cases)."
    from rschat.eval.caption import evaluate_caption

    r = evaluate_caption(manifest, settings)
    rows = [[Path(x["image"]).name, x["bleu4"], x["rouge_l"], x["caption"][:80]] for x in r["rows"]]
    rows.append(["corpus", r["overall"]["bleu4"], r["overall"]["rouge_l"], ""])
    return f"## Captions\n\n`rschat eval caption --manifest {shown(manifest)}`\n\n" + md_table(
        ["image", "BLEU-4", "ROUGE-L", "caption"], rows
    )


def scene_section(data: Path, settings: Any) -> str:
    manifest = data / "scene" / "manifest.json"
    if not manifest.is_file():
        return f"## Scene classification\n\nSkipped: no {shown(manifest)} in the development set."
    if not settings.clip:
        return "## Scene classification\n\nSkipped: classify_scene is CLIP (full mode); RSCHAT_CLIP is not set."
    from rschat.eval.scene import evaluate_scene

    r = evaluate_scene(manifest, settings)
    rows = [[c, r["per_class"].get(c), *row] for c, row in zip(r["classes"], r["matrix"], strict=True)]
    return (
        f"## Scene classification\n\n`rschat eval scene --manifest {shown(manifest)}`: accuracy **{r['accuracy']:.3f}**\n\n"
        + md_table(["true \\ predicted", "accuracy", *r["classes"]], rows)
    )


def main(argv: list[str] | None = None) -> int:
    from rschat.config import load_settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks")
    parser.add_argument("--limit", type=int, default=None, help="VQA questions to ask (default: all)")
    args = parser.parse_args(argv)
    args.data = args.data.resolve()  # the manifests written here name files by it, from elsewhere
    args.out.mkdir(parents=True, exist_ok=True)
    settings = load_settings()
    mode = "full" if (settings.vlm or settings.clip or settings.sam) else "lite"
    sections = [
        lambda: change_section(args.data),
        lambda: count_section(args.data, args.out, settings),
        lambda: segment_section(args.data, args.out, settings),
        lambda: vqa_section(args.data, args.limit),
        lambda: caption_section(args.data, settings),
        lambda: scene_section(args.data, settings),
    ]
    head = (
        f"# rschat evaluation report\n\nDate: {dt.datetime.now().isoformat(timespec='seconds')}; commit {commit()}; "
        f"machine: {machine()}; mode: {mode}; data: `{shown(args.data)}`.\n\nWritten by `python benchmarks/run_all.py`"
        + (f" --limit {args.limit}" if args.limit else "") + ". Each section gives the command that reproduces it."
    )  # fmt: skip
    body = [timed(s) for s in sections]
    (args.out / "REPORT.md").write_text("\n\n".join([head, *body]))
    print(f"wrote {args.out / 'REPORT.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
