"""``rschat train buildings``: the lite building segmenter, a small U-Net giving the
probability of "building" per pixel at 0.4 m, trained from scratch on ``rschat data
prepare ramp`` mosaics (OpenAerialMap imagery, OpenStreetMap footprints).

Footprints and counts come from the mask in the app (connected parts above a minimum
area). A third of the training crops are turned grey, so panchromatic images (one band,
shown as three) are not out of the model's world (see ``_panchromatic``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HELP = "train the lite building segmenter on prepared data (ramp); export ONNX + card"
GSD_M = 0.4
CROP = 192
CONTACT_WEIGHT = 5.0  # U-Net's border weight: the few pixels between touching roofs decide whether they count as two


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rschat.train.lite_loop import add_common_arguments

    add_common_arguments(parser, steps=1200, batch=8)


def _prepare(item: dict) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    from rschat.backends.lite_models import resample
    from rschat.train.lite_loop import read_rgb

    scale = item["gsd_m"] / GSD_M
    rgb = resample(read_rgb(item["image"]), scale)
    mask = Image.open(item["mask"]).resize((rgb.shape[1], rgb.shape[0]), Image.Resampling.NEAREST)
    return rgb, np.asarray(mask)


def _panchromatic(img: np.ndarray, lab: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A panchromatic look-alike, as the app shows one band: satellite pan bands reach into
    the near infrared, where vegetation is bright (so green is lifted), roofs may be dark
    shingle rather than bright metal (so roofs are recoloured), and the viewer stretches
    the 2-98 percentiles."""
    f = img.astype(np.float32)
    roofs = lab == 255
    f[roofs] *= rng.uniform(0.35, 1.1)
    exg = np.clip((2 * f[..., 1] - f[..., 0] - f[..., 2]) / (f.sum(axis=-1) + 1e-3), 0, 0.3) / 0.3
    pan = f.mean(axis=2) * (1 + rng.uniform(0.5, 1.5) * exg)
    lo, hi = np.percentile(pan, [2, 98])
    pan = (pan - lo) / max(hi - lo, 1e-3) * 255
    return np.repeat(pan[..., None], 3, axis=2)


def _crop(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    from rschat.backends.lite_models import resample

    h, w = mask.shape
    r0, c0 = int(rng.integers(0, max(1, h - CROP + 1))), int(rng.integers(0, max(1, w - CROP + 1)))
    img: np.ndarray = np.zeros((CROP, CROP, 3), np.float32)
    lab: np.ndarray = np.full((CROP, CROP), 128, np.uint8)
    part = rgb[r0 : r0 + CROP, c0 : c0 + CROP]
    img[: part.shape[0], : part.shape[1]] = part
    lab[: part.shape[0], : part.shape[1]] = mask[r0 : r0 + CROP, c0 : c0 + CROP]
    k, flip = int(rng.integers(4)), rng.random() < 0.5
    img, lab = (np.rot90(a[:, ::-1] if flip else a, k) for a in (img, lab))
    img = img * rng.uniform(0.8, 1.2, 3) * rng.uniform(0.7, 1.3)
    if rng.random() < 0.33:
        img = _panchromatic(img, lab, rng)
    if rng.random() < 0.3:  # coarser imagery (e.g. 0.5 m satellite), blurred back to this scale
        small = resample(np.clip(img, 0, 255).astype(np.uint8), 0.6)
        img = resample(small, CROP / small.shape[0])[:CROP, :CROP].astype(np.float32)
    return np.ascontiguousarray(np.clip(img, 0, 255), np.float32), np.ascontiguousarray(lab)


MIN_PARTS_PX = 75  # 12 m2 at 0.4 m: the app's smallest footprint


def _instances(pred: np.ndarray, truth: np.ndarray) -> tuple[int, int, int]:
    """(matched, found, true) buildings as the app counts them, connected parts of at least
    12 m2; a part matches a true building when their pixel IoU is over 0.5 (SpaceNet's
    rule, one-to-one by construction)."""
    from scipy import ndimage

    def parts(mask: np.ndarray) -> tuple[np.ndarray, int]:
        labels, n = ndimage.label(mask)
        small = np.bincount(labels.ravel(), minlength=n + 1) < MIN_PARTS_PX
        small[0] = False
        labels[small[labels]] = 0
        kept = np.unique(labels[labels > 0])
        relabel = np.zeros(n + 1, np.int64)
        relabel[kept] = np.arange(1, len(kept) + 1)
        return relabel[labels], len(kept)

    (lp, n_p), (lt, n_t) = parts(pred), parts(truth)
    counts = np.bincount((lp * (n_t + 1) + lt).ravel(), minlength=(n_p + 1) * (n_t + 1)).reshape(n_p + 1, n_t + 1)
    inter = counts[1:, 1:].astype(float)
    union = counts[1:].sum(axis=1)[:, None] + counts[:, 1:].sum(axis=0)[None, :] - inter
    return int((inter > 0.5 * union).sum()), n_p, n_t


def _validate(net, val: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Pixel IoU and building precision / recall on the whole validation mosaics."""
    import torch
    from torch.nn import functional as F

    device = next(net.parameters()).device
    inter = union = 0.0
    found = [0, 0, 0]  # buildings matched, found, true (connected parts)
    for rgb, mask in val:
        h, w = mask.shape
        H, W = -(-h // 16) * 16, -(-w // 16) * 16
        img = np.pad(rgb.astype(np.float32), ((0, H - h), (0, W - w), (0, 0)), "reflect")
        x = torch.from_numpy(img).permute(2, 0, 1)[None].to(device)
        y = F.interpolate(net(x), size=(H, W), mode="bilinear", align_corners=False)[0, 0, :h, :w].cpu().numpy()
        pred, truth, valid = y > 0, mask == 255, mask != 128
        inter += float((pred & truth & valid).sum())
        union += float(((pred | truth) & valid).sum())
        for i, n in enumerate(_instances(pred & valid, truth)):
            found[i] += n
    p, r = found[0] / max(1, found[1]), found[0] / max(1, found[2])
    return {"iou": inter / max(1.0, union), "precision": p, "recall": r, "f1": 2 * p * r / max(1e-9, p + r)}


def run(args: argparse.Namespace) -> int:
    import torch
    from torch.nn import functional as F

    from rschat.train.lite_loop import fit, load_manifests, onnx_latency_s, write_model_card
    from rschat.train.lite_nets import DenseNet, MaskExport, export_onnx
    from rschat.train.prepare import CONTACT

    items, sources = load_manifests(args.data)
    train = [_prepare(it) for it in items if it["split"] == "train"]
    val = [_prepare(it) for it in items if it["split"] == "val"]
    print(f"{len(train)} training mosaics, {len(val)} validation mosaics at {GSD_M} m")
    weights = np.array([m.size for _, m in train], float)
    weights /= weights.sum()  # crops drawn in proportion to each mosaic's area

    def batch(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        picks = [_crop(*train[int(rng.choice(len(train), p=weights))], rng) for _ in range(args.batch)]
        img, lab = (np.stack(a) for a in zip(*picks, strict=True))
        return torch.from_numpy(img).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(lab)[:, None]

    def loss_fn(net: torch.nn.Module, x: torch.Tensor, lab: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(net(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        valid = (lab != 128).float()
        target = (lab == 255).float()
        # The strip where two buildings touch is background that counts CONTACT_WEIGHT times.
        weight = valid * (1 + (CONTACT_WEIGHT - 1) * (lab == CONTACT).float())
        bce = (F.binary_cross_entropy_with_logits(y, target, reduction="none") * weight).sum() / valid.sum().clamp(
            min=1
        )
        p = torch.sigmoid(y) * valid
        dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + (target * valid).sum() + 1)
        return bce + dice

    net = DenseNet(1)
    fitted = fit(net, args, batch, loss_fn, lambda n: _validate(n, val), key="iou", desc="buildings")
    out = Path(args.out)
    export_onnx(MaskExport(net), str(out / "buildings.onnx"), CROP, ["probability"])
    meta = {
        "task": "buildings",
        "summary": "Building segmenter: the probability of 'building' per pixel, on a small U-Net trained from "
        "scratch (no pretrained weights) at 0.4 m pixels. Footprints are its connected parts.",
        "gsd_m": GSD_M,
        "stride": 1,
        "threshold": 0.5,
        "min_area_m2": 12.0,
        "latency_s_1024": round(onnx_latency_s(out / "buildings.onnx", (1, 3, 1024, 1024)), 3),
    }
    write_model_card(out, "buildings", meta, sources, fitted, args)
    print(f"wrote {out / 'buildings.onnx'} (best validation IoU {fitted['best']['iou']:.3f})")
    return 0
