"""Start a new course unit from the template: ``python -m tinyqnn new-assignment 11_my_unit``.

Creates, and refuses to overwrite:

- ``solutions/11_my_unit/11_my_unit.ipynb``: the nbgrader source notebook, a copy of
  ``tinyqnn/course/templates/assignment.ipynb`` (title, setup, one complete example task and author notes on
  how to add the others) with the unit's name filled in and a cell id equal to each cell's grade_id;
- ``tests/course/wrong_answers/11_my_unit.py``: a starter ``WRONG_ANSWERS`` list for the example task;
- ``lessons/11_my_unit.ipynb``: a minimal lesson stub.

The new unit is deliberately incomplete: the course lint asks for at least 6 tasks, so CI stays red until
the author has written them (see INSTRUCTORS.md).
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from . import grading

# Stricter than grading.ASSIGNMENT_RE (which it implies): two digits, then lower-case words joined by single "_".
NAME_RE = re.compile(r"^(\d\d)_([a-z][a-z0-9]*(?:_[a-z0-9]+)*)$")
PLACEHOLDERS = ("__ASSIGNMENT__", "__NUMBER__", "__TITLE__")
TEMPLATE = "assignment.ipynb"

WRONG_ANSWERS_STARTER = '''"""Plausible wrong answers for solutions/{name}: each must lose exactly the points of `fails`.

Format (INSTRUCTORS.md, section 5): `cell` is the grade_id of the solution cell to replace, `source` its full
replacement (keep the signature), `fails` the grade cells that must drop to 0 (normally just the task's own
test), `why` what a learner got wrong. Every other test cell must keep full points. At least one entry per
task with cell="X", fails=["test_X"]; about two per task is plenty (each costs one notebook run in CI).
`RIGHT_ANSWERS` lists, per task, a correct answer in another style than the reference (einsum for a matmul,
a loop the text allows, keyword arguments); each must keep full marks.
Check (release first: the checks compare exercises/ with a fresh regeneration):
  python -m tinyqnn release {name}
  TINYQNN_COURSE_ONLY={name} python -m pytest tests/course
"""

WRONG_ANSWERS = [
    dict(cell="stable_sigmoid",
         fails=["test_stable_sigmoid"],
         why="textbook formula 1 / (1 + exp(-x)): exp overflows for large negative x",
         source=\'\'\'def stable_sigmoid(x):
    return 1 / (1 + np.exp(-x))
\'\'\'),
]

RIGHT_ANSWERS = [
    dict(cell="stable_sigmoid",
         why="sigmoid(x) = exp(-log(1 + exp(-x))) with NumPy's overflow-free logaddexp, no branches",
         source=\'\'\'def stable_sigmoid(x):
    return np.exp(-np.logaddexp(0, -x))
\'\'\'),
]
'''


class NewAssignmentError(ValueError):
    """A bad unit name, a name clash, or a file that already exists."""


def validate_name(name: str, root: Path | None = None) -> None:
    """Raise NewAssignmentError unless ``name`` is NN_snake_case and its number NN is free under ``root``."""
    if not NAME_RE.match(name):
        raise NewAssignmentError(
            f"{name!r} is not a unit name: use two digits, an underscore and lower-case snake_case words, "
            "e.g. 11_my_unit (it names the folders, the notebook and the nbgrader assignment)")
    assert grading.ASSIGNMENT_RE.match(name)  # the machinery's own pattern must accept every name we create
    if root is not None:
        taken = [a for a in grading.assignments(root) if a[:2] == name[:2] and a != name]
        if taken:
            raise NewAssignmentError(f"unit number {name[:2]} is already used by solutions/{taken[0]}/; "
                                     "pick the next free number")


def default_title(name: str) -> str:
    """``11_my_unit`` -> ``My unit``."""
    words = NAME_RE.match(name).group(2).replace("_", " ")
    return words[:1].upper() + words[1:]


def template_notebook() -> Any:
    """The packaged template as a NotebookNode (shipped in the wheel as package data)."""
    import nbformat

    text = resources.files("tinyqnn.course").joinpath("templates", TEMPLATE).read_text(encoding="utf-8")
    return nbformat.reads(text, as_version=4)


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def assignment_notebook(name: str, title: str | None = None) -> Any:
    """The template with the unit's name filled in and every cell id set to its grade_id (stable and readable)."""
    nb = copy.deepcopy(template_notebook())
    values = {"__ASSIGNMENT__": name, "__NUMBER__": str(int(name[:2])), "__TITLE__": title or default_title(name)}
    seen = set()
    for i, cell in enumerate(nb.cells):
        cell.source = _fill(grading.source_text(cell), values)
        cid = grading.grade_id(cell) or cell.get("id") or f"cell-{i:02d}"
        if cid in seen:
            raise NewAssignmentError(f"template {TEMPLATE}: duplicate cell id {cid!r}")
        seen.add(cid)
        cell.id = cid
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    leftover = [p for p in PLACEHOLDERS if any(p in grading.source_text(c) for c in nb.cells)]
    assert not leftover, leftover
    return nb


def lesson_notebook(name: str, title: str | None = None) -> Any:
    """A minimal lesson: title, setup, one section to fill in (runs headless in quick mode as it is)."""
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    title = title or default_title(name)
    cells = [
        new_markdown_cell(
            f"# Lesson {int(name[:2])} — {title}\n\n"
            "What this lesson explains, in two or three sentences, and what the learner will implement in\n"
            f"`exercises/{name}`. Lessons are not graded: show the math, use tinyqnn's own implementations, plot.\n"),
        new_code_cell(
            "import matplotlib.pyplot as plt\nimport numpy as np\n\nimport tinyqnn\n"
            "from tinyqnn.course import quick_mode\n\ntinyqnn.manual_seed(0)\n"),
        new_markdown_cell("## 1. First idea\n\nExplain one concept, then show it in code and in a plot.\n"),
        new_code_cell(
            "# Long runs shorten themselves in CI (TINYQNN_QUICK=1): the lesson must run in < ~60 s there.\n"
            "steps = 10 if quick_mode() else 1000\n"
            "x = np.linspace(-6, 6, steps)\n"
            "plt.plot(x, tinyqnn.sigmoid(tinyqnn.tensor(x)).numpy())\n"
            "plt.title(\"replace me\")\n"
            "plt.show()\n"),
    ]
    for i, cell in enumerate(cells):
        cell.id = f"cell-{i:02d}"
    nb = new_notebook(cells=cells, metadata={"kernelspec": dict(grading.KERNELSPEC),
                                             "language_info": {"name": "python"}})
    nb.nbformat_minor = 5
    return nb


def planned_files(root: Path, name: str) -> dict[str, Path]:
    return {
        "solution": root / grading.SOLUTIONS_DIR / name / f"{name}.ipynb",
        "wrong_answers": root / "tests" / "course" / "wrong_answers" / f"{name}.py",
        "lesson": root / grading.LESSONS_DIR / f"{name}.ipynb",
    }


def create_assignment(name: str, root: str | Path | None = None, title: str | None = None) -> dict[str, Path]:
    """Create the three files of a new unit under ``root``; returns them. Writes nothing if any already exists."""
    root = Path(root or grading.repo_root()).resolve()
    if not (root / grading.CONFIG_FILE).is_file():
        raise NewAssignmentError(f"{root} is not the course directory (no {grading.CONFIG_FILE}); use --root")
    validate_name(name, root)
    files = planned_files(root, name)
    clash = [p for p in files.values() if p.exists()]
    for folder in (root / grading.SOLUTIONS_DIR / name, root / grading.EXERCISES_DIR / name):
        if folder.exists() and not any(folder in p.parents for p in clash):
            clash.append(folder)
    if clash:
        shown = ", ".join(str(p.relative_to(root)) for p in clash)
        raise NewAssignmentError(f"refusing to overwrite {shown}; unit {name} already exists (nothing written)")

    # Build everything first so a failure leaves no half-created unit behind.
    source = grading.canonical_json(assignment_notebook(name, title))
    lesson = grading.canonical_json(lesson_notebook(name, title))
    wrong = WRONG_ANSWERS_STARTER.format(name=name)
    json.loads(source), json.loads(lesson), compile(wrong, str(files["wrong_answers"]), "exec")
    for key, text in (("solution", source), ("wrong_answers", wrong), ("lesson", lesson)):
        files[key].parent.mkdir(parents=True, exist_ok=True)
        files[key].write_text(text, encoding="utf-8")
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyqnn new-assignment",
        description="Create a new course unit from the template: solutions/NN_name/NN_name.ipynb, "
                    "tests/course/wrong_answers/NN_name.py and lessons/NN_name.ipynb (never overwrites).")
    parser.add_argument("name", help="unit name NN_snake_case, e.g. 11_my_unit")
    parser.add_argument("--title", default=None, help="human title for the notebooks (default: from the name)")
    parser.add_argument("--root", type=Path, default=None, help="course directory (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        files = create_assignment(args.name, args.root, args.title)
    except NewAssignmentError as err:
        print(f"new-assignment: {err}", file=sys.stderr)
        return 2
    root = Path(args.root or grading.repo_root()).resolve()
    for path in files.values():
        print(f"created {path.relative_to(root)}")
    print(f"next (INSTRUCTORS.md, section 5): write >= 6 tasks (see the author notes in the notebook), at least\n"
          f"one wrong answer and one right answer in another style per task, then release BEFORE checking:\n"
          f"  python -m tinyqnn release {args.name}\n"
          f"  TINYQNN_COURSE_ONLY={args.name} python -m pytest tests/course")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
