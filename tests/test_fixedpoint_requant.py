"""Requantization against a straightforward Python-int implementation of gemmlowp / TFLite semantics."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tinyqnn.fixedpoint.requant import (
    INT32_MAX, INT32_MIN, multiply_by_quantized_multiplier, quantize_multiplier, requantize, rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)


# ------------------------------------------------------------ the reference, written from the C++ semantics
def ref_srdhm(a: int, b: int) -> int:
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    num = ab + nudge
    q = abs(num) // (1 << 31)  # C division truncates toward zero
    return q if num >= 0 else -q


def ref_rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if remainder > threshold else 0)


def ref_mbqm(x: int, m0: int, shift: int, rounding: str) -> int:
    if rounding == "double":
        left, right = max(shift, 0), max(-shift, 0)
        return ref_rdbpot(ref_srdhm(x * (1 << left), m0), right)
    total = 31 - shift
    if rounding == "single":
        return (x * m0 + (1 << (total - 1))) >> total
    return -((-(x * m0)) >> total)  # exact ceiling


def ref_quantize_multiplier(m: float) -> tuple[int, int]:
    if m == 0:
        return 0, 0
    q, shift = math.frexp(m)
    m0 = int(math.floor(q * (1 << 31) + 0.5))  # std::round for q > 0
    if m0 == 1 << 31:
        m0 //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return m0, shift


EDGES = [INT32_MIN, INT32_MIN + 1, -(1 << 30), -3, -2, -1, 0, 1, 2, 3, 1 << 30, INT32_MAX - 1, INT32_MAX]


def _fuzz_pairs(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    a = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
    b = rng.integers(INT32_MIN, INT32_MAX, n, endpoint=True)
    small = rng.integers(-1000, 1000, n)  # small values hit the ties often
    a[: n // 4] = small[: n // 4]
    edge = np.array(np.meshgrid(EDGES, EDGES)).reshape(2, -1)
    return np.concatenate([a, edge[0]]), np.concatenate([b, edge[1]])


def test_high_mul_matches_reference_on_120k_inputs():
    a, b = _fuzz_pairs(np.random.default_rng(0), 120_000)
    got = saturating_rounding_doubling_high_mul(a, b)
    want = np.array([ref_srdhm(int(x), int(y)) for x, y in zip(a, b)])
    np.testing.assert_array_equal(got, want)


def test_high_mul_edge_cases_by_hand():
    assert saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MIN) == INT32_MAX  # the one overflow
    assert saturating_rounding_doubling_high_mul(INT32_MIN, INT32_MAX) == -INT32_MAX
    # a*b/2^31 = +-0.5 and -1.5: ties go toward +inf
    assert saturating_rounding_doubling_high_mul(1, 1 << 30) == 1
    assert saturating_rounding_doubling_high_mul(-1, 1 << 30) == 0
    assert saturating_rounding_doubling_high_mul(-3, 1 << 30) == -1


def test_divide_by_pot_matches_reference_for_every_exponent():
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.integers(INT32_MIN, INT32_MAX, 64_000, endpoint=True), rng.integers(-64, 64, 64_000),
                        np.repeat(EDGES, 32)])
    e = np.concatenate([rng.integers(0, 32, 128_000), np.tile(np.arange(32), len(EDGES))])
    got = rounding_divide_by_pot(x, e)
    want = np.array([ref_rdbpot(int(v), int(k)) for v, k in zip(x, e)])
    np.testing.assert_array_equal(got, want)


def test_divide_by_pot_ties_away_from_zero_and_exponent_range():
    assert [rounding_divide_by_pot(v, 1) for v in (5, -5, 3, -3, 4)] == [3, -3, 2, -2, 2]
    assert rounding_divide_by_pot(INT32_MIN, 31) == -1 and rounding_divide_by_pot(INT32_MAX, 31) == 1
    for bad in (-1, 32):
        with pytest.raises(ValueError, match="exponent"):
            rounding_divide_by_pot(7, bad)


def test_quantize_multiplier_matches_reference_and_edges():
    rng = np.random.default_rng(2)
    m = np.concatenate([rng.uniform(0, 1, 20_000), 2.0 ** rng.uniform(-40, 29, 20_000),
                        [0.0, 0.25, 0.5, 1 - 2.0 ** -33, 1 - 2.0 ** -40, 2.0 ** -31, 2.0 ** -32, 2.0 ** -33]])
    m0, shift = quantize_multiplier(m)
    want = np.array([ref_quantize_multiplier(float(v)) for v in m])
    np.testing.assert_array_equal(m0, want[:, 0])
    np.testing.assert_array_equal(shift, want[:, 1])
    assert quantize_multiplier(1 - 2.0 ** -40) == (1 << 30, 1)  # rounds up to 2^31: halved, shift + 1
    assert quantize_multiplier(2.0 ** -33) == (0, 0)  # below 2^-32: flushed to zero
    ok = (m0 > 0)
    assert np.all((m0[ok] >= 1 << 30) & (m0[ok] <= INT32_MAX))
    for bad in (-0.5, float("nan"), float("inf"), 2.0 ** 31):
        with pytest.raises(ValueError):
            quantize_multiplier(bad)


@pytest.mark.parametrize("rounding", ["double", "single", "ceil"])
def test_multiply_by_quantized_multiplier_matches_reference(rounding):
    rng = np.random.default_rng(3)
    n = 100_000
    m = np.where(rng.random(n) < 0.9, rng.uniform(0, 1, n), 2.0 ** rng.uniform(-35, 6, n))
    m0, shift = quantize_multiplier(m)
    limit = (1 << 31) >> np.maximum(shift, 0)  # x * 2^shift must stay in int32 for the double rounding
    x = (rng.uniform(-1, 1, n) * limit).astype(np.int64)
    x[: n // 5] = rng.integers(-100, 100, n // 5)  # small values: many exact ties
    got = multiply_by_quantized_multiplier(x, m0, shift, rounding)
    want = np.array([ref_mbqm(int(a), int(b), int(c), rounding) for a, b, c in zip(x, m0, shift)])
    np.testing.assert_array_equal(got, want)


def test_double_and_single_rounding_differ_as_documented():
    m0, shift = quantize_multiplier(0.25)
    assert (m0, shift) == (1 << 30, -1)
    assert multiply_by_quantized_multiplier(5, m0, shift) == 2  # 2.5 -> 3 (high mul), 3 / 2 -> 2
    assert multiply_by_quantized_multiplier(5, m0, shift, rounding="single") == 1  # 1.25 -> 1
    assert multiply_by_quantized_multiplier(5, m0, shift, rounding="ceil") == 2
    assert multiply_by_quantized_multiplier(-5, m0, shift, rounding="ceil") == -1


def test_scalar_and_array_inputs_and_requantize_clamp():
    assert isinstance(multiply_by_quantized_multiplier(7, 1 << 30, 0), int)
    out = requantize(np.array([-100, 10, 1000]), 1 << 30, 0, zero_point=0, qmin=0, qmax=3)  # M = 0.5
    np.testing.assert_array_equal(out, [0, 3, 3])
    np.testing.assert_array_equal(requantize(np.array([4, 5]), 1 << 30, 0, zero_point=10), [12, 13])


def test_out_of_range_inputs_raise():
    with pytest.raises(ValueError, match="x"):
        multiply_by_quantized_multiplier(1 << 31, 1 << 30, 0)
    with pytest.raises(ValueError, match="shift"):
        multiply_by_quantized_multiplier(1, 1 << 30, 31)
    with pytest.raises(ValueError, match="int32"):
        multiply_by_quantized_multiplier(1 << 20, 1 << 30, 20)  # x * 2^20 leaves int32
    with pytest.raises(ValueError, match="quantized_multiplier"):
        multiply_by_quantized_multiplier(1, -5, 0)
    with pytest.raises(ValueError, match="rounding"):
        multiply_by_quantized_multiplier(1, 1 << 30, 0, rounding="nearest")
