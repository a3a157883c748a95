"""The score cell at the end of every exercise: run the notebook's visible test cells in *this* kernel, print points.

The cell is one line, ``score_visible_tests("03_layers.ipynb")``. It reads the notebook file (next to the kernel's
working directory: in JupyterLab the notebook's folder, in JupyterLite the same folder under ``/drive``), takes
its test cells (nbgrader grade cells; ``### BEGIN HIDDEN TESTS`` blocks, present only in instructors' sources, are
left out) and runs each one in the kernel's namespace, where the learner's answers are defined. No subprocess, no
new kernel, no thread: it works under Pyodide as in CPython. It writes nothing.

It scores with nbgrader's rule (``grading.determine_grade``): a test cell that raised, or wrote anything to stderr
(a warning included), earns 0; one that ends in a number earns that partial credit. Warnings are shown again as in
a fresh kernel (``catch_warnings`` resets the "shown once" registries). While nbgrader or ``check`` runs the
notebook (``NBGRADER_EXECUTION`` set) the cell does nothing: the grader runs the tests itself.

What this is not: ``python -m tinyqnn check`` runs the notebook from the top in a fresh kernel and the grader adds
hidden tests, so a cell the learner never ran, or state left over from earlier runs, can make the two disagree;
the printed note says so.
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import io
import json
import os
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

from ..utils import atomic
from . import grading

#: ids of the two cells at the end of every exercise (``append_score_cells``)
INTRO_ID, CELL_ID = "visible-score-intro", "visible-score"
INTRO = ("## Your score on the visible tests\n\n"
         "Run every cell above, then this one: it runs this notebook's visible test cells again, in this kernel,\n"
         "and prints each task's points, the first line of each failure and the total (in the browser course as in\n"
         "JupyterLab). Hidden tests run too when your notebook is graded: full marks here are necessary, not\n"
         "sufficient.")

NOTE = ("hidden tests run too when your notebook is graded: full marks here are necessary, not sufficient; "
        "run every cell above first")


def visible_test_cells(path: str | Path) -> list[dict]:
    """The grade cells of the notebook at ``path`` (plain dicts), hidden test blocks removed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook {path} (working directory {Path.cwd()}): pass the name of the "
                                f"exercise notebook this cell is in, e.g. score_visible_tests('03_layers.ipynb')")
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a notebook (invalid JSON: {error})") from None
    cells = []
    for cell in nb.get("cells", []):
        if grading.is_grade(cell):
            source = grading.source_text(cell)
            if cell.get("cell_type") == "code" and not grading.is_solution(cell):
                _, visible = grading.split_blocks(source, grading.BEGIN_HIDDEN, grading.END_HIDDEN)
                source = "\n".join(visible)
            cells.append({**cell, "source": source, "outputs": []})
    return cells


def _shell():
    """The running IPython shell (JupyterLab's kernel, Pyodide's), or None."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _namespace() -> dict:
    """The kernel's user namespace (IPython's), or ``__main__``'s outside IPython."""
    shell = _shell()
    return shell.user_ns if shell is not None else vars(sys.modules["__main__"])


def _python(source: str) -> str:
    """IPython syntax (``%magic``, ``!cmd``) turned into Python, as the kernel would run it."""
    shell = _shell()
    return shell.transform_cell(source) if shell is not None else source


def _show_on_stderr(message, category, filename, lineno, file=None, line=None) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_cell(source: str, namespace: dict, name: str) -> list[dict]:
    """Run one test cell's source in ``namespace``; its outputs as nbformat dicts (error, stderr, result)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    outputs: list[dict] = []
    try:
        tree = ast.parse(_python(source), filename=name)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        # catch_warnings resets the "already shown" registries: a warning counts as in a fresh kernel, where
        # Python's default shows it on stderr (whatever records warnings here, pytest for one, is set aside)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            warnings.showwarning = _show_on_stderr
            exec(compile(tree, name, "exec"), namespace)
            value = eval(compile(ast.Expression(last.value), name, "eval"), namespace) if last else None
        if value is not None:
            outputs.append({"output_type": "execute_result", "data": {"text/plain": repr(value)}})
    except KeyboardInterrupt:
        raise
    except BaseException as error:  # noqa: BLE001 - a test cell's SystemExit is a failure too, as in nbgrader
        outputs.append({"output_type": "error", "ename": type(error).__name__, "evalue": str(error)})
    if stderr.getvalue():
        outputs.insert(0, {"output_type": "stream", "name": "stderr", "text": stderr.getvalue()})
    return outputs


def visible_scores(path: str | Path, namespace: dict | None = None) -> list[grading.TaskScore]:
    """Run the visible test cells of the notebook at ``path`` in ``namespace`` (default: the kernel's)."""
    namespace = _namespace() if namespace is None else namespace
    cells = visible_test_cells(path)
    for cell in cells:
        if cell.get("cell_type") == "code" and not grading.is_solution(cell):
            cell["outputs"] = run_cell(cell["source"], namespace, f"<{grading.grade_id(cell)}>")
    return list(grading.score_notebook(SimpleNamespace(cells=cells)).values())


def summary(scores: list[grading.TaskScore]) -> tuple[float, float]:
    """(points earned, points possible) over the autograded tasks."""
    auto = [s for s in scores if s.score is not None]
    return sum(s.score for s in auto), sum(s.max_score for s in auto)


def format_report(path: str | Path, scores: list[grading.TaskScore]) -> str:
    """The per-task table and the visible total, as printed by ``score_visible_tests``."""
    got, total = summary(scores)
    first_lines = [dataclasses.replace(s, message=(s.message.splitlines() or [""])[0]) for s in scores]
    lines = [f"visible tests of {Path(path).name}, run in this kernel:", grading.format_scores(first_lines),
             f"visible tests: {got:g} / {total:g} points ({NOTE})"]
    manual = sum(s.max_score for s in scores if s.score is None)
    if manual:
        lines.append(f"  plus {manual:g} points your instructor grades by hand")
    return "\n".join(lines)


def score_visible_tests(notebook: str | Path, namespace: dict | None = None) -> None:
    """Print the points of the visible tests of ``notebook`` (the exercise's file name) run in this kernel."""
    if os.environ.get("NBGRADER_EXECUTION"):
        print("(not run while grading: the grader runs the tests itself)")
        return
    scores = visible_scores(notebook, namespace)
    print(format_report(notebook, scores))


def cell_source(notebook_name: str) -> str:
    """The score cell's code for the notebook file ``notebook_name`` (e.g. ``03_layers.ipynb``)."""
    return f"from tinyqnn.course.selfcheck import score_visible_tests\n\nscore_visible_tests({notebook_name!r})"


def append_score_cells(nb: dict, notebook_name: str) -> bool:
    """Append the markdown cell and the score cell to ``nb`` (a notebook as JSON) unless it already ends with
    them; True when it changed. The cells are plain (no nbgrader metadata): unlocked and not graded."""
    if [c.get("id") for c in nb["cells"][-2:]] == [INTRO_ID, CELL_ID]:
        return False
    ids = {c.get("id") for c in nb["cells"]}
    if INTRO_ID in ids or CELL_ID in ids:
        raise ValueError(f"{notebook_name}: a cell {INTRO_ID!r} or {CELL_ID!r} exists but not at the end")
    # sources as the notebook already keeps them (one string, or a list of lines as nbformat writes)
    lines = isinstance(nb["cells"][0].get("source") if nb["cells"] else None, list)
    shape = (lambda text: text.splitlines(keepends=True)) if lines else (lambda text: text)
    nb["cells"] += [
        {"cell_type": "markdown", "id": INTRO_ID, "metadata": {}, "source": shape(INTRO)},
        {"cell_type": "code", "execution_count": None, "id": CELL_ID, "metadata": {}, "outputs": [],
         "source": shape(cell_source(notebook_name))},
    ]
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m tinyqnn.course.selfcheck NOTEBOOK...``: append the score cells to source notebooks (in place,
    only those that lack them; nothing else changes), then regenerate exercises/ with ``python -m tinyqnn release``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m tinyqnn.course.selfcheck", description=main.__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    for path in args.notebooks:
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
            changed = append_score_cells(nb, path.name)
        except (OSError, ValueError, KeyError) as error:
            print(f"error: {path}: {error}", file=sys.stderr)
            return 1
        if changed:
            atomic.atomic_write_bytes(path, grading.canonical_json(nb).encode("utf-8"))
        print(f"{path}: {'score cells appended' if changed else 'already ends with the score cells'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
