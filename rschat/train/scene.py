"""``rschat train scene``: the lite scene classifier (UC Merced's 21 land-use classes),
trained from scratch on ``rschat data prepare ucmerced`` output, exported to ONNX.

Scenes are seen as UC Merced shows them: 256 px at 0.3 m (77 m across), resized to the
network's input side. The app classifies a larger image tile by tile at that scale and
averages the tiles' probabilities.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

HELP = "train the lite scene classifier (UC Merced classes) on prepared data; export ONNX + card"
SIDE = 128  # network input (UC Merced's 256 px tiles, halved)
TILE_M = 76.8  # ground width of one UC Merced tile (256 px x 0.3 m)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rschat.train.lite_loop import add_common_arguments

    add_common_arguments(parser, steps=1800, batch=32)


def _augment(img: np.ndarray, rng: np.random.Generator, side_px: int, photometric: bool = False) -> np.ndarray:
    """A random crop (70-100% of the side), a flip and a quarter turn; colour jitter.
    ``photometric`` adds what differs between satellite products of the same ground (a
    file's stretch, gamma and haze): see ``rschat.train.landuse``."""
    h = img.shape[0]
    side = int(h * rng.uniform(0.7, 1.0))
    r, c = rng.integers(0, h - side + 1, 2)
    out = img[r : r + side, c : c + side]
    if rng.random() < 0.5:
        out = out[:, ::-1]
    out = np.rot90(out, int(rng.integers(4)))
    from PIL import Image

    out = np.asarray(Image.fromarray(np.ascontiguousarray(out)).resize((side_px, side_px), Image.Resampling.BILINEAR))
    gain = rng.uniform(0.8, 1.2, 3) * rng.uniform(0.85, 1.15)
    out = out * gain
    if photometric:
        x = np.clip(out / 255.0, 0, 1) ** rng.uniform(0.7, 1.4)
        haze = rng.uniform(0, 0.15) * np.array([0.6, 0.8, 1.0])  # path radiance: strongest in blue
        out = (x * rng.uniform(0.5, 1.3) + haze) * 255.0
    return np.clip(out, 0, 255)


def run(args: argparse.Namespace) -> int:
    summary = (
        "Scene classifier over UC Merced's 21 land-use classes, trained from scratch (no pretrained "
        "weights). Sees 76.8 m tiles (256 px at 0.3 m) resized to 128 px."
    )
    return train_classifier(args, "scene", SIDE, TILE_M, summary)


def train_classifier(
    args: argparse.Namespace,
    name: str,
    side_px: int,
    tile_m: float,
    summary: str,
    photometric: bool = False,
    views: int = 8,
) -> int:
    """Train, export ``NAME.onnx`` (``views``: the eight flips and turns averaged in the
    graph, or 1) and write its card; the scene and land-use models differ only in their
    data, input side, ground size and views."""
    import torch
    from PIL import Image
    from torch.nn import functional as F

    from rschat.train.lite_loop import fit, load_manifests, read_rgb
    from rschat.train.lite_nets import SceneNet

    items, sources = load_manifests(args.data)
    classes = sorted({it["label"] for it in items})
    by_split: dict[str, list[tuple[np.ndarray, int]]] = {"train": [], "val": [], "test": []}
    for it in items:
        img = read_rgb(it["image"])
        by_split[it["split"]].append((img, classes.index(it["label"])))
    train = by_split["train"]
    print(f"{len(train)} train, {len(by_split['val'])} val, {len(by_split['test'])} test (held back), "
          f"{len(classes)} classes")  # fmt: skip

    def whole(img: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(img).resize((side_px, side_px), Image.Resampling.BILINEAR), dtype=np.float32)

    val_x = torch.from_numpy(np.stack([whole(i) for i, _ in by_split["val"]])).permute(0, 3, 1, 2).contiguous()
    val_y = torch.tensor([y for _, y in by_split["val"]])

    def batch(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        pick = rng.integers(0, len(train), args.batch)
        x = np.stack([_augment(train[i][0], rng, side_px, photometric) for i in pick]).astype(np.float32)
        return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.tensor([train[i][1] for i in pick])

    def loss_fn(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(net(x), y, label_smoothing=0.1)

    def validate(net: torch.nn.Module) -> dict[str, float]:
        device = next(net.parameters()).device
        pred = torch.cat([net(val_x[i : i + 64].to(device)).argmax(1).cpu() for i in range(0, len(val_x), 64)])
        return {"accuracy": float((pred == val_y).float().mean())}

    net = SceneNet(len(classes))
    fitted = fit(net, args, batch, loss_fn, validate, key="accuracy", desc=name)
    meta = {"task": "scene", "summary": summary, "input_side": side_px, "tile_m": tile_m, "gsd_m": tile_m / side_px,
            "classes": classes, "views": views}  # fmt: skip
    _export(net, args, name, meta, sources, fitted)
    return 0


def _export(net: object, args: argparse.Namespace, name: str, meta: dict, sources: list[dict], fitted: dict) -> None:
    """``NAME.onnx`` (eight views averaged in the graph, or one) and its card."""
    from rschat.train.lite_loop import onnx_latency_s, write_model_card
    from rschat.train.lite_nets import OneViewExport, SceneExport, export_onnx

    out, side = Path(args.out), int(meta["input_side"])
    export = SceneExport(net) if meta["views"] == 8 else OneViewExport(net)  # type: ignore[arg-type]
    export_onnx(export, str(out / f"{name}.onnx"), side, ["probabilities"])
    meta["latency_s_1024"] = round(onnx_latency_s(out / f"{name}.onnx", (16, 3, side, side)), 3)
    write_model_card(out, name, meta, sources, fitted, args)
    print(f"wrote {out / (name + '.onnx')} (best validation accuracy {fitted['best']['accuracy']:.3f})")
