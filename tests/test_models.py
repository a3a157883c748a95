"""LeNet-5: layout, shapes, parameter count, activation hook, clear errors."""
import numpy as np
import pytest

import tinyqnn as tq
from tinyqnn import nn
from tinyqnn.models import LeNet5


def test_lenet5_shapes_and_parameter_count():
    tq.manual_seed(0)
    model = LeNet5()
    out = model(tq.randn(3, 1, 28, 28))
    assert out.shape == (3, 10)
    # conv1 6*(25+1) + conv2 16*(150+1) + fc1 120*(400+1) + fc2 84*(120+1) + fc3 10*(84+1)
    expected = 6 * 26 + 16 * 151 + 120 * 401 + 84 * 121 + 10 * 85
    assert sum(p.size for p in model.parameters()) == expected == 61706


def test_lenet5_batch_norm_scale_free_has_no_bn_parameters():
    affine = LeNet5(batch_norm=True)
    scale_free = LeNet5(batch_norm=True, bn_affine=False)
    n_affine = sum(p.size for p in affine.parameters())
    n_free = sum(p.size for p in scale_free.parameters())
    assert n_affine - n_free == 2 * (6 + 16 + 120 + 84)
    assert {k for k in scale_free.state_dict() if "bn1" in k} >= {"bn1.running_mean", "bn1.running_var"}


def test_set_activation_swaps_all_four_and_keeps_weights():
    tq.manual_seed(1)
    model = LeNet5()
    before = {k: v.copy() for k, v in model.state_dict().items()}
    seen = []

    def factory(name, features):
        seen.append((name, features))
        return nn.Identity()

    model.set_activation(factory)
    assert seen == [("act1", 6), ("act2", 16), ("act3", 120), ("act4", 84)]
    assert all(isinstance(getattr(model, n), nn.Identity) for n in LeNet5.activation_names)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_activation_factory_modules_run_in_forward():
    calls = []

    class Spy(nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name = name

        def forward(self, x):
            calls.append(self.name)
            return x

    model = LeNet5(activation=lambda name, features: Spy(name))
    assert not any(isinstance(m, nn.ReLU) for m in model.modules())
    assert model(tq.randn(2, 1, 28, 28)).shape == (2, 10)
    assert calls == ["act1", "act2", "act3", "act4"]


def test_lenet5_gradients_reach_every_parameter():
    tq.manual_seed(2)
    model = LeNet5(batch_norm=True)
    loss = nn.functional.cross_entropy(model(tq.randn(4, 1, 28, 28)), tq.tensor([0, 1, 2, 3]))
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.abs(p.grad.data).sum() > 0, name


@pytest.mark.parametrize("shape", [(2, 28, 28), (2, 3, 28, 28), (2, 1, 32, 32)])
def test_lenet5_rejects_wrong_input_shapes(shape):
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        LeNet5()(tq.zeros(*shape))


def test_lenet5_rejects_unknown_pool():
    with pytest.raises(ValueError, match="pool"):
        LeNet5(pool="median")


def test_model_record_round_trip_and_differences():
    import json

    from tinyqnn.models import build_model, model_record, record_differences
    from tinyqnn.quant import quantize_activations, quantize_weights

    model = quantize_weights(quantize_activations(LeNet5(batch_norm=True, pool="avg"), 3, "relu"), "ternary")
    record = json.loads(json.dumps(model_record(model)))
    assert record["kwargs"] == {"num_classes": 10, "batch_norm": True, "bn_affine": True, "pool": "avg"}
    assert record["layers"]["act2"] == {"type": "QuantAct", "bits": 3, "ste": "relu",
                                        "alpha": model.act2.alpha, "quantizer": "ceil"}
    rebuilt = build_model(record)
    assert model_record(rebuilt) == model_record(model) and repr(rebuilt) == repr(model)
    assert record_differences(record, model_record(rebuilt)) == []
    other = model_record(quantize_activations(LeNet5(batch_norm=True, pool="avg"), 2, "relu"))
    diffs = record_differences(record, other)
    assert any(d.startswith("layers act1, act2, act3, act4: recorded QuantAct(bits=3") and "model QuantAct(bits=2" in d
               for d in diffs), diffs
    assert "layers conv1, conv2: recorded QuantConv2d(weight_quantizer='ternary', weight_bits=8, per_channel=False), " \
           "model Conv2d (float)" in diffs, diffs
    assert len(diffs) == 3  # the same difference in several layers is said once
    with pytest.raises(ValueError, match="cannot rebuild a ResNet: tinyqnn rebuilds LeNet5"):
        build_model({**record, "arch": "ResNet"})
    with pytest.raises(ValueError, match="act1 uses the STE 'nope', which is not registered"):
        build_model({**record, "layers": {**record["layers"], "act1": {**record["layers"]["act1"], "ste": "nope"}}})
    with pytest.raises(ValueError, match="fc9"):
        build_model({**record, "layers": {**record["layers"], "fc9": {"type": "Linear"}}})


def test_integer_image_batch_is_named_in_the_error():
    """An int64 batch used to fail with "Conv2d.forward turned float32 inputs into a float64 output"."""
    import numpy as np

    from tinyqnn.quant import quantize_weights

    images = tq.Tensor(np.zeros((2, 1, 28, 28), dtype=np.int64))
    for model in (LeNet5(), quantize_weights(LeNet5(), "symmetric", 4)):
        with pytest.raises(TypeError, match=r"int64 input of shape \(2, 1, 28, 28\)|int64 of shape \(2, 1, 28, 28\)"):
            model(images)
    with pytest.raises(TypeError, match=r"Linear.*int64 input of shape \(3, 400\)"):
        LeNet5().fc1(tq.Tensor(np.zeros((3, 400), dtype=np.int64)))
