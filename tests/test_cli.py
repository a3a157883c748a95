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


# ---------------------------------------------------------------------- shared helpers
import argparse  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
from pathlib import Path  # noqa: E402

from tinyqnn import cli, utils  # noqa: E402
from tinyqnn.utils import atomic_write_bytes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SUBSET = ["--dataset", "mnist-subset", "--no-progress"]


@pytest.fixture(autouse=True)
def no_integer_unit_after_a_fake_grid(monkeypatch, request):
    """The demo ends on the integer MAC unit; with run_grid faked there are no real checkpoints to convert."""
    if "real_integer_unit" not in request.keywords:
        monkeypatch.setattr(cli, "_demo_on_integer_unit", lambda *args, **kwargs: "integer MAC unit: (faked)")


def _fake_grid(calls: list, files=("float/checkpoint.npz", "float/final.json", "table1.md"), fail: bool = False):
    """Stands in for run_grid: writes ``files`` the way tinyqnn writes (atomically), returns two cells."""
    def run_grid(cfg, out, **_):
        calls.append(cfg)
        for rel in files:
            atomic_write_bytes(Path(out) / rel, b"new")
        if fail:
            raise RuntimeError("cell float stopped")
        cell = {"final_test_accuracy": 98.0}
        return {"float": cell, f"{cfg.bits[0]}bit_{cfg.stes[0]}": cell}
    return run_grid


# ---------------------------------------------------------------------- data loss
def test_demo_refuses_a_folder_that_is_not_its_own_and_touches_nothing(tmp_path, monkeypatch, capsys):
    import tinyqnn.experiments.table1 as table1

    calls = []
    monkeypatch.setattr(table1, "run_grid", _fake_grid(calls))
    out = tmp_path / "thesis"
    (out / "chapter1").mkdir(parents=True)
    (out / "chapter1" / "draft.tex").write_text("years of work")
    assert main(["demo", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not a tinyqnn run" in err and "--force" in err and "draft.tex" not in err and "chapter1/" in err
    assert calls == [] and (out / "chapter1" / "draft.tex").read_text() == "years of work"


def test_demo_force_replaces_only_its_own_files(tmp_path, monkeypatch):
    import tinyqnn.experiments.table1 as table1

    calls = []
    monkeypatch.setattr(table1, "run_grid", _fake_grid(calls))
    out = tmp_path / "shared"
    (out / "float").mkdir(parents=True)
    (out / "float" / "final.json").write_text("a stale result the grid would skip to")
    (out / "keep.txt").write_text("mine")
    assert main(["demo", "--out", str(out), "--force"]) == 0
    assert (out / "float" / "final.json").read_bytes() == b"new" and (out / "keep.txt").read_text() == "mine"


def test_demo_rerun_replaces_its_earlier_files_and_keeps_the_users(tmp_path, monkeypatch, capsys):
    import tinyqnn.experiments.table1 as table1

    out = tmp_path / "demo"
    monkeypatch.setattr(table1, "run_grid", _fake_grid([], files=("float/final.json", "4bit_relu/final.json")))
    assert main(["demo", "--out", str(out), "--bits", "4", "--ste", "relu"]) == 0
    (out / "4bit_relu" / "notes.md").write_text("my notes")
    (out / "plot.png").write_text("my plot")
    monkeypatch.setattr(table1, "run_grid", _fake_grid([], files=("float/final.json",), fail=True))
    assert main(["demo", "--out", str(out)]) == 2  # even a failing rerun deletes nothing of the user's
    assert "cell float stopped" in capsys.readouterr().err
    assert not (out / "4bit_relu" / "final.json").exists()  # the earlier demo's own file: replaced
    assert (out / "4bit_relu" / "notes.md").read_text() == "my notes" and (out / "plot.png").read_text() == "my plot"


def test_demo_into_a_train_run_is_refused_and_forced_keeps_trains_files(tmp_path, monkeypatch, capsys):
    import tinyqnn.experiments.table1 as table1

    out = tmp_path / "run"
    assert main(["train", *SUBSET, "--epochs", "1", "--out", str(out)]) == 0
    checkpoint = (out / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(table1, "run_grid", _fake_grid([]))
    assert main(["demo", "--out", str(out)]) == 2
    assert "is not a demo run (a tinyqnn train run" in capsys.readouterr().err
    assert main(["demo", "--out", str(out), "--force"]) == 0
    assert (out / "checkpoint.npz").read_bytes() == checkpoint and (out / "table1.md").read_bytes() == b"new"
    assert main(["demo", "--out", str(out)]) == 0  # now a demo run: a rerun replaces only the demo's files
    assert (out / "checkpoint.npz").read_bytes() == checkpoint


def test_train_refuses_to_overwrite_a_finished_run_without_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SUBSET, "--epochs", "1", "--out", str(out)]) == 0
    before = (out / "checkpoint.npz").read_bytes()
    capsys.readouterr()
    assert main(["train", *SUBSET, "--epochs", "1", "--lr", "0.01", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "finished training run (1 of 1 epochs)" in err and "--resume" in err and "--force" in err
    assert (out / "checkpoint.npz").read_bytes() == before
    (out / "notes.txt").write_text("mine")
    assert main(["train", *SUBSET, "--epochs", "1", "--lr", "0.01", "--out", str(out), "--force"]) == 0
    assert (out / "checkpoint.npz").read_bytes() != before and (out / "notes.txt").read_text() == "mine"


def test_train_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "paper.pdf").write_text("x")
    assert main(["train", *SUBSET, "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert "not a tinyqnn run" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["paper.pdf"]


@pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning", "ignore:invalid value:RuntimeWarning")
def test_a_diverging_run_exits_nonzero_naming_epoch_and_batch(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *SUBSET, "--epochs", "2", "--lr", "1000", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(r"error: training diverged in epoch 1: the training loss is (nan|inf) at batch \d+ of 94 "
                        r"\(lr 1000\); nothing was saved\. A smaller learning rate .*", err), err
    assert not out.exists()  # nothing written: not even an empty folder


# ---------------------------------------------------------------------- CLI mistakes
@pytest.mark.parametrize("argv, message", [
    (["train", "--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    (["train", "--epochs", "-1"], "argument --epochs: must be >= 1, got -1"),
    (["demo", "--float-epochs", "0"], "argument --float-epochs: must be >= 1, got 0"),
    (["train", "--lr", "nan"], "argument --lr: must be > 0, got nan"),
    (["demo", "--bits", "0"], "argument --bits: invalid choice"),
    (["demo", "--ste", "clipped"], "argument --ste: invalid choice"),
    (["train", "--data-dir", "no/such/folder"], "argument --data-dir: no/such/folder is not an existing folder"),
    (["grid", "--data-dir", "no/such/folder"], "argument --data-dir: no/such/folder is not an existing folder"),
    (["hou-mlp", "--data-dir", "no/such/folder"], "argument --data-dir: no/such/folder is not an existing folder"),
    (["hou-grid", "--data-dir", "no/such/folder"], "argument --data-dir: no/such/folder is not an existing folder"),
    (["fixedpoint", "evaluate", "model.npz", "--data-dir", "no/such/folder"],
     "argument --data-dir: no/such/folder is not an existing folder"),
    (["fixedpoint", "bench", "--data-dir", "no/such/folder"],
     "argument --data-dir: no/such/folder is not an existing folder"),
    (["train", "--threads", "0"], "argument --threads: must be >= 1, got 0"),
])
def test_bad_arguments_are_refused_before_anything_runs(argv, message, tmp_path, capsys, monkeypatch):
    import tinyqnn.experiments.table1 as table1

    def must_not_run(*args, **kwargs):  # fail fast (no data loading, no download) if a value got through
        raise AssertionError(f"{argv} was accepted")

    for module, name in [(cli, "run_training"), (cli, "_datasets"), (table1, "run_grid"), (table1, "load_data")]:
        monkeypatch.setattr(module, name, must_not_run)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        code = main(argv)
        raise SystemExit(code)  # a delegated command returns its status instead of raising
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_os_error_is_one_line_not_a_traceback(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["train", *SUBSET, "--epochs", "1", "--out", str(tmp_path / "file" / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err and "[Errno" not in err
    assert "file/run" in err


def test_errors_print_as_one_line_without_a_repr(tmp_path, monkeypatch, capsys):
    def broken(args):
        raise KeyError("checkpoint ck.npz lacks\nmodel/fc.weight")

    monkeypatch.setattr(cli, "cmd_evaluate", broken)
    assert main(["evaluate", str(tmp_path / "ck.npz")]) == 2
    assert capsys.readouterr().err == "error: checkpoint ck.npz lacks; model/fc.weight\n"


def _parsers(monkeypatch) -> dict[str, argparse.ArgumentParser]:
    """The argument parser of every command, caught at parse time (delegated ones build their own)."""
    class Caught(Exception):
        pass

    seen = {}

    def catch(self, args=None, namespace=None):
        seen["parser"] = self
        raise Caught

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", catch)
    parsers = {}
    for name in [*cli.DELEGATED, "demo", "train", "evaluate"]:
        if name in cli.DELEGATED:
            with pytest.raises(Caught):
                cli.main([name])
            parsers[name] = seen.pop("parser")
    monkeypatch.undo()
    top = cli.build_parser()
    sub = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    parsers.update({name: sub.choices[name] for name in ("demo", "train", "evaluate")})
    return parsers


def test_every_command_shows_its_own_usage_and_helps_every_option(monkeypatch):
    for name, parser in _parsers(monkeypatch).items():
        assert parser.format_usage().startswith(f"usage: python -m tinyqnn {name} "), name
        undocumented = [a.option_strings or a.dest for a in parser._actions if not a.help]
        assert undocumented == [], f"{name}: options without help text: {undocumented}"


@pytest.mark.parametrize("command, option, choices", [
    ("demo", "--ste", ["clipped_relu", "identity", "relu"]), ("demo", "--bits", ["1", "8"]),
    ("grid", "--stes", ["clipped_relu", "identity", "relu"]), ("grid", "--bits", ["1", "8"]),
])
def test_help_lists_the_choices(command, option, choices, monkeypatch):
    parser = _parsers(monkeypatch)[command]
    action = next(a for a in parser._actions if option in a.option_strings)
    text = parser._get_formatter()._expand_help(action)
    assert all(c in text for c in choices), text


def test_one_name_for_test_accuracy_in_the_grid_log(tmp_path):
    from tinyqnn.experiments.table1 import GridConfig, run_grid

    lines = []
    cfg = GridConfig(subset=True, train_limit=128, test_limit=100, bits=(2,), stes=("clipped_relu",), epochs=1,
                     pretrain_epochs=1, lr=0.02, milestones=())
    run_grid(cfg, tmp_path, progress=False, plots=False, log=lines.append)
    assert len(lines) == 2 and all(" test accuracy " in line and "val" not in line for line in lines), lines


# ---------------------------------------------------------------------- threads
def test_training_commands_use_one_blas_thread_unless_told(monkeypatch, tmp_path, blas_threads_restored):
    from threadpoolctl import threadpool_limits

    from tinyqnn.engine import parallel

    seen = []  # (tinyqnn's threads, BLAS threads) while training
    monkeypatch.setattr(cli, "run_training",
                        lambda *a, **k: (seen.append((parallel.THREADS, utils.get_num_threads())), (None, []))[1])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "TINYQNN_THREADS"):
        monkeypatch.delenv(var, raising=False)
    threadpool_limits(limits=2, user_api="blas")  # as NumPy starts on a 2-core machine
    assert main(["train", "--out", str(tmp_path / "a")]) == 0
    assert main(["train", "--out", str(tmp_path / "b"), "--threads", "2"]) == 0
    monkeypatch.setenv("TINYQNN_THREADS", "2")
    assert main(["train", "--out", str(tmp_path / "c")]) == 0
    monkeypatch.delenv("TINYQNN_THREADS")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")  # the user's explicit choice is respected
    assert main(["train", "--out", str(tmp_path / "d")]) == 0
    assert seen == [(1, 1), (2, 1), (2, 1), (1, 2)]


# ---------------------------------------------------------------------- the learner's workspace and lab
def test_workspace_copies_lessons_and_exercises_and_never_overwrites(tmp_path, capsys):
    work = tmp_path / "work"
    assert main(["workspace", str(work)]) == 0
    printed = capsys.readouterr().out
    for folder in ("lessons", "exercises"):
        originals = sorted(p.relative_to(REPO / folder) for p in (REPO / folder).rglob("*.ipynb"))
        assert originals and sorted(p.relative_to(work / folder) for p in (work / folder).rglob("*.ipynb")) == originals
    mine = next((work / "exercises").rglob("*.ipynb"))
    mine.write_text("my answers")
    assert f"{sys.executable} -m tinyqnn check {work / 'exercises'}" in printed
    assert main(["workspace", str(work)]) == 0  # again, e.g. after git pull
    assert mine.read_text() == "my answers" and "kept" in capsys.readouterr().out
    assert main(["workspace", str(REPO / "my-work")]) == 2  # inside the checkout: git would reach it
    assert "outside" in capsys.readouterr().err and not (REPO / "my-work").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("work", [None, "workspace"])
def test_make_lab_serves_lessons_and_exercises(work, tmp_path):
    """``make lab`` once served only lessons/ ("outside root contents directory" for exercises/). Run the
    target with ``echo`` standing in for jupyter (-o: do not (re)build the venv) and read the root it gets."""
    args = ["make", "-s", "-o", ".venv/.installed", "lab", "JUPYTER=echo"] + ([f"WORK={tmp_path}"] if work else [])
    printed = subprocess.run(args, cwd=REPO, capture_output=True, text=True, check=True).stdout
    root = Path(re.search(r"^lab --ServerApp.root_dir=(\S+)", printed, re.M)[1])
    if work:
        assert root == tmp_path.resolve()
    else:
        assert (root / "lessons").is_dir() and (root / "exercises").is_dir(), root
    bad = subprocess.run(["make", "-s", "-o", ".venv/.installed", "lab", "JUPYTER=echo", f"WORK={tmp_path / 'typo'}"],
                         cwd=REPO, capture_output=True, text=True)
    assert bad.returncode != 0 and "root_dir" not in bad.stdout  # a mistyped WORK does not serve some other folder


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_lab_starts_in_the_served_folder_allows_root_and_does_not_reinstall(tmp_path):
    """After the README's pip route (no .venv/.installed stamp: -W makes pyproject.toml newer than any stamp)
    ``make lab`` uses the venv as it is; JupyterLab starts in the folder it serves (nbgrader then finds no course
    directory outside the server root), with --allow-root exactly when run as root."""
    dry = subprocess.run(["make", "-s", "-n", "-W", "pyproject.toml", "lab", "JUPYTER=echo"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "pip install" not in dry and "python3 -m venv" not in dry, dry
    fake = tmp_path / "jupyter"
    fake.write_text('#!/bin/sh\necho "cwd=$(pwd)"\necho "args=$*"\n')
    fake.chmod(0o755)
    work = tmp_path / "work"
    work.mkdir()
    printed = subprocess.run(["make", "-s", "lab", f"JUPYTER={fake}", f"WORK={work}"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    assert f"cwd={work.resolve()}" in printed
    args = re.search(r"^args=(.*)$", printed, re.M)[1].split()
    assert args[:2] == ["lab", f"--ServerApp.root_dir={work.resolve()}"]
    assert ("--allow-root" in args) == (os.geteuid() == 0)


def test_every_command_the_readme_names_exists():
    names = set(re.findall(r"-m tinyqnn ([a-z][a-z-]*)", (REPO / "README.md").read_text()))
    known = set(cli.DELEGATED) | {"demo", "train", "evaluate"}
    assert names and names <= known, names - known


@pytest.mark.real_integer_unit
def test_demo_ends_with_the_trained_model_on_the_integer_unit(tmp_path):
    """Float, fake-quantized and integer-only accuracy side by side, from the run's own checkpoints."""
    import argparse
    import json

    from tinyqnn.experiments.table1 import GridConfig, run_grid

    cfg = GridConfig(subset=True, train_limit=256, test_limit=200, bits=(2,), stes=("clipped_relu",), epochs=1,
                     pretrain_epochs=1, lr=0.02, milestones=())
    run_grid(cfg, tmp_path, progress=False, plots=False, log=lambda line: None)
    args = argparse.Namespace(dataset="mnist-subset", data_dir=None)
    line = cli._demo_on_integer_unit(args, tmp_path / "float" / "checkpoint.npz",
                                     tmp_path / "2bit_clipped_relu" / "checkpoint.npz", tmp_path / "integer.json")
    report = json.loads((tmp_path / "integer.json").read_text())
    for word in ("float", "fake-quantized", "integer-only", "agree"):
        assert word in line, line
    assert report["n_images"] == 1000 and report["agreement"] >= 0.99, report
    assert f"integer-only {report['integer']:.2f}%" in line
