"""Reductions over axes: sum, mean, max/min, var (all with ``axis`` and ``keepdims``)."""
from __future__ import annotations

import numpy as np

from ..function import Context, Function
from ._util import expand_reduced, normalize_axes


class Sum(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axis=None, keepdims: bool = False) -> np.ndarray:
        ctx.axes, ctx.keepdims, ctx.shape = normalize_axes(axis, a.ndim), keepdims, a.shape
        return np.asarray(a.sum(axis=ctx.axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        # every summed element contributes with derivative 1: copy the gradient back along the axes
        return np.broadcast_to(expand_reduced(grad, ctx.axes, ctx.keepdims), ctx.shape), None, None


class Mean(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axis=None, keepdims: bool = False) -> np.ndarray:
        ctx.axes, ctx.keepdims, ctx.shape = normalize_axes(axis, a.ndim), keepdims, a.shape
        ctx.count = int(np.prod([a.shape[i] for i in ctx.axes])) if a.ndim else 1
        return np.asarray(a.mean(axis=ctx.axes, keepdims=keepdims))

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        g = expand_reduced(grad, ctx.axes, ctx.keepdims) / ctx.count  # d mean / d a_i = 1/count
        return np.broadcast_to(g, ctx.shape), None, None


class Max(Function):
    """Max over axes; the gradient goes to the maximal entries, split evenly between ties."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axis=None, keepdims: bool = False) -> np.ndarray:
        if a.size == 0:
            raise ValueError(f"max of an empty tensor (shape {a.shape}) is undefined")
        axes = normalize_axes(axis, a.ndim)
        out = np.asarray(a.max(axis=axes, keepdims=True))
        ctx.save_for_backward(a == out)
        ctx.axes, ctx.keepdims = axes, keepdims
        return out if keepdims else np.asarray(out.squeeze(axis=axes))

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (winners,) = ctx.saved_tensors
        share = winners / winners.sum(axis=ctx.axes, keepdims=True)
        return expand_reduced(grad, ctx.axes, ctx.keepdims) * share.astype(grad.dtype), None, None


class Var(Function):
    """Variance with Bessel-style ``correction`` (1 = unbiased, PyTorch's default; 0 = population)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, axis=None, keepdims: bool = False, correction: int = 1) -> np.ndarray:
        axes = normalize_axes(axis, a.ndim)
        count = int(np.prod([a.shape[i] for i in axes])) if a.ndim else 1
        if count - correction <= 0:
            raise ValueError(f"var over {count} element(s) with correction={correction} divides by zero")
        centered = a - a.mean(axis=axes, keepdims=True)
        ctx.save_for_backward(centered)
        ctx.axes, ctx.keepdims, ctx.denominator = axes, keepdims, count - correction
        return np.asarray((centered * centered).sum(axis=axes, keepdims=keepdims) / ctx.denominator)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (centered,) = ctx.saved_tensors  # d var / d a_i = 2 (a_i - mean) / (count - correction)
        g = expand_reduced(grad, ctx.axes, ctx.keepdims)
        return g * centered * (2 / ctx.denominator), None, None, None
