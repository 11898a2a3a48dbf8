"""``rschat train trees``: the lite tree detector, a centre heatmap plus crown diameter
(CenterNet-style, on a small U-Net) at 0.3 m pixels, trained from scratch on prepared
tree sources (urban-trees: every tree as a point; idtrees and deepforest: crown boxes).

Every source is resampled to 0.3 m, so NAIP's 0.6 m tiles and NEON's 10 cm plots teach
the same scale. IDTReeS plots mark only the surveyed trees' crowns, so their unmarked
pixels are not taught as background (``partial``); the NAIP tiles mark every tree and
teach both. The crown-size head learns only where crowns are boxed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HELP = "train the lite tree detector (centres and crowns) on prepared data; export ONNX + card"
GSD_M = 0.3
CROP = 192
STRIDE = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rschat.train.lite_loop import add_common_arguments

    add_common_arguments(parser, steps=1500, batch=12)


def _prepare(item: dict) -> dict:
    """The item at 0.3 m: image, centres and diameters in working pixels."""
    from rschat.backends.lite_models import resample
    from rschat.train.lite_loop import read_rgb

    scale = item["gsd_m"] / GSD_M
    rgb = resample(read_rgb(item["image"]), scale)
    if "points" in item:
        centres = np.array(item["points"], np.float32).reshape(-1, 2) * scale
        sizes = np.full(len(centres), np.nan, np.float32)
    else:
        b = np.array(item["boxes"], np.float32).reshape(-1, 4) * scale
        centres = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
        sizes = np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))
    return {
        "rgb": rgb,
        "centres": centres,
        "sizes": sizes,
        "partial": bool(item.get("partial")),
        "source": item["source"],
    }


def _targets(
    centres: np.ndarray, sizes: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(heatmap with a Gaussian per tree, log-diameter map, mask where the size is known),
    at stride 2. The Gaussian's sigma follows the crown (a sixth of its diameter)."""
    h, w = shape[0] // STRIDE, shape[1] // STRIDE
    heat = np.zeros((h, w), np.float32)
    logd = np.zeros((h, w), np.float32)
    known = np.zeros((h, w), np.float32)
    yy, xx = np.mgrid[0:h, 0:w]
    for (x, y), d in zip(centres / STRIDE, sizes, strict=True):
        if not (0 <= x < w and 0 <= y < h):
            continue
        sigma = 1.5 if np.isnan(d) else float(np.clip(d / STRIDE / 6, 1.0, 6.0))
        r = int(3 * sigma) + 1
        y0, y1, x0, x1 = max(0, int(y) - r), min(h, int(y) + r + 1), max(0, int(x) - r), min(w, int(x) + r + 1)
        g = np.exp(-((xx[y0:y1, x0:x1] - x) ** 2 + (yy[y0:y1, x0:x1] - y) ** 2) / (2 * sigma**2))
        heat[y0:y1, x0:x1] = np.maximum(heat[y0:y1, x0:x1], g)
        heat[min(h - 1, int(round(y))), min(w - 1, int(round(x)))] = 1.0
        if not np.isnan(d):
            yi, xi = min(h - 1, int(y)), min(w - 1, int(x))
            logd[yi, xi], known[yi, xi] = np.log(max(d, 2.0)), 1.0
    return heat, logd, known


def _crop(ex: dict, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A random CROP x CROP window (scale jitter, flips, quarter turns, colour jitter),
    padded where the image is smaller; with its targets and a mask of where to learn."""
    from rschat.backends.lite_models import resample

    s = float(rng.uniform(0.8, 1.25))
    rgb = resample(ex["rgb"], s)
    centres, sizes = ex["centres"] * s, ex["sizes"] * s
    h, w = rgb.shape[:2]
    r0 = int(rng.integers(0, max(1, h - CROP + 1)))
    c0 = int(rng.integers(0, max(1, w - CROP + 1)))
    img = np.zeros((CROP, CROP, 3), np.float32)
    valid = np.zeros((CROP, CROP), np.float32)
    part = rgb[r0 : r0 + CROP, c0 : c0 + CROP]
    img[: part.shape[0], : part.shape[1]] = part
    valid[: part.shape[0], : part.shape[1]] = 1
    heat, logd, known = _targets(centres - [c0, r0], sizes, (CROP, CROP))
    valid = valid[::STRIDE, ::STRIDE]
    if ex["partial"]:  # unmarked pixels of a partly labelled plot teach nothing
        valid = valid * (heat > 0.05)
    k = int(rng.integers(4))
    flip = rng.random() < 0.5
    arrays = [img, heat, logd, known, valid]
    arrays = [np.rot90(a[:, ::-1] if flip else a, k) for a in arrays]
    arrays[0] = np.clip(arrays[0] * rng.uniform(0.8, 1.2, 3) * rng.uniform(0.8, 1.2), 0, 255)
    if rng.random() < 0.3:  # blur: NAIP's softness on sharp NEON tiles, and the other way round
        from scipy import ndimage

        arrays[0] = ndimage.gaussian_filter(arrays[0], (1.0, 1.0, 0))
    return tuple(np.ascontiguousarray(a, dtype=np.float32) for a in arrays)


def match_points(found: np.ndarray, truth: np.ndarray, radius: float) -> int:
    """One-to-one matches between found and true points within ``radius``, closest pairs
    first (greedy)."""
    if len(found) == 0 or len(truth) == 0:
        return 0
    from scipy.spatial import cKDTree

    pairs = cKDTree(found).sparse_distance_matrix(cKDTree(truth), radius, output_type="ndarray")
    used_f, used_t, n = set(), set(), 0
    for i, j, _ in sorted(pairs.tolist(), key=lambda p: p[2]):
        if i not in used_f and j not in used_t:
            used_f.add(i)
            used_t.add(j)
            n += 1
    return n


def evaluate(outs: list[tuple[np.ndarray, np.ndarray, bool]], threshold: float) -> dict[str, float]:
    """Precision/recall of centres (within 2 m) on exhaustively labelled items; recall on
    partly labelled ones."""
    from rschat.backends.lite_models import peaks

    tp = fp = fn = 0
    ptp = pfn = 0
    for heat, truth, partial in outs:
        found = peaks(heat, threshold)[:, ::-1].astype(np.float32) * STRIDE  # (x, y) in working px
        hits = match_points(found, truth, 2.0 / GSD_M)
        if partial:
            ptp, pfn = ptp + hits, pfn + len(truth) - hits
        else:
            tp, fp, fn = tp + hits, fp + len(found) - hits, fn + len(truth) - hits
    p, r = tp / max(1, tp + fp), tp / max(1, tp + fn)
    return {"precision": p, "recall": r, "f1": 2 * p * r / max(1e-9, p + r), "partial_recall": ptp / max(1, ptp + pfn)}


def _sampler(train: list[dict], size: int):  # -> Callable[[Generator], tuple[Tensor, ...]]
    """Batches of crops; half the slots draw a source first, so the few NEON plots are not
    drowned out by the NAIP tiles."""
    import torch

    by_source: dict[str, list[dict]] = {}
    for ex in train:
        by_source.setdefault(ex["source"], []).append(ex)
    names = sorted(by_source)

    def batch(rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        picks = []
        for _ in range(size):
            pool = by_source[names[int(rng.integers(len(names)))]] if rng.random() < 0.5 else train
            picks.append(_crop(pool[int(rng.integers(len(pool)))], rng))
        img, heat, logd, known, valid = (np.stack(a) for a in zip(*picks, strict=True))
        tensors = (torch.from_numpy(a)[:, None] for a in (heat, logd, known, valid))
        return (torch.from_numpy(img).permute(0, 3, 1, 2).contiguous(), *tensors)

    return batch


def _loss(net, x, heat, logd, known, valid):  # type: ignore[no-untyped-def]
    """CenterNet's penalty-reduced focal loss over the pixels we may learn from, plus the
    crown size (log diameter) where it is known."""
    import torch
    from torch.nn import functional as F

    y = net(x)
    p = torch.sigmoid(y[:, :1]).clamp(1e-4, 1 - 1e-4)
    pos = (heat >= 0.999).float()
    pos_loss = -((1 - p) ** 2) * torch.log(p) * pos
    neg_loss = -((1 - heat) ** 4) * (p**2) * torch.log(1 - p) * (1 - pos) * valid
    focal = (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)
    size = (F.smooth_l1_loss(y[:, 1:2], logd, reduction="none") * known).sum() / known.sum().clamp(min=1)
    return focal + 0.5 * size


def _heatmaps(net, val: list[dict]) -> list[tuple[np.ndarray, np.ndarray, bool]]:  # type: ignore[no-untyped-def]
    """(heatmap, true centres, partial) for each validation image, whole."""
    import torch

    device = next(net.parameters()).device
    result = []
    for ex in val:
        h, w = ex["rgb"].shape[:2]
        H, W = -(-h // 16) * 16, -(-w // 16) * 16
        img = np.pad(ex["rgb"].astype(np.float32), ((0, H - h), (0, W - w), (0, 0)), "reflect")
        y = net(torch.from_numpy(img).permute(2, 0, 1)[None].to(device))
        heat = torch.sigmoid(y[0, 0]).cpu().numpy()[: -(-h // STRIDE), : -(-w // STRIDE)]
        result.append((heat, ex["centres"], ex["partial"]))
    return result


def _validation(items: list[dict]) -> list[dict]:
    """The validation images: at most 60 per source, so a check takes seconds."""
    per_source: dict[str, list[dict]] = {}
    for it in items:
        if it["split"] == "val":
            per_source.setdefault(it["source"], []).append(it)
    return [_prepare(it) for group in per_source.values() for it in group[:60]]


def run(args: argparse.Namespace) -> int:
    import torch

    from rschat.train.lite_loop import fit, load_manifests, onnx_latency_s, write_model_card
    from rschat.train.lite_nets import DenseNet, TreeExport, export_onnx

    items, sources = load_manifests(args.data)
    train = [_prepare(it) for it in items if it["split"] == "train"]
    val = _validation(items)
    print(f"{len(train)} training images, {len(val)} validation images at {GSD_M} m")
    net = DenseNet(2)
    with torch.no_grad():
        net.head[-1].bias[0] = -2.19  # type: ignore[index,operator]  # CenterNet's prior: few pixels are centres, so training starts calm

    def validate(net: torch.nn.Module) -> dict[str, float]:
        """The best F1 over a few thresholds (early on, peaks are low but already right)."""
        outs = _heatmaps(net, val)
        scored = [dict(evaluate(outs, t), threshold=t) for t in (0.1, 0.2, 0.3, 0.4, 0.5)]
        return max(scored, key=lambda m: m["f1"])

    fitted = fit(net, args, _sampler(train, args.batch), _loss, validate, key="f1", desc="trees")
    with torch.no_grad():
        outs = _heatmaps(net, val)
    sweep = {float(t): evaluate(outs, t) for t in np.round(np.arange(0.1, 0.71, 0.05), 2)}
    threshold = max(sweep, key=lambda t: sweep[t]["f1"])
    out = Path(args.out)
    export_onnx(TreeExport(net), str(out / "trees.onnx"), CROP, ["heat", "diameter"])
    meta = {
        "task": "trees",
        "summary": "Tree detector: a heatmap of crown centres and the crown diameter, on a small U-Net trained from "
        "scratch (no pretrained weights) at 0.3 m pixels. Output stride 2.",
        "gsd_m": GSD_M,
        "stride": STRIDE,
        "threshold": threshold,
        "threshold_sweep": {str(t): {k: round(v, 3) for k, v in m.items()} for t, m in sweep.items()},
        "latency_s_1024": round(onnx_latency_s(out / "trees.onnx", (1, 3, 1024, 1024)), 3),
    }
    write_model_card(out, "trees", meta, sources, fitted, args)
    print(f"wrote {out / 'trees.onnx'}; threshold {threshold}: {sweep[threshold]}")
    return 0
