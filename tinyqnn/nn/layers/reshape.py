"""Shape-only modules: ``Flatten`` and ``Identity``."""
from __future__ import annotations

from typing import Any

from ...engine import Tensor, flatten
from ..module import Module


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` into one.

    Shapes: default (N, C, H, W) -> (N, C*H*W); the batch axis 0 is kept.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, x: Tensor) -> Tensor:
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. where batch norm is switched off).

    Accepts and ignores constructor arguments, like PyTorch's. Shapes: any -> same.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x
