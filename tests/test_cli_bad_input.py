"""Bad input to the commands: refused when parsing or loading, as one line naming what was wrong, before anything
runs or waits (issue 20: hangs, tracebacks and silently wrong results found by a review)."""
import socket
import sys

import pytest

from tinyqnn.cli import main


def _run(argv):
    """(exit status, stdout, stderr) of ``python -m tinyqnn ARGV``; parse errors exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


def _refused_before_running(argv, message, capsys, monkeypatch, tmp_path):
    import importlib

    def must_not_run(*args, **kwargs):
        raise AssertionError(f"{argv} was accepted")

    # import them all before patching: each binds hou_common.run_cells when it is first imported
    modules = [importlib.import_module(f"tinyqnn.experiments.{name}")
               for name in ("hou_common", "hou_linear", "hou_mlp", "hou_grid")]
    for module in modules:
        monkeypatch.setattr(module, "run_cells", must_not_run)
    monkeypatch.chdir(tmp_path)
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------- hangs
@pytest.mark.parametrize("argv, message", [
    (["hou-linear", "--dask", "--dask-workers", "0"], "argument --dask-workers: must be >= 1, got 0"),
    (["hou-mlp", "--dask", "--dask-workers", "-3"], "argument --dask-workers: must be >= 1, got -3"),
    (["hou-grid", "--dask", "--dask-workers", "0"], "argument --dask-workers: must be >= 1, got 0"),
    (["hou-grid", "--scheduler", "tcp://x:1", "--scheduler-timeout", "0"],
     "argument --scheduler-timeout: must be > 0, got 0"),
])
def test_dask_options_that_would_hang_are_refused_when_parsing(argv, message, capsys, monkeypatch, tmp_path):
    _refused_before_running(argv, message, capsys, monkeypatch, tmp_path)


@pytest.mark.parametrize("kwargs", [{"n_workers": 0}, {"n_workers": -2}, {"threads_per_worker": 0},
                                    {"address": "tcp://127.0.0.1:1", "connect_timeout": 0}])
def test_dask_executor_refuses_a_cluster_that_could_never_run_a_task(kwargs):
    pytest.importorskip("distributed")
    from tinyqnn.distributed.dask_backend import DaskExecutor

    with pytest.raises(ValueError, match="must be"):
        DaskExecutor(**kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_scheduler_address_nobody_listens_on_fails_saying_what_it_waited_for(tmp_path, capsys):
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_free_port()}"
    argv = ["hou-linear", "--quick", "--no-progress", "--scheduler", address, "--scheduler-timeout", "1",
            "--out", str(tmp_path / "out")]
    assert _run(argv) == 2
    captured = capsys.readouterr()
    assert f"connecting to the Dask scheduler at {address} (waiting up to 1 s)" in captured.out
    assert captured.err.startswith(f"error: no Dask scheduler answered at {address} within 1 s")
    assert captured.err.count("\n") == 1


def test_dask_without_the_extra_names_the_extra_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # what `import distributed` does when it is missing
    assert _run(["hou-linear", "--quick", "--no-progress", "--dask", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "optional extra 'distributed'" in err and 'pip install -e ".[distributed]"' in err


# ---------------------------------------------------------------------- tracebacks -> one-line errors
@pytest.mark.parametrize("argv, message", [
    (["hou-mlp", "--iterations", "0"], "argument --iterations: must be >= 1, got 0"),
    (["hou-mlp", "--hidden", "0"], "argument --hidden: must be >= 1, got 0"),
    (["hou-mlp", "--lr", "nan"], "argument --lr: must be > 0, got nan"),
    (["hou-grid", "--epochs", "0"], "argument --epochs: must be >= 1, got 0"),
    (["hou-grid", "--iterations", "-1"], "argument --iterations: must be >= 0, got -1"),
    (["hou-grid", "--scaling-workers", "2", "0"], "argument --scaling-workers: must be >= 1, got 0"),
    (["hou-linear", "--iterations", "0"], "argument --iterations: must be >= 1, got 0"),
    (["hou-linear", "--ds", "10", "-1"], "argument --ds: must be >= 1, got -1"),
    (["theory-figures", "--steps", "0"], "argument --steps: must be >= 1, got 0"),
    # sizes no machine's memory holds: refused with the estimate, before any array is allocated
    (["hou-linear", "--ds", "10", "1000000000"], "--ds 1000000000 needs about"),
    (["hou-mlp", "--hidden", "1000000000"], "--hidden 1000000000 needs about"),
    (["hou-grid", "--hidden", "1000000000"], "--hidden 1000000000 needs about"),
    # silent wrong results: an empty sweep, a target no loss can reach
    (["hou-grid", "--target-loss", "nan"], "argument --target-loss: must be > 0, got nan"),
    (["fixedpoint", "sweep", "m.npz", "--min-bits", "20", "--max-bits", "12"],
     "--min-bits 20 is above --max-bits 12; nothing to sweep"),
    (["fixedpoint", "evaluate", "m.npz", "--limit", "0"], "argument --limit: must be >= 1, got 0"),
    (["fixedpoint", "evaluate", "m.npz", "--limit", "-5"], "argument --limit: must be >= 1, got -5"),
    (["fixedpoint", "evaluate", "m.npz", "--acc-bits", "70"], "argument --acc-bits: must be in 2..62, got 70"),
    (["fixedpoint", "convert", "c.npz", "--out", "m.npz", "--weight-bits", "1"],
     "argument --weight-bits: must be >= 2, got 1"),
])
def test_bad_values_are_refused_when_parsing(argv, message, capsys, monkeypatch, tmp_path):
    _refused_before_running(argv, message, capsys, monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A quantized LeNet-5 checkpoint (untrained: these tests only read it) and its integer model."""
    import tinyqnn as tq
    from tinyqnn.fixedpoint.convert import convert_lenet, save_integer_model
    from tinyqnn.models import LeNet5
    from tinyqnn.quant import QuantAct
    from tinyqnn.train import save_checkpoint

    folder = tmp_path_factory.mktemp("files")
    tq.manual_seed(0)
    model = LeNet5(batch_norm=True, bn_affine=False,
                   activation=lambda name, n: QuantAct(2, None, "clipped_relu")).eval()
    return {"checkpoint": save_checkpoint(folder / "q.npz", model),
            "integer": save_integer_model(convert_lenet(model), folder / "int.npz"), "folder": folder}


def _rewrite_meta(src, dst, edit):
    import json

    import numpy as np

    with np.load(src, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["meta"] = np.array(json.dumps(edit(json.loads(str(arrays["meta"])))))
    np.savez(dst, **arrays)
    return dst


def _one_line_error(argv, capsys) -> str:
    assert _run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("meta", [[1, 2, 3], 7, "text"])
def test_an_integer_model_whose_metadata_is_not_an_object_is_one_line(files, meta, tmp_path, capsys):
    bad = _rewrite_meta(files["integer"], tmp_path / "bad.npz", lambda m: meta)
    err = _one_line_error(["fixedpoint", "evaluate", str(bad), "--dataset", "mnist-subset", "--no-progress"], capsys)
    assert f"integer model {bad}: 'meta' must be a JSON object, got {type(meta).__name__}" in err


@pytest.mark.parametrize("key, value", [("input_zero_point", [0]), ("layers", 5), ("layers", [["conv1"]])])
def test_an_integer_model_with_a_list_or_number_where_an_entry_belongs_is_one_line(files, key, value, tmp_path,
                                                                                   capsys):
    def edit(m):
        m[key] = value
        return m

    bad = _rewrite_meta(files["integer"], tmp_path / "bad.npz", edit)
    err = _one_line_error(["fixedpoint", "evaluate", str(bad), "--dataset", "mnist-subset", "--no-progress"], capsys)
    assert f"integer model {bad} is inconsistent" in err


def test_a_record_asking_for_more_classes_than_the_file_holds_is_refused_before_building(files, tmp_path, capsys):
    def edit(m):
        m["model"]["kwargs"]["num_classes"] = 10 ** 11
        return m

    bad = _rewrite_meta(files["checkpoint"], tmp_path / "bad.npz", edit)
    err = _one_line_error(["evaluate", str(bad), "--dataset", "mnist-subset"], capsys)
    assert "asks for num_classes=100,000,000,000, more than the" in err


def test_build_model_says_when_a_record_is_too_large_for_memory(monkeypatch):
    from tinyqnn.models import LeNet5, build_model, model_record
    from tinyqnn.models import record as record_module

    record = model_record(LeNet5())

    def out_of_memory(**kwargs):
        raise MemoryError

    monkeypatch.setitem(record_module.ARCHITECTURES, "LeNet5", out_of_memory)
    with pytest.raises(ValueError, match=r"the recorded LeNet5\(num_classes=10, .*\) is too large to build"):
        build_model(record)


@pytest.mark.parametrize("content", [b"hello, I am a text file\n", b"", b"\x93NUMPY not a zip"])
@pytest.mark.parametrize("command", [["evaluate"], ["fixedpoint", "convert", "--out", "x.npz"],
                                     ["fixedpoint", "evaluate"]])
def test_a_file_that_is_not_an_archive_never_suggests_allow_pickle(content, command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.npz").write_bytes(content)
    err = _one_line_error([*command, "notes.npz"], capsys)
    assert "notes.npz is not a .npz archive (a .npz file is a zip archive; this one starts with" in err
    assert "pickle" not in err.lower()


def test_an_archive_with_pickled_objects_is_refused_without_suggesting_to_load_them(tmp_path, capsys):
    import numpy as np

    np.savez(tmp_path / "p.npz", meta=np.array([{"a": 1}], dtype=object))
    err = _one_line_error(["evaluate", str(tmp_path / "p.npz")], capsys)
    assert "holds pickled Python objects, which tinyqnn never writes and does not load" in err
    assert "allow_pickle" not in err


def test_a_resnet_checkpoint_given_to_fixedpoint_says_it_supports_lenet5_only(tmp_path, capsys):
    from tinyqnn.models import resnet20
    from tinyqnn.train import save_checkpoint

    ckpt = save_checkpoint(tmp_path / "resnet.npz", resnet20())
    for argv in (["fixedpoint", "convert", str(ckpt), "--out", str(tmp_path / "i.npz")],
                 ["fixedpoint", "report", str(ckpt), "--out", str(tmp_path / "rep")]):
        err = _one_line_error(argv, capsys)
        assert f"the integer unit supports LeNet-5 only; checkpoint {ckpt} holds a ResNetCIFAR" in err
    # evaluate rebuilds a ResNet (its record names the class), and says in one line that 28x28 digits do not fit it
    err = _one_line_error(["evaluate", str(ckpt), "--dataset", "mnist-subset"], capsys)
    assert "ResNetCIFAR expects images of shape (N, 3, H, W), got (1000, 1, 28, 28)" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resnet.npz"]
