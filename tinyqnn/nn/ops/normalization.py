"""Batch normalization (Ioffe & Szegedy 2015) as one fused Function.

Per channel c, over the batch and spatial axes (m = N*H*W values):
    xhat = (x - mean) / sqrt(var + eps),      out = weight * xhat + bias
Training uses the batch statistics (biased variance); evaluation the running statistics.
"""
from __future__ import annotations

import numpy as np

from ...engine.function import Context, Function
from ...engine.parallel import split_batch


def channel_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Sum of ``a`` (or of ``a * b``) over every axis except axis 1, the channels: (N, C, ...) -> (C,).

    einsum does the product and the reduction in one pass, without the temporary array.
    """
    n, c = a.shape[:2]
    a3 = a.reshape(n, c, -1)
    if b is None:
        return np.einsum("ncs->c", a3)
    return np.einsum("ncs,ncs->c", a3, b.reshape(n, c, -1))


def batch_sum(partial, x: np.ndarray) -> np.ndarray:
    """Sum of ``partial(start, stop)`` (a per-channel sum over samples start..stop-1) over the batch of
    ``x``, the slices computed in parallel when large enough (``tinyqnn.engine.parallel``)."""
    parts = split_batch(partial, x.shape[0], x.size)
    return parts[0] if len(parts) == 1 else sum(parts[1:], parts[0])


class BatchNorm(Function):
    """Shapes: x (N, C) or (N, C, H, W) (any (N, C, ...)), weight/bias (C,) or None,
    running_mean/running_var (C,) np.ndarray or None -> out, same shape as x.

    In training mode the running statistics (if given) are updated in place, as in PyTorch:
    running = (1 - momentum) * running + momentum * batch_stat, with the UNBIASED batch variance.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray | None = None, bias: np.ndarray | None = None, *,
                running_mean: np.ndarray | None = None, running_var: np.ndarray | None = None,
                training: bool = False, momentum: float = 0.1, eps: float = 1e-5) -> np.ndarray:
        c = x.shape[1]
        m = x.size // c  # values per channel
        shape = (1, c) + (1,) * (x.ndim - 2)  # a per-channel vector broadcast against x
        if not training:
            # running statistics are constants: out = x * scale + (bias - mean * scale), two passes over x;
            # backward only needs x - mean for dL/dweight and rebuilds it then
            mean, var = running_mean.astype(x.dtype, copy=False), running_var.astype(x.dtype, copy=False)
            inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
            scale = inv_std if weight is None else inv_std * weight
            shift = -mean * scale if bias is None else bias - mean * scale
            out = np.empty_like(x)

            def affine_eval(a: int, b: int) -> None:
                np.multiply(x[a:b], scale.reshape(shape), out=out[a:b])
                out[a:b] += shift.reshape(shape)

            split_batch(affine_eval, x.shape[0], x.size)
            ctx.save_for_backward(x, mean, inv_std, scale)
            ctx.shape, ctx.training = shape, training
            return out
        if m <= 1:
            raise ValueError(f"batch_norm in training mode needs more than 1 value per channel, got x {x.shape}")
        n = x.shape[0]
        mean = batch_sum(lambda a, b: channel_sum(x[a:b]), x) / m
        centered = np.empty_like(x)

        def center(a: int, b: int) -> np.ndarray:  # centered, and its squares summed, one slice of the batch
            np.subtract(x[a:b], mean.reshape(shape), out=centered[a:b])
            return channel_sum(centered[a:b], centered[a:b])

        var = batch_sum(center, x) / m  # biased: normalizes this batch
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
            running_var *= 1 - momentum
            running_var += momentum * var * (m / (m - 1))  # unbiased estimate of the population
        inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        # out = centered * (inv_std * weight) + bias: xhat is never stored, backward rebuilds what it
        # needs from centered and inv_std; two passes over memory after centering instead of four
        scale = inv_std if weight is None else inv_std * weight
        out = np.empty_like(x)

        def affine(a: int, b: int) -> None:
            np.multiply(centered[a:b], scale.reshape(shape), out=out[a:b])
            if bias is not None:
                out[a:b] += bias.reshape(shape)

        split_batch(affine, n, x.size)
        ctx.save_for_backward(centered, None, inv_std, scale)
        ctx.shape, ctx.training = shape, training
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        x, mean, inv_std, scale = ctx.saved_tensors  # training: x is already centered, mean None
        shape = ctx.shape
        training = ctx.training
        centered = x if mean is None else None  # xhat = centered * inv_std
        if ctx.needs_input_grad[1] or (training and ctx.needs_input_grad[0]):
            if centered is None:
                centered = x - mean.reshape(shape)
            # = dL/dweight
            sum_g_xhat = batch_sum(lambda a, b: channel_sum(grad[a:b], centered[a:b]), grad) * inv_std
        sum_g = None  # = dL/dbias
        if ctx.needs_input_grad[2] or training:
            sum_g = batch_sum(lambda a, b: channel_sum(grad[a:b]), grad)
        dweight = sum_g_xhat if ctx.needs_input_grad[1] else None
        dbias = sum_g if ctx.needs_input_grad[2] else None
        dx = None
        if ctx.needs_input_grad[0]:  # scale = d out / d x through xhat alone
            if training:
                # mean and var depend on x too; the three paths combine into the compact form
                # dx = scale * (g - mean(g) - xhat * mean(g * xhat))      (means per channel)
                # evaluated as scale * (g - centered * inv_std * mean(g * xhat)) - scale * mean(g):
                # in-place passes, no temporary array
                m = grad.size // grad.shape[1]
                dx = np.empty_like(grad)

                def combine(a: int, b: int) -> None:
                    d = dx[a:b]
                    np.multiply(centered[a:b], (-inv_std * sum_g_xhat / m).reshape(shape), out=d)
                    d += grad[a:b]
                    d *= scale.reshape(shape)
                    d -= (scale * sum_g / m).reshape(shape)

                split_batch(combine, len(grad), grad.size)
            else:  # running statistics are constants
                dx = grad * scale.reshape(shape)
        return dx, dweight, dbias
