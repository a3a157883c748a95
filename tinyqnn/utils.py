"""Small shared utilities: all-or-nothing file writes (bytes and matplotlib figures), child-process environments."""
from __future__ import annotations

import io
import os
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


@contextmanager
def atomic_path(dest: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; on clean exit rename it to ``dest``, on error delete it.

    The temporary file lives in the destination folder (same file system), so the final
    ``os.replace`` is atomic: readers see the old file or the complete new one, never half of it.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, dest)
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
