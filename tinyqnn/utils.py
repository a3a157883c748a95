"""Small shared utilities: all-or-nothing file writes (bytes and matplotlib figures), run folders that know
which files tinyqnn wrote, BLAS threads, child-process environments."""
from __future__ import annotations

import io
import json
import os
import re
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read the umask is to set it and restore it
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------- atomic writes
def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


#: ``.<name>.tinyqnn-<host>-<pid>-<random>.part``: the temporary files of ``atomic_path``. The writer's host
#: and PID let a later run tell a killed writer's leftovers from a live writer's file.
_PART = re.compile(r"^\..+\.tinyqnn-(?P<host>[A-Za-z0-9._-]+)-(?P<pid>\d+)-[A-Za-z0-9_]+\.part$")
_CLEANED: set[str] = set()  # folders already swept by this process


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: existence check only (POSIX)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as another user's process
        return True
    return True


def clean_stale_parts(directory: str | os.PathLike) -> list[Path]:
    """Delete the ``.part`` files that killed ``atomic_path`` writers left in ``directory``; returns them.

    Only names of tinyqnn's own pattern written on this host by a process that no longer exists are
    removed: another program's temporary files and a live (or other host's) writer's are never touched.
    """
    if os.name != "posix":  # os.kill(pid, 0) is not an existence check on Windows
        return []
    host, removed = _host_tag(), []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    for entry in entries:
        match = _PART.match(entry.name)
        if match and match["host"] == host and entry.is_file(follow_symlinks=False) \
                and not _pid_alive(int(match["pid"])):
            try:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
            except FileNotFoundError:  # another process swept it first
                pass
    return removed


@contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on clean exit rename it to ``dest``, on error delete it.

    The temporary file lives in the destination folder (same file system), so the final
    ``os.replace`` is atomic: readers see the old file or the complete new one, never half of it.
    A writer killed before the rename leaves its temporary file behind; the next write into that
    folder (once per process) removes such leftovers (``clean_stale_parts``). Inside a folder that
    ``recording_run`` marks, the finished file is added to the run's manifest.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    folder = str(dest.parent.resolve())
    if folder not in _CLEANED:
        _CLEANED.add(folder)
        clean_stale_parts(folder)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.tinyqnn-{_host_tag()}-{os.getpid()}-",
                                suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, dest)
        for run in _RECORDING:
            run.record(dest)
    finally:
        tmp.unlink(missing_ok=True)  # no-op after a successful rename


def atomic_write_bytes(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``path`` all-or-nothing (flushed to disk before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 110) -> None:
    """Write a matplotlib figure to ``path`` all-or-nothing (format from the suffix) and close it."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=dpi)
    finally:
        plt.close(fig)  # also on error: experiments draw many figures
    atomic_write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------------- run folders
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


_RECORDING: list[_RunRecord] = []


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


# ---------------------------------------------------------------------- threads and child processes
def set_num_threads(threads: int, blas_threads: int = 1) -> None:
    """Compute with ``threads`` threads in this process and in the processes it starts.

    tinyqnn's own worker threads share each large operation (``tinyqnn.engine.parallel``); NumPy's BLAS
    gets ``blas_threads``, by default one. tinyqnn's matrix products are small (LeNet-5: at most a few
    hundred by a few thousand), so splitting each one gains little, and on a busy machine OpenBLAS's idle
    threads spin-wait and slow every product several-fold; two kinds of threads on the same cores would
    also compete. Children inherit both (``TINYQNN_THREADS``, ``OPENBLAS_NUM_THREADS`` and kin).
    """
    for name, value in (("threads", threads), ("blas_threads", blas_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    from threadpoolctl import threadpool_limits

    from .engine import parallel

    parallel.THREADS = threads
    threadpool_limits(limits=blas_threads, user_api="blas")  # called, not entered: the limit stays in force
    os.environ["TINYQNN_THREADS"] = str(threads)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(blas_threads)  # children (notebook kernels, subprocesses) start with the same limits


def _positive_env(*names: str) -> int | None:
    for var in names:
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return None


def default_num_threads() -> int:
    """1, or what ``TINYQNN_THREADS`` asks for now (the user's explicit choice)."""
    from .engine.parallel import threads_from_env

    return threads_from_env()


def default_blas_threads() -> int:
    """1, or what ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` ask for (the user's explicit choice)."""
    return _positive_env("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") or 1


def get_num_threads() -> int | None:
    """The BLAS thread count NumPy uses now (the largest over its BLAS libraries), or None if unknown."""
    from threadpoolctl import threadpool_info

    counts = [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"]
    return max(counts) if counts else None


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a child process, with this interpreter's ``bin/`` first on PATH.

    Tools that a venv installs (``alembic``, which nbgrader shells out to; ``jupyter``) live beside the
    venv's ``python``. A learner who runs ``.venv/bin/python -m tinyqnn ...`` without activating the venv
    has a PATH without them, so every subprocess tinyqnn starts gets that folder prepended. The folder of
    ``sys.executable`` is used as given (not resolved): a venv's ``python`` is a symlink to the base
    interpreter, whose folder has none of the venv's tools.
    """
    env = dict(os.environ)
    bin_dir = os.path.dirname(sys.executable)
    parts = [p for p in env.get("PATH", "").split(os.pathsep) if p]
    if bin_dir and (not parts or parts[0] != bin_dir):
        env["PATH"] = os.pathsep.join([bin_dir, *parts])
    if extra:
        env.update(extra)
    return env
