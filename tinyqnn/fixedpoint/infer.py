"""Integer-only inference of an ``IntegerLeNet`` on the simulated MAC unit.

Per layer: integer inputs (uint8 pixels, then b-bit activation levels) -> accumulators (vectorized MAC
unit, ``acc_bits`` wide, wrap or saturate at every step) -> activation levels by (a) requantization
(M0/shift, ceiling rounding, fused clamp) or (b) thresholds -> 2x2 max pool on the levels. The last layer
gives int32 logits at one common scale; their argmax is the prediction. No float arithmetic touches a
value (BLAS sums integers exactly, see ``tinyqnn.fixedpoint.accumulate``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .accumulate import int_conv2d, int_linear
from .convert import METHODS, IntegerLeNet, IntLayer
from .intrep import check_fits, check_overflow_mode, magnitude
from .requant import multiply_by_quantized_multiplier
from .thresholds import apply_thresholds


def max_pool_int(x: np.ndarray, k: int) -> np.ndarray:
    """Non-overlapping k x k max pool of integers: (N, C, H, W) -> (N, C, H // k, W // k).

    The maximum of the k*k strided views (no copy of a transposed input, unlike a reshape).
    """
    n, c, h, w = x.shape
    oh, ow = h // k, w // k
    out = x[:, :, 0:oh * k:k, 0:ow * k:k]
    for i in range(k):  # k*k - 1 elementwise maxima over whole tensors (not a loop over pixels)
        for j in range(k):
            if i or j:
                out = np.maximum(out, x[:, :, i:oh * k:k, j:ow * k:k])
    return out


def activation_levels(layer: IntLayer, acc: np.ndarray, method: str) -> np.ndarray:
    """Levels ``clip(ceil(M (acc + B)), 0, 2^b - 1)`` from accumulators that already hold the int32 bias.

    acc: (N, F) or (N, F, H, W) int64 -> same shape, levels in 0 .. 2^b - 1.
    """
    top = 2 ** layer.act_bits - 1
    if method == "thresholds":
        return apply_thresholds(acc, layer.thresholds)  # stated on the accumulator that holds the bias
    # multiply_by_quantized_multiplier(acc, M0, shift, rounding="ceil") with the bias residual R added to the
    # exact product, without re-validating M0 and shift (checked at conversion / loading):
    # ceil((acc * M0 + R) / 2**(31 - shift)), then the fused clamp
    m0 = _bcast(layer.quantized_multiplier.astype(np.int64), acc)
    total = _bcast(31 - layer.shift.astype(np.int64), acc)
    if acc.dtype != np.int32:  # the int32 input of the reference kernel (a wider accumulator saturates into it)
        acc = np.clip(acc, -(1 << 31), (1 << 31) - 1)
    scaled = acc * m0  # exact in int64: |acc| < 2**31, M0 < 2**31
    scaled += _bcast(layer.bias_residual, acc) + ((np.int64(1) << total) - 1)  # in place: one pass each
    scaled >>= total
    return np.clip(scaled, 0, top, out=scaled)


def _bcast(values: np.ndarray, acc: np.ndarray) -> np.ndarray:
    """Per-channel (F,) or per-position (F, H, W) values shaped to broadcast against acc (N, F, ...)."""
    return values.reshape((1,) + values.shape + (1,) * (acc.ndim - 1 - values.ndim))


def integer_forward(model: IntegerLeNet, pixels: np.ndarray, method: str | None = None, acc_bits: int = 32,
                    overflow: str = "wrap", batch_size: int = 1000, collect: bool = False,
                    progress: Any = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Run uint8 images through the integer model.

    Args:
        pixels: (N, 28, 28) or (N, 1, 28, 28) integers in 0..255 (raw MNIST pixels).
        method: "requant" or "thresholds" (default: the model's).
        acc_bits, overflow: the accumulator's width and overflow rule, for every layer.
        batch_size: images per step (bounds memory). collect: also gather per-layer statistics.
        progress: a callable ``progress(n_done)`` after each batch (e.g. a tqdm's ``update``).
    Returns:
        (logits (N, 10) int64, stats) with stats per layer: ``overflows`` (overflowed additions),
        ``outputs_overflowed``, ``overflows_per_channel`` (F,), ``acc_min``, ``acc_max``, ``outputs``.
    """
    method = method or model.method
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    check_overflow_mode(overflow)
    pixels = np.asarray(pixels)
    if pixels.ndim == 3:
        pixels = pixels[:, None]
    if pixels.ndim != 4 or pixels.shape[1:] != (1, 28, 28):
        raise ValueError(f"integer LeNet-5 expects pixels of shape (N, 28, 28) or (N, 1, 28, 28), got {pixels.shape}")
    check_fits(pixels[:1], 8, False, "input pixels")  # cheap early check; the full check runs per batch
    stats: dict[str, Any] = {layer.name: dict(overflows=0, outputs_overflowed=0, outputs=0, acc_min=None,
                                              acc_max=None, overflows_per_channel=np.zeros(layer.weight.shape[0],
                                                                                           dtype=np.int64))
                             for layer in model.layers}
    logits = []
    for start in range(0, len(pixels), batch_size):
        x = pixels[start:start + batch_size]
        check_fits(x, 8, False, "input pixels")
        logits.append(_forward_batch(model, x.astype(np.int64, copy=False), method, acc_bits, overflow, collect, stats))
        if progress is not None:
            progress(len(x))
    return (np.concatenate(logits) if logits else np.zeros((0, 10), dtype=np.int64)), stats


def _forward_batch(model: IntegerLeNet, x: np.ndarray, method: str, acc_bits: int, overflow: str, collect: bool,
                   stats: dict[str, Any]) -> np.ndarray:
    for layer in model.layers:
        if layer.kind == "linear" and x.ndim > 2:
            x = x.reshape(len(x), -1)
        if layer.kind == "conv":
            bias = layer.bias if layer.bias.ndim == 1 else None
            acc, counts = int_conv2d(x, layer.weight, bias, layer.padding, acc_bits, overflow, count=collect,
                                     x_max=2 ** layer.in_bits - 1)
            if bias is None:  # a per-position bias (conv1's input zero point): the last addition, same rule
                acc, extra = _add_bias(acc, layer.bias[None], acc_bits, overflow, _bound(layer))
                counts = None if counts is None else counts + extra
        else:
            acc, counts = int_linear(x, layer.weight, layer.accumulator_bias, acc_bits, overflow, count=collect)
        if collect:
            s = stats[layer.name]
            s["overflows"] += int(counts.sum())
            s["outputs_overflowed"] += int((counts > 0).sum())
            s["outputs"] += int(counts.size)
            s["overflows_per_channel"] += counts.sum(axis=tuple(i for i in range(counts.ndim) if i != 1))
            lo, hi = int(acc.min()), int(acc.max())
            s["acc_min"] = lo if s["acc_min"] is None else min(lo, s["acc_min"])
            s["acc_max"] = hi if s["acc_max"] is None else max(hi, s["acc_max"])
        if layer.act_bits is None:
            return output_logits(layer, acc)
        positional = layer.bias.ndim > 1  # conv1: thresholds and bias residual vary by position
        if layer.pool and not positional:
            # the quantizer is non-decreasing in acc (M > 0) and the same at every position, so max-pooling
            # the accumulators first gives the same levels with a quarter of the requantizations / comparisons
            x = activation_levels(layer, max_pool_int(acc, layer.pool), method)
        else:
            x = activation_levels(layer, acc, method)
            if layer.pool:
                x = max_pool_int(x, layer.pool)
    raise ValueError("the integer model has no output layer")


def output_logits(layer: IntLayer, acc: np.ndarray) -> np.ndarray:
    """The output layer's int32 logits from its accumulators (N, F), no bias: requantized to the common logit
    scale (TFLite's double rounding), then the bias, stated at that scale, added."""
    # The kernel's x * 2**shift must stay in int32: saturate the input that far (reached only by an
    # accumulator that already overflowed)
    limit = ((1 << 31) - 1) >> int(max(layer.shift.max(), 0))
    scaled = multiply_by_quantized_multiplier(np.clip(acc, -limit, limit), layer.quantized_multiplier[None],
                                              layer.shift[None])
    return np.asarray(scaled, dtype=np.int64) + layer.bias[None]


def _bound(layer: IntLayer) -> int:
    """Analytic bound of every partial sum of a layer: ``max_f (2^in_bits - 1) sum |w_f| + max |bias_f|`` (the
    bias the accumulator adds: none for the output layer)."""
    f = layer.weight.shape[0]
    w_abs = magnitude(layer.weight).reshape(f, -1).sum(axis=1)
    bias = layer.accumulator_bias
    bias_max = 0 if bias is None else magnitude(bias).reshape(f, -1).max(axis=1)
    return int(((2 ** layer.in_bits - 1) * w_abs + bias_max).max())


def _add_bias(acc: np.ndarray, bias: np.ndarray, acc_bits: int, overflow: str,
              bound: int) -> tuple[np.ndarray, np.ndarray]:
    """``acc + bias`` in the accumulator (the dot product's last step): (result, 1 where it overflowed)."""
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    if bound <= hi:  # the analytic bound says nothing can overflow
        total = acc + (bias.astype(acc.dtype) if bound < 2 ** 31 else bias)
        return total, np.zeros(total.shape, dtype=np.int64)
    total = acc + bias
    over = ((total < lo) | (total > hi)).astype(np.int64)
    if overflow == "saturate":
        return np.clip(total, lo, hi), over
    return (total - lo) % (1 << acc_bits) + lo, over


def predict(model: IntegerLeNet, pixels: np.ndarray, **kwargs: Any) -> np.ndarray:
    """Predicted classes (N,) of the integer model (keyword arguments as ``integer_forward``)."""
    logits, _ = integer_forward(model, pixels, **kwargs)
    return logits.argmax(axis=1)
