"""``rschat eval count``: object counts against labels (MAE, MAPE, localisation).

Manifest: a JSON list of ``{"image", "object", "count"?, "labels"?}`` (the format of
../shared/data/counting/manifest.json; other keys are kept for the reader). ``object`` is
what count_objects counts ("tree", "building", ...; plurals work); the true count is
``count`` when given, else the number of labelled boxes. ``labels`` (CSV, Pascal VOC or
GeoJSON, see ``rschat.eval.labels``) adds precision and recall of the detections: a
detection is right when its centre lies in an unmatched true box (one-to-one, greedy,
highest score first); for buildings also when its box overlaps one with IoU >= 0.3.
Each image goes through count_objects as a user's "how many trees?" does (lite, or
SAM + CLIP in full mode for the objects lite mode cannot count).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rschat.config import Settings
from rschat.eval.labels import match, read_boxes
from rschat.eval.manifest import add_common, fmt, load_entries, read_image, resolve, run_command, run_tool
from rschat.geo.errors import InputError

HELP = "object counts against labels: MAE, MAPE, and precision/recall of the boxes where labels exist"
TARGETS = ("tree", "building", "vehicle", "ship", "pool", "solar_panel")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, '{"image", "object", "count", "labels"} entries')


def run(args: argparse.Namespace) -> int:
    return run_command("count", args, evaluate_count, table)


def target_of(name: str) -> str:
    """count_objects' target for a manifest's object name ("Trees" -> "tree")."""
    key = name.strip().lower().replace(" ", "_")
    for candidate in (key, key.removesuffix("s"), key.removesuffix("es")):
        if candidate in TARGETS:
            return candidate
    raise InputError(f"object '{name}' is not one count_objects counts ({', '.join(TARGETS)}).")


def scores(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """MAE (objects), MAPE (% of the true count, over images with a non-zero one) and
    localisation pooled over the images with boxes."""
    done = [r for r in rows if r.get("predicted") is not None]
    errors = [abs(r["predicted"] - r["true"]) for r in done]
    pct = [100.0 * abs(r["predicted"] - r["true"]) / r["true"] for r in done if r["true"] > 0]
    boxed = [r for r in done if r.get("matched") is not None]
    tp = sum(r["matched"] for r in boxed)
    n_pred = sum(r["predicted"] for r in boxed)
    n_true = sum(r["true_boxes"] for r in boxed)
    return {
        "images": len(done),
        "mae": sum(errors) / len(errors) if errors else None,
        "mape_percent": sum(pct) / len(pct) if pct else None,
        "precision": tp / n_pred if boxed and n_pred else (0.0 if boxed else None),
        "recall": tp / n_true if boxed and n_true else (0.0 if boxed else None),
    }


def evaluate_count(manifest: Path, settings: Settings) -> dict[str, Any]:
    entries = load_entries(manifest, {"image": str, "object": str})
    rows = [_one(manifest, entry, settings) for entry in entries]
    return {
        "manifest": str(manifest),
        "rows": rows,
        "overall": scores(rows),
        "failed": sum("refused" in r for r in rows),
    }


def _one(manifest: Path, entry: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """One image's row; a refusal by the tool (e.g. too coarse pixels) is the row's error."""
    target = target_of(entry["object"])
    path = resolve(manifest, entry["image"])
    raster = read_image(path, settings)
    truth = read_boxes(resolve(manifest, entry["labels"]), raster, path.name) if entry.get("labels") else None
    true_count = entry.get("count", len(truth) if truth is not None else None)
    if not isinstance(true_count, int) or isinstance(true_count, bool) or true_count < 0:
        raise InputError(f"{entry['image']}: 'count' must be a whole number >= 0 (or give 'labels').")
    row: dict[str, Any] = {"image": entry["image"], "object": target, "true": true_count}
    try:
        result = run_tool("count_objects", {"target": target}, {"image": raster}, settings)
    except InputError as err:
        return {**row, "predicted": None, "refused": str(err)}
    dets = sorted(result.kept.detections, key=lambda d: -d.score)
    row |= {"predicted": len(dets), "error_count": len(dets) - true_count}
    if truth is not None:
        hits = match([d.box for d in dets], truth, by_iou=target == "building")
        row |= {"true_boxes": len(truth), "matched": hits, "precision": hits / len(dets) if dets else 0.0,
                "recall": hits / len(truth) if truth else 0.0}  # fmt: skip
    return row


def table(report: dict[str, Any]) -> str:
    lines = [
        f"counting on {len(report['rows'])} images ({report['manifest']})",
        f"{'image':<46}{'object':<10}{'true':>6}{'pred':>6}{'error':>7}{'prec':>7}{'recall':>7}",
    ]
    for r in report["rows"]:
        name = Path(r["image"]).name[:45]
        if r.get("predicted") is None:
            lines.append(f"{name:<46}{r['object']:<10}{r['true']:>6}  not counted: {r['refused']}")
            continue
        lines.append(
            f"{name:<46}{r['object']:<10}{r['true']:>6}{r['predicted']:>6}{r['error_count']:>+7}"
            f"{fmt(r.get('precision'), 2):>7}{fmt(r.get('recall'), 2):>7}"
        )
    o = report["overall"]
    lines.append(
        f"MAE {fmt(o['mae'], 2)} objects, MAPE {fmt(o['mape_percent'], 1)}% over {o['images']} images; "
        f"boxes pooled: precision {fmt(o['precision'])}, recall {fmt(o['recall'])}"
    )
    return "\n".join(lines)
