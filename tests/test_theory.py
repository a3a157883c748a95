"""The two-layer theory model: closed forms vs Monte Carlo (engine), gradients, landscape, Algorithm 1.

Statistical tolerance: every Monte Carlo comparison allows 5 standard errors of the estimate
(sample std / sqrt(S)), with a fixed seed. For one Gaussian-like estimate a 5-sigma miss has
probability ~6e-7; over the ~25 comparisons below a false failure has probability < 2e-5.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from tinyqnn.theory import (
    THEORY_STES, angle, clipped_relu_coarse_gradient, coarse_gradient_descent, correlation, critical_points, expected_coarse_gradient,
    from_spurious_minimum, identity_norm_at_spurious, monte_carlo, p_q, population_loss, saddle_point,
    spurious_minima_exist, spurious_minimizer, true_gradient, xi,
)

M, N = 5, 4  # as in the reference's Monte Carlo check
SIGMAS = 5.0
SAMPLES = 200_000


def _setup(seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(M), 1.3 * rng.standard_normal(N), rng.standard_normal(M), rng.standard_normal(N)


def _within(estimate, se, exact, what: str):
    estimate, se, exact = np.atleast_1d(estimate), np.atleast_1d(se), np.atleast_1d(exact)
    z = np.abs(estimate - exact) / np.maximum(se, 1e-300)
    assert np.all(np.abs(estimate - exact) <= SIGMAS * se + 1e-12), f"{what}: |MC - closed form| / SE = {z}"


@pytest.fixture(scope="module", params=[3, 10], ids=["theta=1.16", "theta=2.15"])
def point(request):
    # two points where every term of the formulas is many standard errors large (a sign or
    # factor slip in any term would be caught), at a small and a large angle
    return _setup(request.param)


@pytest.fixture(scope="module")
def estimates(point):
    return {ste: monte_carlo(*point, ste=ste, samples=SAMPLES, seed=7) for ste in THEORY_STES}


# ---------------------------------------------------------------------- closed forms vs Monte Carlo
def test_loss_matches_monte_carlo(point, estimates):
    est = estimates["relu"]
    _within(est.loss, est.loss_se, population_loss(*point), "population loss (Lemma 1)")


@pytest.mark.parametrize("ste", THEORY_STES)
def test_expected_gradients_match_monte_carlo(point, estimates, ste):
    est = estimates[ste]
    gv, gw = expected_coarse_gradient(*point, ste=ste)
    _within(est.grad_v, est.grad_v_se, gv, f"E[dl/dv] with {ste} (Lemma 4)")
    _within(est.grad_w, est.grad_w_se, gw, f"E[g_{ste}] (Lemmas 4/7/9)")
    _within(est.inner, est.inner_se, correlation(*point, ste=ste), f"<E g_{ste}, df/dw>")


def test_expected_dl_dv_is_true_gradient(point):
    for ste in THEORY_STES:
        np.testing.assert_allclose(expected_coarse_gradient(*point, ste=ste)[0], true_gradient(*point)[0])


@pytest.mark.parametrize("ste", THEORY_STES)
def test_correlation_formula_and_sign(ste):
    rng = np.random.default_rng(11)
    for _ in range(25):
        v, vs, ws = rng.standard_normal(M), rng.standard_normal(M), rng.standard_normal(N)
        w = rng.uniform(0.2, 3) * rng.standard_normal(N)
        _, gw = expected_coarse_gradient(v, w, vs, ws, ste)
        inner = gw @ true_gradient(v, w, vs, ws)[1]
        assert inner == pytest.approx(correlation(v, w, vs, ws, ste), rel=1e-7, abs=1e-14)
        assert inner >= -1e-14


def test_clipped_relu_coarse_gradient_is_lemma_7():
    """The clipped-ReLU case on its own (what unit 6's plots call): its inner product with df/dw is the closed-form
    correlation, and it is not the ReLU STE's."""
    rng = np.random.default_rng(12)
    for _ in range(10):
        v, vs, ws = rng.standard_normal(M), rng.standard_normal(M), rng.standard_normal(N)
        w = rng.uniform(0.2, 3) * rng.standard_normal(N)
        g = clipped_relu_coarse_gradient(v, w, vs, ws)
        assert g.shape == (N,)
        inner = g @ true_gradient(v, w, vs, ws)[1]
        assert inner == pytest.approx(correlation(v, w, vs, ws, "clipped_relu"), rel=1e-7, abs=1e-14)
        assert not np.allclose(g, expected_coarse_gradient(v, w, vs, ws, "relu")[1])


def test_true_gradient_matches_central_differences():
    rng = np.random.default_rng(3)
    for _ in range(5):
        v, w, vs, ws = rng.standard_normal(M), rng.standard_normal(N), rng.standard_normal(M), rng.standard_normal(N)
        gv, gw = true_gradient(v, w, vs, ws)
        eps = 1e-6
        f = lambda vv, ww: population_loss(vv, ww, vs, ws)  # noqa: E731
        num_v = [(f(v + eps * e, w) - f(v - eps * e, w)) / (2 * eps) for e in np.eye(M)]
        num_w = [(f(v, w + eps * e) - f(v, w - eps * e)) / (2 * eps) for e in np.eye(N)]
        np.testing.assert_allclose(gv, num_v, atol=1e-8)
        np.testing.assert_allclose(gw, num_w, atol=1e-8)


def test_loss_is_invariant_to_scaling_of_w():
    v, w, vs, ws = _setup(4)
    assert population_loss(v, 3.7 * w, vs, 0.2 * ws) == pytest.approx(population_loss(v, w, vs, ws), rel=1e-12)
    assert population_loss(v, np.zeros(N), vs, ws) == pytest.approx((vs @ vs + vs.sum() ** 2) / 8)


# ---------------------------------------------------------------------- quadrature helpers
def test_xi_closed_form_against_quadrature():
    nodes, weights = np.polynomial.legendre.leggauss(200)
    for x in (0.1, 0.8, 2.0, 5.0):
        r = x / 2 * (nodes + 1)
        assert xi(x) == pytest.approx(x / 2 * weights @ (r * r * np.exp(-r * r / 2)), rel=1e-12)
    assert xi(np.inf) == pytest.approx(math.sqrt(math.pi / 2), rel=1e-15)


def test_p_q_boundary_values():
    for wn in (0.5, 1.0, 3.0):
        p_pi, q_pi = p_q(math.pi, wn)
        assert p_pi == 0 and q_pi == 0
        assert abs(p_q(0.0, wn)[1]) < 1e-12
        assert p_q(1.0, wn)[1] > 0


# ---------------------------------------------------------------------- spurious minimizer (Lemma 9)
def _teacher():
    vs = np.array([1.0, 1.0, 1.0, -0.5, 0.3])
    ws = np.array([0.0, 2.0, 0.0, 0.0])
    assert spurious_minima_exist(vs)
    return vs, ws


def test_identity_coarse_gradient_at_spurious_minimum():
    vs, ws = _teacher()
    v, w = spurious_minimizer(vs, ws)
    formula = 2 * (M - 1) * vs.sum() ** 2 / (math.sqrt(2 * math.pi) * (M + 1) ** 2)
    assert formula > 0.1
    assert identity_norm_at_spurious(vs) == pytest.approx(formula, rel=1e-14)
    assert np.linalg.norm(expected_coarse_gradient(v, w, vs, ws, "identity")[1]) == pytest.approx(formula, rel=1e-12)
    for ste in ("relu", "clipped_relu"):
        assert np.linalg.norm(expected_coarse_gradient(v, w, vs, ws, ste)[1]) < 1e-12
    # the same with the engine's STEs, within 5 standard errors
    for ste in THEORY_STES:
        est = monte_carlo(v, w, vs, ws, ste=ste, samples=100_000, seed=3)
        exact = expected_coarse_gradient(v, w, vs, ws, ste)[1]
        _within(est.grad_w, est.grad_w_se, exact, f"coarse gradient {ste} at the spurious minimizer")


# ---------------------------------------------------------------------- landscape
def test_critical_points_have_zero_gradients():
    vs, ws = _teacher()
    points = critical_points(vs, ws)
    assert set(points) == {"global", "spurious", "saddle"}
    for name, (v, w) in points.items():
        gv, gw = true_gradient(v, w, vs, ws)
        assert np.linalg.norm(gv) < 1e-12 and np.linalg.norm(gw) < 1e-12, name
    v, w = points["saddle"]
    assert abs(v @ vs) < 1e-12 and 0 < angle(w, ws) < math.pi
    assert population_loss(*points["global"], vs, ws) == pytest.approx(0, abs=1e-14)
    assert population_loss(*points["spurious"], vs, ws) > 0


def test_spurious_condition_failure_is_reported():
    vs = np.ones(M)  # (1^T v*)^2 = 25 >= (m+1)|v*|^2/2 = 15
    assert not spurious_minima_exist(vs)
    with pytest.raises(ValueError, match="no spurious minima"):
        spurious_minimizer(vs, np.ones(N))
    with pytest.raises(ValueError, match="no saddle"):
        saddle_point(vs, np.ones(N))
    assert set(critical_points(vs, np.ones(N))) == {"global"}


# ---------------------------------------------------------------------- Algorithm 1
@pytest.mark.parametrize("ste", ["relu", "clipped_relu"])
def test_descent_is_monotone_for_relu_and_clipped_relu(ste):
    vs, ws = _teacher()
    rng = np.random.default_rng(5)
    for _ in range(3):
        h = coarse_gradient_descent(rng.standard_normal(M), rng.standard_normal(N), vs, ws, ste, lr=0.05, steps=300)
        # Theorem 1 assumes |w^t| >= c_w > 0; a run can pass near w = 0 and flip (theta jumps to ~pi),
        # so the check covers the steps whose both ends keep |w| >= 0.05
        ok = (h.w_norm[:-1] >= 0.05) & (h.w_norm[1:] >= 0.05)
        assert ok.sum() >= 250
        assert np.all(np.diff(h.loss)[ok] <= 1e-12), "Theorem 1: the loss never rises for a small step"
        assert h.loss[-1] < h.loss[0]
        assert np.all(h.inner >= -1e-12)


def test_identity_leaves_spurious_minimum_others_stay():
    vs, ws = _teacher()
    runs = from_spurious_minimum(vs, ws, lr=0.05, steps=50)
    for ste in ("relu", "clipped_relu"):
        np.testing.assert_allclose(runs[ste].w[-1], runs[ste].w[0], atol=1e-10)
        np.testing.assert_allclose(runs[ste].loss, runs[ste].loss[0], atol=1e-12)
    ident = runs["identity"]
    assert np.linalg.norm(ident.w[-1] - ident.w[0]) > 0.1
    assert np.max(np.abs(ident.loss - ident.loss[0])) > 1e-3


def test_monte_carlo_descent_runs_on_the_engine():
    vs, ws = _teacher()
    h = coarse_gradient_descent(np.ones(M), np.array([1.0, 0.2, -0.3, 0.5]), vs, ws, "clipped_relu", lr=0.1,
                                steps=30, gradients="montecarlo", samples=4000, resample=False, seed=1)
    assert h.v.shape == (31, M) and h.w.shape == (31, N)
    assert h.loss[-1] < h.loss[0]


def test_bad_inputs():
    v, w, vs, ws = _setup()
    with pytest.raises(ValueError, match="identity, relu, clipped_relu"):
        expected_coarse_gradient(v, w, vs, ws, "pact")
    with pytest.raises(ValueError, match="same length"):
        population_loss(v[:3], w, vs, ws)
    with pytest.raises(ValueError, match="gradients"):
        coarse_gradient_descent(v, w, vs, ws, gradients="exact")


@pytest.mark.parametrize("ste", THEORY_STES)
def test_coarse_gradient_is_continuous_at_theta_zero(ste):
    # the clipped-ReLU formula has csc/cot(theta/2) terms whose theta -> 0 limit is special-cased
    v, _, vs, ws = _setup(8)
    ws = ws / np.linalg.norm(ws)
    other = np.linalg.qr(np.column_stack([ws, np.eye(N)[:, :1]]))[0][:, 1]
    at_zero = expected_coarse_gradient(v, 1.5 * ws, vs, ws, ste)[1]
    near = expected_coarse_gradient(v, 1.5 * (ws + 1e-7 * other), vs, ws, ste)[1]
    np.testing.assert_allclose(near, at_zero, atol=1e-5)


def test_plots_draw_the_histories():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyqnn.theory.plots import plot_inner_products, plot_loss_curves, plot_spurious_escape

    vs, ws = _teacher()
    runs = from_spurious_minimum(vs, ws, lr=0.05, steps=20)
    fig = plot_spurious_escape(runs)
    np.testing.assert_array_equal(fig.axes[0].lines[0].get_ydata(), runs["identity"].loss)
    np.testing.assert_array_equal(fig.axes[1].lines[0].get_ydata(), runs["identity"].angle)
    fig2 = plot_inner_products(runs)
    np.testing.assert_array_equal(fig2.axes[0].lines[1].get_ydata(), runs["relu"].inner)
    fig3 = plot_loss_curves({k: [h] for k, h in runs.items()})
    assert len(fig3.axes[0].lines) == 3
    plt.close("all")
