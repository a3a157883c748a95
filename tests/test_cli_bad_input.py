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
