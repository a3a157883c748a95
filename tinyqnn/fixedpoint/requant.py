"""Requantization exactly as production integer kernels do it (Jacob et al. 2018; gemmlowp; TFLite).

A layer's int32 accumulator ``acc`` (scale ``S_in * S_w``) becomes an output at scale ``S_out`` by the real
multiplier ``M = S_in * S_w / S_out``. Integer hardware has no real numbers, so ``M`` is stored as an int32
``M0`` (a Q0.31 fraction in ``[2**30, 2**31)``) and a power-of-two ``shift``: ``M ~= M0 * 2**(shift - 31)``.

The functions below carry the reference kernels' names and reproduce their results bit for bit,
edge cases included. Each takes Python ints or integer arrays (broadcast together); scalar inputs give a
Python int, array inputs an int64 array. Values that the kernels would feed to undefined C++ behaviour
(an int32 overflow, a shift outside 0..31) raise a ValueError here instead.

Rounding rules, where each is defined:

* ``quantize_multiplier``: ``M = q * 2**shift`` with ``0.5 <= q < 1`` (``frexp``); ``M0 = round(q * 2**31)``
  with ties away from zero (C++ ``std::round``); ``M0 == 2**31`` (q just below 1 rounds up) becomes
  ``2**30`` with ``shift + 1``; ``M < 2**-32`` (shift < -31) flushes to ``(0, 0)``.
* ``saturating_rounding_doubling_high_mul(a, b)``: ``round(a * b / 2**31)`` with ties toward +inf
  (a nudge of ``2**30`` for ``a*b >= 0``, ``1 - 2**30`` below, then C division, which truncates);
  ``a == b == INT32_MIN`` is the one overflow and saturates to ``INT32_MAX``.
* ``rounding_divide_by_pot(x, exponent)``: ``round(x / 2**exponent)`` with ties away from zero,
  ``exponent`` in 0..31.
* ``multiply_by_quantized_multiplier(x, M0, shift, rounding)``: ``"double"`` (gemmlowp, TFLite's classic
  path): ``x * 2**max(shift, 0)``, then the high multiply, then a rounding divide by ``2**max(-shift, 0)``:
  two roundings; x = 5, M = 0.25 gives 3 then 2. ``"single"`` (TFLite's ``TFLITE_SINGLE_ROUNDING``):
  ``(x * M0 + 2**(30 - shift)) >> (31 - shift)``, one rounding, ties toward +inf; x = 5, M = 0.25 gives 1.
  ``"ceil"`` (tinyqnn's ceiling-consistent variant for the paper's ``ceil`` quantizer): the exact
  ``ceil(x * M0 / 2**(31 - shift))``, one rounding, always up.
"""
from __future__ import annotations

import math

import numpy as np

from .intrep import as_int64

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
ROUNDINGS = ("double", "single", "ceil")


def _ints(x, name: str, lo: int = INT32_MIN, hi: int = INT32_MAX) -> np.ndarray:
    """``x`` as int64 after checking every entry is an integer in [lo, hi] (a ValueError names the value)."""
    arr = as_int64(x, name)
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr[(arr < lo) | (arr > hi)].flat[0]
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got {bad.item()!r} (shape {arr.shape})")
    return arr


def _out(result: np.ndarray, *inputs) -> int | np.ndarray:
    """A Python int when every input was a scalar, else the int64 array."""
    return int(result) if all(np.ndim(i) == 0 for i in inputs) else result


def quantize_multiplier(multiplier) -> tuple[int | np.ndarray, int | np.ndarray]:
    """Split a real multiplier ``M >= 0`` into ``(M0, shift)`` with ``M ~= M0 * 2**(shift - 31)``.

    TFLite's ``QuantizeMultiplier``: ``M0`` in ``[2**30, 2**31 - 1]`` (or 0 for M = 0 and for M < 2**-32,
    flushed to ``(0, 0)``), ``shift`` in ``[-31, 30]``; relative error of ``M0 * 2**(shift-31)`` below ``2**-31``.

    Args:
        multiplier: float or array of floats, finite, >= 0, below 2**31.
    Returns:
        (M0, shift): ints for a scalar input, int64 arrays of its shape otherwise.
    """
    m = np.asarray(multiplier, dtype=np.float64)
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise ValueError(f"a real multiplier must be finite and >= 0, got {np.ravel(m)[:4]!r}")
    q, shift = np.frexp(m)  # m = q * 2**shift, 0.5 <= q < 1 (q = shift = 0 for m = 0)
    m0 = np.floor(q * float(1 << 31) + 0.5).astype(np.int64)  # std::round, q >= 0: ties away from zero
    shift = shift.astype(np.int64)
    carry = m0 == (1 << 31)  # q rounded up to 1.0: halve M0, double through the shift
    m0 = np.where(carry, m0 // 2, m0)
    shift = shift + carry
    tiny = shift < -31  # every bit would be shifted out: TFLite flushes to zero
    m0, shift = np.where(tiny, 0, m0), np.where(tiny, 0, shift)
    if np.any(shift > 30):
        raise ValueError(f"multiplier {np.ravel(m)[np.ravel(shift) > 30][0]!r} >= 2**30 needs shift > 30, "
                         "outside the int32 kernels' range")
    return _out(m0, multiplier), _out(shift, multiplier)


def saturating_rounding_doubling_high_mul(a, b) -> int | np.ndarray:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul``: ``round(a * b / 2**31)``, ties toward +inf.

    a, b: int32 values (any broadcastable shapes). The exact 64-bit product gets a nudge of ``2**30``
    (product >= 0) or ``1 - 2**30`` (product < 0) and is divided by ``2**31`` truncating toward zero, as C
    does. Only ``a == b == INT32_MIN`` overflows (the result would be 2**31); it saturates to INT32_MAX.
    """
    a64, b64 = _ints(a, "a"), _ints(b, "b")
    ab = a64 * b64  # |a*b| <= 2**62: exact in int64
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    num = ab + nudge
    high = np.where(num >= 0, num >> 31, -((-num) >> 31))  # C's '/' truncates toward zero
    overflow = (a64 == INT32_MIN) & (b64 == INT32_MIN)
    return _out(np.where(overflow, INT32_MAX, high), a, b)


def rounding_divide_by_pot(x, exponent) -> int | np.ndarray:
    """gemmlowp's ``RoundingDivideByPOT``: ``round(x / 2**exponent)``, ties away from zero.

    x: int32 values; exponent: integers in 0..31 (a ValueError otherwise). The remainder ``x & mask``
    is compared with half the divisor, one more for negative x, so -2.5 -> -3 and 2.5 -> 3.
    """
    x64 = _ints(x, "x")
    e = _ints(exponent, "exponent", 0, 31)
    mask = (np.int64(1) << e) - 1
    remainder = x64 & mask
    threshold = (mask >> 1) + (x64 < 0)
    return _out((x64 >> e) + (remainder > threshold), x, exponent)


def multiply_by_quantized_multiplier(x, quantized_multiplier, shift, rounding: str = "double") -> int | np.ndarray:
    """``x * M`` for ``M = quantized_multiplier * 2**(shift - 31)``, rounded as TFLite's kernels do.

    Args:
        x: int32 accumulator values. quantized_multiplier: M0 in [0, 2**31 - 1]. shift: in [-31, 30].
        rounding: "double" (default: gemmlowp / TFLite classic), "single" (TFLITE_SINGLE_ROUNDING) or
            "ceil" (exact ceiling; the paper's ceil quantizer). See the module docstring for each rule.
    Returns:
        int32 results (a ValueError if ``x * 2**shift`` or the result leaves int32, which C++ leaves undefined).
    """
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, got {rounding!r}")
    x64 = _ints(x, "x")
    m0 = _ints(quantized_multiplier, "quantized_multiplier", 0, INT32_MAX)
    s = _ints(shift, "shift", -31, 30)
    if rounding == "double":
        left = np.int64(1) << np.maximum(s, 0)
        scaled = x64 * left  # |x| < 2**31, left <= 2**30: exact in int64
        if scaled.size and (scaled.min() < INT32_MIN or scaled.max() > INT32_MAX):
            raise ValueError(f"x * 2**shift leaves int32 (x up to {np.abs(x64).max()}, shift up to {s.max()}); "
                             "the reference kernel's int32 multiply would overflow")
        result = np.asarray(rounding_divide_by_pot(saturating_rounding_doubling_high_mul(scaled, m0),
                                                   np.maximum(-s, 0)))
    else:
        total = 31 - s  # 1..62
        prod = x64 * m0  # exact: |x * M0| < 2**62
        offset = (np.int64(1) << (total - 1)) if rounding == "single" else (np.int64(1) << total) - 1
        result = (prod + offset) >> total  # arithmetic shift = floor; with the offsets: half-up / ceiling
        if result.size and (result.min() < INT32_MIN or result.max() > INT32_MAX):
            raise ValueError("x * M leaves int32 in multiply_by_quantized_multiplier")
    return _out(np.asarray(result, dtype=np.int64), x, quantized_multiplier, shift)


def requantize(acc, quantized_multiplier, shift, zero_point: int = 0, qmin: int = INT32_MIN,
               qmax: int = INT32_MAX, rounding: str = "double") -> int | np.ndarray:
    """Output integer ``clamp(zero_point + multiply_by_quantized_multiplier(acc, M0, shift), qmin, qmax)``.

    The clamp is the fused activation: ReLU to an unsigned b-bit range is ``qmin = zero_point``,
    ``qmax = 2**b - 1``. ``acc`` already holds the int32 bias (scale ``S_in * S_w``).
    """
    if qmin > qmax:
        raise ValueError(f"requantize needs qmin <= qmax, got qmin={qmin}, qmax={qmax}")
    scaled = multiply_by_quantized_multiplier(acc, quantized_multiplier, shift, rounding)
    return _out(np.clip(np.asarray(scaled) + np.int64(zero_point), qmin, qmax), acc, quantized_multiplier, shift)


def real_multiplier(quantized_multiplier, shift) -> float | np.ndarray:
    """The real number ``M0 * 2**(shift - 31)`` a (M0, shift) pair stands for (exact in float64)."""
    return np.ldexp(np.asarray(quantized_multiplier, dtype=np.float64), np.asarray(shift) - 31)


def check_same_scale(a: float, b: float, what: str, rel: float = 1e-6) -> None:
    """ValueError when two scales that must agree (e.g. a layer's output and the next one's input) differ."""
    if not math.isclose(a, b, rel_tol=rel, abs_tol=0.0):
        raise ValueError(f"mismatched scales for {what}: {a!r} vs {b!r}")
