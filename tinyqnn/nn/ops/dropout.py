"""Inverted dropout: zero each element with probability p, scale the survivors by 1/(1-p)."""
from __future__ import annotations

import numpy as np

from ...engine.function import Context, Function
from ...engine.random import default_generator


class Dropout(Function):
    """out = x * mask, mask = keep / (1 - p), keep ~ Bernoulli(1 - p) from tinyqnn's generator.

    Scaling at training time keeps E[out] = x, so evaluation is the identity.
    Shapes: x (any) -> out, same shape.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, p: float) -> np.ndarray:
        keep = default_generator().random(x.shape, dtype=x.dtype) >= p
        mask = keep * x.dtype.type(1 / (1 - p))  # bool * float32 scalar stays float32
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (mask,) = ctx.saved_tensors  # d out / d x = mask
        return grad * mask, None
