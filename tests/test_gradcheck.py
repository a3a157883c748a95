"""gradcheck itself: it must pass correct gradients and catch wrong ones, including subtle ones."""
from __future__ import annotations

import re

import numpy as np
import pytest

import tinyqnn as tq
from tinyqnn import Function, Tensor, gradcheck
from tinyqnn.engine.gradcheck import GradcheckError, numerical_grad


def t64(values) -> Tensor:
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=True)


MESSAGE = re.compile(
    r"gradcheck failed for input (\d+) \(shape (.*?)\) at index (\(.*?\)): "
    r"central difference gives (\S+), backward gave (\S+) \((\d+) of (\d+) entries differ"
)


def failure(fn, *inputs, **kw) -> re.Match:
    with pytest.raises(GradcheckError) as info:
        gradcheck(fn, *inputs, **kw)
    match = MESSAGE.search(str(info.value))
    assert match, f"unexpected message: {info.value}"
    return match


class MulWrongAtLastEntry(Function):
    """a * b whose gradient for b is doubled at its last entry only."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        gb = grad * a
        gb[-1] *= 2
        return grad * b, gb


def test_correct_functions_pass():
    x, y = t64([[0.5, -1.0], [2.0, 0.3]]), t64([1.5, -0.7])
    assert gradcheck(lambda a, b: (a * b).exp() @ b, x, y)
    assert gradcheck(lambda a: a.sigmoid().sum(axis=0) / a.var(), x)
    assert gradcheck(lambda a, b: a * b, t64(2.0), t64(3.0))  # 0-d tensors


def test_wrong_function_is_caught_with_a_clear_message():
    a, b = t64([1.0, 2.0, 3.0]), t64([4.0, 5.0, 6.0])
    m = failure(MulWrongAtLastEntry.apply, a, b)
    assert m.group(1) == "1", "the message must name the input that is wrong (b, position 1)"
    assert m.group(2) == "(3,)" and m.group(3) == "(2,)"
    expected, received = float(m.group(4)), float(m.group(5))
    assert received == pytest.approx(2 * expected, rel=1e-4)  # doubled, as planted
    assert expected != 0
    assert (m.group(6), m.group(7)) == ("1", "3")


def test_raise_exception_false_returns_false():
    a, b = t64([1.0, 2.0]), t64([3.0, 4.0])
    assert gradcheck(MulWrongAtLastEntry.apply, a, b, raise_exception=False) is False
    assert gradcheck(lambda p, q: p * q, a, b, raise_exception=False) is True


class ReversedGradient(Function):
    """y = c * x (c distinct per entry); backward sends each output's gradient to the wrong input.

    With dL/dy = 1 everywhere (a plain ``.sum()``) the wrong backward gives exactly the right answer,
    so only a check with unequal weights per output element can see the bug.
    """

    @staticmethod
    def forward(ctx, x):
        return 3.0 * x

    @staticmethod
    def backward(ctx, grad):
        return 3.0 * grad[::-1].copy()


class RolledGradient(Function):
    """2-D version: forward is elementwise square, backward rolls the upstream gradient along axis 1."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * np.roll(grad, 1, axis=1)


def test_gradient_correct_up_to_output_permutation_is_caught():
    x = t64([0.5, -1.0, 2.0, 0.25])
    # a sum-based check would be fooled: the backward is right for an all-ones upstream gradient
    ReversedGradient.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3.0 * np.ones(4))
    np.testing.assert_allclose(numerical_grad(lambda t: ReversedGradient.apply(t), [t64(x.data)], 0), 3.0)
    failure(ReversedGradient.apply, x)

    z = t64(np.arange(1.0, 7.0).reshape(2, 3))
    RolledGradient.apply(z).sum().backward()
    np.testing.assert_allclose(z.grad.data, 2 * z.data)  # also right under a plain sum
    failure(RolledGradient.apply, z)


def test_missing_gradient_is_caught():
    class ForgetsB(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a + b

        @staticmethod
        def backward(ctx, grad):
            return grad, None

    m = failure(ForgetsB.apply, t64([1.0, 2.0]), t64([3.0, 4.0]))
    assert m.group(1) == "1" and float(m.group(5)) == 0.0


def test_nan_gradient_is_caught():
    class NanGrad(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * np.nan

    failure(NanGrad.apply, t64([1.0]))


def test_small_errors_respect_tolerances():
    class SlightlyOff(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2 * (1 + 1e-3)

    x = t64([1.0, 2.0])
    failure(SlightlyOff.apply, x)
    assert gradcheck(SlightlyOff.apply, x, rtol=1e-2)


def test_float32_inputs_are_checked_in_float64_and_left_untouched():
    data = np.array([0.3, -1.2], dtype=np.float32)
    x = Tensor(data.copy(), requires_grad=True)
    seen = []

    def fn(t):
        seen.append(t.dtype)
        return t.tanh()

    assert gradcheck(fn, x)
    assert set(seen) == {np.dtype(np.float64)}
    assert x.grad is None and x.dtype == np.float32
    np.testing.assert_array_equal(x.data, data)


def test_non_float_inputs_pass_through_unchecked():
    idx = np.array([2, 0, 2])
    x = t64([1.0, 2.0, 3.0])
    assert gradcheck(lambda t, i: t[i] * 2.0, x, idx)
    assert gradcheck(lambda t, m: tq.where(m, t, -t), x, np.array([True, False, True]))


def test_fn_must_return_a_float64_tensor():
    with pytest.raises(GradcheckError, match="float32 output"):
        gradcheck(lambda t: t.to(np.float32), t64([1.0]))
    with pytest.raises(TypeError, match="must return a Tensor, got ndarray"):
        gradcheck(lambda t: t.data * 2, t64([1.0]))


def test_numerical_grad_matches_calculus():
    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.1, -0.3]])
    got = numerical_grad(lambda t: t**3, [t64(x)], 0)
    np.testing.assert_allclose(got, 3 * x**2, rtol=1e-7)
    got = numerical_grad(lambda a, b: a @ b, [t64(x), t64(np.ascontiguousarray(x.T))], 1)
    np.testing.assert_allclose(got, x.T @ np.ones((2, 2)), rtol=1e-7)  # d sum(A B)/dB = A^T 1


def test_gradcheck_handles_transposed_input_layouts():
    x = Tensor(np.arange(1.0, 7.0).reshape(2, 3).T)  # Fortran-ordered data
    assert not x.data.flags.c_contiguous
    assert gradcheck(lambda t: t * t, x)
    assert gradcheck(lambda t, u: t @ u, x, Tensor(np.ones((3, 2)).T))


def test_numerical_grad_refuses_non_contiguous_input():
    x = Tensor(np.ones((3, 2)).T, requires_grad=True)
    with pytest.raises(ValueError, match="contiguous"):
        numerical_grad(lambda t: t * 2, [x], 0)


def test_gradcheck_error_is_an_assertion_error():
    assert issubclass(GradcheckError, AssertionError)  # so a failing check reads like a failed assert
