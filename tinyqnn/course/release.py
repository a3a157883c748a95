"""Regenerate ``exercises/`` from ``solutions/`` (``python -m tinyqnn release [NN_name ...] [--force]``).

nbgrader's ``generate_assignment`` runs in a temporary copy of the course, so the repository gets no
gradebook.db; the result is written in canonical notebook JSON (see ``grading.canonical_json``), so the same
sources always give the same bytes and CI can compare a regeneration with the committed files.

What release may touch: ``exercises/tinyqnn-release.json`` records, per assignment, a digest of its sources and
the SHA-256 of every file release wrote. An assignment whose sources have not changed since is not regenerated.
A file is replaced or deleted only while it still holds the bytes release wrote; a learner's answers in a
generated notebook, or a notebook release never wrote, are kept (and named) unless ``--force``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..utils import atomic_write_bytes
from . import grading

#: release's record of what it wrote, beside the assignment folders in exercises/
MANIFEST = "tinyqnn-release.json"


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


def sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def source_digest(root: Path, assignment: str) -> str:
    """What a release of ``assignment`` is made from: its source files and the nbgrader config."""
    h = hashlib.sha256()
    folder = root / grading.SOLUTIONS_DIR / assignment
    for path in grading.source_files(folder):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    config = root / grading.CONFIG_FILE
    h.update(config.read_bytes() if config.is_file() else b"")
    return h.hexdigest()


def read_manifest(root: Path) -> dict[str, Any]:
    """``{assignment: {"source": digest, "files": {rel: sha256}}}``; empty if missing or unreadable."""
    try:
        data = json.loads((root / grading.EXERCISES_DIR / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    return data.get("assignments", {}) if isinstance(data, dict) and isinstance(data.get("assignments"), dict) else {}


def write_manifest(root: Path, entries: dict[str, Any]) -> None:
    payload = {"tinyqnn_release": 1, "assignments": dict(sorted(entries.items()))}
    atomic_write_bytes(root / grading.EXERCISES_DIR / MANIFEST, (json.dumps(payload, indent=1) + "\n").encode())


def is_current(root: Path, assignment: str, entry: dict[str, Any] | None) -> bool:
    """True if ``assignment``'s sources are unchanged since release last wrote it and every file it wrote is
    still there (edited or not: a learner's answers are theirs; ``--check`` finds an instructor's slip)."""
    if not entry or entry.get("source") != source_digest(root, assignment) or not entry.get("files"):
        return False
    folder = root / grading.EXERCISES_DIR / assignment
    return all((folder / rel).is_file() for rel in entry["files"])


def plan_release(old: dict[str, bytes], files: dict[str, bytes], recorded: dict[str, str]) -> dict[str, list[str]]:
    """Sort an assignment's files: ``write`` (new, or still release's own), ``delete`` (release's own, no longer
    generated), ``unchanged``, and ``kept``: files release did not write or that were edited since."""
    plan: dict[str, list[str]] = {"write": [], "delete": [], "unchanged": [], "kept": []}
    for rel in sorted(set(old) | set(files)):
        own = rel in old and recorded.get(rel) == sha256(old[rel])
        if rel in files and old.get(rel) == files[rel]:
            plan["unchanged"].append(rel)
        elif rel not in old:
            plan["write"].append(rel)
        elif not own:
            plan["kept"].append(rel)
        else:
            plan["write" if rel in files else "delete"].append(rel)
    return plan


def write_release(root: Path, assignment: str, files: dict[str, bytes], recorded: dict[str, str] | None = None,
                  force: bool = False) -> tuple[list[str], list[str]]:
    """Bring exercises/<assignment>/ to ``files``, touching only what release wrote (``recorded``: rel -> sha256)
    unless ``force``. Returns (paths changed, paths kept because release did not write them or they were edited)."""
    folder = root / grading.EXERCISES_DIR / assignment
    old = committed_files(root, assignment)
    plan = plan_release(old, files, recorded or {})
    if force:
        plan["write"] += [rel for rel in plan["kept"] if rel in files]
        plan["delete"] += [rel for rel in plan["kept"] if rel not in files]
        plan["kept"] = []
    for rel in plan["delete"]:
        (folder / rel).unlink()
    for rel in plan["write"]:
        atomic_write_bytes(folder / rel, files[rel])
    return sorted(plan["write"] + plan["delete"]), plan["kept"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyqnn release",
                                     description="Regenerate exercises/ from solutions/ with nbgrader generate_assignment. "
                                                 "Only assignments whose sources changed are regenerated, and only "
                                                 "files release wrote (and nobody edited since) are replaced or deleted.")
    parser.add_argument("assignments", nargs="*", help="assignment names such as 01_chain_rule (default: all)")
    parser.add_argument("--root", type=Path, default=None, help="course directory (default: this checkout)")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if exercises/ differs from a fresh regeneration")
    parser.add_argument("--force", action="store_true",
                        help="regenerate even unchanged assignments, replace edited files and delete files release "
                             "did not write in the regenerated exercise folders")
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

    stale, blocked = 0, 0
    manifest = read_manifest(root)
    with tempfile.TemporaryDirectory(prefix="tinyqnn-release-") as tmp:
        course = grading.TempCourse(tmp, repo=root)
        for name in names:
            if not args.check and not args.force and is_current(root, name, manifest.get(name)):
                print(f"{name}: unchanged (sources as at its last release)")
                continue
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
                continue
            recorded = (manifest.get(name) or {}).get("files", {})
            changed, kept = write_release(root, name, files, recorded, force=args.force)
            print(f"{name}: " + (f"wrote {changed}" if changed else "regenerated, nothing changed"))
            if kept:
                blocked += any(rel in files for rel in kept)  # an update that did not reach exercises/
                print(f"release: kept exercises/{name}/{', '.join(kept)}: not written by release, or edited since "
                      "(your answers?); move away what you want to keep, or pass --force to regenerate",
                      file=sys.stderr)
            # what release generated: a kept (edited) file differs from it, so it stays the user's next time too
            manifest[name] = {"source": source_digest(root, name),
                              "files": {rel: sha256(data) for rel, data in files.items()}}
            write_manifest(root, manifest)
    if not args.assignments:
        orphans = sorted(d.name for d in (root / grading.EXERCISES_DIR).glob("*")
                         if d.is_dir() and d.name not in known and not grading.is_ignored(d.name))
        for orphan in orphans:
            print(f"release: exercises/{orphan} has no solutions/{orphan}; "
                  f"delete it{' (--check: counted as out of date)' if args.check else ''}", file=sys.stderr)
        stale += bool(orphans) and args.check
    return 1 if stale or blocked else 0


if __name__ == "__main__":
    raise SystemExit(main())
