"""`evaluate` rebuilds what a checkpoint was trained as; `train --resume` continues a run exactly (issue 11)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

import tinyqnn as tq
from tinyqnn import optim
from tinyqnn.cli import main
from tinyqnn.data import DataLoader, mnist_subset
from tinyqnn.experiments.table1 import GridConfig, load_cell_result, run_grid
from tinyqnn.models import LeNet5
from tinyqnn.quant import quantize_activations
from tinyqnn.train import evaluate, fit, save_checkpoint


def _printed_accuracy(text: str) -> float:
    return float(re.search(r"test accuracy ([0-9.]+)%", text).group(1))


def test_evaluate_rebuilds_a_quantized_model_with_batch_norm(tmp_path, capsys):
    """A 2-bit LeNet-5 trained on part of the bundled subset: `evaluate` must score the 2-bit model
    (it used to build a float LeNet-5 without batch norm and refuse, or score the wrong network)."""
    tq.manual_seed(0)
    train = mnist_subset(train=True)
    train = type(train).from_arrays(train.images[::6], train.labels[::6], True)  # 1,000 images: a few seconds
    model = quantize_activations(LeNet5(batch_norm=True, bn_affine=False), 2, "clipped_relu")
    fit(model, DataLoader(train, batch_size=64, shuffle=True, seed=0), None,
        optim.SGD(model.parameters(), lr=0.02, momentum=0.9), epochs=1, progress=False)
    path = save_checkpoint(tmp_path / "q2.npz", model, meta={"config": {"dataset": "mnist-subset"}})
    expected = 100 * evaluate(model, DataLoader(mnist_subset(train=False), batch_size=1000))["accuracy"]
    float_twin = LeNet5(batch_norm=True, bn_affine=False)
    float_twin.load_state_dict(model.state_dict())
    as_float = 100 * evaluate(float_twin, DataLoader(mnist_subset(train=False), batch_size=1000))["accuracy"]
    assert f"{as_float:.2f}" != f"{expected:.2f}"  # the test can tell the two models apart

    assert main(["evaluate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "QuantAct(bits=2, ste='clipped_relu', alpha=0.6511, quantizer='ceil')" in out
    assert _printed_accuracy(out) == pytest.approx(expected, abs=0.005)


def test_evaluate_accepts_the_grids_checkpoints(tmp_path, capsys):
    """The grid's (and so the demo's) cells are evaluated on the test images they were trained with."""
    cfg = GridConfig(subset=True, train_limit=200, test_limit=100, bits=(2,), stes=("relu",), epochs=1,
                     pretrain_epochs=1, lr=0.02, milestones=(), batch_size=32)
    run_grid(cfg, tmp_path, progress=False, plots=False, log=lambda s: None)
    for cell in ("float", "2bit_relu"):
        assert main(["evaluate", str(tmp_path / cell / "checkpoint.npz")]) == 0
        out = capsys.readouterr().out
        assert "100 mnist-subset test images" in out
        assert ("QuantAct(bits=2, ste='relu'" in out) is (cell != "float")
        assert _printed_accuracy(out) == pytest.approx(load_cell_result(tmp_path / cell)["final_test_accuracy"],
                                                       abs=0.005)


def test_evaluate_error_is_one_readable_line(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"model/w": np.zeros(3), "meta": np.array("{not json")})
    assert main(["evaluate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.npz" in err and "not valid JSON" in err and "\\n" not in err
