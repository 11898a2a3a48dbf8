"""``rschat train landuse``: the lite land-use classifier for satellite images at about
10 m (EuroSAT's ten classes, Sentinel-2 true colour), trained from scratch on
``rschat data prepare eurosat`` output, exported to ONNX.

UC Merced's scene model sees 77 m of ground at 0.3 m and cannot read a Sentinel-2 or
Landsat image (a 10 m pixel is its whole roof). This one sees EuroSAT's 64 px tiles (640 m
at 10 m): residential and industrial land, highways, crops, pasture, forest, rivers and
lakes, which is what a 10 m image shows. The app classifies an image tile by tile at that
scale (``rschat.backends.learned.scene``).

Satellite products of the same ground differ in stretch, gamma and haze (EuroSAT's JPEGs
are bright; RSVQA's Sentinel-2 PNGs are dark and hazy), so training varies those
(``photometric``) and the app reads an image as it is.
"""

from __future__ import annotations

import argparse

HELP = "train the lite land-use classifier (EuroSAT classes, ~10 m satellite) on prepared data; export ONNX + card"
SIDE = 64  # EuroSAT's tiles, as they are
TILE_M = 640.0  # 64 px x 10 m


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from rschat.train.lite_loop import add_common_arguments

    add_common_arguments(parser, steps=6000, batch=64)


def run(args: argparse.Namespace) -> int:
    from rschat.train.scene import train_classifier

    summary = (
        "Land-use classifier over EuroSAT's 10 classes for satellite images at about 10 m (Sentinel-2 true "
        "colour), trained from scratch (no pretrained weights). Sees 640 m tiles (64 px at 10 m)."
    )
    # One view: the app averages half-overlapping windows instead (eight views each made a
    # 1024 px image at 10 m take 4.9 s).
    return train_classifier(args, "landuse", SIDE, TILE_M, summary, photometric=True, views=1)
