"""The learner's self-check (`python -m tinyqnn check`) on the first assignment: runs without a server."""
from __future__ import annotations

import re

import pytest

from coursekit import ASSIGNMENTS, REPO, source_notebooks
from tinyqnn.course import grading
from tinyqnn.course.check import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def first():
    if not ASSIGNMENTS:
        pytest.skip("no assignments")
    return ASSIGNMENTS[0]


def test_check_scores_the_untouched_exercise_zero(first, capsys):
    rc = main([str(REPO / grading.EXERCISES_DIR / first)])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "total: 0 /" in out and "NotImplementedError" in out, out


def test_check_gives_full_marks_to_a_solved_exercise(first, tmp_path, capsys):
    for name, source in source_notebooks(first).items():
        released = grading.read_notebook(REPO / grading.EXERCISES_DIR / first / f"{name}.ipynb")
        grading.write_notebook(grading.solved_copy(released, source), tmp_path / f"{name}.ipynb")
    rc = main([str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0, out
    total = sum(sum(grading.auto_grade_cells(nb).values()) for nb in source_notebooks(first).values())
    assert f"/ {total:g}" in out and "total: 0 /" not in out, out


def test_check_rejects_bad_paths(tmp_path, capsys):
    assert main([str(tmp_path / "nope.ipynb")]) == 2
    (tmp_path / "x.txt").write_text("hi")
    assert main([str(tmp_path / "x.txt")]) == 2


def test_check_without_jupyter_says_what_to_install(tmp_path, monkeypatch, capsys):
    """A learner set up for the main job only (``pip install -e .``) gets the exact install command."""
    import shlex
    import sys

    monkeypatch.setitem(sys.modules, "nbformat", None)  # `import nbformat` fails as if it were not installed
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"{shlex.quote(sys.executable)} -m pip install -e {shlex.quote(f'{REPO}[course]')}" in err, err


def _printed_commands(text: str) -> list[str]:
    return re.findall(r"`([^`]*-m tinyqnn [^`]*)`", text)


def test_every_command_the_notebooks_print_works_as_printed():
    """A notebook's ``python -m tinyqnn check ...`` ran the system Python, which has no tinyqnn. Every printed
    command must name the venv's interpreter and an existing path, and must start under a bare PATH."""
    import subprocess

    printed = {}
    for folder in (grading.SOLUTIONS_DIR, grading.EXERCISES_DIR, grading.LESSONS_DIR):
        for path in sorted((REPO / folder).rglob("*.ipynb")):
            nb = grading.read_notebook(path)
            for cell in nb.cells:
                for command in _printed_commands(grading.source_text(cell)):
                    printed.setdefault(command, path.relative_to(REPO))
    assert any(" check " in c for c in printed), printed
    for command, where in printed.items():
        words = command.split()
        assert words[0] == ".venv/bin/python", f"{where} prints {command!r}: not the venv's python"
        if words[3] == "check":
            assert (REPO / words[4]).is_dir(), f"{where} prints {command!r}: no such folder"
    venv_python = REPO / ".venv" / "bin" / "python"
    if not venv_python.exists():
        pytest.skip("no .venv in this checkout")
    for sub in sorted({c.split()[3] for c in printed}):
        run = subprocess.run([".venv/bin/python", "-m", "tinyqnn", sub, "--help"], cwd=REPO, capture_output=True,
                             text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(REPO), "LANG": "C.UTF-8"})
        assert run.returncode == 0 and f"usage: python -m tinyqnn {sub}" in run.stdout, run.stderr


@pytest.mark.parametrize("timeout", ["0", "-5"])
def test_check_refuses_a_timeout_that_is_not_positive(timeout, tmp_path, capsys):
    """`--timeout 0` used to hang on an endless loop (nbclient reads 0 as "no limit"); -5 was accepted."""
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path), "--timeout", timeout])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"must be >= 1, got {timeout}" in err and "Traceback" not in err, err


@pytest.mark.parametrize("text", ['{"a": 1}', "[1, 2]", "not json {"])
def test_check_on_a_file_that_is_not_a_notebook_is_one_line(text, tmp_path, capsys):
    path = tmp_path / "bogus.ipynb"
    path.write_text(text)
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and str(path) in err, err


def test_check_says_a_deleted_test_cell_scores_zero(first, tmp_path, capsys):
    """It used to print full marks and exit 0: the deleted cell simply was not there to fail."""
    folder = tmp_path / first
    for name, source in source_notebooks(first).items():
        released = grading.read_notebook(REPO / grading.EXERCISES_DIR / first / f"{name}.ipynb")
        solved = grading.solved_copy(released, source)
        victim = next(iter(grading.auto_grade_cells(solved)))
        grading.write_notebook(grading.delete_cell(solved, victim), folder / f"{name}.ipynb")
        break
    rc = main([str(folder)])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert re.search(rf"{victim}\s+0 / \d+\s+this test cell was deleted", out), out
