"""Experiment runners: the quick Table 1 grid, resumption, the instability test, the theory figures.

Everything runs offline on the bundled MNIST subset. Accuracy floors were calibrated on the quick
grid (seed 0: float 92.6 %, 4-bit clipped ReLU 93.8 % on 500 test images) and set well below.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import tinyqnn.train.loop as loop
from tinyqnn.data import DataLoader
from tinyqnn.experiments import instability, table1, theory_figures
from tinyqnn.experiments.table1 import GridConfig, build_model, cell_name, load_cell_result, run_grid
from tinyqnn.train import evaluate, fit, load_checkpoint

QUICK_CELLS = ["float"] + [cell_name(b, s) for b in (1, 2, 4) for s in ("identity", "relu", "clipped_relu")]


def _counting(fn, calls: list):
    def wrapped(*args, **kwargs):
        calls.append(1)
        return fn(*args, **kwargs)

    return wrapped


@pytest.fixture(scope="module")
def quick_grid(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("table1") / "quick"
    assert table1.main(["--quick", "--out", str(out), "--no-progress"]) == 0
    return out


def _tiny_config(**kw) -> GridConfig:
    """Two cells on 200 / 100 subset images; the lr milestone after epoch 1 makes resumption check the scheduler."""
    base = dict(subset=True, train_limit=200, test_limit=100, bits=(2,), stes=("clipped_relu",), epochs=2,
                pretrain_epochs=1, lr=0.02, milestones=(1,), batch_size=32)
    return GridConfig(**{**base, **kw})


# ---------------------------------------------------------------------- Table 1 grid
@pytest.mark.slow
def test_quick_grid_writes_every_cell_and_the_tables(quick_grid: Path):
    for name in ("table1.md", "table1.csv", "accuracy_vs_bits.png", "curves.png", "grid.json"):
        assert (quick_grid / name).stat().st_size > 0, name
    with open(quick_grid / "table1.csv") as f:
        rows = {r["cell"]: r for r in csv.DictReader(f)}
    assert sorted(rows) == sorted(QUICK_CELLS)
    for name, row in rows.items():
        assert np.isfinite(float(row["final_train_loss"])) and 0 <= float(row["final_test_accuracy"]) <= 100
        assert (quick_grid / name / "checkpoint.npz").is_file() and (quick_grid / name / "curves.png").is_file()
        assert len(load_cell_result(quick_grid / name)["history"]) == (3 if name == "float" else 1)
    # the paper's numbers sit next to ours where the paper has them (2 and 4 bits), and only there
    assert float(rows["2bit_identity"]["paper_test_accuracy"]) == 98.49
    assert float(rows["4bit_clipped_relu"]["paper_train_loss"]) == 8.8e-4
    assert rows["1bit_relu"]["paper_test_accuracy"] == "" and rows["float"]["paper_test_accuracy"] == ""
    md = (quick_grid / "table1.md").read_text()
    for value in ("98.49", "99.24", "99.23", "98.98", "99.32", "5.4e-03", "9.0e-04"):
        assert value in md
    assert "Not finished" not in md


@pytest.mark.slow
def test_quick_grid_cells_learn_and_checkpoints_match_their_records(quick_grid: Path):
    cfg = table1.quick_config()
    assert cfg == table1.config_from_args(table1.build_parser().parse_args(["--quick"]))
    _, test = table1.load_data(cfg)
    float_rec = load_cell_result(quick_grid / "float")
    crelu4 = load_cell_result(quick_grid / "4bit_clipped_relu")
    assert float_rec["final_test_accuracy"] >= 85.0  # calibrated 92.6
    assert crelu4["final_test_accuracy"] >= 85.0  # calibrated 93.8
    assert crelu4["alpha"] == pytest.approx(0.1946) and crelu4["config"]["ste"] == "clipped_relu"
    # the stored weights reproduce the recorded accuracy through the quantized model
    model = build_model(4, "clipped_relu", crelu4["alpha"])
    load_checkpoint(quick_grid / "4bit_clipped_relu" / "checkpoint.npz", model)
    acc = 100 * evaluate(model, DataLoader(test, batch_size=1000))["accuracy"]
    assert acc == pytest.approx(crelu4["final_test_accuracy"], abs=1e-9)
    # the quantized cell started from the float cell: after one epoch at lr 0.02 its weights are close to
    # the float weights (relative change well below that of a fresh initialisation)
    start = build_model()
    load_checkpoint(quick_grid / "float" / "checkpoint.npz", start)
    fresh = build_model()
    w_q, w_f, w_0 = (m.state_dict()["conv2.weight"] for m in (model, start, fresh))
    assert np.linalg.norm(w_q - w_f) < 0.5 * np.linalg.norm(w_0 - w_f)


@pytest.mark.slow
def test_rerun_skips_finished_cells(quick_grid: Path):
    calls: list = []
    cfg = table1.config_from_args(table1.build_parser().parse_args(["--quick"]))
    before = (quick_grid / "4bit_relu" / "final.json").read_text()
    results = run_grid(cfg, quick_grid, progress=False, plots=False, log=lambda s: None,
                       fit_fn=_counting(fit, calls))
    assert calls == []
    assert all(r["skipped"] for r in results.values()) and sorted(results) == sorted(QUICK_CELLS)
    assert (quick_grid / "4bit_relu" / "final.json").read_text() == before


class _Interrupt(Exception):
    pass


def test_interrupted_cell_resumes_and_matches_an_uninterrupted_run(tmp_path, monkeypatch):
    cfg = _tiny_config()
    straight = run_grid(cfg, tmp_path / "a", progress=False, plots=False, log=lambda s: None)

    real_save = loop.save_checkpoint

    def save_then_die(path, *args, meta=None, **kwargs):
        real_save(path, *args, meta=meta, **kwargs)
        if "2bit_clipped_relu" in str(path) and meta["epoch"] == 1:
            raise _Interrupt  # killed right after the checkpoint of epoch 1 hit the disk

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(_Interrupt):
        run_grid(cfg, tmp_path / "b", progress=False, plots=False, log=lambda s: None)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    cell = tmp_path / "b" / "2bit_clipped_relu"
    assert (cell / "checkpoint.npz").is_file() and load_cell_result(cell) is None

    epochs_trained: list = []
    monkeypatch.setattr(loop, "train_one_epoch", _counting(loop.train_one_epoch, epochs_trained))
    resumed = run_grid(cfg, tmp_path / "b", progress=False, plots=False, log=lambda s: None)
    assert len(epochs_trained) == 1  # only epoch 2 of the interrupted cell; the float cell is skipped
    assert resumed["float"]["skipped"] and not resumed["2bit_clipped_relu"]["skipped"]
    a, b = straight["2bit_clipped_relu"]["history"], resumed["2bit_clipped_relu"]["history"]
    assert [r["epoch"] for r in b] == [1, 2] and [r["lr"] for r in b] == pytest.approx([0.02, 0.002])
    for key in ("train_loss", "test_loss", "test_accuracy"):
        assert [r[key] for r in b] == pytest.approx([r[key] for r in a], rel=1e-6, abs=1e-9), key
    rows = json.loads((cell / "metrics.json").read_text())["epochs"]
    assert [r["epoch"] for r in rows] == [1, 2]  # the log kept the epoch of the first session


def test_more_epochs_continue_a_finished_cell_and_other_settings_are_refused(tmp_path, capsys):
    cfg = _tiny_config(epochs=1, milestones=())
    run_grid(cfg, tmp_path, progress=False, plots=False, log=lambda s: None)
    calls: list = []
    longer = run_grid(_tiny_config(epochs=2, milestones=()), tmp_path, progress=False, plots=False,
                      log=lambda s: None, fit_fn=_counting(fit, calls))
    assert len(calls) == 1 and [r["epoch"] for r in longer["2bit_clipped_relu"]["history"]] == [1, 2]
    with pytest.raises(ValueError, match="lr"):
        run_grid(_tiny_config(epochs=2, milestones=(), lr=0.05), tmp_path, progress=False, plots=False,
                 log=lambda s: None)
    args = ["--subset", "--train-limit", "200", "--test-limit", "100", "--bits", "2", "--stes", "clipped_relu",
            "--epochs", "2", "--pretrain-epochs", "1", "--milestones", "--batch-size", "32", "--no-progress"]
    assert table1.main(args + ["--lr", "0.05", "--out", str(tmp_path)]) == 2  # refused, with a message
    capsys.readouterr()
    assert table1.main(args + ["--lr", "0.02", "--out", str(tmp_path), "--no-plots"]) == 0
    assert capsys.readouterr().out.count("done already, skipped") == 2


def test_bad_arguments_are_reported():
    assert table1.main(["--quick", "--stes", "no_such_ste", "--no-progress"]) == 2
    assert table1.main(["--quick", "--bits", "0", "--no-progress"]) == 2


# ---------------------------------------------------------------------- instability
def test_instability_writes_csv_plot_and_a_verdict(tmp_path):
    run_grid(_tiny_config(milestones=()), tmp_path / "grid", progress=False, plots=False, log=lambda s: None)
    out = tmp_path / "inst"
    result = instability.run_instability(tmp_path / "grid" / "2bit_clipped_relu", out, epochs=2, progress=False,
                                         log=lambda s: None)
    with open(out / "instability.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["run"], r["ste"], int(r["epoch"])) for r in rows] == [
        ("switched", "identity", e) for e in range(3)] + [("control", "clipped_relu", e) for e in range(3)]
    assert all(float(r["lr"]) == 1e-5 for r in rows)
    # both runs start from the same weights: identical epoch-0 measurements
    assert rows[0]["train_loss"] == rows[3]["train_loss"] and rows[0]["val_error"] == rows[3]["val_error"]
    text = (out / "verdict.md").read_text()
    assert "Verdict:" in text and f"{result['summary']['switched']['loss_start']:.3g}" in text
    assert (out / "instability.png").stat().st_size > 0
    saved = json.loads((out / "instability.json").read_text())
    assert saved["flags"]["reproduced"] == result["flags"]["reproduced"]


def _summary(loss0, loss1, err0, err1):
    rows = [{"epoch": 0, "train_loss": loss0, "val_error": err0}, {"epoch": 1, "train_loss": loss1, "val_error": err1}]
    return instability.summarize(rows)


def test_verdict_follows_the_numbers():
    info = {"bits": 4, "source_ste": "clipped_relu", "switch_ste": "identity", "source": "x", "lr": 1e-5,
            "momentum": 0.9, "n_test": 10000, "n_train": 60000}
    flat = _summary(0.01, 0.0101, 1.0, 1.02)
    text, flags = instability.verdict(_summary(0.01, 0.05, 1.0, 3.0), flat, info)
    assert flags["reproduced"] and "raised the training loss and raised" in text and "+400.0 %" in text
    text, flags = instability.verdict(_summary(0.01, 0.0099, 1.0, 0.98), flat, info)
    assert not flags["reproduced"] and not flags["loss_rose"] and "NOT reproduced" in text
    # a rise that the control run shows just as much is not blamed on the identity STE
    text, flags = instability.verdict(_summary(0.01, 0.05, 1.0, 3.0), _summary(0.01, 0.05, 1.0, 3.0), info)
    assert flags["loss_rose"] and not flags["loss_beyond_control"] and not flags["reproduced"]
    assert "NOT reproduced" in text and "control run's rose about as much" in text
    # loss up beyond the control, error flat: partly
    text, flags = instability.verdict(_summary(0.01, 0.05, 1.0, 1.0), flat, info)
    assert flags["loss_beyond_control"] and not flags["error_rose"] and "only partly" in text


@pytest.mark.slow
def test_instability_quick_cli_trains_its_own_source(tmp_path):
    grid, out = tmp_path / "grid", tmp_path / "inst"
    assert instability.main(["--quick", "--grid-out", str(grid), "--out", str(out), "--no-progress",
                             "--no-plots"]) == 0
    assert load_cell_result(grid / "4bit_clipped_relu") is not None
    assert (out / "instability.csv").is_file() and "Verdict:" in (out / "verdict.md").read_text()
    assert instability.main(["--from", str(tmp_path / "missing"), "--out", str(out), "--no-progress"]) == 2


# ---------------------------------------------------------------------- theory figures
@pytest.fixture(scope="module")
def theory_result():
    return theory_figures.run_theory(steps=300, starts=2, spurious_steps=300)


def test_identity_drifts_from_the_spurious_minimum_while_relu_stays(theory_result):
    sp = theory_result["spurious"]
    for ste in ("relu", "clipped_relu"):
        assert np.abs(sp[ste].loss - sp[ste].loss[0]).max() < 1e-9, ste
        assert sp[ste].angle.min() == pytest.approx(np.pi)
    ident = sp["identity"]
    assert ident.coarse_norm[0] > 0.1  # Lemma 9: the identity coarse gradient does not vanish there
    assert ident.loss[:150].max() > ident.loss[0] + 0.05  # the loss rises: descent fails near theta = pi
    assert ident.w_norm.min() < 0.1  # w is pushed along its own axis towards 0


def test_inner_products_are_nonnegative_along_descent(theory_result):
    for ste, h in theory_result["inner"].items():
        defined = np.sin(h.angle) > theory_figures.DEGENERATE_SIN
        assert defined.sum() > 100, ste
        assert h.inner[defined].min() >= -1e-12, ste
        assert h.inner[defined].max() > 1e-4, ste  # not trivially zero
    for ste, runs in theory_result["curves"].items():
        for h in runs:
            defined = np.sin(h.angle) > theory_figures.DEGENERATE_SIN
            assert h.inner[defined].min() >= -1e-12, ste
    for ste in ("relu", "clipped_relu"):  # Theorem 1 at a small enough step: monotone descent
        assert all(np.diff(h.loss).max() <= theory_figures.MONOTONE_TOL for h in theory_result["curves"][ste])


def test_theory_figures_are_written(theory_result, tmp_path):
    paths = theory_figures.write_figures(theory_result, tmp_path)
    assert sorted(p.name for p in paths) == ["inner_products.png", "loss_curves.png", "spurious_minimum.png",
                                             "theory.json"]
    assert all(p.stat().st_size > 0 for p in paths)
    summary = json.loads((tmp_path / "theory.json").read_text())
    sp = summary["spurious_minimum"]
    assert sp["identity"]["loss_max"] > sp["identity"]["loss_start"] + 0.05
    assert sp["relu"]["max_abs_loss_change"] < 1e-9 and sp["clipped_relu"]["max_abs_loss_change"] < 1e-9
