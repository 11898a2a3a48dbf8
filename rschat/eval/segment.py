"""``rschat eval segment``: land-cover masks of the segment tool against labelled masks.

Manifest: a JSON list of ``{"image", "mask", "classes", "ignore"?}``:
- ``mask``: a GeoTIFF or PNG of class ids on the image's pixels (same width and height;
  when both are georeferenced, the same grid);
- ``classes``: mask value -> class name, e.g. ``{"1": "water", "2": "built_up"}`` or
  ``{"255": "building"}`` for a 0/255 footprint mask. Names are the tool's classes
  (water, trees, low_vegetation, bare_soil, built_up, shadow, cloud) or ``vegetation``
  (trees + low vegetation); common synonyms (building, tree, forest, grass, bare, urban)
  are accepted. Mask values not listed are "none of these classes" and still scored, so
  a prediction there is a false positive;
- ``ignore`` (optional): mask values left out of scoring (no data, unlabelled).
IoU per class = TP / (TP + FP + FN), pixels pooled over the images; mean IoU over the
classes. Each image goes through the segment tool as a user's "map the land cover" does.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from rschat.backends.landcover_rules import CLASSES
from rschat.config import Settings
from rschat.eval.manifest import add_common, fmt, load_entries, read_image, resolve, run_command, run_tool
from rschat.geo.errors import InputError
from rschat.geo.raster import Raster

HELP = "land-cover segmentation against labelled masks: IoU per class and mean IoU"
TOOL_CLASSES: tuple[str, ...] = CLASSES  # the segment tool's classes, in its class-map order
SYNONYMS = {
    "building": "built_up", "buildings": "built_up", "built-up": "built_up", "urban": "built_up",
    "impervious": "built_up", "tree": "trees", "forest": "trees", "grass": "low_vegetation",
    "low vegetation": "low_vegetation", "bare": "bare_soil", "bare soil": "bare_soil", "soil": "bare_soil",
    "clouds": "cloud", "shadows": "shadow",
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, '{"image", "mask", "classes": {"1": "water", ...}} entries')


def run(args: argparse.Namespace) -> int:
    return run_command("segment", args, evaluate_segment, table)


def tool_class(name: str) -> str:
    key = name.strip().lower().replace("_", " ")
    key = SYNONYMS.get(key, key.replace(" ", "_"))
    if key not in (*TOOL_CLASSES, "vegetation"):
        raise InputError(f"class '{name}' is not one the segment tool knows ({', '.join(TOOL_CLASSES)}, vegetation).")
    return key


def predicted_mask(classes: np.ndarray, name: str) -> np.ndarray:
    """The tool's pixels of one class (class map: index into TOOL_CLASSES, -1 = none)."""
    wanted = ("trees", "low_vegetation") if name == "vegetation" else (name,)
    return np.isin(classes, [TOOL_CLASSES.index(c) for c in wanted])


def iou_counts(pred: np.ndarray, truth: np.ndarray, scored: np.ndarray) -> tuple[int, int, int]:
    """(TP, FP, FN) pixels of one class over the scored pixels."""
    return (
        int(np.sum(pred & truth & scored)),
        int(np.sum(pred & ~truth & scored)),
        int(np.sum(~pred & truth & scored)),
    )


def evaluate_segment(manifest: Path, settings: Settings) -> dict[str, Any]:
    entries = load_entries(manifest, {"image": str, "mask": str, "classes": dict})
    totals: dict[str, list[int]] = {}
    rows = []
    for entry in entries:
        row = _one(manifest, entry, settings)
        rows.append(row)
        for name, (tp, fp, fn) in row.pop("counts").items():
            acc = totals.setdefault(name, [0, 0, 0])
            acc[0], acc[1], acc[2] = acc[0] + tp, acc[1] + fp, acc[2] + fn
    per_class = {name: _iou(*c) for name, c in totals.items()}
    scored = [v for v in per_class.values() if v is not None]
    return {
        "manifest": str(manifest),
        "rows": rows,
        "per_class": per_class,
        "mean_iou": sum(scored) / len(scored) if scored else None,
        "failed": sum("refused" in r for r in rows),
    }


def _iou(tp: int, fp: int, fn: int) -> float | None:
    """IoU, or None for a class absent from both the labels and the prediction."""
    return tp / (tp + fp + fn) if tp + fp + fn else None


def _read_mask(path: Path, image: Raster, settings: Settings) -> np.ndarray:
    mask = read_image(path, settings)
    if mask.source is not None or mask.count != 1:
        raise InputError(f"{path.name}: a mask must be one band of class ids, small enough to read whole.")
    if (mask.height, mask.width) != (image.height, image.width):
        raise InputError(f"{path.name} is {mask.width} x {mask.height} px, the image {image.width} x {image.height}.")
    grids = (mask.transform, image.transform) if mask.georeferenced and image.georeferenced else (None, None)
    if grids[0] is not None and grids[1] is not None and not grids[0].almost_equals(grids[1]):
        raise InputError(f"{path.name} is not on the image's grid (another geotransform).")
    return np.asarray(mask.data[0])


def _classes(entry: dict[str, Any]) -> dict[int, str]:
    try:
        out = {int(value): tool_class(name) for value, name in entry["classes"].items()}
    except (ValueError, AttributeError) as err:
        raise InputError(f"{entry['mask']}: 'classes' maps mask values (whole numbers) to class names.") from err
    if not out:
        raise InputError(f"{entry['mask']}: 'classes' is empty.")
    return out


def _one(manifest: Path, entry: dict[str, Any], settings: Settings) -> dict[str, Any]:
    classes = _classes(entry)
    image = read_image(resolve(manifest, entry["image"]), settings)
    labels = _read_mask(resolve(manifest, entry["mask"]), image, settings)
    try:
        result = run_tool("segment", {"target": "all"}, {"image": image}, settings)
    except InputError as err:  # the tool refuses the image (e.g. panchromatic): the row says why
        return {"image": entry["image"], "iou": {}, "counts": {}, "refused": str(err)}
    lc = result.kept.landcover
    if lc is None or lc.classes.shape != labels.shape:
        raise InputError(f"{entry['image']}: the tool's class map is not on the mask's pixels (a tiled scene?).")
    scored = ~np.isin(labels, [int(v) for v in entry.get("ignore", [])])
    counts: dict[str, tuple[int, int, int]] = {}
    for name in sorted(set(classes.values())):
        truth = np.isin(labels, [v for v, n in classes.items() if n == name])
        counts[name] = iou_counts(predicted_mask(lc.classes, name), truth, scored)
    return {
        "image": entry["image"],
        "iou": {name: _iou(*c) for name, c in counts.items()},
        "counts": counts,
    }


def table(report: dict[str, Any]) -> str:
    names = list(report["per_class"])
    lines = [
        f"segmentation on {len(report['rows'])} images ({report['manifest']}): IoU per class",
        f"{'image':<40}" + "".join(f"{n:>16}" for n in names),
    ]
    for r in report["rows"]:
        if "refused" in r:
            lines.append(f"{Path(r['image']).name[:39]:<40}  not scored: {r['refused']}")
            continue
        cells = "".join(f"{fmt(r['iou'].get(n)) if n in r['iou'] else '':>16}" for n in names)
        lines.append(f"{Path(r['image']).name[:39]:<40}{cells}")
    lines.append(f"{'pooled':<40}" + "".join(f"{fmt(report['per_class'][n]):>16}" for n in names))
    lines.append(f"mean IoU {fmt(report['mean_iou'])} over {len(names)} classes")
    return "\n".join(lines)
