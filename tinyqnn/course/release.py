"""Regenerate ``exercises/`` from ``solutions/`` (``python -m tinyqnn release [NN_name ...]``).

nbgrader's ``generate_assignment`` runs in a temporary copy of the course, so the repository gets no
gradebook.db; the result is written in canonical notebook JSON (see ``grading.canonical_json``), so the same
sources always give the same bytes and CI can compare a regeneration with the committed files.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from . import grading


def generated_files(course: grading.TempCourse, assignment: str) -> dict[str, bytes]:
    """Run generate_assignment in ``course``; relative path -> exact bytes to commit under exercises/<assignment>/."""
    course.add_source(assignment)
    out = course.generate(assignment)
    files = {}
    for path in grading.source_files(out):
        rel = path.relative_to(out).as_posix()
        if path.suffix == ".ipynb":
            files[rel] = grading.canonical_json(grading.read_notebook(path)).encode("utf-8")
        else:
            files[rel] = path.read_bytes()
    return files


def committed_files(root: Path, assignment: str) -> dict[str, bytes]:
    folder = root / grading.EXERCISES_DIR / assignment
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in grading.source_files(folder)}


def write_release(root: Path, assignment: str, files: dict[str, bytes]) -> list[str]:
    """Make exercises/<assignment>/ hold exactly ``files``; returns the relative paths that changed."""
    folder = root / grading.EXERCISES_DIR / assignment
    old = committed_files(root, assignment)
    changed = sorted(rel for rel in set(old) | set(files) if old.get(rel) != files.get(rel))
    for rel in set(old) - set(files):
        (folder / rel).unlink()
    for rel, payload in files.items():
        target = folder / rel
        if old.get(rel) != payload:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(payload)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyqnn release",
                                     description="Regenerate exercises/ from solutions/ with nbgrader generate_assignment.")
    parser.add_argument("assignments", nargs="*", help="assignment names such as 01_chain_rule (default: all)")
    parser.add_argument("--root", type=Path, default=None, help="course directory (default: this checkout)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if exercises/ differs from a fresh regeneration")
    args = parser.parse_args(argv)

    root = (args.root or grading.repo_root()).resolve()
    known = grading.assignments(root)
    names = args.assignments or known
    unknown = [a for a in names if a not in known]
    if unknown:
        print(f"release: no solutions/<name>/ notebook for {unknown}; known assignments: {known}", file=sys.stderr)
        return 2
    if not names:
        print(f"release: nothing to do, {root / grading.SOLUTIONS_DIR} has no assignments", file=sys.stderr)
        return 2

    stale = 0
    with tempfile.TemporaryDirectory(prefix="tinyqnn-release-") as tmp:
        course = grading.TempCourse(tmp, repo=root)
        for name in names:
            try:
                files = generated_files(course, name)
            except grading.NbgraderError as err:
                print(f"release: {err}", file=sys.stderr)
                return 1
            if args.check:
                old = committed_files(root, name)
                diff = sorted(rel for rel in set(old) | set(files) if old.get(rel) != files.get(rel))
                stale += bool(diff)
                print(f"{name}: " + (f"OUT OF DATE {diff}" if diff else "up to date"))
            else:
                changed = write_release(root, name, files)
                print(f"{name}: " + (f"wrote {changed}" if changed else "unchanged"))
    if not args.assignments:
        orphans = sorted(d.name for d in (root / grading.EXERCISES_DIR).glob("*")
                         if d.is_dir() and d.name not in known and not grading.is_ignored(d.name))
        for orphan in orphans:
            print(f"release: exercises/{orphan} has no solutions/{orphan}; "
                  f"delete it{' (--check: counted as out of date)' if args.check else ''}", file=sys.stderr)
        stale += bool(orphans) and args.check
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
