"""Algorithm 1 of Yin et al. (2019): full-batch coarse gradient descent on the two-layer model.

    v <- v - lr * E_Z[dl/dv]          (the true gradient: sigma's jump does not involve v)
    w <- w - lr * E_Z[g_mu]           (the coarse gradient of the STE mu)

The expectations come either from the closed forms (``gradients="closed"``, the paper's infinite-data
setting) or from Monte Carlo with the engine (``gradients="montecarlo"``: fresh draws each step, or
one fixed data set with ``resample=False``, the finite-sample objective of Remark 1).
Each step records the exact population loss, the angle, the correlation <E g, df/dw>, norms and the
iterates, so the plots in ``tinyqnn.theory.plots`` can show descent (ReLU / clipped ReLU) versus the
identity STE drifting away from a spurious minimum.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .landscape import spurious_minimizer
from .montecarlo import empirical_gradients, monte_carlo
from .two_layer import _check, angle, expected_coarse_gradient, population_loss, true_gradient


@dataclass
class DescentHistory:
    """One row per recorded step (step 0 = the start). Arrays of shape (T,) unless noted."""

    ste: str
    lr: float
    step: np.ndarray = field(default_factory=lambda: np.empty(0))
    loss: np.ndarray = field(default_factory=lambda: np.empty(0))  # population loss f (Lemma 1)
    angle: np.ndarray = field(default_factory=lambda: np.empty(0))  # theta(w, w*)
    inner: np.ndarray = field(default_factory=lambda: np.empty(0))  # <E g_mu, df/dw>
    grad_v_norm: np.ndarray = field(default_factory=lambda: np.empty(0))  # |E dl/dv|
    coarse_norm: np.ndarray = field(default_factory=lambda: np.empty(0))  # |E g_mu|
    w_norm: np.ndarray = field(default_factory=lambda: np.empty(0))
    v: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))  # (T, m)
    w: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))  # (T, n)


def coarse_gradient_descent(
    v0: np.ndarray,
    w0: np.ndarray,
    v_star: np.ndarray,
    w_star: np.ndarray,
    ste: str = "relu",
    lr: float = 0.1,
    steps: int = 1000,
    gradients: str = "closed",
    samples: int = 10_000,
    resample: bool = True,
    seed: int = 0,
    record_every: int = 1,
) -> DescentHistory:
    """Run Algorithm 1 from (v0, w0) and return its ``DescentHistory``.

    Args:
        v0 (m,), w0 (n,): start; v_star (m,), w_star (n,): teacher.
        ste: "identity", "relu" or "clipped_relu" (any registered STE with ``gradients="montecarlo"``).
        lr: step size eta; steps: number of updates.
        gradients: "closed" (Lemmas 2-9) or "montecarlo" (engine, ``samples`` draws of Z).
        resample: Monte Carlo only; False keeps one fixed data set (empirical loss).
        seed: Monte Carlo seed.
        record_every: record every k-th step (and always the last).
    """
    if gradients not in ("closed", "montecarlo"):
        raise ValueError(f"gradients must be 'closed' or 'montecarlo', got {gradients!r}")
    if lr <= 0 or steps < 0:
        raise ValueError(f"need lr > 0 and steps >= 0, got lr={lr}, steps={steps}")
    v, w, v_star, w_star = _check(v0, w0, v_star, w_star)
    v, w = v.copy(), w.copy()
    rng = np.random.default_rng(seed)
    fixed = rng.standard_normal((samples, v.size, w.size)) if gradients == "montecarlo" and not resample else None
    rows: list[tuple] = []

    def estimate(v: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if gradients == "closed":
            return expected_coarse_gradient(v, w, v_star, w_star, ste)
        if fixed is not None:
            _, gv, gw = empirical_gradients(fixed, v, w, v_star, w_star, ste)
            return gv, gw
        est = monte_carlo(v, w, v_star, w_star, ste, samples=samples, seed=rng)
        return est.grad_v, est.grad_w

    for t in range(steps + 1):
        if np.linalg.norm(w) == 0:
            raise FloatingPointError(f"w reached 0 at step {t}; lower the learning rate")
        gv, gw = estimate(v, w)
        if t % record_every == 0 or t == steps:
            _, dfdw = true_gradient(v, w, v_star, w_star)
            rows.append((t, population_loss(v, w, v_star, w_star), angle(w, w_star), float(gw @ dfdw),
                         float(np.linalg.norm(gv)), float(np.linalg.norm(gw)), float(np.linalg.norm(w)),
                         v.copy(), w.copy()))
        if t < steps:
            v, w = v - lr * gv, w - lr * gw
    cols = list(zip(*rows))
    return DescentHistory(
        ste, lr, *(np.array(c, dtype=float) for c in cols[:7]), np.array(cols[7]), np.array(cols[8])
    )


def random_starts(
    v_star: np.ndarray,
    w_star: np.ndarray,
    stes: Iterable[str] = ("identity", "relu", "clipped_relu"),
    num_starts: int = 5,
    seed: int = 0,
    **kwargs,
) -> dict[str, list[DescentHistory]]:
    """Algorithm 1 from the same ``num_starts`` random (v0, w0) ~ N(0, I) for each STE."""
    rng = np.random.default_rng(seed)
    starts = [(rng.standard_normal(len(v_star)), rng.standard_normal(len(w_star))) for _ in range(num_starts)]
    return {ste: [coarse_gradient_descent(v0, w0, v_star, w_star, ste, **kwargs) for v0, w0 in starts] for ste in stes}


def from_spurious_minimum(
    v_star: np.ndarray,
    w_star: np.ndarray,
    stes: Iterable[str] = ("identity", "relu", "clipped_relu"),
    perturbation: float = 0.0,
    seed: int = 0,
    **kwargs,
) -> dict[str, DescentHistory]:
    """Algorithm 1 started at (or ``perturbation`` away from) the spurious minimizer of Proposition 1.

    The ReLU and clipped-ReLU coarse gradients vanish there, so those runs stay; the identity STE's
    does not (Lemma 9), so its run drifts away and the loss rises.
    """
    v0, w0 = spurious_minimizer(np.asarray(v_star, float), np.asarray(w_star, float))
    rng = np.random.default_rng(seed)
    v0 = v0 + perturbation * rng.standard_normal(v0.shape)
    w0 = w0 + perturbation * rng.standard_normal(w0.shape)
    return {ste: coarse_gradient_descent(v0, w0, v_star, w_star, ste, **kwargs) for ste in stes}
