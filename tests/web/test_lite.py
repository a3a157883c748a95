"""The browser course (`make lite-offline`) in headless Chromium on 127.0.0.1 with the offline Pyodide bundle:
a lesson runs to its last cell; every exercise runs to its score cell with the reference solution pasted in and
the score cell shows full visible marks; with a plausible wrong answer a test fails and the score cell shows the
lost points; no request leaves 127.0.0.1. Each test starts one Pyodide kernel (about 30 s).

Every exercise in the browser costs 20-40 min of CI on two cores, so by default only the exercises whose code
meets wasm32's 32-bit NumPy integers (unit 4's bincount, unit 8's integer arithmetic) run here, beside unit 1's
right/wrong test; ``TINYQNN_WEB_EXERCISES=all`` (or a comma-separated list of units) runs the others too."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import nbformat
import pytest

from tinyqnn.course import grading
from tinyqnn.course.web import browser, drive

pytestmark = [pytest.mark.usefixtures("browser_ready"), pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
UNIT = "01_chain_rule"
UNITS = grading.assignments(ROOT)
WASM32_SENSITIVE = ["04_conv_lenet", "08_fixed_point"]


def exercises_to_run() -> list[str]:
    chosen = os.environ.get("TINYQNN_WEB_EXERCISES", "")
    if chosen == "all":
        return UNITS
    if chosen:
        wanted = chosen.split(",")
        unknown = sorted(set(wanted) - set(UNITS))
        if unknown:
            raise ValueError(f"TINYQNN_WEB_EXERCISES names no unit {unknown}; units: {UNITS}")
        return wanted
    return WASM32_SENSITIVE


@pytest.fixture
def lite_browser(offline_lite: Path):
    failed: list[str] = []
    with browser.serve(offline_lite) as base, browser.browser_context() as (context, guard):
        context.route("**/jupyter-lite.json*", drive.expose_app)
        # JupyterLite asks for favicons it does not ship: not ours to fix, and nothing leaves the machine
        context.on("response", lambda r: failed.append(f"{r.status} {r.url}")
                   if r.status >= 400 and "/favicons/" not in r.url else None)
        yield context, base
        assert not guard.outside, f"requests left 127.0.0.1: {guard.outside}"
        assert not failed, failed


def solution_sources(unit: str) -> dict[str, str]:
    """grade_id -> source of every solution cell of solutions/<unit> (the instructor's reference)."""
    nb = nbformat.read(ROOT / "solutions" / unit / f"{unit}.ipynb", as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("solution")}


def wrong_answer(unit: str) -> dict:
    spec = importlib.util.spec_from_file_location("wrong", ROOT / "tests" / "course" / "wrong_answers" / f"{unit}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.WRONG_ANSWERS[0]


def visible_points(unit: str) -> float:
    """The exercise's autograded points (what full visible marks are)."""
    return sum(grading.auto_grade_cells(grading.read_notebook(ROOT / "exercises" / unit / f"{unit}.ipynb")).values())


# lesson 4: its confusion matrix needed np.intp indices for np.bincount (NumPy's default int is 32-bit there)
@pytest.mark.parametrize("lesson", [UNIT, "04_conv_lenet"])
def test_a_lesson_runs_to_its_last_cell_in_the_browser(lite_browser, lesson: str) -> None:
    context, base = lite_browser
    run = drive.run_notebook(context, base, f"lessons/{lesson}.ipynb")
    assert not run.errors, run.errors
    assert run.reached_end
    figures = [o for c in run.cells for o in c["outputs"] if "image/png" in o.get("data", {})]
    assert figures, "the lesson's figures were not drawn"


@pytest.mark.parametrize("unit", exercises_to_run())
def test_every_exercise_runs_to_its_score_cell_with_full_visible_marks(lite_browser, unit: str) -> None:
    context, base = lite_browser
    run = drive.run_notebook(context, base, f"exercises/{unit}/{unit}.ipynb", solution_sources(unit))
    assert not run.errors, run.errors
    assert run.reached_end
    total = visible_points(unit)
    shown = drive.output_text(run.cells[-1]["outputs"])
    assert f"visible tests: {total:g} / {total:g} points" in shown, shown


def test_an_exercise_passes_with_the_solution_and_fails_with_a_wrong_one(lite_browser) -> None:
    context, base = lite_browser
    path = f"exercises/{UNIT}/{UNIT}.ipynb"
    sources = solution_sources(UNIT)
    wrong = wrong_answer(UNIT)
    page = context.new_page()
    try:
        drive.open_notebook(page, base, path)
        assert page.evaluate(drive.SET_SOURCES, sources) == len(sources)
        right = drive.Run(drive.run_all(page)[0])
        assert not right.errors, right.errors
        assert right.reached_end
        graded = [c["id"] for c in right.cells if c["id"] and c["id"].startswith("test_")]
        assert len(graded) >= 5, graded

        total = visible_points(UNIT)
        assert f"visible tests: {total:g} / {total:g} points" in drive.output_text(right.cells[-1]["outputs"])

        assert page.evaluate(drive.SET_SOURCES, {wrong["cell"]: wrong["source"]}) == 1
        bad = drive.Run(drive.run_all(page)[0])  # stops at the failing test cell, as JupyterLab does
        shown = drive.output_text(page.evaluate(drive.RUN_LAST))  # the learner then runs the score cell
    finally:
        page.close()
    assert list(bad.errors) == wrong["fails"][:1], (bad.errors, wrong["why"])
    assert "AssertionError" in bad.errors[wrong["fails"][0]], bad.errors
    lost = sum(grading.auto_grade_cells(grading.read_notebook(ROOT / "exercises" / UNIT / f"{UNIT}.ipynb"))[gid]
               for gid in wrong["fails"])
    assert f"visible tests: {total - lost:g} / {total:g} points" in shown, shown
    for gid in wrong["fails"]:
        assert any(line.split()[:2] == [gid, "0"] and "AssertionError" in line for line in shown.splitlines()), shown
