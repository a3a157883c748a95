"""Helpers for the course CI checks: real nbgrader runs in temporary course directories.

Cost model: an autograde run costs one kernel start plus one full notebook execution per student, so
every assignment is graded ONCE, with one fake student per scenario (the solution, the untouched exercise,
the wrong and right answers in rounds, an "edge cases" student), and assignments run two at a time. Right
answers, which must all get full marks, share students: round k holds the k-th right answer of every cell (any
lost point fails every answer of its round, and the message names the cell). Wrong answers share students too,
but a round never holds two answers for one cell or two answers that fail a common test (``wrong_rounds``):
each test a round loses is lost to exactly one of its answers, so every answer still shows that it loses its
own points, and a point lost or kept that no answer of the round explains fails the round. All of it runs in
a background process started with the pytest session (``BatchJob``), while the tests that do not need it run.
Everything here is discovered from ``solutions/*/``, so new units are checked as soon as they land.
"""
from __future__ import annotations

import os
import pickle
import re
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tinyqnn.course import grading, release

REPO = grading.repo_root()
# TINYQNN_COURSE_ONLY=01_chain_rule,03_layers restricts the checks to some units (for authors; CI checks all).
_ONLY = [a for a in os.environ.get("TINYQNN_COURSE_ONLY", "").split(",") if a]
ASSIGNMENTS = [a for a in grading.assignments(REPO) if not _ONLY or a in _ONLY]
LESSONS = sorted(p.name for p in (REPO / grading.LESSONS_DIR).glob("*.ipynb") if not _ONLY or p.stem in _ONLY)
WRONG_DIR = Path(__file__).parent / "wrong_answers"
WORKERS = int(os.environ.get("TINYQNN_COURSE_WORKERS", "2"))
LOOP_TIMEOUT = 15  # seconds per cell for the infinite-loop scenario


def _answer_cases(load) -> list[tuple[str, int]]:
    cases = []
    for a in ASSIGNMENTS:
        path = WRONG_DIR / f"{a}.py"
        if path.exists():
            try:
                cases += [(a, i) for i in range(len(load(path)))]
            except Exception:  # reported by test_wrong_answer_files_are_valid
                pass
    return cases


def wrong_answer_cases() -> list[tuple[str, int]]:
    return _answer_cases(grading.load_wrong_answers)


def right_answer_cases() -> list[tuple[str, int]]:
    return _answer_cases(grading.load_right_answers)


def answer_rounds(answers: list[dict]) -> list[list[int]]:
    """Indices of ``answers`` in rounds: round k holds the k-th answer of every cell (never two for one cell)."""
    per_cell: dict[str, list[int]] = {}
    for i, a in enumerate(answers):
        per_cell.setdefault(a["cell"], []).append(i)
    depth = max(map(len, per_cell.values()), default=0)
    return [[ids[k] for ids in per_cell.values() if k < len(ids)] for k in range(depth)]


def wrong_rounds(answers: list[dict]) -> list[list[int]]:
    """Indices of wrong ``answers`` in rounds, first fit: within a round no two answers share a cell or a test
    they fail, so the round's lost points are each one answer's."""
    rounds: list[tuple[list[int], set[str], set[str]]] = []
    for i, answer in enumerate(answers):
        fails = set(answer["fails"])
        for indices, cells, failed in rounds:
            if answer["cell"] not in cells and not fails & failed:
                break
        else:
            indices, cells, failed = [], set(), set()
            rounds.append((indices, cells, failed))
        indices.append(i)
        cells.add(answer["cell"])
        failed |= fails
    return [indices for indices, _, _ in rounds]


def wrong_student(round_: int) -> str:
    return f"wrong_round_{round_:02d}"


def wrong_answer_student(assignment: str, index: int) -> str:
    """The fake student whose submission holds wrong answer ``index`` of ``assignment``."""
    rounds = wrong_rounds(grading.load_wrong_answers(WRONG_DIR / f"{assignment}.py"))
    return wrong_student(next(k for k, ids in enumerate(rounds) if index in ids))


def right_student(round_: int) -> str:
    return f"right_round_{round_:02d}"


def right_answer_student(assignment: str, index: int) -> str:
    """The fake student whose submission holds right answer ``index`` of ``assignment``."""
    rounds = answer_rounds(grading.load_right_answers(WRONG_DIR / f"{assignment}.py"))
    return right_student(next(k for k, ids in enumerate(rounds) if index in ids))


# ------------------------------------------------------------------------------------------- scenarios

def source_notebooks(assignment: str) -> dict[str, Any]:
    """notebook name -> source notebook of solutions/<assignment>/."""
    folder = REPO / grading.SOLUTIONS_DIR / assignment
    return {p.stem: grading.read_notebook(p) for p in sorted(folder.glob("*.ipynb"))}


def tasks(nb: Any) -> list[str]:
    """Task names (solution cell X with grade cell test_X), in notebook order."""
    grades = grading.grade_cells(nb)
    return [gid for gid in grading.solution_cells(nb) if f"test_{gid}" in grades]


def notebook_with_cell(notebooks: dict[str, Any], gid: str) -> str:
    for name, nb in notebooks.items():
        if any(grading.grade_id(c) == gid for c in nb.cells):
            return name
    raise KeyError(f"no notebook has a cell {gid!r}")


def looping_source(release_cell_source: str) -> str:
    """The released stub with its ``raise NotImplementedError()`` turned into an endless loop."""
    out = []
    for line in release_cell_source.splitlines():
        m = re.match(r"(\s*)raise NotImplementedError\(\)", line)
        out += [f"{m.group(1)}while True:", f"{m.group(1)}    pass"] if m else [line]
    return "\n".join(out) + "\n"


@dataclass
class Student:
    notebooks: dict[str, Any]                     # notebook name -> submitted notebook
    expected: dict[str, dict[str, float]]         # notebook name -> grade_id -> expected score
    note: str = ""


@dataclass
class Batch:
    """Everything known about one autograde call of one assignment."""

    assignment: str
    course: grading.TempCourse | None = None
    release_files: dict[str, bytes] = field(default_factory=dict)
    release_seconds: float = 0.0
    students: dict[str, Student] = field(default_factory=dict)
    run: grading.AutogradeRun | None = None
    scores: dict[str, dict[str, dict[str, grading.TaskScore]]] = field(default_factory=dict)
    error: str = ""

    def require(self) -> None:
        if self.error:
            pytest.fail(f"{self.assignment}: could not build/grade the batch:\n{self.error}")

    def autograded(self, student: str, name: str) -> Any | None:
        path = self.course.autograded_notebook(student, self.assignment, name)
        return grading.read_notebook(path) if path.exists() else None

    def explain(self, student: str) -> str:
        """Per-cell scores plus the reason for every lost point, for assertion messages."""
        lines = [f"student {student!r} of {self.assignment} ({self.students[student].note}):"]
        for name, expected in self.students[student].expected.items():
            got = self.scores.get(student, {}).get(name, {})
            nb = self.autograded(student, name)
            reasons = {gid: s.message for gid, s in grading.score_notebook(nb).items()} if nb is not None else {}
            for gid, want in expected.items():
                s = got.get(gid)
                shown = "missing" if s is None else f"{s.score:g}/{s.max_score:g}"
                lines.append(f"  {name}:{gid}: got {shown}, expected {want:g}  {reasons.get(gid, '')}")
        if self.run is not None and self.run.returncode != 0:
            lines.append(f"  (nbgrader exit code {self.run.returncode}; log tail:)\n" + self.run.log[-3000:])
        return "\n".join(lines)


def full_marks(notebooks: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Autograde's best score per grade cell: its points, except manually graded answers, which autograde
    leaves at 0 (auto_score 0 for an untouched answer, None for a written one) until a person grades them."""
    return {name: {gid: (0.0 if gid in grading.manual_grade_cells(nb) else pts)
                   for gid, pts in grading.grade_cells(nb).items()} for name, nb in notebooks.items()}


def plan_students(assignment: str, course: grading.TempCourse) -> dict[str, Student]:
    sources = source_notebooks(assignment)
    releases = {name: course.release_notebook(assignment, name) for name in sources}
    solved = {name: grading.solved_copy(releases[name], sources[name]) for name in sources}
    full = full_marks(sources)
    zero = {name: {gid: 0.0 for gid in pts} for name, pts in full.items()}
    students = {
        "solution": Student(solved, full, "every solution cell filled in from solutions/"),
        "exercise": Student(releases, zero, "the released notebook, untouched"),
    }

    path = WRONG_DIR / f"{assignment}.py"
    wrong = grading.load_wrong_answers(path) if path.exists() else []
    for k, indices in enumerate(wrong_rounds(wrong)):
        nbs, lost = dict(solved), set()
        for i in indices:
            name = notebook_with_cell(sources, wrong[i]["cell"])
            nbs[name] = grading.replace_cell(nbs[name], wrong[i]["cell"], wrong[i]["source"])
            lost |= {(name, gid) for gid in wrong[i]["fails"]}
        expected = {n: {gid: (0.0 if (n, gid) in lost else pts) for gid, pts in full[n].items()} for n in full}
        what = "; ".join(f"wrong answer {i} for {wrong[i]['cell']} (fails {', '.join(wrong[i]['fails'])}): "
                         f"{wrong[i]['why']}" for i in indices)
        students[wrong_student(k)] = Student(nbs, expected, what)
    right = grading.load_right_answers(path) if path.exists() else []
    for k, indices in enumerate(answer_rounds(right)):
        nbs = dict(solved)
        for i in indices:
            name = notebook_with_cell(sources, right[i]["cell"])
            nbs[name] = grading.replace_cell(nbs[name], right[i]["cell"], right[i]["source"])
        what = "; ".join(f"right answer {i} for {right[i]['cell']}: {right[i]['why']}" for i in indices)
        students[right_student(k)] = Student(nbs, full, what)

    # Edge cases, one per task of the first notebook, all in one student (grading independence keeps them apart).
    name = next(iter(sources))
    ts = tasks(sources[name])
    if len(ts) >= 4:
        nb = solved[name]
        syntax, exc, deleted_test, deleted_solution = ts[:4]
        nb = grading.replace_cell(nb, syntax, grading.source_text(grading.find_cell(nb, syntax)) + "\nthis is not python ::\n")
        nb = grading.replace_cell(nb, exc, "raise RuntimeError('a learner bug at cell level')\n"
                                  + grading.source_text(grading.find_cell(nb, exc)))
        nb = grading.delete_cell(nb, f"test_{deleted_test}")
        nb = grading.delete_cell(nb, deleted_solution)
        expected = {n: dict(p) for n, p in full.items()}
        for t in (syntax, exc, deleted_test, deleted_solution):
            expected[name][f"test_{t}"] = 0.0
        students["edge_cases"] = Student(
            {**solved, name: nb}, expected,
            f"syntax error in {syntax}, exception in {exc}, test cell test_{deleted_test} deleted, "
            f"solution cell {deleted_solution} deleted")
    return students


def build_batch(assignment: str, root: Path) -> Batch:
    batch = Batch(assignment)
    try:
        batch.course = grading.TempCourse(root / assignment, repo=REPO)
        start = time.perf_counter()
        batch.release_files = release.generated_files(batch.course, assignment)
        batch.release_seconds = time.perf_counter() - start
        batch.students = plan_students(assignment, batch.course)
        for student, plan in batch.students.items():
            batch.course.submit(student, assignment, plan.notebooks)
        batch.run = batch.course.autograde(assignment, timeout=3600)
        batch.scores = batch.course.scores(assignment)
    except Exception:
        batch.error = traceback.format_exc()
    return batch


def build_loop_batch(assignment: str, root: Path) -> Batch:
    """A solved notebook whose middle task never returns, graded with a short per-cell timeout."""
    batch = Batch(assignment)
    try:
        batch.course = grading.TempCourse(root / f"{assignment}-loop", repo=REPO, timeout=LOOP_TIMEOUT)
        batch.release_files = release.generated_files(batch.course, assignment)
        sources = source_notebooks(assignment)
        name = next(iter(sources))
        release_nb = batch.course.release_notebook(assignment, name)
        solved = {n: grading.solved_copy(batch.course.release_notebook(assignment, n), sources[n]) for n in sources}
        ts = tasks(sources[name])
        looping = ts[len(ts) // 2]
        stub = grading.source_text(grading.find_cell(release_nb, looping))
        nb = grading.replace_cell(solved[name], looping, looping_source(stub))
        expected = full_marks(sources)
        expected[name][f"test_{looping}"] = 0.0
        batch.students = {"infinite_loop": Student({**solved, name: nb}, expected, f"{looping} loops forever")}
        batch.course.submit("infinite_loop", assignment, batch.students["infinite_loop"].notebooks)
        batch.run = batch.course.autograde(assignment, timeout=3600)
        batch.scores = batch.course.scores(assignment)
    except Exception:
        batch.error = traceback.format_exc()
    return batch


def build_batches(root: Path) -> dict[str, Batch]:
    """assignment -> graded Batch; plus key "<first assignment>:loop" for the infinite-loop scenario."""
    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(max_workers=WORKERS) as pool:  # threads only wait on nbgrader subprocesses
        # the later units first: they train models (units 7 and 10 take 20 s and more per student, unit 1 a few),
        # so none of them is left running alone at the end while the other workers have nothing to do
        jobs = {a: pool.submit(_timed, build_batch, a, root) for a in reversed(ASSIGNMENTS)}
        if ASSIGNMENTS:
            jobs[f"{ASSIGNMENTS[0]}:loop"] = pool.submit(_timed, build_loop_batch, ASSIGNMENTS[0], root)
        return {key: jobs[key].result() for key in sorted(jobs)}


def _timed(build: Any, assignment: str, root: Path) -> Batch:
    """``build(assignment, root)``, its start and end written to the batch log (where the time goes)."""
    start = time.perf_counter()
    print(f"{time.strftime('%H:%M:%S')} {build.__name__} {assignment}: start", flush=True)
    batch = build(assignment, root)
    print(f"{time.strftime('%H:%M:%S')} {build.__name__} {assignment}: {time.perf_counter() - start:.1f} s"
          + (" (failed)" if batch.error else ""), flush=True)
    return batch


class BatchJob:
    """``build_batches`` in a child process started with the pytest session, so that the nbgrader runs
    overlap the tests that do not need them. A process, not a thread: tests change ``os.environ`` (which
    nbgrader and its kernels would inherit) and the working directory; the child keeps the session's start."""

    def __init__(self, root: Path):
        self.root = root
        self.out, self.log = root / "batches.pickle", root / "batches.log"
        code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import coursekit; "
                "coursekit._build_batches_main()")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", code, str(root), str(self.out)], stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        self._result: dict[str, Batch] | None = None

    def result(self) -> dict[str, Batch]:
        if self._result is None:
            self.proc.wait()
            try:
                with open(self.out, "rb") as f:
                    self._result = pickle.load(f)
            except Exception:
                tail = self.log.read_text(errors="replace")[-5000:] if self.log.exists() else ""
                error = (f"the background batch process ({self.root}) exited with {self.proc.returncode} "
                         f"without results:\n{tail}\n{traceback.format_exc()}")
                keys = [*ASSIGNMENTS, *([f"{ASSIGNMENTS[0]}:loop"] if ASSIGNMENTS else [])]
                self._result = {key: Batch(key.split(":")[0], error=error) for key in keys}
        return self._result

    def stop(self) -> None:
        """Ends an unfinished run (the session ended early, e.g. ``-x``): the child and nbgrader (whose kernels
        exit with their parent)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            self.proc.wait()


def _build_batches_main() -> None:
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    result = build_batches(root)
    tmp = out.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(result, f)
    os.replace(tmp, out)


# ---------------------------------------------------------------------------------------------- lessons

#: matplotlib's inline backend: figures are embedded in the notebook even when the caller's environment says
#: MPLBACKEND=Agg (as CI does), so a headless run produces the same notebook a learner sees.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"
_PLOT_CALL = re.compile(r"\bplt\.(show|subplots|figure)\(|\bplot_[a-z_]+\(")


def promised_figures(nb: Any) -> list[int]:
    """Indices of the code cells that draw a figure (``plt.show()``, ``plt.subplots(...)``, ``plot_*(...)``)."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and _PLOT_CALL.search(grading.source_text(c))]


def has_figure(cell: Any) -> bool:
    return any("image/png" in out.get("data", {}) for out in cell.get("outputs", []))


def run_lesson(path: str) -> tuple[list[str], float]:
    """Execute a lesson in quick mode in a fresh kernel (in a worker process); returns (problems, seconds).

    Problems are errors raised by cells and cells that draw a figure without embedding one.
    """
    from tinyqnn.course.check import execute_notebook

    nb = grading.read_notebook(path)
    start = time.perf_counter()
    execute_notebook(nb, Path(path).parent, timeout=grading.EXECUTE_TIMEOUT,
                     env={"TINYQNN_QUICK": "1", "MPLBACKEND": INLINE_BACKEND})
    seconds = time.perf_counter() - start
    errors = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                errors.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}\n{cell.source[:300]}")
    for i in promised_figures(nb):
        if not has_figure(nb.cells[i]):
            errors.append(f"cell {i} draws a figure but embedded none (no image/png output):\n{nb.cells[i].source[:300]}")
    return errors, seconds
