"""Accuracy of change detection on a manifest of labelled pairs.

A manifest is a JSON list of ``{"dataset", "before", "after", "label"}`` with paths
relative to the manifest's folder (the format of ../shared/data/change/manifest.json).
Labels are masks where any non-zero pixel means "changed" (0/255 and 0/1 both work).
Pairs go through the same tool as a user's request, so what is scored is what users get.

What is asked of each pair is ``detect_changes``' ``target``: "any" change (the default),
or "building" (only buildings that appeared or went), which is the question a building
change set answers (LEVIR-CD labels building changes only). An entry's own ``"target"``
field, else the ``targets`` given per dataset, else "any".
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rschat.eval.manifest import resolve as _resolve
from rschat.geo.errors import InputError
from rschat.geo.io import read_raster
from rschat.tools import REGISTRY
from rschat.tools.base import ToolContext


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, pred: np.ndarray, truth: np.ndarray) -> None:
        self.tp += int(np.sum(pred & truth))
        self.fp += int(np.sum(pred & ~truth))
        self.fn += int(np.sum(~pred & truth))
        self.tn += int(np.sum(~pred & ~truth))

    def scores(self) -> dict[str, float]:
        def ratio(a: int, b: int) -> float:
            return a / b if b else 0.0

        return {
            "precision": ratio(self.tp, self.tp + self.fp),
            "recall": ratio(self.tp, self.tp + self.fn),
            "f1": ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn),
            "iou": ratio(self.tp, self.tp + self.fp + self.fn),
            "pixels": self.tp + self.fp + self.fn + self.tn,
        }


TARGETS = ("any", "building")


def parse_targets(spec: str) -> dict[str, str]:
    """'building' (every pair) or 'levir=building,dsifn=any' (per dataset) -> {dataset or '*': target}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, target = part.rpartition("=")
        if target not in TARGETS:
            raise InputError(f"--target {part}: the target must be one of {', '.join(TARGETS)}.")
        out[name or "*"] = target
    return out


def evaluate_manifest(manifest: Path, targets: dict[str, str] | None = None) -> dict:
    """Precision, recall, F1 and IoU per dataset and pooled over all pixels; ``targets``
    maps a dataset (or '*', every pair) to the target asked (see the module's docstring)."""
    try:
        entries = json.loads(manifest.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"{manifest} is not a readable JSON manifest ({err}).") from err
    pooled = Counts()
    per_dataset: dict[str, Counts] = {}
    asked: dict[str, set[str]] = {}
    tool = REGISTRY["detect_changes"]
    with tempfile.TemporaryDirectory() as tmp:
        for entry in entries:
            rasters = {k: read_raster(_resolve(manifest, entry[k])) for k in ("before", "after")}
            dataset = entry.get("dataset", "all")
            target = entry.get("target") or (targets or {}).get(dataset) or (targets or {}).get("*", "any")
            asked.setdefault(dataset, set()).add(target)
            try:
                result = tool.run({"target": target}, ToolContext(rasters=rasters, out_dir=Path(tmp)))
            except InputError as err:
                raise InputError(f"pair {entry['before']} -> {entry['after']} (target {target}): {err}") from err
            truth = read_raster(_resolve(manifest, entry["label"])).data[0] > 0
            pred = result.kept.mask
            if pred is None:  # detect_changes always keeps its mask
                raise ValueError("detect_changes returned no mask")
            if pred.shape != truth.shape:
                raise ValueError(f"label {entry['label']} is {truth.shape}, prediction {pred.shape}")
            pooled.add(pred, truth)
            per_dataset.setdefault(dataset, Counts()).add(pred, truth)
    return {
        "pairs": len(entries),
        "pooled": pooled.scores(),
        "per_dataset": {name: c.scores() for name, c in per_dataset.items()},
        "targets": {name: "+".join(sorted(t)) for name, t in asked.items()},
    }
