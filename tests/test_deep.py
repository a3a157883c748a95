"""The deep sweep (Table 1's deep rows): tiny configurations that train in seconds, resumption, the records
the checkpoints keep, the instability test on a ResNet, the figure and the command line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tinyqnn.train.loop as loop
from tinyqnn.data import CIFAR10, DataLoader, cifar
from tinyqnn.experiments import deep
from tinyqnn.quant import QuantAct
from tinyqnn.train import evaluate, fit, load_model


def tiny(**kw) -> deep.DeepConfig:
    """ResNet-8 only (widths 4/8/16), 2 bits, one STE, 64 / 32 subset images, 1 float + 2 quantized epochs (lr
    drop after 1)."""
    base = dict(dataset="fashion-mnist", subset=True, train_limit=64, test_limit=32, depths=(8,), width=4, bits=(2,),
                stes=("clipped_relu",), epochs=2, pretrain_epochs=1, milestones=(1,), batch_size=32,
                instability_bits=(2,), instability_epochs=1)
    return deep.DeepConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("deep") / "tiny"
    cfg = tiny(depths=(8, 14), stes=("identity", "clipped_relu"))
    return out, cfg, deep.run_deep(cfg, out, progress=False, log=lambda s: None)


def test_sweep_writes_cells_tables_instability_and_the_depth_figure(tiny_sweep):
    out, cfg, result = tiny_sweep
    for net in ("resnet8", "resnet14"):
        for cell in ("float", "2bit_identity", "2bit_clipped_relu"):
            record = json.loads((out / net / cell / "final.json").read_text())
            assert record["epochs"] == (1 if cell == "float" else 2) and record["net"] == net
            assert np.isfinite(record["final_train_loss"]) and (out / net / cell / "curves.png").is_file()
        test = out / net / "instability_2bit"
        assert (test / "verdict.md").is_file() and (test / "instability.png").is_file()
        runs = json.loads((test / "instability.json").read_text())["runs"]
        assert [r["epoch"] for r in runs["switched"]] == [0, 1]
        # both runs start from the same clipped-ReLU minimum: the same epoch-0 numbers
        assert runs["switched"][0]["train_loss"] == pytest.approx(runs["control"][0]["train_loss"])
    md = (out / "deep.md").read_text()
    assert "| resnet14 | 2 |" in md and "Instability test" in md
    assert (out / "depth.png").stat().st_size > 0
    rows = (out / "deep.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 3


def test_checkpoints_record_the_quantized_resnet(tiny_sweep):
    """A cell's checkpoint rebuilds as the 2-bit identity-STE ResNet-14 it was, with the accuracy it logged."""
    out, cfg, result = tiny_sweep
    model, meta = load_model(out / "resnet14" / "2bit_identity" / "checkpoint.npz")
    acts = [m for m in model.modules() if isinstance(m, QuantAct)]
    assert len(acts) == 1 + 2 * 2 * 3 and {a.ste.name for a in acts} == {"identity"} and {a.bits for a in acts} == {2}
    test = deep.load_data(cfg)[1]
    acc = evaluate(model, DataLoader(test, batch_size=32))["accuracy"]
    assert 100 * acc == pytest.approx(result["cells"]["resnet14"]["2bit_identity"]["final_test_accuracy"], abs=1e-6)


def test_rerun_skips_and_an_interrupted_cell_resumes_exactly(tmp_path, monkeypatch):
    cfg = tiny()
    straight = deep.run_deep(cfg, tmp_path / "a", progress=False, plots=False, log=lambda s: None, instability=False)
    real_save = loop.save_checkpoint

    def save_then_die(path, *args, meta=None, **kwargs):
        real_save(path, *args, meta=meta, **kwargs)
        if "2bit_clipped_relu" in str(path) and meta["epoch"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        deep.run_deep(cfg, tmp_path / "b", progress=False, plots=False, log=lambda s: None, instability=False)
    monkeypatch.setattr(loop, "save_checkpoint", real_save)
    calls: list = []

    def counting(*a, **k):
        calls.append(1)
        return fit(*a, **k)

    resumed = deep.run_deep(cfg, tmp_path / "b", progress=False, plots=False, log=lambda s: None, fit_fn=counting,
                            instability=False)
    assert len(calls) == 1 and resumed["cells"]["resnet8"]["float"]["skipped"]
    a = straight["cells"]["resnet8"]["2bit_clipped_relu"]["history"]
    b = resumed["cells"]["resnet8"]["2bit_clipped_relu"]["history"]
    assert [r["lr"] for r in b] == pytest.approx([0.01, 0.001])
    for key in ("train_loss", "test_loss", "test_accuracy"):
        assert [r[key] for r in b] == pytest.approx([r[key] for r in a], rel=1e-6, abs=1e-9), key
    with pytest.raises(ValueError, match="lr"):
        deep.run_deep(tiny(lr=0.05), tmp_path / "b", progress=False, plots=False, log=lambda s: None,
                      instability=False)


def test_cifar10_sweep_with_augmentation_and_vgg11_from_a_small_archive(tmp_path, rng, monkeypatch):
    """The paper's own data path: a small archive in the official format, crop + flip, ResNet-8 and VGG-11."""
    splits = {n: (rng.integers(0, 256, (16, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, 16))
              for n in cifar.TRAIN_MEMBERS + cifar.TEST_MEMBERS}
    archive = cifar.write_archive(tmp_path / "data" / "cifar10" / cifar.ARCHIVE, splits)
    monkeypatch.setattr(cifar, "ARCHIVE_MD5", cifar.md5_of(archive))
    monkeypatch.setattr("tinyqnn.models.vgg.VGG11", (8, "M", 8, "M", 8, "M", 8, "M", 8, "M"))  # narrow, for speed
    cfg = tiny(dataset="cifar10", subset=False, data_dir=str(tmp_path / "data"), train_limit=32, test_limit=16,
               vgg11=True, epochs=1, milestones=())
    train, _ = deep.load_data(cfg)
    assert isinstance(train, CIFAR10) and train.transform is not None
    result = deep.run_deep(cfg, tmp_path / "out", progress=False, plots=False, log=lambda s: None)
    assert set(result["cells"]) == {"resnet8", "vgg11"}
    conf = result["cells"]["vgg11"]["2bit_clipped_relu"]["config"]
    assert conf["augment"] is True and conf["dataset"] == "cifar10"
    assert "(0.24 / 88.39)" not in (tmp_path / "out" / "deep.md").read_text()  # resnet20 not in this sweep
    assert "(0.02 / 90.92)" in (tmp_path / "out" / "deep.md").read_text()  # the paper's VGG-11 2-bit clipped ReLU


def test_command_line_help_and_refusals(tmp_path, capsys):
    assert deep.main(["--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--depths", "--vgg11", "--instability-epochs", "--augment", "--quick", "--data-dir"):
        assert option in text
    assert deep.main(["--quick", "--depths", "10", "--out", str(tmp_path / "x")]) == 2
    assert "6n + 2" in capsys.readouterr().err
    assert deep.main(["--quick", "--vgg11", "--out", str(tmp_path / "x")]) == 2
    assert "cifar10" in capsys.readouterr().err
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    assert deep.main(["--quick", "--out", str(tmp_path / "mine"), "--no-progress"]) == 2
    assert "not a tinyqnn deep sweep" in capsys.readouterr().err
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_a_diverging_cell_is_recorded_and_the_sweep_goes_on(tmp_path):
    """lr 1e30 makes every quantized cell's loss NaN: each is kept as 'diverged' (no crash), the tables say so,
    and a rerun neither retrains it nor fails."""
    cfg = tiny(lr=1e30, stes=("identity", "clipped_relu"), epochs=1, milestones=())
    result = deep.run_deep(cfg, tmp_path, progress=False, plots=True, log=lambda s: None)
    cells = result["cells"]["resnet8"]
    assert not cells["float"].get("diverged")
    for name in ("2bit_identity", "2bit_clipped_relu"):
        assert "training diverged in epoch 1" in cells[name]["diverged"]
        assert json.loads((tmp_path / "resnet8" / name / "final.json").read_text())["diverged"]
    assert "diverged (in epoch 1)" in (tmp_path / "deep.md").read_text()
    assert result["instability"] == {}  # no clipped-ReLU minimum to start from
    again = deep.run_deep(cfg, tmp_path, progress=False, plots=False, log=lambda s: None)
    assert all(r["skipped"] for r in again["cells"]["resnet8"].values())


def test_plots_false_draws_no_figure(tmp_path):
    """``plots=False`` skips every PNG, the cells' curves too (drawing them cost more than a quick cell)."""
    deep.run_deep(tiny(), tmp_path, progress=False, plots=False, log=lambda s: None, instability=False)
    assert (tmp_path / "resnet8" / "2bit_clipped_relu" / "final.json").is_file()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")) == []



def test_unit7_task_configuration_breaks_only_the_identity_ste_and_only_on_the_deeper_net(tmp_path):
    """The premise of unit 7's graded predict-then-check task (solutions/07_qat, ``deep_ste_losses``; the
    learner's grade must not hang on a lucky number): on its configuration the identity STE diverges on
    ResNet-20 (seed 0, the graded run) while the ReLU and clipped-ReLU STEs train, and on ResNet-8 all three
    train (seed 1, the hidden test's second call)."""
    def losses(depth: int, seed: int) -> dict[str, float]:
        cfg = deep.quick_config(depths=(depth,), width=4, train_limit=128, test_limit=32, batch_size=32,
                                pretrain_epochs=1, epochs=2, lr=0.1, seed=seed)
        with np.errstate(all="ignore"):
            cells = deep.run_deep(cfg, tmp_path / f"{depth}-{seed}", progress=False, plots=False,
                                  log=lambda s: None, instability=False)["cells"][f"resnet{depth}"]
        return {ste: cells[f"2bit_{ste}"]["final_train_loss"] for ste in deep.STES}

    deeper = losses(20, 0)
    assert np.isnan(deeper["identity"]) and np.isfinite(deeper["relu"]) and np.isfinite(deeper["clipped_relu"]), deeper
    shallow = losses(8, 1)
    assert all(np.isfinite(v) for v in shallow.values()), shallow


def test_instability_command_runs_on_a_deep_cell_with_several_stes(tmp_path, capsys):
    """``tinyqnn instability --from <deep cell> --switch-to identity relu``: the cell's own ResNet and data,
    one run per STE beside one control, all starting from the same weights; a verdict per STE."""
    import csv

    from tinyqnn.experiments import instability

    sweep = tmp_path / "sweep"
    deep.run_deep(tiny(), sweep, progress=False, plots=False, log=lambda s: None, instability=False)
    out = tmp_path / "inst"
    assert instability.main(["--from", str(sweep / "resnet8" / "2bit_clipped_relu"), "--switch-to", "identity",
                             "relu", "--epochs", "1", "--out", str(out), "--no-progress", "--no-plots"]) == 0
    with open(out / "instability.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["run"], r["ste"], int(r["epoch"])) for r in rows] == [
        (run, ste, e) for run, ste in (("switched", "identity"), ("switched_relu", "relu"), ("control", "clipped_relu"))
        for e in range(2)]
    assert len({r["train_loss"] for r in rows if r["epoch"] == "0"}) == 1  # one start for all three runs
    saved = json.loads((out / "instability.json").read_text())
    assert saved["info"]["net"] == "resnet8" and saved["info"]["n_train"] == 64 and set(saved["verdicts"]) == {"identity", "relu"}
    text = (out / "verdict.md").read_text()
    assert "at resnet8 scale" in text and "**identity STE.**" in text and "**relu STE.**" in text
    # the start is the sweep's clipped-ReLU cell: its logged test accuracy, measured again
    start_error = float(rows[0]["val_error"])
    cell = json.loads((sweep / "resnet8" / "2bit_clipped_relu" / "final.json").read_text())
    assert start_error == pytest.approx(100 - cell["final_test_accuracy"], abs=1e-6)
