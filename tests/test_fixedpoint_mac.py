"""The MAC unit: widths, wrap/saturate by hand, the trace, vectorized layers bit-exact against the loops."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tinyqnn.fixedpoint import (
    check_fits, format_trace, int_conv2d, int_linear, int_range, mac_step, naive_conv2d, naive_dot, naive_linear,
    saturate, trace_dot, wrap,
)
from tinyqnn.fixedpoint.accumulate import exact_matmul


def test_ranges_wrap_and_saturate_by_hand():
    assert int_range(8) == (-128, 127) and int_range(8, signed=False) == (0, 255) and int_range(1) == (-1, 0)
    np.testing.assert_array_equal(wrap([127 + 1, -128 - 1, 300, -300], 8), [-128, 127, 44, -44])
    np.testing.assert_array_equal(wrap([256, 257, -1], 8, signed=False), [0, 1, 255])
    np.testing.assert_array_equal(saturate([200, -200, 5], 8), [127, -128, 5])


def test_mac_step_by_hand():
    assert mac_step(100, 3, 10, acc_bits=8) == (-126, True)  # 130 wraps to 130 - 256
    assert mac_step(100, 3, 10, acc_bits=8, overflow="saturate") == (127, True)
    assert mac_step(-100, 3, -10, acc_bits=8, overflow="saturate") == (-128, True)
    assert mac_step(100, 2, 10, acc_bits=8) == (120, False)


def test_per_step_wrap_equals_wrap_of_exact_sum_but_saturation_differs():
    a, w = [100, 100, 100], [1, 1, -1]  # exact running sums 100, 200, 100 in an 8-bit accumulator
    acc_wrap, n_wrap = naive_dot(a, w, acc_bits=8, overflow="wrap")
    assert acc_wrap == wrap(100, 8) == 100 and n_wrap == 2  # 200 wraps to -56, -156 wraps back to 100
    acc_sat, n_sat = naive_dot(a, w, acc_bits=8, overflow="saturate")
    assert acc_sat == 27 and n_sat == 1  # 200 clamps to 127, then 127 - 100
    assert saturate(100, 8) == 100 != acc_sat  # saturating only the final sum would give 100


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(-128, 127)), min_size=1, max_size=40),
       st.integers(-2000, 2000), st.integers(8, 20))
def test_wrap_at_every_step_always_equals_wrap_at_the_end(pairs, bias, acc_bits):
    a, w = zip(*pairs)
    acc, _ = naive_dot(a, w, bias, acc_bits, "wrap")
    assert acc == int(wrap(sum(x * y for x, y in pairs) + bias, acc_bits))


def test_trace_table():
    rows = trace_dot([200, 100, 50], [127, 127, -128], bias=5, acc_bits=16)
    assert [r["product"] for r in rows] == [25400, 12700, -6400, 5]
    assert [r["overflow"] for r in rows] == [False, True, True, False]  # 38100 > 32767, back in range via wrap
    assert rows[1]["acc_after"] == 38100 - 65536 and rows[-1]["exact_sum"] == 31705 == rows[-1]["acc_after"]
    text = format_trace(rows)
    assert "OVERFLOW" in text and text.count("\n") == 4
    with pytest.raises(ValueError, match="activation a does not fit 8-bit unsigned"):
        trace_dot([256], [1])


def test_check_fits_names_value_and_index():
    with pytest.raises(ValueError, match=r"w does not fit 4-bit signed \[-8, 7\]: 9 at index \(1, 0\)"):
        check_fits(np.array([[1], [9]]), 4, True, "w")
    with pytest.raises(ValueError, match="non-integer"):
        check_fits(np.array([1.5]), 8, True, "x")
    assert check_fits(np.array([0, 255]), 8, False).dtype == np.int64


def test_exact_matmul_picks_an_exact_path():
    a = np.array([[255, 255]]); b = np.array([[127], [127]])
    assert exact_matmul(a, b)[0, 0] == 64770
    big = np.array([[1 << 40, 1]]); bb = np.array([[1 << 20], [1]])  # beyond 2**53: int64 path
    assert exact_matmul(big, bb)[0, 0] == (1 << 60) + 1


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(3, 7), f=st.integers(1, 4), k=st.sampled_from([1, 3]),
       pad=st.integers(0, 1), acc_bits=st.sampled_from([10, 13, 16, 32]), mode=st.sampled_from(["wrap", "saturate"]),
       seed=st.integers(0, 10_000))
def test_vectorized_conv_is_bit_exact_against_the_loop(n, c, h, f, k, pad, acc_bits, mode, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, c, h, h))
    w = rng.integers(-128, 128, (f, c, k, k))
    b = rng.integers(-3000, 3000, f)
    want, want_n = naive_conv2d(x, w, b, pad, acc_bits, mode)
    got, got_n = int_conv2d(x, w, b, pad, acc_bits, mode)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_n, want_n)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5), k=st.integers(1, 60), f=st.integers(1, 5), acc_bits=st.sampled_from([9, 12, 16, 32]),
       mode=st.sampled_from(["wrap", "saturate"]), seed=st.integers(0, 10_000))
def test_vectorized_linear_is_bit_exact_against_the_loop(n, k, f, acc_bits, mode, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 16, (n, k))
    w = rng.integers(-128, 128, (f, k))
    b = rng.integers(-500, 500, f)
    want, want_n = naive_linear(x, w, b, acc_bits, mode)
    got, got_n = int_linear(x, w, b, acc_bits, mode)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_n, want_n)
    if acc_bits == 32:
        np.testing.assert_array_equal(got, x @ w.T + b)  # nothing can overflow: the exact sum
        assert got_n.sum() == 0


def test_shape_errors():
    with pytest.raises(ValueError, match="weight"):
        int_linear(np.zeros((2, 3), dtype=int), np.zeros((4, 5), dtype=int))
    with pytest.raises(ValueError, match="acc_bits"):
        int_linear(np.zeros((2, 3), dtype=int), np.zeros((4, 3), dtype=int), acc_bits=1)
    with pytest.raises(ValueError, match="overflow"):
        naive_dot([1], [1], overflow="clip")


def test_operand_widths_are_checked_when_declared():
    x = np.array([[0, 3, 4]])  # 4 does not fit 2-bit unsigned
    w = np.array([[1, -1, 2]])
    with pytest.raises(ValueError, match=r"activations does not fit 2-bit unsigned \[0, 3\]: 4 at index \(0, 2\)"):
        int_linear(x, w, operand_bits=(2, False, 8, True))
    acc, _ = int_linear(x, w, operand_bits=(3, False, 8, True))
    assert acc[0, 0] == 0 * 1 + 3 * -1 + 4 * 2
    with pytest.raises(ValueError, match="weights does not fit 2-bit signed"):
        int_conv2d(np.zeros((1, 1, 3, 3), dtype=int), np.full((1, 1, 3, 3), 2), operand_bits=(8, False, 2, True))
    with pytest.raises(ValueError, match="weight width"):
        int_linear(x, w, operand_bits=(8, False, 17, True))


# ---------------------------------------------------------------------- the most negative operand (issue 20)
@pytest.mark.parametrize("mode", ["wrap", "saturate"])
@pytest.mark.parametrize("x, w, acc_bits", [
    (np.full((1, 4), 255, np.uint8), np.full((1, 4), -128, np.int8), 16),  # 255 * -128 * 4 = -130,560
    (np.full((2, 3), 7, np.uint8), np.full((2, 3), -32768, np.int16), 18),  # int16's most negative value
    (np.array([[3, -128, 5]], np.int8), np.array([[-128, -128, 127]], np.int8), 14),  # -128 * -128 as well
])
def test_the_most_negative_operand_overflows_as_the_loop_says(x, w, acc_bits, mode):
    """np.abs(np.int8(-128)) is -128: a bound built on it missed every overflow of such a product."""
    acc, counts = int_linear(x, w, acc_bits=acc_bits, overflow=mode)
    ref_acc, ref_counts = naive_linear(x.astype(np.int64), w.astype(np.int64), acc_bits=acc_bits, overflow=mode)
    np.testing.assert_array_equal(acc, ref_acc)
    np.testing.assert_array_equal(counts, ref_counts)
    assert counts.sum() > 0


def test_the_most_negative_weight_overflows_in_a_convolution_as_the_loop_says():
    x = np.full((1, 1, 3, 3), 255, np.uint8)
    w = np.full((1, 1, 2, 2), -128, np.int8)
    for mode in ("wrap", "saturate"):
        acc, counts = int_conv2d(x, w, acc_bits=16, overflow=mode)
        ref_acc, ref_counts = naive_conv2d(x.astype(np.int64), w.astype(np.int64), acc_bits=16, overflow=mode)
        np.testing.assert_array_equal(acc, ref_acc)
        np.testing.assert_array_equal(counts, ref_counts)
        assert counts.min() > 0


def test_magnitude_widens_before_taking_the_absolute_value():
    from tinyqnn.fixedpoint.intrep import magnitude

    assert magnitude(np.array([-128], np.int8))[0] == 128 and magnitude(np.array([-32768], np.int16))[0] == 32768
    with pytest.raises(ValueError, match="-2\\*\\*63 has no int64 magnitude"):
        magnitude(np.array([np.iinfo(np.int64).min]))


@pytest.mark.parametrize("bad", [np.nan, np.inf, 0.5])
def test_non_integer_operands_are_refused_even_without_declared_widths(bad):
    x = np.array([[1.0, bad, 3.0]])
    with pytest.raises(ValueError, match="activations"):
        int_linear(x, np.ones((2, 3), np.int8))
    with pytest.raises(ValueError, match="weights"):
        int_linear(np.ones((1, 3)), np.array([[1.0, bad, 3.0]]))
    with pytest.raises(ValueError, match="activations"):
        int_conv2d(np.full((1, 1, 3, 3), bad), np.ones((1, 1, 2, 2), np.int8))


def test_thresholds_refuse_a_nan_offset_and_never_wrap_to_int64_min():
    from tinyqnn.fixedpoint.thresholds import compute_thresholds

    with pytest.raises(ValueError, match="threshold offsets B must be finite"):
        compute_thresholds(np.array([0.5, 0.5]), np.array([0.0, np.nan]), 2)
    with pytest.raises(ValueError, match="multipliers must be finite"):
        compute_thresholds(np.array([np.nan]), np.array([0.0]), 2)
    t = compute_thresholds(np.array([1e-30]), np.array([0.0]), 2)  # thresholds far beyond any accumulator
    assert t.min() > 0 and t.max() == 2 ** 62  # never reached, rather than INT64_MIN (always reached)
