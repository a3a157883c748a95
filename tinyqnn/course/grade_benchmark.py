"""``python -m tinyqnn grade-benchmark``: sequential ``nbgrader autograde`` against ``grade`` on one synthetic class.

Builds a class of N submissions of one unit (correct, wrong, half done, blank, and one endless loop), then
grades identical copies of the course folder with: sequential ``nbgrader autograde``, ``grade --jobs 1``,
``grade --jobs 2`` and ``grade`` on a two-worker Dask LocalCluster. Prints wall time, seconds per submission
and the ratio to nbgrader, all measured in this one run, what the endless loop cost in each ``grade`` run,
and whether every ``grade`` run gave every test cell nbgrader's score. ``--repeats R`` runs the four graders
in turn R times (alternating, so a change in the machine's load hits them alike) and reports medians, as the
project's numbers must be quoted; one repetition takes about 6 minutes on two idle cores, so the default is 1.
A shared machine makes the numbers noisy: say so when you quote them. Not a test: nothing is asserted.

The endless loop's submission sorts last by default (``--loop-at last``): ``grade`` starts it after all the
others, the worst case for parallel grading (its limits then run while the other worker has nothing left
to do); ``first`` and ``middle`` show the other cases. ``grade`` starts the slowest submission of the previous
grading first on a regrade, but each run here grades a fresh copy.

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


LOOP_AT = ("first", "middle", "last")


def loop_student(n: int, loop_at: str) -> str:
    """The endless loop's student id in a class of ``n``: sorts first, in the middle or last."""
    return f"s{(0, (n - 1) // 2, n - 1)[LOOP_AT.index(loop_at)]:03d}_loop"


def build_class(root: Path, assignment: str, n: int, cell_limit: int, loop_at: str = "last") -> grading.TempCourse:
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
    loop = loop_student(n, loop_at)
    ids = [i for i in range(n) if f"s{i:03d}_loop" != loop]
    for i, number in enumerate(ids):
        kind, nb = kinds[i % len(kinds)]
        course.submit(f"s{number:03d}_{kind}", assignment, {assignment: nb})
    course.submit(loop, assignment, {assignment: looping})
    return course


def points(path: Path, assignment: str) -> dict[tuple[str, str], float]:
    """(student, grade_id) -> score, from the course folder's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{path / 'gradebook.db'}") as gb:
        return {(sub.student.id, g.name): float(g.score)
                for sub in gb.assignment_submissions(assignment) for nb in sub.notebooks for g in nb.grades}


def main(argv: list[str] | None = None) -> int:
    from ..args import positive_int
    from .grade import grade

    parser = argparse.ArgumentParser(prog="python -m tinyqnn grade-benchmark", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assignment", default="01_chain_rule", help="unit to grade (default 01_chain_rule)")
    parser.add_argument("--submissions", type=positive_int, default=40, help="class size (default 40)")
    parser.add_argument("--cell-timeout", type=positive_int, default=20,
                        help="per-cell limit for both graders, seconds (default 20; unit 1's endless loop costs two: "
                             "its test cell, then the demo cell after the last test)")
    parser.add_argument("--notebook-timeout", type=positive_int, default=600, metavar="S",
                        help="grade's limit for a whole notebook (default 600, grade's own; nbgrader has none)")
    parser.add_argument("--loop-at", choices=LOOP_AT, default="last",
                        help="where the endless loop's submission sorts in the class (default last: the worst case)")
    parser.add_argument("--skip", default="", help="comma-separated runs to skip: nbgrader,jobs1,jobs2,dask")
    parser.add_argument("--repeats", "--repeat", dest="repeats", type=positive_int, default=1, metavar="R",
                        help="run the four graders in turn R times and report medians (default 1: a repetition "
                             "takes about 6 minutes on 2 idle cores; quote medians of 3 or more)")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    n = args.submissions
    loop = loop_student(n, args.loop_at)
    with tempfile.TemporaryDirectory(prefix="tinyqnn-grade-bench-") as tmp:
        root = Path(tmp)
        base = build_class(root, args.assignment, n, args.cell_timeout, args.loop_at)
        runs: dict[str, list[float]] = {}
        loops: dict[str, list[float]] = {}
        reference: dict[tuple[str, str], float] = {}
        mismatches: dict[str, dict[tuple[str, str], float | None]] = {}  # run -> cells whose score differs

        def copy(name: str) -> Path:
            dst = root / f"{name}-{sum(len(v) for v in runs.values())}"
            shutil.copytree(base.path, dst)
            return dst

        def timed(label: str, path: Path, fn) -> None:
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                outcomes = fn()
            runs.setdefault(label, []).append(time.perf_counter() - start)
            seconds = [o.seconds for o in outcomes or [] if o.student == loop]
            if seconds:
                loops.setdefault(label, []).append(seconds[0])
            got = points(path, args.assignment)
            if not reference and label.startswith("nbgrader"):
                reference.update(got)
            elif reference:
                mismatches.setdefault(label, {}).update({k: got.get(k) for k in reference.keys() | got.keys()
                                                         if reference.get(k) != got.get(k)})
            shutil.rmtree(path, ignore_errors=True)
            print(f"  {label:<38} {runs[label][-1]:8.1f} s"
                  + (f"   (endless loop's submission: {seconds[0]:.1f} s)" if seconds else ""), flush=True)

        kinds = sorted({p.name.split("_", 1)[1] for p in (base.path / "submitted").iterdir()} - {"loop"})
        print(f"{n} submissions of {args.assignment} ({', '.join(kinds)}; one endless loop, {loop}), per-cell "
              f"limit {args.cell_timeout} s, grade's notebook limit {args.notebook_timeout} s, "
              f"{args.repeats} repetition(s)")
        for _ in range(args.repeats):
            if "nbgrader" not in skip:
                path = copy("nbgrader")
                ref = grading.TempCourse(path, timeout=args.cell_timeout)
                timed("nbgrader autograde (sequential)", path,
                      lambda: ref.autograde(args.assignment, timeout=24 * 3600) and None)
            for label, jobs in (("grade --jobs 1", 1), ("grade --jobs 2", 2)):
                if f"jobs{jobs}" not in skip:
                    path = copy(f"jobs{jobs}")
                    timed(label, path, lambda p=path, j=jobs: grade(p, args.assignment, jobs=j, progress=False,
                                                                    notebook_seconds=args.notebook_timeout))
            if "dask" not in skip:
                from distributed import LocalCluster

                path = copy("dask")
                with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
                    timed("grade, Dask LocalCluster (2 workers)", path,
                          lambda: grade(path, args.assignment, scheduler=cluster.scheduler_address, progress=False,
                                        notebook_seconds=args.notebook_timeout))
        medians = {label: statistics.median(times) for label, times in runs.items()}
        nbgrader = medians.get("nbgrader autograde (sequential)")
        which = "median " if args.repeats > 1 else ""
        print(f"\n  {'run':<38} {which + 'wall s':>12} {'s/submission':>13} {'vs nbgrader':>12} {'loop s':>7}"
              f"  {'grades':<6}")
        for label, seconds in medians.items():
            ratio = f"{nbgrader / seconds:.2f}x" if nbgrader else "-"
            loop_s = f"{statistics.median(loops[label]):7.1f}" if label in loops else f"{'-':>7}"
            same = ("-" if label not in mismatches else f"same ({len(reference)} cells)" if not mismatches[label]
                    else f"{len(mismatches[label])} test cell(s) differ from nbgrader's")
            print(f"  {label:<38} {seconds:12.1f} {seconds / n:13.2f} {ratio:>12} {loop_s}  {same}")
        for label, cells in mismatches.items():
            for (student, gid), score in sorted(cells.items())[:10]:
                print(f"    {label}: {student} {gid}: nbgrader {reference.get((student, gid))}, here {score}")
        if nbgrader and "grade --jobs 1" in medians:
            print(f"\n  sandbox overhead per submission (grade --jobs 1 vs nbgrader): "
                  f"{100 * (medians['grade --jobs 1'] / nbgrader - 1):+.0f}% (target <= +15%)")
        if nbgrader and "grade --jobs 2" in medians:
            print(f"  grade --jobs 2 speed-up over nbgrader: {nbgrader / medians['grade --jobs 2']:.2f}x "
                  "(target >= 1.8x on 2 cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
