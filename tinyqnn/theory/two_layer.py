"""Closed forms for the two-linear-layer model of Yin et al. (2019), Section 2.

Model: ``y(Z; v, w) = v^T sigma(Z w)`` with the binary activation ``sigma(x) = 1{x > 0}``,
``Z`` (m, n) with iid N(0, 1) entries, ``v`` (m,), ``w`` (n,); labels from a teacher
``y*(Z) = v*^T sigma(Z w*)``. Loss ``l = (y - y*)^2 / 2``, population loss ``f = E_Z[l]``.
Notation: ``I = I_m``, ``1 = 1_m``, ``theta`` = angle between w and w*, ``u = w / |w|``.

Everything is NumPy float64 on 1-D vectors. ``w_star`` may have any nonzero norm: the loss and the
coarse gradients depend only on its direction (``sigma(c x) = sigma(x)`` for c > 0), so it is
normalised internally.

* ``population_loss``        Lemma 1
* ``true_gradient``          Lemma 2 (df/dv, df/dw)
* ``expected_coarse_gradient`` Lemmas 4, 7, 9: E_Z[dl/dv] (= df/dv) and E_Z[g_mu] for the
  identity, ReLU and clipped-ReLU STEs
* ``clipped_relu_coarse_gradient`` Lemma 7 alone (E_Z[g_mu] of the clipped-ReLU STE)
* ``correlation``            Lemmas 5, 10 and the clipped-ReLU analogue: <E g_mu, df/dw> >= 0
"""
from __future__ import annotations

import math

import numpy as np

from ..quant.alpha import normal_cdf

SQRT_2PI = math.sqrt(2.0 * math.pi)
THEORY_STES = ("identity", "relu", "clipped_relu")


def _vec(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D vector, got shape {a.shape}")
    return a


def _check(v, w, v_star, w_star) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    v, w, v_star, w_star = _vec(v, "v"), _vec(w, "w"), _vec(v_star, "v_star"), _vec(w_star, "w_star")
    if v.shape != v_star.shape:
        raise ValueError(f"v {v.shape} and v_star {v_star.shape} must have the same length m")
    if w.shape != w_star.shape:
        raise ValueError(f"w {w.shape} and w_star {w_star.shape} must have the same length n")
    norm = np.linalg.norm(w_star)
    if norm == 0:
        raise ValueError("w_star must be nonzero")
    return v, w, v_star, w_star / norm


def _check_ste(ste: str) -> str:
    if ste not in THEORY_STES:
        raise ValueError(f"the closed forms cover the STEs {', '.join(THEORY_STES)}; got {ste!r}")
    return ste


def angle(w: np.ndarray, w_star: np.ndarray) -> float:
    """theta(w, w*) = arccos(w^T w* / (|w| |w*|)) in [0, pi]."""
    w, w_star = _vec(w, "w"), _vec(w_star, "w_star")
    nw, ns = np.linalg.norm(w), np.linalg.norm(w_star)
    if nw == 0 or ns == 0:
        raise ValueError("the angle needs nonzero w and w_star")
    return float(np.arccos(np.clip(w @ w_star / (nw * ns), -1.0, 1.0)))


def _ones_matrix(m: int) -> np.ndarray:
    return np.eye(m) + np.ones((m, m))  # I + 1 1^T


def population_loss(v: np.ndarray, w: np.ndarray, v_star: np.ndarray, w_star: np.ndarray) -> float:
    """Lemma 1: f(v, w) = (1/8)[v^T(I + 11^T)v - 2 v^T((1 - 2 theta/pi) I + 11^T) v* + v*^T(I + 11^T) v*].

    For w = 0 (sigma(0) = 0, so the student outputs 0): f = (1/8) v*^T (I + 11^T) v*.
    """
    v, w, v_star, w_star = _check(v, w, v_star, w_star)
    A = _ones_matrix(v.size)
    if np.linalg.norm(w) == 0:
        return float(v_star @ A @ v_star / 8)
    theta = angle(w, w_star)
    B = (1 - 2 * theta / math.pi) * np.eye(v.size) + np.ones((v.size, v.size))
    return float((v @ A @ v - 2 * v @ B @ v_star + v_star @ A @ v_star) / 8)


def _projected_direction(w: np.ndarray, w_star: np.ndarray) -> np.ndarray:
    """P_w w* / |P_w w*| with P_w = I - w w^T / |w|^2; zero when w is parallel to w* (theta = 0 or pi)."""
    u = w / np.linalg.norm(w)
    p = w_star - (u @ w_star) * u
    p = p - (p @ u) * u  # project twice: near theta = 0 or pi one pass leaves rounding noise along u
    norm = np.linalg.norm(p)
    return p / norm if norm > 1e-12 else np.zeros_like(p)


def grad_v(v: np.ndarray, w: np.ndarray, v_star: np.ndarray, w_star: np.ndarray) -> np.ndarray:
    """Lemma 2 (eq. 6): df/dv = (1/4)(I + 11^T) v - (1/4)((1 - 2 theta/pi) I + 11^T) v*; shape (m,)."""
    v, w, v_star, w_star = _check(v, w, v_star, w_star)
    m = v.size
    theta = angle(w, w_star)
    B = (1 - 2 * theta / math.pi) * np.eye(m) + np.ones((m, m))
    return (_ones_matrix(m) @ v - B @ v_star) / 4


def true_gradient(
    v: np.ndarray, w: np.ndarray, v_star: np.ndarray, w_star: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Lemma 2: (df/dv (m,), df/dw (n,)) with df/dw = -(v^T v*) / (2 pi |w|) * P_w w* / |P_w w*|.

    At theta = 0 or pi, P_w w* = 0 and df/dw is returned as 0 (f is not differentiable in w
    at theta = pi; it is flat to first order along every direction at theta = 0).
    """
    v, w, v_star, w_star = _check(v, w, v_star, w_star)
    gw = -(v @ v_star) / (2 * math.pi * np.linalg.norm(w)) * _projected_direction(w, w_star)
    return grad_v(v, w, v_star, w_star), gw


# ---------------------------------------------------------------------- clipped-ReLU helpers
def xi(x: np.ndarray) -> np.ndarray:
    """xi(x) = int_0^x r^2 exp(-r^2/2) dr = sqrt(pi/2) erf(x / sqrt 2) - x exp(-x^2/2)  (by parts).

    Elementwise for x >= 0 (``inf`` allowed: xi(inf) = sqrt(pi/2)).
    """
    x = np.asarray(x, dtype=np.float64)
    finite = np.minimum(x, 1e8)  # beyond ~40 the second term underflows to 0 anyway
    return SQRT_2PI * (normal_cdf(finite) - 0.5) - finite * np.exp(-0.5 * finite * finite)


_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(400)


def _gauss_legendre(fn, a: float, b: float) -> float:
    """int_a^b fn(phi) d phi with 400-point Gauss-Legendre (the integrands are smooth in phi)."""
    if b <= a:
        return 0.0
    half, mid = (b - a) / 2, (b + a) / 2
    return float(half * (_WEIGHTS @ fn(mid + half * _NODES)))


def p_q(theta: float, w_norm: float) -> tuple[float, float]:
    """(p(theta, w), q(theta, w)) of Lemma 7::

        p = (1/2pi) int_{-pi/2 + theta}^{pi/2} cos(phi) xi(sec(phi) / |w|) d phi
        q = (1/2pi) int_{-pi/2 + theta}^{pi/2} sin(phi) xi(sec(phi) / |w|) d phi
    """
    if w_norm <= 0:
        raise ValueError(f"p/q need |w| > 0, got {w_norm}")

    def xi_sec(phi: np.ndarray) -> np.ndarray:
        return xi(1.0 / (np.cos(phi) * w_norm))  # nodes are interior, so cos(phi) > 0

    lo, hi = -math.pi / 2 + theta, math.pi / 2
    p = _gauss_legendre(lambda phi: np.cos(phi) * xi_sec(phi), lo, hi) / (2 * math.pi)
    q = _gauss_legendre(lambda phi: np.sin(phi) * xi_sec(phi), lo, hi) / (2 * math.pi)
    return p, q


def _h(v: np.ndarray, v_star: np.ndarray) -> float:
    """h(v, v*) = |v|^2 + (1^T v)^2 - (1^T v)(1^T v*) + v^T v*."""
    s, s_star = v.sum(), v_star.sum()
    return float(v @ v + s * s - s * s_star + v @ v_star)


def expected_coarse_gradient(
    v: np.ndarray, w: np.ndarray, v_star: np.ndarray, w_star: np.ndarray, ste: str = "relu"
) -> tuple[np.ndarray, np.ndarray]:
    """(E_Z[dl/dv], E_Z[g_mu]) for the STE ``ste`` in {"identity", "relu", "clipped_relu"}.

    E_Z[dl/dv] = df/dv for every STE (Lemma 4). With u = w/|w|, e = (u + w*)/|u + w*| (0 at theta = pi):

    * identity (Lemma 9):     E g = (|v|^2 u - (v^T v*) w*) / sqrt(2 pi)
    * relu (Lemma 4):         E g = h/(2 sqrt(2pi)) u - cos(theta/2) (v^T v*)/sqrt(2pi) e
    * clipped_relu (Lemma 7): E g = p(0,w) h/2 u - (v^T v*) csc(theta/2) q(theta,w) e
                                    - (v^T v*)(p(theta,w) - cot(theta/2) q(theta,w)) u
      (at theta = 0 the last two terms tend to -(v^T v*) p(0, w) u, used there).
    """
    _check_ste(ste)
    v, w, v_star, w_star = _check(v, w, v_star, w_star)
    nw = np.linalg.norm(w)
    if nw == 0:
        raise ValueError("the coarse gradient formulas need w != 0")
    u = w / nw
    theta = angle(w, w_star)
    s = u + w_star
    e = s / np.linalg.norm(s) if np.linalg.norm(s) > 1e-14 else np.zeros_like(u)
    vv = float(v @ v_star)
    gv = grad_v(v, w, v_star, w_star)
    if ste == "identity":
        return gv, (float(v @ v) * u - vv * w_star) / SQRT_2PI
    h = _h(v, v_star)
    if ste == "relu":
        return gv, h / (2 * SQRT_2PI) * u - math.cos(theta / 2) * vv / SQRT_2PI * e
    p0, _ = p_q(0.0, nw)
    p, q = p_q(theta, nw)
    half = math.sin(theta / 2)
    if half < 1e-12:  # theta = 0: e = u and csc q, cot q share one limit that cancels
        return gv, (p0 * h / 2 - vv * p) * u
    csc, cot = 1 / half, math.cos(theta / 2) / half
    return gv, p0 * h / 2 * u - vv * csc * q * e - vv * (p - cot * q) * u


def clipped_relu_coarse_gradient(v: np.ndarray, w: np.ndarray, v_star: np.ndarray, w_star: np.ndarray) -> np.ndarray:
    """E_Z[g_mu] (n,) of the clipped-ReLU STE alone (Lemma 7): ``expected_coarse_gradient(..., "clipped_relu")[1]``.

    Unit 6 of the course asks learners to write the identity and ReLU cases of ``expected_coarse_gradient`` and
    hides that function while grading; its plots need only this case (the one no task asks for).
    """
    return expected_coarse_gradient(v, w, v_star, w_star, "clipped_relu")[1]


def correlation(v: np.ndarray, w: np.ndarray, v_star: np.ndarray, w_star: np.ndarray, ste: str = "relu") -> float:
    """<E g_mu, df/dw> from the lemmas (all >= 0):

    * identity (Lemma 10): sin(theta) (v^T v*)^2 / ((2 pi)^{3/2} |w|)
    * relu (Lemma 5):      sin(theta) (v^T v*)^2 / (2 (2 pi)^{3/2} |w|)
    * clipped_relu:        q(theta, w) (v^T v*)^2 / (2 pi |w|)
    """
    _check_ste(ste)
    v, w, v_star, w_star = _check(v, w, v_star, w_star)
    nw, theta, vv2 = np.linalg.norm(w), angle(w, w_star), float(v @ v_star) ** 2
    if ste == "identity":
        return math.sin(theta) * vv2 / ((2 * math.pi) ** 1.5 * nw)
    if ste == "relu":
        return math.sin(theta) * vv2 / (2 * (2 * math.pi) ** 1.5 * nw)
    return p_q(theta, nw)[1] * vv2 / (2 * math.pi * nw)


def identity_norm_at_spurious(v_star: np.ndarray) -> float:
    """|E g_id| at a spurious minimizer (theta = pi, v = (I + 11^T)^{-1}(11^T - I) v*):
    2 (m - 1)(1^T v*)^2 / (sqrt(2 pi) (m + 1)^2), nonzero when 1^T v* != 0 and m > 1."""
    v_star = _vec(v_star, "v_star")
    m = v_star.size
    return 2 * (m - 1) * float(v_star.sum()) ** 2 / (SQRT_2PI * (m + 1) ** 2)
