"""Choosing the step ``alpha`` of the quantized ReLU (HWGQ-style, as in Yin et al. 2019).

A batch norm without scale and shift before each activation makes its inputs roughly N(0, 1).
The ReLU of that is a half-Gaussian, and ``alpha`` is fitted ONCE to minimise the mean squared
error between the quantized ReLU and the ReLU on that distribution, then kept fixed for training::

    MSE(alpha) = E_{x ~ N(0,1)} [ (sigma_alpha(x) - max(x, 0))^2 ]

Everything here is exact: on each interval between decision thresholds the quantizer is a constant
``c``, and ``E[(c - x)^2 ; lo < x <= hi]`` needs only the partial moments of the normal law
(``Phi``, ``phi`` and ``Phi(t) - t phi(t)``). ``math.erf`` supplies ``Phi`` (no SciPy).

The paper's code ships ``PAPER_ALPHA = {1: 1.2221, 2: 0.6511, 4: 0.1946}``. These are (within
fitting noise) the optimal steps of the *round-to-nearest* rule (exactly: 1.2240, 0.6508,
0.1932), although the forward pass uses the *ceil* rule, whose own optimum is smaller
(about 0.798, 0.487, 0.167). Experiments default to the paper's values.
"""
from __future__ import annotations

import math

import numpy as np

from .activation import check_bits, check_rule, num_levels

#: the step sizes of the authors' code (``bit_alpha``), used by default in experiments
PAPER_ALPHA: dict[int, float] = {1: 1.2221, 2: 0.6511, 4: 0.1946}

_erf = np.vectorize(math.erf, otypes=[np.float64])


def normal_cdf(t: np.ndarray) -> np.ndarray:
    """Phi(t) of N(0, 1), elementwise (``+-inf`` allowed)."""
    return 0.5 * (1.0 + _erf(np.asarray(t, dtype=np.float64) / math.sqrt(2.0)))


def normal_pdf(t: np.ndarray) -> np.ndarray:
    """phi(t) of N(0, 1), elementwise (0 at ``+-inf``)."""
    t = np.asarray(t, dtype=np.float64)
    return np.exp(-0.5 * t * t) / math.sqrt(2.0 * math.pi)


def _second_moment_below(t: np.ndarray) -> np.ndarray:
    """E[x^2 ; x <= t] = Phi(t) - t phi(t) (integration by parts); 1 at t = +inf."""
    t = np.asarray(t, dtype=np.float64)
    finite = np.isfinite(t)
    return np.where(finite, normal_cdf(t) - np.where(finite, t, 0.0) * normal_pdf(t), 1.0)


def _intervals(alpha: np.ndarray, bits: int, quantizer: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decision intervals ``(lo, hi]`` and levels ``k`` for k = 1 .. 2**bits - 1.

    ``alpha`` has shape (A,); the results have shape (A, L) with L = 2**bits - 1.
    Inputs in ``(0, lo[:, 0]]`` go to level 0.
    """
    top = num_levels(bits)
    k = np.arange(1, top + 1, dtype=np.float64)[None, :]
    a = alpha[:, None]
    if quantizer == "ceil":
        lo, hi = (k - 1) * a, k * a
    else:
        lo, hi = (k - 0.5) * a, (k + 0.5) * a
    hi = np.where(k == top, np.inf, hi)
    return lo, hi, k


def quantization_mse(alpha: float | np.ndarray, bits: int, quantizer: str = "round") -> np.ndarray:
    """Exact ``E[(sigma_alpha(x) - relu(x))^2]`` for x ~ N(0, 1).

    Args:
        alpha: step(s), scalar or any shape (vectorised over it).
        bits: bit width >= 1; quantizer: ``"ceil"`` or ``"round"``.
    Returns:
        the MSE, same shape as ``alpha``.
    """
    check_bits(bits)
    check_rule(quantizer)
    alpha = np.asarray(alpha, dtype=np.float64)
    if np.any(alpha <= 0):
        raise ValueError(f"alpha must be > 0, got min {alpha.min()}")
    flat = alpha.reshape(-1)
    lo, hi, k = _intervals(flat, bits, quantizer)
    c = k * flat[:, None]
    mass = normal_cdf(hi) - normal_cdf(lo)  # P(lo < x <= hi)
    first = normal_pdf(lo) - normal_pdf(hi)  # E[x ; lo < x <= hi]
    second = _second_moment_below(hi) - _second_moment_below(lo)  # E[x^2 ; lo < x <= hi]
    err = (c * c * mass - 2 * c * first + second).sum(axis=1)
    # inputs in (0, lo_1] are sent to 0: error E[x^2 ; 0 < x <= lo_1]
    err = err + _second_moment_below(lo[:, 0]) - 0.5
    return err.reshape(alpha.shape)


def optimal_alpha(bits: int, quantizer: str = "round", tol: float = 1e-10) -> float:
    """The MSE-optimal step for x ~ N(0, 1) (a dense grid, then golden-section refinement).

    ``optimal_alpha(b, "round")`` is about 1.2240, 0.6508, 0.1932 for b = 1, 2, 4;
    ``optimal_alpha(b, "ceil")`` about 0.798, 0.487, 0.167.
    """
    bits = check_bits(bits)
    check_rule(quantizer)
    top = num_levels(bits)
    grid = np.linspace(1e-3, 6.0 / top + 1.0, 2001)  # the optimum is well below 6 sigma / levels + 1
    i = int(np.argmin(quantization_mse(grid, bits, quantizer)))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    while b - a > tol:
        c, d = b - ratio * (b - a), a + ratio * (b - a)
        if quantization_mse(c, bits, quantizer) < quantization_mse(d, bits, quantizer):
            b = d
        else:
            a = c
    return float(0.5 * (a + b))


def lloyd_alpha(
    bits: int, data: np.ndarray | None = None, alpha0: float | None = None, iters: int = 500, tol: float = 1e-12
) -> float:
    """Lloyd's algorithm restricted to uniform levels ``{0, alpha, ..., (2**b - 1) alpha}``.

    Alternate (1) assign each input to its nearest level k (the round rule) and (2) refit the
    single step by least squares, ``alpha = E[k x] / E[k^2]``. A fixed point is a stationary point
    of the round-rule MSE.

    Args:
        bits: bit width >= 1.
        data: samples of the pre-activation (e.g. N(0, 1) draws); negative ones are ignored (they
            go to 0 whatever alpha is). ``None`` uses the exact expectations under N(0, 1).
        alpha0: starting step (default ``3 / (2**bits - 1)``).
        iters: iteration cap. Lloyd converges linearly and slowly for wide quantizers (8 bits
            needs ~10^4 steps); ``optimal_alpha`` minimises the same MSE directly.
    Returns:
        the fitted step.
    """
    top = num_levels(bits)
    alpha = 3.0 / top if alpha0 is None else float(alpha0)
    x = None if data is None else np.asarray(data, dtype=np.float64).reshape(-1)
    for _ in range(iters):
        if x is None:
            lo, hi, k = _intervals(np.array([alpha]), bits, "round")
            ekx = (k * (normal_pdf(lo) - normal_pdf(hi))).sum()
            ek2 = (k * k * (normal_cdf(hi) - normal_cdf(lo))).sum()
        else:
            k = np.clip(np.rint(x / alpha), 0, top)
            ekx, ek2 = (k * x).sum(), (k * k).sum()
        if ek2 == 0:
            raise ValueError("lloyd_alpha: no input reached a nonzero level; start from a smaller alpha0")
        new = float(ekx / ek2)
        if abs(new - alpha) < tol:
            return new
        alpha = new
    return alpha


def default_alpha(bits: int) -> float:
    """The paper's step for ``bits`` in ``PAPER_ALPHA``; the round-rule optimum for other widths."""
    bits = check_bits(bits)
    return PAPER_ALPHA[bits] if bits in PAPER_ALPHA else optimal_alpha(bits, "round")
