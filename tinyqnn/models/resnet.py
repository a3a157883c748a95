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


def _fusable(bn: nn.Module, act: nn.Module | None = None) -> bool:
    """bn (and act) may run as one fused op: no forward hooks watch their separate outputs, and the
    activation (when given) is a plain ReLU (a ``QuantAct`` in its place runs on its own)."""
    return not bn._forward_hooks and (act is None or (type(act) is nn.ReLU and not act._forward_hooks))


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> act1 -> conv3x3 -> BN, plus the shortcut, then act2 (both ReLU unless swapped,
    e.g. for ``QuantAct`` by ``tinyqnn.quant.quantize_activations``).

    Shapes: x (N, C_in, H, W) -> (N, C_out, H', W'), H' = ceil(H / stride).

    With ReLUs the tails ``relu(bn1(.))`` and ``relu(bn2(.) + shortcut(x))`` each run as one fused
    ``F.batch_norm`` (same values and gradients, a third of the passes over memory).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, dtype: Any = np.float32):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False, dtype=dtype)
        self.bn1 = nn.BatchNorm2d(out_channels, dtype=dtype)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False, dtype=dtype)
        self.bn2 = nn.BatchNorm2d(out_channels, dtype=dtype)
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = ShortcutA(in_channels, out_channels, stride)
        self.act2 = nn.ReLU()
        self.stride = int(stride)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(x)
        out = self.bn1(out, relu=True) if _fusable(self.bn1, self.act1) else self.act1(self.bn1(out))
        out = self.conv2(out)
        if not _fusable(self.bn2) or self.shortcut._forward_hooks:
            return self.act2(self.bn2(out) + self.shortcut(x))
        if _fusable(self.bn2, self.act2):
            return self.bn2(out, residual=x, stride=self.stride, relu=True)
        return self.act2(self.bn2(out, residual=x, stride=self.stride))


class ResNetCIFAR(nn.Module):
    """ResNet-(6n+2) for CIFAR-shaped images; ``resnet20()`` builds the usual n = 3 network.

    Args:
        num_blocks: n, basic blocks per stage (1 -> ResNet-8, 2 -> ResNet-14, 3 -> ResNet-20, 5 -> ResNet-32).
        widths: channels of the three stages (16, 32, 64 in the paper).
        in_channels: image channels (3 for CIFAR).
        num_classes: outputs of the last layer.
        dtype: parameter dtype (float64 for gradient checks).

    Shapes: x (N, in_channels, H, W) -> logits (N, num_classes); 32x32 images give 32x32, 16x16
    and 8x8 maps in the three stages (28x28 MNIST images, ``in_channels=1``: 28, 14 and 7), then a
    global average pool to (N, widths[2]). Activations are ``nn.ReLU`` modules (``act``, and
    ``act1``/``act2`` in each block) so that ``quantize_activations`` can swap them.

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
        self.arch_kwargs = {"num_blocks": self.num_blocks, "widths": list(self.widths),
                            "in_channels": self.in_channels, "num_classes": int(num_classes)}
        self.conv1 = nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False, dtype=dtype)
        self.bn1 = nn.BatchNorm2d(widths[0], dtype=dtype)
        self.act = nn.ReLU()
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
        out = self.conv1(x)
        out = self.bn1(out, relu=True) if _fusable(self.bn1, self.act) else self.act(self.bn1(out))
        out = self.layers(out)
        out = out.mean(axis=(2, 3))  # global average pool: (N, C, H, W) -> (N, C)
        return self.fc(out)


def resnet20(num_classes: int = 10, dtype: Any = np.float32) -> ResNetCIFAR:
    """ResNet-20 for 3x32x32 images: 19 convolutions (16/32/64 channels), option-A shortcuts, 0.27M parameters.

    Shapes: x (N, 3, 32, 32) -> logits (N, num_classes).
    """
    return ResNetCIFAR(3, (16, 32, 64), 3, num_classes, dtype)


def resnet_depth(depth: int, in_channels: int = 3, num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64),
                 dtype: Any = np.float32) -> ResNetCIFAR:
    """ResNet-``depth`` of the CIFAR family, depth = 6n + 2 (8, 14, 20, 26, 32, ...).

    Shapes: x (N, in_channels, H, W) -> logits (N, num_classes).
    """
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"a CIFAR ResNet has depth 6n + 2 with n >= 1 (8, 14, 20, ...), got {depth}")
    return ResNetCIFAR((depth - 2) // 6, widths, in_channels, num_classes, dtype)
