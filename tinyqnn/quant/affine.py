"""Affine (scale + zero point) integer quantization and the observers that choose its parameters.

A real value ``x`` is stored as the integer::

    q = clamp(rint(x / scale) + zero_point, qmin, qmax)        x_hat = (q - zero_point) * scale

``np.rint`` rounds halves to even (2.5 -> 2, 3.5 -> 4); the fixed-point unit of tinyqnn rounds
the same way, so simulated and "hardware" integers agree bit for bit. Inside the representable
range ``[(qmin - zp) scale, (qmax - zp) scale]`` the error ``|x - x_hat|`` is at most ``scale / 2``.

Per-channel: ``scale`` and ``zero_point`` have one entry per index of ``axis`` (e.g. axis 0 of a
conv weight (F, C, KH, KW)); per-tensor: they are scalars and ``axis`` is None.

Observers watch data with ``observe(x)`` and turn what they saw into ``(scale, zero_point)`` with
``calculate_qparams()``: ``MinMaxObserver``, ``MovingAverageMinMaxObserver``,
``PercentileObserver`` and ``MSEObserver`` (the last two per-tensor, on a uniform subsample).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Context, Function, Tensor
from ..engine.random import default_generator
from .activation import _as_float, check_bits, check_float_input


# ---------------------------------------------------------------------- ranges and parameters
def qrange(bits: int = 8, signed: bool = False) -> tuple[int, int]:
    """Integer range: ``[0, 2^b - 1]`` unsigned, ``[-2^(b-1), 2^(b-1) - 1]`` signed."""
    bits = check_bits(bits)
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def calculate_qparams(
    min_val: Any, max_val: Any, bits: int = 8, signed: bool = False, symmetric: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Scale (float64) and zero point (int64) that map ``[min_val, max_val]`` onto the integer range.

    The range is first widened to contain 0, so that 0 (padding, ReLU zeros) is exact.
    Asymmetric: ``scale = (max - min) / (qmax - qmin)``, ``zp = qmin - rint(min / scale)``.
    Symmetric: ``scale = max(|min|, |max|) / ((qmax - qmin) / 2)``; ``zp = 0`` signed, the middle
    ``(qmin + qmax + 1) // 2`` unsigned. A zero-width range gets scale 1.

    Args:
        min_val, max_val: scalars or arrays of shape (C,) (per channel).
    Returns:
        ``(scale, zero_point)``, each of the shape of ``min_val``.
    """
    lo = np.minimum(np.asarray(min_val, dtype=np.float64), 0.0)
    hi = np.maximum(np.asarray(max_val, dtype=np.float64), 0.0)
    if np.any(lo > hi) or not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError(f"calculate_qparams needs finite min_val <= max_val, got {min_val} and {max_val}")
    qmin, qmax = qrange(bits, signed)
    if symmetric:
        amax = np.maximum(-lo, hi)
        scale = amax / ((qmax - qmin) / 2)
        zero_point = np.full(np.shape(scale), 0 if signed else (qmin + qmax + 1) // 2, dtype=np.int64)
    else:
        scale = (hi - lo) / (qmax - qmin)
        safe = np.where(scale > 0, scale, 1.0)
        zero_point = np.clip(qmin - np.rint(lo / safe), qmin, qmax).astype(np.int64)
    scale = np.where(scale > 0, scale, 1.0)
    return scale, zero_point


def _along(p: Any, x: np.ndarray, axis: int | None) -> np.ndarray:
    """Reshape a per-channel parameter (C,) so it broadcasts along ``axis`` of ``x``."""
    p = np.asarray(p)
    if axis is None:
        if p.size != 1:
            raise ValueError(
                f"per-tensor quantization needs a scalar scale/zero point, got shape {p.shape}; pass axis="
            )
        return p.reshape(())
    axis = axis % x.ndim
    if p.shape != (x.shape[axis],):
        raise ValueError(
            f"per-channel parameter of shape {p.shape} does not match axis {axis} of an input of shape {x.shape}"
        )
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return p.reshape(shape)


def quantize(
    x: np.ndarray, scale: Any, zero_point: Any, bits: int = 8, signed: bool = False, axis: int | None = None
) -> np.ndarray:
    """``clamp(rint(x / scale) + zero_point, qmin, qmax)`` as int64 (halves round to even).

    Args:
        x: array, any shape (NaN is a ValueError: it has no integer code).
        scale, zero_point: scalars (per tensor) or shape (x.shape[axis],) (per channel).
    """
    codes = _codes(x, scale, zero_point, bits, signed, axis)
    bad = np.isnan(codes)
    if bad.any():
        raise ValueError(f"quantize: {int(bad.sum())} NaN value(s) in an input of shape {codes.shape} (or a NaN "
                         "scale/zero point); a NaN has no integer code")
    return codes.astype(np.int64)


def _codes(x: np.ndarray, scale: Any, zero_point: Any, bits: int, signed: bool, axis: int | None) -> np.ndarray:
    """The integer codes as floats (NaN where ``x`` is NaN): the shared part of quantize and fake_quantize."""
    x = _as_float(x)
    qmin, qmax = qrange(bits, signed)
    s, zp = _along(scale, x, axis), _along(zero_point, x, axis)
    if np.any(s <= 0):
        raise ValueError("quantize: every scale must be > 0")
    return np.clip(np.rint(x / s) + zp, qmin, qmax)


def dequantize(
    q: np.ndarray, scale: Any, zero_point: Any, axis: int | None = None, dtype: Any = np.float32
) -> np.ndarray:
    """``(q - zero_point) * scale`` as ``dtype`` (float32 by default)."""
    q = np.asarray(q)
    s, zp = _along(scale, q, axis), _along(zero_point, q, axis)
    return ((q - zp) * s).astype(dtype)


def fake_quantize(
    x: np.ndarray, scale: Any, zero_point: Any, bits: int = 8, signed: bool = False, axis: int | None = None
) -> np.ndarray:
    """``dequantize(quantize(x))`` in the dtype of ``x`` (float64 for integers): what the network sees after
    the round trip. NaN entries stay NaN."""
    x = _as_float(x)
    codes = _codes(x, scale, zero_point, bits, signed, axis)
    return dequantize(codes, scale, zero_point, axis, dtype=x.dtype)


class FakeQuantize(Function):
    """Affine fake quantization with the straight-through estimator of the clamp:
    dL/dx = dL/dy * 1{qmin <= rint(x / scale) + zp <= qmax} (zero where x was clamped).

    ``FakeQuantize.apply(x, scale=s, zero_point=zp, bits=8, signed=False, axis=None)``.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, scale: Any = 1.0, zero_point: Any = 0, bits: int = 8,
                signed: bool = False, axis: int | None = None) -> np.ndarray:
        check_float_input(x, "FakeQuantize")
        qmin, qmax = qrange(bits, signed)
        s, zp = _along(scale, x, axis), _along(zero_point, x, axis)
        unclamped = np.rint(x / s) + zp
        ctx.save_for_backward((unclamped >= qmin) & (unclamped <= qmax))
        return fake_quantize(x, scale, zero_point, bits, signed, axis)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (inside,) = ctx.saved_tensors
        return grad * inside


# ---------------------------------------------------------------------- observers
def _array(x: Any) -> np.ndarray:
    """What an observer sees, as float64; a NaN is refused here, where it enters (its range would be NaN)."""
    array = np.asarray(x.data if isinstance(x, Tensor) else x, dtype=np.float64)
    bad = np.isnan(array)
    if bad.any():
        raise ValueError(f"observe: {int(bad.sum())} NaN value(s) in an input of shape {array.shape}; "
                         "a quantization range cannot be fitted to NaN")
    return array


class Observer:
    """Base: collects statistics with ``observe(x)``; ``calculate_qparams()`` -> (scale, zero_point).

    Args:
        bits, signed, symmetric: the target integer format (see ``calculate_qparams``).
        axis: channel axis for per-channel parameters (None: per tensor).
    """

    def __init__(self, bits: int = 8, signed: bool = False, symmetric: bool = False, axis: int | None = None):
        self.bits, self.signed, self.symmetric, self.axis = check_bits(bits), signed, symmetric, axis
        self.min_val: np.ndarray | None = None
        self.max_val: np.ndarray | None = None

    def _batch_range(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if x.size == 0:
            raise ValueError("observe: got an empty array")
        if self.axis is None:
            return np.asarray(x.min()), np.asarray(x.max())
        axes = tuple(i for i in range(x.ndim) if i != self.axis % x.ndim)
        return x.min(axis=axes), x.max(axis=axes)

    def observe(self, x: Any) -> None:
        raise NotImplementedError

    def __call__(self, x: Any) -> Any:
        """Observe ``x`` and hand it back unchanged (so an observer can sit inside a forward pass)."""
        self.observe(x)
        return x

    def _range(self) -> tuple[np.ndarray, np.ndarray]:
        if self.min_val is None:
            raise RuntimeError(f"{type(self).__name__}.calculate_qparams() before any observe(x)")
        return self.min_val, self.max_val

    def calculate_qparams(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = self._range()
        return calculate_qparams(lo, hi, self.bits, self.signed, self.symmetric)


class MinMaxObserver(Observer):
    """Running minimum and maximum of everything observed (per tensor or per channel)."""

    def observe(self, x: Any) -> None:
        lo, hi = self._batch_range(_array(x))
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val, self.max_val = np.minimum(self.min_val, lo), np.maximum(self.max_val, hi)


class MovingAverageMinMaxObserver(Observer):
    """Exponential moving average of each batch's min and max:
    ``min <- min + c (batch_min - min)`` with ``c = averaging_constant`` (first batch: taken as is)."""

    def __init__(self, averaging_constant: float = 0.01, **kwargs: Any):
        super().__init__(**kwargs)
        if not 0 < averaging_constant <= 1:
            raise ValueError(f"averaging_constant must be in (0, 1], got {averaging_constant}")
        self.c = averaging_constant

    def observe(self, x: Any) -> None:
        lo, hi = self._batch_range(_array(x))
        if self.min_val is None:
            self.min_val, self.max_val = lo, hi
        else:
            self.min_val = self.min_val + self.c * (lo - self.min_val)
            self.max_val = self.max_val + self.c * (hi - self.max_val)


class _SampleObserver(Observer):
    """Keeps a uniform random subsample (at most ``max_samples`` values) of everything observed.

    Merging keeps it uniform: from old sample (standing for ``seen`` values) plus a new batch, the
    number of survivors taken from the batch is hypergeometric, as if drawing ``max_samples``
    without replacement from all values seen so far.
    """

    def __init__(self, max_samples: int = 1 << 16, **kwargs: Any):
        super().__init__(**kwargs)
        if self.axis is not None:
            raise ValueError(f"{type(self).__name__} is per-tensor only (axis must be None)")
        self.max_samples = int(max_samples)
        self.sample = np.empty(0)
        self.seen = 0

    def observe(self, x: Any) -> None:
        new = _array(x).reshape(-1)
        if new.size == 0:
            raise ValueError("observe: got an empty array")
        rng = default_generator()
        total = self.seen + new.size
        if total <= self.max_samples:
            self.sample = np.concatenate([self.sample, new])
        else:
            take_new = int(rng.hypergeometric(new.size, self.seen, self.max_samples)) if self.seen else self.max_samples
            keep_old = self.max_samples - take_new
            old = rng.choice(self.sample, size=keep_old, replace=False) if keep_old else np.empty(0)
            self.sample = np.concatenate([old, rng.choice(new, size=take_new, replace=False)])
        self.seen = total
        lo, hi = new.min(), new.max()
        self.min_val = lo if self.min_val is None else np.minimum(self.min_val, lo)
        self.max_val = hi if self.max_val is None else np.maximum(self.max_val, hi)


class PercentileObserver(_SampleObserver):
    """Range ``[P_(100 - p), P_p]`` of the observed values (outliers beyond are clipped), p = ``percentile``."""

    def __init__(self, percentile: float = 99.99, **kwargs: Any):
        super().__init__(**kwargs)
        if not 50 < percentile <= 100:
            raise ValueError(f"percentile must be in (50, 100], got {percentile}")
        self.percentile = percentile

    def _range(self) -> tuple[np.ndarray, np.ndarray]:
        super()._range()
        return (np.asarray(np.percentile(self.sample, 100 - self.percentile)),
                np.asarray(np.percentile(self.sample, self.percentile)))


class MSEObserver(_SampleObserver):
    """Range ``[f min, f max]`` with the shrink factor ``f`` in ``(0, 1]`` (a grid of ``num_candidates``)
    minimising the mean squared fake-quantization error on the observed sample."""

    def __init__(self, num_candidates: int = 100, **kwargs: Any):
        super().__init__(**kwargs)
        self.num_candidates = int(num_candidates)

    def _range(self) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = super()._range()
        best, best_err = 1.0, np.inf
        for f in np.linspace(1.0 / self.num_candidates, 1.0, self.num_candidates):
            scale, zp = calculate_qparams(f * lo, f * hi, self.bits, self.signed, self.symmetric)
            err = np.mean((fake_quantize(self.sample, scale, zp, self.bits, self.signed) - self.sample) ** 2)
            if err < best_err:
                best, best_err = f, err
        return np.asarray(best * lo), np.asarray(best * hi)
