"""Loss-aware weight quantizers (tinyqnn.quant.loss_aware) against brute-force search of the weighted projection."""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinyqnn.quant.loss_aware import (
    lab, laq, laq_2018_alpha, laq_exact, loss_aware_quantize, num_magnitudes, weighted_error,
)


def brute_force(w, D, bits):
    """min over every code vector b (all 2^d or (2k+1)^d) and the best alpha > 0 for it of ||alpha b - w||^2_D."""
    k = max(num_magnitudes(bits), 1)
    levels = (-1, 1) if bits == 1 else range(-k, k + 1)
    B = np.array(list(itertools.product(levels, repeat=w.size)), float) / k
    num, den = (B * D * w).sum(1), (B * B * D).sum(1)
    alpha = np.where(den > 0, np.maximum(num, 0) / np.where(den > 0, den, 1), 0.0)
    return float((D * (alpha[:, None] * B - w) ** 2).sum(1).min())


TINY = {1: 7, 2: 6, 3: 5, 4: 4}  # d per bit width: (2k+1)^d <= ~17k candidates


@pytest.mark.parametrize("bits", [1, 2, 3, 4])
def test_exact_solvers_match_brute_force(bits):
    rng = np.random.default_rng(bits)
    for _ in range(40):
        d = TINY[bits]
        w, D = rng.standard_normal(d), rng.uniform(0.05, 3.0, d)
        q = lab(w, D) if bits == 1 else laq_exact(w, D, bits)
        assert weighted_error(w, q.value, D) == pytest.approx(brute_force(w, D, bits), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_alternating_laq_on_tiny_d_never_beats_the_optimum_and_is_a_fixed_point(bits):
    rng = np.random.default_rng(10 + bits)
    k = num_magnitudes(bits)
    for _ in range(40):
        d = TINY[bits]
        w, D = rng.standard_normal(d), rng.uniform(0.05, 3.0, d)
        q = laq(w, D, bits)
        best = brute_force(w, D, bits)
        err = weighted_error(w, q.value, D)
        assert err >= best - 1e-12
        # b is the nearest level for alpha (the level step cannot improve it) ...
        assert np.array_equal(q.codes, np.rint(np.clip(w / q.alpha, -1, 1) * k))
        # ... and the error is at most that of the best single start, plain rounding at alpha = max|w|
        plain = np.max(np.abs(w)) * np.rint(w / np.max(np.abs(w)) * k) / k
        assert err <= weighted_error(w, plain, D) + 1e-12


@pytest.mark.parametrize("bits, gap", [(2, 1.001), (3, 1.02), (4, 1.15)])
def test_alternating_laq_is_near_optimal_and_the_2018_alpha_step_is_not(bits, gap):
    """Stated tolerances (measured: mean gap ~1.000 / 1.002 / 1.04 for LAQ2/3/4 at d = 1000, Gaussian w)."""
    rng = np.random.default_rng(bits)
    ratios, ratios_2018 = [], []
    for _ in range(5):
        w, D = rng.standard_normal(1000), rng.uniform(0.1, 2.0, 1000)
        best = weighted_error(w, laq_exact(w, D, bits).value, D)
        ratios.append(weighted_error(w, laq(w, D, bits).value, D) / best)
        ratios_2018.append(weighted_error(w, laq_2018_alpha(w, D, bits).value, D) / best)
    assert 1 - 1e-12 <= np.mean(ratios) <= gap
    if bits >= 3:  # the point: |D w b| / |D b| is not the least-squares alpha for fractional levels
        assert np.mean(ratios_2018) > 2.0
    else:  # binary/ternary: the two alpha steps coincide
        assert np.mean(ratios_2018) <= gap


def test_lab_closed_form_and_sign_of_zero():
    w, D = np.array([0.5, -2.0, 0.0, 1.0]), np.array([1.0, 0.5, 2.0, 4.0])
    q = lab(w, D)
    assert q.alpha == pytest.approx((0.5 + 1.0 + 0 + 4.0) / 7.5)
    assert q.codes.tolist() == [1, -1, 1, 1]
    # D = 1 is BWN: mean|w| * sign(w)
    assert np.allclose(lab(w).value, np.mean(np.abs(w)) * np.array([1, -1, 1, 1]))


@settings(max_examples=30, deadline=None)
@given(d=st.integers(1, 50), bits=st.integers(2, 5), seed=st.integers(0, 10**6))
def test_laq_levels_and_error_within_half_a_step_inside_the_range(d, bits, seed):
    rng = np.random.default_rng(seed)
    w, D = rng.standard_normal(d) * rng.uniform(0.01, 10), rng.uniform(0.1, 5.0, d)
    q = laq(w, D, bits)
    k = num_magnitudes(bits)
    assert q.codes.shape == w.shape and np.abs(q.codes).max() <= k
    assert q.alpha > 0
    inside = np.abs(w) <= q.alpha
    assert np.all(np.abs(q.value - w)[inside] <= q.alpha / k / 2 + 1e-12)
    assert np.all(np.abs(q.value[~inside]) == pytest.approx(q.alpha))  # outside: the nearest level, +-alpha


def test_preconditioner_changes_the_answer():
    """A heavily weighted coordinate is represented more exactly than with D = 1."""
    w = np.array([1.0, 0.2, 0.25, 0.3])
    D = np.array([1.0, 100.0, 100.0, 100.0])
    assert abs(lab(w, D).alpha - 0.25) < abs(lab(w).alpha - 0.25)


@pytest.mark.parametrize("bad, match", [
    (dict(bits=0), "bits"), (dict(bits=-1), "bits"), (dict(D=np.ones(3)), "shape"),
    (dict(D=np.array([1.0, 0.0, 1.0, 1.0])), "> 0"), (dict(w=np.array([1.0, np.nan, 0, 0])), "NaN"),
])
def test_clear_errors(bad, match):
    args = dict(w=np.ones(4), D=np.ones(4), bits=2) | bad
    with pytest.raises(ValueError, match=match):
        loss_aware_quantize(args["w"], args["D"], args["bits"])


def test_all_zero_weights():
    assert np.all(laq(np.zeros(5), None, 3).value == 0)
    assert np.all(laq_exact(np.zeros(5), None, 3).value == 0)
