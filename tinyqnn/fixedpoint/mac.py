"""The MAC unit, one step at a time: the deliberately naive reference and the teaching trace.

One multiply-accumulate step reads an activation ``a`` and a weight ``w`` (two's-complement operands
of declared widths), forms the exact product ``a * w`` (a multiplier of ``bits_a + bits_w`` bits never
overflows) and adds it into an ``acc_bits``-bit accumulator, which on overflow wraps or saturates.
A dot product is ``K`` such steps from ``acc = 0`` (reduction index ascending; for a convolution that is
``(c, kh, kw)`` in C order) followed by one more addition, the int32 bias, as TFLite's kernels add it.

Everything here loops in Python on purpose: it is the definition the vectorized unit
(``tinyqnn.fixedpoint.accumulate``) is tested against, and what a learner steps through.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .intrep import check_fits, check_overflow_mode, check_width, int_range


def mac_step(acc: int, a: int, w: int, acc_bits: int = 32, overflow: str = "wrap") -> tuple[int, bool]:
    """One MAC step: ``acc + a * w`` into an ``acc_bits``-bit signed accumulator.

    Returns (new accumulator, whether this step overflowed). ``overflow``: "wrap" keeps the low bits,
    "saturate" clamps to ``[-2**(acc_bits-1), 2**(acc_bits-1) - 1]``.
    """
    return add_step(acc, int(a) * int(w), acc_bits, overflow)


def add_step(acc: int, value: int, acc_bits: int = 32, overflow: str = "wrap") -> tuple[int, bool]:
    """``acc + value`` in an ``acc_bits``-bit accumulator: (result, overflowed)."""
    check_overflow_mode(overflow)
    lo, hi = int_range(check_width(acc_bits, 2, 62, "acc_bits"))
    total = int(acc) + int(value)
    if lo <= total <= hi:
        return total, False
    if overflow == "saturate":
        return (hi if total > hi else lo), True
    return (total - lo) % (1 << acc_bits) + lo, True


def naive_dot(a, w, bias: int = 0, acc_bits: int = 32, overflow: str = "wrap") -> tuple[int, int]:
    """``bias + sum_k a[k] * w[k]`` step by step; returns (accumulator, number of overflowed steps).

    a, w: (K,) integers. Steps: the K products in order, then the bias.
    """
    a, w = np.asarray(a).ravel(), np.asarray(w).ravel()
    if a.shape != w.shape:
        raise ValueError(f"dot product of mismatched lengths: a {a.shape} vs w {w.shape}")
    acc, count = 0, 0
    for ak, wk in zip(a.tolist(), w.tolist()):
        acc, over = mac_step(acc, ak, wk, acc_bits, overflow)
        count += over
    acc, over = add_step(acc, bias, acc_bits, overflow)
    return acc, count + over


def naive_linear(x, weight, bias=None, acc_bits: int = 32, overflow: str = "wrap") -> tuple[np.ndarray, np.ndarray]:
    """Loop reference of an integer linear layer.

    x: (N, K), weight: (F, K), bias: (F,) or None -> (acc (N, F) int64, overflow counts (N, F) int64).
    """
    x, weight = np.asarray(x), np.asarray(weight)
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"naive_linear expects x (N, K) and weight (F, K), got {x.shape} and {weight.shape}")
    bias = np.zeros(weight.shape[0], dtype=np.int64) if bias is None else np.asarray(bias)
    acc = np.zeros((x.shape[0], weight.shape[0]), dtype=np.int64)
    count = np.zeros_like(acc)
    for n in range(x.shape[0]):
        for f in range(weight.shape[0]):
            acc[n, f], count[n, f] = naive_dot(x[n], weight[f], int(bias[f]), acc_bits, overflow)
    return acc, count


def naive_conv2d(x, weight, bias=None, padding: int = 0, acc_bits: int = 32,
                 overflow: str = "wrap") -> tuple[np.ndarray, np.ndarray]:
    """Loop reference of an integer convolution (stride 1, zero padding).

    x: (N, C, H, W), weight: (F, C, KH, KW), bias: (F,) or None -> (acc (N, F, H', W'), counts (N, F, H', W')),
    H' = H + 2 padding - KH + 1. Each output is one ``naive_dot`` over (c, kh, kw) in C order.
    """
    x, weight = np.asarray(x), np.asarray(weight)
    if x.ndim != 4 or weight.ndim != 4 or x.shape[1] != weight.shape[1]:
        raise ValueError(f"naive_conv2d expects x (N, C, H, W) and weight (F, C, KH, KW), "
                         f"got {x.shape}, {weight.shape}")
    n_, _, h, w_ = x.shape
    f_, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    oh, ow = h + 2 * padding - kh + 1, w_ + 2 * padding - kw + 1
    bias = np.zeros(f_, dtype=np.int64) if bias is None else np.asarray(bias)
    acc = np.zeros((n_, f_, oh, ow), dtype=np.int64)
    count = np.zeros_like(acc)
    for n in range(n_):
        for f in range(f_):
            for i in range(oh):
                for j in range(ow):
                    acc[n, f, i, j], count[n, f, i, j] = naive_dot(
                        xp[n, :, i:i + kh, j:j + kw], weight[f], int(bias[f]), acc_bits, overflow)
    return acc, count


def trace_dot(a, w, bias: int = 0, acc_bits: int = 32, overflow: str = "wrap", a_bits: int = 8,
              w_bits: int = 8, a_signed: bool = False, w_signed: bool = True) -> list[dict[str, Any]]:
    """One dot product step by step, for teaching: a list of rows (one per step, the bias last) with
    ``step, a, w, product, acc_before, exact_sum, acc_after, overflow``.

    ``exact_sum`` is what an unbounded accumulator would hold, so a table shows where the hardware value
    departs from it. The operands are checked against their declared widths first.
    """
    a = check_fits(np.asarray(a).ravel(), a_bits, a_signed, "activation a")
    w = check_fits(np.asarray(w).ravel(), w_bits, w_signed, "weight w")
    if a.shape != w.shape:
        raise ValueError(f"dot product of mismatched lengths: a {a.shape} vs w {w.shape}")
    rows, acc, exact = [], 0, 0
    terms = [(int(x), int(y), int(x) * int(y)) for x, y in zip(a, w)] + [(None, None, int(bias))]
    for step, (ak, wk, product) in enumerate(terms):
        new, over = add_step(acc, product, acc_bits, overflow)
        exact += product
        rows.append(dict(step=step if ak is not None else "bias", a=ak, w=wk, product=product, acc_before=acc,
                         exact_sum=exact, acc_after=new, overflow=over))
        acc = new
    return rows


def format_trace(rows: list[dict[str, Any]]) -> str:
    """The rows of ``trace_dot`` as a fixed-width text table (``print(format_trace(trace_dot(...)))``)."""
    cols = ("step", "a", "w", "product", "acc_before", "exact_sum", "acc_after", "overflow")
    cells = [[("" if r[c] is None else ("OVERFLOW" if c == "overflow" and r[c] else
                                         ("" if c == "overflow" else str(r[c])))) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(wd) for c, wd in zip(cols, widths))]
    lines += ["  ".join(v.rjust(wd) for v, wd in zip(row, widths)) for row in cells]
    return "\n".join(lines)
