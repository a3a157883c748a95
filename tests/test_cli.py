"""The command line: train -> evaluate on the bundled subset, benchmark without torch, clear errors."""
import json
import sys

import pytest

from tinyqnn.cli import main


def test_train_then_evaluate_on_subset(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "mnist-subset", "--epochs", "1", "--lr", "0.02", "--out", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "epoch   1" in printed and "test acc" in printed
    assert {"checkpoint.npz", "metrics.json", "metrics.csv", "curves.png"} <= {p.name for p in out.iterdir()}
    accuracy = json.loads((out / "metrics.json").read_text())["epochs"][0]["test_accuracy"]
    assert accuracy > 0.85

    assert main(["evaluate", str(out / "checkpoint.npz")]) == 0
    assert f"test accuracy {100 * accuracy:.2f}%" in capsys.readouterr().out


def test_resume_skips_finished_epochs(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--dataset", "mnist-subset", "--epochs", "1", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args + ["--resume"]) == 0  # nothing left to do: epoch 1 is in the checkpoint
    assert main(["train", "--dataset", "mnist-subset", "--epochs", "2", "--out", str(out), "--no-progress",
                 "--resume"]) == 0
    rows = json.loads((out / "metrics.json").read_text())["epochs"]
    assert [r["epoch"] for r in rows] == [1, 2]  # the resumed run keeps the epoch of the first session


def test_evaluate_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nope.npz")]) == 2
    assert "nope.npz" in capsys.readouterr().err


def test_benchmark_runs_without_torch(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # make `import torch` fail even where it is installed
    assert main(["benchmark", "--repeats", "1", "--steps", "1"]) == 0
    printed = capsys.readouterr().out
    assert "tinyqnn" in printed and "not installed" in printed


def test_unknown_command_exits_nonzero():
    with pytest.raises(SystemExit):
        main(["fly"])
