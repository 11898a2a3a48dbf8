"""The small networks behind lite mode: one convolutional encoder, a classifier head
(scenes), a U-Net-style dense head (tree-centre heatmaps, building masks) and its
Siamese form for pairs (change).

Written here rather than taken from a model zoo because they must be small (a few MB of
ONNX), train from scratch on two CPU cores in well under two hours, and export to plain
ONNX operators that ONNX Runtime runs fast on a CPU. Every network takes RGB as float32
0-255, NCHW; the normalisation is inside the graph, so the app feeds pixels as they are.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

MEAN, STD = 110.0, 60.0  # rough RGB statistics of aerial imagery; a fixed scale suffices with BN


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Stage(nn.Module):
    """A strided conv then a residual conv pair."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.down = conv_bn(cin, cout, stride)
        self.body = nn.Sequential(conv_bn(cout, cout), nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return F.relu(x + self.body(x))


class Encoder(nn.Module):
    """Features at strides 2, 4, 8, 16 (and 32 with ``deep``)."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        chans = (3, *widths)
        self.stages = nn.ModuleList(Stage(chans[i], chans[i + 1], 2) for i in range(len(widths)))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - MEAN) / STD
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class SceneNet(nn.Module):
    """Scene classifier: logits over the classes."""

    def __init__(self, classes: int, widths: tuple[int, ...] = (32, 48, 96, 160, 256)) -> None:
        super().__init__()
        self.encoder = Encoder(widths)
        self.head = nn.Sequential(nn.Dropout(0.2), nn.Linear(widths[-1], classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encoder(x)[-1]
        return self.head(f.mean(dim=(2, 3)))


class DenseNet(nn.Module):
    """Encoder-decoder with skips; ``outputs`` maps at stride 2 of the input."""

    def __init__(self, outputs: int, widths: tuple[int, ...] = (24, 48, 96, 160)) -> None:
        super().__init__()
        self.encoder = Encoder(widths)
        ups = []
        for i in range(len(widths) - 1, 0, -1):
            ups.append(conv_bn(widths[i] + widths[i - 1], widths[i - 1]))
        self.ups = nn.ModuleList(ups)
        self.head = nn.Sequential(conv_bn(widths[0], widths[0]), nn.Conv2d(widths[0], outputs, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        y = feats[-1]
        for up, skip in zip(self.ups, reversed(feats[:-1]), strict=True):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], dim=1))
        return self.head(y)


class ChangeNet(nn.Module):
    """Siamese change network: one encoder reads each date (input: 6 channels, before RGB
    then after RGB); the decoder sees, at every scale, the absolute difference of the
    dates' features and their mean. Both are symmetric in the dates, so a change reads the
    same whichever date comes first; the mean says what the place is (a season's change
    on a field is not a new roof). One output map at stride 2, like ``DenseNet``."""

    def __init__(self, widths: tuple[int, ...] = (24, 48, 96, 160)) -> None:
        super().__init__()
        self.encoder = Encoder(widths)
        self.ups = nn.ModuleList(
            conv_bn(2 * widths[i] + 2 * widths[i - 1] if i == len(widths) - 1 else widths[i] + 2 * widths[i - 1],
                    widths[i - 1])
            for i in range(len(widths) - 1, 0, -1)
        )  # fmt: skip
        self.head = nn.Sequential(conv_bn(widths[0], widths[0]), nn.Conv2d(widths[0], 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        feats = self.encoder(torch.cat([x[:, :3], x[:, 3:]], dim=0))  # both dates in one pass
        joined = [torch.cat([(f[:n] - f[n:]).abs(), (f[:n] + f[n:]) / 2], dim=1) for f in feats]
        y = joined[-1]
        for up, skip in zip(self.ups, reversed(joined[:-1]), strict=True):
            y = F.interpolate(y, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            y = up(torch.cat([y, skip], dim=1))
        return self.head(y)


class TreeExport(nn.Module):
    """What ships for trees: (centre heatmap 0-1, crown diameter in input pixels), stride 2."""

    def __init__(self, net: DenseNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.net(x)
        return torch.sigmoid(y[:, :1]), torch.exp(y[:, 1:2])


class MaskExport(nn.Module):
    """What ships for buildings (and change): the probability at every input pixel."""

    def __init__(self, net: DenseNet | ChangeNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net(x)[:, :1]
        return torch.sigmoid(F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False))


class SceneExport(nn.Module):
    """What ships for scenes: class probabilities, averaged over the eight flips and
    quarter turns of the input (a scene seen from above has no "up"; this costs eight
    small passes and gains a few points of accuracy)."""

    def __init__(self, net: SceneNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.transpose(2, 3)
        views = [x, x.flip(3), x.flip(2), x.flip(2).flip(3), t, t.flip(3), t.flip(2), t.flip(2).flip(3)]
        n = x.shape[0]
        probs = torch.softmax(self.net(torch.cat(views, dim=0)), dim=1)
        return probs.reshape(8, n, -1).mean(dim=0)


class OneViewExport(nn.Module):
    """Class probabilities of the input as it is: for a model the app runs over many
    overlapping windows, whose average already does what the eight views would, at an
    eighth of the cost."""

    def __init__(self, net: SceneNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def export_onnx(module: nn.Module, path: str, side: int, outputs: list[str], channels: int = 3) -> None:
    """ONNX with dynamic batch, height and width (opset 17), checked by onnx."""
    module.eval()
    dummy = torch.zeros(1, channels, side, side)
    dims = {"image": {0: "n", 2: "h", 3: "w"}, **{o: {0: "n"} for o in outputs}}
    torch.onnx.export(
        module, (dummy,), path, input_names=["image"], output_names=outputs, dynamic_axes=dims,
        opset_version=17, dynamo=False,
    )  # fmt: skip
