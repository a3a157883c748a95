"""Small shared utilities: all-or-nothing file writes (bytes and matplotlib figures)."""
from __future__ import annotations

import io
import os
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
