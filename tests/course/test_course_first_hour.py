"""A learner's first hour in the workspace the README recommends (issue 20): the self-check command lesson 1
gives names the notebook they work on, and the lessons find the full-run results from there too."""
from __future__ import annotations

import contextlib
import io
import os
import re
import sys

from coursekit import REPO
from tinyqnn.course import grading, results_dir
from tinyqnn.course.workspace import create_workspace


def _code_cells(nb):
    return [grading.source_text(c) for c in nb.cells if c.cell_type == "code"]


def test_lesson1_prints_the_check_command_for_the_exercises_beside_the_lessons_it_runs_in(tmp_path):
    work = tmp_path / "work"
    create_workspace(work, REPO)
    nb = grading.read_notebook(work / grading.LESSONS_DIR / "01_chain_rule.ipynb")
    text = "\n".join(grading.source_text(c) for c in nb.cells if c.cell_type == "markdown")
    assert "from the tinyqnn folder" not in text and "the cell below prints" in text
    cell = next(src for src in _code_cells(nb) if "tinyqnn check" in src)
    here = os.getcwd()
    out = io.StringIO()
    try:
        os.chdir(work / grading.LESSONS_DIR)  # where Jupyter runs the lesson's kernel
        with contextlib.redirect_stdout(out):
            exec(cell, {})
    finally:
        os.chdir(here)
    exercise = work / grading.EXERCISES_DIR / "01_chain_rule"
    assert out.getvalue().strip() == f"{sys.executable} -m tinyqnn check {exercise}"
    assert exercise.is_dir() and any(exercise.glob("*.ipynb"))


def test_lessons_read_full_run_results_from_the_checkout_which_a_workspace_does_not_copy(tmp_path):
    named = set()
    for path in sorted((REPO / grading.LESSONS_DIR).glob("*.ipynb")):
        for src in _code_cells(grading.read_notebook(path)):
            assert "../results" not in src, f"{path.name} reads ../results, which a workspace does not have"
            named |= set(re.findall(r'results_dir\(\) / "([^"]+)"', src))
    assert named, "no lesson reads full-run results (the test would check nothing)"
    for folder in named:
        assert (results_dir() / folder).is_dir(), folder
    assert (results_dir() / "table1_mnist" / "table1.csv").is_file()
    work = tmp_path / "work"
    create_workspace(work, REPO)
    assert not (work / "results").exists()  # so the lessons must not look for ../results
