"""``python -m tinyqnn grade-benchmark``: sequential ``nbgrader autograde`` against ``grade`` on one synthetic class.

Builds a class of N submissions of one unit (correct, blank, half done, and one endless loop), then grades
identical copies of the course folder with: sequential ``nbgrader autograde``, ``grade --jobs 1``,
``grade --jobs 2`` and ``grade`` on a two-worker Dask LocalCluster. Prints wall time, seconds per submission
and the ratio to nbgrader, all measured in this one run (a shared machine makes the numbers noisy: say so
when you quote them). Not a test: nothing is asserted.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import tempfile
import time
from pathlib import Path

from . import grading


def build_class(root: Path, assignment: str, n: int, cell_limit: int) -> grading.TempCourse:
    course = grading.TempCourse(root / "base", timeout=cell_limit)
    course.add_source(assignment)
    course.generate(assignment)
    source = grading.read_notebook(course.path / grading.SOLUTIONS_DIR / assignment / f"{assignment}.ipynb")
    release = course.release_notebook(assignment)
    solved = grading.solved_copy(release, source)
    tasks = list(grading.solution_cells(source))
    half = grading.solved_copy(release, source)
    for gid in tasks[len(tasks) // 2:]:
        half = grading.replace_cell(half, gid, grading.source_text(grading.find_cell(release, gid)))
    loop_task = tasks[len(tasks) // 2]
    stub = grading.source_text(grading.find_cell(release, loop_task))
    looping = grading.replace_cell(solved, loop_task, stub.replace("raise NotImplementedError()",
                                                                     "while True:\n        pass"))
    kinds = [("correct", solved), ("blank", release), ("half", half)]
    for i in range(n - 1):
        kind, nb = kinds[i % len(kinds)]
        course.submit(f"s{i:03d}_{kind}", assignment, {assignment: nb})
    course.submit("s999_loop", assignment, {assignment: looping})
    return course


def main(argv: list[str] | None = None) -> int:
    from ..args import positive_int
    from .grade import grade

    parser = argparse.ArgumentParser(prog="python -m tinyqnn grade-benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="01_chain_rule", help="unit to grade (default 01_chain_rule)")
    parser.add_argument("--submissions", type=positive_int, default=40, help="class size (default 40)")
    parser.add_argument("--cell-timeout", type=positive_int, default=20,
                        help="per-cell limit for both graders, seconds (default 20: the loop costs this)")
    parser.add_argument("--skip", default="", help="comma-separated runs to skip: nbgrader,jobs1,jobs2,dask")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="tinyqnn-grade-bench-") as tmp:
        root = Path(tmp)
        base = build_class(root, args.assignment, args.submissions, args.cell_timeout)
        n = args.submissions
        rows = []

        def copy(name: str) -> Path:
            dst = root / name
            shutil.copytree(base.path, dst)
            return dst

        def timed(label: str, fn) -> None:
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                fn()
            rows.append((label, time.perf_counter() - start))
            print(f"  {label:<34} {rows[-1][1]:8.1f} s", flush=True)

        print(f"{n} submissions of {args.assignment} (one endless loop), per-cell limit {args.cell_timeout} s")
        if "nbgrader" not in skip:
            ref = grading.TempCourse(copy("nbgrader"), timeout=args.cell_timeout)
            timed("nbgrader autograde (sequential)", lambda: ref.autograde(args.assignment, timeout=24 * 3600))
        for label, jobs in (("grade --jobs 1", 1), ("grade --jobs 2", 2)):
            if f"jobs{jobs}" not in skip:
                path = copy(f"jobs{jobs}")
                timed(label, lambda p=path, j=jobs: grade(p, args.assignment, jobs=j, progress=False))
        if "dask" not in skip:
            from distributed import LocalCluster

            path = copy("dask")
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
                timed("grade, Dask LocalCluster (2 workers)",
                      lambda: grade(path, args.assignment, scheduler=cluster.scheduler_address, progress=False))
        reference = dict(rows).get("nbgrader autograde (sequential)")
        print(f"\n  {'run':<34} {'wall s':>8} {'s/submission':>13} {'vs nbgrader':>12}")
        for label, seconds in rows:
            ratio = f"{reference / seconds:.2f}x" if reference else "-"
            print(f"  {label:<34} {seconds:8.1f} {seconds / n:13.2f} {ratio:>12}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
