"""ResNet for 32x32 images (He et al. 2016, Sec. 4.2): ResNet-20/32/44/56 for CIFAR-10.

Three stages of ``n`` basic blocks each (depth = 6n + 2) with 16, 32 and 64 channels on 32x32,
16x16 and 8x8 maps; the first block of stages 2 and 3 halves the map with a stride-2 convolution.
The shortcuts are the paper's option A: identity, and where the shape changes, every second pixel
with the new channels zero-padded. Option A adds no parameters, so ResNet-20 has 0.27M.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn
from ..engine import Tensor, pad


class ShortcutA(nn.Module):
    """Parameter-free shortcut: keep every ``stride``-th pixel, zero-pad the new channels on both sides.

    Shapes: x (N, C_in, H, W) -> (N, C_out, ceil(H / stride), ceil(W / stride)); when C_out - C_in is
    odd the extra zero channel goes last.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"ShortcutA can only add channels: {in_channels} -> {out_channels}")
        self.in_channels, self.out_channels, self.stride = int(in_channels), int(out_channels), int(stride)

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        if extra:
            x = pad(x, ((0, 0), (extra // 2, extra - extra // 2), (0, 0), (0, 0)))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the shortcut, then ReLU.

    Shapes: x (N, C_in, H, W) -> (N, C_out, H', W'), H' = ceil(H / stride).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dtype: Any = np.float32):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False, dtype=dtype)
        self.bn1 = nn.BatchNorm2d(out_channels, dtype=dtype)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False, dtype=dtype)
        self.bn2 = nn.BatchNorm2d(out_channels, dtype=dtype)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = ShortcutA(in_channels, out_channels, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.bn1(self.conv1(x)).relu()
        out = self.bn2(self.conv2(out))
        return (out + self.shortcut(x)).relu()


class ResNetCIFAR(nn.Module):
    """ResNet-(6n+2) for CIFAR-shaped images; ``resnet20()`` builds the usual n = 3 network.

    Args:
        num_blocks: n, basic blocks per stage (3 -> ResNet-20, 5 -> ResNet-32, 9 -> ResNet-56).
        widths: channels of the three stages (16, 32, 64 in the paper).
        in_channels: image channels (3 for CIFAR).
        num_classes: outputs of the last layer.
        dtype: parameter dtype (float64 for gradient checks).

    Shapes: x (N, in_channels, H, W) -> logits (N, num_classes); 32x32 images give 32x32, 16x16
    and 8x8 maps in the three stages, then a global average pool to (N, widths[2]).

    Initialisation: convolutions and the last layer He-normal (fan_in), as common CIFAR ResNet code does;
    batch norms weight 1, bias 0.
    """

    def __init__(self, num_blocks: int = 3, widths: tuple[int, int, int] = (16, 32, 64), in_channels: int = 3,
                 num_classes: int = 10, dtype: Any = np.float32):
        super().__init__()
        if num_blocks < 1 or len(widths) != 3 or min(widths) < 1:
            raise ValueError(f"ResNetCIFAR needs num_blocks >= 1 and three positive widths, got {num_blocks}, {widths}")
        self.num_blocks, self.widths = int(num_blocks), tuple(int(w) for w in widths)
        self.in_channels = int(in_channels)
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False, dtype=dtype)
        self.bn1 = nn.BatchNorm2d(widths[0], dtype=dtype)
        blocks, channels = [], widths[0]
        for stage, width in enumerate(widths):
            for i in range(num_blocks):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(channels, width, stride, dtype=dtype))
                channels = width
        self.layers = nn.Sequential(*blocks)
        self.fc = nn.Linear(widths[2], num_classes, dtype=dtype)
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResNetCIFAR expects images of shape (N, {self.in_channels}, H, W), got {x.shape}")
        out = self.bn1(self.conv1(x)).relu()
        out = self.layers(out)
        out = out.mean(axis=(2, 3))  # global average pool: (N, C, H, W) -> (N, C)
        return self.fc(out)


def resnet20(num_classes: int = 10, dtype: Any = np.float32) -> ResNetCIFAR:
    """ResNet-20 for 3x32x32 images: 19 convolutions (16/32/64 channels), option-A shortcuts, 0.27M parameters.

    Shapes: x (N, 3, 32, 32) -> logits (N, num_classes).
    """
    return ResNetCIFAR(3, (16, 32, 64), 3, num_classes, dtype)
