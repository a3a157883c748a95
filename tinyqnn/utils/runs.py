"""Run folders: the manifest (``tinyqnn-run.json``) that says which files a tinyqnn command wrote in a
folder, so that a later run replaces only those and never a user's own file."""
from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .atomic import _RECORDING, atomic_path, clean_stale_parts


#: The manifest a command keeps in its output folder: which files tinyqnn wrote there (and may replace).
RUN_MANIFEST = "tinyqnn-run.json"


class RunFolderError(ValueError):
    """An output folder holds something a command must not replace without being told to."""


class _RunRecord:
    """The manifest of one run folder; ``atomic_path`` reports every file it completes inside it."""

    def __init__(self, directory: Path, command: str, files: list[str]):
        self.directory, self.command, self.files = directory, command, set(files)

    def record(self, dest: Path) -> None:
        try:
            rel = dest.resolve().relative_to(self.directory.resolve()).as_posix()
        except ValueError:  # written outside this run's folder
            return
        if rel != RUN_MANIFEST and rel not in self.files:
            self.files.add(rel)
            self.save()

    def save(self) -> None:
        payload = {"tinyqnn_run": 1, "command": self.command, "files": sorted(self.files)}
        # not through atomic_write_bytes: the manifest must not record itself
        with atomic_path(self.directory / RUN_MANIFEST) as tmp:
            tmp.write_text(json.dumps(payload, indent=1) + "\n")


def run_manifest(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The manifest of a folder tinyqnn wrote a run into, or None (no manifest, or not a valid one)."""
    path = Path(directory) / RUN_MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    ok = isinstance(data, dict) and data.get("tinyqnn_run") == 1 and isinstance(data.get("files"), list) \
        and all(isinstance(f, str) for f in data["files"])
    return data if ok else None


def folder_state(directory: str | os.PathLike, command: str | None = None) -> str:
    """``"empty"`` (missing or empty), ``"own"`` (a tinyqnn run, of ``command`` when given) or ``"foreign"``.

    Stale ``.part`` files of killed tinyqnn writers are removed first and do not count.
    """
    directory = Path(directory)
    if not directory.exists():
        return "empty"
    if not directory.is_dir():
        raise NotADirectoryError(f"{directory} is a file, not a folder")
    clean_stale_parts(directory)
    manifest = run_manifest(directory)
    if manifest is not None and command in (None, manifest.get("command")):
        return "own"
    return "foreign" if any(directory.iterdir()) else "empty"


def describe_folder(directory: str | os.PathLike, limit: int = 4) -> str:
    """``"a.txt, notes/, ... (7 entries)"``: a short listing for error messages."""
    names = sorted(p.name + ("/" if p.is_dir() else "") for p in Path(directory).iterdir())
    shown = ", ".join(names[:limit]) + (", ..." if len(names) > limit else "")
    return f"{shown} ({len(names)} entr{'y' if len(names) == 1 else 'ies'})"


def _inside(directory: Path, rel: str) -> Path | None:
    """``directory / rel`` if ``rel`` is a plain relative path that stays inside ``directory``, else None."""
    candidate = Path(rel)
    if candidate.is_absolute() or ".." in candidate.parts or not candidate.parts:
        return None
    return directory / candidate


def remove_run_files(directory: str | os.PathLike, also: tuple[str, ...] = (), only_also: bool = False) -> list[Path]:
    """Delete the files a tinyqnn run recorded in ``directory``'s manifest (and the relative paths
    ``also``, files the caller is about to write anyway), then the folders that became empty.

    Nothing else is touched: a file the user added to the run folder stays, and so does its folder.
    ``only_also``: delete just ``also`` and keep the manifest (a folder that is another command's run).
    Returns the deleted files.
    """
    directory = Path(directory)
    recorded = [] if only_also else (run_manifest(directory) or {"files": []})["files"]
    removed = []
    for rel in sorted(set(recorded) | set(also)):
        path = _inside(directory, rel)
        if path is not None and (path.is_file() or path.is_symlink()):
            path.unlink()
            removed.append(path)
            parent = path.parent
            while parent != directory:  # prune only folders this removal emptied
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent
    if not only_also:
        (directory / RUN_MANIFEST).unlink(missing_ok=True)
    return removed


@contextmanager
def recording_run(directory: str | os.PathLike, command: str) -> Iterator[Path]:
    """Mark ``directory`` as a tinyqnn run of ``command`` and record in its manifest every file that
    ``atomic_path`` completes inside it until the block ends (files of an earlier run are kept listed).

    The manifest is written before anything else, so a run that is killed still marks its folder.
    """
    directory = Path(directory)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    earlier = run_manifest(directory) or {}
    # another command's files are not this run's to replace later: start a new list then
    record = _RunRecord(directory, command, earlier.get("files", []) if earlier.get("command") == command else [])
    record.save()
    _RECORDING.append(record)
    try:
        yield directory
    finally:
        _RECORDING.remove(record)
        if not record.files:  # nothing written (an early error): leave no trace
            (directory / RUN_MANIFEST).unlink(missing_ok=True)
            if created:
                try:
                    directory.rmdir()
                except OSError:  # something else appeared in it meanwhile
                    pass
