"""``Optimizer``: parameter groups, per-parameter state, and a pickle-free state dict.

Every optimizer keeps

* ``param_groups``: a list of dicts, each ``{"params": [Parameter, ...], "lr": ..., <hyper-parameters>}``,
  so that different parts of a model can use different settings (a scheduler edits ``group["lr"]``);
* ``defaults``: the hyper-parameters a group gets when it does not set its own;
* ``state``: ``Parameter -> dict`` of running buffers (momentum, Adam's moments, step counts).

Flat state dict (``state_dict()`` / ``load_state_dict()``): every value is an ``np.ndarray`` or a
Python number, so ``np.savez(path, **opt.state_dict())`` works and ``np.load(path, allow_pickle=False)``
reads it back. Keys (parameters are numbered 0, 1, ... across groups, in group order)::

    "param_groups.<g>.params"   int64 array of the indices of group g's parameters
    "param_groups.<g>.<name>"   hyper-parameter: float/int/bool, or a float array for tuples (betas)
    "state.<i>.<name>"          state of parameter i: array (e.g. momentum_buffer) or number (step)
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from ..engine import Tensor, no_grad

ParamsT = Iterable[Tensor] | Iterable[dict[str, Any]]


class Optimizer:
    """Base class: subclasses implement ``step`` and may override ``_check_group``.

    Args:
        params: an iterable of Parameters, or of dicts ``{"params": [...], **overrides}``.
        defaults: default hyper-parameters for every group.
    """

    def __init__(self, params: ParamsT, defaults: dict[str, Any]):
        if isinstance(params, Tensor):
            raise TypeError("params must be an iterable of Parameters (e.g. model.parameters()), got a single Tensor")
        self.defaults = dict(defaults)
        self.state: dict[Tensor, dict[str, Any]] = {}
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add a group (e.g. when unfreezing layers); missing hyper-parameters come from ``defaults``."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"a parameter group must be a dict with a 'params' entry, got {group!r:.80}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: parameter group {len(self.param_groups)} is empty")
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__} can only optimize Tensors, item {i} is a {type(p).__name__}")
            if not p.is_leaf or not p.is_floating_point():
                raise ValueError(f"{type(self).__name__} can only optimize floating-point leaf tensors (item {i})")
        existing = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or existing & {id(p) for p in params}:
            raise ValueError("a parameter appears more than once in the optimizer's parameter groups")
        full = {**self.defaults, **group, "params": params}
        self._check_group(full)
        self.param_groups.append(full)

    def _check_group(self, group: dict[str, Any]) -> None:
        """Validate one group's hyper-parameters (subclasses extend this)."""
        lr = group.get("lr")
        if lr is None or not isinstance(lr, (int, float, np.floating)) or lr < 0:
            raise ValueError(f"invalid learning rate: lr={lr!r} (must be a number >= 0)")

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every optimized parameter (None by default, zeros otherwise)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = Tensor(np.zeros_like(p.data), _copy=False)

    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """Update every parameter that has a gradient; ``closure`` re-evaluates and returns the loss."""
        loss = None
        if closure is not None:
            loss = closure()
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, p.grad.data, group, self.state.setdefault(p, {}))
        return loss

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        """Update ``p.data`` in place from ``grad`` (same dtype as p); ``state`` is p's own dict."""
        raise NotImplementedError

    # ------------------------------------------------------------------ state dict (flat, no pickle)
    def _indexed_params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict[str, np.ndarray | float | int | bool]:
        """Flat ``name -> array | number`` dict (see the module docstring for the keys)."""
        out: dict[str, Any] = {}
        index = 0
        for g, group in enumerate(self.param_groups):
            out[f"param_groups.{g}.params"] = np.arange(index, index + len(group["params"]), dtype=np.int64)
            for key, value in group.items():
                if key == "params" or value is None:
                    continue
                out[f"param_groups.{g}.{key}"] = _to_flat(value, f"param_groups.{g}.{key}")
            for p in group["params"]:
                for key, value in self.state.get(p, {}).items():
                    out[f"state.{index}.{key}"] = _to_flat(value, f"state.{index}.{key}")
                index += 1
        return out

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyper-parameters and state from ``state_dict()`` (or its ``np.load`` of an .npz).

        The optimizer must have been built over the same parameters in the same group layout.
        """
        groups: dict[int, dict[str, Any]] = {}
        states: dict[int, dict[str, Any]] = {}
        for key in state_dict.keys():
            parts = key.split(".", 2)
            if len(parts) != 3 or parts[0] not in ("param_groups", "state") or not parts[1].isdigit():
                raise KeyError(f"unexpected key {key!r} in optimizer state dict")
            target = groups if parts[0] == "param_groups" else states
            target.setdefault(int(parts[1]), {})[parts[2]] = state_dict[key]
        if sorted(groups) != list(range(len(self.param_groups))):
            raise ValueError(
                f"state dict has {len(groups)} parameter groups, this optimizer has {len(self.param_groups)}"
            )
        params = self._indexed_params()
        for g, group in enumerate(self.param_groups):
            saved = np.asarray(groups[g].get("params", [])).reshape(-1)
            if len(saved) != len(group["params"]):
                raise ValueError(
                    f"parameter group {g}: state dict has {len(saved)} parameters, optimizer has {len(group['params'])}"
                )
        if states and max(states) >= len(params):
            raise ValueError(f"state dict has state for parameter {max(states)}, optimizer has {len(params)} parameters")
        new_state: dict[Tensor, dict[str, Any]] = {}
        for i, entries in states.items():
            p = params[i]
            restored = {}
            for key, value in entries.items():
                value = np.asarray(value)
                if value.ndim == 0:
                    restored[key] = value.item()
                else:
                    if value.shape != p.shape:
                        raise ValueError(
                            f"state.{i}.{key}: expected shape {p.shape} (the parameter's), got {value.shape}"
                        )
                    restored[key] = value.astype(p.dtype if value.dtype.kind == "f" else value.dtype, copy=True)
            new_state[p] = restored
        for g, group in enumerate(self.param_groups):
            for key, value in groups[g].items():
                if key != "params":
                    group[key] = _from_flat(value, group.get(key))
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for g, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {g}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _to_flat(value: Any, key: str) -> np.ndarray | float | int | bool | str:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (bool, int, float, str, np.number, np.bool_)):
        return value.item() if isinstance(value, (np.number, np.bool_)) else value
    if isinstance(value, (tuple, list)):
        return np.asarray(value, dtype=np.float64)
    raise TypeError(f"{key}: cannot store a {type(value).__name__} in a flat state dict")


def _from_flat(value: Any, like: Any) -> Any:
    """Turn an array from a flat dict back into the type the group currently holds."""
    value = np.asarray(value)
    if isinstance(like, tuple):
        return tuple(float(v) for v in value.reshape(-1))
    if value.ndim != 0:
        return value.copy()
    item = value.item()
    if isinstance(like, bool):
        return bool(item)
    if isinstance(like, float) and not isinstance(item, str):
        return float(item)
    return item
