"""``python -m tinyqnn grade ASSIGNMENT``: autograde a class, sandboxed and in parallel, into nbgrader's gradebook.

Run in an nbgrader course folder (the one with ``nbgrader_config.py``), after ``nbgrader generate_assignment``
and once the submissions are in ``submitted/<student>/<assignment>/``. Two phases per submission:

1. **Execution, in parallel** (``--jobs N`` local processes, or ``--scheduler ADDRESS`` for a Dask cluster whose
   workers need only tinyqnn installed: the files travel with the task). The submission is sanitized exactly
   as nbgrader does (its ``ClearOutput``, ``DeduplicateIds``, ``OverwriteKernelspec``, ``OverwriteCells`` and
   ``CheckCellMetadata`` preprocessors, which restore the instructor's locked cells from the gradebook), then
   run by ``tinyqnn.course.verdict.run_graded`` in its own sandbox (``tinyqnn.course.sandbox``).
2. **Recording, in this process only**: nbgrader's own ``Autograde`` converter runs with its ``Execute`` step
   replaced by the notebook computed in phase 1, so the gradebook rows, comments, late penalties, the files in
   ``autograded/`` and everything formgrader, ``generate_feedback`` and ``export`` read are nbgrader's.

Rerunning grades only new or changed submissions (a fingerprint per submission in ``autograded/``); ``--force``
regrades all. A submission whose sandbox fails to start, whose kernel dies, or that crashes or kills the
process grading it (a local worker or a Dask worker, ``tinyqnn.course.grade_pool``) is tried once more, then
recorded with 0 points for that notebook and listed at the end with its reason, as are notebook time-outs;
the rest of the class is graded.
"""
from __future__ import annotations

import argparse
import fnmatch
import hashlib
import json
import os
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import grading

STATE_FILE = ".tinyqnn-grade.json"
#: executed notebooks waiting for nbgrader's recording pass: (student, assignment, notebook) -> NotebookNode
_EXECUTED: dict[tuple[str, str, str], Any] = {}


# ------------------------------------------------------------------------------------- the worker's part

def grade_submission(task: dict) -> dict:
    """Execute one submission's notebooks in sandboxes (runs in a worker process or on a Dask worker).

    task: {"student", "notebooks": {name: sanitized nb JSON}, "trusted": {name: source nb JSON},
           "files": {relative path: bytes}, "limits": Limits fields}; nothing else of the course travels.
    Returns {"student", "notebooks": {name: executed nb JSON}, "status", "reason", "seconds", "attempts"}.
    """
    import nbformat

    from .sandbox import Limits, SandboxError
    from .verdict import run_graded

    limits = Limits(**task["limits"])
    out: dict[str, Any] = {"student": task["student"], "notebooks": {}, "status": "ok", "reason": "",
                           "seconds": 0.0, "attempts": 1, "protections": ""}
    for name, text in task["notebooks"].items():
        nb = nbformat.reads(text, as_version=4)
        trusted = nbformat.reads(task["trusted"][name], as_version=4)
        files = {**task["files"], f"{name}.ipynb": text.encode()}
        for attempt in (1, 2):
            try:
                run = run_graded(nb, files, limits, trusted=trusted)
            except SandboxError as err:
                run, error = None, f"the sandbox failed: {err}"
            else:
                error = run.reason if run.status == "died" else ""
            if not error:
                break
        out["attempts"] = max(out["attempts"], attempt)
        if run is None or error:
            out["status"], out["reason"] = "failed", f"{name}: {error} (tried twice)"
            out["notebooks"][name] = nbformat.writes(zero_notebook(nb, error))
            continue
        if run.status == "timeout" and out["status"] == "ok":
            out["status"], out["reason"] = "timeout", f"{name}: {run.reason}"
        out["seconds"] += run.seconds
        out["protections"] = run.protections
        out["notebooks"][name] = nbformat.writes(run.nb)
    return out


def failed_result(task: dict, reason: str, attempts: int) -> dict:
    """What ``grade_submission`` would return for a submission that could not be graded: every test cell 0."""
    import nbformat

    notebooks = {name: nbformat.writes(zero_notebook(nbformat.reads(text, as_version=4), reason))
                 for name, text in task["notebooks"].items()}
    return {"student": task["student"], "notebooks": notebooks, "status": "failed", "reason": reason,
            "seconds": 0.0, "attempts": attempts, "protections": ""}


def zero_notebook(nb: Any, why: str) -> Any:
    """``nb`` with an error output in every autograded test cell: nbgrader then records 0 for each."""
    import copy

    import nbformat

    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if grading.is_grade(cell) and not grading.is_solution(cell) and cell.cell_type == "code":
            cell.outputs = [nbformat.from_dict({"output_type": "error", "ename": "GradingFailed", "evalue": why,
                                                "traceback": [f"GradingFailed: {why}"]})]
    return nb


# ------------------------------------------------------------------------------------- nbgrader's part

def _precomputed_execute_class() -> type:
    from nbgrader.preprocessors import NbGraderPreprocessor

    class PrecomputedExecute(NbGraderPreprocessor):
        """Stands in for nbgrader's Execute: the notebook was executed in a sandbox by ``grade_submission``."""

        def preprocess(self, nb: Any, resources: dict) -> tuple[Any, dict]:
            ids = resources["nbgrader"]
            key = (ids["student"], ids["assignment"], ids["notebook"])
            if key not in _EXECUTED:
                raise RuntimeError(f"no sandboxed run for {key}")
            return _EXECUTED.pop(key), resources

    return PrecomputedExecute


@dataclass
class Course:
    """An nbgrader course folder and its configuration."""

    root: Path
    config: Any
    coursedir: Any

    @classmethod
    def load(cls, root: Path) -> "Course":
        from nbgrader.coursedir import CourseDirectory
        from traitlets.config import Config
        from traitlets.config.loader import PyFileConfigLoader

        root = root.resolve()
        if not (root / grading.CONFIG_FILE).is_file():
            raise ValueError(f"{root} is not an nbgrader course folder (no {grading.CONFIG_FILE}); run grade there "
                             "or pass --root")
        config = Config()
        config.merge(PyFileConfigLoader(grading.CONFIG_FILE, path=str(root)).load_config())
        config.CourseDirectory.root = str(root)
        return cls(root, config, CourseDirectory(config=config))

    def path(self, step: str, student: str, assignment: str) -> Path:
        return Path(self.coursedir.format_path(step, student, assignment))

    def cell_limit(self) -> int:
        return int(self.config.get("Execute", {}).get("timeout", grading.EXECUTE_TIMEOUT))

    def source_notebooks(self, assignment: str) -> dict[str, Any]:
        folder = self.path(self.coursedir.source_directory, ".", assignment)
        found = {p.stem: grading.read_notebook(p) for p in sorted(folder.glob("*.ipynb"))}
        if not found:
            raise ValueError(f"no source notebooks in {folder}")
        return found

    def shipped_files(self, assignment: str) -> dict[str, bytes]:
        """The assignment's non-notebook source files: nbgrader copies them over every submission."""
        folder = self.path(self.coursedir.source_directory, ".", assignment)
        return {str(p.relative_to(folder)): p.read_bytes() for p in grading.source_files(folder)
                if p.suffix != ".ipynb"}

    def students(self, assignment: str, pattern: str) -> list[str]:
        base = Path(self.coursedir.root) / self.coursedir.submitted_directory
        if not base.is_dir():
            return []
        return sorted(d.name for d in base.iterdir()
                      if (d / assignment).is_dir() and fnmatch.fnmatchcase(d.name, pattern))

    def sanitize(self, assignment: str, student: str, name: str, nb: Any) -> Any:
        """nbgrader's own sanitizing steps of autograde, with its gradebook (locked cells restored)."""
        from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, OverwriteCells,
                                            OverwriteKernelspec)

        resources = {"unique_key": name, "nbgrader": {"student": student, "assignment": assignment,
                                                      "notebook": name, "db_url": self.coursedir.db_url}}
        for pp in (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata):
            nb, resources = pp(config=self.config).preprocess(nb, resources)
        return nb

    def record(self, assignment: str, student: str, executed: dict[str, Any]) -> dict:
        """Run nbgrader's Autograde for one student with the sandboxed notebooks in place of its Execute."""
        from nbgrader.apps.api import NbGraderAPI
        from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput,
                                            SaveAutoGrades)
        from nbconvert.preprocessors import ClearMetadataPreprocessor
        from traitlets.config import Config

        config = Config()
        config.merge(self.config)
        # The sanitizing pass would repeat build_task's (same preprocessors, config and gradebook) on a notebook
        # that PrecomputedExecute then replaces: a third of recording's CPU, spent in the one serial process.
        config.Autograde.sanitize_preprocessors = []
        config.Autograde.autograde_preprocessors = [
            _precomputed_execute_class(), IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
            AssignLatePenalties, CheckCellMetadata]
        for name, nb in executed.items():
            _EXECUTED[(student, assignment, name)] = nb
        try:
            api = NbGraderAPI(coursedir=self.coursedir, config=config)
            with warnings.catch_warnings():
                # nbgrader 0.9's gradebook code trips three SQLAlchemy autoflush warnings per submission; harmless
                warnings.filterwarnings("ignore", message=r".*not in session.*")
                return api.autograde(assignment, student, force=True, create=True)
        finally:
            for name in executed:
                _EXECUTED.pop((student, assignment, name), None)


def fingerprint(course: Course, assignment: str, student: str, sources: dict[str, Any]) -> str:
    """Hash of everything a grade depends on: the submitted files and the source notebooks."""
    h = hashlib.sha256()
    folder = course.path(course.coursedir.submitted_directory, student, assignment)
    for path in grading.source_files(folder):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes() + b"\0")
    for name, nb in sorted(sources.items()):
        h.update(name.encode() + grading.canonical_json(nb).encode())
    return h.hexdigest()


def state_path(course: Course, assignment: str, student: str) -> Path:
    return course.path(course.coursedir.autograded_directory, student, assignment) / STATE_FILE


def is_current(course: Course, assignment: str, student: str, digest: str) -> bool:
    try:
        return json.loads(state_path(course, assignment, student).read_text())["fingerprint"] == digest
    except (OSError, ValueError, KeyError):
        return False


def previous_seconds(course: Course, assignment: str, student: str) -> float | None:
    """How long the submission's last grading took (its state file), or None if unknown."""
    try:
        seconds = json.loads(state_path(course, assignment, student).read_text())["seconds"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(seconds) if isinstance(seconds, (int, float)) and seconds >= 0 else None


def schedule(course: Course, assignment: str, students: list[str]) -> list[str]:
    """The order to start submissions in: longest last grading first (a regrade starts last time's endless
    loop first, while other work remains for the other workers, instead of leaving them idle at the end);
    submissions never graded count as the median of the known ones; ties keep name order."""
    import statistics

    known = {s: t for s in students if (t := previous_seconds(course, assignment, s)) is not None}
    typical = statistics.median(known.values()) if known else 0.0
    return sorted(students, key=lambda s: -known.get(s, typical))


# ------------------------------------------------------------------------------------------- the run

@dataclass
class Outcome:
    student: str
    status: str
    reason: str
    seconds: float
    attempts: int


def build_task(course: Course, assignment: str, student: str, sources: dict[str, Any],
               limits: dict) -> dict:
    import nbformat

    folder = course.path(course.coursedir.submitted_directory, student, assignment)
    files = {str(p.relative_to(folder)): p.read_bytes() for p in grading.source_files(folder)
             if p.suffix != ".ipynb"}
    files.update(course.shipped_files(assignment))  # as nbgrader: the source's files replace the student's
    notebooks = {}
    for name in sources:
        path = folder / f"{name}.ipynb"
        if path.is_file():
            nb = course.sanitize(assignment, student, name, grading.read_notebook(path))
            notebooks[name] = nbformat.writes(nb)
    return {"student": student, "notebooks": notebooks, "limits": limits,
            "trusted": {name: nbformat.writes(nb) for name, nb in sources.items() if name in notebooks},
            "files": files}


def grade(root: Path, assignment: str, force: bool = False, student: str = "*", jobs: int | None = None,
          scheduler: Any = None, notebook_seconds: int = 600, progress: bool = True,
          out: Any = None) -> list[Outcome]:
    """Grade the class; returns one Outcome per submission graded (skipped ones are not listed)."""
    from .sandbox import Limits, protections

    out = out or sys.stdout
    course = Course.load(root)
    sources = course.source_notebooks(assignment)
    limits = asdict_limits(Limits(cell_seconds=course.cell_limit(), notebook_seconds=notebook_seconds))
    students = course.students(assignment, student)
    todo, digests = [], {}
    for s in students:
        digests[s] = fingerprint(course, assignment, s, sources)
        if force or not is_current(course, assignment, s, digests[s]):
            todo.append(s)
    print(f"grade {assignment}: {len(students)} submission(s), {len(todo)} to grade"
          f"{'' if force else f' ({len(students) - len(todo)} unchanged, kept; --force regrades them)'}", file=out)
    print(f"sandbox: {protections().summary()}", file=out)
    if not todo:
        return []
    from .grade_pool import DaskPool, LocalPool

    pool = DaskPool(scheduler) if scheduler is not None else LocalPool(jobs or os.cpu_count() or 1)
    outcomes: list[Outcome] = []
    try:
        # built as the pool asks for them: the first workers start at once instead of after every sanitize
        tasks = (build_task(course, assignment, s, sources, limits) for s in schedule(course, assignment, todo))
        bar = _progress(len(todo), progress, out)
        for result in pool.results(tasks):
            outcomes.append(_record(course, assignment, result, digests[result["student"]]))
            bar.update(1)
        bar.close()
    finally:
        pool.close()
    trouble = [o for o in outcomes if o.status != "ok"]
    if trouble:
        print(f"\n{len(trouble)} submission(s) with failures or time-outs:", file=out)
        print(f"  {'student':<24} {'status':<8} {'tries':>5}  reason", file=out)
        for o in sorted(trouble, key=lambda o: o.student):
            print(f"  {o.student:<24} {o.status:<8} {o.attempts:>5}  {o.reason[:200]}", file=out)
    return outcomes


def asdict_limits(limits: Any) -> dict:
    return {k: v for k, v in asdict(limits).items()}


def _progress(total: int, enabled: bool, out: Any) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="submission", disable=not enabled, file=sys.stderr, smoothing=0.1,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]")


def _record(course: Course, assignment: str, result: dict, digest: str) -> Outcome:
    import nbformat

    from ..utils import atomic_write_bytes

    student = result["student"]
    executed = {name: nbformat.reads(text, as_version=4) for name, text in result["notebooks"].items()}
    status, reason = result["status"], result["reason"]
    log = course.record(assignment, student, executed)
    if not log.get("success"):
        status, reason = "failed", "nbgrader could not record it: " + (log.get("error") or "")[-300:].strip()
    else:
        atomic_write_bytes(state_path(course, assignment, student),
                          json.dumps({"fingerprint": digest, "status": status, "reason": reason,
                                      # for schedule(); a failed run's time says nothing about the next
                                      "seconds": round(float(result["seconds"]), 3) if status != "failed" else None,
                                      "graded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode())
    return Outcome(student, status, reason, result["seconds"], result["attempts"])


def main(argv: list[str] | None = None) -> int:
    from ..args import one_line, positive_int

    parser = argparse.ArgumentParser(
        prog="python -m tinyqnn grade",
        description="Autograde an assignment's submissions in sandboxes, in parallel, into nbgrader's gradebook "
                    "(run in the course folder, after nbgrader generate_assignment).")
    parser.add_argument("assignment", help="assignment name, e.g. 03_layers")
    parser.add_argument("--force", action="store_true", help="regrade submissions that did not change")
    parser.add_argument("--student", default="*", metavar="GLOB", help="only students whose id matches (default *)")
    parser.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="submissions graded at once on this machine (default: the number of cores)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="send submissions to this Dask scheduler instead (tcp://host:8786)")
    parser.add_argument("--notebook-timeout", type=positive_int, default=600, metavar="S",
                        help="wall-clock limit of a whole notebook in seconds (default 600; the per-cell limit is "
                             "c.Execute.timeout of nbgrader_config.py)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="course folder (default: the current one)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.jobs and args.scheduler:
        parser.error("--jobs and --scheduler exclude each other (the cluster has its own workers)")
    if not grading.ASSIGNMENT_RE.match(args.assignment) and not Path(args.assignment).name == args.assignment:
        parser.error(f"{args.assignment!r} is not an assignment name")
    try:
        grade(args.root, args.assignment, args.force, args.student, args.jobs, args.scheduler,
              args.notebook_timeout, not args.no_progress)
    except (ValueError, OSError) as err:
        print(f"grade: {one_line(err)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
