"""The vectorized MAC unit: integer matrix product and convolution with per-step overflow semantics.

Results are bit-identical to the loops of ``tinyqnn.fixedpoint.mac`` (same step order: the K products,
then the bias), but computed without Python loops over samples, pixels or outputs:

* **Exact accumulation on BLAS.** Products of small integers and their partial sums are integers; a
  float type represents every integer up to ``2**24`` (float32) / ``2**53`` (float64) exactly, so when the
  analytic bound ``sum_k |a_k| |w_k| + |b|`` stays below that, a float GEMM returns the exact integer sum
  whatever order BLAS adds in. NumPy's int64 matmul has no BLAS kernel and is ~10x slower.
* **Wrap** after the exact sum: wrapping every step equals wrapping the exact sum (arithmetic modulo
  ``2**acc_bits``), so values never need the step-by-step path.
* **Saturation and overflow counters** depend on the running sums. Only outputs whose bound reaches the
  accumulator's range can overflow at any step; for those rows alone the unit scans the reduction axis
  (one vectorized update per k over all such outputs at once). With a wide enough accumulator nothing
  is scanned.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .intrep import OPERAND_BITS, check_fits, check_overflow_mode, check_width, int_range, magnitude

FLOAT32_EXACT, FLOAT64_EXACT = 1 << 24, 1 << 53


def exact_matmul(a: np.ndarray, b: np.ndarray, bound: float | None = None) -> np.ndarray:
    """Exact integer product ``a @ b`` of integer-valued arrays, on BLAS when it is exact.

    a: (R, K), b: (K, F). ``bound``: an upper bound of ``max |partial sum|`` (computed when None). float32
    when the bound is below 2**24 (result int32), float64 below 2**53, int64 otherwise (slow, exact below
    2**63); the last two return int64.
    """
    if bound is None:
        bound = float(magnitude(a).max(initial=0)) * float(magnitude(b).sum(axis=0).max(initial=0))
    if bound < FLOAT32_EXACT:  # int32 holds the result too: half the bytes of int64 to write
        return (a.astype(np.float32, copy=False) @ b.astype(np.float32, copy=False)).astype(np.int32)
    if bound < FLOAT64_EXACT:
        return (a.astype(np.float64, copy=False) @ b.astype(np.float64, copy=False)).astype(np.int64)
    return a.astype(np.int64) @ b.astype(np.int64)


def accumulate(cols: np.ndarray, weight_t: np.ndarray, bias: np.ndarray | None = None, acc_bits: int = 32,
               overflow: str = "wrap", count: bool = True,
               col_max: float | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Every dot product ``bias[f] + sum_k cols[r, k] * weight_t[k, f]`` through an ``acc_bits`` accumulator.

    Args:
        cols: (R, K) integer operands (activations); weight_t: (K, F) integer weights; bias: (F,) or None.
        acc_bits: accumulator width; overflow: "wrap" or "saturate" at every step.
        count: also return how many of each output's K + 1 additions overflowed.
        col_max: ``max |cols|`` when the caller knows it (saves a pass over a large column matrix).
    Returns:
        acc (R, F), int32 when no partial sum can leave int32 (less memory traffic), else int64; and counts
        (R, F) int64 (None when ``count`` is False).
    """
    check_overflow_mode(overflow)
    lo, hi = int_range(check_width(acc_bits, 2, 62, "acc_bits"))
    r_, k_ = cols.shape
    f_ = weight_t.shape[1]
    if weight_t.shape[0] != k_:
        raise ValueError(f"accumulate: cols (R, K) = {cols.shape} and weight_t (K, F) = {weight_t.shape} disagree on K")
    bias = np.zeros(f_, dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64)
    abs_w = magnitude(weight_t).astype(np.float64)  # int8 -128 has magnitude 128
    col_max = float(magnitude(cols).max(initial=0)) if col_max is None else float(col_max)
    static = col_max * abs_w.sum(axis=0) + magnitude(bias)  # (F,) bound on every partial sum of channel f
    exact = exact_matmul(cols, weight_t, float(static.max(initial=0)))
    exact = exact + (bias.astype(np.int32) if exact.dtype == np.int32 and static.max(initial=0) <= hi
                     and hi < 2 ** 31 else bias)  # stays int32 only when no sum can leave int32
    counts = np.zeros((r_, f_), dtype=np.int64) if count else None
    if static.max(initial=0) <= hi:  # no partial sum can leave the range: nothing overflows
        return exact, counts
    # per-output bound from the data: only these outputs can overflow at some step
    need = exact_matmul(magnitude(cols), abs_w, col_max * float(abs_w.sum(axis=0).max())) + magnitude(bias) > hi
    rows = np.flatnonzero(need.any(axis=1))
    result = exact if overflow == "saturate" else _wrap(exact, acc_bits)
    if rows.size and (count or overflow == "saturate"):
        values, over = _scan(cols[rows], weight_t, bias, acc_bits, overflow)
        if overflow == "saturate":
            result[rows] = values
        if count:
            counts[rows] = over
    return result, counts


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    half = np.int64(1) << (bits - 1)
    return ((x + half) & ((np.int64(1) << bits) - 1)) - half


def _scan(cols: np.ndarray, weight_t: np.ndarray, bias: np.ndarray, acc_bits: int,
          overflow: str) -> tuple[np.ndarray, np.ndarray]:
    """The step-by-step accumulator for the rows that can overflow: one vectorized update per k (and
    one for the bias) over all (row, output) pairs; returns (final values, overflow counts)."""
    lo, hi = int_range(acc_bits)
    acc = np.zeros((cols.shape[0], weight_t.shape[1]), dtype=np.int64)
    over = np.zeros_like(acc)
    cols = cols.astype(np.int64)
    weight_t = weight_t.astype(np.int64)
    for k in range(cols.shape[1] + 1):  # the reduction axis (<= a few hundred steps), not samples or pixels
        term = bias[None, :] if k == cols.shape[1] else cols[:, k, None] * weight_t[None, k]
        acc += term
        out = (acc < lo) | (acc > hi)
        over += out
        acc = np.clip(acc, lo, hi) if overflow == "saturate" else _wrap(acc, acc_bits)
    return acc, over


def im2col(x: np.ndarray, kh: int, kw: int, padding: int = 0, dtype=None) -> np.ndarray:
    """Sliding 2D windows (stride 1, zero padding) as rows: x (N, C, H, W) -> (N * H' * W', C * KH * KW),
    rows in (n, i, j) order, columns in (c, kh, kw) order (the naive loop's step order)."""
    if dtype is not None:
        x = x.astype(dtype, copy=False)
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    n, c = x.shape[:2]
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))  # (N, C, H', W', KH, KW)
    oh, ow = win.shape[2:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)


def check_integer_valued(x: np.ndarray, name: str) -> None:
    """ValueError unless ``x`` holds integers: an integer dtype, or floats that are finite whole numbers (a NaN
    would otherwise become an arbitrary integer in the GEMM's cast)."""
    x = np.asarray(x)
    if x.dtype.kind in "iub":
        return
    if x.dtype.kind != "f":
        raise ValueError(f"{name} must be an integer array, got dtype {x.dtype}")
    finite = np.isfinite(x)
    if not finite.all():
        raise ValueError(f"{name} of shape {x.shape} contain {int(x.size - finite.sum())} NaN/inf values; the MAC "
                         "unit takes integers")
    if np.any(x != np.round(x)):
        raise ValueError(f"{name} must be whole numbers, got {x[x != np.round(x)].flat[0]!r}")


def check_operands(x: np.ndarray, weight: np.ndarray, operand_bits: tuple[int, bool, int, bool] | None) -> None:
    """ValueError unless x fits ``operand_bits[0]`` bits (signed: ``[1]``) and weight ``[2]`` bits (signed: ``[3]``);
    widths of 1..16 bits, as the MAC unit's operands. None: widths unchecked (the caller vouches for them), but
    both must hold integers (``check_integer_valued``)."""
    if operand_bits is None:  # widths unchecked, but a NaN or a fraction is never an integer operand
        for array, name in ((x, "activations"), (weight, "weights")):
            check_integer_valued(array, name)
        return
    a_bits, a_signed, w_bits, w_signed = operand_bits
    check_width(a_bits, *OPERAND_BITS, "activation width")
    check_width(w_bits, *OPERAND_BITS, "weight width")
    check_fits(x, a_bits, a_signed, "activations")
    check_fits(weight, w_bits, w_signed, "weights")


def int_linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, acc_bits: int = 32,
               overflow: str = "wrap", count: bool = True,
               operand_bits: tuple[int, bool, int, bool] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer linear layer on the MAC unit. x: (N, K), weight: (F, K), bias: (F,) -> acc (N, F), counts (N, F).

    operand_bits: ``(activation bits, signed, weight bits, signed)`` to check the operands against, e.g.
    ``(2, False, 8, True)``; None skips the check.
    """
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"int_linear expects x (N, K) and weight (F, K), got {x.shape} and {weight.shape}")
    check_operands(x, weight, operand_bits)
    return accumulate(x, weight.T, bias, acc_bits, overflow, count)


def int_conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, padding: int = 0,
               acc_bits: int = 32, overflow: str = "wrap", count: bool = True, x_max: float | None = None,
               operand_bits: tuple[int, bool, int, bool] | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Integer convolution (stride 1) on the MAC unit.

    x: (N, C, H, W), weight: (F, C, KH, KW), bias: (F,) -> acc (N, F, H', W') and counts of the same shape.
    x_max: a known bound of ``|x|`` (e.g. ``2**bits - 1`` of the input's width), else computed.
    operand_bits: as in ``int_linear``.
    """
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"int_conv2d expects x (N, C, H, W) and weight (F, C, KH, KW), got {x.shape}, {weight.shape}")
    check_operands(x, weight, operand_bits)
    n, _, h, w = x.shape
    f, _, kh, kw = weight.shape
    oh, ow = h + 2 * padding - kh + 1, w + 2 * padding - kw + 1
    # float32 columns when exact: BLAS reads them directly, no second copy
    x_max = float(magnitude(x).max(initial=0)) if x_max is None else float(x_max)
    small = x_max * float(magnitude(weight).reshape(f, -1).sum(axis=1).max(initial=0))
    cols = im2col(x, kh, kw, padding, dtype=np.float32 if small < FLOAT32_EXACT else np.float64)
    acc, counts = accumulate(cols, weight.reshape(f, -1).T, bias, acc_bits, overflow, count, col_max=x_max)
    shape = lambda a: a.reshape(n, oh, ow, f).transpose(0, 3, 1, 2)  # noqa: E731
    return shape(acc), (None if counts is None else shape(counts))
