"""Critical points of the population loss (Yin et al. 2019, Proposition 1).

With s = 1^T v* and (I + 11^T)^{-1} = I - 11^T / (m + 1):

* global minimizers: v = v*, theta(w, w*) = 0 (any positive multiple of w*);
* spurious local minimizers: theta = pi, v = (I + 11^T)^{-1}(11^T - I) v*; they exist iff
  s^2 < (m + 1) |v*|^2 / 2;
* saddle points (same condition): v^T v* = 0 with
  v = (I + 11^T)^{-1}(-s^2 / ((m+1)|v*|^2 - s^2) I + 11^T) v*,
  theta = (pi/2) (m+1)|v*|^2 / ((m+1)|v*|^2 - s^2).
"""
from __future__ import annotations

import math

import numpy as np

from .two_layer import _vec


def _inverse_ones(m: int) -> np.ndarray:
    """(I + 11^T)^{-1} = I - 11^T / (m + 1) (Sherman-Morrison)."""
    return np.eye(m) - np.ones((m, m)) / (m + 1)


def spurious_minima_exist(v_star: np.ndarray) -> bool:
    """Proposition 1's condition (1^T v*)^2 < (m + 1) |v*|^2 / 2."""
    v_star = _vec(v_star, "v_star")
    return bool(v_star.sum() ** 2 < (v_star.size + 1) * (v_star @ v_star) / 2)


def global_minimizer(v_star: np.ndarray, w_star: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(v*, w* / |w*|): loss 0."""
    w_star = _vec(w_star, "w_star")
    return _vec(v_star, "v_star").copy(), w_star / np.linalg.norm(w_star)


def spurious_minimizer(v_star: np.ndarray, w_star: np.ndarray, w_norm: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(v, w) = ((I + 11^T)^{-1}(11^T - I) v*, -w_norm w*/|w*|); ValueError if the condition fails."""
    v_star, w_star = _vec(v_star, "v_star"), _vec(w_star, "w_star")
    if not spurious_minima_exist(v_star):
        m = v_star.size
        raise ValueError(
            f"no spurious minima: (1^T v*)^2 = {v_star.sum() ** 2:.4g} is not < (m+1)|v*|^2/2 = "
            f"{(m + 1) * (v_star @ v_star) / 2:.4g}"
        )
    m = v_star.size
    v = _inverse_ones(m) @ ((np.ones((m, m)) - np.eye(m)) @ v_star)
    return v, -w_norm * w_star / np.linalg.norm(w_star)


def saddle_angle(v_star: np.ndarray) -> float:
    """theta = (pi/2)(m+1)|v*|^2 / ((m+1)|v*|^2 - s^2) of the saddle points (needs the condition)."""
    v_star = _vec(v_star, "v_star")
    if not spurious_minima_exist(v_star):
        raise ValueError("no saddle points: (1^T v*)^2 >= (m+1)|v*|^2/2 (see spurious_minima_exist)")
    big = (v_star.size + 1) * (v_star @ v_star)
    return float(math.pi / 2 * big / (big - v_star.sum() ** 2))


def saddle_point(
    v_star: np.ndarray, w_star: np.ndarray, direction: np.ndarray | None = None, w_norm: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """A saddle (v, w): v from Proposition 1, w at the saddle angle from w*, rotated towards
    ``direction`` (its part orthogonal to w*; default: the coordinate axis least aligned with w*).
    Needs n >= 2 and the existence condition."""
    v_star, w_star = _vec(v_star, "v_star"), _vec(w_star, "w_star")
    theta = saddle_angle(v_star)
    m, n = v_star.size, w_star.size
    if n < 2:
        raise ValueError("a saddle point needs n >= 2 (w must leave the line of w*)")
    big, s = (m + 1) * (v_star @ v_star), v_star.sum()
    v = _inverse_ones(m) @ ((-(s**2) / (big - s**2)) * v_star + s * np.ones(m))
    u_star = w_star / np.linalg.norm(w_star)
    d = np.eye(n)[int(np.argmin(np.abs(u_star)))] if direction is None else _vec(direction, "direction")
    d = d - (d @ u_star) * u_star
    if np.linalg.norm(d) < 1e-12:
        raise ValueError("direction is parallel to w_star; pick one with a component orthogonal to it")
    d = d / np.linalg.norm(d)
    return v, w_norm * (math.cos(theta) * u_star + math.sin(theta) * d)


def critical_points(v_star: np.ndarray, w_star: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"global": ..., "spurious": ..., "saddle": ...} (the last two only if they exist)."""
    points = {"global": global_minimizer(v_star, w_star)}
    if spurious_minima_exist(v_star):
        points["spurious"] = spurious_minimizer(v_star, w_star)
        if _vec(w_star, "w_star").size >= 2:
            points["saddle"] = saddle_point(v_star, w_star)
    return points
