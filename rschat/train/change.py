"""``rschat train change``: a learned change detector, a small Siamese U-Net that gives the
probability of "changed" per pixel of a co-registered RGB pair at 0.6 m.

No openly licensed change labels exist at this resolution, so the pairs are built (as the
Changen papers do, with simpler means): the *unchanged* part is real, the same NAIP places
in 2016, 2018 and 2020 (``rschat data prepare urban-trees``: season, sun, sensor and
registration differences, which is what a change detector must learn to ignore); the
*change* is pasted in: OpenStreetMap-labelled buildings cut from OpenAerialMap mosaics
(``rschat data prepare ramp``), each with a cast shadow, on one date only, and blobs of
other land on one date (another place's tile, a ramp mosaic, bare soil, or, given
``rschat data prepare ucmerced``, a UC Merced scene: farmland, parking lots, dense housing). The same building
pasted on both dates teaches that a building is not change by itself.

Places are held out by city: claremont and long_beach never train (they are the NAIP pairs
of ``benchmarks/change_false_alarms.py``); a hash of the place picks the validation ones.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import ndimage

HELP = "train the lite change detector on real NAIP pairs with buildings and land pasted in; export ONNX + card"
GSD_M = 0.6
CROP = 192
HELD_OUT_CITIES = ("claremont", "long_beach")  # the false-alarm benchmark's pairs
_PLACE = re.compile(r"(?P<city>.+)_(?P<year>\d{4})_(?P<n>\d+)$")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rschat.train.lite_loop import add_common_arguments

    add_common_arguments(parser, steps=3000, batch=8)


def pairs_by_split(items: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """Every two dates of one place (image paths), by split; places split by city, then hash."""
    from rschat.train.prepare import split_of

    dates: dict[tuple[str, str], list[str]] = defaultdict(list)
    for it in items:
        m = _PLACE.match(Path(it["image"]).stem)
        if m:
            dates[(m["city"], m["n"])].append(it["image"])
    out: dict[str, list[tuple[str, str]]] = {"train": [], "val": [], "test": []}
    for (city, n), paths in sorted(dates.items()):
        split = "test" if city in HELD_OUT_CITIES else "val" if split_of(f"{city}_{n}", 0.1, 0.0) == "val" else "train"
        paths = sorted(paths)
        out[split] += [(a, b) for i, a in enumerate(paths) for b in paths[i + 1 :]]
    return out


LARGE_CHANGE = 0.3  # share of land changes that cover most of the crop
LAND_CHANGE = 0.5  # share of samples with a land change
MIN_CORRELATION = 0.3  # 0.2-8% of a city's pairs fall below (santa_monica's tall buildings lean differently)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of the two dates' grey levels."""
    if a.shape != b.shape:
        return 0.0
    x, y = a.mean(axis=2).ravel(), b.mean(axis=2).ravel()
    return float(np.corrcoef(x, y)[0, 1]) if x.std() > 0 and y.std() > 0 else 0.0


def building_objects(items: list[dict]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(RGB crop, footprint mask) of each whole building of ramp mosaics, at GSD_M."""
    from PIL import Image

    from rschat.backends.lite_models import resample
    from rschat.train.lite_loop import read_rgb

    out = []
    for it in items:
        scale = it["gsd_m"] / GSD_M
        rgb = resample(read_rgb(it["image"]), scale)
        lab = np.asarray(Image.open(it["mask"]).resize((rgb.shape[1], rgb.shape[0]), Image.Resampling.NEAREST))
        labels, _ = ndimage.label(lab == 255)
        for i, sl in enumerate(ndimage.find_objects(labels), start=1):
            own = labels[sl] == i
            touches = sl[0].start == 0 or sl[1].start == 0 or sl[0].stop == lab.shape[0] or sl[1].stop == lab.shape[1]
            if 25 <= own.sum() <= 4000 and not touches and not (lab[sl] == 128).any():
                out.append((rgb[sl].copy(), own))
    return out


def _read_mask(path: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path))


def _soft(mask: np.ndarray) -> np.ndarray:
    """A pasted object's alpha: its mask with a one-pixel soft edge (no cut-out seam to learn)."""
    return np.clip(ndimage.gaussian_filter(mask.astype(np.float32), 0.6) * 1.3, 0, 1)[..., None]


def paste_building(img: np.ndarray, obj: tuple[np.ndarray, np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """Paste a building (jittered colour, a quarter turn) with its shadow at a random place;
    returns its footprint in ``img``'s pixels."""
    rgb, mask = obj
    k = int(rng.integers(4))
    rgb, mask = np.rot90(rgb, k), np.rot90(mask, k)
    h, w = mask.shape
    H, W = img.shape[:2]
    if h >= H or w >= W:
        return np.zeros((H, W), bool)
    r, c = int(rng.integers(0, H - h)), int(rng.integers(0, W - w))
    placed = np.zeros((H, W), bool)
    placed[r : r + h, c : c + w] = mask
    dy, dx = rng.integers(-3, 4, 2)  # the shadow falls on the ground beside the roof
    shadow = np.roll(placed, (int(dy), int(dx)), axis=(0, 1)) & ~placed
    img[shadow] *= rng.uniform(0.35, 0.7)
    alpha = _soft(placed)
    patch = np.zeros_like(img)
    patch[r : r + h, c : c + w] = rgb * rng.uniform(0.9, 1.1, 3) * rng.uniform(0.8, 1.2)
    img[:] = img * (1 - alpha) + patch * alpha
    return placed


def blob(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """An irregular region covering 5-35% of the crop, or 35-80% (a whole district rebuilt,
    farmland turned into a factory): smoothed noise over a quantile."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape), float(rng.uniform(10, 24)))
    cover = rng.uniform(0.35, 0.8) if rng.random() < LARGE_CHANGE else rng.uniform(0.05, 0.35)
    region = noise > np.quantile(noise, 1 - cover)
    return ndimage.binary_opening(region, iterations=2)


def paste_land(img: np.ndarray, other: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Another land cover in a blob: ``other`` (another place or a ramp mosaic) or bare
    soil (a construction site, a cleared field)."""
    region = blob(img.shape[:2], rng)
    if rng.random() < 0.3:
        grey = rng.uniform(0, 1)  # from brown earth to grey gravel and concrete
        soil = ((1 - grey) * np.array([175, 150, 120]) + grey * np.array([165, 165, 160])) * rng.uniform(0.7, 1.2)
        other = soil + ndimage.gaussian_filter(rng.normal(0, 12, img.shape), (1.5, 1.5, 0))
    alpha = _soft(region)
    img[:] = img * (1 - alpha) + other * alpha
    return region


def _radiometry(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One date's look: gain per band, brightness, gamma, sometimes blur or haze."""
    img = img * rng.uniform(0.85, 1.15, 3) * rng.uniform(0.75, 1.25)
    img = 255 * (np.clip(img, 0, 255) / 255) ** rng.uniform(0.8, 1.25)
    if rng.random() < 0.15:
        img = ndimage.gaussian_filter(img, (float(rng.uniform(0.5, 1.2)),) * 2 + (0,))
    if rng.random() < 0.1:
        img = img * (1 - (t := rng.uniform(0.1, 0.35))) + 200 * t
    return img


def _crop_pair(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same window of both dates (a zoom of 0.75-1.33), the same turn and flip."""
    from PIL import Image

    side = min(*a.shape[:2], int(CROP * rng.uniform(0.75, 1.33)))
    r, c = rng.integers(0, a.shape[0] - side + 1), rng.integers(0, a.shape[1] - side + 1)
    k, flip = int(rng.integers(4)), rng.random() < 0.5
    out = []
    for img in (a, b):
        part = np.ascontiguousarray(img[r : r + side, c : c + side])
        part = np.asarray(Image.fromarray(part).resize((CROP, CROP), Image.Resampling.BILINEAR), np.float32)
        out.append(np.rot90(part[:, ::-1] if flip else part, k).copy())
    if rng.random() < 0.3:  # registration off by a pixel
        out[1] = np.roll(out[1], tuple(rng.integers(-1, 2, 2)), axis=(0, 1))
    return out[0], out[1]


def make_sample(
    pair: tuple[np.ndarray, np.ndarray], others: list[np.ndarray], objects: list, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 6) float32 pair, (H, W) uint8 change label."""
    dates = list(_crop_pair(*pair, rng))
    if rng.random() < 0.5:
        dates.reverse()
    label = np.zeros((CROP, CROP), bool)
    for _ in range(int(rng.poisson(1.5))):  # on both dates: a building is not change by itself
        obj = objects[int(rng.integers(len(objects)))]
        seed = int(rng.integers(1 << 31))
        for img in dates:
            paste_building(img, obj, np.random.default_rng(seed))
    if rng.random() < 0.6:
        for _ in range(1 + int(rng.poisson(2))):
            label |= paste_building(dates[int(rng.integers(2))], objects[int(rng.integers(len(objects)))], rng)
    if rng.random() < LAND_CHANGE:
        other = others[int(rng.integers(len(others)))]
        o = _crop_pair(other, other, rng)[0]
        label |= paste_land(dates[int(rng.integers(2))], o, rng)
    a, b = (_radiometry(d, rng) for d in dates)
    return np.clip(np.concatenate([a, b], axis=2), 0, 255).astype(np.float32), label.astype(np.uint8)


def _load(args: argparse.Namespace) -> tuple[dict, list, list, list]:
    from rschat.backends.lite_models import resample
    from rschat.train.lite_loop import load_manifests, read_rgb

    items, sources = load_manifests(args.data)
    places = [it for it in items if it["source"] == "urban-trees"]
    ramp = [it for it in items if "mask" in it]
    if not places or not ramp:
        raise SystemExit(
            "--data needs prepared urban-trees (the NAIP pairs) and ramp (the buildings) folders; ucmerced is optional"
        )
    splits = pairs_by_split(places)
    images = {p: read_rgb(p) for pairs in splits.values() for pair in pairs for p in pair}
    for s in splits:  # a pair whose dates barely correlate is misregistered or much changed, not "unchanged"
        splits[s] = [(a, b) for a, b in splits[s] if correlation(images[a], images[b]) >= MIN_CORRELATION]
    objects = {s: building_objects([it for it in ramp if it["split"] == s]) for s in ("train", "val")}
    # land to paste: whole ramp mosaics only (a missing chip is black, not land)
    whole = [it for it in ramp if it["split"] == "train" and not (_read_mask(it["mask"]) == 128).any()]
    mosaics = [resample(read_rgb(it["image"]), it["gsd_m"] / GSD_M) for it in whole]
    others = [images[a] for a, _ in splits["train"]] + [m for m in mosaics if min(m.shape[:2]) >= 256]
    scenes = [it for it in items if it.get("label") and it["split"] == "train"]  # UC Merced, when given
    others += [resample(read_rgb(it["image"]), it["gsd_m"] / GSD_M) for it in scenes]
    data = {s: [(images[a], images[b]) for a, b in splits[s]] for s in ("train", "val")}
    if not data["train"] or not objects["train"]:
        raise SystemExit(
            f"nothing to train on: {len(data['train'])} NAIP pairs outside {', '.join(HELD_OUT_CITIES)} and "
            f"{len(objects['train'])} whole ramp buildings in the train split"
        )
    if not data["val"] or not objects["val"]:
        print("no validation places or buildings: validation uses training pairs (the card's figures are not held out)")
    print(
        f"{len(data['train'])} training and {len(data['val'])} validation pairs of NAIP dates "
        f"({len(splits['test'])} held out), {len(objects['train'])}/{len(objects['val'])} buildings and "
        f"{len(others)} land tiles to paste"
    )
    return data, [objects["train"], objects["val"]], others, sources


def _validate_set(pairs: list, others: list, objects: list, n: int = 96) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(12345)  # the same validation pairs at every check
    return [make_sample(pairs[i % len(pairs)], others, objects, rng) for i in range(n)]


def run(args: argparse.Namespace) -> int:
    import torch
    from torch.nn import functional as F

    from rschat.train.lite_loop import fit, onnx_latency_s, write_model_card
    from rschat.train.lite_nets import ChangeNet, MaskExport, export_onnx

    data, (objects, val_objects), others, sources = _load(args)
    val = _validate_set(data["val"] or data["train"], others, val_objects or objects)
    train = data["train"]

    def batch(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        picks = [make_sample(train[int(rng.integers(len(train)))], others, objects, rng) for _ in range(args.batch)]
        img, lab = (np.stack(a) for a in zip(*picks, strict=True))
        return torch.from_numpy(img).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(lab)[:, None].float()

    def loss_fn(net: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(net(x), size=x.shape[-2:], mode="bilinear", align_corners=False)
        p = torch.sigmoid(y)
        dice = 1 - (2 * (p * target).sum() + 1) / (p.sum() + target.sum() + 1)
        return F.binary_cross_entropy_with_logits(y, target) + dice

    def validate(net: torch.nn.Module) -> dict[str, float]:
        device = next(net.parameters()).device
        tp = fp = fn = negatives = 0.0
        for img, lab in val:
            x = torch.from_numpy(img).permute(2, 0, 1)[None].to(device)
            pred = (F.interpolate(net(x), size=lab.shape, mode="bilinear", align_corners=False)[0, 0] > 0).cpu().numpy()
            truth = lab > 0
            tp, fp, fn = tp + (pred & truth).sum(), fp + (pred & ~truth).sum(), fn + (~pred & truth).sum()
            negatives += (~truth).sum()
        return {"f1": 2 * tp / max(1.0, 2 * tp + fp + fn), "false_alarm_share": fp / max(1.0, negatives)}

    net = ChangeNet()
    fitted = fit(net, args, batch, loss_fn, validate, key="f1", desc="change")
    out = Path(args.out)
    export_onnx(MaskExport(net), str(out / "change.onnx"), CROP, ["probability"], channels=6)
    meta = {
        "task": "change",
        "summary": "Change detector: the probability of 'changed' per pixel of a co-registered pair, from a small "
        "Siamese U-Net (shared encoder, decoder on the dates' feature difference and mean; no pretrained weights) "
        "at 0.6 m. Trained on real NAIP pairs of the same places two and four years apart (as unchanged) with "
        "buildings and land pasted in on one date (synthetic change). The app keeps a change region of the "
        "rules where this model calls at least 30% of it changed.",
        "input": "6 bands, the before date's RGB then the after date's",
        "gsd_m": GSD_M,
        "stride": 1,
        "threshold": 0.5,
        "latency_s_1024": round(onnx_latency_s(out / "change.onnx", (1, 6, 1024, 1024)), 3),
    }
    write_model_card(out, "change", meta, sources, fitted, args)
    print(f"wrote {out / 'change.onnx'} (best validation F1 {fitted['best']['f1']:.3f})")
    return 0
