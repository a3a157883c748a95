"""The converted units' wrong answers through ``python -m tinyqnn grade`` (their nbgrader path is
test_course_autograde.py): tests whose verdicts are computed in the grader process must still take a plausible
wrong answer's points, and only that task's. One small class per unit: the solution and two wrong answers
(different tasks), graded by ``grade --jobs 2``.
"""
from __future__ import annotations

import pytest

from coursekit import ASSIGNMENTS, REPO, WRONG_DIR, full_marks, notebook_with_cell, source_notebooks
from tinyqnn.course import grade, grading, release, verdict

pytestmark = pytest.mark.slow

CONVERTED = [a for a in ASSIGNMENTS if (WRONG_DIR / f"{a}.py").exists()
             and any(verdict.grader_mode(nb) for nb in source_notebooks(a).values())]


def _two_wrong_answers(assignment: str) -> list[dict]:
    """The first wrong answer of the first two tasks that have one."""
    picked: dict[str, dict] = {}
    for wa in grading.load_wrong_answers(WRONG_DIR / f"{assignment}.py"):
        picked.setdefault(wa["cell"], wa)
    return list(picked.values())[:2]


@pytest.mark.parametrize("unit", CONVERTED)
def test_wrong_answers_lose_their_task_s_points_when_graded_by_grade(unit, tmp_path):
    assignment = unit
    course = grading.TempCourse(tmp_path / assignment, repo=REPO)
    release.generated_files(course, assignment)
    sources = source_notebooks(assignment)
    solved = {n: grading.solved_copy(course.release_notebook(assignment, n), sources[n]) for n in sources}
    manual = {n: grading.manual_grade_cells(nb) for n, nb in sources.items()}
    for name, gids in manual.items():  # the solution writes its manually graded answers too (unit 10's comparison)
        for gid in gids:
            solved[name] = grading.replace_cell(solved[name], gid, "A written answer, for the instructor to grade.\n")
    full = full_marks(sources)
    expected = {"solution": full}
    course.submit("solution", assignment, solved)
    wrong = _two_wrong_answers(assignment)
    assert wrong, f"{assignment}: no wrong answers to try"
    for i, wa in enumerate(wrong):
        name = notebook_with_cell(sources, wa["cell"])
        course.submit(f"wrong_{i}", assignment, {**solved, name: grading.replace_cell(solved[name], wa["cell"],
                                                                                      wa["source"])})
        expected[f"wrong_{i}"] = {n: {gid: (0.0 if n == name and gid in wa["fails"] else pts)
                                      for gid, pts in full[n].items()} for n in full}
    outcomes = grade.grade(course.path, assignment, jobs=2, progress=False)
    assert sorted(o.student for o in outcomes) == sorted(expected), outcomes
    scores = course.scores(assignment)
    for student, want in expected.items():
        got = {n: {gid: s.score for gid, s in cells.items()} for n, cells in scores[student].items()}
        why = wrong[int(student[-1])]["why"] if student.startswith("wrong") else "the solution"
        assert got == want, f"{assignment}: {student} ({why})"
    # a manually graded answer (unit 10's written comparison) waits for formgrader, as after nbgrader autograde
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gb:
        for name, gids in manual.items():
            for g in gb.find_submission_notebook(name, assignment, "solution").grades:
                if g.name in gids:
                    assert g.auto_score is None and g.needs_manual_grade, f"{assignment}: {g.name} is not left to a person"
