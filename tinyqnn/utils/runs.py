"""Run folders: the manifest (``tinyqnn-run.json``) that says which files a tinyqnn command wrote in a
folder, so that a later run replaces only those and never a user's own file."""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

from .atomic import _RECORDING, atomic_path, clean_stale_parts


#: The manifest a command keeps in its output folder: which files tinyqnn wrote there (and may replace).
RUN_MANIFEST = "tinyqnn-run.json"


class RunFolderError(ValueError):
    """An output folder holds something a command must not replace without being told to."""


class _RunRecord:
    """The manifest of one run folder; ``atomic_path`` asks it before replacing a file inside the folder
    (``check_replace``) and reports every file it completes there (``record``)."""

    def __init__(self, directory: Path, command: str, files: list[str], listed: list[str],
                 replace_unlisted: bool = False):
        self.directory, self.command, self.files = directory, command, set(files)
        self.listed = set(listed)  # what any tinyqnn command had recorded here when the run began
        self.replace_unlisted = replace_unlisted

    def _relative(self, dest: Path) -> str | None:
        try:
            return dest.resolve().relative_to(self.directory.resolve()).as_posix()
        except ValueError:  # written outside this run's folder
            return None

    def check_replace(self, dest: Path) -> None:
        """Refuse to replace a file inside the run folder that no tinyqnn run recorded: the user's own."""
        rel = self._relative(dest)
        if rel is None or rel == RUN_MANIFEST or self.replace_unlisted or rel in self.files or rel in self.listed:
            return
        if dest.exists() or dest.is_symlink():
            raise RunFolderError(f"{dest} already exists and was not written by tinyqnn {self.command} "
                                 f"(it is not listed in {self.directory / RUN_MANIFEST}); move it away, choose "
                                 "another --out, or pass --force to replace it")

    def record(self, dest: Path) -> None:
        rel = self._relative(dest)
        if rel is not None and rel != RUN_MANIFEST and rel not in self.files:
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
def recording_run(directory: str | os.PathLike, command: str, replace_unlisted: bool = False) -> Iterator[Path]:
    """Mark ``directory`` as a tinyqnn run of ``command`` and record in its manifest every file that
    ``atomic_path`` completes inside it until the block ends (files of an earlier run are kept listed).

    Inside the block, ``atomic_path`` refuses (``RunFolderError``) to replace a file in the folder that no
    tinyqnn run listed there: a user's own file of the same name. ``replace_unlisted`` (the command's
    ``--force``, or a run from before manifests) lets it replace such files.
    The manifest is written before anything else, so a run that is killed still marks its folder.
    """
    directory = Path(directory)
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    earlier = run_manifest(directory) or {}
    listed = earlier.get("files", [])
    # another command's files are not this run's to replace later: start a new list then
    record = _RunRecord(directory, command, listed if earlier.get("command") == command else [], listed,
                        replace_unlisted)
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


def refuse_foreign(out: str | os.PathLike, command: str) -> NoReturn:
    """Raise the ``RunFolderError`` for a non-empty ``out`` that is not a run of ``command``."""
    manifest = run_manifest(out)
    what = f"a tinyqnn {manifest['command']} run" if manifest else "not a tinyqnn run"
    raise RunFolderError(f"{out} is not empty and is not a {command} run ({what}: {describe_folder(out)}); "
                         f"{command} writes only into a new or empty folder or one of its own runs: choose "
                         f"another --out, or pass --force to write into it anyway (only {command}'s own files "
                         "are replaced, nothing else is touched)")


def claim_folder(out: str | os.PathLike, command: str, force: bool = False, writes: tuple[str, ...] = ()) -> None:
    """Check, before any work, that ``command`` may write into the folder ``out`` (``RunFolderError`` if not).

    A new or empty folder, or one of ``command``'s own runs, may be written into; any other non-empty folder
    needs ``force``. ``writes``: the relative paths the command will write; one that exists there but no
    tinyqnn run recorded (a user's own file of that name) also needs ``force``.
    """
    if folder_state(out, command) == "foreign" and not force:
        refuse_foreign(out, command)
    if force:
        return
    listed = set((run_manifest(out) or {"files": []})["files"])
    clash = [rel for rel in writes if rel not in listed and (path := _inside(Path(out), rel)) is not None
             and (path.exists() or path.is_symlink())]
    if clash:
        raise RunFolderError(f"{out} holds {', '.join(clash)}, which tinyqnn {command} did not write and would "
                             "replace; move it away, choose another --out, or pass --force")


@contextmanager
def output_folder(out: str | os.PathLike, command: str, force: bool = False,
                  writes: tuple[str, ...] = ()) -> Iterator[Path]:
    """The run-manifest rule for a command that writes its results into the folder ``out``: ``claim_folder``,
    then ``recording_run``. Rerunning replaces only the files the earlier run recorded; a user's file under a
    name the command writes is never replaced without ``force``, even one the command did not announce."""
    claim_folder(out, command, force, writes)
    with recording_run(out, command, replace_unlisted=force) as directory:
        yield directory


def output_file(path: str | os.PathLike, command: str, is_own: Callable[[Path], bool], force: bool = False,
                inputs: tuple[str | os.PathLike, ...] = ()) -> Path:
    """Check that a command may write its single output file ``path``; returns it as a Path.

    Refused (``RunFolderError``): a path that is one of the command's ``inputs`` (always: that would destroy
    what it reads), a folder, and an existing file that ``is_own`` does not recognise as one this kind of
    command wrote (unless ``force``).
    """
    path = Path(path)
    for source in inputs:
        if path.exists() and Path(source).exists() and os.path.samefile(path, source):
            raise RunFolderError(f"--out {path} is the input {source}; {command} would replace what it reads: "
                                 "choose another --out")
    if path.is_dir():
        raise RunFolderError(f"--out {path} is a folder; {command} writes one file: name the file")
    if (path.exists() or path.is_symlink()) and not force and not is_own(path):
        raise RunFolderError(f"{path} already exists and is not a file tinyqnn {command} wrote; choose another "
                             "--out, or pass --force to replace it")
    return path


def written_by(path: Path, command: str) -> bool:
    """True if ``path`` is a JSON object whose ``tinyqnn_command`` is ``command`` (see ``tag``)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("tinyqnn_command") == command


def tag(payload: dict[str, Any], command: str) -> dict[str, Any]:
    """``payload`` marked as written by tinyqnn ``command``, so that a rerun may replace the file."""
    return {"tinyqnn_command": command, **payload}
