"""The graph machinery: accumulation, shared nodes, deep graphs, no_grad, retain_graph, Function subclasses."""
from __future__ import annotations

import gc
import sys

import numpy as np
import pytest

import tinyqnn
from tinyqnn import Function, Tensor, no_grad, set_grad_enabled
from tinyqnn.engine import is_grad_enabled


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(values, dtype=dtype), requires_grad=True)


# ---------------------------------------------------------------- accumulation and graph shape
def test_leaf_grads_accumulate_across_backward_calls():
    x = leaf([1.0, -2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 2 * x.data)
    (x * 3.0).sum().backward()  # a second, independent graph adds to the same .grad
    np.testing.assert_allclose(x.grad.data, 2 * x.data + 3.0)
    x.grad = None  # what optimizer.zero_grad(set_to_none=True) does
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0, 3.0])


def test_grad_is_a_copy_not_an_alias_of_the_upstream_gradient():
    x = leaf([1.0, 2.0])
    seed = np.array([5.0, 7.0])
    y = x + 0.0  # Add's backward passes the upstream array through unchanged
    y.backward(seed)
    seed[:] = 0.0
    np.testing.assert_array_equal(x.grad.data, [5.0, 7.0])
    x.grad.data[:] = 0.0  # mutating .grad must not corrupt anything the next backward reads
    y2 = x + 0.0
    y2.backward(np.array([1.0, 1.0]))
    np.testing.assert_array_equal(x.grad.data, [1.0, 1.0])


def test_reused_node_receives_the_sum_of_both_paths():
    x = leaf([1.5, -2.0])
    y = x * x
    z = y + y  # z = 2 x^2
    z.sum().backward()
    np.testing.assert_allclose(x.grad.data, 4 * x.data)


def test_diamond_graph():
    x = leaf([0.3, -0.7, 1.1])
    a = x.exp()
    b = a * x  # x e^x
    c = a + b  # e^x + x e^x
    (c * a).sum().backward()  # e^{2x} (1 + x): derivative e^{2x} (3 + 2x)
    np.testing.assert_allclose(x.grad.data, np.exp(2 * x.data) * (3 + 2 * x.data))


def test_same_tensor_as_both_operands():
    x = leaf([2.0, -3.0])
    (x * x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data**2)
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    (w @ w).sum().backward()  # d/dW sum(W W) = 1 W^T + W^T 1
    ones = np.ones((2, 2))
    np.testing.assert_allclose(w.grad.data, ones @ w.data.T + w.data.T @ ones)


def test_leaves_without_requires_grad_get_no_grad_and_nonleaves_keep_none():
    x, c = leaf([1.0, 2.0]), Tensor(np.array([3.0, 4.0]))
    y = x * c
    (y * 2).sum().backward()
    assert c.grad is None and y.grad is None
    np.testing.assert_allclose(x.grad.data, 2 * c.data)


def test_unreached_leaf_keeps_none():
    x, unused = leaf([1.0]), leaf([2.0])
    _ = unused * 2  # part of another graph
    (x * 2).sum().backward()
    assert unused.grad is None


def test_integer_tensors_flow_through_without_gradients():
    x = leaf([1.0, 2.0, 3.0])
    idx = Tensor(np.array([2, 0]))
    x[idx].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 0.0, 1.0])


def test_retain_grad_on_intermediates():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    y.retain_grad()
    z = y * y
    z.retain_grad()
    z.sum().backward()
    np.testing.assert_allclose(z.grad.data, [1.0, 1.0])
    np.testing.assert_allclose(y.grad.data, 2 * y.data)
    np.testing.assert_allclose(x.grad.data, 3 * 2 * y.data)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_with_explicit_gradient(dtype):
    x = leaf([1.0, 2.0, 3.0], dtype)
    y = x * x
    y.backward(np.array([1.0, 0.0, -1.0]))
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad.data, [2.0, 0.0, -6.0])
    with pytest.raises(ValueError, match=r"gradient shape \(2,\) does not match tensor shape \(3,\)"):
        (x * 2).backward(np.ones(2))


def test_backward_on_non_scalar_without_gradient_raises():
    x = leaf(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"one-element.*\(2, 3\)"):
        (x * 2).backward()
    (x * 2).sum(keepdims=True).backward()  # shape (1, 1): one element is fine, as in PyTorch
    np.testing.assert_allclose(x.grad.data, 2.0)


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor([1.0]).sum().backward()


def test_backward_twice_requires_retain_graph():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time.*retain_graph=True"):
        y.backward()

    x2 = leaf([1.0, 2.0])
    y2 = (x2 * x2).sum()
    y2.backward(retain_graph=True)
    y2.backward(retain_graph=True)
    y2.backward()
    np.testing.assert_allclose(x2.grad.data, 3 * 2 * x2.data)


def test_shared_subgraph_is_freed_by_the_first_backward():
    x = leaf([1.0, 2.0])
    a = x * x
    a.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (a * 2).sum().backward()  # reaches a, whose saved arrays were freed


def test_deep_chain_does_not_hit_recursion_limit():
    x = leaf([0.5])
    y = x
    n = 10_000
    for _ in range(n):
        y = y * 1.0001 + 0.0  # 2 ops per step: 20,000 nodes
    assert n * 2 > sys.getrecursionlimit()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [1.0001**n], rtol=1e-9)
    del y
    gc.collect()  # freeing a 20,000-deep chain must not crash either


# ---------------------------------------------------------------- no_grad
def test_no_grad_records_nothing():
    x = leaf([1.0, 2.0])
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2).exp().sum()
        z = tinyqnn.matmul(x, x)
    assert not y.requires_grad and y.is_leaf and y._inputs == ()
    assert not z.requires_grad
    with pytest.raises(RuntimeError, match="no_grad"):
        y.backward()
    assert is_grad_enabled()
    assert (x * 2).requires_grad


def test_no_grad_nests_and_restores():
    with no_grad():
        with no_grad():
            assert not is_grad_enabled()
        assert not is_grad_enabled()
        with set_grad_enabled(True):
            assert is_grad_enabled()
            assert (leaf([1.0]) * 2).requires_grad
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_no_grad_restored_after_exception():
    with pytest.raises(ZeroDivisionError):
        with no_grad():
            1 / 0
    assert is_grad_enabled()
    with pytest.raises(KeyError):
        with set_grad_enabled(True):
            with no_grad():
                raise KeyError
    assert is_grad_enabled()


def test_no_grad_as_decorator():
    @no_grad()
    def evaluate(t):
        return t * 2

    assert not evaluate(leaf([1.0])).requires_grad
    assert is_grad_enabled()


# ---------------------------------------------------------------- user-defined Functions
class Cube(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 3 * x**2 * grad


class ScaledAdd(Function):
    """a + alpha * b with a non-tensor argument and a keyword; checks ctx attributes and needs_input_grad."""

    @staticmethod
    def forward(ctx, a, alpha, b, *, sign=1.0):
        ctx.alpha, ctx.sign = alpha, sign
        ctx.seen_needs = ctx.needs_input_grad
        return a + sign * alpha * b

    @staticmethod
    def backward(ctx, grad):
        return grad, None, ctx.sign * ctx.alpha * grad


def test_user_defined_function():
    x = leaf([1.0, -2.0, 0.5])
    y = Cube.apply(x)
    assert y._fn is Cube and y.requires_grad
    np.testing.assert_allclose(y.data, x.data**3)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 * x.data**2)
    assert tinyqnn.gradcheck(Cube.apply, leaf(np.linspace(-1, 1, 5)))


def test_function_with_constants_and_kwargs():
    a, b = leaf([1.0, 2.0]), Tensor(np.array([3.0, 4.0]))
    out = ScaledAdd.apply(a, 2.0, b, sign=-1.0)
    np.testing.assert_allclose(out.data, a.data - 2.0 * b.data)
    assert out._ctx.seen_needs == (True, False, False)
    out.sum().backward()
    np.testing.assert_allclose(a.grad.data, [1.0, 1.0])
    assert b.grad is None
    assert tinyqnn.gradcheck(lambda p, q: ScaledAdd.apply(p, 0.5, q, sign=2.0), leaf([1.0, 2.0]), leaf([3.0, 4.0]))


class WrongShape(Function):
    @staticmethod
    def forward(ctx, x):
        return x.sum(axis=0)

    @staticmethod
    def backward(ctx, grad):
        return grad  # forgot to broadcast back to the input's shape


class WrongCount(Function):
    @staticmethod
    def forward(ctx, a, b):
        return a * b

    @staticmethod
    def backward(ctx, grad):
        return grad  # one gradient for two inputs


def test_wrongly_shaped_gradient_raises_clear_error():
    x = leaf(np.ones((2, 3)))
    with pytest.raises(RuntimeError, match=r"WrongShape\.backward returned a gradient of shape \(3,\) "
                                           r"for an input of shape \(2, 3\)"):
        WrongShape.apply(x).sum().backward()


def test_wrong_number_of_gradients_raises_clear_error():
    with pytest.raises(RuntimeError, match="WrongCount.backward returned 1 gradients for 2 inputs"):
        WrongCount.apply(leaf([1.0]), leaf([2.0])).sum().backward()


def test_function_that_changes_dtype_raises():
    class Promote(Function):
        @staticmethod
        def forward(ctx, x):
            return x * np.float64(2.0)  # NumPy promotes float32 * float64 scalar... to float64

    with pytest.raises(TypeError, match="Promote.forward turned float32 inputs into a float64 output"):
        Promote.apply(Tensor(np.ones(2, np.float32)))


def test_function_base_class_must_be_subclassed():
    with pytest.raises(NotImplementedError, match="forward"):
        Function.apply(leaf([1.0]))


def test_ctx_saved_tensors_are_released_after_backward():
    x = leaf([1.0, 2.0])
    y = Cube.apply(x)
    assert y._ctx.saved_tensors[0] is x.data
    y.sum().backward()
    assert y._ctx is None
