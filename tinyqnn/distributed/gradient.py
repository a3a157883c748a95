"""Gradient compression for data-parallel training: m-bit stochastic quantization (SQm) and clipping.

SQm (Hou, Zhang & Kwok 2019, eq. 3; TernGrad for m = 2): with the per-layer scale ``s = ||g||_inf`` and
``k = 2^(m-1) - 1`` magnitude levels ``B_r = r / k`` (resolution ``Delta_g = 1 / k``; sign + magnitude, 2^m - 1
values), each coordinate is rounded *randomly* to one of its two neighbouring levels:

    x_i = |g_i| / s * k,   q_i = floor(x_i) + Bernoulli(x_i - floor(x_i)),   Q(g)_i = s * sign(g_i) * q_i / k

E[q_i] = x_i, so E[Q(g)] = g (unbiased), and E||Q(g) - g||^2 = sum (s/k)^2 p_i (1 - p_i) <= Delta_g ||g||_inf ||g||_1
(Lemma 3; p_i = frac(x_i)). The quantized norm blows up: E||Q(g)||^2 <= ((1 + sqrt d)/2 Delta_g + 1) ||g||^2
(Proposition 1; ``blowup_bound``), because ||g||_inf ||g||_1 / ||g||^2 can reach (1 + sqrt d) / 2.

Clipping first (TernGrad; Proposition 2): ``Clip(g) = clip(g, -c sigma, c sigma)`` with sigma the standard deviation
of the layer's entries. Then s <= c sigma and, for Gaussian g, E||Q(Clip g)||^2 <= (sqrt(2/pi) c Delta_g + 1) E||g||^2,
free of d (``clipped_blowup_bound``), at the price of a bias E||Clip(g) - g||^2 = d sigma^2 F(c) (``clipping_bias_F``).

Shapes: ``g`` any shape (one layer's gradient); codes int8 of the same shape.
"""
from __future__ import annotations

import math

import numpy as np

from ..quant.activation import check_bits
from ..quant.loss_aware import MAX_CODE_BITS


def check_grad_bits(bits: int) -> int:
    """Gradient bits as an int in 2..8, else a ValueError: 1 bit leaves no magnitude level (k = 2^0 - 1 = 0), and
    the codes are int8 (k = 127 at m = 8; m = 9 would overflow them)."""
    bits = check_bits(bits, minimum=1, maximum=MAX_CODE_BITS)
    if bits < 2:
        raise ValueError(f"gradient bits must be >= 2 for SQm (sign + at least one magnitude level, "
                         f"k = 2^(m-1) - 1 = {2 ** (bits - 1) - 1} for m = {bits})")
    return bits


def check_clip(c: float) -> float:
    """The clipping factor c as a float > 0 (finite), else a ValueError."""
    try:
        value = float(c)
    except (TypeError, ValueError):
        raise ValueError(f"clipping factor c must be a number > 0, got {c!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"clipping factor c must be finite and > 0 (clip at +-c * sigma), got {c}")
    return value


def _check_finite(g: np.ndarray) -> np.ndarray:
    g = np.asarray(g, dtype=np.float64)
    if not np.all(np.isfinite(g)):
        raise ValueError(f"gradient of shape {g.shape} has {int(np.sum(~np.isfinite(g)))} NaN/inf entries")
    return g


FLOAT32_MAX = float(np.finfo(np.float32).max)


def float32_scale(s: float) -> float:
    """``s`` rounded *up* to a float32 (the scale travels as 32 bits; up keeps |g| / s <= 1). A ValueError when
    ``s`` is beyond float32's range: the scale would become inf and every decoded value NaN."""
    if not s <= FLOAT32_MAX:
        raise ValueError(f"gradient scale {s:g} is beyond float32's range ({FLOAT32_MAX:.4g}); it cannot be sent "
                         "as a float32 scale (scale the loss down, or lower the learning rate)")
    s32 = np.float32(s)
    if float(s32) < s:
        s32 = np.nextafter(s32, np.float32(np.inf))
    return float(s32)


def stochastic_quantize_codes(g: np.ndarray, bits: int, rng: np.random.Generator,
                              scale: float | None = None) -> tuple[np.ndarray, float]:
    """SQm codes: ``Q(g) = scale * codes / k``, codes int8 in [-k, k], unbiased.

    Args:
        g: (any shape) one layer's gradient, finite.
        bits: m >= 2.
        rng: the worker's seeded Generator; one uniform draw per coordinate, always (reproducible streams).
        scale: s (default ``||g||_inf``, rounded up to float32); must be >= ||g||_inf.
    Returns:
        (codes, s); an all-zero g gives codes 0 and s 0.
    """
    k = 2 ** (check_grad_bits(bits) - 1) - 1
    g = _check_finite(g)
    peak = float(np.max(np.abs(g))) if g.size else 0.0
    s = float32_scale(peak if scale is None else float(scale))
    if s < peak:
        raise ValueError(f"scale {s} is below ||g||_inf = {peak}; levels would not cover the gradient")
    u = rng.random(g.shape)  # drawn even when s == 0, so the stream does not depend on the values
    if s == 0:
        return np.zeros(g.shape, np.int8), 0.0
    x = np.abs(g) / s * k
    low = np.floor(x)
    q = low + (u < x - low)  # rounds up with probability frac(x): E[q] = x
    return (np.sign(g) * q).astype(np.int8), s


def stochastic_quantize(g: np.ndarray, bits: int, rng: np.random.Generator, scale: float | None = None) -> np.ndarray:
    """``Q(g) = s * sign(g) * q / k`` as a float64 array of g's shape (see ``stochastic_quantize_codes``)."""
    codes, s = stochastic_quantize_codes(g, bits, rng, scale)
    return s * codes / (2 ** (bits - 1) - 1)


def clip_gradient(g: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """``(clip(g, -c sigma, c sigma), sigma)`` with sigma = std of g's entries (per layer, as TernGrad).

    g: (any shape); returns the clipped array (g's shape, float64) and sigma.
    """
    c = check_clip(c)
    g = _check_finite(g)
    sigma = float(np.std(g)) if g.size else 0.0
    if sigma == 0:
        # Every entry equals the mean (one coordinate, a constant layer): there is no tail to cut. Proposition 3's
        # bias d sigma^2 F(c) is 0 here, i.e. Clip(g) = g; clipping at +-c * 0 would send a zero gradient instead.
        return g.copy(), sigma
    return np.clip(g, -c * sigma, c * sigma), sigma


def resolution(bits: int) -> float:
    """Delta_g = 1 / (2^(m-1) - 1)."""
    return 1.0 / (2 ** (check_grad_bits(bits) - 1) - 1)


def lemma3_bound(g: np.ndarray, bits: int) -> float:
    """Lemma 3's variance bound ``Delta_g ||g||_inf ||g||_1``."""
    g = _check_finite(g)
    return resolution(bits) * float(np.max(np.abs(g))) * float(np.sum(np.abs(g)))


def sq_variance(g: np.ndarray, bits: int, scale: float | None = None) -> float:
    """The exact ``E||Q(g) - g||^2 = sum (s/k)^2 p (1 - p)``, p = frac(|g| / s * k)."""
    k = 2 ** (check_grad_bits(bits) - 1) - 1
    g = _check_finite(g)
    s = float32_scale(float(np.max(np.abs(g))) if scale is None else float(scale))
    if s == 0:
        return 0.0
    x = np.abs(g) / s * k
    p = x - np.floor(x)
    return float(np.sum((s / k) ** 2 * p * (1 - p)))


def spread(g: np.ndarray) -> float:
    """``||g||_inf ||g||_1 / ||g||^2``, between 1 and (1 + sqrt d) / 2: what drives the blow-up."""
    g = _check_finite(g)
    return float(np.max(np.abs(g)) * np.sum(np.abs(g)) / np.sum(g * g))


def worst_case_vector(d: int) -> np.ndarray:
    """The maximiser of ``spread``: x_1 = ... = x_{d-1} = 1 / (1 + sqrt d), x_d = 1; spread = (1 + sqrt d) / 2."""
    if d < 1:
        raise ValueError(f"dimension d must be >= 1, got {d}")
    x = np.full(d, 1.0 / (1.0 + math.sqrt(d)))
    x[-1] = 1.0
    return x


def blowup_bound(d: int, bits: int) -> float:
    """Proposition 1: E||Q(g)||^2 / ||g||^2 <= (1 + sqrt d) / 2 * Delta_g + 1."""
    return (1 + math.sqrt(d)) / 2 * resolution(bits) + 1


def clipped_blowup_bound(c: float, bits: int) -> float:
    """Proposition 2 (Gaussian g): E||Q(Clip g)||^2 / E||g||^2 <= sqrt(2/pi) c Delta_g + 1."""
    return math.sqrt(2 / math.pi) * check_clip(c) * resolution(bits) + 1


def clipping_bias_F(c: float) -> float:
    """F(c) = (1 + c^2)(1 - erf(c / sqrt 2)) - sqrt(2/pi) c exp(-c^2 / 2): E||Clip(g) - g||^2 = d sigma^2 F(c), g ~ N(0, sigma^2 I)."""
    c = check_clip(c)
    return (1 + c * c) * (1 - math.erf(c / math.sqrt(2))) - math.sqrt(2 / math.pi) * c * math.exp(-c * c / 2)
