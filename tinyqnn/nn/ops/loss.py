"""Softmax, log-softmax and the fused softmax + negative log-likelihood (cross-entropy).

All three subtract the maximum before exponentiating: softmax(x) = softmax(x - max x), and
exp(<= 0) can neither overflow nor turn into inf/inf = nan, even for logits of size 1e4 in float32.
"""
from __future__ import annotations

import numpy as np

from ...engine.function import Context, Function


def log_softmax_array(x: np.ndarray, axis: int) -> np.ndarray:
    """Stable log(softmax(x)) along ``axis``: (x - max) - log(sum(exp(x - max)))."""
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


class Softmax(Function):
    """s = exp(x) / sum(exp(x)) along ``axis``. Shapes: x (..., K, ...) -> s of the same shape."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: int = -1) -> np.ndarray:
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        s = e / e.sum(axis=axis, keepdims=True)
        ctx.save_for_backward(s)
        ctx.axis = axis
        return s

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (s,) = ctx.saved_tensors  # ds_i/dx_j = s_i (delta_ij - s_j)  =>  dx = s * (g - <g, s>)
        return s * (grad - (grad * s).sum(axis=ctx.axis, keepdims=True)), None


class LogSoftmax(Function):
    """y = x - logsumexp(x) along ``axis``. Shapes: x (..., K, ...) -> y of the same shape."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: int = -1) -> np.ndarray:
        y = log_softmax_array(x, axis)
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (y,) = ctx.saved_tensors  # dy_i/dx_j = delta_ij - softmax_j  =>  dx = g - softmax * sum(g)
        return grad - np.exp(y) * grad.sum(axis=ctx.axis, keepdims=True), None


class CrossEntropy(Function):
    """loss_n = -log softmax(logits_n)[target_n], reduced by "mean" (over N), "sum" or "none".

    Shapes: logits (N, K), target (N,) integer class indices -> loss () or (N,) for "none".
    Fused, so the gradient is the famous softmax - onehot(target) (times the reduction's scale).
    """

    @staticmethod
    def forward(ctx: Context, logits: np.ndarray, target: np.ndarray, reduction: str = "mean") -> np.ndarray:
        n = logits.shape[0]
        logp = log_softmax_array(logits, axis=1)
        loss = -logp[np.arange(n), target]
        ctx.save_for_backward(logp, target)
        ctx.reduction = reduction
        if reduction == "mean":
            return np.asarray(loss.mean())
        if reduction == "sum":
            return np.asarray(loss.sum())
        return loss

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        logp, target = ctx.saved_tensors
        n = logp.shape[0]
        dlogits = np.exp(logp)  # softmax
        dlogits[np.arange(n), target] -= 1  # - onehot
        if ctx.reduction == "mean":
            dlogits *= grad / n
        elif ctx.reduction == "sum":
            dlogits *= grad
        else:  # one loss per row: row n is scaled by its own upstream gradient
            dlogits *= grad[:, None]
        return dlogits, None, None
