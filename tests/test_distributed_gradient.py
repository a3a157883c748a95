"""SQm (unbiased stochastic gradient quantization), clipping, the paper's bounds, and bit packing."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinyqnn.distributed import (
    blowup_bound, clip_gradient, clipped_blowup_bound, clipping_bias_F, lemma3_bound, spread, sq_variance,
    stochastic_quantize, stochastic_quantize_codes, worst_case_vector,
)
from tinyqnn.distributed.gradient import float32_scale
from tinyqnn.distributed.packing import Message, encode_codes, encode_float, pack_codes, unpack_codes


def monte_carlo(g, bits, draws, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([stochastic_quantize(g, bits, rng) for _ in range(draws)])


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_sqm_is_unbiased(bits):
    """Tolerance per coordinate: 5 standard errors of the Monte Carlo mean, plus 5 / draws of a step (a rare
    round-up, probability ~1e-6, would otherwise count as a many-SE event)."""
    g = np.random.default_rng(1).standard_normal(40) ** 3
    draws = 4000
    samples = monte_carlo(g, bits, draws)
    k = 2 ** (bits - 1) - 1
    s = np.max(np.abs(g))
    p = np.abs(g) / s * k % 1
    se = np.sqrt((s / k) ** 2 * p * (1 - p) / draws)
    assert np.all(np.abs(samples.mean(0) - g) <= 5 * se + 5 * s / k / draws)
    # the values are really on the grid s * {-k..k} / k and keep the sign
    codes = samples / float32_scale(s) * k  # the scale travels as float32, rounded up
    assert np.allclose(codes, np.rint(codes), atol=1e-9) and np.all(np.abs(codes) <= k + 1e-9)
    assert np.all(samples * g >= 0)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_lemma3_variance_bound(bits):
    g = np.random.default_rng(2).standard_t(3, size=200)
    exact = sq_variance(g, bits)
    samples = monte_carlo(g, bits, 2000, seed=3)
    measured = np.mean(np.sum((samples - g) ** 2, axis=1))
    assert measured == pytest.approx(exact, rel=0.05)  # Monte Carlo agrees with the closed form (5%, ~15 SE)
    assert exact <= lemma3_bound(g, bits)


@settings(max_examples=40, deadline=None)
@given(d=st.integers(1, 300), bits=st.integers(2, 6), seed=st.integers(0, 10**6))
def test_lemma3_closed_form_never_exceeds_the_bound(d, bits, seed):
    g = np.random.default_rng(seed).standard_normal(d) * np.random.default_rng(seed + 1).exponential(1, d)
    assert sq_variance(g, bits) <= lemma3_bound(g, bits) * (1 + 1e-12)
    assert 1 - 1e-12 <= spread(g) <= (1 + math.sqrt(d)) / 2 + 1e-9


@pytest.mark.parametrize("d", [4, 100, 10_000])
def test_worst_case_vector_reaches_the_spread_bound_and_the_blowup_bound(d):
    x = worst_case_vector(d)
    assert spread(x) == pytest.approx((1 + math.sqrt(d)) / 2, rel=1e-12)
    # SQ2 on it: E||Q x||^2 / ||x||^2 = 1 + var / ||x||^2 approaches Proposition 1's bound as d grows
    ratio = 1 + sq_variance(x, 2) / np.sum(x * x)
    bound = blowup_bound(d, 2)
    assert ratio <= bound
    if d == 10_000:
        assert ratio >= 0.97 * bound  # 50.5 of 51.5
        samples = monte_carlo(x, 2, 200, seed=4)
        assert np.mean(np.sum(samples**2, 1)) / np.sum(x * x) == pytest.approx(ratio, rel=0.05)


def test_gaussian_gradient_blowup_with_and_without_clipping():
    """Clipping at 3 sigma keeps SQ2's blow-up under Proposition 2's d-free bound; without it, it grows with d."""
    rng = np.random.default_rng(5)
    ratios = {}
    for d in (100, 10_000):
        g = rng.standard_normal(d)
        clipped, _ = clip_gradient(g, 3.0)
        ratios[d] = 1 + sq_variance(g, 2) / np.sum(g * g)
        clipped_ratio = (sq_variance(clipped, 2) + np.sum(clipped**2)) / np.sum(g * g)
        assert clipped_ratio <= clipped_blowup_bound(3.0, 2)
        assert ratios[d] <= blowup_bound(d, 2)
    assert ratios[10_000] > ratios[100] + 0.5


@pytest.mark.parametrize("c", [1.0, 2.0, 3.0])
def test_clipping_bias_matches_F(c):
    g = np.random.default_rng(6).normal(0, 2.0, 400_000)
    clipped, sigma = clip_gradient(g, c)
    assert sigma == pytest.approx(2.0, rel=0.01)
    bias = np.sum((clipped - g) ** 2) / (g.size * sigma**2)
    assert bias == pytest.approx(clipping_bias_F(c), rel=0.1)  # 400k samples: ~2-6% relative error at c = 3


def test_F_table_of_the_summary():
    assert [round(clipping_bias_F(c), 4) for c in (1, 2, 2.5, 3)] == [0.1507, 0.0115, 0.0024, 0.0004]


def test_seeded_streams_are_reproducible_and_independent():
    g = np.linspace(-1, 1, 50)
    a = stochastic_quantize(g, 2, np.random.default_rng([0, 1]))
    b = stochastic_quantize(g, 2, np.random.default_rng([0, 1]))
    c = stochastic_quantize(g, 2, np.random.default_rng([0, 2]))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


@pytest.mark.parametrize("call, match", [
    (lambda: stochastic_quantize(np.ones(3), 0, np.random.default_rng()), "bits"),
    (lambda: stochastic_quantize(np.ones(3), 1, np.random.default_rng()), ">= 2"),
    (lambda: clip_gradient(np.ones(3), 0.0), "c must be"),
    (lambda: clip_gradient(np.ones(3), -1.0), "c must be"),
    (lambda: clip_gradient(np.ones(3), float("nan")), "c must be"),
    (lambda: stochastic_quantize(np.array([1.0, np.nan]), 2, np.random.default_rng()), "NaN"),
    (lambda: stochastic_quantize_codes(np.ones(3), 2, np.random.default_rng(), scale=0.5), "below"),
])
def test_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_zero_gradient():
    codes, s = stochastic_quantize_codes(np.zeros(4), 3, np.random.default_rng(0))
    assert s == 0 and not codes.any()


@pytest.mark.parametrize("bits", range(1, 9))
def test_packing_round_trip_and_bit_count(bits):
    rng = np.random.default_rng(bits)
    k = 2 ** (bits - 1) - 1
    for shape in [(1,), (7,), (3, 5), (64, 9)]:
        codes = rng.choice([-1, 1], size=shape) if bits == 1 else rng.integers(-k, k + 1, size=shape)
        payload = pack_codes(codes, bits)
        n = codes.size
        assert len(payload) == math.ceil(n * bits / 8)  # really m bits per coordinate
        assert np.array_equal(unpack_codes(payload, bits, n), codes.ravel())
        msg = encode_codes(codes, bits, 0.75)
        assert msg.nbits == 8 * math.ceil(n * bits / 8) + 32
        assert np.array_equal(msg.decode(), 0.75 * codes / max(k, 1))


def test_packing_is_not_a_byte_per_code():
    """Bit-level layout check: 2-bit codes [-1, 0, 1, 1] -> unsigned [0, 1, 2, 2] -> bits LSB first 00 10 01 01."""
    assert pack_codes(np.array([-1, 0, 1, 1]), 2) == bytes([0b10100100])


def test_sqm_message_round_trip():
    g = np.random.default_rng(7).standard_normal((10, 3))
    codes, s = stochastic_quantize_codes(g, 3, np.random.default_rng(8))
    assert np.array_equal(encode_codes(codes, 3, s).decode(), stochastic_quantize(g, 3, np.random.default_rng(8)))
    f = encode_float(g)
    assert f.nbits == 32 * g.size and np.allclose(f.decode(), g, rtol=1e-7)


@pytest.mark.parametrize("codes, bits, match", [
    (np.array([2]), 2, r"\[-1, 1\]"), (np.array([0]), 1, "-1 or \\+1"), (np.array([1]), 9, "at most 8"),
])
def test_packing_errors(codes, bits, match):
    with pytest.raises(ValueError, match=match):
        pack_codes(codes, bits)


def test_unpack_rejects_a_short_payload():
    with pytest.raises(ValueError, match="need 2"):
        unpack_codes(b"\x00", 3, 5)
    with pytest.raises(ValueError, match="float32"):
        encode_codes(np.array([1]), 2, 0.1)  # 0.1 is not a float32 value


# ---------------------------------------------------------------------- issue 20: silent wrong results
@pytest.mark.parametrize("bits", [9, 12])
def test_codes_wider_than_int8_are_refused(bits):
    from tinyqnn.distributed import TrainConfig
    from tinyqnn.quant.loss_aware import laq, laq_2018_alpha, loss_aware_quantize

    g = np.linspace(-1, 1, 50)
    with pytest.raises(ValueError, match="at most 8"):
        stochastic_quantize_codes(g, bits, np.random.default_rng(0))
    for solver in (laq, laq_2018_alpha, lambda w, D, b: loss_aware_quantize(w, D, b)):
        with pytest.raises(ValueError, match="at most 8"):
            solver(g, None, bits)
    with pytest.raises(ValueError, match="at most 8"):
        TrainConfig(grad_bits=bits)
    with pytest.raises(ValueError, match="at most 8"):
        TrainConfig(weight_bits=bits)


def test_eight_bit_codes_still_hold_every_level():
    g = np.linspace(-1, 1, 255)
    codes, s = stochastic_quantize_codes(g, 8, np.random.default_rng(0))
    assert codes.min() == -127 and codes.max() == 127 and s == 1.0


@pytest.mark.parametrize("g", [np.array([0.7]), np.full((3, 4), -2.5), np.array([5.0, 5.0])])
def test_clipping_a_gradient_with_zero_spread_leaves_it_unchanged(g):
    """sigma = 0: every entry equals the mean, there is no tail to clip (Proposition 3's bias d sigma^2 F(c) = 0)."""
    clipped, sigma = clip_gradient(g, 3.0)
    assert sigma == 0 and np.array_equal(clipped, g) and clipped is not g


def test_a_one_coordinate_linear_problem_with_clipping_moves():
    from tinyqnn.distributed import LinearProblem, TrainConfig, train

    problem = LinearProblem(d=1)
    cfg = TrainConfig(workers=1, iterations=20, weight_bits=None, grad_bits=2, clip=3.0)
    server, history = train(problem, cfg)
    assert not np.array_equal(server.params[0], problem.init_params(cfg.seed)[0])
    assert history.loss[-1] < history.loss[0]


@pytest.mark.parametrize("peak", [1e39, 3.5e38])
def test_gradients_beyond_float32_are_a_clear_error_not_nan(peak):
    g = np.array([1.0, -peak, 2.0])
    with pytest.raises(ValueError, match="beyond float32's range"):
        stochastic_quantize(g, 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="beyond float32's range"):
        encode_float(g)
    assert float32_scale(float(np.finfo(np.float32).max)) == float(np.finfo(np.float32).max)
