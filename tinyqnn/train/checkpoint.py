"""Checkpoints as plain ``.npz`` files: loadable with ``allow_pickle=False``, written atomically.

Layout of the archive:
- ``model/<parameter or buffer name>``: arrays of ``model.state_dict()``;
- ``optimizer/<key>`` and ``scheduler/<key>``: their (flat, numeric) state dicts, when given;
- ``meta``: a JSON string (epoch, history, configuration, format version).
"""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..utils import atomic_write_bytes

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, corrupt, or does not fit the model it is loaded into."""


def _flatten(prefix: str, state: dict[str, Any]) -> dict[str, np.ndarray]:
    out = {}
    for key, value in state.items():
        array = np.asarray(value)
        if array.dtype == object:
            raise CheckpointError(f"cannot store {prefix}/{key} of type {type(value).__name__} without pickle")
        out[f"{prefix}/{key}"] = array
    return out


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: Any = None,
    scheduler: Any = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write model (and optimizer/scheduler) state plus JSON ``meta`` to ``path`` atomically."""
    path = Path(path)
    arrays = _flatten("model", model.state_dict())
    if optimizer is not None:
        arrays.update(_flatten("optimizer", optimizer.state_dict()))
    if scheduler is not None:
        arrays.update(_flatten("scheduler", scheduler.state_dict()))
    info = {"format_version": FORMAT_VERSION, **(meta or {})}
    arrays["meta"] = np.array(json.dumps(info))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _read_archive(path: Path) -> dict[str, np.ndarray]:
    """Every array of the checkpoint at ``path`` (no pickle), or a ``CheckpointError`` naming the file."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise CheckpointError(f"checkpoint {path} is not a readable .npz archive ({error})") from None


def _meta_of(path: Path, meta: np.ndarray | None) -> dict[str, Any]:
    if meta is None:
        raise CheckpointError(f"checkpoint {path} has no 'meta' entry; was it written by tinyqnn.save_checkpoint?")
    return json.loads(str(meta))


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The JSON ``meta`` of a checkpoint (epoch, history, configuration) without loading it into a model."""
    path = Path(path)
    return _meta_of(path, _read_archive(path).get("meta"))


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: Any = None,
    scheduler: Any = None,
    strict: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` into ``model`` (and optimizer/scheduler).

    Returns the JSON ``meta`` dict. Raises ``CheckpointError`` naming the file and the problem
    (missing file, not an npz, missing or unexpected parameter names, shape mismatches).
    """
    path = Path(path)
    contents = _read_archive(path)
    meta = _meta_of(path, contents.pop("meta", None))

    def part(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix) + 1 :]: v for k, v in contents.items() if k.startswith(prefix + "/")}

    try:
        model.load_state_dict(part("model"), strict=strict)
        if optimizer is not None:
            optimizer.load_state_dict({k: (v.item() if v.ndim == 0 else v) for k, v in part("optimizer").items()})
        if scheduler is not None:
            scheduler.load_state_dict({k: (v.item() if v.ndim == 0 else v) for k, v in part("scheduler").items()})
    except (KeyError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"checkpoint {path} does not fit: {error}") from None
    return meta
