"""All-or-nothing file writes: bytes and matplotlib figures land complete or not at all.

A killed writer leaves only a ``.part`` file that the next write into the same folder removes; inside a run
folder (``tinyqnn.utils.runs``) every completed file is recorded in the run's manifest.
"""
from __future__ import annotations

import io
import os
import re
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

def _umask() -> int:
    mask = os.umask(0o022)  # the only portable way to read the umask is to set it and restore it
    os.umask(mask)
    return mask


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname()) or "host"


#: ``.<name>.tinyqnn-<host>-<pid>-<random>.part``: the temporary files of ``atomic_path``. The writer's host
#: and PID let a later run tell a killed writer's leftovers from a live writer's file.
_PART = re.compile(r"^\..+\.tinyqnn-(?P<host>[A-Za-z0-9._-]+)-(?P<pid>\d+)-[A-Za-z0-9_]+\.part$")
_CLEANED: set[str] = set()  # folders already swept by this process
#: the run folders being recorded now (``runs.recording_run``); each is told of every file completed here
_RECORDING: list[Any] = []


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
    for run in _RECORDING:  # inside a run folder: never a user's own file of the same name
        run.check_replace(dest)
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
        # mkstemp makes 0600; give the file the usual permissions, but always readable and writable by its
        # writer (Emscripten, under Pyodide in the browser course, reports a umask of 0o777)
        os.chmod(tmp, (0o666 & ~_umask()) | 0o600)
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
