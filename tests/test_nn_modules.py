"""nn.Module machinery, the layer modules and nn.init."""
from __future__ import annotations

import copy
import math
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyqnn as tq
from tinyqnn import nn
from tinyqnn.nn import init


class Net(nn.Module):
    """Conv features + linear classifier: x (N, 2, 6, 6) -> (N, 3)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2))
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(4 * 3 * 3, 3)

    def forward(self, x):
        return self.classifier(self.flatten(self.features(x)))


def randn(*shape, dtype=np.float32, seed=0):
    return tq.Tensor(np.random.default_rng(seed).standard_normal(shape).astype(dtype))


# ---------------------------------------------------------------------- Parameter & registration
def test_parameter_is_a_trainable_tensor():
    p = nn.Parameter(np.zeros((2, 3), dtype=np.float64))
    assert isinstance(p, tq.Tensor) and p.requires_grad and p.is_leaf and p.dtype == np.float64
    assert nn.Parameter([1.0, 2.0]).dtype == np.float32
    assert not nn.Parameter(np.zeros(2), requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing")


def test_named_parameters_buffers_and_modules_use_dotted_names_in_order():
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [
        "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "classifier.weight", "classifier.bias",
    ]
    assert [n for n, _ in net.named_buffers()] == [
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
    ]
    assert [n for n, _ in net.named_modules()] == [
        "", "features", "features.0", "features.1", "features.2", "features.3", "flatten", "classifier",
    ]
    assert [n for n, _ in net.named_children()] == ["features", "flatten", "classifier"]
    assert list(net.children())[0] is net.features
    assert len(list(net.modules())) == 8
    assert [n for n, _ in net.named_parameters(recurse=False)] == []
    assert list(net.state_dict()) == [
        "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias",
        "features.1.running_mean", "features.1.running_var", "features.1.num_batches_tracked",
        "classifier.weight", "classifier.bias",
    ]
    assert net.features[0].weight is net.features._modules["0"]._parameters["weight"]


def test_num_parameters_and_shared_parameters_counted_once():
    lin = nn.Linear(3, 4)
    assert lin.num_parameters() == 3 * 4 + 4
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(model.parameters())) == 2 and model.num_parameters() == 16
    lin.bias.requires_grad_(False)
    assert lin.num_parameters(trainable_only=True) == 12


def test_setattr_rules():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.zeros(2))

    with pytest.raises(AttributeError, match="super"):
        Bad()

    lin = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="Parameter"):
        lin.weight = tq.Tensor(np.zeros((2, 2), dtype=np.float32))
    lin.bias = None  # allowed: an absent bias
    assert [n for n, _ in lin.named_parameters()] == ["weight"] and "bias" not in lin.state_dict()
    lin.extra = nn.Parameter(np.zeros(1))  # new parameters register in assignment order
    assert [n for n, _ in lin.named_parameters()] == ["weight", "extra"]
    del lin.extra
    assert not hasattr(lin, "extra")

    model = nn.Sequential(nn.ReLU())
    model.head = nn.Linear(1, 1)
    model.head = nn.Tanh()  # replacing a sub-module drops the old one's parameters
    assert list(model.parameters()) == []
    with pytest.raises(TypeError, match="buffer"):
        nn.BatchNorm1d(2).running_mean = [0.0, 0.0]
    with pytest.raises(KeyError):
        model.register_buffer("a.b", np.zeros(1))


def test_register_buffer_non_persistent_and_buffers():
    m = nn.Module()
    m.register_buffer("kept", np.arange(3.0))
    m.register_buffer("scratch", np.ones(2), persistent=False)
    assert list(m.state_dict()) == ["kept"]
    assert [n for n, _ in m.named_buffers()] == ["kept", "scratch"]
    assert m.kept is m._buffers["kept"]
    m.kept = np.zeros(3)  # reassigning a buffer keeps it a buffer
    np.testing.assert_array_equal(m.state_dict()["kept"], np.zeros(3))


def test_repr_is_a_tree():
    text = repr(Net())
    assert text.startswith("Net(\n  (features): Sequential(\n    (0): Conv2d(2, 4, kernel_size=(3, 3)")
    assert "    (1): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)" in text
    assert "  (classifier): Linear(in_features=36, out_features=3, bias=True)\n)" in text
    assert repr(nn.ReLU()) == "ReLU()"
    assert repr(nn.Dropout(0.25)) == "Dropout(p=0.25)"


def test_train_eval_is_recursive():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())


def test_zero_grad_sets_none():
    net = Net()
    net(randn(2, 2, 6, 6)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_deepcopy_is_independent():
    net = Net()
    clone = copy.deepcopy(net)
    clone.classifier.weight.data[...] = 0.0
    clone.features[1].running_mean[...] = 5.0
    assert not np.all(net.classifier.weight.data == 0.0)
    assert np.all(net.features[1].running_mean == 0.0)
    assert [n for n, _ in clone.named_parameters()] == [n for n, _ in net.named_parameters()]


def test_forward_hook_sees_and_can_replace_output():
    seen = []
    relu = nn.ReLU()
    handle = relu.register_forward_hook(lambda m, inputs, out: seen.append(out.data.copy()))
    model = nn.Sequential(nn.Identity(), relu)
    model(tq.tensor([-1.0, 2.0]))
    np.testing.assert_array_equal(seen[0], [0.0, 2.0])
    handle.remove()
    model(tq.tensor([3.0]))
    assert len(seen) == 1
    relu.register_forward_hook(lambda m, inputs, out: out * 2)
    np.testing.assert_array_equal(model(tq.tensor([3.0])).data, [6.0])


def test_module_to_float64_converts_parameters_and_float_buffers():
    net = Net().to(np.float64)
    assert all(p.dtype == np.float64 for p in net.parameters())
    bn = net.features[1]
    assert bn.running_mean.dtype == np.float64 and bn.num_batches_tracked.dtype == np.int64
    assert net(randn(2, 2, 6, 6, dtype=np.float64)).dtype == np.float64


# ---------------------------------------------------------------------- state dict
def test_state_dict_returns_copies():
    net = Net()
    state = net.state_dict()
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["classifier.weight"][...] = 7.0
    state["features.1.running_var"][...] = 7.0
    assert not np.any(net.classifier.weight.data == 7.0)
    assert not np.any(net.features[1].running_var == 7.0)


def test_load_state_dict_round_trip_through_npz_gives_identical_outputs(tmp_path):
    tq.manual_seed(0)
    trained = Net()
    for seed in range(3):  # move the running statistics away from their initial values
        trained(randn(4, 2, 6, 6, seed=seed))
    trained.eval()
    np.savez(tmp_path / "model.npz", **trained.state_dict())

    tq.manual_seed(1)
    fresh = Net().eval()
    x = randn(3, 2, 6, 6, seed=9)
    assert not np.allclose(fresh(x).data, trained(x).data)
    params_before = [p.data for p in fresh.parameters()]
    result = fresh.load_state_dict(dict(np.load(tmp_path / "model.npz", allow_pickle=False)))
    assert result.missing_keys == [] and result.unexpected_keys == []
    np.testing.assert_array_equal(fresh(x).data, trained(x).data)
    assert all(a is p.data for a, p in zip(params_before, fresh.parameters()))  # loaded in place
    assert int(fresh.features[1].num_batches_tracked) == 3


def test_load_state_dict_strict_errors_name_the_keys():
    net = Net()
    state = net.state_dict()
    del state["classifier.bias"]
    state["classifier.gamma"] = np.zeros(3, dtype=np.float32)
    with pytest.raises(KeyError) as info:
        Net().load_state_dict(state)
    message = str(info.value)
    assert "missing keys: classifier.bias" in message and "unexpected keys: classifier.gamma" in message

    target = Net()
    result = target.load_state_dict(state, strict=False)
    assert result.missing_keys == ["classifier.bias"] and result.unexpected_keys == ["classifier.gamma"]
    np.testing.assert_array_equal(target.classifier.weight.data, net.classifier.weight.data)


def test_load_state_dict_shape_mismatch_names_key_and_shapes_and_changes_nothing():
    state = Net().state_dict()
    state["features.0.weight"] = np.zeros((4, 2, 5, 5), dtype=np.float32)
    target = Net()
    before = target.state_dict()
    for strict in (True, False):
        with pytest.raises(ValueError, match=r"features\.0\.weight: expected \(4, 2, 3, 3\), got \(4, 2, 5, 5\)"):
            target.load_state_dict(state, strict=strict)
    for key, value in target.state_dict().items():  # nothing loaded, not even the matching entries
        np.testing.assert_array_equal(value, before[key])


def test_load_state_dict_casts_to_the_parameter_dtype():
    lin = nn.Linear(2, 3)
    state = {k: v.astype(np.float64) + 0.5 for k, v in lin.state_dict().items()}
    lin.load_state_dict(state)
    assert lin.weight.dtype == np.float32
    np.testing.assert_allclose(lin.weight.data, state["weight"], rtol=1e-6)
    bn = nn.BatchNorm1d(2)
    bn.load_state_dict({**bn.state_dict(), "num_batches_tracked": np.array(7.0)})
    assert bn.num_batches_tracked.dtype == np.int64 and int(bn.num_batches_tracked) == 7


# ---------------------------------------------------------------------- containers and shape modules
def test_sequential_indexing_and_mutation():
    a, b, c = nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)
    seq = nn.Sequential(a, b)
    assert len(seq) == 2 and seq[0] is a and seq[-1] is b and list(seq) == [a, b]
    seq.append(c)
    assert len(seq) == 3 and seq[2] is c and [n for n, _ in seq.named_parameters()][-1] == "2.bias"
    head = seq[1:]
    assert isinstance(head, nn.Sequential) and list(head) == [b, c]
    seq[1] = nn.Tanh()
    assert isinstance(seq[1], nn.Tanh) and list(seq._modules) == ["0", "1", "2"]
    with pytest.raises(IndexError, match="out of range"):
        seq[3]
    with pytest.raises(TypeError):
        nn.Sequential(nn.ReLU(), "relu")
    named = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.ReLU()))
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]
    x = randn(4, 2)
    np.testing.assert_allclose(seq(x).data, c(tq.tanh(a(x))).data)


def test_module_list_registers_parameters():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    assert len(layers) == 3 and len(list(layers.parameters())) == 6


def test_flatten_and_identity_shapes():
    x = randn(2, 3, 4, 5)
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(start_dim=2)(x).shape == (2, 3, 20)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    assert nn.Identity(54, unused=1)(x) is x


# ---------------------------------------------------------------------- layers
@given(batch=st.integers(1, 4), fin=st.integers(1, 6), fout=st.integers(1, 6), bias=st.booleans())
@settings(max_examples=25, deadline=None)
def test_linear_forward_matches_numpy(batch, fin, fout, bias):
    lin = nn.Linear(fin, fout, bias=bias)
    x = randn(batch, fin, seed=batch)
    expected = x.data @ lin.weight.data.T + (lin.bias.data if bias else 0)
    out = lin(x)
    assert out.shape == (batch, fout) and out.dtype == np.float32
    np.testing.assert_allclose(out.data, expected, rtol=1e-5, atol=1e-6)


def test_input_size_mismatch_errors_name_both_sizes():
    with pytest.raises(ValueError, match=r"in_channels=3.*1 channels"):
        nn.Conv2d(3, 4, 3)(randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        nn.Conv2d(3, 4, 3)(randn(3, 8, 8))
    with pytest.raises(ValueError, match=r"in_features=5.*\(2, 4\)"):
        nn.Linear(5, 2)(randn(2, 4))
    with pytest.raises(ValueError, match=r"num_features=3.*has 2"):
        nn.BatchNorm2d(3)(randn(4, 2, 5, 5))
    with pytest.raises(ValueError, match=r"\(N, C\) or \(N, C, L\)"):
        nn.BatchNorm1d(3)(randn(4, 3, 5, 5))


def test_conv2d_output_shape_and_bias_free_repr():
    conv = nn.Conv2d(3, 5, (3, 2), stride=2, padding=1, bias=False)
    assert conv.weight.shape == (5, 3, 3, 2) and conv.bias is None
    assert conv(randn(2, 3, 7, 6)).shape == (2, 5, (7 + 2 - 3) // 2 + 1, (6 + 2 - 2) // 2 + 1)
    assert repr(conv) == "Conv2d(3, 5, kernel_size=(3, 2), stride=(2, 2), padding=(1, 1), bias=False)"


def test_pooling_modules():
    x = randn(2, 3, 6, 6)
    windows = x.data.reshape(2, 3, 3, 2, 3, 2)
    np.testing.assert_allclose(nn.MaxPool2d(2)(x).data, windows.max(axis=(3, 5)))
    np.testing.assert_allclose(nn.AvgPool2d(2)(x).data, windows.mean(axis=(3, 5)), rtol=1e-6)
    assert nn.MaxPool2d(3, stride=1)(x).shape == (2, 3, 4, 4)


def test_activation_modules_match_numpy():
    x = randn(3, 4)
    np.testing.assert_allclose(nn.ReLU()(x).data, np.maximum(x.data, 0))
    np.testing.assert_allclose(nn.LeakyReLU(0.2)(x).data, np.where(x.data > 0, x.data, 0.2 * x.data), rtol=1e-6)
    np.testing.assert_allclose(nn.Tanh()(x).data, np.tanh(x.data), rtol=1e-6)
    np.testing.assert_allclose(nn.Sigmoid()(x).data, 1 / (1 + np.exp(-x.data)), rtol=1e-6)


def test_dropout_train_and_eval():
    x = tq.ones(200, 50)
    drop = nn.Dropout(0.3)
    tq.manual_seed(5)
    y = drop(x).data
    kept = y != 0
    assert 0.25 < 1 - kept.mean() < 0.35
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    tq.manual_seed(5)
    np.testing.assert_array_equal(drop(x).data, y)  # repeatable under manual_seed
    drop.eval()
    np.testing.assert_array_equal(drop(x).data, x.data)
    with pytest.raises(ValueError, match="p=1.5"):
        nn.Dropout(1.5)


def _bn_reference(x, mean, var, eps, weight=None, bias=None):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    if weight is not None:
        y = y * weight.reshape(shape) + bias.reshape(shape)
    return y


@pytest.mark.parametrize("shape", [(8, 3), (8, 3, 5), (4, 3, 5, 6)])
def test_batchnorm_train_then_eval(shape):
    bn = (nn.BatchNorm2d if len(shape) == 4 else nn.BatchNorm1d)(3, momentum=0.2)
    bn.weight.data[...] = [1.0, 2.0, 0.5]
    bn.bias.data[...] = [0.0, -1.0, 3.0]
    axes = tuple(i for i in range(len(shape)) if i != 1)
    x = randn(*shape, dtype=np.float64).to(np.float32)
    xd = x.data.astype(np.float64)
    mean, var = xd.mean(axis=axes), xd.var(axis=axes)
    n = xd.size // 3

    y = bn(x)
    np.testing.assert_allclose(y.data, _bn_reference(xd, mean, var, 1e-5, bn.weight.data, bn.bias.data), atol=1e-5)
    np.testing.assert_allclose(bn.running_mean, 0.8 * 0 + 0.2 * mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bn.running_var, 0.8 * 1 + 0.2 * var * n / (n - 1), rtol=1e-5)  # unbiased
    assert int(bn.num_batches_tracked) == 1

    bn.eval()
    x2 = randn(*shape, seed=1)
    expected = _bn_reference(x2.data, bn.running_mean, bn.running_var, 1e-5, bn.weight.data, bn.bias.data)
    running_before = bn.running_mean.copy()
    np.testing.assert_allclose(bn(x2).data, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(bn.running_mean, running_before)  # eval does not update
    assert int(bn.num_batches_tracked) == 1


def test_batchnorm_scale_free_and_without_running_stats():
    bn = nn.BatchNorm2d(3, affine=False)
    assert list(bn.parameters()) == [] and bn.weight is None
    assert list(bn.state_dict()) == ["running_mean", "running_var", "num_batches_tracked"]
    x = randn(4, 3, 2, 2)
    y = bn(x).data
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)

    free = nn.BatchNorm1d(3, track_running_stats=False).eval()
    assert free.running_mean is None and list(free.state_dict()) == ["weight", "bias"]
    z = free(randn(6, 3)).data  # eval still normalises with the batch's own statistics
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)


def test_batchnorm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None)
    batches = [randn(5, 2, seed=s) for s in range(3)]
    for b in batches:
        bn(b)
    expected = np.mean([b.data.mean(axis=0) for b in batches], axis=0)  # (0*... ) then 1/1, 1/2, 1/3 weights
    np.testing.assert_allclose(bn.running_mean, expected, rtol=1e-5, atol=1e-6)


def test_loss_modules():
    logits, target = randn(4, 3), np.array([0, 2, 1, 2])
    z = logits.data - logits.data.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    assert nn.CrossEntropyLoss()(logits, target).item() == pytest.approx(-log_p[np.arange(4), target].mean(), rel=1e-5)
    a, b = randn(3, 2), randn(3, 2, seed=1)
    assert nn.MSELoss(reduction="sum")(a, b).item() == pytest.approx(((a.data - b.data) ** 2).sum(), rel=1e-5)


# ---------------------------------------------------------------------- gradients flow through every layer
def _gradcheck_module(model: nn.Module, x: tq.Tensor, seed: int | None = None) -> None:
    """gradcheck d(model(x))/d(x and every parameter): the checked copies are swapped into the model."""
    named = list(model.named_parameters())
    owners = dict(model.named_modules())

    def fn(x, *params):
        saved = []
        for (name, _), p in zip(named, params):
            module_name, _, leaf = name.rpartition(".")
            owner = owners[module_name]
            saved.append((owner, leaf, owner._parameters[leaf]))
            owner._parameters[leaf] = p
        try:
            if seed is not None:  # same dropout mask in every evaluation
                tq.manual_seed(seed)
            return model(x)
        finally:
            for owner, leaf, original in saved:
                owner._parameters[leaf] = original

    tq.gradcheck(fn, x, *[p for _, p in named], atol=1e-6, rtol=1e-4)


def test_gradcheck_conv_sequential_float64():
    tq.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.LeakyReLU(0.1), nn.MaxPool2d(2),
        nn.Conv2d(3, 2, 2, stride=1, bias=True), nn.BatchNorm2d(2, affine=False), nn.Tanh(), nn.AvgPool2d(1),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(2 * 1 * 1, 3), nn.Sigmoid(),
    ).to(np.float64)
    x = tq.Tensor(np.random.default_rng(1).standard_normal((3, 2, 4, 4)))
    _gradcheck_module(model, x, seed=7)
    model.eval()
    _gradcheck_module(model, x)


def test_gradcheck_mlp_with_batchnorm1d_float64():
    tq.manual_seed(1)
    model = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2)).to(np.float64)
    x = tq.Tensor(np.random.default_rng(2).standard_normal((6, 4)))
    _gradcheck_module(model, x)


def test_every_parameter_receives_a_float32_gradient():
    net = Net()
    net(randn(2, 2, 6, 6)).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.shape == p.shape and p.grad.dtype == np.float32, name
        assert np.any(p.grad.data != 0), name


# ---------------------------------------------------------------------- initialisation
@pytest.mark.parametrize("layer, fan_in", [(lambda: nn.Linear(50, 400), 50), (lambda: nn.Conv2d(6, 64, 5), 150)])
def test_default_init_is_pytorch_kaiming_uniform(layer, fan_in):
    tq.manual_seed(0)
    m = layer()
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform(a=sqrt(5)): sqrt(2/(1+5)) * sqrt(3/fan_in)
    w = m.weight.data
    assert w.dtype == np.float32 and np.all(np.abs(w) <= bound)
    assert np.abs(w).max() > 0.98 * bound  # fills the interval...
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.05)  # ...uniformly
    assert abs(w.mean()) < 0.05 * bound
    assert np.all(np.abs(m.bias.data) <= bound) and np.abs(m.bias.data).max() > 0.5 * bound


def test_init_is_repeatable_under_manual_seed():
    tq.manual_seed(42)
    a = Net().state_dict()
    tq.manual_seed(42)
    b = Net().state_dict()
    tq.manual_seed(43)
    c = Net().state_dict()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["classifier.weight"], c["classifier.weight"])


def test_fan_in_and_fan_out_and_gain():
    assert init.fan_in_and_fan_out(tq.zeros(7, 3)) == (3, 7)
    assert init.fan_in_and_fan_out(tq.zeros(16, 6, 5, 5)) == (150, 400)
    with pytest.raises(ValueError, match=r"\(4,\)"):
        init.fan_in_and_fan_out(tq.zeros(4))
    assert init.calculate_gain("linear") == 1.0 and init.calculate_gain("conv2d") == 1.0
    assert init.calculate_gain("sigmoid") == 1.0
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_functions_statistics_in_place_and_dtype(dtype):
    p = nn.Parameter(np.zeros((200, 300), dtype=dtype))
    array = p.data
    fan_in, fan_out = 300, 200

    init.kaiming_uniform_(p, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / fan_in)
    assert p.data is array and p.dtype == dtype
    assert np.abs(p.data).max() <= bound and p.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.02)

    init.kaiming_normal_(p, mode="fan_out", nonlinearity="relu")
    assert p.data.std() == pytest.approx(math.sqrt(2) / math.sqrt(fan_out), rel=0.02)

    init.xavier_uniform_(p, gain=2.0)
    bound = 2.0 * math.sqrt(6 / (fan_in + fan_out))
    assert np.abs(p.data).max() <= bound and np.abs(p.data).max() > 0.99 * bound

    init.xavier_normal_(p)
    assert p.data.std() == pytest.approx(math.sqrt(2 / (fan_in + fan_out)), rel=0.02)

    init.normal_(p, mean=3.0, std=0.5)
    assert p.data.mean() == pytest.approx(3.0, abs=0.01) and p.data.std() == pytest.approx(0.5, rel=0.02)
    init.uniform_(p, -2.0, -1.0)
    assert p.data.min() >= -2.0 and p.data.max() <= -1.0
    init.constant_(p, 0.25)
    assert np.all(p.data == 0.25)
    init.ones_(p)
    assert np.all(p.data == 1.0)
    init.zeros_(p)
    assert np.all(p.data == 0.0)
    assert p.data is array and p.dtype == dtype


# ---------------------------------------------------------------------- optional: against torch.nn
def test_forward_and_gradients_match_torch():
    torch = pytest.importorskip("torch")
    tq.manual_seed(0)
    net = Net().to(np.float64)
    ref = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(36, 3),
    ).double()
    mapping = {"features.0": "0", "features.1": "1", "classifier": "5"}
    state = {}
    for key, value in net.state_dict().items():
        prefix, _, leaf = key.rpartition(".")
        state[f"{mapping[prefix]}.{leaf}"] = torch.from_numpy(value.copy())
    ref.load_state_dict(state)
    x = np.random.default_rng(0).standard_normal((4, 2, 6, 6))
    out = net(tq.Tensor(x))
    out_ref = ref(torch.from_numpy(x))
    np.testing.assert_allclose(out.data, out_ref.detach().numpy(), rtol=1e-10, atol=1e-12)
    out.sum().backward()
    out_ref.sum().backward()
    np.testing.assert_allclose(net.features[0].weight.grad.data, ref[0].weight.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(net.features[1].running_var, ref[1].running_var.numpy(), rtol=1e-10)
