"""FINN-style integer thresholds: the quantized activation as ``2**b - 1`` comparisons, no multiplier.

For a channel whose activation level is ``clip(ceil(M * (acc + B)), 0, 2**b - 1)`` (``M > 0``: batch
norm, the weight and input scales and the step alpha folded into one real number, ``B`` the folded shift
in accumulator units), the level is the number of thresholds the accumulator reaches:

    level >= k   <=>   M * (acc + B) > k - 1   <=>   acc > (k - 1) / M - B   <=>   acc >= T_k,
    T_k = floor((k - 1) / M - B) + 1,   k = 1 .. 2**b - 1.

Dataflow accelerators (FINN, Umuroglu et al. 2017) store the ``T_k`` per channel and compare; batch norm
and alpha cost nothing at inference. The thresholds are computed from the real ``M`` and ``B`` in float64,
so they reproduce the ceiling rule up to float64's rounding of ``(k - 1) / M - B``.
"""
from __future__ import annotations

import numpy as np


def compute_thresholds(multiplier: np.ndarray, shift_real: np.ndarray, bits: int) -> np.ndarray:
    """Integer thresholds ``T`` of shape (F, 2**bits - 1) with ``level = #{k : acc >= T[f, k]}``.

    multiplier: (F,) real ``M > 0``; shift_real: (F,) or (F, H, W) real ``B`` (accumulator units);
    returns int64 (F, 2**bits - 1) or (F, H, W, 2**bits - 1) for a position-dependent ``B``.
    """
    m = np.asarray(multiplier, dtype=np.float64)
    if np.any(~np.isfinite(m)) or np.any(m <= 0):
        raise ValueError(f"threshold multipliers must be finite and > 0, got {m[(~np.isfinite(m)) | (m <= 0)][:4]}")
    b = np.asarray(shift_real, dtype=np.float64)
    if not np.all(np.isfinite(b)):  # a NaN threshold would become INT64_MIN: every level reached
        raise ValueError(f"threshold offsets B must be finite, got {b[~np.isfinite(b)][:4]} "
                         f"({int(np.sum(~np.isfinite(b)))} of {b.size} not finite)")
    k = np.arange(1, 2 ** bits, dtype=np.float64)  # levels 1 .. 2**b - 1
    m = m.reshape(m.shape + (1,) * (b.ndim - 1) + (1,))
    t = np.floor((k - 1) / m - b[..., None]) + 1
    # Accumulators have at most 62 bits: a threshold beyond +-2**62 compares like one at +-2**62 (never / always
    # reached), and casting a larger float to int64 would wrap it to INT64_MIN.
    return np.clip(t, -(2.0 ** 62), 2.0 ** 62).astype(np.int64)


def apply_thresholds(acc: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Activation levels from accumulators: acc (N, F, ...) and thresholds (F, ..., L) -> levels (N, F, ...),
    uint8 for fewer than 256 levels.

    One comparison per threshold (L = 2**b - 1 of them), summed: no multiplication anywhere.
    """
    level = np.zeros(acc.shape, dtype=np.uint8 if thresholds.shape[-1] < 256 else np.int64)
    if acc.dtype == np.int32 and thresholds.size and -(2 ** 31) <= thresholds.min() and thresholds.max() < 2 ** 31:
        thresholds = thresholds.astype(np.int32)  # compare in the accumulator's own type (no upcast per element)
    for k in range(thresholds.shape[-1]):  # 2**b - 1 comparisons, each over the whole batch
        t = thresholds[..., k]
        level += acc >= t.reshape((1,) + t.shape + (1,) * (acc.ndim - 1 - t.ndim))
    return level
