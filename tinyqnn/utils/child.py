"""The environment of the child processes tinyqnn starts (notebook kernels, nbgrader, workers)."""
from __future__ import annotations

import os
import sys


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
