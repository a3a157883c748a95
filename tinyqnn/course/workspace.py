"""``python -m tinyqnn workspace DIR``: a learner's own copy of ``lessons/`` and ``exercises/``, outside git.

Edits to the git-tracked ``exercises/`` get in the way of every ``git pull`` (a conflict, or lost work after
``git checkout .``). A workspace is a plain folder elsewhere: work there, and after a ``git pull`` run the
same command again to add the new units and notebooks. A file that already exists in the workspace is never
overwritten, so running it again is always safe.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from . import grading

FOLDERS = (grading.LESSONS_DIR, grading.EXERCISES_DIR)


def create_workspace(dest: str | Path, root: str | Path | None = None) -> tuple[list[Path], list[Path]]:
    """Copy the files of ``lessons/`` and ``exercises/`` under ``root`` to ``dest``; returns (copied, kept).

    ``kept`` are files that already existed in ``dest`` (the learner's work) and were left as they are.
    Raises ``ValueError`` when ``dest`` lies inside the course checkout (``git pull`` and ``git clean``
    would reach it there) or is a file.
    """
    root = Path(root or grading.repo_root()).resolve()
    dest = Path(dest).expanduser().resolve()
    if dest == root or root in dest.parents:
        raise ValueError(f"{dest} is inside the course checkout {root}; choose a folder outside it "
                         "(e.g. ~/tinyqnn-work), where git pull and git clean never reach")
    if dest.exists() and not dest.is_dir():
        raise ValueError(f"{dest} is a file, not a folder")
    missing = [name for name in FOLDERS if not (root / name).is_dir()]
    if missing:
        raise ValueError(f"{root} has no {' or '.join(missing)}/ folder; is it the tinyqnn checkout?")
    copied, kept = [], []
    for name in FOLDERS:
        for source in grading.source_files(root / name):
            target = dest / name / source.relative_to(root / name)
            if target.exists() or target.is_symlink():
                kept.append(target)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            copied.append(target)
    return copied, kept


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tinyqnn workspace",
        description="Copy lessons/ and exercises/ to your own folder outside git; work there. Run it again after "
                    "git pull to add new units: files you already have are never overwritten.")
    parser.add_argument("dest", type=Path, help="your workspace folder, outside the checkout (e.g. ~/tinyqnn-work)")
    parser.add_argument("--root", type=Path, default=None, help="course directory (default: this checkout)")
    args = parser.parse_args(argv)
    try:
        copied, kept = create_workspace(args.dest, args.root)
    except (ValueError, OSError) as error:
        from ..args import one_line

        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    dest = args.dest.expanduser().resolve()
    print(f"{dest}: copied {len(copied)} file(s), kept {len(kept)} you already had (never overwritten)")
    python = Path(sys.executable)  # as invoked (a venv's python is a symlink: do not resolve it)
    units = sorted(p.name for p in (dest / grading.EXERCISES_DIR).iterdir() if p.is_dir())
    from .check import missing_runner

    problem = missing_runner()
    if problem:  # set up for the main job only: say what JupyterLab and the self-check need
        print(f"note: {problem}")
    print("next:")
    print(f"  open JupyterLab there:  {python.parent / 'jupyter'} lab --ServerApp.root_dir={dest}")
    if units:
        print(f"  check your work:        {python} -m tinyqnn check {dest / grading.EXERCISES_DIR / units[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
