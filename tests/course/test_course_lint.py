"""Structural lint of every course notebook against INSTRUCTORS.md section 5 (fast: no kernel, no nbgrader run)."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tinyqnn.course import grading, quick_mode

from coursekit import ASSIGNMENTS, LESSONS, REPO, WRONG_DIR, source_notebooks, tasks

MARKERS = {
    "BEGIN SOLUTION": grading.BEGIN_SOLUTION, "END SOLUTION": grading.END_SOLUTION,
    "BEGIN HIDDEN TESTS": grading.BEGIN_HIDDEN, "END HIDDEN TESTS": grading.END_HIDDEN,
}
MAX_LESSON_BYTES = 1_500_000


def test_there_is_at_least_one_assignment():
    assert ASSIGNMENTS, f"no solutions/NN_name/NN_name.ipynb under {REPO}"


def test_nbgrader_config_matches_the_machinery():
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(REPO)).load_config()
    assert cfg.CourseDirectory.source_directory == grading.SOLUTIONS_DIR
    assert cfg.CourseDirectory.release_directory == grading.EXERCISES_DIR
    assert Path(cfg.CourseDirectory.root).resolve() == REPO, "root must follow the config file's folder"
    assert cfg.Execute.timeout == grading.EXECUTE_TIMEOUT, "grading.EXECUTE_TIMEOUT must equal c.Execute.timeout"
    assert tuple(cfg.CourseDirectory.ignore) == grading.IGNORE_PATTERNS
    assert tuple(cfg.Execute.extra_arguments) == grading.KERNEL_ARGUMENTS, "kernels must start like the self-check's"


def test_quick_mode(monkeypatch):
    for var in ("NBGRADER_EXECUTION", "TINYQNN_QUICK"):
        monkeypatch.delenv(var, raising=False)
    assert not quick_mode()
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert quick_mode()
    monkeypatch.delenv("NBGRADER_EXECUTION")
    monkeypatch.setenv("TINYQNN_QUICK", "1")
    assert quick_mode()
    monkeypatch.setenv("TINYQNN_QUICK", "0")
    assert not quick_mode()


def test_solution_folder_holds_only_its_notebook(assignment):
    assert grading.ASSIGNMENT_RE.match(assignment), f"assignment folder {assignment!r} is not NN_name"
    files = [p.relative_to(REPO / grading.SOLUTIONS_DIR / assignment).as_posix()
             for p in grading.source_files(REPO / grading.SOLUTIONS_DIR / assignment)]
    assert files == [f"{assignment}.ipynb"], (
        f"solutions/{assignment}/ must hold exactly {assignment}.ipynb (nbgrader ships every other file "
        f"to learners and copies it over their work); found {files}")


def _marker_problems(cell, where: str) -> list[str]:
    problems = []
    for n, line in enumerate(grading.source_text(cell).splitlines(), 1):
        for word, marker in MARKERS.items():
            if word in line:  # nbgrader matches the substring anywhere in a line
                if line.strip() != marker:
                    problems.append(f"{where} line {n}: {line.strip()!r} contains {word!r}; the line must be "
                                    f"exactly {marker!r} (nbgrader treats any line containing it as a marker)")
                elif "SOLUTION" in word and not grading.is_solution(cell):
                    problems.append(f"{where} line {n}: solution markers outside a solution cell")
                elif "HIDDEN" in word and not grading.is_grade(cell):
                    problems.append(f"{where} line {n}: hidden-test markers outside a grade cell")
    return problems


def test_solution_notebook_structure(assignment):
    for name, nb in source_notebooks(assignment).items():
        problems = []
        where = f"solutions/{assignment}/{name}.ipynb"
        if nb.nbformat != 4:
            problems.append(f"nbformat {nb.nbformat}, want 4")
        if dict(nb.metadata.get("kernelspec", {})) != grading.KERNELSPEC:
            problems.append(f"kernelspec {nb.metadata.get('kernelspec')} must be {grading.KERNELSPEC}")
        cells = nb.cells
        if len(cells) < 2 or cells[0].cell_type != "markdown" or not grading.is_locked(cells[0]):
            problems.append("cell 1 must be a locked markdown cell (title + learning objectives)")
        if len(cells) < 2 or cells[1].cell_type != "code" or not grading.is_locked(cells[1]):
            problems.append("cell 2 must be a locked code cell (imports/setup)")

        seen_ids, seen_cell_ids = set(), set()
        for i, cell in enumerate(cells):
            label = f"cell {i + 1}" + (f" ({grading.grade_id(cell)})" if grading.grade_id(cell) else "")
            cid = cell.get("id")
            if not cid or cid in seen_cell_ids:
                problems.append(f"{label}: missing or duplicate cell id {cid!r}")
            seen_cell_ids.add(cid)
            if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
                problems.append(f"{label}: outputs/execution count must be stripped in solutions/")
            problems += _marker_problems(cell, label)
            if "author-notes" in cell.get("metadata", {}).get("tags", []):
                problems.append(f"{label}: the template's AUTHOR NOTES cell must be deleted before the unit ships")
            meta = grading.nbgrader_meta(cell)
            if not meta:
                continue
            gid = meta.get("grade_id")
            if not isinstance(gid, str) or not grading.GRADE_ID_RE.match(gid):
                problems.append(f"{label}: grade_id {gid!r} must be letters/digits/_/- only")
            if gid in seen_ids:
                problems.append(f"{label}: duplicate grade_id {gid!r}")
            seen_ids.add(gid)
            if meta.get("schema_version") != 3 or meta.get("task") is not False:
                problems.append(f"{label}: nbgrader metadata needs schema_version 3 and task false: {meta}")
            for key in ("grade", "solution", "locked"):
                if not isinstance(meta.get(key), bool):
                    problems.append(f"{label}: nbgrader.{key} must be a bool, got {meta.get(key)!r}")
            if grading.is_manual(cell):  # a manually graded written answer (graded in formgrader)
                pts = meta.get("points")
                if not (isinstance(pts, int) and not isinstance(pts, bool) and pts > 0):
                    problems.append(f"{label}: manually graded answer needs integer points > 0, got {pts!r}")
                if cell.cell_type != "markdown" or meta.get("locked") or str(gid).startswith("test_"):
                    problems.append(f"{label}: a manually graded answer is an unlocked markdown cell not named test_*")
            elif meta.get("grade"):
                pts = meta.get("points")
                if not (isinstance(pts, int) and not isinstance(pts, bool) and pts > 0):
                    problems.append(f"{label}: grade cell needs integer points > 0, got {pts!r}")
                if not (meta.get("locked") and not meta.get("solution") and cell.cell_type == "code"):
                    problems.append(f"{label}: grade cells must be locked, non-solution code cells")
                if not str(gid).startswith("test_"):
                    problems.append(f"{label}: grade cell ids are named test_<task>")
            elif "points" in meta:
                problems.append(f"{label}: points only on grade cells")
            if meta.get("solution") and meta.get("locked"):
                problems.append(f"{label}: a solution cell cannot be locked")
        problems += _task_problems(nb)
        assert not problems, f"{where}:\n  " + "\n  ".join(problems)


def _task_problems(nb) -> list[str]:
    problems = []
    grades = grading.auto_grade_cells(nb)
    solutions = grading.solution_cells(nb)
    order = {grading.grade_id(c): i for i, c in enumerate(nb.cells) if grading.grade_id(c)}
    if len(grades) < 6:
        problems.append(f"only {len(grades)} graded tasks; a unit needs at least 6 (INSTRUCTORS.md, section 5): "
                        "add tasks to the source notebook")
    for gid in grades:
        if grading.task_of(gid) not in solutions:
            problems.append(f"grade cell {gid} has no solution cell {grading.task_of(gid)!r}")
    for gid, cell in solutions.items():
        test_id = f"test_{gid}"
        if test_id not in grades:
            problems.append(f"solution cell {gid} has no grade cell {test_id!r}")
        elif order[test_id] < order[gid]:
            problems.append(f"{test_id} comes before its solution cell {gid}")
        if cell.cell_type != "code":
            problems.append(f"solution cell {gid} must be a code cell")
            continue
        # a locked markdown explanation between the previous task and this solution cell
        previous = max([order[g] for g in grades if order[g] < order[gid]], default=-1)
        if not any(c.cell_type == "markdown" and grading.is_locked(c) for c in nb.cells[previous + 1:order[gid]]):
            problems.append(f"no locked markdown explanation before solution cell {gid}")
        problems += _solution_cell_problems(gid, grading.source_text(cell))
    for gid in grades:
        src = grading.source_text(grading.find_cell(nb, gid))
        try:
            blocks = grading.marker_blocks(src, grading.BEGIN_HIDDEN, grading.END_HIDDEN)
        except ValueError as err:
            problems.append(f"{gid}: {err}")
            continue
        hidden, visible = grading.split_blocks(src, grading.BEGIN_HIDDEN, grading.END_HIDDEN)
        if not blocks or not any(ln.strip() for ln in hidden):
            problems.append(f"{gid}: needs a non-empty ### BEGIN HIDDEN TESTS ... ### END HIDDEN TESTS block")
        if not any(re.match(r"\s*assert\b", ln) for ln in visible):
            problems.append(f"{gid}: needs visible asserts before the hidden tests")
        for variant, text in (("source", src), ("release", "\n".join(visible))):
            try:
                ast.parse(text)
            except SyntaxError as err:
                problems.append(f"{gid}: the {variant} version does not parse: {err}")
    return problems


def _solution_cell_problems(gid: str, src: str) -> list[str]:
    problems = []
    try:
        blocks = grading.marker_blocks(src, grading.BEGIN_SOLUTION, grading.END_SOLUTION)
    except ValueError as err:
        return [f"solution cell {gid}: {err}"]
    if not blocks:
        return [f"solution cell {gid}: no ### BEGIN SOLUTION / ### END SOLUTION (the whole cell, signature "
                "included, would be replaced)"]
    lines = src.splitlines()
    for b, e in blocks:
        for n in (b, e):
            if not lines[n][:1].isspace():
                problems.append(f"solution cell {gid} line {n + 1}: markers must be indented, inside a function "
                                "or class body (signature, docstring and imports stay outside)")
    try:
        tree = ast.parse(src)
    except SyntaxError as err:
        return problems + [f"solution cell {gid}: does not parse: {err}"]
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    if not defined:
        problems.append(f"solution cell {gid}: must define a function or class")
    # what the learner will see: each block becomes the stub, at the marker's indentation
    released, inside = [], False
    for line in lines:
        if line.strip() == grading.BEGIN_SOLUTION:
            indent = line[: len(line) - len(line.lstrip())]
            released += [indent + "# YOUR CODE HERE", indent + "raise NotImplementedError()"]
            inside = True
        elif line.strip() == grading.END_SOLUTION:
            inside = False
        elif not inside:
            released.append(line)
    try:
        rtree = ast.parse("\n".join(released))
    except SyntaxError as err:
        return problems + [f"solution cell {gid}: the released stub does not parse: {err}"]
    rdefined = {n.name for n in rtree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    if rdefined != defined:
        problems.append(f"solution cell {gid}: the release defines {sorted(rdefined)}, the source {sorted(defined)}")
    return problems


def test_every_unit_has_a_lesson(assignment):
    assert (REPO / grading.LESSONS_DIR / f"{assignment}.ipynb").exists(), f"lessons/{assignment}.ipynb is missing"


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_format(name):
    path = REPO / grading.LESSONS_DIR / name
    assert grading.ASSIGNMENT_RE.match(path.stem), f"lesson {name} is not named NN_name.ipynb"
    size = path.stat().st_size
    assert size < MAX_LESSON_BYTES, f"lessons/{name} is {size / 1e6:.2f} MB; keep it under 1.5 MB (smaller plots)"
    nb = grading.read_notebook(path)
    assert dict(nb.metadata.get("kernelspec", {})) == grading.KERNELSPEC, f"kernelspec {nb.metadata.get('kernelspec')}"


def test_wrong_answer_files_are_valid(assignment):
    path = WRONG_DIR / f"{assignment}.py"
    assert path.exists(), f"tests/course/wrong_answers/{assignment}.py is missing (one wrong answer per task at least)"
    answers = grading.load_wrong_answers(path)
    sources = source_notebooks(assignment)
    solution_ids = {gid for nb in sources.values() for gid in grading.solution_cells(nb)}
    grade_ids = {gid for nb in sources.values() for gid in grading.grade_cells(nb)}
    for i, wa in enumerate(answers):
        assert wa["cell"] in solution_ids, f"WRONG_ANSWERS[{i}]: {wa['cell']!r} is not a solution cell {sorted(solution_ids)}"
        assert wa["fails"] and set(wa["fails"]) <= grade_ids, f"WRONG_ANSWERS[{i}]: fails {wa['fails']} not all grade cells"
        assert wa["why"].strip(), f"WRONG_ANSWERS[{i}]: say why it is wrong"
        compile(wa["source"], f"WRONG_ANSWERS[{i}]", "exec")
    for i, ra in enumerate(grading.load_right_answers(path)):
        assert ra["cell"] in solution_ids, f"RIGHT_ANSWERS[{i}]: {ra['cell']!r} is not a solution cell {sorted(solution_ids)}"
        assert ra["why"].strip(), f"RIGHT_ANSWERS[{i}]: say how it differs from the reference solution"
        compile(ra["source"], f"RIGHT_ANSWERS[{i}]", "exec")


def test_every_task_has_its_own_wrong_answer(assignment):
    path = WRONG_DIR / f"{assignment}.py"
    answers = grading.load_wrong_answers(path) if path.exists() else []
    missing = []
    for nb in source_notebooks(assignment).values():
        for task in tasks(nb):
            if not any(wa["cell"] == task and list(wa["fails"]) == [f"test_{task}"] for wa in answers):
                missing.append(task)
    assert not missing, (f"{assignment}: tasks without a wrong answer (cell=X, fails=['test_X']) in "
                         f"tests/course/wrong_answers/{assignment}.py: {missing}")


def test_every_task_has_a_right_answer_in_another_style(assignment):
    path = WRONG_DIR / f"{assignment}.py"
    answers = grading.load_right_answers(path) if path.exists() else []
    covered = {ra["cell"] for ra in answers}
    missing = [task for nb in source_notebooks(assignment).values() for task in tasks(nb) if task not in covered]
    assert not missing, (
        f"{assignment}: tasks without a correct answer in another style than the reference: {missing}. Add to "
        f"RIGHT_ANSWERS in tests/course/wrong_answers/{assignment}.py one dict(cell='<task>', why='how it differs', "
        "source='...') per task (einsum for a matmul, a loop the text allows, keyword arguments): it must get full marks")
