"""Subprocesses tinyqnn starts work with the venv *not* activated (issue: fresh-machine failure).

On a fresh machine the README runs ``.venv/bin/python -m pytest`` without activating the venv, so PATH
holds no ``alembic``; nbgrader shells out to it for every gradebook. These tests empty PATH of every
tool and check that the child still finds the interpreter's own ``bin/``.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

import coursekit
from tinyqnn.course import grading
from tinyqnn.utils import child_env

BIN = os.path.dirname(sys.executable)


def test_child_env_puts_the_interpreters_bin_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    env = child_env({"EXTRA": "1"})
    assert env["PATH"].split(os.pathsep) == [BIN, str(tmp_path)]
    assert env["EXTRA"] == "1"
    assert os.environ["PATH"] == str(tmp_path)  # the parent's environment is untouched
    monkeypatch.setenv("PATH", os.pathsep.join([BIN, str(tmp_path)]))
    assert child_env()["PATH"].split(os.pathsep) == [BIN, str(tmp_path)]  # not prepended twice


@pytest.mark.skipif(shutil.which("alembic", path=BIN) is None,
                    reason="this interpreter's bin/ has no alembic (nbgrader not installed here)")
def test_nbgrader_gradebook_works_without_alembic_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The regression test: nbgrader's `alembic` call succeeds although PATH names no folder that has it."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("alembic") is None and shutil.which("nbgrader") is None
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(coursekit.REPO / grading.CONFIG_FILE, course / grading.CONFIG_FILE)
    proc = grading.run_nbgrader(["db", "assignment", "add", "01_chain_rule"], cwd=course, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (course / "gradebook.db").is_file()
