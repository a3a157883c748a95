"""Monte Carlo estimates of the two-layer model's loss, gradient and coarse gradients, with the engine.

The model runs as tinyqnn Tensors: a batch of S inputs ``Z`` (S, m, n), the pre-activation
``Z w``, the activation through an STE ``Function`` (``get_ste(name)`` with ``bits=1, alpha=1``,
whose forward is exactly ``sigma(x) = 1{x > 0}`` and whose backward is the STE's ``mu'``), the
prediction ``v^T sigma(Z w)`` and the loss ``(y - y*)^2 / 2``. One ``backward`` gives every
sample's gradient at once: ``v`` and ``w`` are broadcast to per-sample copies (S, m) and (S, n)
that are leaves, so their ``.grad`` rows are the per-sample ``dl/dv`` and coarse ``g_mu``. Means
and standard errors (sample std / sqrt(S)) follow.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..engine import Tensor
from ..quant.ste import get_ste
from .two_layer import _check, true_gradient


@dataclass
class MonteCarloEstimate:
    """Means over ``samples`` draws of Z, each with its standard error (std / sqrt(samples))."""

    samples: int
    loss: float
    loss_se: float
    grad_v: np.ndarray  # E[dl/dv], (m,)
    grad_v_se: np.ndarray
    grad_w: np.ndarray  # E[g_mu], (n,)  (the coarse gradient)
    grad_w_se: np.ndarray
    inner: float  # <E g_mu, df/dw> with the closed-form df/dw of Lemma 2
    inner_se: float


class _Moments:
    """Running sums of x and x^2 (float64), for a mean and its standard error."""

    def __init__(self) -> None:
        self.n, self.s, self.s2 = 0, 0.0, 0.0

    def add(self, x: np.ndarray) -> None:  # x: (S, ...) one row per sample
        self.n += x.shape[0]
        self.s = self.s + x.sum(axis=0)
        self.s2 = self.s2 + (x * x).sum(axis=0)

    def mean_se(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.s / self.n
        var = np.maximum(self.s2 / self.n - mean * mean, 0.0) * self.n / max(self.n - 1, 1)
        return mean, np.sqrt(var / self.n)


def per_sample_gradients(
    z: np.ndarray, v: np.ndarray, w: np.ndarray, v_star: np.ndarray, w_star: np.ndarray, ste: str = "relu"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample (loss (S,), dl/dv (S, m), coarse g (S, n)) for inputs ``z`` (S, m, n), via the engine."""
    S = z.shape[0]
    fn = get_ste(ste)
    V = Tensor(np.broadcast_to(v, (S, v.size)).copy(), requires_grad=True)
    W = Tensor(np.broadcast_to(w, (S, w.size)).copy(), requires_grad=True)
    Z = Tensor(z)
    pre = (Z @ W.reshape(S, w.size, 1)).reshape(S, v.size)  # (S, m): row i is Z_i^T w
    act = fn.apply(pre, bits=1, alpha=1.0)  # sigma(Zw) forward, mu'(Zw) backward
    y = (V * act).sum(axis=1)
    y_star = (z @ w_star > 0).astype(np.float64) @ v_star  # teacher: no gradient needed
    loss = 0.5 * (y - y_star) ** 2
    loss.sum().backward()
    return loss.data, V.grad.data, W.grad.data


def monte_carlo(
    v: np.ndarray,
    w: np.ndarray,
    v_star: np.ndarray,
    w_star: np.ndarray,
    ste: str = "relu",
    samples: int = 100_000,
    seed: int | np.random.Generator | None = 0,
    chunk: int = 50_000,
) -> MonteCarloEstimate:
    """Estimate f, E[dl/dv], E[g_mu] and <E g_mu, df/dw> from ``samples`` fresh draws of Z.

    Args:
        v (m,), w (n,), v_star (m,), w_star (n,): the point and the teacher.
        ste: any registered STE name (the closed forms exist for identity / relu / clipped_relu).
        seed: int seed or a Generator (None: tinyqnn's default generator).
        chunk: samples per engine pass (bounds memory: chunk * m * n floats).
    """
    from ..engine.random import default_generator

    v, w, v_star, w_star = _check(v, w, v_star, w_star)
    if samples < 2:
        raise ValueError(f"monte_carlo needs samples >= 2 for a standard error, got {samples}")
    if isinstance(seed, np.random.Generator):
        rng = seed
    else:
        rng = default_generator() if seed is None else np.random.default_rng(seed)
    _, dfdw = true_gradient(v, w, v_star, w_star)
    stats = {k: _Moments() for k in ("loss", "gv", "gw", "inner")}
    done = 0
    while done < samples:
        s = min(chunk, samples - done)
        z = rng.standard_normal((s, v.size, w.size))
        loss, gv, gw = per_sample_gradients(z, v, w, v_star, w_star, ste)
        stats["loss"].add(loss)
        stats["gv"].add(gv)
        stats["gw"].add(gw)
        stats["inner"].add(gw @ dfdw)
        done += s
    (loss, loss_se), (gv, gv_se), (gw, gw_se), (inner, inner_se) = (
        stats[k].mean_se() for k in ("loss", "gv", "gw", "inner")
    )
    return MonteCarloEstimate(samples, float(loss), float(loss_se), gv, gv_se, gw, gw_se, float(inner), float(inner_se))


def empirical_gradients(
    z: np.ndarray, v: np.ndarray, w: np.ndarray, v_star: np.ndarray, w_star: np.ndarray, ste: str = "relu"
) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean (loss, dl/dv, coarse g) over a FIXED data set ``z`` (S, m, n): the finite-sample
    objective of the paper's Figure 1 / Remark 1."""
    v, w, v_star, w_star = _check(v, w, v_star, w_star)
    loss, gv, gw = per_sample_gradients(z, v, w, v_star, w_star, ste)
    return float(loss.mean()), gv.mean(axis=0), gw.mean(axis=0)

