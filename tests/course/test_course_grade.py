"""``python -m tinyqnn grade`` on a small synthetic class, against sequential ``nbgrader autograde``.

One course folder is graded by nbgrader (the reference) and a copy of it by ``grade``: per-cell scores must
be equal on honest work (correct, another style, wrong, partial, blank, an endless loop), and dishonest
submissions must score nothing with ``grade`` (nbgrader gives them points: the class has teeth).
"""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import pytest

from test_course_verdict import CLIP, DOUBLE, PROT, assignment
from tinyqnn.course import grade, grade_pool, grading, sandbox

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


def test_a_regrade_starts_the_slowest_submission_of_the_last_grading_first(courses, graded):
    """Started last, an endless loop holds one worker for its limits while the others have nothing left to do."""
    _, ours = courses
    course = grade.Course.load(ours.path)
    students = course.students(ASSIGNMENT, "*")
    seconds = {s: grade.previous_seconds(course, ASSIGNMENT, s) for s in students}
    # the state files record each grading's time, and the endless loop's (held to its cell limits) is the longest
    assert seconds["loops"] == max(t for t in seconds.values() if t is not None), seconds
    order = grade.schedule(course, ASSIGNMENT, [*students, "newcomer"])
    assert sorted(order) == sorted([*students, "newcomer"])
    assert order[0] == "loops", order
    # never graded: placed as a typical submission, neither first nor last
    assert 0 < order.index("newcomer") < len(order) - 1, order


def test_tasks_reach_the_pool_in_schedule_order_each_built_when_the_pool_asks(courses, graded, monkeypatch):
    """The first workers start at once, not after every submission has been sanitized (a serial step)."""
    _, ours = courses
    built, seen = [], []
    real_build = grade.build_task
    monkeypatch.setattr(grade, "build_task", lambda c, a, s, *rest: built.append(s) or real_build(c, a, s, *rest))

    class Stop(Exception):
        pass

    class Pool:
        def __init__(self, *args, **kwargs):
            pass

        def results(self, tasks):
            for task in tasks:
                seen.append((task["student"], len(built)))
            raise Stop  # nothing is recorded: the gradebook stays as the fixture left it
            yield

        def close(self):
            pass

    monkeypatch.setattr(grade_pool, "LocalPool", Pool)
    with pytest.raises(Stop):
        grade.grade(ours.path, ASSIGNMENT, force=True, jobs=2, progress=False)
    course = grade.Course.load(ours.path)
    assert [s for s, _ in seen] == grade.schedule(course, ASSIGNMENT, course.students(ASSIGNMENT, "*"))
    assert [n for _, n in seen] == list(range(1, len(seen) + 1)), seen


def test_recording_does_not_sanitize_again(courses, graded, monkeypatch):
    """build_task sanitizes with nbgrader's preprocessors; nbgrader's Autograde would do it all again (in the
    grader's one recording process) on a notebook that the sandboxed run then replaces."""
    from nbgrader.preprocessors import OverwriteCells

    ref, ours = courses
    calls = []
    real = OverwriteCells.preprocess
    monkeypatch.setattr(OverwriteCells, "preprocess",
                        lambda self, nb, res: calls.append(res["nbgrader"]["student"]) or real(self, nb, res))
    outcomes = grade.grade(ours.path, ASSIGNMENT, force=True, student="partial", jobs=1, notebook_seconds=60,
                           progress=False)
    assert [(o.student, o.status) for o in outcomes] == [("partial", "ok")]
    assert calls == ["partial"]
    assert _points(ours, "partial") == _points(ref, "partial")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/PID/environ (Linux)")
def test_grading_workers_compute_with_one_blas_thread_unless_told(monkeypatch):
    """N workers share the cores: each with one BLAS thread per core would spin-wait on the others'."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)

    def worker_environment():
        worker = grade_pool._Worker()
        try:
            for _ in range(200):  # empty until exec has set the new image up (Popen returns a little before)
                data = Path(f"/proc/{worker.proc.pid}/environ").read_bytes()
                if data:
                    return set(data.split(b"\0"))
                time.sleep(0.05)
            raise AssertionError("the worker's environment stayed empty")
        finally:
            worker.close()

    env = worker_environment()
    assert {b"OPENBLAS_NUM_THREADS=1", b"OMP_NUM_THREADS=1", b"MKL_NUM_THREADS=1"} <= env, env
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")  # the user's explicit choice stands
    assert b"OPENBLAS_NUM_THREADS=2" in worker_environment()


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
    before = set(sandbox.sandbox_base().glob("box-*"))
    outcomes = grade.grade(ours.path, ASSIGNMENT, force=True, student="[ck]*", jobs=2, notebook_seconds=60,
                           progress=False)
    out = capsys.readouterr().out
    _check_worker_killer_failed_and_class_graded(ours, outcomes, out)
    assert "SIGKILL" in {o.student: o for o in outcomes}["kills_worker"].reason
    # the killed workers' scratch folders (the submission's files) were removed
    left = [p.name for p in set(sandbox.sandbox_base().glob("box-*-*")) - before
            if not Path(f"/proc/{p.name.split('-')[1]}").exists()]
    assert not left, left


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


# The process limit for real: as root the kernel exempts the grader (RLIMIT_NPROC is not enforced for uid 0),
# so the class is graded by an ordinary user (nobody, via setpriv). The bomb's children sleep rather than
# re-fork (they become `sleep`), so that the machine survives even if the limit did not hold; the parent forks
# until refused. Forking a kernel hundreds of times is slow on a busy machine: the cell limit is generous.
FORK_BOMB = ("import os\n"
             "kids = 0\n"
             "try:\n"
             "    for _ in range(5000):\n"
             "        if os.fork() == 0:\n"
             "            os.execv('/bin/sleep', ['sleep', '300'])\n"
             "        kids += 1\n"
             "finally:\n"
             "    print('forked', kids)\n"
             "def double(x):\n    return 2 * x\n")
NOBODY = 65534


def _uid_processes(uid: int) -> int:
    """Live processes of ``uid``: a zombie (already dead, waiting for init to reap it) holds nothing."""
    import subprocess

    states = subprocess.run(["ps", "-o", "stat=", "-u", str(uid)], capture_output=True, text=True).stdout.split()
    return sum(not state.startswith("Z") for state in states)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="setpriv and RLIMIT_NPROC semantics are Linux's")
def test_a_fork_bomb_is_stopped_by_the_process_limit_for_an_ordinary_user():
    import os
    import subprocess
    import tempfile

    if os.geteuid() != 0:
        if not sandbox.protections().processes_limited:
            pytest.skip(f"the process limit is not enforced here: {sandbox.protections().notes}")
        as_user: list[str] = []  # already an ordinary user
    elif not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot become an ordinary user to test the process limit")
    else:
        as_user = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    # the interpreter must be one the user can run: a venv over a Python in a private folder (/root/.pyenv) is
    # not; TINYQNN_TEST_USER_PYTHON names another one with tinyqnn installed (INSTRUCTORS.md 2.4)
    python = os.environ.get("TINYQNN_TEST_USER_PYTHON", sys.executable)
    probe = subprocess.run([*as_user, "/bin/sh", "-c", f"'{python}' -c 'import tinyqnn.course.grade'"],
                           capture_output=True, text=True, cwd="/", env={"PATH": "/usr/bin:/bin"})
    if probe.returncode != 0:
        pytest.skip(f"uid {NOBODY} cannot run {python} with tinyqnn ({probe.stderr.strip()[-200:]}); "
                    "set TINYQNN_TEST_USER_PYTHON to an interpreter it can run")
    # a folder the ordinary user owns, outside pytest's root-only tmp folder
    root = Path(tempfile.mkdtemp(prefix="tinyqnn-nproc-"))
    try:
        course = grading.TempCourse(root / "course", timeout=120)
        grading.write_notebook(assignment(), course.path / grading.SOLUTIONS_DIR / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
        course.generate(ASSIGNMENT)
        release = course.release_notebook(ASSIGNMENT)
        course.submit("bomb", ASSIGNMENT, {ASSIGNMENT: submission(release, {"double": FORK_BOMB})})
        course.submit("correct", ASSIGNMENT, {ASSIGNMENT: submission(release, {})})
        (root / "home").mkdir()
        if as_user:
            subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", str(root)], check=True)
        before = _uid_processes(NOBODY) if as_user else 0
        env = {"PATH": "/usr/bin:/bin", "HOME": str(root / "home"), "TMPDIR": str(root / "home"),
               "LANG": "C.UTF-8"}
        run = subprocess.run([*as_user, python, "-m", "tinyqnn", "grade", ASSIGNMENT, "--jobs", "1",
                              "--root", str(course.path), "--no-progress", "--notebook-timeout", "300"],
                             capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "processes NOT limited" not in run.stdout, run.stdout
        bombed = grading.read_notebook(course.autograded_notebook("bomb", ASSIGNMENT))
        cell = grading.find_cell(bombed, "double")
        printed = "".join(o.get("text", "") for o in cell.outputs if o.get("output_type") == "stream")
        refused = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert refused and refused[0]["ename"] == "BlockingIOError", cell.outputs
        kids = int(printed.split("forked", 1)[1].split()[0])
        assert kids < sandbox.Limits().processes, printed  # stopped by the limit, not by the loop's end
        assert _points(course, "bomb") == {"test_clip_gradient": 2.0, "test_double": 0.0}
        assert _points(course, "correct") == {"test_clip_gradient": 2.0, "test_double": 1.0}
        if as_user:  # the sleeping children went with the sandbox
            assert _uid_processes(NOBODY) <= before, subprocess.run(["ps", "-fu", str(NOBODY)],
                                                                    capture_output=True, text=True).stdout
    finally:
        shutil.rmtree(root, ignore_errors=True)
