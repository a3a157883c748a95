"""Every op: forward against plain NumPy, gradient against central differences (float64), over
hypothesis-generated shapes including broadcasting; dtype preservation; clear errors for bad input.

Data comes from a NumPy generator seeded by hypothesis and is shaped to stay away from kinks and ties
(|x| >= 0.2 for abs/relu, well-separated values for max/min/clip), where central differences would be
meaningless.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinyqnn as tq
from tinyqnn import Tensor, gradcheck
from tinyqnn.engine.ops._util import unbroadcast

SETTINGS = settings(max_examples=30, deadline=None)
seeds = st.integers(0, 2**32 - 1)
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
nonscalar_shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)
broadcast_pairs = hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, min_side=1, max_side=4)


# ---------------------------------------------------------------- data away from kinks and ties
def uniform(rng, shape, lo=-2.0, hi=2.0):
    return rng.uniform(lo, hi, size=shape)


def away_from_zero(rng, shape, gap=0.2):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(gap, 2.0, size=shape)


def positive(rng, shape):
    return rng.uniform(0.5, 2.5, size=shape)


def distinct(rng, shape):
    """All values at least 0.15 apart, in random order (no ties for max/min)."""
    n = math.prod(shape)
    values = rng.permutation(n) * 0.25 + rng.uniform(-0.05, 0.05, size=n) - n * 0.125
    return values.reshape(shape)


def on_grid(rng, shape, offset):
    """Integer + offset (+-0.05): grids with offsets 0.25 and 0.75 stay >= 0.4 apart, so no ties."""
    return rng.integers(-3, 3, size=shape) + offset + rng.uniform(-0.05, 0.05, size=shape)


def t64(a) -> Tensor:
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def check(fn, reference, *arrays, rtol=1e-10):
    """``fn`` on float64 tensors equals ``reference`` on the arrays, and its gradient passes gradcheck."""
    inputs = [t64(a) for a in arrays]
    out = fn(*inputs)
    expected = np.asarray(reference(*arrays))
    assert isinstance(out, Tensor) and out.dtype == np.float64
    assert out.shape == expected.shape, f"shape {out.shape}, NumPy gives {expected.shape}"
    np.testing.assert_allclose(out.data, expected, rtol=rtol, atol=1e-12)
    assert gradcheck(fn, *inputs)


# ---------------------------------------------------------------- elementwise
BINARY = {
    "add": (tq.add, lambda a, b: a + b, np.add),
    "sub": (tq.sub, lambda a, b: a - b, np.subtract),
    "mul": (tq.mul, lambda a, b: a * b, np.multiply),
    "div": (tq.div, lambda a, b: a / b, np.divide),
}


@SETTINGS
@given(shapes=broadcast_pairs, name=st.sampled_from(sorted(BINARY)), use_operator=st.booleans(), seed=seeds)
def test_binary_arithmetic_broadcasting(shapes, name, use_operator, seed):
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a = uniform(rng, sa)
    b = away_from_zero(rng, sb, gap=0.5) if name == "div" else uniform(rng, sb)
    function, operator, reference = BINARY[name]
    check(operator if use_operator else function, reference, a, b)


@SETTINGS
@given(shape=shapes, name=st.sampled_from(sorted(BINARY)), scalar=st.floats(0.5, 3.0), seed=seeds)
def test_binary_with_python_scalar_on_either_side(shape, name, scalar, seed):
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng, shape, gap=0.5)
    _, operator, reference = BINARY[name]
    check(lambda t: operator(t, scalar), lambda a: reference(a, scalar), x)
    check(lambda t: operator(scalar, t), lambda a: reference(scalar, a), x)


@SETTINGS
@given(shape=shapes, seed=seeds)
def test_neg(shape, seed):
    x = uniform(np.random.default_rng(seed), shape)
    check(lambda t: -t, np.negative, x)
    check(tq.neg, np.negative, x)


@SETTINGS
@given(shape=shapes, exponent=st.sampled_from([0, 1, 2, 3, -1, -2, 0.5, 1.5, -2.5, 0.0]), seed=seeds)
def test_pow_tensor_scalar(shape, exponent, seed):
    rng = np.random.default_rng(seed)
    integral = float(exponent).is_integer()
    x = away_from_zero(rng, shape, gap=0.5) if integral else positive(rng, shape)  # negative base only for ints
    check(lambda t: t**exponent, lambda a: a**exponent, x)
    check(lambda t: tq.pow(t, exponent), lambda a: a**exponent, x)


@SETTINGS
@given(shape=shapes, base=st.sampled_from([0.5, 2.0, math.e, 3.7]), seed=seeds)
def test_pow_scalar_tensor(shape, base, seed):
    x = uniform(np.random.default_rng(seed), shape)
    check(lambda t: base**t, lambda a: base**a, x)


@SETTINGS
@given(shapes=broadcast_pairs, seed=seeds)
def test_pow_tensor_tensor_positive_base(shapes, seed):
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    check(lambda a, b: a**b, np.power, positive(rng, sa), uniform(rng, sb))


def _leaky(slope):
    return lambda a: np.where(a > 0, a, slope * a)


UNARY = {
    # name: (tinyqnn function, method or None, NumPy reference, data maker)
    "exp": (tq.exp, Tensor.exp, np.exp, uniform),
    "log": (tq.log, Tensor.log, np.log, positive),
    "sqrt": (tq.sqrt, Tensor.sqrt, np.sqrt, positive),
    "abs": (tq.abs, Tensor.abs, np.abs, away_from_zero),
    "relu": (tq.relu, Tensor.relu, lambda a: np.maximum(a, 0), away_from_zero),
    "leaky_relu": (tq.leaky_relu, None, _leaky(0.01), away_from_zero),
    "leaky_relu_0.3": (lambda t: tq.leaky_relu(t, 0.3), None, _leaky(0.3), away_from_zero),
    "sigmoid": (tq.sigmoid, Tensor.sigmoid, lambda a: 1 / (1 + np.exp(-a)), lambda r, s: uniform(r, s, -6, 6)),
    "tanh": (tq.tanh, Tensor.tanh, np.tanh, lambda r, s: uniform(r, s, -3, 3)),
}


@SETTINGS
@given(shape=shapes, name=st.sampled_from(sorted(UNARY)), seed=seeds)
def test_unary(shape, name, seed):
    function, method, reference, make = UNARY[name]
    x = make(np.random.default_rng(seed), shape)
    check(function, reference, x)
    if method is not None:
        check(method, reference, x)


@SETTINGS
@given(shape=shapes, mode=st.sampled_from(["min", "max", "both"]), use_method=st.booleans(), seed=seeds)
def test_clip(shape, mode, use_method, seed):
    rng = np.random.default_rng(seed)
    x = on_grid(rng, shape, 0.25)  # bounds are at .75: never within 0.4 of a value
    lo = float(rng.integers(-3, 1)) + 0.75 if mode in ("min", "both") else None
    hi = float(rng.integers(1, 3)) + 0.75 if mode in ("max", "both") else None
    fn = (lambda t: t.clip(lo, hi)) if use_method else (lambda t: tq.clip(t, min=lo, max=hi))
    check(fn, lambda a: np.clip(a, lo, hi), x)


@SETTINGS
@given(shapes=broadcast_pairs, name=st.sampled_from(["maximum", "minimum"]), seed=seeds)
def test_maximum_minimum(shapes, name, seed):
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    a, b = on_grid(rng, sa, 0.25), on_grid(rng, sb, 0.75)
    check(getattr(tq, name), getattr(np, name), a, b)
    check(lambda s: getattr(tq, name)(s, 0.5), lambda s: getattr(np, name)(s, 0.5), a)  # tensor vs scalar


@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=3, min_side=1, max_side=4),
       cond_as_tensor=st.booleans(), seed=seeds)
def test_where(shapes, cond_as_tensor, seed):
    rng = np.random.default_rng(seed)
    sc, sa, sb = shapes.input_shapes
    cond = rng.random(sc) < 0.5
    c = Tensor(cond) if cond_as_tensor else cond
    check(lambda a, b: tq.where(c, a, b), lambda a, b: np.where(cond, a, b), uniform(rng, sa), uniform(rng, sb))


# ---------------------------------------------------------------- reductions
@st.composite
def shape_axis_keepdims(draw, min_dims=0, min_side=1, allow_empty_axes=True):
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=min_side, max_side=4))
    nd = len(shape)
    choices = [st.none()]
    if allow_empty_axes:
        choices.append(st.just(()))
    if nd:
        choices.append(st.integers(-nd, nd - 1))  # negative and positive ints
        choices.append(  # tuples, each axis written either way (1 or 1 - nd)
            hnp.valid_tuple_axes(nd, min_size=1).flatmap(
                lambda axes: st.tuples(*[st.sampled_from([a % nd, a % nd - nd]) for a in axes])
            )
        )
    return shape, draw(st.one_of(choices)), draw(st.booleans())


REDUCTIONS = {
    "sum": (tq.sum, np.sum, uniform),
    "mean": (tq.mean, np.mean, uniform),
    "max": (tq.max, np.max, distinct),
    "min": (tq.min, np.min, distinct),
}


@SETTINGS
@given(sak=shape_axis_keepdims(), name=st.sampled_from(sorted(REDUCTIONS)), use_method=st.booleans(), seed=seeds)
def test_reductions(sak, name, use_method, seed):
    shape, axis, keepdims = sak
    function, reference, make = REDUCTIONS[name]
    x = make(np.random.default_rng(seed), shape)
    if use_method:
        fn = lambda t: getattr(t, name)(axis=axis, keepdims=keepdims)  # noqa: E731
    else:
        fn = lambda t: function(t, axis, keepdims)  # noqa: E731
    check(fn, lambda a: reference(a, axis=axis, keepdims=keepdims), x)


@SETTINGS
@given(sak=shape_axis_keepdims(min_dims=1, min_side=2, allow_empty_axes=False),
       correction=st.sampled_from([0, 1]), use_method=st.booleans(), seed=seeds)
def test_var(sak, correction, use_method, seed):
    shape, axis, keepdims = sak
    x = uniform(np.random.default_rng(seed), shape)
    if use_method:
        fn = lambda t: t.var(axis=axis, keepdims=keepdims, correction=correction)  # noqa: E731
    else:
        fn = lambda t: tq.var(t, axis, keepdims, correction)  # noqa: E731
    check(fn, lambda a: np.var(a, axis=axis, keepdims=keepdims, ddof=correction), x)


def test_var_default_is_unbiased():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(tq.var(Tensor(x)).item(), np.var(x, ddof=1), rtol=1e-6)


# ---------------------------------------------------------------- matmul
@SETTINGS
@given(shapes=hnp.mutually_broadcastable_shapes(signature="(m?,n),(n,p?)->(m?,p?)", max_dims=2, max_side=4),
       use_operator=st.booleans(), seed=seeds)
def test_matmul(shapes, use_operator, seed):
    """1-D @ 1-D, matrix @ vector, vector @ batched matrix, batched with broadcasting batch dims."""
    rng = np.random.default_rng(seed)
    sa, sb = shapes.input_shapes
    check((lambda a, b: a @ b) if use_operator else tq.matmul, np.matmul, uniform(rng, sa), uniform(rng, sb))


def test_matmul_broadcast_batch_dims_explicit():
    """Both operands broadcast along different batch axes: (2, 1, 3, 4) @ (5, 4, 2)."""
    rng = np.random.default_rng(0)
    check(tq.matmul, np.matmul, uniform(rng, (2, 1, 3, 4)), uniform(rng, (5, 4, 2)))
    check(tq.matmul, np.matmul, uniform(rng, (4,)), uniform(rng, (2, 3, 4, 2)))
    check(tq.matmul, np.matmul, uniform(rng, (2, 3, 3, 4)), uniform(rng, (4,)))


# ---------------------------------------------------------------- shape ops
@st.composite
def shape_and_target(draw):
    shape = draw(shapes)
    n = math.prod(shape)
    candidates = [(n,), (-1,), (1, n), (n, 1, 1), shape[::-1], shape + (1,), (1,) + shape]
    if len(shape) >= 2:
        candidates += [(-1, shape[-1]), (shape[0], -1)]
    return shape, draw(st.sampled_from(candidates))


@SETTINGS
@given(st_=shape_and_target(), form=st.sampled_from(["function", "varargs", "tuple", "view"]), seed=seeds)
def test_reshape(st_, form, seed):
    shape, target = st_
    x = uniform(np.random.default_rng(seed), shape)
    fn = {
        "function": lambda t: tq.reshape(t, target),
        "varargs": lambda t: t.reshape(*target),
        "tuple": lambda t: t.reshape(target),
        "view": lambda t: t.view(*target),
    }[form]
    check(fn, lambda a: a.reshape(target), x)


@st.composite
def shape_and_dims(draw):
    shape = draw(shapes)
    nd = len(shape)
    perm = draw(st.permutations(range(nd)))
    dims = tuple(draw(st.sampled_from([d, d - nd])) for d in perm)  # negative dims too
    return shape, dims


@SETTINGS
@given(sd=shape_and_dims(), varargs=st.booleans(), seed=seeds)
def test_permute(sd, varargs, seed):
    shape, dims = sd
    x = distinct(np.random.default_rng(seed), shape)  # distinct values: a wrong inverse permutation shows
    fn = (lambda t: t.permute(*dims)) if varargs and dims else (lambda t: tq.permute(t, dims))
    check(fn, lambda a: np.transpose(a, dims), x)


@SETTINGS
@given(shape=hnp.array_shapes(min_dims=2, max_dims=4, max_side=4), data=st.data(), seed=seeds)
def test_transpose_and_T(shape, data, seed):
    nd = len(shape)
    d0, d1 = data.draw(st.integers(-nd, nd - 1)), data.draw(st.integers(-nd, nd - 1))
    x = distinct(np.random.default_rng(seed), shape)
    check(lambda t: tq.transpose(t, d0, d1), lambda a: np.swapaxes(a, d0, d1), x)
    check(lambda t: t.transpose(d0, d1), lambda a: np.swapaxes(a, d0, d1), x)
    check(lambda t: t.transpose(), lambda a: np.swapaxes(a, -2, -1), x)
    check(lambda t: t.T, lambda a: a.T, x)


@SETTINGS
@given(shape=shapes, data=st.data(), seed=seeds)
def test_flatten(shape, data, seed):
    x = uniform(np.random.default_rng(seed), shape)
    nd = len(shape)
    if nd == 0:
        check(tq.flatten, lambda a: a.reshape(1), x)
        return
    start = data.draw(st.integers(-nd, nd - 1))
    end = data.draw(st.integers(-nd, nd - 1).filter(lambda e: e % nd >= start % nd))
    s, e = start % nd, end % nd
    target = shape[:s] + (math.prod(shape[s : e + 1]),) + shape[e + 1 :]
    check(lambda t: t.flatten(start, end), lambda a: a.reshape(target), x)
    check(lambda t: tq.flatten(t, start_dim=start, end_dim=end), lambda a: a.reshape(target), x)
    check(lambda t: t.flatten(), lambda a: a.reshape(-1), x)


# ---------------------------------------------------------------- indexing
@SETTINGS
@given(data=st.data(), shape=shapes, seed=seeds)
def test_basic_indexing(data, shape, seed):
    """Ints (negative too), slices with any step (negative too), None and Ellipsis."""
    index = data.draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    x = distinct(np.random.default_rng(seed), shape)
    check(lambda t: t[index], lambda a: a[index], x)


@SETTINGS
@given(data=st.data(), shape=nonscalar_shapes, seed=seeds)
def test_integer_array_indexing(data, shape, seed):
    """Fancy indices, with repeats: each repeat must add its gradient, not overwrite."""
    index = data.draw(hnp.integer_array_indices(shape, result_shape=hnp.array_shapes(min_dims=1, max_dims=2)))
    x = distinct(np.random.default_rng(seed), shape)
    check(lambda t: t[index], lambda a: a[index], x)


@SETTINGS
@given(data=st.data(), shape=nonscalar_shapes, seed=seeds)
def test_repeated_index_list_with_slices(data, shape, seed):
    n = shape[0]
    rows = data.draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=6))
    rest = tuple(data.draw(st.sampled_from([slice(None), slice(None, None, -1), slice(1, None)]))
                 for _ in shape[1:])
    index = (rows,) + rest
    x = distinct(np.random.default_rng(seed), shape)
    check(lambda t: t[index], lambda a: a[index], x)
    check(lambda t: t[Tensor(np.array(rows))], lambda a: a[np.array(rows)], x)


def test_repeated_index_accumulates():
    x = t64([1.0, 2.0, 3.0])
    x[[0, 0, 2, 0]].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 0.0, 1.0])


@SETTINGS
@given(data=st.data(), shape=nonscalar_shapes, seed=seeds)
def test_boolean_mask_indexing(data, shape, seed):
    full = data.draw(hnp.arrays(np.bool_, shape))
    leading = data.draw(hnp.arrays(np.bool_, shape[:1]))
    x = distinct(np.random.default_rng(seed), shape)
    check(lambda t: t[full], lambda a: a[full], x)
    check(lambda t: t[Tensor(full)], lambda a: a[full], x)
    check(lambda t: t[leading], lambda a: a[leading], x)
    if len(shape) >= 2:
        check(lambda t: t[leading, ::-1], lambda a: a[leading, ::-1], x)


# ---------------------------------------------------------------- concatenate / stack / pad
@st.composite
def concat_case(draw):
    base = list(draw(nonscalar_shapes))
    nd = len(base)
    axis = draw(st.integers(-nd, nd - 1))
    sizes = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    out = []
    for k in sizes:
        s = list(base)
        s[axis] = k
        out.append(tuple(s))
    return out, axis


@SETTINGS
@given(case=concat_case(), use_cat=st.booleans(), seed=seeds)
def test_concatenate(case, use_cat, seed):
    shapes_, axis = case
    rng = np.random.default_rng(seed)
    arrays = [uniform(rng, s) for s in shapes_]
    op = tq.cat if use_cat else tq.concatenate
    check(lambda *ts: op(list(ts), axis=axis), lambda *a: np.concatenate(a, axis=axis), *arrays)


@SETTINGS
@given(shape=shapes, k=st.integers(1, 3), data=st.data(), seed=seeds)
def test_stack(shape, k, data, seed):
    nd = len(shape) + 1
    axis = data.draw(st.integers(-nd, nd - 1))
    rng = np.random.default_rng(seed)
    arrays = [uniform(rng, shape) for _ in range(k)]
    check(lambda *ts: tq.stack(ts, axis=axis), lambda *a: np.stack(a, axis=axis), *arrays)


@SETTINGS
@given(shape=nonscalar_shapes, data=st.data(), value=st.sampled_from([0.0, -1.5]), seed=seeds)
def test_pad(shape, data, value, seed):
    widths = tuple((data.draw(st.integers(0, 2)), data.draw(st.integers(0, 2))) for _ in shape)
    x = uniform(np.random.default_rng(seed), shape)
    check(lambda t: tq.pad(t, widths, value=value), lambda a: np.pad(a, widths, constant_values=value), x)


@pytest.mark.parametrize("width", [1, (1, 2), [(2, 0)], ((0, 1), (2, 1))])
def test_pad_accepts_numpy_pad_width_forms(width):
    x = uniform(np.random.default_rng(0), (2, 3))
    check(lambda t: tq.pad(t, width), lambda a: np.pad(a, width), x)


# ---------------------------------------------------------------- unbroadcast (used by every binary op)
@SETTINGS
@given(shapes=broadcast_pairs, seed=seeds)
def test_unbroadcast_sums_every_copy(shapes, seed):
    small, result = shapes.input_shapes[0], shapes.result_shape
    grad = uniform(np.random.default_rng(seed), result)
    # reference: each output element adds its gradient to the input element it was copied from
    source = np.broadcast_to(np.arange(math.prod(small)).reshape(small), result)
    expected = np.bincount(source.ravel(), weights=grad.ravel(), minlength=math.prod(small)).reshape(small)
    np.testing.assert_allclose(unbroadcast(grad, small), expected, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- conventions at kinks and ties (PyTorch's)
def grad_of(fn, values):
    x = t64(values)
    fn(x).sum().backward()
    return x.grad.data


def test_conventions_at_kinks():
    np.testing.assert_array_equal(grad_of(tq.abs, [-1.0, 0.0, 2.0]), [-1.0, 0.0, 1.0])
    np.testing.assert_array_equal(grad_of(tq.relu, [-1.0, 0.0, 2.0]), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(grad_of(lambda t: tq.leaky_relu(t, 0.1), [-1.0, 0.0, 2.0]), [0.1, 0.1, 1.0])
    # clamp passes the gradient on the bounds themselves
    np.testing.assert_array_equal(grad_of(lambda t: t.clip(0.0, 1.0), [-1.0, 0.0, 0.5, 1.0, 2.0]), [0, 1, 1, 1, 0])
    # ties split evenly
    np.testing.assert_array_equal(grad_of(lambda t: tq.maximum(t, 1.0), [1.0, 2.0, 0.0]), [0.5, 1.0, 0.0])
    np.testing.assert_array_equal(grad_of(lambda t: tq.minimum(t, 1.0), [1.0, 2.0, 0.0]), [0.5, 0.0, 1.0])
    np.testing.assert_array_equal(grad_of(tq.max, [3.0, 1.0, 3.0]), [0.5, 0.0, 0.5])
    np.testing.assert_array_equal(grad_of(lambda t: tq.min(t, axis=1), [[1.0, 1.0], [2.0, 5.0]]),
                                  [[0.5, 0.5], [1.0, 0.0]])
    # x**0 is constant (no 0 * inf = nan at 0); 0**t with t > 0 has zero derivative in t
    np.testing.assert_array_equal(grad_of(lambda t: t**0, [0.0, 2.0]), [0.0, 0.0])
    np.testing.assert_array_equal(grad_of(lambda t: 0.0**t, [1.0, 2.0]), [0.0, 0.0])
    np.testing.assert_array_equal(grad_of(lambda t: t**2, [0.0, -3.0]), [0.0, -6.0])


def test_sigmoid_is_stable_for_large_inputs():
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow to 0 is fine
        for dtype in (np.float32, np.float64):
            x = Tensor(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], dtype=dtype), requires_grad=True)
            s = tq.sigmoid(x)
            s.sum().backward()
            assert np.all(np.isfinite(s.data)) and np.all(np.isfinite(x.grad.data))
            np.testing.assert_allclose(s.data[[0, 2, 4]], [0.0, 0.5, 1.0])


# ---------------------------------------------------------------- dtype preservation, every op
_rng = np.random.default_rng(0)
A, B, BV = uniform(_rng, (2, 3)), uniform(_rng, (3,)) + 3.0, uniform(_rng, (3,))
POS, DISTINCT, MASK = positive(_rng, (2, 3)), distinct(_rng, (2, 3)), _rng.random((2, 3)) < 0.5
CASES = {
    # name: (fn of tensors, input arrays)
    "add": (lambda a, b: a + b, (A, B)), "sub": (lambda a, b: a - b, (A, B)),
    "mul": (lambda a, b: a * b, (A, B)), "div": (lambda a, b: a / b, (A, B)),
    "rsub_scalar": (lambda a: 2.0 - a, (A,)), "rdiv_scalar": (lambda a: 2.0 / a, (B,)),
    "neg": (lambda a: -a, (A,)), "pow_scalar": (lambda a: a**3, (A,)), "pow_frac": (lambda a: a**0.5, (POS,)),
    "rpow": (lambda a: 2.0**a, (A,)), "pow_tensor": (lambda a, b: a**b, (POS, BV)),
    "exp": (tq.exp, (A,)), "log": (tq.log, (POS,)), "sqrt": (tq.sqrt, (POS,)), "abs": (tq.abs, (A,)),
    "clip": (lambda a: a.clip(-0.5, 0.5), (A,)), "clip_min": (lambda a: tq.clip(a, min=0.1), (A,)),
    "maximum": (tq.maximum, (A, BV)), "minimum": (tq.minimum, (A, BV)),
    "where": (lambda a, b: tq.where(MASK, a, b), (A, BV)), "where_scalar": (lambda a: tq.where(MASK, a, 0.0), (A,)),
    "relu": (tq.relu, (A,)), "leaky_relu": (lambda a: tq.leaky_relu(a, 0.2), (A,)),
    "sigmoid": (tq.sigmoid, (A,)), "tanh": (tq.tanh, (A,)),
    "sum": (lambda a: a.sum(axis=1), (A,)), "mean": (lambda a: a.mean(axis=(0, 1), keepdims=True), (A,)),
    "max": (lambda a: a.max(axis=-1), (DISTINCT,)), "min": (lambda a: a.min(), (DISTINCT,)),
    "var": (lambda a: a.var(axis=0), (A,)), "var0": (lambda a: a.var(correction=0), (A,)),
    "matmul": (lambda a, b: a @ b.T, (A, A)), "matvec": (lambda a, b: a @ b, (A, BV)),
    "dot": (lambda a, b: a @ b, (BV, BV)),
    "reshape": (lambda a: a.reshape(3, 2), (A,)), "flatten": (lambda a: a.flatten(), (A,)),
    "permute": (lambda a: a.permute(1, 0), (A,)), "transpose": (lambda a: a.transpose(), (A,)),
    "getitem": (lambda a: a[1, ::-1], (A,)), "fancy": (lambda a: a[[0, 0, 1]], (A,)), "mask": (lambda a: a[MASK], (A,)),
    "concatenate": (lambda a, b: tq.concatenate([a, b], axis=0), (A, A)),
    "stack": (lambda a, b: tq.stack([a, b], axis=1), (A, A)), "pad": (lambda a: tq.pad(a, 1, value=2.0), (A,)),
}


def assert_backward_keeps_dtypes(out: Tensor) -> None:
    """Every Function.backward in the graph returns gradients in its inputs' dtypes (before the engine's cast)."""
    for node in out._topological_order():
        if node._fn is None:
            continue
        grads = node._fn.backward(node._ctx, np.ones_like(node.data))
        grads = grads if isinstance(grads, tuple) else (grads,)
        for parent, g in zip(node._inputs, grads):
            if isinstance(parent, Tensor) and parent.requires_grad and g is not None:
                assert np.asarray(g).dtype == parent.dtype, (
                    f"{node._fn.__name__}.backward returned {np.asarray(g).dtype} for a {parent.dtype} input")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_dtype_preserved_through_forward_and_backward(name, dtype):
    fn, arrays = CASES[name]
    inputs = [Tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    out = fn(*inputs)
    assert out.dtype == dtype, f"{name}: forward turned {np.dtype(dtype)} into {out.dtype}"
    assert_backward_keeps_dtypes(out)
    out.sum().backward()
    for x in inputs:
        assert x.grad is not None and x.grad.dtype == dtype
    # and float32 results agree with the float64 computation
    ref = fn(*[Tensor(a) for a in arrays]).data
    np.testing.assert_allclose(out.data, ref, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


# ---------------------------------------------------------------- clear errors for bad input
X = Tensor(np.zeros((2, 3)), requires_grad=True)


@pytest.mark.parametrize(
    "call, error, pattern",
    [
        (lambda: tq.matmul(X, Tensor(np.zeros((2, 4)))), ValueError, r"matmul shape mismatch: \(2, 3\) @ \(2, 4\)"),
        (lambda: tq.matmul(Tensor(np.zeros((2, 2, 3))), Tensor(np.zeros((3, 3, 4)))), ValueError,
         r"matmul shape mismatch: \(2, 2, 3\) @ \(3, 3, 4\) \(batch dimensions"),
        (lambda: X @ Tensor(np.zeros(4)), ValueError, r"\(2, 3\) @ \(4,\)"),
        (lambda: tq.matmul(Tensor(np.float64(2.0)), X), ValueError, "at least one dimension"),
        (lambda: X.reshape(4, 2), ValueError, r"cannot reshape a tensor of shape \(2, 3\) \(6 elements\) into \(4, 2\)"),
        (lambda: X.sum(axis=2), ValueError, "axis 2 is out of range for a tensor with 2 dimensions"),
        (lambda: X.mean(axis=(0, -3)), ValueError, "axis -3 is out of range"),
        (lambda: X.max(axis=5), ValueError, "axis 5 is out of range"),
        (lambda: X.var(axis=-3), ValueError, "axis -3 is out of range"),
        (lambda: tq.sum(Tensor(np.float64(1.0)), axis=0), ValueError, "axis 0 is out of range for a tensor with 0"),
        (lambda: X.var(axis=0, correction=2), ValueError, r"var over 2 element\(s\) with correction=2"),
        (lambda: tq.max(Tensor(np.zeros((0, 3)))), ValueError, r"max of an empty tensor \(shape \(0, 3\)\)"),
        (lambda: X.permute(0, 0), ValueError, r"permute dims \(0, 0\) are not a permutation"),
        (lambda: X.permute(0, 2), ValueError, r"permute dims \(0, 2\) are not a permutation of the 2 axes"),
        (lambda: X.transpose(0, 2), ValueError, r"transpose dims \(0, 2\) are out of range for shape \(2, 3\)"),
        (lambda: Tensor(np.zeros(3)).transpose(), ValueError, r"transpose dims \(-2, -1\)"),
        (lambda: X.flatten(1, 0), ValueError, "start_dim 1 comes after end_dim 0"),
        (lambda: tq.concatenate([X, Tensor(np.zeros((3, 2)))], axis=0), ValueError,
         r"cannot concatenate shapes \(2, 3\), \(3, 2\) along axis 0"),
        (lambda: tq.concatenate([X, Tensor(np.zeros(3))], axis=1), ValueError, r"cannot concatenate shapes \(2, 3\), \(3,\)"),
        (lambda: tq.concatenate([X], axis=3), ValueError, "along axis 3"),
        (lambda: tq.concatenate([]), ValueError, "at least one tensor"),
        (lambda: tq.stack([X, Tensor(np.zeros((3, 2)))]), ValueError, r"stack needs equal shapes, got \(2, 3\), \(3, 2\)"),
        (lambda: tq.stack([X, X], axis=4), ValueError, "stack axis 4 is out of range"),
        (lambda: tq.stack([]), ValueError, "at least one tensor"),
        (lambda: tq.pad(X, [(1, 1)] * 3), ValueError, r"does not fit a tensor of shape \(2, 3\)"),
        (lambda: tq.pad(X, [(1, -1), (0, 0)]), ValueError, "non-negative"),
        (lambda: X.clip(1.0, 0.0), ValueError, r"min \(1.0\) is larger than max \(0.0\)"),
        (lambda: X + Tensor(np.zeros((4,))), ValueError, "broadcast"),
        (lambda: X[5], IndexError, "out of bounds"),
    ],
)
def test_clear_errors(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()
