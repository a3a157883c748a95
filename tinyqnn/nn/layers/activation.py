"""Elementwise activations as modules (shape in = shape out)."""
from __future__ import annotations

from .. import functional as F
from ...engine import Tensor
from ..module import Module


class ReLU(Module):
    """max(x, 0). Shapes: any -> same."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x. Shapes: any -> same."""

    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class Tanh(Module):
    """tanh(x). Shapes: any -> same."""

    def forward(self, x: Tensor) -> Tensor:
        return F.tanh(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x)). Shapes: any -> same."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)
