"""The score cell at the end of every exercise (``tinyqnn.course.selfcheck``): it runs the notebook's visible test
cells in the kernel's namespace and scores them with nbgrader's rule. Here the namespace is a plain dict and the
kernel is this process (no IPython shell), as under Pyodide's kernel the module sees no difference."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tinyqnn.course import grading, new, selfcheck

REPO = grading.repo_root()
UNIT = "01_chain_rule"  # pure-Python tasks: running its cells here takes well under a second


def _notebook(tmp_path: Path, *cells: dict) -> Path:
    path = tmp_path / "unit.ipynb"
    path.write_text(json.dumps({"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def _test_cell(gid: str, source: str, points: int = 2) -> dict:
    return {"cell_type": "code", "id": gid, "outputs": [], "execution_count": None, "source": source,
            "metadata": {"nbgrader": {"grade": True, "grade_id": gid, "locked": True, "points": points,
                                      "schema_version": 3, "solution": False, "task": False}}}


def _scores(path: Path, namespace: dict) -> dict[str, tuple[float | None, str]]:
    return {s.grade_id: (s.score, s.message) for s in selfcheck.visible_scores(path, namespace)}


def _solved_namespace(unit: str) -> dict:
    """A namespace as a learner's kernel has it after running every cell above the tests with the reference
    solution pasted in (test cells and the score cell are not run)."""
    release = grading.read_notebook(REPO / grading.EXERCISES_DIR / unit / f"{unit}.ipynb")
    source = grading.read_notebook(REPO / grading.SOLUTIONS_DIR / unit / f"{unit}.ipynb")
    namespace: dict = {"__name__": "__main__"}
    for cell in grading.solved_copy(release, source).cells:
        if cell.cell_type == "code" and not grading.is_grade(cell) and cell.get("id") != selfcheck.CELL_ID:
            exec(compile(grading.source_text(cell), f"<{cell.get('id')}>", "exec"), namespace)
    return namespace


def test_the_reference_solution_earns_every_visible_point_and_a_wrong_answer_loses_its_task() -> None:
    path = REPO / grading.EXERCISES_DIR / UNIT / f"{UNIT}.ipynb"
    before = path.read_bytes()
    namespace = _solved_namespace(UNIT)
    scores = selfcheck.visible_scores(path, namespace)
    points = grading.auto_grade_cells(grading.read_notebook(path))
    assert {s.grade_id: s.score for s in scores} == points
    assert selfcheck.summary(scores) == (sum(points.values()), sum(points.values()))

    wrong = grading.load_wrong_answers(Path(__file__).parent / "wrong_answers" / f"{UNIT}.py")[0]
    exec(compile(wrong["source"], "<wrong>", "exec"), namespace)
    scores = {s.grade_id: s for s in selfcheck.visible_scores(path, namespace)}
    lost = {gid for gid, s in scores.items() if s.score != s.max_score}
    assert lost == set(wrong["fails"]), wrong["why"]
    assert all(scores[gid].score == 0 and scores[gid].message.startswith("AssertionError") for gid in lost)
    assert path.read_bytes() == before  # it writes nothing


def test_an_error_stderr_and_a_warning_shown_before_all_fail_and_partial_credit_counts(tmp_path: Path) -> None:
    path = _notebook(tmp_path,
                     _test_cell("test_ok", "assert f(2) == 4"),
                     _test_cell("test_raises", "x = 1\nassert f(3) == 10, 'f(3) should be 10'\n"),
                     _test_cell("test_stderr", "import sys\nprint('oops', file=sys.stderr)"),
                     _test_cell("test_warns", "import warnings\nwarnings.warn('careful')", points=1),
                     _test_cell("test_partial", "0.5 * 3", points=3))
    namespace: dict = {}
    exec("def f(x):\n    return x * x\n", namespace)
    for _ in range(2):  # the second run: the warning was shown once already, it still counts as in a fresh kernel
        got = _scores(path, namespace)
        assert got["test_ok"] == (2, "")
        assert got["test_raises"] == (0, "AssertionError: f(3) should be 10")
        assert got["test_stderr"][0] == 0 and "oops" in got["test_stderr"][1]
        assert got["test_warns"][0] == 0 and "careful" in got["test_warns"][1]
        assert got["test_partial"][0] == 1.5


def test_hidden_test_blocks_do_not_run_and_hand_graded_answers_are_not_in_the_total(tmp_path: Path,
                                                                                     capsys) -> None:
    manual = {"cell_type": "markdown", "id": "essay", "source": "answer",
              "metadata": {"nbgrader": {"grade": True, "grade_id": "essay", "locked": False, "points": 4,
                                        "schema_version": 3, "solution": True, "task": False}}}
    hidden = f"assert True\n{grading.BEGIN_HIDDEN}\nassert False, 'hidden'\n{grading.END_HIDDEN}\n"
    path = _notebook(tmp_path, _test_cell("test_a", hidden), manual)
    selfcheck.score_visible_tests(path, {})
    out = capsys.readouterr().out
    assert "visible tests: 2 / 2 points" in out, out
    assert "plus 4 points your instructor grades by hand" in out, out


def test_it_does_nothing_while_grading(tmp_path: Path, monkeypatch, capsys) -> None:
    path = _notebook(tmp_path, _test_cell("test_a", "ran.append(1)"))
    ran: list = []
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    selfcheck.score_visible_tests(path, {"ran": ran})
    assert ran == [] and "not run while grading" in capsys.readouterr().out
    monkeypatch.delenv("NBGRADER_EXECUTION")
    selfcheck.score_visible_tests(path, {"ran": ran})
    assert ran == [1]


def test_a_wrong_file_name_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="no notebook 03_layers.ipynb"):
        selfcheck.score_visible_tests("03_layers.ipynb", {})


def test_appending_the_score_cells_keeps_every_other_byte_and_is_idempotent(tmp_path: Path) -> None:
    source = REPO / grading.SOLUTIONS_DIR / UNIT / f"{UNIT}.ipynb"
    nb = json.loads(source.read_text())
    nb["cells"] = [c for c in nb["cells"] if c.get("id") not in (selfcheck.INTRO_ID, selfcheck.CELL_ID)]
    path = tmp_path / source.name
    path.write_text(grading.canonical_json(nb))
    before = nb["cells"]
    assert selfcheck.main([str(path)]) == 0
    after = json.loads(path.read_text())
    assert after["cells"][:-2] == before
    assert [c["id"] for c in after["cells"][-2:]] == [selfcheck.INTRO_ID, selfcheck.CELL_ID]
    text = path.read_bytes()
    assert selfcheck.main([str(path)]) == 0 and path.read_bytes() == text

    after["cells"].append(after["cells"].pop(0))  # the score cells no longer at the end
    with pytest.raises(ValueError, match="not at the end"):
        selfcheck.append_score_cells(after, path.name)


@pytest.mark.parametrize("folder", [grading.SOLUTIONS_DIR, grading.EXERCISES_DIR])
def test_every_notebook_ends_with_the_score_cell_for_its_own_file(folder: str) -> None:
    for path in sorted((REPO / folder).glob("*/*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        assert [c.get("id") for c in cells[-2:]] == [selfcheck.INTRO_ID, selfcheck.CELL_ID], path
        assert grading.source_text(cells[-1]) == selfcheck.cell_source(path.name), path
        assert not grading.nbgrader_meta(cells[-1]), f"{path}: the score cell is a plain cell (not graded, unlocked)"


def test_a_new_assignment_ends_with_the_score_cell() -> None:
    nb = new.assignment_notebook("11_example")
    assert [c.get("id") for c in nb.cells[-2:]] == [selfcheck.INTRO_ID, selfcheck.CELL_ID]
    assert grading.source_text(nb.cells[-1]) == selfcheck.cell_source("11_example.ipynb")


def test_the_table_shows_the_first_line_of_a_failure(tmp_path: Path, capsys) -> None:
    path = _notebook(tmp_path, _test_cell("test_a", "assert False, 'expected\\n[[1 0]\\n [0 1]]'"))
    selfcheck.score_visible_tests(path, {})
    out = capsys.readouterr().out
    assert "test_a" in out and "0 / 2   AssertionError: expected\n" in out and "[[1 0]" not in out, out
    assert "visible tests: 0 / 2 points" in out, out
