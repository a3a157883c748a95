"""VGG-11 for 32x32 images (Simonyan & Zisserman 2015, configuration A), as Yin et al. (2019) use it on
CIFAR-10: eight 3x3 convolutions (padding 1) each followed by batch norm and an activation, five 2x2
max pools, and one linear layer 512 -> classes.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn
from ..engine import Tensor

#: channels of each convolution, "M" = 2x2 max pool (VGG configuration A)
VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG(nn.Module):
    """Shapes: x (N, in_channels, 32, 32) -> logits (N, num_classes).

    Activations are ``nn.ReLU`` modules (``quantize_activations`` swaps them). ``widths_divisor`` > 1
    divides every channel count (a narrower net for quick tests).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, widths_divisor: int = 1, dtype: Any = np.float32):
        super().__init__()
        self.arch_kwargs = {"in_channels": int(in_channels), "num_classes": int(num_classes),
                            "widths_divisor": int(widths_divisor)}
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG11:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            width = max(1, int(item) // widths_divisor)
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False, dtype=dtype),
                       nn.BatchNorm2d(width, dtype=dtype), nn.ReLU()]
            channels = width
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes, dtype=dtype)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[2:] != (32, 32):
            raise ValueError(f"VGG-11 expects images of shape (N, C, 32, 32), got {x.shape}")
        return self.fc(self.features(x).reshape(x.shape[0], -1))
