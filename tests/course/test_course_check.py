"""The learner's self-check (`python -m tinyqnn check`) on the first assignment: runs without a server."""
from __future__ import annotations

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
