"""ResNet for CIFAR shapes: layout, parameter count, option-A shortcuts, float64 gradient checks."""
import numpy as np
import pytest

import tinyqnn as tq
from tinyqnn import Tensor, gradcheck, nn
from tinyqnn.engine.gradcheck import numerical_grad
from tinyqnn.models import ResNetCIFAR, resnet20
from tinyqnn.models.resnet import BasicBlock, ShortcutA


def test_resnet20_parameter_count_from_the_architecture():
    """He et al. (2016) quote 0.27M parameters; count them from the layer list by hand."""
    conv = lambda cin, cout: cin * cout * 9  # 3x3, no bias  # noqa: E731
    bn = lambda c: 2 * c  # noqa: E731
    stem = conv(3, 16) + bn(16)
    stage1 = 3 * (2 * conv(16, 16) + 2 * bn(16))
    stage2 = conv(16, 32) + conv(32, 32) + 2 * bn(32) + 2 * (2 * conv(32, 32) + 2 * bn(32))
    stage3 = conv(32, 64) + conv(64, 64) + 2 * bn(64) + 2 * (2 * conv(64, 64) + 2 * bn(64))
    fc = 64 * 10 + 10
    model = resnet20()
    assert sum(p.size for p in model.parameters()) == stem + stage1 + stage2 + stage3 + fc
    assert 0.265e6 < stem + stage1 + stage2 + stage3 + fc < 0.275e6
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 19 and all(m.bias is None for m in convs)  # 19 conv layers + fc = 20 weighted layers


def test_resnet20_stage_shapes():
    tq.manual_seed(0)
    model = resnet20()
    seen = []
    for block in model.layers:
        block.register_forward_hook(lambda m, inputs, out: seen.append(out.shape))
    out = model(tq.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    assert seen == [(2, 16, 32, 32)] * 3 + [(2, 32, 16, 16)] * 3 + [(2, 64, 8, 8)] * 3
    assert isinstance(model.layers[0].shortcut, nn.Identity)
    assert isinstance(model.layers[3].shortcut, ShortcutA) and isinstance(model.layers[6].shortcut, ShortcutA)


@pytest.mark.parametrize("h, cin, cout", [(7, 3, 8), (8, 4, 7), (5, 2, 2)])
def test_shortcut_a_subsamples_and_zero_pads(h, cin, cout, rng):
    x = rng.standard_normal((2, cin, h, h + 1))
    out = ShortcutA(cin, cout, stride=2)(Tensor(x)).data
    lo = (cout - cin) // 2
    assert out.shape == (2, cout, (h + 1) // 2, (h + 2) // 2)
    for c in range(cout):  # channel by channel: the input's every second pixel, or zeros
        expected = x[:, c - lo, ::2, ::2] if lo <= c < lo + cin else np.zeros(out[:, c].shape)
        np.testing.assert_array_equal(out[:, c], expected)
    with pytest.raises(ValueError, match="only add channels"):
        ShortcutA(4, 2, 1)


def tiny_resnet() -> ResNetCIFAR:
    tq.manual_seed(3)
    return ResNetCIFAR(num_blocks=1, widths=(2, 3, 4), in_channels=3, num_classes=3, dtype=np.float64)


def test_tiny_resnet_input_gradient_float64(rng):
    model = tiny_resnet()
    x = rng.standard_normal((2, 3, 7, 6))  # odd sizes: the stride-2 maps are 4x3, then 2x2
    assert gradcheck(lambda t: model(t), x)


@pytest.mark.slow
def test_tiny_resnet_parameter_gradients_float64(rng):
    """Every parameter's backward gradient against central differences of the whole network."""
    model = tiny_resnet()
    x = Tensor(rng.standard_normal((2, 3, 7, 6)))
    weights = rng.uniform(0.5, 1.5, size=(2, 3))
    params = list(model.parameters())
    assert all(p.dtype == np.float64 for p in params)

    def loss(*_):  # reads the parameters that numerical_grad perturbs in place
        return (model(x) * weights).sum()

    loss().backward()
    for k, p in enumerate(params):
        numeric = numerical_grad(loss, params, k)
        np.testing.assert_allclose(p.grad.data, numeric, rtol=1e-4, atol=1e-6, err_msg=f"parameter {k} {p.shape}")


def test_basic_block_adds_the_shortcut(rng):
    """With the residual branch zeroed (bn2 weight and bias 0), a block is relu(shortcut(x))."""
    block = BasicBlock(2, 4, stride=2, dtype=np.float64)
    block.bn2.weight.data[:] = 0
    block.bn2.bias.data[:] = 0
    x = rng.standard_normal((2, 2, 6, 6))
    expected = np.maximum(np.pad(x[:, :, ::2, ::2], ((0, 0), (1, 1), (0, 0), (0, 0))), 0)
    np.testing.assert_allclose(block(Tensor(x)).data, expected, atol=1e-12)


def test_resnet_eval_mode_uses_running_statistics(rng):
    model = tiny_resnet()
    x = Tensor(rng.standard_normal((4, 3, 8, 8)))
    model.eval()
    a = model(x[:2]).data
    b = model(x).data[:2]  # in eval mode a sample's output does not depend on the rest of the batch
    np.testing.assert_allclose(a, b, atol=1e-12)
    model.train()
    assert not np.allclose(model(x[:2]).data, model(x).data[:2])


def test_resnet_rejects_wrong_channels():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\).*\(2, 1, 32, 32\)"):
        resnet20()(tq.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="num_blocks"):
        ResNetCIFAR(num_blocks=0)


@pytest.mark.parametrize("training", [True, False])
def test_fused_block_tails_equal_the_separate_ops(training, rng):
    """The fused relu(bn(.)) and relu(bn(.) + shortcut(x)) give the values and gradients of the separate
    modules (forced by a hook on every batch norm, which turns the fusion off)."""
    fused, separate = tiny_resnet(), tiny_resnet()
    separate.load_state_dict(fused.state_dict())
    for m in separate.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.register_forward_hook(lambda mod, args, out: None)
    x = rng.standard_normal((3, 3, 7, 6))
    g = rng.standard_normal((3, 3))
    results = []
    for model in (fused, separate):
        model.train(training)
        t = Tensor(x.copy(), requires_grad=True)
        out = model(t)
        out.backward(g)
        results.append([out.data, t.grad.data] + [p.grad.data for p in model.parameters()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_resnet_depth_family_and_28x28_inputs(rng):
    from tinyqnn.models import resnet_depth

    for depth, blocks in ((8, 1), (14, 2), (20, 3)):
        model = resnet_depth(depth, in_channels=1)
        assert model.num_blocks == blocks
        assert sum(isinstance(m, BasicBlock) for m in model.modules()) == 3 * blocks
    assert model(Tensor(rng.standard_normal((2, 1, 28, 28)).astype(np.float32))).shape == (2, 10)
    with pytest.raises(ValueError, match="6n \\+ 2"):
        resnet_depth(10)


def test_quantized_resnet_checkpoint_rebuilds(tmp_path, rng):
    """quantize_activations swaps every ReLU of a ResNet; the checkpoint's record rebuilds that model."""
    from tinyqnn.models import resnet_depth
    from tinyqnn.quant import QuantAct, quantize_activations
    from tinyqnn.train import load_model, save_checkpoint

    model = quantize_activations(resnet_depth(8, in_channels=1), 2, "identity")
    acts = [m for m in model.modules() if isinstance(m, QuantAct)]
    assert len(acts) == 1 + 2 * 3 and not any(type(m) is nn.ReLU for m in model.modules())
    save_checkpoint(tmp_path / "c.npz", model)
    again, _ = load_model(tmp_path / "c.npz")
    assert [m.quant_config() for m in again.modules() if isinstance(m, QuantAct)] == [a.quant_config() for a in acts]
    x = Tensor(rng.standard_normal((2, 1, 28, 28)).astype(np.float32))
    model.eval(), again.eval()
    np.testing.assert_array_equal(model(x).data, again(x).data)


def test_training_steps_on_the_fast_paths_match_a_float64_reference_on_the_plain_ones(rng, monkeypatch):
    """Three SGD steps of a small ResNet in float32 on the fast paths (per-kernel-row convolutions with
    shifted copies, fused batch norm + shortcut + ReLU, BLAS channel sums) reach the losses and parameters
    of the same steps in float64 on the plain paths (full im2col, row-by-row copies, einsum sums, separate
    modules): the speed work changes no result beyond float32 rounding."""
    import tinyqnn.nn.functional as F
    import tinyqnn.nn.ops.conv as conv_ops
    import tinyqnn.nn.ops.normalization as bn_ops
    from tinyqnn import optim

    tq.manual_seed(5)
    fast = ResNetCIFAR(num_blocks=1, widths=(12, 16, 16), in_channels=3, num_classes=4)  # C*KW = 36: per-row path
    plain = ResNetCIFAR(num_blocks=1, widths=(12, 16, 16), in_channels=3, num_classes=4, dtype=np.float64)
    plain.load_state_dict(fast.state_dict())
    for m in plain.modules():
        if isinstance(m, nn.BatchNorm2d):  # a hook turns the fusion off
            m.register_forward_hook(lambda mod, args, out: None)
    x, y = rng.standard_normal((6, 3, 12, 12)), rng.integers(0, 4, 6)
    initial = [p.data.astype(np.float64) for p in plain.parameters()]
    settings = {"fast": {"MIN_ROW_DEPTH": 32, "SHIFTED_COPY_MAX_WIDTH": 16, "DOT_MIN_LENGTH": 1},
                "plain": {"MIN_ROW_DEPTH": 10**9, "SHIFTED_COPY_MAX_WIDTH": 0, "DOT_MIN_LENGTH": 10**9}}
    results = {}
    for name, model, dtype in (("fast", fast, np.float32), ("plain", plain, np.float64)):
        for key, value in settings[name].items():
            monkeypatch.setattr(bn_ops if key == "DOT_MIN_LENGTH" else conv_ops, key, value)
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        losses = []
        for _ in range(3):
            loss = F.cross_entropy(model(Tensor(x.astype(dtype))), Tensor(y))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.data))
        results[name] = losses, [p.data.astype(np.float64) for p in model.parameters()]
    np.testing.assert_allclose(results["fast"][0], results["plain"][0], rtol=1e-5)
    for a, b in zip(results["fast"][1], results["plain"][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert all(np.abs(a - b).max() > 1e-3 for a, b in zip(results["plain"][1], initial) if a.ndim == 4)  # steps moved
