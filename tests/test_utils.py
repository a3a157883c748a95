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
from tinyqnn.args import one_line, positive_float, positive_int
from tinyqnn.utils import (RUN_MANIFEST, RunFolderError, atomic_write_bytes, claim_folder, clean_stale_parts,
                           folder_state, output_file, output_folder, recording_run, remove_run_files, run_manifest,
                           tag, written_by)
from tinyqnn.utils import atomic as atomic_writes


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


def test_inside_a_run_folder_a_users_file_is_never_replaced(tmp_path):
    """atomic_path refuses to replace a file in a recording run folder that no tinyqnn run listed there."""
    (tmp_path / "notes.txt").write_text("mine")
    with recording_run(tmp_path, "cmd"):
        atomic_write_bytes(tmp_path / "result.json", b"1")  # new: written and recorded
        atomic_write_bytes(tmp_path / "result.json", b"2")  # its own: replaced
        with pytest.raises(RunFolderError, match="notes.txt already exists and was not written by tinyqnn cmd"):
            atomic_write_bytes(tmp_path / "notes.txt", b"overwritten")
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "result.json").read_text() == "2"
    with recording_run(tmp_path, "other"):  # another tinyqnn command's listed files may be replaced
        atomic_write_bytes(tmp_path / "result.json", b"3")
    with recording_run(tmp_path, "cmd", replace_unlisted=True):  # --force
        atomic_write_bytes(tmp_path / "notes.txt", b"forced")
    assert (tmp_path / "notes.txt").read_text() == "forced"
    atomic_write_bytes(tmp_path / "notes.txt", b"outside a run: no manifest rule")


def test_output_folder_and_claim_folder(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "tables.md").write_text("mine")
    with pytest.raises(RunFolderError, match="is not a cmd run"):
        claim_folder(tmp_path / "a", "cmd")
    claim_folder(tmp_path / "a", "cmd", force=True)
    with output_folder(tmp_path / "b", "cmd", writes=("tables.md",)):
        atomic_write_bytes(tmp_path / "b" / "tables.md", b"ours")
    (tmp_path / "b" / "summary.json").write_text("mine")
    with pytest.raises(RunFolderError, match="holds summary.json, which tinyqnn cmd did not write"):
        claim_folder(tmp_path / "b", "cmd", writes=("tables.md", "summary.json"))
    claim_folder(tmp_path / "b", "cmd", writes=("tables.md",))  # its own tables.md: fine
    with pytest.raises(RunFolderError):  # refused on entry: nothing runs, nothing is written
        with output_folder(tmp_path / "a", "cmd"):
            raise AssertionError("the block must not run")


def test_output_file_refuses_the_input_a_folder_and_a_foreign_file(tmp_path):
    src = tmp_path / "ckpt.npz"
    src.write_bytes(b"weights")
    link = tmp_path / "same.npz"
    link.symlink_to(src)
    for target in (src, link):
        with pytest.raises(RunFolderError, match="would replace what it reads"):
            output_file(target, "convert", lambda p: True, force=True, inputs=(src,))
    with pytest.raises(RunFolderError, match="is a folder"):
        output_file(tmp_path, "convert", lambda p: True)
    with pytest.raises(RunFolderError, match="not a file tinyqnn convert wrote"):
        output_file(src, "convert", lambda p: False)
    assert output_file(src, "convert", lambda p: False, force=True) == src
    assert output_file(tmp_path / "new.npz", "convert", lambda p: False) == tmp_path / "new.npz"
    mine = tmp_path / "b.json"
    atomic_write_bytes(mine, json.dumps(tag({"x": 1}, "benchmark")).encode())
    assert written_by(mine, "benchmark") and not written_by(mine, "fixedpoint bench")
    mine.write_text("[1, 2]")
    assert not written_by(mine, "benchmark")


def test_json_outputs_of_the_benchmarks_are_refused_before_measuring(tmp_path, capsys):
    from tinyqnn.bench import throughput
    from tinyqnn.fixedpoint import benchmark as fixedpoint_bench

    mine = tmp_path / "numbers.json"
    mine.write_text("{\"mine\": 1}")
    for main in (throughput.main, fixedpoint_bench.main):
        with pytest.raises(SystemExit) as refused:  # argparse's error: one line, status 2, before any timing
            main(["--json", str(mine)])
        assert refused.value.code == 2
        assert "not a file tinyqnn" in capsys.readouterr().err and mine.read_text() == "{\"mine\": 1}"


def test_theory_figures_refuse_a_folder_with_a_users_file(tmp_path, capsys):
    from tinyqnn.cli import main

    (tmp_path / "theory.json").write_text("mine")
    assert main(["theory-figures", "--quick", "--out", str(tmp_path)]) == 2
    assert "not a theory-figures run" in capsys.readouterr().err and (tmp_path / "theory.json").read_text() == "mine"


def test_committed_result_folders_list_what_their_commands_wrote():
    """Every results/ folder a command wrote carries its manifest, so rerunning the command there (as the README
    says) replaces those files; a manifest must not name files that are not there."""
    from pathlib import Path

    results = Path(__file__).resolve().parents[1] / "results"
    manifests = sorted(results.rglob(RUN_MANIFEST))
    assert {m.parent.name for m in manifests} >= {"linear", "mlp", "grid", "fixedpoint", "instability", "theory"}
    for manifest in manifests:
        listed = run_manifest(manifest.parent)
        assert listed is not None, manifest
        missing = [rel for rel in listed["files"] if not (manifest.parent / rel).is_file()]
        assert not missing, f"{manifest} lists missing files {missing[:5]}"
        assert folder_state(manifest.parent, listed["command"]) == "own"
