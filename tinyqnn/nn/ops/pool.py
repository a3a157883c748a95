"""2-D max and average pooling.

Both loop over the KH*KW offsets of the pooling window (never over pixels): for offset (i, j),
``x_pad[:, :, i : i + sh*OH : sh, j : j + sw*OW : sw]`` is a strided view holding that window
element for every output position at once, so each step is one vectorized NumPy op.

Fast path: when windows do not overlap (stride >= kernel, e.g. LeNet's 2x2/2), every input
element belongs to at most one window and backward can WRITE each offset's gradient straight into
its slice (``np.multiply(..., out=slice)``) instead of accumulating. (Reducing a
(N, C, OH, KH, OW, KW) reshape with ``max(axis=(3, 5))`` was measured ~40x slower than these
elementwise steps, so the reshape is not used.)
"""
from __future__ import annotations

import numpy as np

from ...engine.function import Context, Function
from ...engine.parallel import split_batch
from .conv import conv_output_size, pad_hw, pair


def pool_geometry(x: np.ndarray, kernel_size, stride, padding, name: str):
    """Validate; returns (kh, kw), (sh, sw), (ph, pw), (oh, ow)."""
    if x.ndim != 4:
        raise ValueError(f"{name} expects x of shape (N, C, H, W), got shape {x.shape}")
    kh, kw = pair(kernel_size, "kernel_size")
    sh, sw = (kh, kw) if stride is None else pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    if kh <= 0 or kw <= 0 or sh <= 0 or sw <= 0:
        raise ValueError(f"{name}: kernel_size and stride must be positive, got {kernel_size!r} and {stride!r}")
    if ph < 0 or pw < 0 or 2 * ph > kh or 2 * pw > kw:
        # as in PyTorch: more padding than half a window would allow windows made of padding only
        raise ValueError(f"{name}: padding {padding!r} must be between 0 and half the kernel size {(kh, kw)}")
    h, w = x.shape[2:]
    if kh > h + 2 * ph or kw > w + 2 * pw:
        raise ValueError(f"{name}: kernel {kh}x{kw} is larger than the padded input {h + 2 * ph}x{w + 2 * pw} "
                         f"(x {x.shape}, padding {(ph, pw)})")
    return (kh, kw), (sh, sw), (ph, pw), (conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw))


def window_views(x_pad: np.ndarray, kernel, stride, out_hw) -> list[np.ndarray]:
    """One strided view (N, C, OH, OW) per window offset (i, j), in row-major offset order."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    return [x_pad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] for i in range(kh) for j in range(kw)]


def windows_overlap(kernel, stride) -> bool:
    """True when some input element lies in two windows (then gradients must be accumulated)."""
    return stride[0] < kernel[0] or stride[1] < kernel[1]


class MaxPool2d(Function):
    """Max over each window; the gradient goes to ONE element per window, the first maximum in
    row-major window order (as PyTorch), so ties are not double-counted.

    Shapes: x (N, C, H, W) -> out (N, C, OH, OW). Padding is -inf, so it never wins.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, kernel_size, stride=None, padding=0) -> np.ndarray:
        kernel, stride, (ph, pw), out_hw = pool_geometry(x, kernel_size, stride, padding, "max_pool2d")
        x_pad = pad_hw(x, ph, pw, -np.inf)
        n_offsets = kernel[0] * kernel[1]
        out = np.empty((*x.shape[:2], *out_hw), dtype=x.dtype)
        # argmax[p] = FIRST offset holding the max (the one backward credits)
        argmax = np.empty(out.shape, dtype=np.min_scalar_type(n_offsets)) if ctx.needs_input_grad[0] else None

        def samples(start: int, stop: int) -> None:  # threads split the batch (tinyqnn.engine.parallel)
            views = window_views(x_pad[start:stop], kernel, stride, out_hw)
            o = out[start:stop]
            np.copyto(o, views[0])
            for view in views[1:]:
                np.maximum(o, view, out=o)
            if argmax is not None:
                # scan offsets backwards, each match overwrites. Written as argmax -= match * (argmax - offset),
                # i.e. where(match, offset, argmax): arithmetic on whole arrays is faster than masked writes
                a = argmax[start:stop]
                a.fill(n_offsets - 1)
                for offset in range(n_offsets - 2, -1, -1):
                    a -= (views[offset] == o) * (a - a.dtype.type(offset))

        split_batch(samples, x.shape[0], x.size)
        if argmax is not None:
            ctx.save_for_backward(argmax)
            ctx.geometry = x.shape, kernel, stride, (ph, pw), out_hw
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (argmax,) = ctx.saved_tensors
        (n, c, h, w), kernel, stride, (ph, pw), out_hw = ctx.geometry
        overlap = windows_overlap(kernel, stride)
        # when the windows tile the input exactly, every element is written below: no zero-fill needed
        covered = stride == kernel and (ph, pw) == (0, 0) and all(k * o == size for k, o, size
                                                                  in zip(kernel, out_hw, (h, w)))
        dx_pad = (np.empty if covered else np.zeros)((n, c, h + 2 * ph, w + 2 * pw), dtype=grad.dtype)

        def samples(start: int, stop: int) -> None:  # threads split the batch (tinyqnn.engine.parallel)
            g, a = grad[start:stop], argmax[start:stop]
            for offset, view in enumerate(window_views(dx_pad[start:stop], kernel, stride, out_hw)):
                winner = a == offset  # d max / d x = 1 for the chosen element only
                if overlap:
                    view += g * winner
                else:  # fast path: each element is in at most one window, so write instead of add
                    np.multiply(g, winner, out=view)

        split_batch(samples, n, dx_pad.size)
        return dx_pad[:, :, ph : ph + h, pw : pw + w]


class AvgPool2d(Function):
    """Mean over each window; padded zeros count in the mean (PyTorch's count_include_pad=True).

    Shapes: x (N, C, H, W) -> out (N, C, OH, OW).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, *, kernel_size, stride=None, padding=0) -> np.ndarray:
        kernel, stride, (ph, pw), out_hw = pool_geometry(x, kernel_size, stride, padding, "avg_pool2d")
        views = window_views(pad_hw(x, ph, pw), kernel, stride, out_hw)
        out = views[0].copy()
        for view in views[1:]:
            out += view
        out *= out.dtype.type(1 / len(views))
        ctx.geometry = x.shape, kernel, stride, (ph, pw), out_hw
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (n, c, h, w), kernel, stride, (ph, pw), out_hw = ctx.geometry
        share = grad * grad.dtype.type(1 / (kernel[0] * kernel[1]))  # d mean / d x_k = 1/K
        dx_pad = np.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=grad.dtype)
        overlap = windows_overlap(kernel, stride)
        for view in window_views(dx_pad, kernel, stride, out_hw):
            if overlap:
                view += share
            else:  # fast path: disjoint windows, write instead of add
                view[...] = share
        return dx_pad[:, :, ph : ph + h, pw : pw + w]
