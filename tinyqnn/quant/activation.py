"""The uniform quantized ReLU of Yin et al. (2019), on plain NumPy arrays.

With step ``alpha`` and ``bits`` bits the output takes the ``2**bits`` levels
``{0, alpha, 2 alpha, ..., (2**bits - 1) alpha}``. Two rules pick the level:

* ``"ceil"`` (the paper's figure and code)::

      sigma_alpha(x) = 0                        for x <= 0
                     = k alpha                  for (k-1) alpha < x <= k alpha,  k = 1 .. 2**bits - 2
                     = (2**bits - 1) alpha      for x > (2**bits - 2) alpha

  i.e. ``min(ceil(x / alpha), 2**bits - 1) * alpha`` for ``x > 0``. With ``bits=1`` this is the
  binarized ReLU ``alpha * 1{x > 0}`` of the theory section.

* ``"round"`` (round to the nearest level, the rule alpha is fitted for)::

      sigma_alpha(x) = clip(rint(x / alpha), 0, 2**bits - 1) * alpha

  ``np.rint`` rounds halves to even, like every rounding in tinyqnn.

These functions only compute values; the straight-through estimators in ``tinyqnn.quant.ste``
wrap them with a surrogate derivative.
"""
from __future__ import annotations

import numpy as np

QUANTIZER_RULES = ("ceil", "round")


def check_bits(bits: int, minimum: int = 1, maximum: int | None = None) -> int:
    """``bits`` as an int in ``minimum..maximum`` (no upper limit when None), or a ValueError saying why it is
    not a valid bit width."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise ValueError(f"bits must be an integer >= {minimum}, got {bits!r}")
    if bits < minimum:
        raise ValueError(f"bits must be an integer >= {minimum}, got {bits}")
    if maximum is not None and bits > maximum:
        raise ValueError(f"bits must be at most {maximum}, got {bits}")
    return int(bits)


def check_alpha(alpha: float) -> float:
    """``alpha`` (the quantization step) as a float, or a ValueError if it is not finite and > 0."""
    try:
        value = float(alpha)
    except (TypeError, ValueError):
        raise ValueError(f"alpha (the quantization step) must be a positive number, got {alpha!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"alpha (the quantization step) must be a positive finite number, got {alpha!r}")
    return value


def check_rule(quantizer: str) -> str:
    if quantizer not in QUANTIZER_RULES:
        raise ValueError(f"unknown quantizer rule {quantizer!r}; choose one of {', '.join(QUANTIZER_RULES)}")
    return quantizer


def check_float_input(x: np.ndarray, who: str) -> np.ndarray:
    """``x`` if it is floating point, else a TypeError: an autograd quantizer returns the dtype of its
    input, so an integer input would be truncated (uint8 [0, 1, 2, 3] -> [0, 1, 2, 2] levels of 0.65)."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        raise TypeError(f"{who} needs a floating-point input, got {x.dtype} of shape {x.shape}: its output has "
                        "the input's dtype, so integers would be truncated; convert first, e.g. x.to(np.float32)")
    return x


def _as_float(x: np.ndarray) -> np.ndarray:
    """``x`` itself if floating point, else as float64 (the NumPy-level quantizers compute in float)."""
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


def num_levels(bits: int) -> int:
    """Largest level index ``2**bits - 1`` (the top output is ``num_levels(bits) * alpha``)."""
    return 2 ** check_bits(bits) - 1


def _levels(x: np.ndarray, bits: int, alpha: float, quantizer: str) -> np.ndarray:
    """Level ``k`` of each entry as a float array (NaN where ``x`` is NaN), dtype of ``x`` (float64 for ints)."""
    x = _as_float(x)
    top = num_levels(bits)
    check_rule(quantizer)
    a = np.asarray(check_alpha(alpha), dtype=x.dtype)
    if quantizer == "round":
        k = np.rint(x / a)
    else:
        k = np.ceil(x / a)
        k = np.where((k - 1) * a >= x, k - 1, k)  # quotient rounded up past the level: step back
        k = np.where(k * a < x, k + 1, k)  # quotient rounded down below it: step forward
    # NaN stays NaN (np.clip and the comparisons above leave it alone); "+ 0" turns the -0.0 that
    # ceil/rint give for small negative inputs into level 0 (a printed "-0." confuses learners).
    return np.clip(k, 0, top) + 0


def level_index(x: np.ndarray, bits: int, alpha: float, quantizer: str = "ceil") -> np.ndarray:
    """Integer level ``k`` in ``0 .. 2**bits - 1`` chosen for each entry of ``x`` (same shape, int64).

    The ceil rule is evaluated with the comparisons ``(k-1) alpha < x <= k alpha`` in the dtype of
    ``x``: ``x / alpha`` alone can land just above an integer (for x = 3 * 0.1 = 0.30000000000000004,
    x / 0.1 = 3.0000000000000004), which would push an input lying exactly on a level up to the next.
    A NaN has no level: it is a ValueError (cast to int64 it would become a huge negative number).
    """
    k = _levels(x, bits, alpha, quantizer)
    bad = np.isnan(k)
    if bad.any():
        raise ValueError(f"level_index: {int(bad.sum())} NaN entr{'y' if bad.sum() == 1 else 'ies'} in an input of "
                         f"shape {k.shape}; a NaN has no integer level")
    return k.astype(np.int64)


def quantize_relu(x: np.ndarray, bits: int, alpha: float, quantizer: str = "ceil") -> np.ndarray:
    """Quantized ReLU ``sigma_alpha`` (rule ``"ceil"`` or ``"round"``, see the module docstring).

    Args:
        x: any shape; integers are computed in float64.
        bits: bit width >= 1; alpha: step > 0.
    Returns:
        array of the shape and dtype of ``x`` (float64 for integer ``x``) with values in
        ``{0, alpha, ..., (2**bits-1) alpha}``; NaN entries stay NaN.
    """
    k = _levels(x, bits, alpha, quantizer)
    return k * np.asarray(alpha, dtype=k.dtype)


def clip_level(bits: int, alpha: float) -> float:
    """Saturation point ``(2**bits - 1) alpha`` of the quantized ReLU (the clipped-ReLU STE's clip)."""
    return num_levels(bits) * check_alpha(alpha)
