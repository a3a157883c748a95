"""Straight-through estimators: forward quantizers, surrogate derivatives, learned clip/step, registry."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyqnn as tq
from tinyqnn.quant import ste as S
from tinyqnn.quant.activation import quantize_relu

BITS_ALPHA = [(1, 1.2221), (2, 0.6511), (4, 0.1946)]


def _run(cls, x: np.ndarray, upstream: np.ndarray, **kw):
    """Forward + backward through ``cls`` with a given upstream gradient; returns (y, dL/dx)."""
    t = tq.Tensor(x, requires_grad=True)
    y = cls.apply(t, **kw)
    (y * tq.Tensor(upstream)).sum().backward()
    return y.data, t.grad.data


def _points(top: float, rng: np.random.Generator) -> np.ndarray:
    """Random points on [-2, top + 2] plus the edges 0 and top exactly."""
    return np.concatenate([rng.uniform(-2, top + 2, 200), [0.0, top, -1.0, 1.0]])


# ---------------------------------------------------------------------- quantized-ReLU surrogates
@pytest.mark.parametrize("bits,alpha", BITS_ALPHA)
@pytest.mark.parametrize("rule", ["ceil", "round"])
def test_relu_family_backward_matches_stated_formula(bits, alpha, rule):
    rng = np.random.default_rng(bits)
    top = (2**bits - 1) * alpha
    x = _points(top, rng)
    up = rng.normal(size=x.shape)
    formulas = {
        "identity": np.ones_like(x),
        "relu": (x > 0).astype(float),
        "clipped_relu": ((x > 0) & (x <= top)).astype(float),
    }
    for name, mask in formulas.items():
        y, gx = _run(S.get_ste(name), x, up, bits=bits, alpha=alpha, quantizer=rule)
        np.testing.assert_array_equal(y, quantize_relu(x, bits, alpha, rule))
        np.testing.assert_allclose(gx, up * mask, rtol=0, atol=0)


def test_clipped_relu_mask_edges_are_exact():
    # 1{0 < x <= (2^b-1) alpha}: 0 excluded, the saturation point included, just above excluded
    alpha, bits = 0.5, 2
    x = np.array([0.0, 1e-12, 1.5, np.nextafter(1.5, 2.0)])
    _, g = _run(S.ClippedReLUSTE, x, np.ones_like(x), bits=bits, alpha=alpha)
    np.testing.assert_array_equal(g, [0.0, 1.0, 1.0, 0.0])


def _central(fn, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    return (fn(x + eps) - fn(x - eps)) / (2 * eps)


# mu(x) for every STE whose surrogate is the derivative of a function: check mu' by finite differences
SMOOTH_MU = {
    "identity": (lambda x, b, a: x, []),
    "relu": (lambda x, b, a: np.maximum(x, 0), [0.0]),
    "clipped_relu": (lambda x, b, a: np.clip(x, 0, (2**b - 1) * a), [0.0, "top"]),
    "hardtanh": (lambda x, b, a: np.clip(x, -1, 1), [-1.0, 1.0]),
    "approx_sign": (
        lambda x, b, a: np.where(x < -1, -1, np.where(x < 0, 2 * x + x * x, np.where(x < 1, 2 * x - x * x, 1))),
        [-1.0, 0.0, 1.0],
    ),
    "swish_sign": (lambda x, b, a: 2 / (1 + np.exp(-5 * x)) * (1 + 5 * x * (1 - 1 / (1 + np.exp(-5 * x)))) - 1, []),
    "dorefa": (lambda x, b, a: np.clip(x, 0, 1), [0.0, 1.0]),
}


@pytest.mark.parametrize("name", sorted(SMOOTH_MU))
def test_surrogate_is_derivative_of_its_mu(name):
    mu, kinks = SMOOTH_MU[name]
    cls = S.get_ste(name)
    bits = 1 if cls.binary else 2
    alpha = 0.6511
    kinks = [(2**bits - 1) * alpha if k == "top" else k for k in kinks]
    x = np.random.default_rng(0).uniform(-3, 3, 400)
    x = x[np.all(np.abs(x[:, None] - np.array(kinks + [1e9])[None, :]) > 1e-3, axis=1)]
    numeric = _central(lambda z: mu(z, bits, alpha), x)
    _, g = _run(cls, x, np.ones_like(x), bits=bits, alpha=alpha)
    np.testing.assert_allclose(g, numeric, atol=1e-6)


def test_sign_stes_forward_and_stated_derivatives():
    x = np.array([-2.0, -1.0, -0.5, 0.0, 0.25, 1.0, 3.0])
    up = np.linspace(1, 2, x.size)
    expected_forward = np.array([-1, -1, -1, 1, 1, 1, 1.0])
    beta = 3.0
    bx = beta * x
    stated = {
        "hardtanh": (np.abs(x) <= 1).astype(float),
        "saturated": (np.abs(x) <= 1).astype(float),
        "approx_sign": np.where(np.abs(x) < 1, 2 - 2 * np.abs(x), 0.0),
        "swish_sign": beta * (2 - bx * np.tanh(bx / 2)) / (1 + np.cosh(bx)),
    }
    for name, d in stated.items():
        kw = {"beta": beta} if name == "swish_sign" else {}
        y, g = _run(S.get_ste(name), x, up, bits=1, **kw)
        np.testing.assert_array_equal(y, expected_forward)
        np.testing.assert_allclose(g, up * d, rtol=1e-12)


def test_dorefa_forward_levels():
    bits = 2
    x = np.array([-1.0, 0.1, 0.2, 0.5, 0.9, 1.0, 4.0])
    y, g = _run(S.DoReFaSTE, x, np.ones_like(x), bits=bits)
    np.testing.assert_allclose(y, np.rint(np.clip(x, 0, 1) * 3) / 3)
    assert set(np.round(y * 3).astype(int)) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(g, ((x >= 0) & (x <= 1)).astype(float))


# ---------------------------------------------------------------------- PACT
def test_pact_forward_and_gradients():
    rng = np.random.default_rng(1)
    bits, a = 2, 1.7
    x = np.concatenate([rng.uniform(-1, 3, 300), [0.0, a]])
    up = rng.normal(size=x.shape)
    xt = tq.Tensor(x, requires_grad=True)
    at = tq.Tensor(np.array(a), requires_grad=True)
    y = S.PACTSTE.apply(xt, at, bits=bits)
    (y * tq.Tensor(up)).sum().backward()
    step = a / 3
    np.testing.assert_allclose(y.data, np.rint(np.clip(x, 0, a) / step) * step)
    np.testing.assert_array_equal(xt.grad.data, up * ((x >= 0) & (x < a)))
    # dy/da against central differences of the smooth definition clip(x, 0, a), off the kink x = a
    off = np.abs(x - a) > 1e-3
    smooth = lambda aa: np.sum(up[off] * np.clip(x[off], 0, aa))  # noqa: E731
    numeric = (smooth(a + 1e-6) - smooth(a - 1e-6)) / 2e-6
    direct = np.sum(up[off] * (x[off] >= a))
    assert at.grad.data.shape == ()
    assert math.isclose(direct, numeric, rel_tol=1e-6, abs_tol=1e-8)
    assert math.isclose(float(at.grad.data), np.sum(up * (x >= a)), rel_tol=1e-12)


def test_pact_gradcheck_smooth_region():
    # away from 0 and the clip level, PACT's output is piecewise constant in x but linear in a
    # through the step a/k: check both gradients of the smooth part with tinyqnn.gradcheck
    x = np.array([-0.5, 2.5, 3.1])  # all outside (0, a): the value is 0 or a
    a = np.array(2.0)
    tq.gradcheck(lambda xx, aa: S.PACTSTE.apply(xx, aa, bits=2), x, a)


# ---------------------------------------------------------------------- LSQ
@pytest.mark.parametrize("signed", [False, True])
def test_lsq_forward_and_gradients(signed):
    rng = np.random.default_rng(2)
    bits, s = 3, 0.37
    qn, qp = (4, 3) if signed else (0, 7)
    x = rng.uniform(-2.5, 3.5, 500)
    up = rng.normal(size=x.shape)
    xt = tq.Tensor(x, requires_grad=True)
    stt = tq.Tensor(np.array([s]), requires_grad=True)
    y = S.LSQSTE.apply(xt, stt, bits=bits, signed=signed)
    (y * tq.Tensor(up)).sum().backward()
    v = x / s
    np.testing.assert_allclose(y.data, np.rint(np.clip(v, -qn, qp)) * s)
    np.testing.assert_array_equal(xt.grad.data, up * ((v >= -qn) & (v <= qp)))
    # the smooth definition: s * clip(x/s) + s * r with the rounding residual r frozen at s
    r = np.rint(np.clip(v, -qn, qp)) - np.clip(v, -qn, qp)
    smooth = lambda ss: np.sum(up * (ss * np.clip(x / ss, -qn, qp) + ss * r))  # noqa: E731
    g = 1 / math.sqrt(x.size * qp)
    numeric = g * (smooth(s + 1e-7) - smooth(s - 1e-7)) / 2e-7
    assert stt.grad.shape == (1,)
    assert math.isclose(float(stt.grad.data[0]), numeric, rel_tol=1e-5)


def test_lsq_gradcheck_saturated_region():
    # with v = x/s outside [-Qn, Qp] the output is exactly -Qn*s or Qp*s: LSQ's gradients (with g = 1)
    # are then the true derivatives, so tinyqnn.gradcheck applies
    x = np.array([-9.0, -5.0, 4.0, 7.5])
    s = np.array(1.0)
    tq.gradcheck(lambda xx, ss: S.LSQSTE.apply(xx, ss, bits=3, signed=True, grad_scale=1.0), x, s)


def test_lsq_grad_scale_override_and_bad_step():
    x = tq.Tensor(np.array([0.3, 5.0]), requires_grad=True)
    s = tq.Tensor(np.array(1.0), requires_grad=True)
    S.LSQSTE.apply(x, s, bits=2, grad_scale=1.0).sum().backward()
    assert math.isclose(float(s.grad.data), (0 - 0.3) + 3)  # rint(0.3) - 0.3, then Qp for the clipped one
    with pytest.raises(ValueError, match="positive"):
        S.LSQSTE.apply(x, tq.Tensor(np.array(-1.0)), bits=2)
    with pytest.raises(ValueError, match="bits"):
        S.LSQSTE.apply(x, s, bits=1, signed=True)


# ---------------------------------------------------------------------- dtype, shapes
@settings(max_examples=30, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    name=st.sampled_from(["identity", "relu", "clipped_relu", "dorefa"]),
)
def test_shapes_and_float32_are_preserved(shape, name):
    x = tq.randn(*shape, requires_grad=True)
    y = S.get_ste(name).apply(x, bits=2, alpha=0.6511)
    assert y.shape == x.shape and y.dtype == np.float32
    y.sum().backward()
    assert x.grad.shape == x.shape and x.grad.dtype == np.float32


# ---------------------------------------------------------------------- registry and errors
def test_unknown_ste_lists_known_names():
    with pytest.raises(ValueError) as err:
        S.get_ste("nope")
    for name in ("identity", "relu", "clipped_relu", "pact", "lsq", "swish_sign"):
        assert name in str(err.value)


def test_make_ste_plugs_in_a_derivative():
    ste = S.make_ste("test_gauss", derivative=lambda x, bits, alpha: np.exp(-x * x / 2))
    assert S.get_ste("test_gauss") is ste
    x = np.array([-1.0, 0.0, 0.4, 2.0])
    y, g = _run(ste, x, np.full(4, 2.0), bits=2, alpha=0.5)
    np.testing.assert_array_equal(y, quantize_relu(x, 2, 0.5))
    np.testing.assert_allclose(g, 2.0 * np.exp(-x * x / 2))
    from tinyqnn.quant.modules import QuantAct

    act = QuantAct(2, ste="test_gauss")
    assert act.ste is ste


def test_register_ste_rules():
    with pytest.raises(ValueError, match="built-in"):
        S.register_ste("relu", derivative=lambda x, b, a: x)
    S.register_ste("test_once", derivative=lambda x, b, a: np.ones_like(x))
    with pytest.raises(ValueError, match="already registered"):
        S.register_ste("test_once", derivative=lambda x, b, a: np.ones_like(x))
    with pytest.raises(ValueError, match="exactly one"):
        S.register_ste("test_none")

    class Half(S.STE):
        """mu'(x) = 1/2."""

        name = "test_half"

        @staticmethod
        def derivative(x, bits, alpha, **params):
            return np.full_like(x, 0.5)

    S.register_ste("test_half", Half)
    _, g = _run(S.get_ste("test_half"), np.array([1.0, -3.0]), np.ones(2), bits=2, alpha=1.0)
    np.testing.assert_array_equal(g, [0.5, 0.5])


@pytest.mark.parametrize("bits", [0, -1, 1.5, True])
def test_bad_bits_raise(bits):
    with pytest.raises(ValueError, match="bits"):
        S.ReLUSTE.apply(tq.randn(3), bits=bits, alpha=1.0)


@pytest.mark.parametrize("alpha", [0.0, -0.5, float("nan"), "x"])
def test_bad_alpha_raises(alpha):
    with pytest.raises(ValueError, match="alpha"):
        S.ClippedReLUSTE.apply(tq.randn(3), bits=2, alpha=alpha)


def test_binary_ste_rejects_multibit_and_learned_ste_needs_tensor():
    with pytest.raises(ValueError, match="bits=1"):
        S.HardTanhSTE.apply(tq.randn(3), bits=2)
    with pytest.raises(ValueError, match="learns its clip"):
        S.ste_quantize(tq.randn(3), "pact", bits=2)
    with pytest.raises(ValueError, match="quantizer rule"):
        S.ReLUSTE.apply(tq.randn(3), bits=2, alpha=1.0, quantizer="floor")


def test_ste_quantize_defaults_to_paper_alpha():
    x = tq.Tensor(np.linspace(-1, 3, 50))
    np.testing.assert_array_equal(S.ste_quantize(x, "relu", bits=2).data, quantize_relu(x.data, 2, 0.6511))


def test_plot_ste_draws_quantizer_and_derivative():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinyqnn.quant.plot import plot_ste, ste_curves

    fig = plot_ste("clipped_relu", bits=2, alpha=0.5, x_range=(-1, 3))
    left, right = fig.axes
    x, q, d = ste_curves("clipped_relu", bits=2, alpha=0.5, x_range=(-1, 3))
    np.testing.assert_array_equal(left.lines[0].get_ydata(), quantize_relu(x, 2, 0.5))
    np.testing.assert_array_equal(right.lines[0].get_ydata(), ((x > 0) & (x <= 1.5)).astype(float))
    np.testing.assert_array_equal(q, quantize_relu(x, 2, 0.5))
    plt.close(fig)


# ---------------------------------------------------------------------- bad input (issue 11)
def _all_quantizers():
    """(name, f(x) -> output) for every quantizer a NaN can reach: STEs, QuantAct, weight and affine."""
    from tinyqnn.quant import QuantAct, affine, weight

    out = []
    for name in S.available_stes():
        cls = S.get_ste(name)
        if cls.learnable == "clip":
            out.append((name, lambda x, c=cls: c.apply(tq.Tensor(x), tq.Tensor(np.float64(1.5)), bits=2).data))
        elif cls.learnable == "step":
            out.append((name, lambda x, c=cls: c.apply(tq.Tensor(x), tq.Tensor(np.float64(0.5)), bits=2).data))
        else:
            bits = 1 if cls.binary else 2
            out.append((name, lambda x, c=cls, b=bits: c.apply(tq.Tensor(x), bits=b, alpha=0.6511).data))
    for rule in ("ceil", "round"):
        out.append((f"quantize_relu {rule}", lambda x, r=rule: quantize_relu(x, 2, 0.6511, r)))
        out.append((f"QuantAct {rule}", lambda x, r=rule: QuantAct(2, quantizer=r).double()(tq.Tensor(x)).data))
    for wq in ("symmetric", "binary", "ternary"):
        for pc in (False, True):
            out.append((f"weight {wq} per_channel={pc}",
                        lambda x, q=wq, p=pc: weight.fake_quantize_weight(tq.Tensor(x), q, 4, p).data))
    out.append(("fake_quantize", lambda x: affine.fake_quantize(x, 0.1, 3, bits=8)))
    out.append(("FakeQuantize", lambda x: affine.FakeQuantize.apply(tq.Tensor(x), scale=0.1, zero_point=3).data))
    return out


@settings(max_examples=25, deadline=None)
@given(shape=st.tuples(st.integers(1, 4), st.integers(1, 5)), seed=st.integers(0, 2**16))
def test_nan_into_any_quantizer_comes_out_nan(shape, seed):
    """A NaN used to come out as a finite level (-6e18 after an int64 cast, or -1 from the sign STEs)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * 2
    mask = np.zeros(shape, bool)
    mask[rng.integers(shape[0]), rng.integers(shape[1])] = True
    mask |= rng.random(shape) < 0.2
    x[mask] = np.nan
    for name, f in _all_quantizers():
        y = np.asarray(f(x))
        assert y.shape == x.shape, name
        assert np.isnan(y[mask]).all(), f"{name}: NaN inputs became {y[mask]}"


def test_nan_has_no_integer_code():
    from tinyqnn.quant import affine, level_index

    x = np.array([0.3, np.nan, 1.0])
    with pytest.raises(ValueError, match="NaN"):
        level_index(x, 2, 0.6511)
    with pytest.raises(ValueError, match="1 NaN"):
        affine.quantize(x, 0.1, 0)
    np.testing.assert_array_equal(affine.quantize(np.array([0.3, 1.0]), 0.1, 0), [3, 10])
    for observer in (affine.MinMaxObserver(), affine.MovingAverageMinMaxObserver(), affine.PercentileObserver(),
                     affine.MSEObserver(), affine.MinMaxObserver(axis=0)):
        with pytest.raises(ValueError, match="1 NaN"):
            observer.observe(x)


def test_integer_tensors_are_refused_by_autograd_quantizers():
    """uint8 [0, 1, 2, 3] through an STE came out as [0, 1, 2, 2] (levels truncated to the input dtype),
    and LSQ cast its 0.5 step to int 0 before dividing by it."""
    from tinyqnn.quant import QuantAct, affine, weight

    x = tq.Tensor(np.array([0, 1, 2, 3], dtype=np.uint8))
    calls = [(n, lambda c=S.get_ste(n): c.apply(x, bits=1 if c.binary else 2, alpha=0.6511))
             for n in S.available_stes() if not S.get_ste(n).learnable]
    calls += [
        ("pact", lambda: S.PACTSTE.apply(x, tq.Tensor(np.float32(1.5)), bits=2)),
        ("lsq", lambda: S.LSQSTE.apply(x, tq.Tensor(np.float32(0.5)), bits=2)),
        ("QuantAct", lambda: QuantAct(2)(x)),
        ("QuantAct lsq", lambda: QuantAct(2, ste="lsq")(x)),
        ("QuantAct pact", lambda: QuantAct(2, ste="pact")(x)),
        ("WeightSTE", lambda: weight.WeightSTE.apply(x)),
        ("FakeQuantize", lambda: affine.FakeQuantize.apply(x, scale=0.1, zero_point=0)),
    ]
    for name, call in calls:
        with pytest.raises(TypeError, match="uint8"):
            call()
    # the same values as floats are quantized as they should be
    y = QuantAct(2)(tq.Tensor(np.array([0, 1, 2, 3], dtype=np.float32)))
    np.testing.assert_allclose(y.data, np.float32(0.6511) * np.array([0, 2, 3, 3]), rtol=1e-6)
    lsq = QuantAct(2, ste="lsq")
    lsq.step.data[...] = 0.5
    np.testing.assert_array_equal(lsq(tq.Tensor(np.array([0.2, 0.6, 5.0], np.float32))).data, [0.0, 0.5, 1.5])


def test_numpy_level_quantizers_compute_integers_in_float():
    from tinyqnn.quant import affine, weight

    ints = np.array([0, 1, 2, 3], dtype=np.uint8)
    y = quantize_relu(ints, 2, 0.6511)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, quantize_relu(ints.astype(np.float64), 2, 0.6511))
    np.testing.assert_allclose(y, 0.6511 * np.array([0, 2, 3, 3]))
    w = np.array([[-3, 1], [2, 7]], dtype=np.int64)
    for name in ("symmetric", "binary", "ternary"):
        q = weight.get_weight_quantizer(name)(w, bits=4, per_channel=True)
        assert q.dtype == np.float64, name
        np.testing.assert_array_equal(q, weight.get_weight_quantizer(name)(w.astype(np.float64), 4, True))
    np.testing.assert_allclose(weight.quantize_symmetric(w, 4), w.astype(float))  # step 1: exact
    np.testing.assert_allclose(affine.fake_quantize(ints, 0.5, 0), ints.astype(float))
    np.testing.assert_allclose(S.LSQSTE.quantize(ints, 2, 0.5), [0.0, 1.0, 1.5, 1.5])
