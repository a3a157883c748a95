"""``MaxPool2d`` and ``AvgPool2d``: downsample each channel over a sliding window."""
from __future__ import annotations

from .. import functional as F
from ...engine import Tensor
from ..module import Module


class _Pool2d(Module):
    def __init__(self, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
                 padding: int | tuple[int, int] = 0):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride  # PyTorch: stride defaults to the window
        self.padding = padding

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} expects a 4-D input (N, C, H, W), got shape {x.shape}")

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Maximum over each window.

    Args: kernel_size, stride (default = kernel_size), padding (int or pair).
    Shapes: x (N, C, H, W) -> (N, C, H', W'), H' = (H + 2*padding - kernel) // stride + 1.
    """

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """Mean over each window (LeNet's "subsampling" without its learned scale).

    Args: kernel_size, stride (default = kernel_size), padding (int or pair).
    Shapes: x (N, C, H, W) -> (N, C, H', W'), H' = (H + 2*padding - kernel) // stride + 1.
    """

    def forward(self, x: Tensor) -> Tensor:
        self._check(x)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)
