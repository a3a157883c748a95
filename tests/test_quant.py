"""Quantized ReLU, alpha fitting, weight and affine quantizers, observers, quantized modules, conversion."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyqnn as tq
from tinyqnn import nn
from tinyqnn.quant import affine as A
from tinyqnn.quant import alpha as AL
from tinyqnn.quant import weight as W
from tinyqnn.quant.activation import level_index, quantize_relu


def _ceil_reference(x: np.ndarray, bits: int, alpha: float) -> np.ndarray:
    """The paper's piecewise definition, evaluated literally: the smallest k with x <= k*alpha."""
    top = 2**bits - 1
    dtype = x.dtype.type
    levels = np.arange(top + 1).astype(x.dtype) * dtype(alpha)  # 0, alpha, ..., top*alpha in x's dtype
    out = np.full(x.shape, levels[-1])
    for k in range(top, -1, -1):  # loop over levels (at most 16), not over samples
        out = np.where(x <= levels[k], levels[k], out)
    return out


# ---------------------------------------------------------------------- quantized ReLU
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_ceil_rule_levels_and_edges(bits):
    alpha = 0.3
    top = 2**bits - 1
    k = np.arange(1, top + 1)
    at_level = k * alpha
    np.testing.assert_array_equal(quantize_relu(at_level, bits, alpha), at_level)  # x = k alpha -> k alpha
    just_above = np.nextafter(at_level[:-1], np.inf)
    np.testing.assert_allclose(quantize_relu(just_above, bits, alpha), (k[:-1] + 1) * alpha)
    np.testing.assert_array_equal(quantize_relu(np.array([-5.0, -1e-9, 0.0]), bits, alpha), 0.0)
    np.testing.assert_allclose(quantize_relu(np.array([top * alpha + 1, 1e6]), bits, alpha), top * alpha)
    assert quantize_relu(np.array([1e-12]), bits, alpha)[0] == pytest.approx(alpha)


def test_one_bit_ceil_is_binarized_relu():
    x = np.array([-1.0, 0.0, 1e-9, 0.5, 7.0])
    np.testing.assert_array_equal(quantize_relu(x, 1, 1.0), (x > 0).astype(float))


@settings(max_examples=40, deadline=None)
@given(bits=st.integers(1, 5), alpha=st.floats(0.01, 3.0),
       xs=st.lists(st.floats(-10, 40, allow_nan=False), min_size=1, max_size=30))
def test_ceil_rule_matches_literal_definition(bits, alpha, xs):
    x = np.array(xs)
    np.testing.assert_array_equal(quantize_relu(x, bits, alpha), _ceil_reference(x, bits, alpha))


def test_round_rule_nearest_level_half_to_even():
    alpha, bits = 0.5, 2
    x = np.array([-0.3, 0.2, 0.25, 0.26, 0.75, 1.1, 1.25, 9.0])
    # 0.25 = 0.5 level index; rint(0.5) = 0 and rint(2.5) = 2 (half to even)
    np.testing.assert_allclose(quantize_relu(x, bits, alpha, "round"), [0, 0, 0, 0.5, 1.0, 1.0, 1.0, 1.5])
    assert level_index(np.array([0.75]), bits, alpha, "round")[0] == 2  # 1.5 -> 2


def test_quantize_relu_keeps_float32():
    x = np.linspace(-1, 3, 11, dtype=np.float32)
    assert quantize_relu(x, 2, 0.6511).dtype == np.float32
    np.testing.assert_array_equal(quantize_relu(x, 2, 0.6511), _ceil_reference(x, 2, np.float32(0.6511)))


@pytest.mark.parametrize("bad", [0, -2, 2.0, None, True])
def test_bad_bits(bad):
    with pytest.raises(ValueError, match="bits must be an integer >= 1"):
        quantize_relu(np.ones(3), bad, 1.0)


@pytest.mark.parametrize("bad", [0, -0.1, float("inf"), float("nan"), None])
def test_bad_alpha(bad):
    with pytest.raises(ValueError, match="alpha"):
        quantize_relu(np.ones(3), 2, bad)


# ---------------------------------------------------------------------- alpha
@pytest.mark.parametrize("bits,expected", [(1, 1.2240), (2, 0.6508), (4, 0.1932)])
def test_round_rule_optimal_alpha_matches_reference(bits, expected):
    assert AL.optimal_alpha(bits, "round") == pytest.approx(expected, abs=1.5e-4)
    assert AL.lloyd_alpha(bits) == pytest.approx(AL.optimal_alpha(bits, "round"), abs=1e-6)
    # the paper's code values are Lloyd fits of the same problem: within 1% of the optimum
    assert AL.PAPER_ALPHA[bits] == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("bits,expected", [(1, 0.798), (2, 0.487), (4, 0.167)])
def test_ceil_rule_optimal_alpha_matches_reference(bits, expected):
    assert AL.optimal_alpha(bits, "ceil") == pytest.approx(expected, abs=1.5e-3)


@pytest.mark.parametrize("rule", ["ceil", "round"])
def test_exact_mse_agrees_with_sampling(rule):
    x = np.random.default_rng(0).standard_normal(400_000)
    for bits, alpha in [(1, 0.9), (2, 0.6511), (4, 0.2)]:
        err = (quantize_relu(x, bits, alpha, rule) - np.maximum(x, 0)) ** 2
        se = err.std() / np.sqrt(x.size)
        assert abs(err.mean() - AL.quantization_mse(alpha, bits, rule)) < 5 * se


def test_optimal_alpha_is_a_minimum_and_lloyd_on_samples():
    for rule in ("ceil", "round"):
        a = AL.optimal_alpha(2, rule)
        assert AL.quantization_mse(a, 2, rule) <= AL.quantization_mse(np.array([0.98 * a, 1.02 * a]), 2, rule).min()
    data = np.random.default_rng(1).standard_normal(200_000)
    assert AL.lloyd_alpha(2, data) == pytest.approx(AL.optimal_alpha(2, "round"), rel=0.01)


def test_default_alpha():
    assert AL.default_alpha(2) == AL.PAPER_ALPHA[2]
    assert AL.default_alpha(3) == pytest.approx(AL.optimal_alpha(3, "round"))


# ---------------------------------------------------------------------- weight quantizers
@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bits", [2, 4, 8])
def test_symmetric_weight_error_bound_and_levels(bits, per_channel):
    w = np.random.default_rng(bits).normal(size=(6, 3, 3, 3))
    q = W.quantize_symmetric(w, bits, per_channel)
    top = 2 ** (bits - 1) - 1
    peak = np.abs(w).max(axis=(1, 2, 3), keepdims=True) if per_channel else np.abs(w).max()
    scale = peak / top
    assert np.all(np.abs(q - w) <= scale / 2 + 1e-12)
    n = np.rint(q / scale)
    np.testing.assert_allclose(n * scale, q)
    assert np.abs(n).max() <= top
    for row in (q if per_channel else [q]):
        assert len(np.unique(row)) <= 2 * top + 1


def test_symmetric_rejects_one_bit_and_keeps_zero_channel():
    with pytest.raises(ValueError, match="binary"):
        W.quantize_symmetric(np.ones((2, 2)), 1)
    w = np.zeros((2, 3))
    w[1] = [0.5, -1.0, 0.2]
    q = W.quantize_symmetric(w, 4, per_channel=True)
    np.testing.assert_array_equal(q[0], 0.0)


@pytest.mark.parametrize("per_channel", [False, True])
def test_binary_and_ternary_definitions(per_channel):
    w = np.random.default_rng(3).normal(size=(5, 7))
    axes = (1,) if per_channel else None
    b = W.quantize_binary(w, per_channel=per_channel)
    mean_abs = np.abs(w).mean(axis=axes, keepdims=per_channel)
    np.testing.assert_allclose(b, np.where(w >= 0, 1, -1) * mean_abs)
    t = W.quantize_ternary(w, per_channel=per_channel)
    for i, (row, trow) in enumerate(zip(w if per_channel else [w], t if per_channel else [t])):
        delta = 0.7 * np.abs(row).mean()
        keep = np.abs(row) > delta
        np.testing.assert_allclose(trow, np.sign(row) * keep * np.abs(row[keep]).mean())
        assert len(np.unique(trow)) <= 3


def test_weight_ste_passes_gradient_and_unknown_name():
    w = tq.Tensor(np.random.default_rng(0).normal(size=(4, 3)), requires_grad=True)
    up = np.arange(12.0).reshape(4, 3)
    q = W.fake_quantize_weight(w, "ternary")
    np.testing.assert_allclose(q.data, W.quantize_ternary(w.data))
    (q * tq.Tensor(up)).sum().backward()
    np.testing.assert_array_equal(w.grad.data, up)
    with pytest.raises(ValueError, match="symmetric"):
        W.get_weight_quantizer("quinary")


# ---------------------------------------------------------------------- affine
@pytest.mark.parametrize("signed,symmetric", [(False, False), (True, False), (True, True), (False, True)])
def test_affine_round_trip_error_bound(signed, symmetric):
    x = np.random.default_rng(4).normal(1.0, 2.0, size=1000)
    scale, zp = A.calculate_qparams(x.min(), x.max(), 8, signed, symmetric)
    q = A.quantize(x, scale, zp, 8, signed)
    qmin, qmax = A.qrange(8, signed)
    assert q.dtype == np.int64 and q.min() >= qmin and q.max() <= qmax
    back = A.dequantize(q, scale, zp, dtype=np.float64)
    assert np.max(np.abs(back - x)) <= scale / 2 + 1e-12
    assert A.dequantize(A.quantize(np.zeros(1), scale, zp, 8, signed), scale, zp)[0] == 0.0  # zero is exact


def test_affine_rounds_half_to_even_and_clamps():
    q = A.quantize(np.array([0.5, 1.5, 2.5, -0.5, 1000.0, -1000.0]), 1.0, 0, bits=8, signed=True)
    np.testing.assert_array_equal(q, [0, 2, 2, 0, 127, -128])


def test_affine_per_channel():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 6)) * np.array([[0.1], [1.0], [10.0], [100.0]])
    obs = A.MinMaxObserver(bits=4, signed=True, symmetric=True, axis=0)
    obs.observe(x)
    scale, zp = obs.calculate_qparams()
    assert scale.shape == (4,) and np.all(zp == 0)
    back = A.fake_quantize(x, scale, zp, 4, True, axis=0)
    assert np.all(np.abs(back - x) <= scale[:, None] / 2 + 1e-12)
    with pytest.raises(ValueError, match="does not match axis"):
        A.quantize(x, scale, zp, axis=1)


def test_fake_quantize_function_mask():
    x = tq.Tensor(np.array([-3.0, 0.2, 1.0, 4.0]), requires_grad=True)
    y = A.FakeQuantize.apply(x, scale=0.5, zero_point=0, bits=3, signed=False)  # range [0, 3.5]
    np.testing.assert_allclose(y.data, [0.0, 0.0, 1.0, 3.5])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 1.0, 1.0, 0.0])


def test_observers():
    rng = np.random.default_rng(6)
    batches = [rng.normal(size=500) * (i + 1) for i in range(3)]
    mm, ma, pc, ms = A.MinMaxObserver(), A.MovingAverageMinMaxObserver(0.5), A.PercentileObserver(99.0), A.MSEObserver()
    for b in batches:
        for o in (mm, ma, pc, ms):
            o.observe(b)
    allx = np.concatenate(batches)
    assert mm.min_val == allx.min() and mm.max_val == allx.max()
    lo = batches[0].min()
    for b in batches[1:]:
        lo = lo + 0.5 * (b.min() - lo)
    assert ma.min_val == pytest.approx(lo)
    p_lo, p_hi = pc._range()
    assert p_lo == pytest.approx(np.percentile(allx, 1.0)) and p_hi == pytest.approx(np.percentile(allx, 99.0))

    def mse(obs):
        s, z = obs.calculate_qparams()
        return np.mean((A.fake_quantize(allx, s, z, 8) - allx) ** 2)

    assert mse(ms) <= mse(mm) + 1e-15
    with pytest.raises(RuntimeError, match="before any observe"):
        A.MinMaxObserver().calculate_qparams()


def test_sample_observer_subsample_stays_bounded():
    obs = A.PercentileObserver(90.0, max_samples=1000)
    for _ in range(5):
        obs.observe(np.random.default_rng(0).uniform(0, 1, 800))
    assert obs.sample.size == 1000 and obs.seen == 4000
    assert obs._range()[1] == pytest.approx(0.9, abs=0.05)


# ---------------------------------------------------------------------- modules
def test_quant_act_default_and_gradients():
    from tinyqnn.quant import QuantAct, QuantReLU

    assert QuantReLU is QuantAct
    act = QuantAct(2)
    assert act.alpha == AL.PAPER_ALPHA[2] and act.ste.name == "clipped_relu"
    x = tq.Tensor(np.linspace(-1, 3, 21).astype(np.float32), requires_grad=True)
    y = act(x)
    np.testing.assert_array_equal(y.data, quantize_relu(x.data, 2, 0.6511))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, ((x.data > 0) & (x.data <= np.float32(3 * 0.6511))).astype(np.float32))
    assert list(act.state_dict()) == []
    with pytest.raises(ValueError, match="bits=1"):
        QuantAct(2, ste="hardtanh")
    with pytest.raises(ValueError, match="known STEs"):
        QuantAct(2, ste="what")


def test_quant_act_learned_parameters():
    from tinyqnn.quant import QuantAct

    pact, lsq = QuantAct(2, ste="pact"), QuantAct(4, ste="lsq")
    assert [n for n, _ in pact.named_parameters()] == ["clip"] and [n for n, _ in lsq.named_parameters()] == ["step"]
    assert float(pact.clip.data) == pytest.approx(3 * 0.6511) and float(lsq.step.data) == pytest.approx(0.1946)
    x = tq.Tensor(np.linspace(-1, 4, 30).astype(np.float32))
    pact(x).sum().backward()
    assert float(pact.clip.grad.data) == np.sum(x.data >= pact.clip.data)


def _has_functional() -> bool:
    return hasattr(nn.functional, "linear") and hasattr(nn.functional, "conv2d")


@pytest.mark.skipif(not _has_functional(), reason="tinyqnn.nn.functional.linear/conv2d not written yet")
def test_quant_linear_and_conv_forward():
    from tinyqnn.quant import QuantConv2d, QuantLinear

    lin = nn.Linear(5, 3)
    q = QuantLinear.from_float(lin, weight_quantizer="symmetric", weight_bits=4, per_channel=True)
    x = tq.randn(2, 5)
    expect = x.data @ W.quantize_symmetric(lin.weight.data, 4, True).T + lin.bias.data
    np.testing.assert_allclose(q(x).data, expect, rtol=1e-5, atol=1e-6)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    qc = QuantConv2d.from_float(conv, weight_quantizer="binary")
    ref = nn.Conv2d(2, 3, 3, padding=1)
    ref.load_state_dict({"weight": W.quantize_binary(conv.weight.data), "bias": conv.bias.data})
    xi = tq.randn(1, 2, 5, 5)
    np.testing.assert_allclose(qc(xi).data, ref(xi).data, rtol=1e-5, atol=1e-6)
    qc(xi).sum().backward()
    assert qc.weight.grad is not None and qc.weight.grad.shape == conv.weight.shape


def test_quantize_activations_generic_tree():
    from tinyqnn.quant import QuantAct, quantize_activations

    inner = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), inner, nn.Linear(3, 2))
    q = quantize_activations(model, 4, "relu")
    assert isinstance(q[1], QuantAct) and isinstance(q[2][1], QuantAct) and q[1].alpha == AL.PAPER_ALPHA[4]
    assert isinstance(model[1], nn.ReLU) and isinstance(model[2][1], nn.ReLU)  # original untouched
    for (k, a), (k2, b) in zip(model.state_dict().items(), q.state_dict().items()):
        assert k == k2 and np.array_equal(a, b)
    q[0].weight.data[...] = 0
    assert np.any(model[0].weight.data != 0)  # weights copied, not shared
    assert [type(m).__name__ for m in q] == ["Linear", "QuantAct", "Sequential", "Linear"]  # order kept
    q2 = quantize_activations(q, 2, "identity", quantizer="round")
    assert q2[1].ste.name == "identity" and q2[1].bits == 2 and q2[1].quantizer == "round"


def test_quantize_activations_lenet_hook():
    from tinyqnn.models import LeNet5
    from tinyqnn.quant import QuantAct, quantize_activations

    model = LeNet5(batch_norm=True, bn_affine=False)
    q = quantize_activations(model, 2, "clipped_relu")
    for name in LeNet5.activation_names:
        assert isinstance(getattr(q, name), QuantAct) and isinstance(getattr(model, name), nn.ReLU)
    assert not any(isinstance(m, nn.ReLU) for _, m in q.named_modules())
    if _has_functional():
        x = tq.randn(2, 1, 28, 28)
        q.eval()
        assert q(x).shape == (2, 10)


def test_quant_act_alpha_is_the_effective_step_and_config_is_json():
    """``.alpha`` is the step the forward uses (PACT: clip / (2^b - 1), LSQ: the learned step);
    ``quant_config`` holds what is fixed, and rebuilds an equal quantizer."""
    import json

    from tinyqnn.quant import QuantAct

    pact, lsq, fixed = QuantAct(2, ste="pact"), QuantAct(4, ste="lsq"), QuantAct(2, 0.5, quantizer="round")
    pact.clip.data[...] = 0.9
    lsq.step.data[...] = 0.25
    assert pact.alpha == pytest.approx(0.3) and lsq.alpha == 0.25 and fixed.alpha == 0.5
    with pytest.raises(AttributeError, match="clip"):
        pact.alpha = 0.1
    fixed.alpha = 0.7
    assert fixed.alpha == 0.7
    with pytest.raises(ValueError, match="alpha"):
        fixed.alpha = -1.0
    for act in (pact, lsq, fixed, QuantAct(1, ste="swish_sign", beta=2.0)):
        config = json.loads(json.dumps(act.quant_config()))
        assert QuantAct.from_config(config).quant_config() == config
    assert "alpha" not in pact.quant_config() and fixed.quant_config()["quantizer"] == "round"
    with pytest.raises(ValueError, match="JSON"):
        QuantAct(1, ste="swish_sign", beta=np.array([1.0, 2.0]))


@pytest.mark.parametrize("rule", ["ceil", "round"])
def test_quantized_relu_gives_positive_zero_for_negative_inputs(rule):
    """ceil(-0.2) is -0.0 in IEEE arithmetic; level 0 must print and compare as a plain 0."""
    x = np.array([-5.0, -0.3, -1e-9, 0.0], dtype=np.float32)
    y = quantize_relu(x, 2, 0.5, rule)
    assert not np.signbit(y).any(), f"{rule}: {y}"
