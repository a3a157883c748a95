"""Loss functions as modules (thin wrappers over ``nn.functional``)."""
from __future__ import annotations

from typing import Any

from .. import functional as F
from ...engine import Tensor
from ..module import Module

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy. Shapes: logits (N, K), target int (N,) -> scalar (or (N,) with reduction="none")."""

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(logits, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error. Shapes: input and target the same shape -> scalar (or that shape with "none")."""

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002  (PyTorch's name)
        return F.mse_loss(input, target, reduction=self.reduction)
