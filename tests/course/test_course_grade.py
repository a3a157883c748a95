"""``python -m tinyqnn grade`` on a small synthetic class, against sequential ``nbgrader autograde``.

One course folder is graded by nbgrader (the reference) and a copy of it by ``grade``: per-cell scores must
be equal on honest work (correct, another style, wrong, partial, blank, an endless loop), and dishonest
submissions must score nothing with ``grade`` (nbgrader gives them points: the class has teeth).
"""
from __future__ import annotations

import shutil
import sys

import pytest

from test_course_verdict import CLIP, DOUBLE, PROT, assignment
from tinyqnn.course import grade, grading, sandbox

ASSIGNMENT = "01_synthetic"
CELL_LIMIT = 5  # seconds per cell, for nbgrader and grade alike (the endless loop costs this)

HONEST = {
    "correct": {},
    "other_style": {"double": "def double(x):\n    return x + x\n",
                    "clip_gradient": "def clip_gradient(g, c):\n    s = c * g.std()\n    return np.minimum(np.maximum(g, -s), s)\n"},
    "wrong": {"double": "def double(x):\n    return np.asarray(x, dtype=np.float64) * 2\n",
              "clip_gradient": "def clip_gradient(g, c):\n    return np.clip(g, -c, c)\n"},
    "partial": {"double": "def double(x):\n    return 2.0 * x.astype(np.float64)\n"},
    "loops": {"double": "def double(x):\n    while True:\n        pass\n"},
}
DISHONEST = {
    "patches_allclose": {"clip_gradient": "np.allclose = lambda *a, **k: True\n"
                                          "def clip_gradient(g, c):\n    return g\n"},
    "delegates": {"clip_gradient": "from tinyqnn.distributed.gradient import clip_gradient as _c\n"
                                   "def clip_gradient(g, c):\n    return _c(g, c)[0]\n"},
}


def submission(release, answers):
    nb = grading.solved_copy(release, assignment())
    for gid, source in answers.items():
        nb = grading.replace_cell(nb, gid, source)
    return nb


@pytest.fixture(scope="module")
def courses(tmp_path_factory):
    """(nbgrader's course, grade's course): same release, same submissions; nbgrader has autograded its own."""
    ref = grading.TempCourse(tmp_path_factory.mktemp("nbgrader"), timeout=CELL_LIMIT)
    grading.write_notebook(assignment(), ref.path / grading.SOLUTIONS_DIR / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    ref.generate(ASSIGNMENT)
    release = ref.release_notebook(ASSIGNMENT)
    students = {**HONEST, **DISHONEST}
    for student, answers in students.items():
        ref.submit(student, ASSIGNMENT, {ASSIGNMENT: submission(release, answers)})
    ref.submit("blank", ASSIGNMENT, {ASSIGNMENT: release})
    ours_path = tmp_path_factory.mktemp("grade") / "course"
    shutil.copytree(ref.path, ours_path)
    ours = grading.TempCourse(ours_path, timeout=CELL_LIMIT)
    run = ref.autograde(ASSIGNMENT, timeout=900)
    assert run.returncode == 0, run.log[-3000:]
    return ref, ours


@pytest.fixture(scope="module")
def graded(courses):
    _, ours = courses
    outcomes = grade.grade(ours.path, ASSIGNMENT, jobs=2, notebook_seconds=60, progress=False)
    return {o.student: o for o in outcomes}


def _points(course, student):
    return {gid: s.score for gid, s in course.scores(ASSIGNMENT)[student][ASSIGNMENT].items()}


@pytest.mark.parametrize("student", [*HONEST, "blank"])
def test_same_scores_as_nbgrader_on_honest_work(courses, graded, student):
    ref, ours = courses
    assert _points(ours, student) == _points(ref, student), graded.get(student)


def test_the_synthetic_class_tells_right_from_wrong(courses, graded):
    _, ours = courses
    assert _points(ours, "correct") == {"test_clip_gradient": 2.0, "test_double": 1.0}
    assert _points(ours, "wrong") == {"test_clip_gradient": 0.0, "test_double": 0.0}
    assert _points(ours, "loops")["test_double"] == 0.0 and _points(ours, "loops")["test_clip_gradient"] == 2.0


@pytest.mark.parametrize("student", sorted(DISHONEST))
def test_dishonest_submissions_score_nothing(courses, graded, student):
    ref, ours = courses
    task = next(iter(DISHONEST[student]))
    if student == "delegates" and not PROT.namespaces:
        pytest.skip(f"tinyqnn's versions are hidden only with namespaces: {PROT.notes}")
    assert _points(ours, student)[f"test_{task}"] == 0.0
    assert _points(ref, student)[f"test_{task}"] > 0, "nbgrader should have been fooled (else the case proves nothing)"


def test_autograded_notebooks_and_feedback_are_nbgrader_s(courses, graded):
    _, ours = courses
    for student in (*HONEST, "blank"):
        assert ours.autograded_notebook(student, ASSIGNMENT).is_file()
    proc = grading.run_nbgrader(["generate_feedback", ASSIGNMENT, "--force"], ours.path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (ours.path / "feedback" / "correct" / ASSIGNMENT / f"{ASSIGNMENT}.html").is_file()


def test_rerun_grades_only_changed_submissions_and_force_regrades(courses, graded, capsys):
    _, ours = courses
    assert grade.grade(ours.path, ASSIGNMENT, jobs=1, progress=False) == []
    release = ours.release_notebook(ASSIGNMENT)
    ours.submit("wrong", ASSIGNMENT, {ASSIGNMENT: submission(release, {})})  # resubmitted, now correct
    again = grade.grade(ours.path, ASSIGNMENT, jobs=1, progress=False)
    assert [o.student for o in again] == ["wrong"]
    assert _points(ours, "wrong") == {"test_clip_gradient": 2.0, "test_double": 1.0}
    forced = grade.grade(ours.path, ASSIGNMENT, force=True, student="c*", jobs=1, progress=False)
    assert [o.student for o in forced] == ["correct"]


RUNAWAY = ("def double(x):\n    while True:\n        try:\n            while True:\n                pass\n"
           "        except KeyboardInterrupt:\n            pass\n")


def test_a_runaway_is_killed_at_the_notebook_limit_and_listed_at_the_end(courses, graded, capsys):
    """It swallows the per-cell interrupt; only the notebook limit stops it. Later test cells lose their points."""
    _, ours = courses
    release = ours.release_notebook(ASSIGNMENT)
    nb = submission(release, {"double": RUNAWAY})
    # double and its test first; clip_gradient's cells come later and are never run
    order = ["setup", "double", "test_double", "clip_gradient", "test_clip_gradient"]
    nb.cells = [grading.find_cell(nb, gid) for gid in order]
    ours.submit("runaway", ASSIGNMENT, {ASSIGNMENT: nb})
    capsys.readouterr()
    grade.grade(ours.path, ASSIGNMENT, student="runaway", jobs=1, notebook_seconds=8, progress=False)
    out = capsys.readouterr().out
    assert "runaway" in out and "timeout" in out and "8 s limit" in out, out
    assert _points(ours, "runaway") == {"test_clip_gradient": 0.0, "test_double": 0.0}


def test_dask_local_cluster_gives_the_same_scores(courses, graded):
    distributed = pytest.importorskip("distributed")
    ref, ours = courses
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        outcomes = grade.grade(ours.path, ASSIGNMENT, force=True, student="[cp]*", scheduler=cluster.scheduler_address,
                               notebook_seconds=60, progress=False)
    assert sorted(o.student for o in outcomes) == ["correct", "partial", "patches_allclose"]
    for student in ("correct", "partial"):
        assert _points(ours, student) == _points(ref, student)


def test_grade_command_refuses_a_folder_that_is_not_a_course(tmp_path, capsys):
    assert grade.main(["01_x", "--root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an nbgrader course folder" in err, err


# Kills the process that grades it: the kernel's parent is the sandbox worker, whose parent is the grading
# worker (a --jobs worker or a Dask worker). A pid namespace hides that process, so these tests turn namespaces
# off, as on a platform without them; the grader must survive it either way.
KILLS_WORKER = ("import os, signal\n"
                "def _parent(pid):\n"
                "    with open(f'/proc/{pid}/stat') as f:\n"
                "        return int(f.read().rsplit(')', 1)[1].split()[1])\n"
                "os.kill(_parent(os.getppid()), signal.SIGKILL)\n"
                "def double(x):\n    return 2 * x\n")
needs_proc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the submission walks /proc (Linux)")


def _kills_worker_class(courses, monkeypatch):
    _, ours = courses
    monkeypatch.setenv(sandbox.NO_NAMESPACES_ENV, "1")
    ours.submit("kills_worker", ASSIGNMENT, {ASSIGNMENT: submission(ours.release_notebook(ASSIGNMENT),
                                                                   {"double": KILLS_WORKER})})
    return ours


def _check_worker_killer_failed_and_class_graded(ours, outcomes, out):
    by_student = {o.student: o for o in outcomes}
    assert sorted(by_student) == ["correct", "kills_worker"], outcomes
    killer = by_student["kills_worker"]
    assert (killer.status, killer.attempts) == ("failed", 2), killer
    assert "tried twice" in killer.reason and "kills_worker" in out and "failed" in out, (killer, out)
    assert _points(ours, "kills_worker") == {"test_clip_gradient": 0.0, "test_double": 0.0}
    assert _points(ours, "correct") == {"test_clip_gradient": 2.0, "test_double": 1.0}
    assert by_student["correct"].status == "ok", outcomes


@needs_proc
def test_a_submission_that_kills_its_local_worker_is_retried_once_then_failed_and_the_class_graded(
        courses, graded, monkeypatch, capsys):
    ours = _kills_worker_class(courses, monkeypatch)
    capsys.readouterr()
    outcomes = grade.grade(ours.path, ASSIGNMENT, force=True, student="[ck]*", jobs=2, notebook_seconds=60,
                           progress=False)
    out = capsys.readouterr().out
    _check_worker_killer_failed_and_class_graded(ours, outcomes, out)
    assert "SIGKILL" in {o.student: o for o in outcomes}["kills_worker"].reason


@needs_proc
def test_a_submission_that_kills_its_dask_worker_is_retried_once_then_failed_and_the_class_graded(
        courses, graded, monkeypatch, capsys):
    distributed = pytest.importorskip("distributed")
    import dask

    ours = _kills_worker_class(courses, monkeypatch)
    capsys.readouterr()
    # the scheduler's own retries after a worker death would come on top of grade's one (INSTRUCTORS.md 2.4)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster:
        outcomes = grade.grade(ours.path, ASSIGNMENT, force=True, student="[ck]*",
                               scheduler=cluster.scheduler_address, notebook_seconds=60, progress=False)
    out = capsys.readouterr().out
    _check_worker_killer_failed_and_class_graded(ours, outcomes, out)
    assert "KilledWorker" in {o.student: o for o in outcomes}["kills_worker"].reason
