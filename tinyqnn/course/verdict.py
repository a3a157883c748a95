"""Verdicts a submission cannot forge: hidden tests run in the grader process, the learner's code in the sandbox.

A notebook opts in with ``metadata.tinyqnn.verdicts = "grader"`` (the course's standard; ``new-assignment``'s
template has it). Then, while grading:

- the learner's cells (solution cells, anything not locked) run in the sandboxed kernel only;
- the instructor's locked setup cells (locked code cells before the first solution cell) run in the kernel
  (so the learner's code has its imports) and, again, in the grader;
- test cells run in the grader process, with its own untouched NumPy and tinyqnn, in one namespace that holds
  the setup cells' names and what earlier test cells defined (nothing from the kernel);
- other locked cells (a training demo, a plot) run in the kernel only: they earn no points.
  There, each function or class the source notebook's solution cells (and later locked cells) define is a
  ``remote.RemoteFunction``: calling it runs the learner's code in the sandbox on the test's inputs and
  brings the result back as data, or as a ``remote.RemoteObject`` proxy for an object that stays there. Expected values and comparisons never leave the grader, so patching
  ``np.allclose``, builtins or tinyqnn inside the kernel changes nothing but the learner's own answers.

A test cell earns its points as under nbgrader: no exception and nothing on stderr (warnings included).
A notebook without the opt-in runs entirely in the sandboxed kernel, as nbgrader would run it.

``metadata.tinyqnn.unavailable`` lists tinyqnn functions (``"tinyqnn.fixedpoint.requant:quantize_multiplier"``)
that the tasks ask the learner to write: in the sandbox (with namespaces) their source files are replaced by
copies where those functions raise, and their bytecode caches are hidden, so a task cannot be passed by
calling tinyqnn's own version. Without namespaces this is not enforced (``Protections`` says so).
``metadata.tinyqnn.internal_only`` lists the same for functions tinyqnn itself needs while the learner's code
runs (unit 8's ``convert_lenet`` calls ``quantize_multiplier``): they raise only when called from code outside
the tinyqnn package (the caller's code object must be one compiled from a tinyqnn file: ``callers``), so the
learner's own code cannot call them, even code compiled under a tinyqnn file name, but tinyqnn's modules still do.
``metadata.tinyqnn.sandbox_names`` lists setup-cell names that tests use as the sandbox's (unit 6's ``Tensor``:
the tensors a test builds live where the learner's ``Function`` runs; the test reads their gradients as data).
``metadata.tinyqnn.sealed`` lists learner functions and classes whose test cells talk to a second sandbox (with
namespaces), where the ``internal_only`` functions are unavailable too, their bodies gone from disk, and so are
the tinyqnn functions and classes listed in ``sealed_unavailable`` (ones the unit's later cells need, such as unit
7's STE classes, which ``QuantAct`` uses): there no route reaches tinyqnn's own version, neither a layer or
``Function`` class that calls it (unit 4's ``nn.Conv2d``), nor the autograd engine, a thread or another process.
Every learner name and sandbox name of a test cell that names a sealed one is answered there (so the objects such a
cell makes live where they are used). That sandbox runs the same kernel cells as the first, up to the last test
cell that names a sealed function (a cell that ran past its limit in the first is not run again).
"""
from __future__ import annotations

import ast
import contextlib
import copy
import io
import re
import time
import traceback
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import grading, remote
from .sandbox import KernelDied, Limits, NotebookTimeout, Sandbox, protections, timeout_output

GRADER = "grader"


def sealed_names(nb: Any) -> list[str]:
    """``metadata.tinyqnn.sealed``: learner functions whose tests' calls run where no ``internal_only`` function
    works (see the module's docstring); each must be a name the tests may call (``learner_names``)."""
    sealed = list(notebook_settings(nb).get("sealed", []))
    unknown = sorted(set(sealed) - set(learner_names(nb)))
    if unknown:
        raise ValueError(f"metadata.tinyqnn.sealed names {', '.join(unknown)}: no solution or locked cell defines "
                         "them (def or class at the top level)")
    return sealed


def _answer_from(box: Any, namespace: dict, names: tuple[str, ...]) -> None:
    """Point the learner's names (those not rebound by a test to a stand-in of its own) at ``box``."""
    for name in names:
        if isinstance(namespace.get(name), remote.RemoteFunction):
            namespace[name] = remote.RemoteFunction(box, name, namespace, names)


def _hit_cell_limit(cell: Any) -> bool:
    return any(o.get("output_type") == "error" and o.get("ename") == grading.ERROR_ON_TIMEOUT["ename"]
               for o in cell.outputs)


def notebook_settings(nb: Any) -> dict:
    return dict(nb.get("metadata", {}).get("tinyqnn", {}) or {})


def grader_mode(nb: Any) -> bool:
    return notebook_settings(nb).get("verdicts") == GRADER


def learner_names(nb: Any) -> list[str]:
    """Top-level functions and classes (``def name``, ``class Name``) that the solution cells and the locked
    cells run in the kernel (a class the notebook gives, such as unit 1's ``Value``) define, in notebook order:
    what tests may call. The setup cells' names are the grader's own, except ``metadata.tinyqnn.sandbox_names``:
    names a setup cell imports or defines that tests use as the sandbox's (unit 6's ``Tensor``: a tensor a test
    builds then lives where the learner's ``Function`` runs, so the test can read its gradient afterwards)."""
    names = list(notebook_settings(nb).get("sandbox_names", []))
    for cell, role in zip(nb.cells, cell_roles(nb)):
        if role == "kernel":
            text = grading.source_text(cell)
            names += re.findall(r"^(?:def|class)\s+([A-Za-z_]\w*)\s*[(:]", text, re.M)
    return list(dict.fromkeys(names))


def cell_roles(nb: Any) -> list[str]:
    """Per cell, in grader mode: "markdown"; "grader" for test cells; "both" for the locked setup cells before
    the first solution cell; "kernel" for everything else (the learner's cells, and later locked cells such as
    a training demo or a plot: they earn no points and run at the learner's speed in the kernel), except the
    locked cells listed in ``metadata.tinyqnn.grader_cells``: "grader" (a demo that uses only tinyqnn, which
    would meet the unavailable functions in the kernel)."""
    roles, seen_solution = [], False
    grader_cells = set(notebook_settings(nb).get("grader_cells", []))
    for cell in nb.cells:
        if cell.cell_type != "code":
            roles.append("markdown")
            continue
        if grading.is_solution(cell):
            seen_solution = True
        if grading.is_grade(cell) and not grading.is_solution(cell):
            roles.append("grader")
        elif grading.is_locked(cell) and not grading.is_solution(cell) and not seen_solution:
            roles.append("both")
        elif grading.is_locked(cell) and grading.grade_id(cell) in grader_cells:
            roles.append("grader")
        else:
            roles.append("kernel")
    return roles


# ---------------------------------------------------------------------------------- grader-side cells

def _error_output(err: BaseException, where: str) -> dict:
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename == where]
    lines = [f"{where}, line {f.lineno}: {f.line}" for f in frames]
    return {"output_type": "error", "ename": type(err).__name__, "evalue": str(err),
            "traceback": [*lines, f"{type(err).__name__}: {err}"]}


@contextlib.contextmanager
def _quick_mode() -> Any:
    """Quick mode for grader-side cells too, as the sandbox's kernel has it (a demo cell listed in
    ``grader_cells`` shortens itself there as in the kernel)."""
    import os

    saved = os.environ.get("TINYQNN_QUICK")
    os.environ["TINYQNN_QUICK"] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TINYQNN_QUICK", None)
        else:
            os.environ["TINYQNN_QUICK"] = saved


def run_in_grader(source: str, namespace: dict, where: str) -> list[dict]:
    """Execute ``source`` in ``namespace`` here; nbformat outputs: stdout, stderr (warnings too), error."""
    out, err = io.StringIO(), io.StringIO()
    outputs: list[dict] = []
    with _quick_mode(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                exec(compile(source, where, "exec"), namespace)  # noqa: S102  (the instructor's own test code)
            except (NotebookTimeout, KernelDied):
                raise
            except BaseException as error:  # SystemExit/KeyboardInterrupt from a test are failures too
                outputs.append(_error_output(error, where))
    for w in caught:
        err.write(f"{w.category.__name__}: {w.message}\n")
    streams = [{"output_type": "stream", "name": name, "text": text.getvalue()}
               for name, text in (("stdout", out), ("stderr", err)) if text.getvalue()]
    return streams + outputs


# ------------------------------------------------------------------------------------------ redaction

def redacted_source(path: Path, names: list[str], internal: list[str] = (),
                    allowed: Mapping[str, frozenset] | None = None) -> str:
    """The module's source with each named top-level function's body replaced by a ``raise`` (a class's body by
    an ``__init__`` and an ``apply`` that raise); the functions in ``internal`` keep their body behind a guard that
    raises unless the caller's code is tinyqnn's own and names the function: its ``callers.key`` must be in
    ``allowed[name]`` (``callers.callers_of``; written into the guard as a literal; None: an empty set, for a first
    draft whose code objects ``callers_of`` then reads: the literal's size changes no other code object)."""
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    found = set()
    for node in sorted((n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                        and n.name in (*names, *internal)), key=lambda n: n.lineno, reverse=True):
        found.add(node.name)
        first = node.body[0]  # a decorated first member starts at its first decorator, not at its def
        body_start = min([first.lineno, *(d.lineno for d in getattr(first, "decorator_list", []))]) - 1
        if isinstance(node.body[0], ast.Expr) and isinstance(getattr(node.body[0], "value", None), ast.Constant):
            body_start = node.body[0].end_lineno  # keep the docstring
        indent = " " * (node.body[0].col_offset)
        stub = (f"{indent}raise NotImplementedError(\"tinyqnn's own {node.name} is not available while grading: "
                f"the task asks you to write it\")\n")
        if isinstance(node, ast.ClassDef):  # a class: it cannot be made (nor subclassed into a working one), and
            # a Function's apply (which makes no instance) says so too
            stub = (f"{indent}def __init__(self, *args, **kwargs):\n    {stub}"
                    f"{indent}@classmethod\n{indent}def apply(cls, *args, **kwargs):\n    {stub}")
            lines[body_start:node.end_lineno] = [stub]
        elif node.name in internal:
            # the caller's code object, read from a traceback (sys._getframe could be replaced), must be code of
            # the package that names this function (``callers``). The test reads only attributes of a code object
            # and a constant set: nothing a submission could replace in memory. One line, whatever its length,
            # so that the literal moves no other code of the module.
            keys = sorted((allowed or {}).get(node.name, ())) + [("", 0, b"", ())]  # never an empty set
            caller = "_tinyqnn_caller"
            guard = [f"{indent}try:\n", f"{indent}    1 / 0\n",
                     f"{indent}except ZeroDivisionError as _tinyqnn_err:\n",
                     f"{indent}    {caller} = _tinyqnn_err.__traceback__.tb_frame.f_back.f_code\n",
                     f"{indent}if ({caller}.co_filename, {caller}.co_firstlineno, {caller}.co_code, {caller}.co_names)"
                     f" not in {{{', '.join(map(repr, keys))}}}:\n",
                     f"{indent}    {stub.lstrip()}"]
            lines[body_start:body_start] = guard
        else:
            lines[body_start:node.end_lineno] = [stub]
    missing = sorted((set(names) | set(internal)) - found)
    if missing:
        raise ValueError(f"{path}: no top-level function or class {', '.join(missing)} to make unavailable")
    return "".join(lines)


def redactions(nb: Any, sealed: bool = False) -> dict[Path, str]:
    """source file -> redacted text, for ``metadata.tinyqnn.unavailable`` and ``internal_only`` of ``nb``
    (``sealed``: for the sandbox that answers the test cells that call a ``sealed`` function, where the
    ``internal_only`` functions and those listed in ``sealed_unavailable`` are unavailable too)."""
    settings = notebook_settings(nb)
    unavailable, internal, more = (tuple(settings.get(k, [])) for k in ("unavailable", "internal_only",
                                                                         "sealed_unavailable"))
    request = (unavailable + internal + more, ()) if sealed else (unavailable, internal)
    if request not in _REDACTIONS:  # the same for every submission of an assignment: once per process
        _REDACTIONS[request] = _redactions(*request)
    return dict(_REDACTIONS[request])


_REDACTIONS: dict[tuple, dict[Path, str]] = {}


def _redactions(unavailable: tuple[str, ...], internal_only: tuple[str, ...]) -> dict[Path, str]:
    import importlib.util

    import tinyqnn

    from . import callers

    per_module: dict[str, tuple[list[str], list[str]]] = {}
    for key, slot, items in (("unavailable", 0, unavailable), ("internal_only", 1, internal_only)):
        for item in items:
            module, _, name = item.partition(":")
            if not module.startswith("tinyqnn.") or not name:
                raise ValueError(f"metadata.tinyqnn.{key} entry {item!r}: expected 'tinyqnn.module:function'")
            per_module.setdefault(module, ([], []))[slot].append(name)
    paths = {}
    for module in per_module:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.origin:
            raise ValueError(f"metadata.tinyqnn: no module {module}")
        paths[module] = Path(spec.origin)  # as the kernel imports it (the same finder): its code's file name
    # first draft: the guards with empty sets; the code that may call each guarded function is read from the
    # package as the kernel will see it; then the guards get their sets (which move no other code object)
    draft = {paths[m]: redacted_source(paths[m], *per_module[m]) for m in per_module}
    guarded = [name for _, internal in per_module.values() for name in internal]
    if not guarded:  # nothing guarded (the sealed sandbox's redactions): no caller sets to compute
        return draft
    package = Path(tinyqnn.__file__).parent
    allowed = callers.callers_of(guarded, package, draft)
    out = {paths[m]: redacted_source(paths[m], *per_module[m], allowed=allowed) for m in per_module}
    if callers.callers_of(guarded, package, out) != allowed:  # the literals moved code after all: fail closed
        raise RuntimeError("internal_only: the guards' caller sets changed the code they describe")
    return out


# ------------------------------------------------------------------------------------------- running

@dataclass
class GradedRun:
    """An executed notebook ready for ``grading.score_notebook``, and how the run ended."""

    nb: Any
    status: str                 # "ok", "timeout" (notebook limit) or "died" (the kernel died)
    reason: str = ""
    seconds: float = 0.0
    protections: str = ""
    grader_side: bool = False
    notes: list[str] = field(default_factory=list)


def run_graded(nb: Any, files: Mapping[str, bytes] | None = None, limits: Limits | None = None,
               course_root: str | Path | None = None, trusted: Any = None) -> GradedRun:
    """Execute a submission for grading, top to bottom, continuing past errors (as nbgrader).

    nb: the submission, its locked cells already restored from the source (the grader's job).
    trusted: the source notebook: the names tests may call and the unavailable tinyqnn functions come from
        it (default: ``nb``, for a learner's self-check).
    """
    import nbformat

    nb = copy.deepcopy(nb)
    trusted = trusted if trusted is not None else nb
    limits = limits or Limits()
    use_grader = grader_mode(trusted)
    roles = ["kernel" if c.cell_type == "code" else "markdown" for c in nb.cells]
    if use_grader:
        # Roles and the code run here come from the trusted notebook only: a submission's metadata and its
        # copy of a test cell are the learner's to edit, so a cell runs in the grader only as the source has it.
        trusted_cells = {grading.grade_id(c): (c, r) for c, r in zip(trusted.cells, cell_roles(trusted))
                         if grading.grade_id(c) and r in ("grader", "both")}
        for i, cell in enumerate(nb.cells):
            gid = grading.grade_id(cell)
            if cell.cell_type == "code" and gid in trusted_cells:
                source_cell, roles[i] = trusted_cells.pop(gid)
                cell.source = grading.source_text(source_cell)
    redact = redactions(trusted) if protections().namespaces else {}
    notes = []
    settings = notebook_settings(trusted)
    if (settings.get("unavailable") or settings.get("internal_only")) and not protections().namespaces:
        notes.append("tinyqnn's own versions of the graded functions are NOT hidden here (no user namespaces)")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    sealed = sealed_names(trusted) if use_grader else []
    sealed = sealed if protections().namespaces else []  # without namespaces no file can be hidden
    # the sealed sandbox runs the kernel cells before the last test cell that calls a sealed function
    sealed_cells = {i for i, (c, r) in enumerate(zip(nb.cells, roles))
                    if r == "grader" and any(re.search(rf"\b{n}\b", grading.source_text(c)) for n in sealed)}
    last_sealed = max(sealed_cells, default=-1)
    start = time.monotonic()
    status, reason = "ok", ""
    count = 0
    try:
        with contextlib.ExitStack() as stack:
            box = stack.enter_context(Sandbox(files or {}, limits, course_root, redact=redact))
            boxes = [box]
            namespace: dict[str, Any] = {"__name__": "__grader__"}
            if use_grader:
                remote.install(box)
                names = tuple(learner_names(trusted))
                for name in names:
                    namespace[name] = remote.RemoteFunction(box, name, namespace, names)
            if last_sealed >= 0:
                sealed_box = stack.enter_context(Sandbox(files or {}, limits, course_root,
                                                         redact=redactions(trusted, sealed=True)))
                boxes.append(sealed_box)
                remote.install(sealed_box)
                notes.append(f"sealed sandbox for {', '.join(sealed)}")
            for i, (cell, role) in enumerate(zip(nb.cells, roles)):
                if role == "markdown":
                    continue
                try:
                    if role in ("kernel", "both"):
                        unrun = copy.deepcopy(cell) if i < last_sealed else None
                        nb.cells[i] = cell = box.execute(cell)
                        if unrun is not None and not _hit_cell_limit(cell):
                            sealed_box.execute(unrun)  # its outputs are not the notebook's
                    if role in ("grader", "both"):
                        where = f"<cell {grading.grade_id(cell) or i}>"
                        if len(boxes) > 1:  # a test cell that names a sealed function talks to the sealed sandbox
                            _answer_from(boxes[1] if i in sealed_cells else box, namespace, names)
                        if use_grader:  # one cell limit for all the calls of a test cell, as in nbgrader
                            for b in boxes:
                                remote.channel(b).cell_deadline = time.monotonic() + limits.cell_seconds
                        try:
                            outputs = run_in_grader(grading.source_text(cell), namespace, where)
                        finally:
                            if use_grader:
                                for b in boxes:
                                    remote.channel(b).cell_deadline = None
                        if role == "grader":
                            count += 1
                            cell.outputs = [nbformat.from_dict(o) for o in outputs]
                            cell.execution_count = count
                        elif any(o["output_type"] == "error" for o in outputs):
                            raise RuntimeError(f"the setup cell {where} failed in the grader: {outputs}")
                        else:  # the setup cell rebound the sandbox names to the grader's own objects
                            for name in notebook_settings(trusted).get("sandbox_names", []):
                                namespace[name] = remote.RemoteFunction(box, name, namespace, names)
                except NotebookTimeout:
                    cell.outputs = [nbformat.from_dict(timeout_output(limits))]
                    status, reason = "timeout", timeout_output(limits)["evalue"]
                    # a test cell with no output would count as passed: the unrun ones lose their points
                    for later in nb.cells[i + 1:]:
                        if grading.is_grade(later) and later.cell_type == "code":
                            later.outputs = [nbformat.from_dict(timeout_output(limits))]
                    break
    except KernelDied as err:
        status, reason = "died", str(err)
    return GradedRun(nb, status, reason, time.monotonic() - start, protections().summary(), use_grader, notes)
