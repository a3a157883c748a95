"""Checkpoints as plain ``.npz`` files: loadable with ``allow_pickle=False``, written atomically.

Layout of the archive:
- ``model/<parameter or buffer name>``: arrays of ``model.state_dict()``;
- ``optimizer/<key>`` and ``scheduler/<key>``: their (flat, numeric) state dicts, when given;
- ``meta``: a JSON string (epoch, history, configuration, format version) whose ``"model"`` entry is
  ``tinyqnn.models.model_record(model)``: the architecture and every layer's quantization (bits, alpha,
  STE and its parameters, rounding rule, weight quantizer). ``load_checkpoint`` refuses a model whose
  quantization differs, and ``load_model`` rebuilds the exact model from it. Checkpoints written before
  the record existed (format 1) still load, unchecked.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from .. import nn
from ..models import build_model, model_record, record_differences
from ..utils import atomic_write_bytes, read_npz

FORMAT_VERSION = 2  # 2: meta["model"] records the architecture and quantization


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
    """Write model (and optimizer/scheduler) state plus JSON ``meta`` to ``path`` atomically.

    ``meta["model"]`` is set to ``model_record(model)`` (the architecture and every layer's quantization).
    """
    path = Path(path)
    arrays = _flatten("model", model.state_dict())
    if optimizer is not None:
        arrays.update(_flatten("optimizer", optimizer.state_dict()))
    if scheduler is not None:
        arrays.update(_flatten("scheduler", scheduler.state_dict()))
    info = {"format_version": FORMAT_VERSION, **(meta or {}), "model": model_record(model)}
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
        return read_npz(path)
    except (ValueError, OSError) as error:
        raise CheckpointError(f"checkpoint {path} {error}") from None


def _meta_of(path: Path, meta: np.ndarray | None) -> dict[str, Any]:
    """The checkpoint's JSON meta, checked: a CheckpointError naming the file if it is not what
    ``save_checkpoint`` writes (bad JSON, wrong types)."""
    if meta is None:
        raise CheckpointError(f"checkpoint {path} has no 'meta' entry; was it written by tinyqnn.save_checkpoint?")
    if meta.dtype.kind != "U" or meta.ndim != 0:
        raise CheckpointError(f"checkpoint {path}: 'meta' must be one JSON string, got a {meta.dtype} array "
                              f"of shape {meta.shape}")
    try:
        info = json.loads(str(meta))
    except ValueError as error:
        raise CheckpointError(f"checkpoint {path}: 'meta' is not valid JSON ({error})") from None
    if not isinstance(info, dict):
        raise CheckpointError(f"checkpoint {path}: 'meta' must be a JSON object, got {type(info).__name__}")
    expected = {"epoch": int, "history": list, "config": dict, "model": dict, "format_version": int}
    for key, kind in expected.items():
        value = info.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise CheckpointError(f"checkpoint {path}: meta[{key!r}] must be a {kind.__name__}, "
                                  f"got {type(value).__name__} {value!r:.60}")
    if "history" in info and not all(isinstance(row, dict) for row in info["history"]):
        raise CheckpointError(f"checkpoint {path}: meta['history'] must be a list of per-epoch dicts")
    if "model" in info and not isinstance(info["model"].get("layers"), dict):
        raise CheckpointError(f"checkpoint {path}: meta['model'] has no 'layers' dict")
    return info


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The JSON ``meta`` of a checkpoint (epoch, history, configuration, model record) without loading it."""
    path = Path(path)
    return _meta_of(path, _read_archive(path).get("meta"))


def _part(contents: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) + 1 :]: v for k, v in contents.items() if k.startswith(prefix + "/")}


def _load_into(
    path: Path, contents: dict[str, np.ndarray], meta: dict[str, Any], model: nn.Module, optimizer: Any,
    scheduler: Any, strict: bool, check_quantization: bool,
) -> dict[str, Any]:
    weights = _part(contents, "model")
    shapes = {k: v.shape for k, v in model.state_dict().items()}
    wrong = [f"{k}: expected {shapes[k]}, got {v.shape}"
             for k, v in weights.items() if k in shapes and v.shape != shapes[k]]
    if strict:
        wrong += [f"missing key {k}" for k in shapes if k not in weights]
        wrong += [f"unexpected key {k}" for k in weights if k not in shapes]
    if wrong:  # the most concrete problem first: names and shapes
        raise CheckpointError(f"checkpoint {path} does not fit {type(model).__name__}: " + "; ".join(wrong))
    record = meta.get("model")
    if check_quantization and record is not None:
        problems = record_differences(record, model_record(model), only_shared=not strict, quantized_only=True)
        if problems:
            raise CheckpointError(
                f"checkpoint {path} was trained as another model than the one it is loaded into: "
                + "; ".join(problems)
                + ". Build the recorded model with tinyqnn.train.load_model(path), or pass "
                "check_quantization=False to start a differently quantized model from these weights"
            )
    try:
        keys = model.load_state_dict(weights, strict=strict)
        for target, prefix in ((optimizer, "optimizer"), (scheduler, "scheduler")):
            if target is not None:  # numbers were stored as 0-d arrays
                state = _part(contents, prefix)
                target.load_state_dict({k: (v.item() if v.ndim == 0 else v) for k, v in state.items()})
    except (KeyError, ValueError, RuntimeError, TypeError) as error:
        text = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise CheckpointError(f"checkpoint {path} does not fit: {text}") from None
    return {**meta, "missing_keys": list(keys.missing_keys), "unexpected_keys": list(keys.unexpected_keys)}


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: Any = None,
    scheduler: Any = None,
    strict: bool = True,
    check_quantization: bool = True,
) -> dict[str, Any]:
    """Load a checkpoint written by ``save_checkpoint`` into ``model`` (and optimizer/scheduler).

    Args:
        strict: the checkpoint and the model must have exactly the same parameter names; with False,
            names only one side has are skipped and listed in the result (``missing_keys``: in the
            model, not in the file; ``unexpected_keys``: in the file, not in the model), and only layers
            both have are compared.
        check_quantization: refuse a model whose architecture arguments or per-layer quantization
            (bits, alpha, STE, rounding rule, weight quantizer; float vs quantized) differ from what the
            checkpoint records. False deliberately starts another setup from these weights (e.g. a
            quantized model from a float checkpoint). Old checkpoints without a record are not checked.
    Returns:
        the JSON ``meta`` dict, plus ``missing_keys`` and ``unexpected_keys`` (lists of names).
    Raises:
        CheckpointError naming the file and the problem (missing file, not an npz, invalid meta, another
        quantization, missing or unexpected parameter names, shape mismatches).
    """
    path = Path(path)
    contents = _read_archive(path)
    meta = _meta_of(path, contents.pop("meta", None))
    return _load_into(path, contents, meta, model, optimizer, scheduler, strict, check_quantization)


def _legacy_record(meta: dict[str, Any]) -> dict[str, Any] | None:
    """The model record of a format-1 checkpoint, from the configuration tinyqnn's CLI and grid stored."""
    from ..models import LeNet5

    config = meta.get("config") or {}
    if "cell" in config:  # a Table 1 grid cell: scale-free BN, ReLU or QuantAct(bits, alpha, ste, quantizer)
        model = LeNet5(batch_norm=True, bn_affine=False)
        record = model_record(model)
        if config.get("bits") is not None:
            act = {"type": "QuantAct", "bits": config["bits"], "ste": config["ste"], "alpha": config["alpha"],
                   "quantizer": config.get("quantizer") or "ceil"}
            record["layers"].update({name: dict(act) for name in LeNet5.activation_names})
        return record
    if "batch_norm" in config:  # `python -m tinyqnn train`: a float LeNet-5
        return model_record(LeNet5(batch_norm=bool(config["batch_norm"])))
    return None


def _check_sizes_against_arrays(path: Path, record: dict[str, Any], contents: dict[str, np.ndarray]) -> None:
    """A size argument of the record (``num_classes``, a width) counts values of some weight, so it cannot exceed
    the values the file's weights hold: a record that says so does not describe this file, and building it could
    exhaust the memory before the mismatch shows."""
    kwargs = record.get("kwargs") if isinstance(record, dict) else None
    stored = sum(int(v.size) for k, v in contents.items() if k.startswith("model/"))
    for key, value in (kwargs.items() if isinstance(kwargs, dict) else ()):
        if isinstance(value, int) and not isinstance(value, bool) and value > stored:
            raise CheckpointError(f"checkpoint {path}: its model record asks for {key}={value:,}, more than the "
                                  f"{stored:,} values its weights hold; the record does not describe this file")


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint was trained as (architecture, quantization) and load its weights.

    Returns ``(model, meta)``; the model is in eval mode (call ``.train()`` to train it further).
    Checkpoints without a model record (format 1) are rebuilt from the run configuration that
    ``python -m tinyqnn train`` and the Table 1 grid stored; others raise a ``CheckpointError``.
    """
    path = Path(path)
    contents = _read_archive(path)
    meta = _meta_of(path, contents.pop("meta", None))
    record = meta.get("model") or _legacy_record(meta)
    if record is None:
        raise CheckpointError(f"checkpoint {path} does not record which model it was trained as (it predates "
                              "model records); build the model yourself and use load_checkpoint(path, model)")
    _check_sizes_against_arrays(path, record, contents)
    try:
        model = build_model(record)
    except (ValueError, TypeError, KeyError) as error:
        raise CheckpointError(f"checkpoint {path}: cannot rebuild its model: {error}") from None
    meta = _load_into(path, contents, meta, model, None, None, strict=True, check_quantization=True)
    return model.eval(), meta
