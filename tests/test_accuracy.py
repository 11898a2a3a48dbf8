"""Accuracy of change detection on real imagery.

- In the repository: the example NAIP tile (public domain) with known changes made from
  real pixels: patches of the other date's image, at other places, pasted into a copy
  whose radiometry was altered (gain, offset, gamma) as a different acquisition would be.
  The truth is exact, the texture and the illumination shift are real.
- In ../shared/data/change (LEVIR-CD, DSIFN-CD, research use, not in the repository): the
  issue's target, F1 >= 0.40 with pixels pooled; skipped when the folder is absent.
"""

import numpy as np
import pytest

from conftest import ASSETS, SHARED
from rschat.geo import read_raster
from rschat.geo.raster import Raster
from rschat.tools import REGISTRY
from rschat.tools.base import ToolContext


def pasted_pair(seed: int = 0):
    base = read_raster(ASSETS / "naip_2015-09-26.tif").data[:, :510, :510].astype(np.float32)
    other = read_raster(ASSETS / "naip_2009-08-18.tif").data[:, :510, :510].astype(np.float32)
    rng = np.random.default_rng(seed)
    after = 255 * ((base / 255) ** 0.9) * 0.92 + 6  # another day's light
    truth = np.zeros(base.shape[1:], dtype=bool)
    placed = 0
    while placed < 6:
        size = int(rng.integers(30, 70))
        y, x = rng.integers(0, 510 - size, 2)
        sy, sx = rng.integers(0, 510 - size, 2)
        patch = other[:, sy : sy + size, sx : sx + size]
        target = base[:, y : y + size, x : x + size]
        if truth[y : y + size, x : x + size].any() or np.abs(patch - target).mean() < 25:
            continue  # overlapping, or too similar to count as a change on the ground
        after[:, y : y + size, x : x + size] = patch
        truth[y : y + size, x : x + size] = True
        placed += 1
    names = ("red", "green", "blue", "nir")
    return (
        Raster(base.astype(np.uint8), band_names=names),
        Raster(np.clip(after, 0, 255).astype(np.uint8), band_names=names),
        truth,
    )


def test_pasted_changes_in_real_naip_imagery(tmp_path):
    tp = fp = fn = 0
    for seed in range(3):
        before, after, truth = pasted_pair(seed)
        res = REGISTRY["detect_changes"].run({}, ToolContext({"before": before, "after": after}, tmp_path))
        mask = res.kept.mask
        tp += (mask & truth).sum()
        fp += (mask & ~truth).sum()
        fn += (~mask & truth).sum()
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.5, f"F1 {f1:.3f}"


@pytest.mark.parametrize(
    ("name", "colour", "nir"),
    [("asphalt", (25, 25, 27), 20), ("bare soil", (160, 130, 100), 120), ("dark water", (15, 25, 30), 10),
     ("small bright roof", (220, 215, 205), 60), ("burn scar", (35, 30, 28), 20)],
)  # fmt: skip
def test_new_surfaces_in_real_imagery_survive_the_change_model(tmp_path, name, colour, nir):
    """The changes that must survive, through the whole tool (where the learned change
    model serves, it judges the rules' regions): two patches of a new surface in a relit
    copy of the example tile; a roof of 14 x 14 pixels (49 m2 read at 0.5 m)."""
    before, _, _ = pasted_pair(0)
    x = before.data.astype(np.float32)
    after = 255 * ((x / 255) ** 0.9) * 0.92 + 6
    truth = np.zeros(x.shape[1:], bool)
    side = 14 if "roof" in name else 50
    noise = np.random.default_rng(0).normal(0, 4, (3, side, side))
    for y, x0 in ((60, 60), (300, 350)):
        after[:3, y : y + side, x0 : x0 + side] = np.array(colour, np.float32)[:, None, None] + noise
        after[3, y : y + side, x0 : x0 + side] = nir
        truth[y : y + side, x0 : x0 + side] = True
    changed = Raster(np.clip(after, 0, 255).astype(np.uint8), band_names=before.band_names)
    res = REGISTRY["detect_changes"].run({}, ToolContext({"before": before, "after": changed}, tmp_path))
    assert (res.kept.mask & truth).sum() / truth.sum() >= 0.8, (name, res.method)


def test_an_unchanged_pair_in_another_light_is_not_change(tmp_path):
    """The same place on another day (gain, offset, gamma) and a pixel off in registration:
    the rules' Otsu split still finds "change" (3.3% of the tile); the learned change model,
    where it serves, confirms none of most of it, while the pasted changes above stay."""
    before, _, _ = pasted_pair(0)
    x = before.data.astype(np.float32)
    relit = np.roll(255 * ((x / 255) ** 0.9) * 0.92 + 6, 1, axis=2)
    after = Raster(np.clip(relit, 0, 255).astype(np.uint8), band_names=before.band_names)
    res = REGISTRY["detect_changes"].run({}, ToolContext({"before": before, "after": after}, tmp_path))
    limit = 1.5 if "change.onnx" in res.method else 5.0
    assert res.figures.changed_percent <= limit, res.summary


@pytest.mark.shared
@pytest.mark.skipif(not (SHARED / "change" / "manifest.json").exists(), reason="../shared/data is absent")
def test_levir_dsifn_pooled_f1_meets_the_target():
    from rschat.eval.change import evaluate_manifest

    report = evaluate_manifest(SHARED / "change" / "manifest.json")
    assert report["pairs"] == 11
    assert report["pooled"]["f1"] >= 0.40
    # Better than calling everything changed (F1 0.405 / IoU 0.254 on these pairs).
    assert report["pooled"]["iou"] >= 0.27
    # LEVIR-CD labels building changes only: asked that question, its pairs score higher.
    levir = evaluate_manifest(SHARED / "change" / "manifest.json", {"levir": "building"})
    assert levir["per_dataset"]["levir"]["f1"] >= report["per_dataset"]["levir"]["f1"] + 0.05
    assert levir["pooled"]["f1"] >= 0.55
