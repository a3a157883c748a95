"""The course checks' own bookkeeping (coursekit.py): right and wrong answers share fake students without losing
one, and a wrong answer never shares one with an answer that could hide its lost points."""
from __future__ import annotations

from coursekit import (ASSIGNMENTS, WRONG_DIR, answer_rounds, right_answer_cases, right_answer_student, right_student,
                       wrong_answer_cases, wrong_answer_student, wrong_rounds, wrong_student)
from tinyqnn.course import grading


def test_rounds_hold_every_answer_once_and_never_two_for_one_cell():
    answers = [{"cell": c} for c in ("a", "b", "a", "c", "a", "b")]
    rounds = answer_rounds(answers)
    assert rounds == [[0, 1, 3], [2, 5], [4]]
    assert answer_rounds([]) == []


def _rounds_of_every_unit(load, make_rounds, student_of, round_student, distinct):
    """For every unit's answers (``load``): each answer in exactly one round, ``student_of`` naming that round's
    student, and ``distinct(answer)``'s items never shared within a round."""
    for assignment in ASSIGNMENTS:
        path = WRONG_DIR / f"{assignment}.py"
        answers = load(path) if path.exists() else []
        rounds = make_rounds(answers)
        assert sorted(i for r in rounds for i in r) == list(range(len(answers))), assignment
        for k, indices in enumerate(rounds):
            items = [item for i in indices for item in distinct(answers[i])]
            assert len(items) == len(set(items)), (assignment, k, items)
            assert all(student_of(assignment, i) == round_student(k) for i in indices)


def test_every_right_answer_has_a_round_student_with_no_other_answer_for_its_cell():
    assert right_answer_cases(), "no right answers found"
    _rounds_of_every_unit(grading.load_right_answers, answer_rounds, right_answer_student, right_student,
                          lambda answer: [answer["cell"]])


def test_wrong_rounds_never_pair_answers_for_one_cell_or_one_failing_test():
    answers = [{"cell": "a", "fails": ["test_a"]}, {"cell": "b", "fails": ["test_b"]},
               {"cell": "a", "fails": ["test_a"]}, {"cell": "c", "fails": ["test_c", "test_b"]},
               {"cell": "d", "fails": ["test_d"]}]
    assert wrong_rounds(answers) == [[0, 1, 4], [2, 3]]
    assert wrong_rounds([]) == []


def test_every_wrong_answer_has_a_round_student_whose_lost_tests_are_its_own():
    assert wrong_answer_cases(), "no wrong answers found"
    _rounds_of_every_unit(grading.load_wrong_answers, wrong_rounds, wrong_answer_student, wrong_student,
                          lambda answer: [("cell", answer["cell"]), *(("test", t) for t in answer["fails"])])
