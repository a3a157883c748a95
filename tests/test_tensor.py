"""Tensor construction, dtype policy, conversions and factories."""
from __future__ import annotations

import numpy as np
import pytest

import tinyqnn
from tinyqnn import Tensor
from tinyqnn.engine import default_generator


# ---------------------------------------------------------------- construction and dtype policy
@pytest.mark.parametrize(
    "data, dtype",
    [
        (1.5, np.float32),
        ([1.0, 2.0], np.float32),
        ([[1, 2], [3, 4]], np.int64),
        (3, np.int64),
        ([True, False], np.bool_),
        (np.zeros(3, dtype=np.float64), np.float64),
        (np.zeros(3, dtype=np.float32), np.float32),
        (np.zeros(3, dtype=np.uint8), np.uint8),
        (np.float64(2.0), np.float64),
    ],
)
def test_constructor_dtypes(data, dtype):
    t = Tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.data, np.asarray(data))


def test_explicit_dtype_and_copy_semantics():
    src = np.arange(6.0).reshape(2, 3)
    t = Tensor(src, dtype=np.float32)
    assert t.dtype == np.float32 and t.shape == (2, 3) and t.ndim == 2 and t.size == 6
    u = Tensor(src)
    src[0, 0] = 100.0
    assert u.data[0, 0] == 0.0, "Tensor(ndarray) must copy its input"
    assert tinyqnn.tensor(src).data[0, 0] == 100.0


def test_non_numeric_data_is_rejected():
    with pytest.raises(TypeError, match="numbers"):
        Tensor(np.array(["a", "b"]))


@pytest.mark.parametrize("data", [[1, 2, 3], np.arange(3), np.array([True, False])])
def test_requires_grad_on_non_float_raises(data):
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(data, requires_grad=True)
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(data).requires_grad_()


def test_requires_grad_on_float_and_flags():
    t = Tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad and t.is_leaf and t.grad is None and t.is_floating_point()
    assert not Tensor([1, 2]).is_floating_point()
    y = t * 2
    assert y.requires_grad and not y.is_leaf
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad_(False)


def test_mixing_float32_and_float64_raises():
    a = Tensor(np.ones(3, np.float32), requires_grad=True)
    b = Tensor(np.ones(3, np.float64))
    for op in (lambda: a + b, lambda: b * a, lambda: a @ b, lambda: tinyqnn.maximum(a, b),
               lambda: tinyqnn.concatenate([a, b]), lambda: tinyqnn.where(np.ones(3, bool), a, b)):
        with pytest.raises(TypeError, match="float32.*float64|float64.*float32"):
            op()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "expr",
    [
        lambda x: x * 2.5, lambda x: 2.5 * x, lambda x: x + np.float64(1.5), lambda x: np.float64(1.5) + x,
        lambda x: x - np.float64(1), lambda x: np.float64(3) - x, lambda x: x / np.float64(3),
        lambda x: np.float64(3) / x, lambda x: x ** np.float64(2), lambda x: np.float64(2) ** x,
        lambda x: x * np.ones(3, np.float64), lambda x: np.ones(3, np.float64) * x,
        lambda x: np.ones((2, 3), np.float64) @ x, lambda x: x @ np.ones(3, np.float64),
        lambda x: x * np.float32(2), lambda x: tinyqnn.maximum(x, 0.5), lambda x: tinyqnn.where(x > 1, x, 0.0),
        lambda x: x.clip(np.float64(0.5), np.float64(2.5)), lambda x: tinyqnn.leaky_relu(x, np.float64(0.1)),
    ],
)
def test_scalars_and_arrays_adopt_the_tensor_dtype(dtype, expr):
    """NumPy float64 scalars/arrays never promote a float32 tensor (and never demote a float64 one)."""
    x = Tensor(np.array([1.0, 2.0, 3.0], dtype=dtype), requires_grad=True)
    y = expr(x)
    assert isinstance(y, Tensor), "ndarray <op> Tensor must defer to the Tensor's reflected operator"
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype


def test_python_scalars_follow_tensor_dtype():
    x = Tensor(np.ones(2, np.float64))
    assert (x + 1).dtype == np.float64 and (1 - x).dtype == np.float64 and (x * 0.1).dtype == np.float64


# ---------------------------------------------------------------- conversions
def test_item_numpy_tolist_len_bool():
    t = Tensor([[1.0, 2.0]])
    assert len(t) == 1 and t.tolist() == [[1.0, 2.0]]
    assert Tensor([3.5]).item() == 3.5 and isinstance(Tensor([3.5]).item(), float)
    with pytest.raises(ValueError, match=r"one-element.*\(1, 2\)"):
        t.item()
    assert t.numpy() is t.data
    with pytest.raises(RuntimeError, match="detach"):
        Tensor([1.0], requires_grad=True).numpy()
    assert np.asarray(t) is t.data and np.asarray(t, dtype=np.float64).dtype == np.float64


def test_bool_follows_the_value():
    # a 1-element tensor must not be truthy just because it has a length
    assert not Tensor([0.0])
    assert Tensor([2.0])
    assert not (Tensor(1.0) > 2.0)
    assert Tensor(3.0) > 2.0
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Tensor([1.0, 2.0]))


def test_comparisons_return_boolean_tensors_without_grad():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    for result, expected in [(x < 2, [True, False, False]), (x <= 2, [True, True, False]),
                             (x > 2, [False, False, True]), (x >= Tensor([2.0, 2.0, 2.0]), [False, True, True]),
                             (x.eq(2.0), [False, True, False])]:
        assert result.dtype == np.bool_ and not result.requires_grad
        np.testing.assert_array_equal(result.data, expected)
    assert x.argmax().item() == 2 and x.argmax().dtype == np.int64
    assert len({x, x * 1}) == 2, "tensors are hashable by identity"


def test_repr_mentions_dtype_and_grad_fn():
    x = Tensor([1.0], requires_grad=True)
    assert "requires_grad=True" in repr(x) and "float32" in repr(x)
    assert "grad_fn=Mul" in repr(x * 2)


def test_detach_shares_data_and_cuts_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and d.grad is None
    assert np.shares_memory(d.data, y.data)
    (d * x).sum().backward()  # the detached branch is a constant: d/dx (d * x) = d
    np.testing.assert_array_equal(x.grad.data, y.data)


@pytest.mark.parametrize("src, dst", [(np.float32, np.float64), (np.float64, np.float32)])
def test_to_is_differentiable_and_changes_dtype(src, dst):
    x = Tensor(np.array([1.0, -2.0], dtype=src), requires_grad=True)
    y = x.to(dst)
    assert y.dtype == dst
    (y * Tensor(np.array([3.0, 4.0], dtype=dst))).sum().backward()
    assert x.grad.dtype == src
    np.testing.assert_array_equal(x.grad.data, [3.0, 4.0])
    assert x.double().dtype == np.float64 and x.float().dtype == np.float32


def test_cast_to_integer_is_not_differentiable():
    x = Tensor([1.7, -2.2], requires_grad=True)
    i = x.to(np.int64)
    assert i.dtype == np.int64 and not i.requires_grad
    np.testing.assert_array_equal(i.data, [1, -2])


# ---------------------------------------------------------------- factories and randomness
def test_factories():
    assert tinyqnn.zeros(2, 3).shape == (2, 3) and tinyqnn.zeros((2, 3)).dtype == np.float32
    assert tinyqnn.ones(4, dtype=np.float64).dtype == np.float64
    np.testing.assert_array_equal(tinyqnn.ones(2).data, [1.0, 1.0])
    z = tinyqnn.zeros(3, requires_grad=True)
    assert z.requires_grad and z.is_leaf
    x = Tensor(np.ones((2, 2), np.float64))
    assert tinyqnn.zeros_like(x).dtype == np.float64 and tinyqnn.ones_like(x).data.sum() == 4
    np.testing.assert_array_equal(tinyqnn.arange(4).data, np.arange(4, dtype=np.float32))
    assert tinyqnn.arange(1, 7, 2, dtype=np.int64).tolist() == [1, 3, 5]


def test_manual_seed_makes_randomness_repeatable():
    tinyqnn.manual_seed(7)
    a, b = tinyqnn.randn(3, 4), tinyqnn.rand(5)
    tinyqnn.manual_seed(7)
    np.testing.assert_array_equal(a.data, tinyqnn.randn(3, 4).data)
    np.testing.assert_array_equal(b.data, tinyqnn.rand(5).data)
    assert a.dtype == np.float32 and tinyqnn.randn(2, dtype=np.float64).dtype == np.float64
    assert not np.array_equal(tinyqnn.randn(3, 4).data, a.data)
    # randn/rand draw from the one generator that default_generator() returns
    expected = np.random.default_rng(11).standard_normal((2, 2)).astype(np.float32)
    tinyqnn.manual_seed(11)
    assert isinstance(default_generator(), np.random.Generator)
    np.testing.assert_array_equal(tinyqnn.randn(2, 2).data, expected)
    r = tinyqnn.rand(1000).data
    assert r.min() >= 0 and r.max() < 1


@pytest.mark.parametrize("bad", [-1, 1.5, "3"])
def test_manual_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="non-negative integer"):
        tinyqnn.manual_seed(bad)
