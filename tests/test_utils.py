"""tinyqnn.utils: stale temporary files, run folders that know what they wrote, BLAS threads; tinyqnn.args."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tinyqnn import utils
from tinyqnn.utils import atomic as atomic_writes
from tinyqnn.args import one_line, positive_float, positive_int
from tinyqnn.utils import (RUN_MANIFEST, atomic_write_bytes, clean_stale_parts, folder_state, recording_run,
                           remove_run_files, run_manifest)


# ---------------------------------------------------------------------- stale .part files
def test_a_killed_writer_leaves_a_part_file_that_the_next_write_removes(tmp_path):
    """A process killed inside ``atomic_path`` (os._exit: no cleanup runs) leaves its temporary file;
    the next tinyqnn write into that folder removes it, and only it."""
    script = textwrap.dedent(f"""
        import os
        from tinyqnn.utils import atomic_path
        with atomic_path({str(tmp_path / "ck.npz")!r}) as tmp:
            tmp.write_bytes(b"half a checkpoint")
            os._exit(9)
    """)
    assert subprocess.run([sys.executable, "-c", script]).returncode == 9
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".ck.npz.") and left[0].endswith(".part"), left

    foreign = [tmp_path / ".ck.npz.abc123.part", tmp_path / "notes.part"]  # not tinyqnn's pattern: kept
    live = tmp_path / f".other.tinyqnn-{atomic_writes._host_tag()}-{os.getpid()}-x1y2z3.part"  # a live writer's: kept
    elsewhere = tmp_path / ".other.tinyqnn-another-host-1-x1y2z3.part"  # another host's PID means nothing here
    for path in [*foreign, live, elsewhere]:
        path.write_bytes(b"")
    atomic_writes._CLEANED.discard(str(tmp_path.resolve()))
    atomic_write_bytes(tmp_path / "metrics.json", b"{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [p.name for p in (*foreign, live, elsewhere)] + ["metrics.json"])


def test_clean_stale_parts_keeps_a_writer_that_is_still_running(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        part = tmp_path / f".x.npz.tinyqnn-{atomic_writes._host_tag()}-{child.pid}-abcdefgh.part"
        part.write_bytes(b"")
        assert clean_stale_parts(tmp_path) == [] and part.exists()
    finally:
        child.kill()
        child.wait()
    assert clean_stale_parts(tmp_path) == [part] and not part.exists()


# ---------------------------------------------------------------------- run folders
def test_recording_run_lists_exactly_the_files_written_inside_it(tmp_path):
    run = tmp_path / "run"
    with recording_run(run, "train"):
        atomic_write_bytes(run / "a.json", b"1")
        atomic_write_bytes(run / "cell" / "b.npz", b"2")
        atomic_write_bytes(tmp_path / "outside.txt", b"3")  # not in the run folder: not recorded
        (run / "by_hand.txt").write_text("not through atomic_path")
    manifest = run_manifest(run)
    assert manifest["command"] == "train" and manifest["files"] == ["a.json", "cell/b.npz"]
    assert folder_state(run) == "own"


def test_remove_run_files_removes_only_recorded_files(tmp_path):
    run = tmp_path / "run"
    with recording_run(run, "demo"):
        atomic_write_bytes(run / "float" / "checkpoint.npz", b"1")
        atomic_write_bytes(run / "2bit" / "final.json", b"2")
        atomic_write_bytes(run / "table.md", b"3")
    (run / "2bit" / "my_notes.txt").write_text("mine")  # the user's file inside a run folder
    (run / "mine.txt").write_text("mine")
    removed = remove_run_files(run, also=("float/final.json",))  # also: not there, fine
    assert sorted(p.relative_to(run).as_posix() for p in removed) == ["2bit/final.json", "float/checkpoint.npz",
                                                                       "table.md"]
    assert sorted(p.relative_to(run).as_posix() for p in run.rglob("*")) == ["2bit", "2bit/my_notes.txt", "mine.txt"]


def test_a_tampered_manifest_cannot_delete_outside_the_run(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (run / RUN_MANIFEST).write_text(json.dumps({"tinyqnn_run": 1, "command": "demo",
                                                "files": ["../victim.txt", str(victim)]}))
    assert remove_run_files(run) == [] and victim.read_text() == "keep me"


def test_folder_state(tmp_path):
    assert folder_state(tmp_path / "missing") == "empty"
    assert folder_state(tmp_path) == "empty"
    (tmp_path / "x.txt").write_text("x")
    assert folder_state(tmp_path) == "foreign"
    (tmp_path / RUN_MANIFEST).write_text("not json")  # a broken manifest proves nothing
    assert folder_state(tmp_path) == "foreign"
    with pytest.raises(NotADirectoryError, match="x.txt is a file"):
        folder_state(tmp_path / "x.txt")


def test_a_run_that_writes_nothing_leaves_no_folder(tmp_path):
    with pytest.raises(RuntimeError):
        with recording_run(tmp_path / "run", "train"):
            raise RuntimeError("failed before the first epoch")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------- threads
def test_set_num_threads_for_this_process_and_its_children(blas_threads_restored):
    from tinyqnn.engine import parallel

    utils.set_num_threads(1)
    assert utils.get_num_threads() == 1 and os.environ["OPENBLAS_NUM_THREADS"] == "1"
    assert parallel.THREADS == 1 and os.environ["TINYQNN_THREADS"] == "1"
    utils.set_num_threads(2)  # tinyqnn's own threads; BLAS stays at one
    assert parallel.THREADS == 2 and os.environ["TINYQNN_THREADS"] == "2"
    assert utils.get_num_threads() == 1 and os.environ["OPENBLAS_NUM_THREADS"] == "1"
    utils.set_num_threads(1, blas_threads=2)
    assert parallel.THREADS == 1 and utils.get_num_threads() == 2 and os.environ["OMP_NUM_THREADS"] == "2"
    with pytest.raises(ValueError, match="blas_threads"):
        utils.set_num_threads(1, blas_threads=0)
    with pytest.raises(ValueError, match="threads"):
        utils.set_num_threads(0)


def test_child_processes_inherit_tinyqnn_threads(blas_threads_restored):
    utils.set_num_threads(3)
    code = "from tinyqnn.engine import parallel; print(parallel.THREADS)"
    for env, expected in ((utils.child_env(), "3"),
                          (utils.child_env({"TINYQNN_THREADS": "zero"}), "1")):  # not a count: ignored
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        assert out.stdout.strip() == expected


# ---------------------------------------------------------------------- tinyqnn.args
def test_one_line_has_no_repr_quotes_errno_or_line_breaks():
    assert one_line(KeyError("checkpoint ck.npz lacks\nmodel/fc.weight")) == "checkpoint ck.npz lacks; model/fc.weight"
    err = NotADirectoryError(20, "Not a directory", "runs/file/ck.npz")
    assert one_line(err) == "Not a directory: runs/file/ck.npz"
    assert one_line(ValueError("")) == "ValueError"


@pytest.mark.parametrize("parse, text", [(positive_int, "0"), (positive_int, "-1"), (positive_int, "1.5"),
                                         (positive_float, "0"), (positive_float, "nan"), (positive_float, "x")])
def test_argument_types_refuse_bad_values(parse, text):
    with pytest.raises(argparse.ArgumentTypeError, match=text if text != "nan" else "> 0"):
        parse(text)
