"""Batch normalization (Ioffe & Szegedy 2015) as one fused Function, optionally with a ReLU and a
residual shortcut fused in (a ResNet block's ``relu(bn(x) + shortcut(r))``).

Per channel c, over the batch and spatial axes (m = N*H*W values):
    xhat = (x - mean) / sqrt(var + eps),      y = weight * xhat + bias
    out  = y [+ shortcut(residual)] [then max(., 0)]
Training uses the batch statistics (biased variance); evaluation the running statistics.

The shortcut is ResNet's option A (He et al. 2016): residual (N, C_r, H_r, W_r) with C_r <= C, every
``stride``-th pixel, added to channels ``(C - C_r) // 2 ... + C_r`` (the others are zero-padding).

Why fused: each separate elementwise op is a pass over main memory (a ResNet-20 map is 8 MB). Here
every pass works a few samples at a time (``sample_blocks``) on blocks that stay in the CPU's cache, so
a chain of NumPy calls on a block costs about one pass: forward reads x three times and writes out
once (mean; variance of the centred block; scale, shift, add, ReLU), backward reads the gradient,
out and x twice and writes dx once. Only x and out are kept for backward; x - mean is rebuilt per block.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ...engine import buffers
from ...engine.function import Context, Function
from ...engine.parallel import split_batch

#: bytes of one block of samples: small enough for a core's L2 cache, and each block's temporaries (a
#: boolean mask is a quarter of it) stay below malloc's default 128 KB mmap threshold, so a library user's
#: process does not map and fault them in afresh for every block (512 KB blocks: the op alone 3-5% faster,
#: but in one loaded run the library step took 1.1x the command line's)
BLOCK_BYTES = 1 << 18
#: ``channel_sum(a, b)`` uses BLAS dot products for rows at least this long (measured per value: 0.21 ns
#: against einsum's 0.29 for 32x32 maps, 0.45 against 0.34 for 8x8)
DOT_MIN_LENGTH = 256


def channel_sum(a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """Sum of ``a`` (or of ``a * b``) over every axis except axis 1, the channels: (N, C, ...) -> (C,).

    One pass, without a temporary array: einsum; for the product over long rows (S spatial values per
    sample and channel), one BLAS dot product per row (``matmul`` of (1, S) with (S, 1)), faster.
    """
    n, c = a.shape[:2]
    a3 = a.reshape(n, c, -1)
    if b is None:
        return np.einsum("ncs->c", a3)
    if a3.shape[2] >= DOT_MIN_LENGTH:
        return np.matmul(a3[:, :, None, :], b.reshape(n, c, -1, 1)).sum(axis=(0, 2, 3))
    return np.einsum("ncs,ncs->c", a3, b.reshape(n, c, -1))


def batch_sum(partial, x: np.ndarray) -> np.ndarray:
    """Sum of ``partial(start, stop)`` (a per-channel sum over samples start..stop-1) over the batch of
    ``x``, the slices computed in parallel when large enough (``tinyqnn.engine.parallel``)."""
    parts = split_batch(partial, x.shape[0], x.size)
    return parts[0] if len(parts) == 1 else sum(parts[1:], parts[0])


def sample_blocks(start: int, stop: int, per_sample_bytes: int) -> Iterator[tuple[int, int]]:
    """``(lo, hi)`` ranges covering samples start..stop-1, each about ``BLOCK_BYTES`` (at least one sample)."""
    step = max(1, BLOCK_BYTES // max(1, per_sample_bytes))
    for lo in range(start, stop, step):
        yield lo, min(lo + step, stop)


def as_sample(v: np.ndarray, sample_shape: tuple[int, ...]) -> np.ndarray:
    """The per-channel vector v (C,) laid out like one sample, (1, C, ...) = sample_shape, contiguous.

    Blocks combined with it run NumPy's contiguous loops instead of its per-row broadcast one (float32,
    32x32 maps: 0.19 against 0.30 ns per value for a multiply, 0.14 against 0.27 for an add).
    """
    return np.ascontiguousarray(np.broadcast_to(v.reshape((1, -1) + (1,) * (len(sample_shape) - 1)),
                                                (1, *sample_shape)))


def check_shortcut(x_shape: tuple[int, ...], r_shape: tuple[int, ...], stride: int) -> int:
    """The first channel that the option-A shortcut of ``r_shape`` adds to; errors name both shapes."""
    n, c, *spatial = x_shape
    ok = len(r_shape) == len(x_shape) and r_shape[0] == n and r_shape[1] <= c and stride >= 1
    ok = ok and all(-(-rs // stride) == s for rs, s in zip(r_shape[2:], spatial))
    if not ok:
        raise ValueError(f"batch_norm: residual of shape {r_shape} with stride {stride} does not fit x {x_shape} "
                         "(same batch, at most as many channels, spatial size ceil(residual / stride))")
    return (c - r_shape[1]) // 2


def _sub(a: np.ndarray, stride: int) -> np.ndarray:
    """Every ``stride``-th pixel of the spatial axes (a view)."""
    return a if stride == 1 else a[(slice(None), slice(None)) + (slice(None, None, stride),) * (a.ndim - 2)]


class BatchNorm(Function):
    """Shapes: x (N, C) or (N, C, H, W) (any (N, C, ...)), weight/bias (C,) or None, residual
    (N, C_r, H_r, W_r) or None (see the module docstring), running_mean/running_var (C,) np.ndarray
    or None -> out, same shape as x. ``relu=True`` applies max(., 0) last.

    In training mode the running statistics (if given) are updated in place, as in PyTorch:
    running = (1 - momentum) * running + momentum * batch_stat, with the UNBIASED batch variance.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray | None = None, bias: np.ndarray | None = None,
                residual: np.ndarray | None = None, *, running_mean: np.ndarray | None = None,
                running_var: np.ndarray | None = None, training: bool = False, momentum: float = 0.1,
                eps: float = 1e-5, relu: bool = False, stride: int = 1) -> np.ndarray:
        n, c = x.shape[:2]
        m = x.size // c  # values per channel
        per_sample = x[0].nbytes if n else 1
        offset = None if residual is None else check_shortcut(x.shape, residual.shape, stride)
        centered = None  # x - mean (training), kept for backward
        if training:
            if m <= 1:
                raise ValueError(f"batch_norm in training mode needs more than 1 value per channel, got x {x.shape}")
            mean = batch_sum(lambda a, b: channel_sum(x[a:b]), x) / m
            centered = buffers.empty(x.shape, x.dtype)
            mean_s = as_sample(mean, x.shape[1:])

            def squares(a: int, b: int) -> np.ndarray:  # centre, and sum the squares while the block is cached
                total = np.zeros(c, dtype=x.dtype)
                for lo, hi in sample_blocks(a, b, per_sample):
                    d = np.subtract(x[lo:hi], mean_s, out=centered[lo:hi])
                    total += channel_sum(d, d)
                return total

            var = batch_sum(squares, x) / m  # biased: normalizes this batch
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += momentum * var * (m / (m - 1))  # unbiased estimate of the population
        else:  # running statistics are constants
            mean, var = running_mean.astype(x.dtype, copy=False), running_var.astype(x.dtype, copy=False)
        inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        scale = inv_std if weight is None else inv_std * weight
        # out = centered * scale + bias (training), or x * scale + (bias - mean * scale) (evaluation)
        src = x if centered is None else centered
        shift = (-mean * scale if bias is None else bias - mean * scale) if centered is None else bias
        out = buffers.empty(x.shape, x.dtype)
        scale_s = as_sample(scale, x.shape[1:])
        shift_s = None if shift is None else as_sample(shift, x.shape[1:])

        def affine(a: int, b: int) -> None:  # scale, shift, shortcut and ReLU on one cached block at a time
            for lo, hi in sample_blocks(a, b, per_sample):
                o = out[lo:hi]
                np.multiply(src[lo:hi], scale_s, out=o)
                if shift_s is not None:
                    o += shift_s
                if residual is not None:
                    o[:, offset : offset + residual.shape[1]] += _sub(residual[lo:hi], stride)
                if relu:  # against an array of zeros: NumPy's fast loop (see buffers.zeros_view)
                    np.maximum(o, buffers.zeros_view(o.shape, o.dtype), out=o)

        split_batch(affine, n, x.size)
        # backward needs x - mean: kept in training; in evaluation rebuilt from x (only for dL/dweight)
        ctx.save_for_backward(src, None if centered is not None else mean, inv_std, scale, out if relu else None)
        ctx.training, ctx.stride, ctx.offset = training, stride, offset
        ctx.residual_shape = None if residual is None else residual.shape
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        x, mean, inv_std, scale, out = ctx.saved_tensors  # x: x - mean itself when mean is None (training)
        training, stride, offset = ctx.training, ctx.stride, ctx.offset
        need_x, need_w, need_b, need_r = ctx.needs_input_grad
        n, c = x.shape[:2]
        m = x.size // c
        per_sample = x[0].nbytes if n else 1
        # gm = the gradient that reaches bn's output y (and the shortcut): grad, zeroed where ReLU cut
        masked = buffers.empty(grad.shape, grad.dtype) if out is not None else None
        dres = None
        if need_r:
            same = stride == 1 and offset == 0 and ctx.residual_shape == grad.shape
            dres = buffers.zeros(ctx.residual_shape, grad.dtype) if not same else None
        sums_needed = need_w or need_b or (training and need_x)
        mean_s = None if mean is None else as_sample(mean, x.shape[1:])

        def first_pass(a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
            # per block: gm, its per-channel sum and its sum against x - mean; the shortcut's gradient
            sum_g, sum_gc, tmp = np.zeros(c, dtype=grad.dtype), np.zeros(c, dtype=grad.dtype), None
            for lo, hi in sample_blocks(a, b, per_sample):
                g = grad[lo:hi]
                if masked is not None:
                    g = np.multiply(g, out[lo:hi] > 0, out=masked[lo:hi])
                if dres is not None:
                    _sub(dres[lo:hi], stride)[...] = g[:, offset : offset + dres.shape[1]]
                if sums_needed:
                    sum_g += channel_sum(g)
                    if mean is None:
                        sum_gc += channel_sum(g, x[lo:hi])
                    else:
                        tmp = np.subtract(x[lo:hi], mean_s, out=None if tmp is None else tmp[: hi - lo])
                        sum_gc += channel_sum(g, tmp)
            return sum_g, sum_gc

        parts = split_batch(first_pass, n, x.size)
        sum_g = sum(p[0] for p in parts[1:]) + parts[0][0]  # = dL/dbias
        sum_g_xhat = (sum(p[1] for p in parts[1:]) + parts[0][1]) * inv_std  # = dL/dweight
        gm = grad if masked is None else masked
        if need_r and dres is None:  # identity shortcut: its gradient is gm itself (then dx gets its own array)
            dres = gm
        dx = None
        if need_x:
            # training: mean and var depend on x too; the three paths combine into the compact form
            #   dx = scale * (gm - mean(gm) - xhat * mean(gm * xhat))      (means per channel)
            #      = gm * scale - (x - mean) * k1 - k2
            # evaluation: dx = gm * scale
            scale_s, k1, k2 = (as_sample(v, x.shape[1:]) for v in (scale, scale * inv_std * sum_g_xhat / m,
                                                                    scale * sum_g / m))
            dx = masked if masked is not None and dres is not masked else buffers.empty(grad.shape, grad.dtype)

            def second_pass(a: int, b: int) -> None:
                tmp = None
                for lo, hi in sample_blocks(a, b, per_sample):
                    d = dx[lo:hi]
                    np.multiply(gm[lo:hi], scale_s, out=d)
                    if training:  # x is x - mean here
                        tmp = np.multiply(x[lo:hi], k1, out=None if tmp is None else tmp[: hi - lo])
                        d -= tmp
                        d -= k2

            split_batch(second_pass, n, x.size)
        return dx, sum_g_xhat if need_w else None, sum_g if need_b else None, dres
