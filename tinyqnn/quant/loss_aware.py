"""Loss-aware weight quantization (Hou, Yao & Kwok 2017; Hou & Kwok 2018; analysed in Hou, Zhang & Kwok 2019).

A plain quantizer (``tinyqnn.quant.weight``) minimises ``||w_hat - w||^2``. A loss-aware one minimises the
second-order model of the loss, with the optimizer's diagonal preconditioner ``D = sqrt(v)`` (Adam / RMSProp's
second moment, plus eps) standing in for the Hessian:

    w_hat = argmin ||w_hat - w||^2_D = sum_i D_i (w_hat_i - w_i)^2   s.t.  w_hat = alpha * b,  alpha > 0,
    b_i in {-1, +1}                      (LAB, 1 bit)
    b_i in {0, +-1/k, +-2/k, ..., +-1}   (LAQm, m >= 2 bits, k = 2^(m-1) - 1; 2^m - 1 levels, resolution 1/k)

Coordinates with a large ``D`` (a sharply curved loss) are quantized more carefully. One (alpha, b) per layer.

* ``lab``: closed form. For any alpha > 0 the best b is sign(w); then alpha = sum(D |w|) / sum(D).
* ``laq``: alternate the two exact partial minimisations (Hou & Kwok 2018):
      b     <- round(clip(w / alpha, -1, 1) * k) / k                (nearest level, for fixed alpha)
      alpha <- sum(D * w * b) / sum(D * b^2)                        (weighted least squares, for fixed b)
  Each step cannot raise the weighted error, so the error decreases monotonically. The 2018 code's alpha step
  ``sum|D w b| / sum|D b|`` equals the least-squares one only when every nonzero |b| is 1 (binary, ternary); for
  m >= 3 it is not a minimiser and leaves LAQ3 several times above the optimal error (``laq_2018_alpha`` keeps
  it for comparison). The alternating solver finds a local minimum; it is started from a few alphas and keeps
  the best (the brute-force tests bound its gap).

Shapes: ``w`` and ``D`` any shape (the same), a layer's weights; ``alpha`` a float; ``b`` the shape of ``w``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .activation import check_bits


@dataclass(frozen=True)
class LossAwareResult:
    """``w_hat = alpha * codes / k``: ``codes`` int8 in [-k, k] (k = 2^(m-1) - 1; LAB: codes in {-1, +1}, k = 1)."""

    alpha: float
    codes: np.ndarray
    bits: int

    @property
    def levels(self) -> np.ndarray:
        """b: the codes as levels in [-1, 1]."""
        return self.codes / np.float64(max(num_magnitudes(self.bits), 1))

    @property
    def value(self) -> np.ndarray:
        """The quantized weight ``alpha * b`` (float64, the shape of w)."""
        return self.alpha * self.codes / np.float64(max(num_magnitudes(self.bits), 1))


#: the widest codes: they are int8, and k = 2^(m-1) - 1 = 127 at m = 8 (m = 9 would need codes up to 255)
MAX_CODE_BITS = 8


def num_magnitudes(bits: int) -> int:
    """k = 2^(m-1) - 1, the number of nonzero magnitudes of an m-bit sign-magnitude code (0 for m = 1)."""
    return 2 ** (check_bits(bits, minimum=1) - 1) - 1


def _check(w: np.ndarray, D: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    w = np.asarray(w, dtype=np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError(f"weights of shape {w.shape} contain {np.sum(~np.isfinite(w))} NaN/inf entries")
    if D is None:
        return w, np.ones_like(w)
    D = np.asarray(D, dtype=np.float64)
    if D.shape != w.shape:
        raise ValueError(f"preconditioner D has shape {D.shape} but the weights have shape {w.shape}")
    if not np.all(np.isfinite(D)) or np.any(D <= 0):
        raise ValueError(f"preconditioner D must be finite and > 0 everywhere (sqrt(v) + eps); "
                         f"got min {np.min(D) if D.size else 'n/a'} over shape {D.shape}")
    return w, D


def weighted_error(w: np.ndarray, w_hat: np.ndarray, D: np.ndarray | None = None) -> float:
    """``||w_hat - w||^2_D = sum D (w_hat - w)^2`` (D = 1: the plain squared error)."""
    w, D = _check(w, D)
    return float(np.sum(D * (np.asarray(w_hat, dtype=np.float64) - w) ** 2))


def lab(w: np.ndarray, D: np.ndarray | None = None) -> LossAwareResult:
    """Loss-aware binarization: ``alpha = ||D * w||_1 / ||D||_1``, ``b = sign(w)`` (sign(0) = +1), exact.

    w, D: (any shape, the same). D = None means D = 1 (then it is BWN's mean|w| * sign(w)).
    """
    w, D = _check(w, D)
    codes = np.where(w >= 0, 1, -1).astype(np.int8)
    alpha = float(np.sum(D * np.abs(w)) / np.sum(D)) if w.size else 0.0
    return LossAwareResult(alpha, codes, 1)


def _round_levels(w: np.ndarray, alpha: float, k: int) -> np.ndarray:
    """Integer codes of the nearest levels alpha * {-k..k} / k (ties to even, as ``np.rint``)."""
    return np.rint(np.clip(w / alpha, -1.0, 1.0) * k).astype(np.int8)


def _ls_alpha(w: np.ndarray, D: np.ndarray, codes: np.ndarray, k: int) -> float:
    b = codes / k
    denom = float(np.sum(D * b * b))
    return float(np.sum(D * w * b)) / denom if denom > 0 else 0.0


def _2018_alpha(w: np.ndarray, D: np.ndarray, codes: np.ndarray, k: int) -> float:
    b = codes / k
    denom = float(np.sum(np.abs(D * b)))
    return float(np.sum(np.abs(D * w * b))) / denom if denom > 0 else 0.0


def _alternate(w: np.ndarray, D: np.ndarray, k: int, alpha: float, max_iter: int, tol: float,
               alpha_step) -> tuple[float, np.ndarray]:
    codes = _round_levels(w, alpha, k)
    for _ in range(max_iter):
        new = alpha_step(w, D, codes, k)
        if new <= 0:  # every weight rounded to 0: keep the previous (positive) alpha
            break
        done = abs(new - alpha) <= tol * alpha
        alpha = new
        codes = _round_levels(w, alpha, k)  # the level step for the final alpha too
        if done:
            break
    return alpha, codes


def laq(w: np.ndarray, D: np.ndarray | None = None, bits: int = 2, max_iter: int = 10, tol: float = 1e-6,
        starts: int = 3, alpha0: float | None = None) -> LossAwareResult:
    """Loss-aware m-bit quantization (m >= 2): the alternating alpha / level solver (module docstring).

    Args:
        w, D: (any shape, the same); D = None means D = 1.
        bits: m >= 2; levels alpha * r / k, r in {-k..k}, k = 2^(m-1) - 1 (LAQ2 is ternary).
        max_iter, tol: at most ``max_iter`` alternations, stop when alpha moves by <= tol * alpha.
        starts: the solver is run from alpha = max|w| * {1, 1/2, 1/4, ...}[:starts] and the best result kept
            (one start can stop in a poor local minimum when a few weights are much larger than the rest).
        alpha0: if given (> 0), a single start from it instead (a warm start from the previous step's alpha).
    Returns:
        ``LossAwareResult`` (alpha, int8 codes in [-k, k]). Raises ValueError for m > 8 (codes are int8).
    """
    bits = check_bits(bits, minimum=2, maximum=MAX_CODE_BITS)
    w, D = _check(w, D)
    k = num_magnitudes(bits)
    peak = float(np.max(np.abs(w))) if w.size else 0.0
    if peak == 0:
        return LossAwareResult(0.0, np.zeros(w.shape, np.int8), bits)
    best = None
    inits = [alpha0] if alpha0 is not None and alpha0 > 0 else [peak / 2**s for s in range(max(1, starts))]
    for init in inits:
        alpha, codes = _alternate(w, D, k, init, max_iter, tol, _ls_alpha)
        err = float(np.sum(D * (alpha * codes / k - w) ** 2))
        if best is None or err < best[0]:
            best = (err, alpha, codes)
    return LossAwareResult(best[1], best[2], bits)


def laq_2018_alpha(w: np.ndarray, D: np.ndarray | None = None, bits: int = 2, max_iter: int = 10,
                   tol: float = 1e-6) -> LossAwareResult:
    """LAQm with the 2018 code's alpha step ``sum|D w b| / sum|D b|`` (for comparison only; see the module docstring).

    Started like the 2018 code: b = ternary of w at threshold 0.7 mean|w|.
    """
    bits = check_bits(bits, minimum=2, maximum=MAX_CODE_BITS)
    w, D = _check(w, D)
    k = num_magnitudes(bits)
    if not w.size or not np.any(w):
        return LossAwareResult(0.0, np.zeros(w.shape, np.int8), bits)
    init = (np.sign(w) * (np.abs(w) > 0.7 * np.mean(np.abs(w))) * k).astype(np.int8)
    alpha = _2018_alpha(w, D, init, k) or float(np.max(np.abs(w)))
    alpha, codes = _alternate(w, D, k, alpha, max_iter, tol, _2018_alpha)
    return LossAwareResult(alpha, codes, bits)


def laq_exact(w: np.ndarray, D: np.ndarray | None = None, bits: int = 2) -> LossAwareResult:
    """The global minimiser of ``||alpha * b - w||^2_D`` over alpha > 0 and m-bit levels b (reference solver).

    For a fixed alpha the best b is the nearest level, so the error is a function of alpha alone: as alpha falls
    from infinity, code |b_i| * k steps from j to j + 1 at ``alpha = |w_i| k / (j + 1/2)``. Between two such
    breakpoints b is fixed and the error ``sum D w^2 - 2 alpha S1 + alpha^2 S2`` is a quadratic with
    ``S1 = sum D w b``, ``S2 = sum D b^2``; its minimum on the interval is at ``clip(S1 / S2, lo, hi)``.
    Sorting the d*k breakpoints and accumulating S1, S2 visits every interval: O(d k log(d k)), exact.
    Too slow to run every training step on big layers; tests use it to measure ``laq``'s gap.
    """
    bits = check_bits(bits, minimum=2)
    w, D = _check(w, D)
    k = num_magnitudes(bits)
    a, dw = np.abs(w).ravel(), D.ravel()
    if not np.any(a):
        return LossAwareResult(0.0, np.zeros(w.shape, np.int8), bits)
    j = np.arange(k)
    points = (a[:, None] * k / (j + 0.5)).ravel()                   # (d*k,) breakpoints
    d_s1 = np.repeat(dw * a / k, k)                                   # S1 gains D |w| / k per step up
    d_s2 = (dw[:, None] * (2 * j + 1) / k**2).ravel()                 # S2 gains D ((j+1)^2 - j^2) / k^2
    order = np.argsort(-points, kind="stable")
    points, s1, s2 = points[order], np.cumsum(d_s1[order]), np.cumsum(d_s2[order])
    lo = np.append(points[1:], 0.0)                                    # interval p: alpha in [lo_p, points_p]
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.clip(np.where(s2 > 0, s1 / s2, points), lo, points)
    err = -2 * alpha * s1 + alpha**2 * s2                               # + sum D w^2, the same for all
    best = float(alpha[int(np.argmin(err))])
    return LossAwareResult(best, _round_levels(w, best, k), bits)


def loss_aware_quantize(w: np.ndarray, D: np.ndarray | None = None, bits: int = 1,
                        alpha0: float | None = None) -> LossAwareResult:
    """LAB for ``bits == 1``, LAQm for ``bits >= 2`` (warm-started from ``alpha0`` if given); ValueError for bits < 1."""
    bits = check_bits(bits, minimum=1)
    return lab(w, D) if bits == 1 else laq(w, D, bits, alpha0=alpha0)


__all__ = ["LossAwareResult", "lab", "laq", "laq_2018_alpha", "laq_exact", "loss_aware_quantize", "num_magnitudes",
           "weighted_error"]
