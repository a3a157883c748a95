"""2-D convolution (cross-correlation, as in PyTorch) by im2col + BLAS, a block of samples at a time.

Forward: every receptive field of the padded input is copied into a column ("im2col"), so the
convolution of one sample becomes a matrix product with the flattened filters::

    cols[n, (c, i, j), (oh, ow)] = x_pad[n, c, oh*sh + i, ow*sw + j]     (C*KH*KW, OH*OW) per sample
    out[n]                       = W2 @ cols[n]     with W2 = weight.reshape(F, C*KH*KW)

The columns are KH*KW times larger than the input. Built for the whole batch at once they would be
written to main memory and read back (75 MB per layer in ResNet-20's first stage); instead they are
built for a few samples at a time (``column_blocks``) into one reused buffer small enough to stay in
the CPU's cache, right before BLAS reads them. For large layers nothing but the padded input is kept
for backward, which rebuilds the columns the same way (a copy from cache is cheaper than storing
them); a small layer's columns (LeNet-5's, ``KEEP_COLUMNS_BYTES``) are written to one array and kept. With
vertical stride 1 and deep enough inputs (ResNet's 3x3 layers) only the KW horizontal offsets are
copied (``row_blocks``); each kernel row's columns are then a strided view BLAS reads in place.

Backward, from dout (N, F, OH, OW):
    dW   = sum_n dout[n] @ cols[n].T          (columns kept, or rebuilt block by block)
    db   = dout summed over N, OH, OW
    dx   = where dx and dout have the same size (stride 1, "same" padding): the correlation of dout,
           padded by K-1-p, with the flipped, transposed filters, i.e. the forward computation
           again; otherwise col2im(W2.T @ dout[n]), each column added back where it was read from,
           one kernel offset (one strided add) at a time, for small layers on the whole batch in a
           (C, H, W, N) layout, for large ones block by block.

``tinyqnn.engine.parallel.THREADS`` > 1 splits each batch into that many slices computed in parallel.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...engine import buffers, parallel
from ...engine.function import Context, Function
from ...engine.parallel import over_slices, side_by_side


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
    out = np.empty((*lead, h + 2 * ph, w + 2 * pw), dtype=x.dtype)
    pad_into(out, x, ph, pw, value)
    return out


def pad_into(out: np.ndarray, x: np.ndarray, ph: int, pw: int, value: float = 0.0) -> None:
    """out (..., H + 2 ph, W + 2 pw) = x (..., H, W) padded with ``value``: borders filled, interior copied."""
    h, w = x.shape[-2:]
    out[..., :ph, :] = value
    out[..., ph + h :, :] = value
    out[..., ph : ph + h, :pw] = value
    out[..., ph : ph + h, pw + w :] = value
    out[..., ph : ph + h, pw : pw + w] = x


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
        keep = None
        if ctx.needs_input_grad[1] and keeps_columns(x.shape, w.shape, (sh, sw), (oh, ow), x.itemsize):
            keep = np.empty((x.shape[0], w[0].size, oh * ow), dtype=x.dtype)  # filled by the forward pass
        out, source, source_padding = correlate(x, w, (sh, sw), (ph, pw), (oh, ow), bias=b, keep=keep)
        # dW needs the columns again: kept when small (LeNet-5), else rebuilt from the input block by block
        ctx.save_for_backward(source if ctx.needs_input_grad[1] and keep is None else None, keep, w)
        ctx.geometry = x.shape, (sh, sw), (ph, pw), source_padding
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        x_pad, cols, w = ctx.saved_tensors
        x_shape, stride, padding, source_padding = ctx.geometry
        dx = dw = db = None
        if ctx.needs_input_grad[2]:  # out = ... + b: each bias entry feeds N*OH*OW outputs
            db = grad.sum(axis=(0, 2, 3))
        def find_dw():
            return weight_grad(x_pad, grad, w.shape, stride, cols, source_padding) if ctx.needs_input_grad[1] else None

        def find_dx():
            return input_grad(grad, w, x_shape, stride, padding) if ctx.needs_input_grad[0] else None

        if ctx.needs_input_grad[0] and ctx.needs_input_grad[1]:
            # independent, and of about equal cost: with threads, side by side (fewer hand-overs than
            # splitting each; LeNet-5's dx does not split well)
            dw, dx = side_by_side(find_dw, find_dx)
        else:
            dw, dx = find_dw(), find_dx()
        return dx, dw, db


#: bytes of columns built per block: small enough to stay in a core's L2 cache (1-2 MB on current CPUs)
BLOCK_BYTES = 1 << 19
#: dx of layers whose whole-batch columns are at most this large is computed for the whole batch at
#: once in a (C, H, W, N) layout (LeNet); larger layers go block by block
WHOLE_BATCH_BYTES = 1 << 23
#: when threads share the batch, blocks are this many times larger: every block costs each thread
#: two hand-overs of the GIL (the copy and the product), which for LeNet-5's small blocks cost more
#: than the cache saves (measured on 2 cores: LeNet-5's convolutions 1.1x faster than one thread with
#: 512 KB blocks, 1.4x with 4 MB; ResNet-20's 1.9x either way)
THREADED_BLOCK_FACTOR = 8


#: a batch's im2col columns up to this size are kept from forward for dW instead of being rebuilt (LeNet-5:
#: 5 MB and 3.8 MB; its training step measured 2.5-6.5% faster on one thread, the same on two; ResNet-20's
#: are larger or take the per-row path)
KEEP_COLUMNS_BYTES = 1 << 23


def keeps_columns(x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: tuple[int, int],
                  out_hw: tuple[int, int], itemsize: int) -> bool:
    """True when forward should keep the whole batch's columns for backward (``KEEP_COLUMNS_BYTES``);
    never on the per-kernel-row path (``use_rows``), which builds no full columns."""
    (n, c), (_, _, kh, kw) = x_shape[:2], w_shape
    return not use_rows(stride, c * kw) and n * c * kh * kw * out_hw[0] * out_hw[1] * itemsize <= KEEP_COLUMNS_BYTES


def block_samples(per_sample_bytes: int, n: int) -> int:
    """Samples per block: as many as fit in ``BLOCK_BYTES`` (times ``THREADED_BLOCK_FACTOR`` with threads)."""
    budget = BLOCK_BYTES * (THREADED_BLOCK_FACTOR if parallel.THREADS > 1 else 1)
    return max(1, min(n, budget // per_sample_bytes))


def column_blocks(x_pad: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
                  out_hw: tuple[int, int], keep: np.ndarray | None = None) -> Iterator[tuple[int, int, np.ndarray]]:
    """im2col, a block of samples at a time: yields ``(start, stop, cols)`` with
    cols (stop - start, C*KH*KW, OH*OW) = the columns of samples start..stop-1.

    ``cols`` is one buffer reused by every block (as many samples as fit in ``BLOCK_BYTES``): use it
    before asking for the next. With ``keep`` (N, C*KH*KW, OH*OW) the blocks are written there instead,
    which then holds every column. Shapes: x_pad (N, C, Hp, Wp) (already padded).
    """
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out_hw
    n, c = x_pad.shape[:2]
    # a strided view of all windows (no copy): (N, C, OH, OW, KH, KW) -> (N, C, KH, KW, OH, OW)
    windows = sliding_window_view(x_pad, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw].transpose(0, 1, 4, 5, 2, 3)
    per_sample = c * kh * kw * oh * ow
    block = block_samples(per_sample * x_pad.itemsize, n)
    buffer = buffers.empty((block, c, kh, kw, oh, ow), dtype=x_pad.dtype) if keep is None else None
    for start in range(0, n, block):
        stop = min(start + block, n)
        cols = buffer[: stop - start] if keep is None else keep[start:stop].reshape(stop - start, c, kh, kw, oh, ow)
        np.copyto(cols, windows[start:stop])  # the one im2col copy, into cache
        yield start, stop, cols.reshape(stop - start, c * kh * kw, oh * ow)


#: the per-kernel-row GEMMs have C*KW as their inner dimension; below this, BLAS runs them slowly
MIN_ROW_DEPTH = 32
#: ``row_blocks`` copies each kernel offset as one shifted run per plane (then zeroes the wrapped-around
#: column) for maps at most this wide; wider rows are long enough to copy row by row (measured per
#: ResNet-20 layer: 8 and 16 wide 1.3x and 1.1x faster shifted, 32 wide 1.1x slower)
SHIFTED_COPY_MAX_WIDTH = 16


def use_rows(stride: tuple[int, int], depth: int) -> bool:
    """Half-way im2col (``row_blocks``) needs vertical stride 1 and pays off for C*KW >= MIN_ROW_DEPTH."""
    return stride[0] == 1 and depth >= MIN_ROW_DEPTH


def row_blocks(x: np.ndarray, kw: int, sw: int, ow: int,
               padding: tuple[int, int] = (0, 0)) -> Iterator[tuple[int, int, np.ndarray]]:
    """Half-way im2col for vertical stride 1, a block of samples at a time: yields ``(start, stop, rows)``
    with rows (stop - start, C*KW, Hp*OW), rows[n, (c, j), (y, ow)] = x_pad[n, c, y, ow*sw + j], where
    x_pad is x zero-padded by ``padding`` (never built: the copy reads x and the buffer's borders stay 0).

    Only the KW horizontal offsets are copied (a third of the columns for 3x3 kernels): for kernel
    row i, ``rows[:, :, i*OW : i*OW + OH*OW]`` IS the (C*KW, OH*OW) matrix of columns, a strided view
    that BLAS reads in place. ``rows`` is one reused buffer. Shapes: x (N, C, H, W).
    """
    (n, c, h, w), (ph, pw) = x.shape, padding
    hp = h + 2 * ph
    block = block_samples(c * kw * hp * ow * x.itemsize, n)
    # zeros once: the padding border of every block is the same region and is never written
    buffer = buffers.zeros((block, c, kw, hp, ow), dtype=x.dtype)
    spans = []  # per offset j: the outputs o whose input column o*sw + j - pw lies inside x
    for j in range(kw):
        lo = max(0, -(-(pw - j) // sw))
        hi = min(ow, (w - 1 + pw - j) // sw + 1)
        if hi > lo:
            src = lo * sw + j - pw
            spans.append((j, lo, hi, slice(src, src + (hi - lo - 1) * sw + 1, sw)))
    # narrow maps of "same" width at stride 1 (ResNet's 3x3): each offset is x's planes shifted by j - pw,
    # one contiguous run per plane (row by row, NumPy's loop would run on pieces of w values); the values
    # that wrap around into the next image row land in the columns the padding should hold: zeroed
    flat = (sw == 1 and ow == w and pw < w <= SHIFTED_COPY_MAX_WIDTH
            and x.strides[2:] == (w * x.itemsize, x.itemsize))
    for start in range(0, n, block):
        stop = min(start + block, n)
        rows = buffer[: stop - start]
        if flat:
            planes = x[start:stop].reshape(stop - start, c, h * w)
            for j in range(kw):
                s = j - pw  # rows[..., y, o] = x[..., y, o + s]
                target = rows[:, :, j, ph : ph + h, :]
                flat_target = target.reshape(stop - start, c, h * w)
                np.copyto(flat_target[:, :, max(0, -s) : h * w - max(0, s)], planes[:, :, max(0, s) : h * w - max(0, -s)])
                if s < 0:
                    target[..., :-s] = 0
                elif s > 0:
                    target[..., w - s :] = 0
        else:
            for j, lo, hi, cols in spans:
                np.copyto(rows[:, :, j, ph : ph + h, lo:hi], x[start:stop, :, :, cols])
        yield start, stop, rows.reshape(stop - start, c * kw, hp * ow)


def correlate(x: np.ndarray, w: np.ndarray, stride: tuple[int, int], padding: tuple[int, int],
              out_hw: tuple[int, int], bias: np.ndarray | None = None,
              keep: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """out[n] = W2 @ cols[n] (+ bias) of the padded input, block by block; returns
    ``(out, source, source_padding)``, what backward rebuilds the columns from.

    On the per-kernel-row path (``use_rows``) the padding is never materialised: source is x itself,
    source_padding = padding. Otherwise each thread pads its own slice of the batch into x_pad:
    source = x_pad, source_padding = (0, 0). The bias is added by each thread to its own outputs.
    ``keep`` (N, C*KH*KW, OH*OW), where ``keeps_columns`` allows it, receives every column.
    Shapes: x (N, C, H, W), w (F, C, KH, KW), bias (F,) -> out (N, F, OH, OW).
    """
    (n, c, h, wd), f, (ph, pw) = x.shape, w.shape[0], padding
    rows = use_rows(stride, c * w.shape[3])
    padded = not rows and (ph, pw) != (0, 0)
    x_pad = buffers.empty((n, c, h + 2 * ph, wd + 2 * pw), dtype=x.dtype) if padded else x
    out = buffers.empty((n, f, out_hw[0] * out_hw[1]), dtype=x.dtype)

    def samples(a: int, b: int) -> None:
        if padded:
            pad_into(x_pad[a:b], x[a:b], ph, pw)
        correlate_into(out[a:b], x_pad[a:b], w, stride, out_hw, None if keep is None else keep[a:b],
                       padding if rows else (0, 0))
        if bias is not None:
            out[a:b] += bias[:, None]

    over_slices(samples, n)
    return out.reshape(n, f, *out_hw), x_pad, (padding if rows else (0, 0))


def correlate_into(out: np.ndarray, x_pad: np.ndarray, w: np.ndarray, stride: tuple[int, int],
                   out_hw: tuple[int, int], keep: np.ndarray | None = None,
                   padding: tuple[int, int] = (0, 0)) -> None:
    """``correlate`` on one slice of the batch, written into out (N, F, OH*OW); x_pad is padded already
    except on the per-row path, which pads by ``padding`` while copying.

    Vertical stride 1: out[n] = sum over kernel rows i of W[:, :, i, :] @ (row i's view of ``row_blocks``).
    """
    (c, (f, _, kh, kw), (oh, ow)) = x_pad.shape[1], w.shape, out_hw
    p = oh * ow
    if not use_rows(stride, c * kw):
        w2 = w.reshape(f, -1)
        for start, stop, cols in column_blocks(x_pad, (kh, kw), stride, out_hw, keep):
            np.matmul(w2, cols, out=out[start:stop])  # one GEMM (F, C*KH*KW) @ (C*KH*KW, OH*OW) per sample
        return
    w_rows = np.ascontiguousarray(w.transpose(2, 0, 1, 3)).reshape(kh, f, c * kw)  # w_rows[i] = W[:, :, i, :]
    partial = np.empty(0, dtype=out.dtype)
    for start, stop, rows in row_blocks(x_pad, kw, stride[1], ow, padding):
        o = out[start:stop]
        np.matmul(w_rows[0], rows[:, :, :p], out=o)
        if partial.shape != o.shape:
            partial = buffers.empty_like(o)
        for i in range(1, kh):  # add the other kernel rows while the block is still in cache
            o += np.matmul(w_rows[i], rows[:, :, i * ow : i * ow + p], out=partial)


def weight_grad(x_pad: np.ndarray | None, grad: np.ndarray, w_shape: tuple[int, ...], stride: tuple[int, int],
                cols: np.ndarray | None = None, padding: tuple[int, int] = (0, 0)) -> np.ndarray:
    """dW = sum_n dout[n] @ cols[n].T, with the columns kept by forward (``cols``) or rebuilt from x_pad block
    by block (per kernel row at vertical stride 1).

    Shapes: x_pad (N, C, Hp, Wp), grad (N, F, OH, OW), cols (N, C*KH*KW, OH*OW) -> dW (F, C, KH, KW);
    ``padding``: what the per-row path still pads x_pad by (``correlate``'s source_padding).
    """
    if cols is not None:
        g = grad.reshape(*grad.shape[:2], -1)
        parts = over_slices(lambda a, b: np.matmul(g[a:b], cols[a:b].transpose(0, 2, 1)).sum(axis=0), len(grad))
        return (parts[0] if len(parts) == 1 else sum(parts[1:], parts[0])).reshape(w_shape)
    parts = over_slices(lambda a, b: weight_grad_part(x_pad[a:b], grad[a:b], w_shape, stride, padding), len(grad))
    return parts[0] if len(parts) == 1 else sum(parts[1:], parts[0])


def weight_grad_part(x_pad: np.ndarray, grad: np.ndarray, w_shape: tuple[int, ...],
                     stride: tuple[int, int], padding: tuple[int, int] = (0, 0)) -> np.ndarray:
    """``weight_grad`` of one slice of the batch."""
    n, f, oh, ow = grad.shape
    _, c, kh, kw = w_shape
    p = oh * ow
    g = grad.reshape(n, f, p)
    if not use_rows(stride, c * kw):
        dw = np.zeros((f, c * kh * kw), dtype=grad.dtype)
        for start, stop, cols in column_blocks(x_pad, (kh, kw), stride, (oh, ow)):
            dw += np.matmul(g[start:stop], cols.transpose(0, 2, 1)).sum(axis=0)
        return dw.reshape(w_shape)
    dw_rows = np.zeros((kh, f, c * kw), dtype=grad.dtype)  # dw_rows[i] = dW[:, :, i, :]
    for start, stop, rows in row_blocks(x_pad, kw, stride[1], ow, padding):
        for i in range(kh):
            dw_rows[i] += np.matmul(g[start:stop], rows[:, :, i * ow : i * ow + p].transpose(0, 2, 1)).sum(axis=0)
    return np.ascontiguousarray(dw_rows.reshape(kh, f, c, kw).transpose(1, 2, 0, 3))


def input_grad(grad: np.ndarray, w: np.ndarray, x_shape: tuple[int, ...], stride: tuple[int, int],
               padding: tuple[int, int]) -> np.ndarray:
    """dL/dx of a convolution. Shapes: grad (N, F, OH, OW), w (F, C, KH, KW) -> dx (N, C, H, W).

    Input pixel x_pad[n, c, oh*sh + i, ow*sw + j] met w[f, c, i, j] in output (n, f, oh, ow). With
    stride 1 that makes dx[n, c] a correlation of dout, padded by K-1-p, with the filters flipped
    (i -> KH-1-i) and transposed (f <-> c): the forward machinery computes it, used where dx and dout
    have the same size (ResNet's 3x3 convolutions). Otherwise each column of W2.T @ dout[n] is added
    back at its offset (col2im), which does no work on padding.
    """
    n, c, h, wd = x_shape
    f, _, kh, kw = w.shape
    (sh, sw), (ph, pw) = stride, padding
    oh, ow = grad.shape[2:]
    if (sh, sw) == (1, 1) and (oh, ow) == (h, wd):  # "same" size (ph < kh): no work on extra padding
        flipped = np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, F, KH, KW)
        return correlate(grad, flipped, (1, 1), (kh - 1 - ph, kw - 1 - pw), (h, wd))[0]
    if n * c * kh * kw * oh * ow * grad.itemsize <= WHOLE_BATCH_BYTES:
        return col2im_whole_batch(grad, w, x_shape, stride, padding)
    w2t = np.ascontiguousarray(w.reshape(f, -1).T)  # (C*KH*KW, F)
    g = grad.reshape(n, f, oh * ow)
    dx_pad = buffers.zeros((n, c, h + 2 * ph, wd + 2 * pw), dtype=grad.dtype)
    over_slices(lambda a, b: col2im_blocks(dx_pad[a:b], w2t, g[a:b], w.shape, stride, (oh, ow)), n)
    return dx_pad[:, :, ph : ph + h, pw : pw + wd]


def col2im_blocks(dx_pad: np.ndarray, w2t: np.ndarray, g: np.ndarray, w_shape: tuple[int, ...],
                  stride: tuple[int, int], out_hw: tuple[int, int]) -> None:
    """dx_pad += col2im(W2.T @ dout[n]) block by block. Shapes: dx_pad (N, C, Hp, Wp), w2t (C*KH*KW, F),
    g (N, F, OH*OW)."""
    (n, c), (_, _, kh, kw), (sh, sw), (oh, ow) = dx_pad.shape[:2], w_shape, stride, out_hw
    block = block_samples(c * kh * kw * oh * ow * g.itemsize, n)
    dcols = buffers.empty((block, c * kh * kw, oh * ow), dtype=g.dtype)
    for start in range(0, n, block):
        stop = min(start + block, n)
        d = np.matmul(w2t, g[start:stop], out=dcols[: stop - start]).reshape(stop - start, c, kh, kw, oh, ow)
        target = dx_pad[start:stop]
        for i in range(kh):  # loop over kernel offsets only; each add covers the block's pixels and channels
            for j in range(kw):
                target[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += d[:, :, i, j]


def col2im_whole_batch(grad: np.ndarray, w: np.ndarray, x_shape, stride, padding) -> np.ndarray:
    """dL/dx for small layers, the whole batch at once, one kernel offset at a time.

    For each offset (i, j): dx_pad[:, :, i::sh, j::sw] += w[:, :, i, j].T @ dout (over f): one small
    GEMM whose result is added while it is still in cache. The work runs in (C, H, W, N) layout, so
    every add touches long contiguous runs (OW*N values) instead of rows of OW values; one transpose
    at the end restores (N, C, H, W).

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
    for i in range(kh):
        for j in range(kw):
            np.matmul(w_t[i, j], g_t, out=contribution)
            dx_pad[:, i : i + sh * oh : sh, j : j + sw * ow : sw] += contribution.reshape(c, oh, ow, n)
    return np.ascontiguousarray(dx_pad[:, ph : ph + h, pw : pw + wd].transpose(3, 0, 1, 2))
