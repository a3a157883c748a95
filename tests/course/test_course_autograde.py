"""CI checks 2-5 with real `nbgrader autograde` (scores read from the gradebook, never from exit codes).

One autograde call per assignment grades all fake students: "solution" (check 2), "exercise" (check 3),
"wrong_round_NN" (check 4: wrong answers, each round's answers for different cells and failing different tests, so
each one loses exactly its points), "right_round_NN" (correct answers in another style, one per cell and round: full
marks)
and "edge_cases" (check 5); "<first>:loop" grades an endless loop with a short timeout.
"""
from __future__ import annotations

import pytest

from coursekit import (ASSIGNMENTS, LOOP_TIMEOUT, right_answer_student, source_notebooks, tasks,
                       wrong_answer_student)
from tinyqnn.course import grading

pytestmark = pytest.mark.slow


def assert_scores(batch, student: str) -> None:
    batch.require()
    assert student in batch.students, f"{batch.assignment}: no student {student!r} planned"
    got = batch.scores.get(student)
    assert got is not None, f"{batch.assignment}: nbgrader recorded no submission for {student!r}\n" + batch.explain(student)
    for name in batch.students[student].expected:
        assert batch.course.autograded_notebook(student, batch.assignment, name).exists(), (
            f"nbgrader failed to autograde {student}'s {name}.ipynb (the kernel died?)\n" + batch.explain(student))
    mismatched = [
        (name, gid) for name, expected in batch.students[student].expected.items()
        for gid, want in expected.items()
        if got.get(name, {}).get(gid) is None or got[name][gid].score != want
    ]
    assert not mismatched, f"unexpected scores for {mismatched}\n" + batch.explain(student)


def test_solution_gets_full_marks(assignment, batches):
    assert_scores(batches[assignment], "solution")


def test_untouched_exercise_runs_to_the_end_with_zero_points(assignment, batches):
    batch = batches[assignment]
    assert_scores(batch, "exercise")
    for name in batch.students["exercise"].expected:
        nb = batch.autograded("exercise", name)
        skipped = [i + 1 for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.get("execution_count") is None
                   and grading.source_text(c).strip()]
        assert not skipped, f"{assignment}/{name}: code cells {skipped} never ran (execution stopped early?)"


def test_wrong_answer_loses_exactly_its_points(wrong_case, batches):
    assignment, index = wrong_case
    assert_scores(batches[assignment], wrong_answer_student(assignment, index))


def test_right_answer_in_another_style_gets_full_marks(right_case, batches):
    assignment, index = right_case
    assert_scores(batches[assignment], right_answer_student(assignment, index))


def test_edge_cases_are_graded_and_isolated(assignment, batches):
    """Syntax error, cell-level exception, deleted test cell, deleted solution cell: only those tasks lose."""
    batch = batches[assignment]
    batch.require()
    if "edge_cases" not in batch.students:
        first = next(iter(source_notebooks(assignment).values()))
        pytest.fail(f"{assignment}: the edge-case check needs at least 4 tasks in the first notebook (syntax error, "
                    f"exception, deleted test cell, deleted solution cell each go to one task); it has "
                    f"{len(tasks(first))}: add tasks (INSTRUCTORS.md, section 5)")
    assert_scores(batch, "edge_cases")
    # nbgrader 0.9 leaves a deleted grade cell without an auto score (shown as 0, flagged for manual grading)
    manual = {gid for nb in source_notebooks(assignment).values() for gid in grading.manual_grade_cells(nb)}
    deleted = [gid for name, cells in batch.scores["edge_cases"].items() for gid, s in cells.items()
               if s.message == "auto_score=None" and gid not in manual]
    assert len(deleted) == 1, f"expected exactly the deleted test cell without an auto score, got {deleted}"


def test_infinite_loop_times_out_and_the_rest_is_graded(batches):
    if not ASSIGNMENTS:
        pytest.skip("no assignments")
    batch = batches[f"{ASSIGNMENTS[0]}:loop"]
    assert_scores(batch, "infinite_loop")
    nb = batch.autograded("infinite_loop", next(iter(batch.students["infinite_loop"].notebooks)))
    errors = [o.get("ename") for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert "KeyboardInterrupt" in errors or "CellTimeoutError" in errors, f"no timeout recorded: {errors}"
    assert batch.run.seconds < 20 * LOOP_TIMEOUT, f"autograde took {batch.run.seconds:.0f} s"


def test_self_check_scoring_agrees_with_the_gradebook(assignment, batches):
    """`python -m tinyqnn check` scores an executed notebook with grading.score_notebook: same numbers as nbgrader."""
    batch = batches[assignment]
    batch.require()
    disagreements = []
    for student, plan in batch.students.items():
        for name in plan.notebooks:
            nb = batch.autograded(student, name)
            if nb is None:
                continue
            ours = grading.score_notebook(nb)
            manual = grading.manual_grade_cells(nb)  # scored by a person, not by check (nor by autograde: 0)
            for gid, s in batch.scores.get(student, {}).get(name, {}).items():
                if gid in ours and gid not in manual and ours[gid].score != s.score:
                    disagreements.append(f"{student}/{name}:{gid}: check says {ours[gid].score}, nbgrader {s.score}")
    assert not disagreements, "\n".join(disagreements)


def test_timings_are_reported(batches, record_property):
    """Not a check: puts the measured autograde times in the JUnit XML / -rA output."""
    for key, batch in batches.items():
        if batch.run is not None:
            record_property(f"autograde_seconds[{key}]", round(batch.run.seconds, 1))
            print(f"{key}: generate {batch.release_seconds:.1f} s, autograde of {len(batch.students)} students "
                  f"{batch.run.seconds:.1f} s")
