"""``rschat eval scene``: scene classes against labels (accuracy, confusion matrix).

Manifest: a JSON list of ``{"image", "label"}`` (e.g. UC Merced or AID class names), with
an optional ``"pixel_size_m"`` for images without a georeference (EuroSAT: 10).
Each image goes through classify_scene: zero-shot CLIP in full mode (RSCHAT_CLIP), the
learned lite model (UC Merced's 21 classes, ``checkpoints/lite/scene.onnx``) in lite
mode, whose candidates are its own classes.
``--labels tool`` (default) scores what a user gets: the tool's own label list
(``rschat.backends.clip.SCENE_LABELS``); a manifest class that is not among them (after
dropping articles, spaces and a few synonyms: "agricultural" = "farmland") is listed,
since every image of it is necessarily wrong. ``--labels manifest`` passes the manifest's
class names as the candidates instead (the usual zero-shot protocol).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from rschat.config import Settings
from rschat.eval.manifest import add_common, fmt, load_entries, read_image, resolve, run_command, run_tool
from rschat.tools.classify_scene import OutOfScale

HELP = "scene classification (lite model or CLIP): accuracy, per-class accuracy and the confusion matrix"
# Dataset class names that name a tool label in other words (UC Merced, AID, NWPU-RESISC45).
SYNONYMS = {"agricultural": "farmland", "harbor": "harbour", "port": "harbour", "freeway": "roadorhighway",
            "highway": "roadorhighway", "road": "roadorhighway", "storagetank": "storagetanks",
            "industrial": "industrialarea", "commercial": "commercialarea", "denseresidential": "denseresidentialarea",
            "sparseresidential": "sparseresidentialarea", "parking": "parkinglot", "bareland": "bareland",
            "railwaystation": "railwaystation", "cloud": "cloudcoveredarea",
            # EuroSAT's classes, as the land-use model names them to users
            "annualcrops": "annualcrop", "industrialorcommercialland": "industrialarea", "residentialland": "residential",
            "permanentcropsorchardsvineyards": "permanentcrop", "seaorlake": "sealake"}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common(parser, '{"image", "label"} entries')
    parser.add_argument(
        "--labels",
        choices=("tool", "manifest"),
        default="tool",
        help="candidate labels: the tool's own list (default, what users get) or the manifest's class names",
    )


def run(args: argparse.Namespace) -> int:
    return run_command("scene", args, lambda m, s: evaluate_scene(m, s, args.labels), table)


def key(label: str) -> str:
    """A label reduced for comparison: 'a dense residential area' -> 'denseresidentialarea'."""
    text = re.sub(r"^(a|an|the)\s+", "", label.strip().lower())
    text = re.sub(r"[^a-z0-9]", "", text)
    return SYNONYMS.get(text, SYNONYMS.get(text.removesuffix("s"), text))


def confusion(truth: list[str], pred: list[str]) -> dict[str, Any]:
    """Accuracy, per-class accuracy (recall of each true class) and the confusion matrix
    (rows: true class, columns: predicted), classes in sorted order."""
    classes = sorted(set(truth) | set(pred))
    pairs = Counter(zip(truth, pred, strict=True))
    matrix = [[pairs[(t, p)] for p in classes] for t in classes]
    totals = Counter(truth)
    per_class = {c: pairs[(c, c)] / totals[c] for c in classes if totals[c]}
    right = sum(pairs[(c, c)] for c in classes)
    return {"accuracy": right / len(truth) if truth else 0.0, "per_class": per_class,
            "classes": classes, "matrix": matrix}  # fmt: skip


REFUSED = "(refused)"


def evaluate_scene(manifest: Path, settings: Settings, candidates: str = "tool") -> dict[str, Any]:
    from rschat.backends import landuse, lite_models
    from rschat.backends.clip import SCENE_LABELS

    entries = load_entries(manifest, {"image": str, "label": str})
    classes = sorted({e["label"] for e in entries})
    # Lite mode: the model's own classes are the candidates: EuroSAT's land use for images
    # stated at satellite pixel sizes, UC Merced's scenes otherwise.
    gsd = entries[0].get("pixel_size_m") if entries else None
    name = "landuse" if landuse.in_range(gsd) else "scene"
    lite = lite_models.model(name) if not settings.clip else None
    if lite is not None:
        labels, candidates = list(lite.card["classes"]), f"lite model ({name})"
    else:
        labels = list(SCENE_LABELS) if candidates == "tool" else classes
    by_key = {key(label): label for label in labels}
    outside = [c for c in classes if key(c) not in by_key]
    rows = []
    for entry in entries:
        raster = read_image(resolve(manifest, entry["image"]), settings)
        if isinstance(entry.get("pixel_size_m"), (int, float)) and raster.pixel_size_m() is None:
            raster = replace(raster, gsd_m=float(entry["pixel_size_m"]))  # as 'the pixel size is X m' says
        args = {} if lite is not None else {"labels": labels}
        try:
            result = run_tool("classify_scene", args, {"image": raster}, settings)
        except OutOfScale as err:  # refused for this image: counted wrong, as eval vqa counts refusals
            rows.append({"image": entry["image"], "label": entry["label"], "predicted": REFUSED, "p": None,
                         "refused": str(err)})  # fmt: skip
            continue
        top, p = result.kept.ranked[0]
        rows.append({"image": entry["image"], "label": entry["label"], "predicted": top, "p": p})
    # Compare in the manifest's names where a tool label means one of its classes.
    names = {key(c): c for c in classes}
    truth = [r["label"] for r in rows]
    pred = [names.get(key(r["predicted"]), r["predicted"]) for r in rows]
    return {"manifest": str(manifest), "candidates": candidates, "labels_scored": len(labels),
            "not_in_tool": outside, "rows": rows, **confusion(truth, pred)}  # fmt: skip


def table(report: dict[str, Any]) -> str:
    lines = [f"scene classification on {len(report['rows'])} images ({report['manifest']}), "
             f"{report['labels_scored']} candidate labels ({report['candidates']})"]  # fmt: skip
    if report["not_in_tool"]:
        lines.append(
            "not among the tool's labels (always wrong with them; try --labels manifest): "
            + ", ".join(report["not_in_tool"])
        )
    classes = report["classes"]
    lines.append("confusion matrix (rows: true class; columns: predicted, numbered as the rows)")
    lines.append(f"{'':<4}{'class':<28}" + "".join(f"{i:>4}" for i in range(1, len(classes) + 1)) + f"{'acc':>7}")
    for i, (name, counts) in enumerate(zip(classes, report["matrix"], strict=True), start=1):
        acc = report["per_class"].get(name)
        lines.append(
            f"{i:<4}{name[:27]:<28}"
            + "".join(f"{n:>4}" for n in counts)
            + f"{fmt(acc, 2) if acc is not None else '':>7}"
        )
    refused = sum(r["predicted"] == REFUSED for r in report["rows"])
    if refused:
        lines.append(f"{refused} image(s) refused (pixels too coarse for the tool), counted as wrong")
    lines.append(f"accuracy {fmt(report['accuracy'])} over {len(report['rows'])} images")
    return "\n".join(lines)
