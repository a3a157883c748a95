"""CI check 1: exercises/ is exactly what nbgrader generates from solutions/, and leaks nothing."""
from __future__ import annotations

import pytest

from coursekit import ASSIGNMENTS, REPO, source_notebooks
from tinyqnn.course import grading, release

pytestmark = pytest.mark.slow


def test_exercise_folders_match_solution_folders():
    exercises = sorted(d.name for d in (REPO / grading.EXERCISES_DIR).glob("*")
                       if d.is_dir() and not grading.is_ignored(d.name))
    sources = grading.assignments(REPO)
    assert exercises == sources, (
        f"exercises/ has {exercises}, solutions/ has {sources}; run `python -m tinyqnn release` "
        "(and delete exercise folders without a source)")


def test_regeneration_is_identical_to_committed_files(assignment, batches):
    batch = batches[assignment]
    batch.require()
    committed = release.committed_files(REPO, assignment)
    generated = batch.release_files
    assert sorted(committed) == sorted(generated), (
        f"exercises/{assignment}/ holds {sorted(committed)}, a regeneration gives {sorted(generated)}; "
        f"run `python -m tinyqnn release {assignment}`")
    stale = [rel for rel in generated if committed[rel] != generated[rel]]
    assert not stale, (f"exercises/{assignment}/{stale} differ from a fresh regeneration of solutions/{assignment}: "
                       f"run `python -m tinyqnn release {assignment}` and commit the result (never edit exercises/)")


def test_regeneration_is_deterministic(batches, tmp_path):
    """Generating twice in two fresh course directories gives the same bytes (first assignment only: ~5 s)."""
    if not ASSIGNMENTS:
        pytest.skip("no assignments")
    assignment = ASSIGNMENTS[0]
    batches[assignment].require()
    again = release.generated_files(grading.TempCourse(tmp_path / "again"), assignment)
    assert again == batches[assignment].release_files, "generate_assignment output depends on more than the source"


def test_no_solution_or_hidden_test_text_in_exercises(assignment):
    """Every line between BEGIN/END SOLUTION and BEGIN/END HIDDEN TESTS of the source is gone from the release."""
    leaks = []
    for name, source in source_notebooks(assignment).items():
        path = REPO / grading.EXERCISES_DIR / assignment / f"{name}.ipynb"
        if not path.exists():
            pytest.fail(f"{path} is missing; run `python -m tinyqnn release {assignment}`")
        released = grading.read_notebook(path)
        for cell in released.cells:
            text = grading.source_text(cell)
            for marker in (grading.BEGIN_SOLUTION, grading.END_SOLUTION, grading.BEGIN_HIDDEN, grading.END_HIDDEN):
                if marker.lstrip("# ") in text:
                    leaks.append(f"{name}:{grading.grade_id(cell) or cell.get('id')}: marker {marker!r} survived")
        released_by_id = {grading.grade_id(c): c for c in released.cells if grading.grade_id(c)}
        for cell in source.cells:
            gid = grading.grade_id(cell)
            src = grading.source_text(cell)
            if grading.is_solution(cell):
                secret, public = grading.split_blocks(src, grading.BEGIN_SOLUTION, grading.END_SOLUTION)
            elif grading.is_grade(cell):
                secret, public = grading.split_blocks(src, grading.BEGIN_HIDDEN, grading.END_HIDDEN)
            else:
                continue
            # lines that also appear outside the blocks (e.g. "return out") are not secrets
            secret = {ln.strip() for ln in secret if ln.strip()} - {ln.strip() for ln in public}
            out_cell = released_by_id.get(gid)
            if out_cell is None:
                leaks.append(f"{name}:{gid}: cell missing from the release")
                continue
            same_cell = {ln.strip() for ln in grading.source_text(out_cell).splitlines()}
            leaks += [f"{name}:{gid}: {ln!r}" for ln in sorted(secret & same_cell)]
            # a later cell that repeats two or more long (>= 40 chars) lines of this answer (e.g. a test cell
            # injecting a reference copy of it) gives the answer away; one shared line (a size formula in an
            # independent loop oracle) is tolerated
            if grading.is_solution(cell):
                distinctive = {ln for ln in secret if len(ln) >= 40 and not ln.startswith("#")}
                for other in released.cells:
                    if other is out_cell or other.cell_type != "code":
                        continue
                    shared = distinctive & {ln.strip() for ln in grading.source_text(other).splitlines()}
                    if len(shared) >= 2:
                        leaks.append(f"{name}:{gid}: {len(shared)} lines of its solution appear in cell "
                                     f"{grading.grade_id(other) or other.get('id')}: {sorted(shared)}")
    assert not leaks, f"solution/hidden-test text in exercises/{assignment}:\n  " + "\n  ".join(leaks)


def _course_copy(tmp_path, names):
    import shutil

    root = tmp_path / "course"
    for name in names:
        shutil.copytree(REPO / grading.SOLUTIONS_DIR / name, root / grading.SOLUTIONS_DIR / name)
    shutil.copy(REPO / grading.CONFIG_FILE, root / grading.CONFIG_FILE)
    return root


def test_release_touches_only_what_it_wrote_and_only_what_changed(tmp_path, capsys):
    """A learner's answers in one unit and an extra notebook survive releasing all units after another unit's
    solutions changed; an edited file whose sources changed is kept and named (exit 1), --force replaces it."""
    # two units, whichever TINYQNN_COURSE_ONLY selects (an author checking one unit gets a second one here)
    first, second = [*ASSIGNMENTS, *(a for a in grading.assignments(REPO) if a not in ASSIGNMENTS)][:2]
    root = _course_copy(tmp_path, [first, second])
    assert release.main(["--root", str(root)]) == 0
    exercises = root / grading.EXERCISES_DIR
    answered = exercises / second / f"{second}.ipynb"
    answered.write_text(answered.read_text().replace("raise NotImplementedError()", "return 42  # my answer"))
    extra = exercises / second / "my_scratch.ipynb"
    extra.write_text("{}")
    source = root / grading.SOLUTIONS_DIR / first / f"{first}.ipynb"
    nb = grading.read_notebook(source)
    nb.cells[0]["source"] += "\n\nA sentence the instructor added."
    source.write_text(grading.canonical_json(nb))
    capsys.readouterr()
    assert release.main(["--root", str(root)]) == 0
    printed = capsys.readouterr().out
    assert f"{first}: wrote" in printed and f"{second}: unchanged" in printed
    assert "A sentence the instructor added." in (exercises / first / f"{first}.ipynb").read_text()
    assert "return 42  # my answer" in answered.read_text() and extra.read_text() == "{}"

    source = root / grading.SOLUTIONS_DIR / second / f"{second}.ipynb"  # now the answered unit changes too
    nb = grading.read_notebook(source)
    nb.cells[0]["source"] += "\n\nA fix."
    source.write_text(grading.canonical_json(nb))
    assert release.main(["--root", str(root), second]) == 1  # the update could not reach the learner's copy
    err = capsys.readouterr().err
    assert f"kept exercises/{second}/{second}.ipynb, my_scratch.ipynb" in err and "--force" in err
    assert "return 42  # my answer" in answered.read_text() and extra.exists()
    assert release.main(["--root", str(root), second, "--force"]) == 0
    assert "A fix." in answered.read_text() and "my answer" not in answered.read_text() and not extra.exists()
    manifest = release.read_manifest(root)
    assert set(manifest) == {first, second}
    assert manifest[second]["files"] == {f"{second}.ipynb": release.sha256(answered.read_bytes())}


def test_release_manifest_matches_the_committed_exercises():
    """exercises/tinyqnn-release.json records the committed exercises and the sources they were made from."""
    manifest = release.read_manifest(REPO)
    assert sorted(manifest) == grading.assignments(REPO), "run `python -m tinyqnn release` and commit exercises/"
    for name in ASSIGNMENTS:
        committed = release.committed_files(REPO, name)
        assert manifest[name]["files"] == {rel: release.sha256(data) for rel, data in committed.items()}, name
        assert manifest[name]["source"] == release.source_digest(REPO, name), (
            f"solutions/{name} changed since its release: run `python -m tinyqnn release {name}`")
