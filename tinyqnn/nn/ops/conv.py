"""2-D convolution (cross-correlation, as in PyTorch) by im2col + one batched BLAS matmul.

Forward: every receptive field of the padded input is copied into a column ("im2col"), so the
convolution becomes a matrix product with the flattened filters::

    cols[n, (c, i, j), (oh, ow)] = x_pad[n, c, oh*sh + i, ow*sw + j]     (N, C*KH*KW, OH*OW)
    out[n]                       = W2 @ cols[n]     with W2 = weight.reshape(F, C*KH*KW)

Backward, from dout (N, F, OH, OW):
    dW   = sum_n dout[n] @ cols[n].T          (reuses the forward's cols)
    db   = dout summed over N, OH, OW
    dx   = col2im(W2.T @ dout): each column is added back where it was read from. The sum runs
           over the KH*KW kernel offsets; each offset is one small GEMM + one vectorized add
           on a strided slice (see ``col2im_grad``).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...engine.function import Context, Function


def pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """``3`` -> ``(3, 3)``; ``(2, 1)`` stays; anything else is an error naming ``name``."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        a, b = value
        return int(a), int(b)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}") from None


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Number of kernel positions along one axis: floor((size + 2 p - k) / s) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


def pad_hw(x: np.ndarray, ph: int, pw: int, value: float = 0.0) -> np.ndarray:
    """Pad the last two axes of ``x`` (..., H, W) by ``ph``/``pw`` on both sides (no copy when 0)."""
    if ph == 0 and pw == 0:
        return x
    *lead, h, w = x.shape
    out = np.full((*lead, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
    out[..., ph : ph + h, pw : pw + w] = x
    return out


def check_conv_args(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride, padding):
    """Validate shapes; returns (stride, padding, OH, OW) with stride/padding as pairs."""
    if x.ndim != 4:
        raise ValueError(f"conv2d expects x of shape (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"conv2d expects weight of shape (F, C, KH, KW), got shape {w.shape}")
    if x.shape[1] != w.shape[1]:
        raise ValueError(
            f"conv2d: x has {x.shape[1]} channels (shape {x.shape}) but weight expects {w.shape[1]} "
            f"(shape {w.shape})"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"conv2d: bias must have shape ({w.shape[0]},) for weight {w.shape}, got {b.shape}")
    (sh, sw), (ph, pw) = pair(stride, "stride"), pair(padding, "padding")
    if sh <= 0 or sw <= 0:
        raise ValueError(f"conv2d: stride must be positive, got {stride!r}")
    if ph < 0 or pw < 0:
        raise ValueError(f"conv2d: padding must be non-negative, got {padding!r}")
    (h, wd), (kh, kw) = x.shape[2:], w.shape[2:]
    if kh > h + 2 * ph or kw > wd + 2 * pw:
        raise ValueError(
            f"conv2d: kernel {kh}x{kw} (weight {w.shape}) is larger than the padded input "
            f"{h + 2 * ph}x{wd + 2 * pw} (x {x.shape}, padding {(ph, pw)})"
        )
    return (sh, sw), (ph, pw), conv_output_size(h, kh, sh, ph), conv_output_size(wd, kw, sw, pw)


class Conv2d(Function):
    """out = conv2d(x, weight) + bias.

    Shapes: x (N, C, H, W), weight (F, C, KH, KW), bias (F,) or None -> out (N, F, OH, OW)
    with OH = (H + 2 ph - KH) // sh + 1 (likewise OW).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *,
                stride=1, padding=0) -> np.ndarray:
        (sh, sw), (ph, pw), oh, ow = check_conv_args(x, w, b, stride, padding)
        n, c, h, wd = x.shape
        f, _, kh, kw = w.shape
        # im2col: a strided view of all windows, then ONE copy into (N, C*KH*KW, OH*OW);
        # this layout keeps the output width as the innermost (fast) axis of the copy
        windows = sliding_window_view(pad_hw(x, ph, pw), (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]
        cols = windows.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh * ow)
        out = np.matmul(w.reshape(f, -1), cols)  # (F, CKK) @ (N, CKK, P) -> (N, F, P): one GEMM per sample
        if b is not None:
            out += b[:, None]
        ctx.save_for_backward(cols if ctx.needs_input_grad[1] else None, w)
        ctx.geometry = x.shape, (sh, sw), (ph, pw), (oh, ow)
        return out.reshape(n, f, oh, ow)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        cols, w = ctx.saved_tensors
        x_shape, stride, padding, (oh, ow) = ctx.geometry
        n, f = grad.shape[:2]
        g = grad.reshape(n, f, oh * ow)
        dx = dw = db = None
        if ctx.needs_input_grad[2]:  # out = ... + b: each bias entry feeds N*OH*OW outputs
            db = g.sum(axis=(0, 2))
        if ctx.needs_input_grad[1]:  # dW = sum_n dout[n] @ cols[n].T, computed as (cols[n] @ dout[n].T).T
            dw = np.matmul(cols, g.transpose(0, 2, 1)).sum(axis=0).T.reshape(w.shape)
        if ctx.needs_input_grad[0]:
            dx = col2im_grad(grad, w, x_shape, stride, padding)
        return dx, dw, db


def col2im_grad(grad: np.ndarray, w: np.ndarray, x_shape, stride, padding) -> np.ndarray:
    """dL/dx of a convolution, one kernel offset at a time.

    Input pixel x_pad[n, c, oh*sh + i, ow*sw + j] met weight w[f, c, i, j] in output (n, f, oh, ow),
    so for each offset (i, j): dx_pad[:, :, i::sh, j::sw] += w[:, :, i, j].T @ dout (over f).
    That is col2im(W2.T @ dout) without ever holding the whole (C*KH*KW, N*OH*OW) matrix: each
    offset's slice is one small GEMM whose result is added while it is still in cache.
    The work runs in (C, H, W, N) layout, so every add touches long contiguous runs (OW*N floats)
    instead of rows of OW floats; one transpose at the end restores (N, C, H, W).

    Shapes: grad (N, F, OH, OW), w (F, C, KH, KW) -> dx (N, C, H, W).
    """
    n, c, h, wd = x_shape
    f, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = grad.shape[2:]
    g_t = grad.transpose(1, 2, 3, 0).reshape(f, oh * ow * n)  # (F, OH*OW*N), a copy
    w_t = np.ascontiguousarray(w.transpose(2, 3, 1, 0))  # (KH, KW, C, F): w_t[i, j] = w[:, :, i, j].T
    dx_pad = np.zeros((c, h + 2 * ph, wd + 2 * pw, n), dtype=grad.dtype)
    contribution = np.empty((c, oh * ow * n), dtype=grad.dtype)  # reused by every offset
    for i in range(kh):  # loop over kernel offsets only; each step covers all pixels, samples, channels
        for j in range(kw):
            np.matmul(w_t[i, j], g_t, out=contribution)
            dx_pad[:, i : i + sh * oh : sh, j : j + sw * ow : sw] += contribution.reshape(c, oh, ow, n)
    return np.ascontiguousarray(dx_pad[:, ph : ph + h, pw : pw + wd].transpose(3, 0, 1, 2))
