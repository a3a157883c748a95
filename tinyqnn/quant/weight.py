"""Weight quantizers ("fake quantization": the result is float, but takes few distinct values).

All act on a NumPy weight array; ``per_channel=True`` fits one scale per output channel (axis 0,
the layout ``(out, in)`` of Linear and ``(F, C, KH, KW)`` of Conv2d).

* ``symmetric``: b bits, levels ``s * {-(2^(b-1) - 1), ..., 2^(b-1) - 1}``, ``s = max|w| / (2^(b-1) - 1)``,
  ``q = s * clip(rint(w / s), -(2^(b-1)-1), 2^(b-1)-1)`` (``np.rint``: halves to even). Error <= s/2.
* ``binary`` (XNOR-Net / BWN): ``q = mean|w| * sign(w)`` (sign(0) = +1).
* ``ternary`` (TWN): threshold ``d = 0.7 mean|w|``; ``q = s * sign(w) * 1{|w| > d}`` with ``s`` the
  mean of ``|w|`` over the entries above the threshold.
* ``none``: the float weights unchanged.

``WeightSTE`` wraps any of them for autograd with the identity STE (the gradient reaches the float
weights unchanged); ``QuantConv2d`` / ``QuantLinear`` use it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..engine import Context, Function, Tensor
from .activation import _as_float, check_bits, check_float_input

WeightQuantizer = Callable[..., np.ndarray]


def _reduce_axes(w: np.ndarray, per_channel: bool) -> tuple[int, ...] | None:
    """Axes a per-channel statistic is taken over (all but axis 0), or None for per-tensor."""
    if not per_channel:
        return None
    if w.ndim < 2:
        raise ValueError(f"per_channel quantization needs a weight with >= 2 axes (out, ...), got shape {w.shape}")
    return tuple(range(1, w.ndim))


def symmetric_scale(w: np.ndarray, bits: int, per_channel: bool = False) -> np.ndarray:
    """Step ``max|w| / (2^(b-1) - 1)``: a scalar array, or shape (out, 1, ..., 1) per channel.

    An all-zero tensor/channel gets step 1 (any step represents zeros exactly); one holding a NaN gets
    NaN (so its quantized values are NaN, never finite). Integer weights are computed in float64.
    """
    bits = check_bits(bits, minimum=2)
    w = _as_float(w)
    top = 2 ** (bits - 1) - 1
    peak = np.max(np.abs(w), axis=_reduce_axes(w, per_channel), keepdims=per_channel)
    return np.where(peak == 0, 1.0, peak / top).astype(w.dtype)


def quantize_symmetric(w: np.ndarray, bits: int = 8, per_channel: bool = False) -> np.ndarray:
    """Symmetric uniform b-bit fake quantization (``bits >= 2``; for 1 bit use ``binary``)."""
    w = _as_float(w)
    if isinstance(bits, (int, np.integer)) and not isinstance(bits, bool) and bits == 1:
        raise ValueError("symmetric quantization needs bits >= 2 (1 bit leaves only the level 0); use 'binary'")
    scale = symmetric_scale(w, bits, per_channel)
    top = 2 ** (bits - 1) - 1
    return (np.clip(np.rint(w / scale), -top, top) * scale).astype(w.dtype)


def quantize_binary(w: np.ndarray, bits: int = 1, per_channel: bool = False) -> np.ndarray:
    """``mean|w| * sign(w)``: the scaled sign minimising ``||w - s sign(w)||^2``. ``bits`` is ignored."""
    w = _as_float(w)
    scale = np.mean(np.abs(w), axis=_reduce_axes(w, per_channel), keepdims=per_channel)  # NaN in, NaN scale
    return (np.where(w >= 0, 1, -1) * scale).astype(w.dtype)


def quantize_ternary(w: np.ndarray, bits: int = 2, per_channel: bool = False, threshold: float = 0.7) -> np.ndarray:
    """TWN: zero the entries with ``|w| <= threshold * mean|w|``, the rest become ``+-s`` with ``s``
    the mean ``|w|`` of the survivors. ``bits`` is ignored (three levels)."""
    w = _as_float(w)
    axes = _reduce_axes(w, per_channel)
    a = np.abs(w)
    delta = threshold * np.mean(a, axis=axes, keepdims=per_channel)
    keep = a > delta
    count = np.sum(keep, axis=axes, keepdims=per_channel)
    scale = np.sum(a * keep, axis=axes, keepdims=per_channel) / np.maximum(count, 1)
    return (np.sign(w) * keep * scale).astype(w.dtype)


def quantize_none(w: np.ndarray, bits: int = 32, per_channel: bool = False) -> np.ndarray:
    """No quantization (float weights, as in every experiment of Yin et al. 2019)."""
    return np.asarray(w)


WEIGHT_QUANTIZERS: dict[str, WeightQuantizer] = {
    "symmetric": quantize_symmetric,
    "binary": quantize_binary,
    "ternary": quantize_ternary,
    "none": quantize_none,
}


def get_weight_quantizer(name: str | WeightQuantizer) -> WeightQuantizer:
    """A quantizer function by name (a callable ``f(w, bits, per_channel)`` is returned as is)."""
    if callable(name):
        return name
    if name not in WEIGHT_QUANTIZERS:
        raise ValueError(f"unknown weight quantizer {name!r}; choose one of {', '.join(WEIGHT_QUANTIZERS)}")
    return WEIGHT_QUANTIZERS[name]


class WeightSTE(Function):
    """Forward: ``quantizer(w, bits, per_channel)``; backward: identity (dL/dw = dL/dq).

    ``WeightSTE.apply(w, quantizer="symmetric", bits=8, per_channel=False)``.
    """

    @staticmethod
    def forward(ctx: Context, w: np.ndarray, quantizer: Any = "symmetric", bits: int = 8, per_channel: bool = False):
        check_float_input(w, "WeightSTE")
        return np.asarray(get_weight_quantizer(quantizer)(w, bits=bits, per_channel=per_channel), dtype=w.dtype)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        return grad


def fake_quantize_weight(
    w: Tensor, quantizer: str | WeightQuantizer = "symmetric", bits: int = 8, per_channel: bool = False
) -> Tensor:
    """``w`` quantized in the forward pass, gradient passed straight through to the float ``w``."""
    return WeightSTE.apply(w, quantizer=quantizer, bits=bits, per_channel=per_channel)
