"""tinyqnn.nn.functional: linear, activations, softmax family, losses, batch_norm, dropout."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyqnn
import tinyqnn.nn.functional as F
from tinyqnn import Tensor, gradcheck

seeds = st.integers(0, 2**31 - 1)


# ---------------------------------------------------------------- linear and activations
@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.integers(1, 5), st.integers(1, 5), st.booleans(),
       seeds)
def test_linear_forward_and_gradients(batch, fan_in, fan_out, bias, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((*batch, fan_in)), rng.standard_normal((fan_out, fan_in))
    b = rng.standard_normal(fan_out)
    out = F.linear(Tensor(x), Tensor(w), Tensor(b) if bias else None)
    np.testing.assert_allclose(out.data, x @ w.T + (b if bias else 0), rtol=1e-12, atol=1e-12)
    inputs = (x, w, b) if bias else (x, w)
    gradcheck(lambda *t: F.linear(*t), *inputs)


def test_linear_errors_and_dtype(rng):
    w = Tensor(rng.standard_normal((3, 4)).astype(np.float32))
    with pytest.raises(ValueError, match=r"5 input features.*\(3, 4\)"):
        F.linear(Tensor(np.zeros((2, 5), np.float32)), w)
    with pytest.raises(ValueError, match="bias"):
        F.linear(Tensor(np.zeros((2, 4), np.float32)), w, Tensor(np.zeros(4, np.float32)))
    with pytest.raises(ValueError, match="weight"):
        F.linear(Tensor(np.zeros((2, 4), np.float32)), Tensor(np.zeros(4, np.float32)))
    assert F.linear(Tensor(np.ones((2, 4), np.float32)), w, Tensor(np.zeros(3, np.float32))).dtype == np.float32


def test_activations_are_the_engine_ops(rng):
    x = rng.standard_normal((3, 4))
    np.testing.assert_array_equal(F.relu(Tensor(x)).data, np.maximum(x, 0))
    np.testing.assert_allclose(F.leaky_relu(Tensor(x), 0.1).data, np.where(x > 0, x, 0.1 * x))
    np.testing.assert_allclose(F.sigmoid(Tensor(x)).data, 1 / (1 + np.exp(-x)))
    np.testing.assert_allclose(F.tanh(Tensor(x)).data, np.tanh(x))
    assert F.relu is tinyqnn.relu and F.tanh is tinyqnn.tanh


# ---------------------------------------------------------------- softmax / log_softmax
@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), seeds, st.data())
def test_softmax_family_forward_and_gradients(shape, seed, data):
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = np.random.default_rng(seed).standard_normal(shape) * 3
    e = np.exp(x)
    expected = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(F.softmax(Tensor(x), axis).data, expected, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(Tensor(x), axis).data, np.log(expected), rtol=1e-10, atol=1e-12)
    gradcheck(lambda t: F.softmax(t, axis), x)
    gradcheck(lambda t: F.log_softmax(t, axis), x)


def test_softmax_family_stable_for_huge_float32_logits():
    x = Tensor(np.array([[1e4, 0.0, -1e4], [3e4, 3e4, 0.0]], dtype=np.float32), requires_grad=True)
    s, ls = F.softmax(x), F.log_softmax(x)
    assert s.dtype == ls.dtype == np.float32
    np.testing.assert_allclose(s.data, [[1, 0, 0], [0.5, 0.5, 0]], atol=1e-7)
    np.testing.assert_allclose(ls.data, [[0, -1e4, -2e4], [-np.log(2), -np.log(2), -3e4 - np.log(2)]], rtol=1e-6)
    ls.sum().backward()
    assert np.isfinite(x.grad.data).all()


# ---------------------------------------------------------------- cross_entropy
def numpy_cross_entropy(logits, target):
    shifted = logits - logits.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -logp[np.arange(len(target)), target]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 5), st.sampled_from(["mean", "sum", "none"]), seeds)
def test_cross_entropy_forward_and_gradients(n, k, reduction, seed):
    rng = np.random.default_rng(seed)
    logits, target = rng.standard_normal((n, k)) * 2, rng.integers(0, k, n)
    per_sample = numpy_cross_entropy(logits, target)
    expected = {"mean": per_sample.mean(), "sum": per_sample.sum(), "none": per_sample}[reduction]
    np.testing.assert_allclose(F.cross_entropy(Tensor(logits), target, reduction).data, expected, rtol=1e-12)
    gradcheck(lambda t: F.cross_entropy(t, target, reduction), logits)


def test_cross_entropy_gradient_is_softmax_minus_onehot(rng):
    logits, target = rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])
    t = Tensor(logits, requires_grad=True)
    F.cross_entropy(t, Tensor(target)).backward()
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(t.grad.data, (softmax - np.eye(3)[target]) / 4, rtol=1e-12)


def test_cross_entropy_huge_float32_logits_finite_and_correct():
    logits = np.array([[1e4, -1e4, 0.0], [0.0, 1e4, 1e4], [-1e4, -1e4, -1e4]], dtype=np.float32)
    target = np.array([1, 2, 0])
    t = Tensor(logits, requires_grad=True)
    loss = F.cross_entropy(t, target, reduction="none")
    assert loss.dtype == np.float32
    # by hand: 1e4 - (-1e4); log(e^1e4 + e^1e4) - 1e4 = log 2; three equal logits: log 3
    np.testing.assert_allclose(loss.data, [2e4, np.log(2), np.log(3)], rtol=1e-6)
    loss.sum().backward()
    assert np.isfinite(t.grad.data).all()
    np.testing.assert_allclose(t.grad.data, [[1, -1, 0], [0, 0.5, -0.5], [-2 / 3, 1 / 3, 1 / 3]], atol=1e-6)


def test_cross_entropy_errors():
    logits = Tensor(np.zeros((3, 4), np.float32))
    with pytest.raises(ValueError, match="class 4 is out of range for 4 classes"):
        F.cross_entropy(logits, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="class -1"):
        F.cross_entropy(logits, np.array([0, -1, 1]))
    with pytest.raises(ValueError, match=r"target shape \(2,\).*\(3,\)"):
        F.cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer class indices.*float"):
        F.cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\(N, K\)"):
        F.cross_entropy(Tensor(np.zeros(4, np.float32)), np.array([1]))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(logits, np.array([0, 1, 2]), reduction="avg")


# ---------------------------------------------------------------- mse_loss
@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=3), st.sampled_from(["mean", "sum", "none"]), seeds)
def test_mse_loss_forward_and_gradients(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(shape), rng.standard_normal(shape)
    sq = (a - b) ** 2
    expected = {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]
    np.testing.assert_allclose(F.mse_loss(Tensor(a), b, reduction).data, expected, rtol=1e-12)
    gradcheck(lambda x, y: F.mse_loss(x, y, reduction), a, b)


def test_mse_loss_errors_and_dtype():
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(3, 2\)"):
        F.mse_loss(Tensor(np.zeros((2, 3))), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(Tensor(np.zeros(2)), np.zeros(2), reduction="avg")
    assert F.mse_loss(Tensor(np.ones(3, np.float32)), np.zeros(3)).dtype == np.float32


# ---------------------------------------------------------------- batch_norm
def numpy_batch_norm(x, mean, var, weight, bias, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    out = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5, 2)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_training_forward_and_running_stats(shape, affine, rng):
    x = rng.standard_normal(shape) * 2 + 1
    weight, bias = (rng.standard_normal(3), rng.standard_normal(3)) if affine else (None, None)
    running_mean, running_var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    rm0, rv0 = running_mean.copy(), running_var.copy()
    axes = (0,) + tuple(range(2, x.ndim))
    out = F.batch_norm(Tensor(x), running_mean, running_var, None if weight is None else Tensor(weight),
                       None if bias is None else Tensor(bias), training=True, momentum=0.3, eps=1e-3)
    batch_mean, batch_var = x.mean(axis=axes), x.var(axis=axes)  # biased variance normalizes
    np.testing.assert_allclose(out.data, numpy_batch_norm(x, batch_mean, batch_var, weight, bias, 1e-3), rtol=1e-10)
    m = x.size // 3
    np.testing.assert_allclose(running_mean, 0.7 * rm0 + 0.3 * batch_mean, rtol=1e-12)
    np.testing.assert_allclose(running_var, 0.7 * rv0 + 0.3 * batch_var * m / (m - 1), rtol=1e-12)
    if not affine:  # scale-free BN: zero mean, unit (biased) variance per channel
        np.testing.assert_allclose(out.data.mean(axis=axes), 0, atol=1e-10)
        np.testing.assert_allclose(out.data.var(axis=axes), batch_var / (batch_var + 1e-3), rtol=1e-10)


def test_batch_norm_eval_uses_running_stats_and_leaves_them(rng):
    x = rng.standard_normal((5, 2, 3, 3))
    rm, rv = np.array([0.5, -1.0]), np.array([2.0, 0.25])
    w, b = np.array([1.5, -0.5]), np.array([0.1, 0.2])
    out = F.batch_norm(Tensor(x), rm, rv, Tensor(w), Tensor(b), training=False)
    np.testing.assert_allclose(out.data, numpy_batch_norm(x, rm, rv, w, b, 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(rm, [0.5, -1.0])
    np.testing.assert_array_equal(rv, [2.0, 0.25])


def test_batch_norm_float32_running_stats_with_float64_input_keep_dtypes(rng):
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    out = F.batch_norm(Tensor(rng.standard_normal((4, 3)).astype(np.float32)), rm, rv, training=True)
    assert out.dtype == np.float32 and rm.dtype == rv.dtype == np.float32
    out = F.batch_norm(Tensor(rng.standard_normal((4, 3))), rm, rv, training=False)
    assert out.dtype == np.float64


def test_batch_norm_without_tracking_in_training(rng):
    x = rng.standard_normal((6, 2))
    out = F.batch_norm(Tensor(x), None, None, training=True)
    np.testing.assert_allclose(out.data, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-10)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 4), st.integers(1, 3), st.sampled_from([(), (2, 3), (1, 1)]), st.booleans(), st.booleans(),
       seeds)
def test_batch_norm_gradients(n, c, spatial, training, affine, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, *spatial))
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)

    def bn(t, *wb):
        # fresh copies: the running stats must not drift while gradcheck re-evaluates
        return F.batch_norm(t, rm.copy(), rv.copy(), *wb, training=training, momentum=0.1)

    inputs = (x, rng.standard_normal(c), rng.standard_normal(c)) if affine else (x,)
    gradcheck(bn, *inputs)


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 4), st.integers(1, 3), st.booleans(), st.sampled_from(["weight", "bias"]), seeds)
def test_batch_norm_gradients_with_weight_or_bias_alone(n, c, training, which, seed):
    # eval mode folds the mean into the shift and training mode saves only x - mean: both must
    # still be right when just one of weight / bias is given
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, 2, 2))
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)

    def bn(t, p):
        wb = (p, None) if which == "weight" else (None, p)
        return F.batch_norm(t, rm.copy(), rv.copy(), *wb, training=training)

    gradcheck(bn, x, rng.standard_normal(c))


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_float32_gradients_match_float64(training, rng):
    # the float32 path reorders the arithmetic (x - mean kept, xhat never formed); it must stay accurate
    x = rng.standard_normal((16, 4, 5, 5)) + 300  # far from 0: E[x^2] - mean^2 would cancel in float32
    w, b, g = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal((16, 4, 5, 5))
    results = []
    for dtype in (np.float64, np.float32):
        ts = [Tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b)]
        out = F.batch_norm(ts[0], np.zeros(4, dtype), np.full(4, 2.0, dtype), ts[1], ts[2], training=training)
        out.backward(g.astype(dtype))
        results.append([out.data] + [t.grad.data for t in ts])
    for r64, r32 in zip(*results):
        np.testing.assert_allclose(r32, r64, rtol=1e-3, atol=1e-4 * np.abs(r64).max())


def test_batch_norm_errors(rng):
    x = Tensor(rng.standard_normal((4, 3)))
    with pytest.raises(ValueError, match="eval mode.*running_mean"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match=r"running_mean must have shape \(3,\)"):
        F.batch_norm(x, np.zeros(2), np.ones(2), training=True)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        F.batch_norm(x, None, None, Tensor(np.ones(4)), training=True)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(Tensor(rng.standard_normal((1, 3))), None, None, training=True)
    with pytest.raises(ValueError, match="both"):
        F.batch_norm(x, np.zeros(3), None, training=True)
    with pytest.raises(TypeError, match="NumPy array"):
        F.batch_norm(x, Tensor(np.zeros(3)), Tensor(np.ones(3)), training=True)


# ---------------------------------------------------------------- dropout
def test_dropout_statistics_and_scaling():
    tinyqnn.manual_seed(0)
    x = Tensor(np.ones((200, 500), np.float32), requires_grad=True)
    out = F.dropout(x, p=0.3)
    assert out.dtype == np.float32
    dropped = out.data == 0
    # 100000 Bernoulli(0.3) draws: the fraction is within 5 standard deviations (0.0072) of 0.3
    assert abs(dropped.mean() - 0.3) < 0.0075
    np.testing.assert_allclose(out.data[~dropped], 1 / 0.7, rtol=1e-6)
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, out.data)  # d out / d x = the scaled mask


def test_dropout_deterministic_under_manual_seed(rng):
    x = Tensor(rng.standard_normal((10, 10)))
    tinyqnn.manual_seed(42)
    a = F.dropout(x, 0.5).data
    b = F.dropout(x, 0.5).data
    tinyqnn.manual_seed(42)
    np.testing.assert_array_equal(F.dropout(x, 0.5).data, a)
    assert not np.array_equal(a, b)


def test_dropout_identity_when_not_training_or_p_zero(rng):
    x = Tensor(rng.standard_normal((4, 4)))
    np.testing.assert_array_equal(F.dropout(x, 0.5, training=False).data, x.data)
    np.testing.assert_array_equal(F.dropout(x, 0.0).data, x.data)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        F.dropout(Tensor(np.ones(3)), p)


def test_dropout_gradient(rng):
    x = rng.standard_normal((3, 4))

    def fixed_mask_dropout(t):
        tinyqnn.manual_seed(7)  # the same mask at every gradcheck evaluation
        return F.dropout(t, 0.4)

    gradcheck(fixed_mask_dropout, x)


# ---------------------------------------------------------------- optional cross-check with PyTorch
def test_batch_norm_and_cross_entropy_against_torch(rng):
    torch = pytest.importorskip("torch")
    x, w, b = rng.standard_normal((6, 3, 4, 4)), rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = np.zeros(3), np.ones(3)
    trm, trv = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ours = [Tensor(a, requires_grad=True) for a in (x, w, b)]
    out_t = torch.nn.functional.batch_norm(tx, trm, trv, tw, tb, training=True, momentum=0.2)
    out_o = F.batch_norm(ours[0], rm, rv, ours[1], ours[2], training=True, momentum=0.2)
    g = rng.standard_normal(x.shape)
    out_t.backward(torch.tensor(g))
    out_o.backward(g)
    np.testing.assert_allclose(out_o.data, out_t.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12)
    for o, t in zip(ours, (tx, tw, tb)):
        np.testing.assert_allclose(o.grad.data, t.grad.numpy(), rtol=1e-8, atol=1e-10)
    logits, target = rng.standard_normal((5, 4)), rng.integers(0, 4, 5)
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(target)).item()
    np.testing.assert_allclose(F.cross_entropy(Tensor(logits), target).item(), expected, rtol=1e-12)


# ---------------------------------------------------------------- batch norm with the fused shortcut and ReLU
@st.composite
def fused_bn_cases(draw):
    n, c = draw(st.integers(2, 3)), draw(st.integers(1, 4))
    h, w = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    stride = draw(st.integers(1, 2))
    cr = draw(st.integers(1, c))
    residual = None if draw(st.booleans()) else (n, cr, (h - 1) * stride + 1 + draw(st.integers(0, stride - 1)),
                                                    (w - 1) * stride + 1 + draw(st.integers(0, stride - 1)))
    return (n, c, h, w), residual, stride, draw(st.booleans()), draw(st.booleans()), draw(st.booleans())


def _reference_fused(x, residual, stride, relu, bn):
    """relu(bn(x) + option-A shortcut(residual)) from separate ops: slicing, zero channels, add, relu."""
    out = bn(x)
    if residual is not None:
        r = residual[:, :, ::stride, ::stride]
        extra = x.shape[1] - r.shape[1]
        out = out + tinyqnn.pad(r, ((0, 0), (extra // 2, extra - extra // 2), (0, 0), (0, 0)))
    return out.relu() if relu else out


@settings(max_examples=40, deadline=None)
@given(fused_bn_cases(), seeds)
def test_batch_norm_fused_shortcut_and_relu_gradients(case, seed):
    """The fused relu(bn(x) + shortcut(r)): every input's gradient against float64 central differences, and
    values and gradients equal to the same computation from separate ops."""
    xs, rs, stride, relu, training, affine = case
    rng = np.random.default_rng(seed)
    c = xs[1]
    rm, rv = rng.standard_normal(c), rng.uniform(0.5, 2, c)
    inputs = [rng.standard_normal(xs)] + ([rng.standard_normal(rs)] if rs else []) + (
        [rng.standard_normal(c), rng.standard_normal(c)] if affine else [])

    def fused(x, *rest):
        r, wb = (rest[0], rest[1:]) if rs else (None, rest)
        return F.batch_norm(x, rm.copy(), rv.copy(), *wb, training=training, residual=r, stride=stride, relu=relu)

    gradcheck(fused, *inputs)
    ts = [Tensor(a, requires_grad=True) for a in inputs]
    tr = [Tensor(a, requires_grad=True) for a in inputs]
    g = rng.standard_normal(xs)
    out = fused(*ts)
    out.backward(g)
    r, wb = (tr[1], tr[2:]) if rs else (None, tr[1:])
    ref = _reference_fused(tr[0], r, stride,
                           relu, lambda t: F.batch_norm(t, rm.copy(), rv.copy(), *wb, training=training))
    ref.backward(g)
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-10, atol=1e-12)
    for a, b in zip(ts, tr):
        np.testing.assert_allclose(a.grad.data, b.grad.data, rtol=1e-9, atol=1e-12)


def test_batch_norm_residual_shape_errors(rng):
    x = Tensor(rng.standard_normal((2, 4, 3, 3)))
    with pytest.raises(ValueError, match=r"residual of shape \(2, 5, 3, 3\)"):
        F.batch_norm(x, None, None, training=True, residual=Tensor(rng.standard_normal((2, 5, 3, 3))))
    with pytest.raises(ValueError, match="stride 1"):
        F.batch_norm(x, None, None, training=True, residual=Tensor(rng.standard_normal((2, 4, 6, 6))))


@pytest.mark.parametrize("dot_min_length, block_bytes", [(1, 1), (10**9, 1), (1, 10**9), (10**9, 10**9)])
def test_batch_norm_channel_sums_by_blas_dots_and_by_einsum(dot_min_length, block_bytes, rng, monkeypatch):
    """Both ways of summing a * b per channel (BLAS dot products per row, einsum) agree with a float64 sum,
    and the fused batch norm's gradients through either stay right (central differences), in blocks of
    one sample or of the whole batch."""
    import tinyqnn.nn.ops.normalization as bn_ops

    monkeypatch.setattr(bn_ops, "DOT_MIN_LENGTH", dot_min_length)
    monkeypatch.setattr(bn_ops, "BLOCK_BYTES", block_bytes)
    a, b = rng.standard_normal((3, 4, 300)).astype(np.float32), rng.standard_normal((3, 4, 300)).astype(np.float32)
    expected = (a.astype(np.float64) * b).sum(axis=(0, 2))
    np.testing.assert_allclose(bn_ops.channel_sum(a, b), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(bn_ops.channel_sum(a), a.astype(np.float64).sum(axis=(0, 2)), rtol=1e-4, atol=1e-4)
    x, r = rng.standard_normal((3, 2, 4, 5)), rng.standard_normal((3, 2, 4, 5))
    wb = rng.standard_normal(2), rng.standard_normal(2)
    assert gradcheck(lambda x, r, w, b: F.batch_norm(x, None, None, w, b, training=True, residual=r, relu=True),
                     x, r, *wb)
