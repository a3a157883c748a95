"""``python -m tinyqnn grade-benchmark``: sequential ``nbgrader autograde`` against ``grade`` on one synthetic class.

Builds a class of N submissions of one unit (correct, wrong, half done, blank, and one endless loop), then
grades identical copies of the course folder with: sequential ``nbgrader autograde``, ``grade --jobs 1``,
``grade --jobs 2`` and ``grade`` on a two-worker Dask LocalCluster. Prints wall time, seconds per submission
and the ratio to nbgrader, all measured in this one run (``--repeat R``: medians of R runs each), and what the
endless loop cost in each ``grade`` run. A shared machine makes the numbers noisy: say so when you quote them.
Not a test: nothing is asserted.

"wrong" is the unit's first plausible wrong answer from ``tests/course/wrong_answers/`` (in a checkout; without
one the class has no wrong kind, which the header says).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import shutil
import statistics
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
    wrong_file = grading.repo_root() / "tests" / "course" / "wrong_answers" / f"{assignment}.py"
    if wrong_file.is_file():
        wa = grading.load_wrong_answers(wrong_file)[0]
        kinds.insert(1, ("wrong", grading.replace_cell(solved, wa["cell"], wa["source"])))
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
    parser.add_argument("--repeat", type=positive_int, default=1, help="runs of each grader; medians (default 1)")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    with tempfile.TemporaryDirectory(prefix="tinyqnn-grade-bench-") as tmp:
        root = Path(tmp)
        base = build_class(root, args.assignment, args.submissions, args.cell_timeout)
        n = args.submissions
        runs: dict[str, list[float]] = {}
        loops: dict[str, list[float]] = {}

        def copy(name: str) -> Path:
            dst = root / f"{name}-{sum(len(v) for v in runs.values())}"
            shutil.copytree(base.path, dst)
            return dst

        def timed(label: str, fn) -> None:
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                outcomes = fn()
            runs.setdefault(label, []).append(time.perf_counter() - start)
            loop = [o.seconds for o in outcomes or [] if o.student == "s999_loop"]
            if loop:
                loops.setdefault(label, []).append(loop[0])
            print(f"  {label:<38} {runs[label][-1]:8.1f} s"
                  + (f"   (endless loop's submission: {loop[0]:.1f} s)" if loop else ""), flush=True)

        kinds = sorted({p.name.split("_", 1)[1] for p in (base.path / "submitted").iterdir()})
        print(f"{n} submissions of {args.assignment} ({', '.join(kinds)}; one endless loop), per-cell limit "
              f"{args.cell_timeout} s, {args.repeat} run(s) each")
        for _ in range(args.repeat):
            if "nbgrader" not in skip:
                ref = grading.TempCourse(copy("nbgrader"), timeout=args.cell_timeout)
                timed("nbgrader autograde (sequential)", lambda: ref.autograde(args.assignment, timeout=24 * 3600)
                      and None)
            for label, jobs in (("grade --jobs 1", 1), ("grade --jobs 2", 2)):
                if f"jobs{jobs}" not in skip:
                    path = copy(f"jobs{jobs}")
                    timed(label, lambda p=path, j=jobs: grade(p, args.assignment, jobs=j, progress=False))
            if "dask" not in skip:
                from distributed import LocalCluster

                path = copy("dask")
                with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
                    timed("grade, Dask LocalCluster (2 workers)",
                          lambda: grade(path, args.assignment, scheduler=cluster.scheduler_address, progress=False))
        medians = {label: statistics.median(times) for label, times in runs.items()}
        reference = medians.get("nbgrader autograde (sequential)")
        which = "median " if args.repeat > 1 else ""
        print(f"\n  {'run':<38} {which + 'wall s':>12} {'s/submission':>13} {'vs nbgrader':>12} {'loop s':>7}")
        for label, seconds in medians.items():
            ratio = f"{reference / seconds:.2f}x" if reference else "-"
            loop = f"{statistics.median(loops[label]):7.1f}" if label in loops else f"{'-':>7}"
            print(f"  {label:<38} {seconds:12.1f} {seconds / n:13.2f} {ratio:>12} {loop}")
        if reference and "grade --jobs 1" in medians:
            print(f"\n  sandbox overhead per submission (grade --jobs 1 vs nbgrader): "
                  f"{100 * (medians['grade --jobs 1'] / reference - 1):+.0f}% (target <= +15%)")
        if reference and "grade --jobs 2" in medians:
            print(f"  grade --jobs 2 speed-up over nbgrader: {reference / medians['grade --jobs 2']:.2f}x "
                  "(target >= 1.8x on 2 cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
