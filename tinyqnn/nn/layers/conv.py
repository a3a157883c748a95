"""``Conv2d``: 2-D cross-correlation over (N, C, H, W) images."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .. import init
from ...engine import Tensor
from ..module import Module, Parameter


def _pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) for v in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return int(pair[0]), int(pair[1])


def _single_if_square(pair: tuple[int, int]) -> int | tuple[int, int]:
    return pair[0] if pair[0] == pair[1] else pair


class Conv2d(Module):
    """2-D convolution (cross-correlation, as in every deep-learning library).

    Args:
        in_channels, out_channels: C and F.
        kernel_size: KH = KW (int) or (KH, KW).
        stride, padding: int or pair; zero padding on each side.
        bias: learn one bias per output channel.
        dtype: parameter dtype.

    Shapes: x (N, C, H, W) -> (N, F, H', W') with H' = (H + 2*pad_h - KH) // stride_h + 1 (same for W);
    weight (F, C, KH, KW), bias (F,).

    Initialisation (PyTorch's default): weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
    fan_in = C * KH * KW.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0, bias: bool = True,
        dtype: Any = np.float32,
    ):
        super().__init__()
        if in_channels <= 0 or out_channels <= 0:
            raise ValueError(f"Conv2d needs positive channel counts, got in={in_channels}, out={out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = _pair(stride, "stride")
        self.padding = _pair(padding, "padding")
        if min(self.kernel_size) <= 0 or min(self.stride) <= 0 or min(self.padding) < 0:
            raise ValueError(
                f"Conv2d needs kernel_size > 0, stride > 0, padding >= 0; got kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}"
            )
        self.weight = Parameter(np.empty((out_channels, in_channels, *self.kernel_size), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.layer_default_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if not x.is_floating_point():  # else NumPy promotes and the error would blame a float64 output
            raise TypeError(
                f"Conv2d expects a floating-point input like its {self.weight.dtype} weight, got an {x.dtype} "
                f"input of shape {x.shape}; convert it first, e.g. x.to(np.{self.weight.dtype})"
            )
        if x.ndim != 4:
            raise ValueError(f"Conv2d expects a 4-D input (N, C, H, W), got shape {x.shape}")
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"Conv2d expects in_channels={self.in_channels}, but the input has {x.shape[1]} channels "
                f"(input shape {x.shape})"
            )
        return F.conv2d(
            x, self.weight, self.bias, stride=_single_if_square(self.stride), padding=_single_if_square(self.padding)
        )

    def extra_repr(self) -> str:
        text = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}"
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.bias is None:
            text += ", bias=False"
        return text
