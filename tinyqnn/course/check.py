"""The learner's self-check: ``python -m tinyqnn check exercises/03_layers``.

Runs each notebook in the grading sandbox (``tinyqnn.course.sandbox``), top to bottom, continuing past errors
(as nbgrader's autograder does), with the test cells run as ``python -m tinyqnn grade`` runs them
(``tinyqnn.course.verdict``), and prints the points of every test cell with the reason for lost points and a total. No Jupyter
server and no gradebook are involved. A test cell earns its points iff it runs without an error and
without printing to stderr (nbgrader's rule). The notebook on disk is not modified.

The score is an upper bound of the real grade: hidden tests are added back only when an instructor
autogrades, and nbgrader restores any locked cell you edited.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from ..args import one_line, positive_int
from ..utils import child_env
from . import grading
from .sandbox_worker import record_missing_error



class KernelDied(RuntimeError):
    pass


def execute_notebook(nb: Any, cwd: str | Path, timeout: int = grading.EXECUTE_TIMEOUT,
                     env: dict[str, str] | None = None) -> Any:
    """Execute ``nb`` in place like nbgrader does (fresh python3 kernel, allow errors, interrupt on timeout).

    ``env`` entries are set in the kernel's environment (the kernel inherits this process's variables).
    Raises ``KernelDied`` naming the cell when the kernel dies (nbgrader then fails the whole notebook).
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        error_on_timeout=grading.ERROR_ON_TIMEOUT,
        extra_arguments=list(grading.KERNEL_ARGUMENTS),
        resources={"metadata": {"path": str(cwd)}},
        on_cell_executed=record_missing_error,
    )
    # The kernel inherits this process's variables; the venv's bin/ goes first on its PATH so that
    # `!python -m tinyqnn ...` and tools a notebook shells out to are the venv's, activated or not.
    env = {"PATH": child_env()["PATH"], **(env or {})}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        client.execute()
    except DeadKernelError as err:
        ran = [c for c in nb.cells if c.get("cell_type") == "code" and c.get("execution_count")]
        where = (grading.grade_id(ran[-1]) or f"code cell {len(ran)}") if ran else "the first code cell"
        raise KernelDied(f"the kernel died while running {where} ({err}); nbgrader gives 0 points for the "
                         "whole notebook when that happens (os._exit, sys.exit in a loop, out of memory ...)") from err
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def edited_locked_cells(nb: Any) -> list[str]:
    """grade_ids of locked cells whose source differs from the released one (checksum recorded by nbgrader)."""
    try:
        from nbgrader.utils import compute_checksum
    except ImportError:  # nbgrader is optional for learners; skip this courtesy check
        return []
    return [grading.grade_id(c) for c in nb.cells
            if grading.is_locked(c) and "checksum" in grading.nbgrader_meta(c)
            and grading.nbgrader_meta(c)["checksum"] != compute_checksum(c)]


def released_copy(path: Path) -> Any | None:
    """The released notebook this one was copied from (``exercises/<unit>/<name>.ipynb`` of the checkout), if any."""
    release = grading.repo_root() / grading.EXERCISES_DIR / path.parent.name / path.name
    if not release.is_file() or release.resolve() == path.resolve():
        return None
    try:
        return grading.read_notebook(release)
    except Exception:  # a broken checkout must not stop a learner's check
        return None


def check_notebook(path: Path, timeout: int = grading.EXECUTE_TIMEOUT, out=None,
                   notebook_timeout: int | None = None) -> tuple[float, float]:
    """Run one notebook in the grading sandbox and print its per-task report to ``out`` (stdout); returns
    (points, max points). Test cells run as when grading (``tinyqnn.course.verdict``), with the released
    version of each test cell when the release is found; a deleted test cell is reported as 0 points."""
    from .sandbox import Limits
    from .verdict import run_graded

    out = out or sys.stdout
    nb = grading.read_notebook(path)
    release = released_copy(path)
    trusted = release if release is not None else nb
    expected = grading.auto_grade_cells(trusted)  # manually graded answers are not self-checked
    present = set(grading.auto_grade_cells(nb))
    deleted = [gid for gid in expected if gid not in present]
    total_max = sum(expected.values())
    print(f"{path}", file=out)
    if not total_max:
        print("  (no graded test cells in this notebook)", file=out)
    edited = edited_locked_cells(nb)
    files = {str(p.relative_to(path.parent)): p.read_bytes() for p in grading.source_files(path.parent)
             if p.suffix != ".ipynb" and p.stat().st_size < 64 << 20}
    limits = Limits(cell_seconds=timeout, notebook_seconds=notebook_timeout or max(600, 5 * timeout))
    run = run_graded(nb, files, limits, trusted=trusted)
    if run.status == "died":
        print(f"  {run.reason}; nbgrader gives 0 points for the whole notebook when that happens "
              "(os._exit, sys.exit in a loop, out of memory ...)", file=out)
        print(f"  total: 0 / {total_max:g}", file=out)
        return 0.0, total_max
    if run.status == "timeout":
        print(f"  {run.reason}", file=out)
    scores = grading.score_notebook(run.nb)
    for gid in deleted:
        scores[gid] = grading.TaskScore(gid, 0.0, expected[gid], "this test cell was deleted: the task scores 0 "
                                        "when graded (copy the cell back from the released notebook)")
    ordered = [scores[gid] for gid in [*expected, *[g for g in scores if g not in expected]] if gid in scores]
    if ordered:
        print(grading.format_scores(ordered), file=out)
    manual = grading.manual_grade_cells(trusted)
    got = sum(s.score or 0.0 for gid, s in scores.items() if gid not in manual and gid in expected)
    print(f"  total: {got:g} / {total_max:g}", file=out)
    for gid in edited:
        print(f"  note: locked cell {gid!r} was edited; nbgrader grades with the original cell", file=out)
    return got, total_max


#: what running a notebook needs; all come with ``pip install -e ".[course]"``
RUNNER_MODULES = ("nbformat", "nbclient", "ipykernel")


def missing_runner() -> str | None:
    """None when the notebook runner can be imported, else what to install, with this interpreter's path.

    A learner set up for the main job only (``pip install -e .``) has no Jupyter; say exactly what to run
    instead of failing with a traceback deep inside the first notebook.
    """
    import shlex

    for name in RUNNER_MODULES:
        try:
            __import__(name)
        except ImportError as error:
            root = grading.repo_root()
            target = f"{root}[course]" if (root / "pyproject.toml").is_file() else "tinyqnn[course]"
            return (f"check runs notebooks with Jupyter, which this Python does not have ({error}); install "
                    f"the course tools into it with: {shlex.quote(sys.executable)} -m pip install -e "
                    f"{shlex.quote(target)}")
    return None


def unreadable_notebook(path: Path) -> str | None:
    """None when ``path`` reads as a v4 notebook, else a one-line reason naming the file (bad JSON, or JSON
    that is not a notebook: nbformat's schema check fails deep inside the runner otherwise)."""
    import nbformat

    try:
        nb = nbformat.read(str(path), as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # JSON errors, nbformat's NotJSONError/ValidationError, OSError, KeyError, ...
        return f"{path} is not a readable Jupyter notebook ({one_line(error)[:200]})"
    return None


def notebooks_in(target: Path) -> list[Path]:
    if target.is_dir():
        return sorted(p for p in target.glob("*.ipynb") if not grading.is_ignored(p.name))
    return [target]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyqnn check",
        description="Self-check a course notebook: run it in a fresh kernel and score its visible tests "
                    "as nbgrader would (hidden tests run only when the instructor grades).")
    parser.add_argument("paths", nargs="+", type=Path, help="notebook files or folders such as exercises/03_layers")
    parser.add_argument("--timeout", type=positive_int, default=grading.EXECUTE_TIMEOUT,
                        help=f"seconds per cell (default {grading.EXECUTE_TIMEOUT}, as when grading)")
    args = parser.parse_args(argv)
    problem = missing_runner()
    if problem:
        print(f"check: {problem}", file=sys.stderr)
        return 2

    targets = []
    for p in args.paths:
        if not p.exists():
            print(f"check: {p} does not exist", file=sys.stderr)
            return 2
        found = notebooks_in(p)
        if not found or any(t.suffix != ".ipynb" for t in found):
            print(f"check: {p} is not a notebook or a folder with notebooks", file=sys.stderr)
            return 2
        for t in found:
            problem = unreadable_notebook(t)
            if problem:
                print(f"check: {problem}", file=sys.stderr)
                return 2
        targets += found

    got = total = 0.0
    for path in targets:
        g, t = check_notebook(path, timeout=args.timeout)
        got, total = got + g, total + t
    if len(targets) > 1:
        print(f"overall: {got:g} / {total:g}")
    print("Hidden tests run only at grading time: full marks here are necessary, not sufficient.")
    return 0 if got == total else 1


if __name__ == "__main__":
    raise SystemExit(main())
