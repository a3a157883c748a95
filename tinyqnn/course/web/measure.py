"""``python -m tinyqnn web-measure``: what the course on the web costs, measured in one run on this machine.

Prints the site's and the browser course's build time and size, the browser kernel's start time (page open to
an idle Pyodide kernel that imported tinyqnn), and each lesson's run time in the browser (headless Chromium,
offline bundle) against CPython (this venv's kernel through nbclient), both in quick mode, as a ratio. With
``--exercises``, the same for exercises with the reference solution pasted into every answer cell (in CPython:
the same notebook), plus the total the exercise's score cell showed in the browser.

What is timed: in the browser, "run all" from the idle kernel to the last output; in CPython, the sum of the
cells' execution times nbclient records (kernel start excluded on both sides). One run each, so a busy machine
shows in the numbers: the ratios, taken on the same machine at nearly the same time, are what to read.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from .. import grading
from . import browser, drive
from .lite import build_lite
from .site import build_site, lesson_notebooks


def cpython_seconds(path: Path, nb=None) -> float:
    """Seconds of cell execution of ``path`` (or of ``nb``, run in ``path``'s folder) in a CPython kernel, quick
    mode (nbclient's recorded timings)."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4) if nb is None else nb
    old = os.environ.get("TINYQNN_QUICK")
    os.environ["TINYQNN_QUICK"] = "1"
    try:
        nbclient.NotebookClient(nb, timeout=1200, kernel_name="python3", record_timing=True,
                                resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if old is None:
            os.environ.pop("TINYQNN_QUICK", None)
        else:
            os.environ["TINYQNN_QUICK"] = old
    total = 0.0
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
            total += (end - start).total_seconds()
    return total


def pick(available: list[Path], spec: str) -> list[Path]:
    """The notebooks whose two-digit number is in ``spec`` ("all", "none" or e.g. "1,3")."""
    if spec == "none":
        return []
    if spec == "all":
        return available
    try:
        wanted = {int(n) for n in spec.split(",")}
    except ValueError:
        raise ValueError(f"expected 'all', 'none' or numbers like 1,3; got {spec!r}") from None
    return [p for p in available if int(p.name[:2]) in wanted]


def solved_exercise(root: Path, unit: str):
    """exercises/<unit>'s notebook with every answer cell holding the reference solution (solutions/<unit>)."""
    release = grading.read_notebook(root / grading.EXERCISES_DIR / unit / f"{unit}.ipynb")
    source = grading.read_notebook(root / grading.SOLUTIONS_DIR / unit / f"{unit}.ipynb")
    return grading.solved_copy(release, source)


def visible_score(cells: list[dict]) -> str:
    """The score cell's total line ("visible tests: X / Y points ...") from a run's outputs, or "-"."""
    for cell in reversed(cells):
        for line in drive.output_text(cell["outputs"]).splitlines():
            if line.startswith("visible tests:"):
                return line.split("(")[0].removeprefix("visible tests:").strip()
    return "-"


def report(kind: str, name: str, run: drive.Run, cpython: float, ratios: list[float], extra: str = "") -> None:
    """One table row: kernel start, browser and CPython seconds and their ratio, or where the browser failed."""
    if run.errors or not run.reached_end:
        where, error = next(iter(run.errors.items()), ("", "stopped early"))
        print(f"{name:28s} {run.kernel_seconds:11.1f}s  failed in the browser at {where}: {error} "
              f"(CPython: {cpython:.1f}s)", flush=True)
        return
    ratios.append(run.run_seconds / cpython)
    print(f"{name:28s} {run.kernel_seconds:11.1f}s {run.run_seconds:8.1f}s {cpython:8.1f}s "
          f"{ratios[-1]:6.1f}x{extra}", flush=True)


def main(argv: list[str] | None = None) -> int:
    root = grading.repo_root()
    parser = argparse.ArgumentParser(prog="python -m tinyqnn web-measure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lessons", default=None,
                        help="lesson numbers to run, comma-separated, 'all' or 'none' (default all, or none "
                             "when --exercises is given), e.g. 1,3")
    parser.add_argument("--exercises", default="none",
                        help="exercise numbers to run with the reference solution pasted in (default none), "
                             "e.g. all or 2,4; the score cell's visible total is shown")
    args = parser.parse_args(argv)
    problem = browser.missing()
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        lessons = pick(lesson_notebooks(root), args.lessons or ("all" if args.exercises == "none" else "none"))
        units = [p.parent.name for p in pick(sorted((root / grading.EXERCISES_DIR).glob("*/*.ipynb")),
                                             args.exercises)]
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        site = build_site(Path(tmp) / "site", root)
        print(f"site build: {site['seconds']:.1f} s, {site['bytes'] / 1e6:.1f} MB ({len(site['pages'])} lessons, "
              "MathJax included)", flush=True)
        lite = build_lite(Path(tmp) / "lite", root, offline=True)
        print(f"browser course build (offline bundle): {lite['seconds']:.1f} s, {lite['bytes'] / 1e6:.1f} MB "
              f"({len(lite['notebooks'])} notebooks)", flush=True)
        ratios: list[float] = []
        with browser.serve(Path(tmp) / "lite") as base, browser.browser_context() as (context, guard):
            context.route("**/jupyter-lite.json*", drive.expose_app)
            if lessons:
                print(f"{'lesson':28s} {'kernel start':>12s} {'browser':>9s} {'CPython':>9s} {'ratio':>7s}")
            for path in lessons:
                run = drive.run_notebook(context, base, f"{grading.LESSONS_DIR}/{path.name}")
                report("lesson", path.stem, run, cpython_seconds(path), ratios)
            if units:
                print(f"{'exercise (reference solution)':28s} {'kernel start':>12s} {'browser':>9s} {'CPython':>9s} "
                      f"{'ratio':>7s}  visible tests (score cell)")
            for unit in units:
                solved = solved_exercise(root, unit)
                answers = {grading.grade_id(c): grading.source_text(c) for c in solved.cells
                           if grading.is_solution(c) and not grading.is_grade(c)}
                run = drive.run_notebook(context, base, f"{grading.EXERCISES_DIR}/{unit}/{unit}.ipynb", answers)
                cpython = cpython_seconds(root / grading.EXERCISES_DIR / unit / f"{unit}.ipynb", solved)
                report("exercise", unit, run, cpython, ratios, f"  {visible_score(run.cells)}")
        if ratios:
            print(f"median browser/CPython ratio over {len(ratios)} notebook(s): {statistics.median(ratios):.1f}x")
        if guard.outside:
            print(f"warning: requests left 127.0.0.1: {guard.outside}")
    return 0
