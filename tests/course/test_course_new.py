"""``python -m tinyqnn.course.new``: a new unit from the template passes the course lint (but for >= 6 tasks).

Fast: no kernel and no nbgrader run. The structural checks are the lint's own test functions
(test_course_lint), pointed at a temporary course root by monkeypatching its module globals.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import coursekit
import test_course_lint as lint
from tinyqnn.course import grading, new

NAME = "05_my_unit"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An empty course directory: just the nbgrader config."""
    shutil.copy(coursekit.REPO / grading.CONFIG_FILE, tmp_path / grading.CONFIG_FILE)
    return tmp_path


@pytest.fixture
def created(root: Path) -> Path:
    assert new.main([NAME, "--root", str(root)]) == 0
    return root


@pytest.fixture
def lint_at(monkeypatch: pytest.MonkeyPatch):
    """Point the lint's module globals at a temporary course root."""
    def point(root: Path) -> None:
        monkeypatch.setattr(lint, "REPO", root)
        monkeypatch.setattr(lint, "WRONG_DIR", root / "tests" / "course" / "wrong_answers")
        monkeypatch.setattr(lint, "source_notebooks", lambda a: {
            p.stem: grading.read_notebook(p) for p in sorted((root / grading.SOLUTIONS_DIR / a).glob("*.ipynb"))})
    return point


def test_creates_the_three_files(created: Path):
    files = sorted(p.relative_to(created).as_posix() for p in created.rglob("*") if p.is_file())
    assert files == [f"lessons/{NAME}.ipynb", grading.CONFIG_FILE, f"solutions/{NAME}/{NAME}.ipynb",
                     f"tests/course/wrong_answers/{NAME}.py"]
    text = (created / "solutions" / NAME / f"{NAME}.ipynb").read_text(encoding="utf-8")
    assert "__" + "ASSIGNMENT__" not in text and "__TITLE__" not in text and "__NUMBER__" not in text
    nb = grading.read_notebook(created / "solutions" / NAME / f"{NAME}.ipynb")
    assert grading.source_text(nb.cells[0]).startswith("# Unit 5 — My unit\n"), nb.cells[0].source[:80]
    assert f"exercises/{NAME}" in grading.source_text(nb.cells[0])
    assert text == grading.canonical_json(nb), "notebooks are written in the canonical JSON layout"
    assert grading.assignments(created) == [NAME]


def test_cell_ids_follow_the_grade_ids(created: Path):
    nb = grading.read_notebook(created / "solutions" / NAME / f"{NAME}.ipynb")
    for cell in nb.cells:
        if grading.grade_id(cell):
            assert cell.id == grading.grade_id(cell)
    assert len({c.id for c in nb.cells}) == len(nb.cells)


def test_created_notebook_passes_the_lint_except_the_unfinished_parts(created: Path, lint_at):
    lint_at(created)
    lint.test_solution_folder_holds_only_its_notebook(NAME)
    lint.test_every_unit_has_a_lesson(NAME)
    lint.test_lesson_format(f"{NAME}.ipynb")
    lint.test_wrong_answer_files_are_valid(NAME)
    lint.test_every_task_has_its_own_wrong_answer(NAME)
    lint.test_every_task_has_a_right_answer_in_another_style(NAME)
    with pytest.raises(AssertionError) as info:
        lint.test_solution_notebook_structure(NAME)
    problems = [ln.strip() for ln in str(info.value).splitlines()[1:]
                if ln.strip() and not ln.strip().startswith("assert ")]  # drop pytest's echo of the assert
    unfinished = [p for p in problems if "at least 6" in p or "AUTHOR NOTES" in p]
    assert problems == unfinished and len(unfinished) == 2, (
        "the only lint problems of a fresh unit must be its task count and its author notes:\n" + "\n".join(problems))
    nb = grading.read_notebook(created / "solutions" / NAME / f"{NAME}.ipynb")
    assert coursekit.tasks(nb) == ["stable_sigmoid"]


def test_lint_notices_a_broken_template(created: Path, lint_at):
    """The lint call above has teeth: it reports a solution marker outside a function body."""
    path = created / "solutions" / NAME / f"{NAME}.ipynb"
    nb = grading.read_notebook(path)
    cell = grading.find_cell(nb, "stable_sigmoid")
    cell.source = grading.source_text(cell).replace("    ### BEGIN SOLUTION", "### BEGIN SOLUTION")
    grading.write_notebook(nb, path)
    lint_at(created)
    with pytest.raises(AssertionError, match="markers must be indented"):
        lint.test_solution_notebook_structure(NAME)


def _run_task(nb, solution_source: str) -> None:
    """Run setup + a solution source + the full test cell (hidden tests included) in one namespace."""
    ns: dict = {}
    exec(grading.source_text(nb.cells[1]), ns)
    exec(solution_source, ns)
    exec(grading.source_text(grading.find_cell(nb, "test_stable_sigmoid")), ns)


def test_example_task_separates_right_from_wrong(created: Path):
    """Solution passes its tests, the starter wrong answer and the released stub fail them (no kernel needed)."""
    nb = grading.read_notebook(created / "solutions" / NAME / f"{NAME}.ipynb")
    _run_task(nb, grading.source_text(grading.find_cell(nb, "stable_sigmoid")))
    answers = grading.load_wrong_answers(created / "tests" / "course" / "wrong_answers" / f"{NAME}.py")
    assert [wa["cell"] for wa in answers] == ["stable_sigmoid"]
    with pytest.raises(AssertionError, match="overflows"):
        _run_task(nb, answers[0]["source"])
    right = grading.load_right_answers(created / "tests" / "course" / "wrong_answers" / f"{NAME}.py")
    assert [ra["cell"] for ra in right] == ["stable_sigmoid"]
    _run_task(nb, right[0]["source"])  # another correct style passes the same tests
    stub = grading.source_text(grading.find_cell(nb, "stable_sigmoid"))
    inside, _ = grading.split_blocks(stub, grading.BEGIN_SOLUTION, grading.END_SOLUTION)
    stub = stub.replace("\n".join(inside), "    raise NotImplementedError()")
    with pytest.raises(NotImplementedError):
        _run_task(nb, stub)


@pytest.mark.parametrize("bad", ["5_my_unit", "05-my-unit", "05_MyUnit", "my_unit", "05_", "05_my__unit",
                                 "05_my_unit_", "05_1unit", "005_x", "05_my unit", "../05_my_unit"])
def test_rejects_bad_names(root: Path, bad: str, capsys):
    assert new.main([bad, "--root", str(root)]) == 2
    assert repr(bad) in capsys.readouterr().err
    assert sorted(p.name for p in root.iterdir()) == [grading.CONFIG_FILE], "nothing may be written"


def test_bad_name_message_shows_the_pattern(root: Path, capsys):
    assert new.main(["5_unit", "--root", str(root)]) == 2
    assert "05_my_unit" in capsys.readouterr().err


def test_refuses_a_taken_unit_number(created: Path, capsys):
    assert new.main(["05_other_unit", "--root", str(created)]) == 2
    assert "05_my_unit" in capsys.readouterr().err
    assert not (created / "solutions" / "05_other_unit").exists()


def test_refuses_to_overwrite(created: Path, capsys):
    wrong = created / "tests" / "course" / "wrong_answers" / f"{NAME}.py"
    wrong.write_text("WRONG_ANSWERS = []  # the author's work\n", encoding="utf-8")
    assert new.main([NAME, "--root", str(created)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert wrong.read_text(encoding="utf-8") == "WRONG_ANSWERS = []  # the author's work\n"


def test_refuses_when_only_one_file_exists(root: Path, capsys):
    lesson = root / "lessons" / f"{NAME}.ipynb"
    lesson.parent.mkdir()
    lesson.write_text("{}", encoding="utf-8")
    assert new.main([NAME, "--root", str(root)]) == 2
    assert f"lessons/{NAME}.ipynb" in capsys.readouterr().err
    assert not (root / "solutions").exists() and not (root / "tests").exists(), "all or nothing"


def test_refuses_when_a_release_folder_exists(root: Path, capsys):
    (root / "exercises" / NAME).mkdir(parents=True)
    assert new.main([NAME, "--root", str(root)]) == 2
    assert f"exercises/{NAME}" in capsys.readouterr().err
    assert not (root / "solutions").exists()


def test_refuses_a_root_that_is_not_a_course(tmp_path: Path, capsys):
    assert new.main([NAME, "--root", str(tmp_path)]) == 2
    assert grading.CONFIG_FILE in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_module_entry_point(root: Path):
    proc = subprocess.run([sys.executable, "-m", "tinyqnn.course.new", "06_quantizers", "--root", str(root),
                           "--title", "Quantizers"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "created solutions/06_quantizers/06_quantizers.ipynb" in proc.stdout
    nb = grading.read_notebook(root / "solutions" / "06_quantizers" / "06_quantizers.ipynb")
    assert grading.source_text(nb.cells[0]).startswith("# Unit 6 — Quantizers\n")


def test_template_ships_as_package_data():
    from importlib import resources

    assert resources.files("tinyqnn.course").joinpath("templates", new.TEMPLATE).is_file()
    nb = new.template_notebook()
    assert dict(nb.metadata["kernelspec"]) == grading.KERNELSPEC


def test_next_steps_release_before_checking(root: Path, capsys):
    """The printed next steps follow INSTRUCTORS.md: release first (the checks compare exercises/ with it)."""
    assert new.main([NAME, "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "INSTRUCTORS.md" in out and "course.md" not in out.replace("INSTRUCTORS.md", "")
    assert out.index("python -m tinyqnn release") < out.index("python -m pytest tests/course")
