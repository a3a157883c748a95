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


@pytest.fixture
def small_data(monkeypatch):
    """`train` on 600 / 200 bundled images, so that several CLI runs take seconds."""
    import tinyqnn.cli as cli

    def datasets(name, data_dir):
        train, test = mnist_subset(train=True), mnist_subset(train=False)
        return (type(train).from_arrays(train.images[::10], train.labels[::10], True),
                type(test).from_arrays(test.images[::5], test.labels[::5], False))

    monkeypatch.setattr(cli, "_datasets", datasets)


def _train(out, *extra):
    return main(["train", "--dataset", "mnist-subset", "--batch-norm", "--lr", "0.05", "--milestones", "1",
                 "--out", str(out), "--no-progress", *extra])


def _weights(path):
    with np.load(path, allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files if k.startswith("model/")}


def test_train_resume_equals_an_uninterrupted_run(tmp_path, small_data, capsys):
    assert _train(tmp_path / "straight", "--epochs", "3") == 0
    assert _train(tmp_path / "split", "--epochs", "1") == 0
    assert _train(tmp_path / "split", "--epochs", "3", "--resume") == 0
    a, b = _weights(tmp_path / "straight" / "checkpoint.npz"), _weights(tmp_path / "split" / "checkpoint.npz")
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    for name in ("straight", "split"):
        rows = json.loads((tmp_path / name / "metrics.json").read_text())["epochs"]
        assert [r["epoch"] for r in rows] == [1, 2, 3]
        assert [r["lr"] for r in rows] == pytest.approx([0.05, 0.005, 0.005])
        csv_rows = (tmp_path / name / "metrics.csv").read_text().splitlines()
        assert len(csv_rows) == 4


@pytest.mark.parametrize("option", [["--lr", "0.1"], ["--milestones", "2"], ["--batch-size", "32"]])
def test_train_resume_refuses_changed_settings(tmp_path, small_data, capsys, option):
    """`--lr 0.1 --resume` used to train on with the checkpoint's lr while metrics.json said 0.1."""
    assert _train(tmp_path / "run", "--epochs", "1") == 0
    before = (tmp_path / "run" / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    code = main(["train", "--dataset", "mnist-subset", "--batch-norm", "--out", str(tmp_path / "run"),
                 "--no-progress", "--epochs", "2", "--resume",
                 *(["--lr", "0.05"] if option[0] != "--lr" else []),
                 *(["--milestones", "1"] if option[0] != "--milestones" else []), *option])
    assert code == 2
    err = capsys.readouterr().err
    assert option[0] in err and option[1] in err and "checkpoint.npz" in err
    assert (tmp_path / "run" / "checkpoint.npz").read_bytes() == before
