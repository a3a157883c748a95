"""Self-check feedback names the learner's broken solution cell (fast: executed notebooks built by hand)."""
from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_notebook, new_output

from tinyqnn.course import grading


def _cell(source: str, gid: str, *, solution: bool = False, points: float | None = None, error=None):
    meta = {"grade_id": gid, "solution": solution, "grade": points is not None, "locked": not solution}
    if points is not None:
        meta["points"] = points
    cell = new_code_cell(source, metadata={"nbgrader": meta})
    if error is not None:
        ename, evalue, traceback = error
        cell.outputs = [new_output("error", ename=ename, evalue=evalue, traceback=traceback)]
    return cell


def _notebook(*cells) -> nbformat.NotebookNode:
    return new_notebook(cells=list(cells))


SYNTAX = ("SyntaxError", "invalid syntax. Perhaps you forgot a comma? (2929722904.py, line 3)",
          ["  Cell In[3], line 3", "SyntaxError: invalid syntax"])
NAME_ADD = ("NameError", "name 'add' is not defined", ["NameError: name 'add' is not defined"])


def test_a_syntax_error_is_reported_at_its_task_with_type_and_line():
    nb = _notebook(_cell("def add(a, b)\n    return a +\n", "add", solution=True, error=SYNTAX),
                   _cell("assert add(1, 2) == 3", "test_add", points=1, error=NAME_ADD))
    message = grading.score_notebook(nb)["test_add"].message
    assert message.startswith("your cell 'add' failed when it ran: SyntaxError")
    assert "line 3 of the cell" in message and "2929722904.py" not in message
    assert "NameError" in message  # the test's own words are kept after the cause


def test_a_later_task_using_the_broken_function_names_it_too():
    nb = _notebook(_cell("def add(a, b)\n", "add", solution=True, error=SYNTAX),
                   _cell("def twice(a):\n    return add(a, a)\n", "twice", solution=True),
                   _cell("assert twice(2) == 4", "test_twice", points=2, error=NAME_ADD))
    assert grading.score_notebook(nb)["test_twice"].message.startswith("your cell 'add' failed")


def test_an_unrelated_failure_keeps_its_own_message():
    nb = _notebook(_cell("def add(a, b)\n", "add", solution=True, error=SYNTAX),
                   _cell("def mul(a, b):\n    return a + b\n", "mul", solution=True),
                   _cell("assert mul(2, 3) == 6", "test_mul", points=1,
                         error=("AssertionError", "", ["AssertionError"])))
    assert grading.score_notebook(nb)["test_mul"].message == "AssertionError"


def test_a_manually_graded_answer_is_listed_but_left_out_of_the_self_check_total():
    from nbformat.v4 import new_markdown_cell

    written = new_markdown_cell("My comparison ...", metadata={"nbgrader": {
        "grade_id": "essay", "solution": True, "grade": True, "locked": False, "points": 4}})
    nb = _notebook(_cell("def add(a, b):\n    return a + b\n", "add", solution=True),
                   _cell("assert add(1, 2) == 3", "test_add", points=2), written)
    assert grading.auto_grade_cells(nb) == {"test_add": 2.0}
    assert grading.manual_grade_cells(nb) == {"essay": 4.0}
    scores = grading.score_notebook(nb)
    assert scores["test_add"].score == 2.0 and scores["essay"].score is None
    assert "graded by hand" in scores["essay"].message
