"""Shared machinery for the course: nbgrader metadata, marker parsing, scoring, temporary course directories.

Used by ``release`` (regenerate ``exercises/``), ``check`` (the learner's self-check) and the CI checks in
``tests/course``. Vocabulary (nbgrader's): a *solution cell* holds the learner's answer between
``### BEGIN SOLUTION`` / ``### END SOLUTION``; a *grade cell* (``test_<task>``) holds the tests and earns its
points iff it runs without error; ``### BEGIN HIDDEN TESTS`` blocks are stripped from the release and
restored at autograde.

nbgrader is never imported at module level (learners running ``check`` need only nbformat/nbclient);
it runs as a subprocess, ``python -m nbgrader ...``, exactly as an instructor would run it.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from ..utils import child_env

SOLUTIONS_DIR = "solutions"
EXERCISES_DIR = "exercises"
LESSONS_DIR = "lessons"
CONFIG_FILE = "nbgrader_config.py"
# Must match c.Execute.timeout in nbgrader_config.py (a lint test compares them).
EXECUTE_TIMEOUT = 120
# Same list as c.CourseDirectory.ignore in nbgrader_config.py: never copied into a release.
IGNORE_PATTERNS = (".ipynb_checkpoints", "__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".hypothesis",
                   ".DS_Store", "feedback")

BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
GRADE_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
ASSIGNMENT_RE = re.compile(r"^\d\d_[a-z0-9_]+$")
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


# ----------------------------------------------------------------------------------------------- paths

#: Arguments of every kernel we start (self-check) or nbgrader starts (nbgrader_config.py): history in memory,
#: and only errors from the kernel's own log, so learners are not shown ipykernel's warning that a local
#: kernel talks over TCP on the loopback interface without encryption.
KERNEL_ARGUMENTS = ("--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR")


def repo_root() -> Path:
    """The course directory: the checkout holding ``nbgrader_config.py`` (tinyqnn is installed editable)."""
    return Path(__file__).resolve().parents[2]


def assignments(root: str | Path | None = None) -> list[str]:
    """Sorted names of ``solutions/NN_name/`` folders that contain a notebook."""
    src = Path(root or repo_root()) / SOLUTIONS_DIR
    if not src.is_dir():
        return []
    return sorted(d.name for d in src.iterdir() if d.is_dir() and not is_ignored(d.name) and any(d.glob("*.ipynb")))


def is_ignored(name: str) -> bool:
    return any(fnmatch(name, pat) for pat in IGNORE_PATTERNS)


def source_files(folder: Path) -> list[Path]:
    """Files of an assignment folder that nbgrader would copy (ignore patterns applied), sorted."""
    out = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(is_ignored(part) for part in rel.parts):
            out.append(path)
    return out


# -------------------------------------------------------------------------------------------- notebooks

def read_notebook(path: str | Path) -> Any:
    """Read a notebook as an ``nbformat.NotebookNode`` (v4)."""
    import nbformat

    return nbformat.read(str(path), as_version=4)


def canonical_json(nb: Any) -> str:
    """The one byte form we commit notebooks in: nbformat's own layout (indent 1, sorted keys, UTF-8, final newline)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_notebook(nb: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(canonical_json(nb), encoding="utf-8")


def source_text(cell: Any) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def nbgrader_meta(cell: Any) -> dict:
    """The cell's ``metadata.nbgrader`` dict ({} for a plain cell)."""
    return dict(cell.get("metadata", {}).get("nbgrader", {}) or {})


def grade_id(cell: Any) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_grade(cell: Any) -> bool:
    return bool(nbgrader_meta(cell).get("grade"))


def is_solution(cell: Any) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_locked(cell: Any) -> bool:
    return bool(nbgrader_meta(cell).get("locked"))


def is_manual(cell: Any) -> bool:
    """A manually graded answer (grade AND solution cell, e.g. a written markdown answer): autograde leaves it
    unscored (0 until a person grades it in formgrader)."""
    return is_grade(cell) and is_solution(cell)


def _points(cell: Any) -> float:
    return float(nbgrader_meta(cell).get("points", 0))


def grade_cells(nb: Any) -> dict[str, float]:
    """grade_id -> points of every grade cell (manually graded answers included), in notebook order."""
    return {grade_id(c): _points(c) for c in nb.cells if is_grade(c)}


def auto_grade_cells(nb: Any) -> dict[str, float]:
    """grade_id -> points of every autograded test cell, in notebook order."""
    return {grade_id(c): _points(c) for c in nb.cells if is_grade(c) and not is_manual(c)}


def manual_grade_cells(nb: Any) -> dict[str, float]:
    """grade_id -> points of every manually graded answer cell, in notebook order."""
    return {grade_id(c): _points(c) for c in nb.cells if is_manual(c)}


def solution_cells(nb: Any) -> dict[str, Any]:
    """grade_id -> cell of every autograded-answer cell (solution, not grade), in notebook order."""
    return {grade_id(c): c for c in nb.cells if is_solution(c) and not is_grade(c)}


def find_cell(nb: Any, gid: str) -> Any:
    for cell in nb.cells:
        if grade_id(cell) == gid:
            return cell
    raise KeyError(f"no cell with grade_id {gid!r} (have: {[grade_id(c) for c in nb.cells if grade_id(c)]})")


def task_of(test_id: str) -> str:
    """``test_numeric_derivative`` -> ``numeric_derivative`` (course naming convention)."""
    return test_id[len("test_"):] if test_id.startswith("test_") else test_id


# ------------------------------------------------------------------------------------------------ markers

def marker_blocks(source: str, begin: str, end: str) -> list[tuple[int, int]]:
    """(begin_line, end_line) index pairs of marker blocks; raises ValueError on unbalanced or nested markers."""
    blocks, start = [], None
    for i, line in enumerate(source.splitlines()):
        text = line.strip()
        if text == begin:
            if start is not None:
                raise ValueError(f"nested {begin!r} at line {i + 1}")
            start = i
        elif text == end:
            if start is None:
                raise ValueError(f"{end!r} without {begin!r} at line {i + 1}")
            blocks.append((start, i))
            start = None
    if start is not None:
        raise ValueError(f"{begin!r} at line {start + 1} is never closed by {end!r}")
    return blocks


def split_blocks(source: str, begin: str, end: str) -> tuple[list[str], list[str]]:
    """(lines inside marker blocks, lines outside them), markers excluded."""
    lines = source.splitlines()
    inside = set()
    for b, e in marker_blocks(source, begin, end):
        inside.update(range(b, e + 1))
    ins = [ln for i, ln in enumerate(lines) if i in inside and ln.strip() not in (begin, end)]
    out = [ln for i, ln in enumerate(lines) if i not in inside]
    return ins, out


def has_marker(source: str, *markers: str) -> bool:
    return any(line.strip() in markers for line in source.splitlines())


# ------------------------------------------------------------------------------------------------ scoring

@dataclass
class TaskScore:
    """Points of one grade cell, and why they were lost."""

    grade_id: str
    score: float | None
    max_score: float
    message: str = ""  # first line of the error (e.g. the failing assertion), "" when full marks


def _partial_grade(output: Any, max_points: float) -> float:
    # nbgrader.utils.get_partial_grade: a single numeric text/plain result in [0, max] is partial credit.
    text = output.get("data", {}).get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    try:
        value = float(text)
    except ValueError:
        return max_points
    if value > max_points:
        return max_points
    if value < 0:
        raise ValueError(f"partial credit cannot be negative: {value}")
    return value


def determine_grade(cell: Any) -> float | None:
    """Score of an executed grade cell, exactly as ``nbgrader.utils.determine_grade`` (0.9) computes it.

    An ``error`` output or ANY ``stderr`` stream output gives 0 (so a warning printed in a test cell costs
    the task); a numeric ``execute_result`` is partial credit; otherwise full points.
    """
    max_points = float(nbgrader_meta(cell)["points"])
    if is_solution(cell) or cell.get("cell_type") != "code":
        return None  # a manually graded answer: a person scores it (formgrader)
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "error" or (kind == "stream" and output.get("name") == "stderr"):
            return 0.0
        if kind == "execute_result":
            return _partial_grade(output, max_points)
    return max_points


# What nbgrader's Execute preprocessor records when a cell runs past the timeout (check and the sandbox record it too).
ERROR_ON_TIMEOUT = {
    "ename": "CellTimeoutError",
    "evalue": "",
    "traceback": ["CellTimeoutError: No reply from kernel before timeout"],
}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def failure_message(cell: Any) -> str:
    """A one-paragraph reason for a lost grade cell: the exception line, or the stderr text."""
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "error":
            name, value = output.get("ename", "Error"), output.get("evalue", "")
            if name in ("KeyboardInterrupt", ERROR_ON_TIMEOUT["ename"]):
                return f"{name}: the cell ran past the per-cell time limit and was interrupted (endless loop?)"
            return f"{name}: {value}".strip().rstrip(":")
        if kind == "stream" and output.get("name") == "stderr":
            text = "".join(output.get("text", ""))
            return "printed to stderr (nbgrader gives 0 for any stderr output): " + text.strip()[:300]
        if kind == "execute_result":
            return "the cell's value was taken as partial credit"
    return ""


_TRACEBACK_LINE = re.compile(r"line (\d+)")
_NOT_DEFINED = re.compile(r"name '(\w+)' is not defined")
_KERNEL_FILE = re.compile(r"\(\d+\.py, line (\d+)\)")  # ipykernel's name for a cell in a SyntaxError


def broken_solution_cells(nb: Any) -> dict[str, tuple[str, str]]:
    """grade_id -> (error text with its line, cell source) of every solution cell that raised when it ran.

    A syntax error in a solution cell leaves its function undefined, so the test cell that follows fails
    with an unrelated-looking ``NameError``; the learner needs the solution cell's own error instead.
    """
    broken = {}
    for cell in nb.cells:
        if not is_solution(cell) or cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                evalue = _KERNEL_FILE.sub(r"(line \1 of the cell)", output.get("evalue", ""))
                text = f"{output.get('ename', 'Error')}: {evalue}".strip().rstrip(":")
                lines = _TRACEBACK_LINE.findall(_ANSI.sub("", "\n".join(output.get("traceback", []))))
                if lines and "line " not in text:
                    text += f" (line {lines[-1]} of the cell)"
                broken[grade_id(cell)] = (_ANSI.sub("", text), source_text(cell))
                break
    return broken


def _blame_solution_cell(test_gid: str, message: str, broken: dict[str, tuple[str, str]]) -> str:
    """``message`` prefixed with the error of the solution cell it comes from, when one can be named."""
    culprit = test_gid[len("test_"):] if test_gid.startswith("test_") else None
    if culprit not in broken:
        missing = _NOT_DEFINED.search(message)
        culprit = next((gid for gid, (_, src) in broken.items()
                        if missing and re.search(rf"^\s*(def|class)\s+{missing.group(1)}\b|^{missing.group(1)}\s*=",
                                                 src, re.M)), None)
    if culprit is None:
        return message
    return f"your cell {culprit!r} failed when it ran: {broken[culprit][0]}; fix it first (this test then said: {message})"


def score_notebook(nb: Any) -> dict[str, TaskScore]:
    """grade_id -> TaskScore for every grade cell of an executed notebook.

    The message of a lost task names the learner's own broken solution cell when there is one.
    """
    scores = {}
    broken = broken_solution_cells(nb)
    for cell in nb.cells:
        if is_grade(cell):
            gid = grade_id(cell)
            score = determine_grade(cell)
            max_score = float(nbgrader_meta(cell)["points"])
            if is_manual(cell):
                msg = "graded by hand by your instructor (not in the total)"
            else:
                msg = "" if score == max_score else _blame_solution_cell(gid, _ANSI.sub("", failure_message(cell)), broken)
            scores[gid] = TaskScore(gid, score, max_score, msg)
    return scores


# -------------------------------------------------------------------------------------------- submissions

def solved_copy(release_nb: Any, source_nb: Any) -> Any:
    """The release notebook with every solution cell filled in from the source: a perfect learner's submission."""
    nb = copy.deepcopy(release_nb)
    answers = solution_cells(source_nb)
    for cell in nb.cells:
        gid = grade_id(cell)
        if is_solution(cell) and gid in answers:
            cell.source = source_text(answers[gid])
    return nb


def replace_cell(nb: Any, gid: str, source: str) -> Any:
    nb = copy.deepcopy(nb)
    find_cell(nb, gid).source = source
    return nb


def delete_cell(nb: Any, gid: str) -> Any:
    nb = copy.deepcopy(nb)
    nb.cells = [c for c in nb.cells if grade_id(c) != gid]
    return nb


def _load_answer_list(path: str | Path, variable: str, keys: set[str], optional: bool) -> list[dict]:
    import importlib.util

    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"_answers_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    answers = getattr(module, variable, [] if optional else None)
    if not isinstance(answers, list):
        raise TypeError(f"{path}: {variable} must be a list of dicts, got {type(answers).__name__}")
    for i, answer in enumerate(answers):
        missing = keys - set(answer)
        if missing:
            raise ValueError(f"{path}: {variable}[{i}] lacks {sorted(missing)}")
    return answers


def load_wrong_answers(path: str | Path) -> list[dict]:
    """``WRONG_ANSWERS`` of ``tests/course/wrong_answers/NN_name.py``: dicts with ``cell`` (a solution
    cell's grade_id), ``fails`` (the grade cells that must lose all their points), ``why`` and ``source``."""
    return _load_answer_list(path, "WRONG_ANSWERS", {"cell", "fails", "why", "source"}, optional=False)


def load_right_answers(path: str | Path) -> list[dict]:
    """``RIGHT_ANSWERS`` of the same file: correct answers written in another style than the reference
    (einsum for a matmul, a loop the text allows, keyword arguments), dicts with ``cell``, ``why``, ``source``.
    Each must get full marks: the tests check the specified behaviour, not the reference's choices."""
    return _load_answer_list(path, "RIGHT_ANSWERS", {"cell", "why", "source"}, optional=True)


# ---------------------------------------------------------------------------------------- nbgrader runs

def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = child_env()  # the venv's bin/ first: nbgrader runs `alembic` from PATH
    # A quick-mode flag from the caller must not leak into nbgrader; nbgrader sets NBGRADER_EXECUTION itself.
    env.pop("NBGRADER_EXECUTION", None)
    env.setdefault("PYTHONHASHSEED", "0")
    env.setdefault("MPLBACKEND", "Agg")
    if extra:
        env.update(extra)
    return env


def run_nbgrader(args: list[str], cwd: str | Path, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m nbgrader *args`` in ``cwd`` (which holds the nbgrader_config.py to use)."""
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=str(cwd), env=_clean_env(),
                          capture_output=True, text=True, timeout=timeout)


class NbgraderError(RuntimeError):
    pass


@dataclass
class AutogradeRun:
    returncode: int
    log: str
    seconds: float


class TempCourse:
    """A throwaway nbgrader course directory (own gradebook.db), configured like the repository's.

    ``TempCourse(path).add_source(assignment)`` copies ``solutions/<assignment>``; ``generate`` builds the
    release; ``submit`` stores a student's notebooks; ``autograde`` grades every submitted student in one
    nbgrader call; ``scores`` reads the gradebook.
    """

    def __init__(self, path: str | Path, repo: str | Path | None = None, timeout: int | None = None):
        self.path = Path(path)
        self.repo = Path(repo or repo_root())
        self.path.mkdir(parents=True, exist_ok=True)
        config = (self.repo / CONFIG_FILE).read_text(encoding="utf-8")
        if timeout is not None:
            config += f"\nc.Execute.timeout = {int(timeout)}\n"
        (self.path / CONFIG_FILE).write_text(config, encoding="utf-8")

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.path / 'gradebook.db'}"

    def add_source(self, assignment: str) -> Path:
        src = self.repo / SOLUTIONS_DIR / assignment
        if not src.is_dir():
            raise FileNotFoundError(f"no source folder {src}")
        dst = self.path / SOLUTIONS_DIR / assignment
        if dst.exists():
            shutil.rmtree(dst)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*IGNORE_PATTERNS))
        return dst

    def _run(self, args: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
        return run_nbgrader(args, self.path, timeout)

    def generate(self, assignment: str) -> Path:
        """``nbgrader generate_assignment``; returns the release folder. Raises NbgraderError with the log."""
        proc = self._run(["generate_assignment", assignment, "--force"], timeout=600)
        out = self.path / EXERCISES_DIR / assignment
        if proc.returncode != 0 or not out.is_dir():
            raise NbgraderError(f"generate_assignment {assignment} failed (exit {proc.returncode}):\n"
                                f"{proc.stdout}\n{proc.stderr}")
        return out

    def release_notebook(self, assignment: str, name: str | None = None) -> Any:
        return read_notebook(self.path / EXERCISES_DIR / assignment / f"{name or assignment}.ipynb")

    def submit(self, student: str, assignment: str, notebooks: Mapping[str, Any]) -> None:
        """Store a submission: notebook name (without .ipynb) -> NotebookNode."""
        folder = self.path / "submitted" / student / assignment
        if folder.exists():
            shutil.rmtree(folder)
        for name, nb in notebooks.items():
            write_notebook(nb, folder / f"{name}.ipynb")

    def autograde(self, assignment: str, timeout: float | None = None) -> AutogradeRun:
        """Autograde every submitted student of ``assignment`` (one nbgrader process, students in series)."""
        import time

        start = time.perf_counter()
        proc = self._run(["autograde", assignment, "--force", "--create"], timeout=timeout)
        return AutogradeRun(proc.returncode, proc.stdout + proc.stderr, time.perf_counter() - start)

    def autograded_notebook(self, student: str, assignment: str, name: str | None = None) -> Path:
        return self.path / "autograded" / student / assignment / f"{name or assignment}.ipynb"

    def scores(self, assignment: str) -> dict[str, dict[str, dict[str, TaskScore]]]:
        """student -> notebook -> grade_id -> TaskScore, read from the gradebook.

        ``score`` is nbgrader's final score (manual override, else auto score; 0 when neither exists, e.g. for a
        deleted grade cell). ``message`` holds "auto_score=None" when the autograder produced no score.
        """
        from nbgrader.api import Gradebook, MissingEntry

        result: dict[str, dict[str, dict[str, TaskScore]]] = {}
        with Gradebook(self.db_url) as gb:
            assign = gb.find_assignment(assignment)
            for student in gb.students:
                per_nb: dict[str, dict[str, TaskScore]] = {}
                for notebook in assign.notebooks:
                    try:
                        sub = gb.find_submission_notebook(notebook.name, assignment, student.id)
                    except MissingEntry:
                        continue
                    per_nb[notebook.name] = {
                        g.name: TaskScore(g.name, float(g.score), float(g.max_score),
                                          "" if g.auto_score is not None else "auto_score=None")
                        for g in sub.grades
                    }
                if per_nb:
                    result[student.id] = per_nb
        return result


def format_scores(scores: Iterable[TaskScore]) -> str:
    lines = []
    for s in scores:
        shown = "-" if s.score is None else f"{s.score:g}"
        lines.append(f"  {s.grade_id:<36} {shown:>4} / {s.max_score:g}" + (f"   {s.message}" if s.message else ""))
    return "\n".join(lines)
