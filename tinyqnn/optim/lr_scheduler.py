"""Learning-rate schedules, in closed form of the epoch counter.

Convention (PyTorch's): create the scheduler after the optimizer, then once per epoch::

    for epoch in range(epochs):
        for x, y in loader: ...; optimizer.step()
        scheduler.step()

At construction ``last_epoch`` becomes 0 and each group's lr is the schedule at 0 (its initial lr,
remembered as ``group["initial_lr"]``); after k calls of ``step()`` it is the schedule at epoch k.
The lr is recomputed from ``initial_lr`` every time, so manual edits of ``group["lr"]`` are overwritten.
"""
from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from .optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses implement ``lr_at(base_lr, epoch)``.

    Args:
        optimizer: whose ``param_groups[i]["lr"]`` is set.
        last_epoch: -1 for a fresh run; to resume, pass the epoch reached (the groups must then
            already hold ``initial_lr``, e.g. from a loaded optimizer state dict) or use load_state_dict.
    """

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} needs an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        for i, group in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError(f"param_groups[{i}] has no 'initial_lr' to resume from (last_epoch={last_epoch})")
        self.base_lrs: list[float] = [float(g["initial_lr"]) for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def get_lr(self) -> list[float]:
        """The schedule's lrs at ``last_epoch``."""
        return [self.lr_at(base, self.last_epoch) for base in self.base_lrs]

    def step(self) -> None:
        """Advance one epoch and write the new lr into every parameter group."""
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def get_last_lr(self) -> list[float]:
        """The lrs set by the latest ``step()`` (one per parameter group)."""
        return list(self._last_lr)

    def _hyper(self) -> dict[str, Any]:
        """Subclass hyper-parameters saved in the state dict (numbers or sequences of numbers)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Flat ``name -> number | np.ndarray`` (saveable with ``np.savez``, no pickle)."""
        out: dict[str, Any] = {
            "last_epoch": int(self.last_epoch),
            "base_lrs": np.asarray(self.base_lrs, dtype=np.float64),
            "last_lr": np.asarray(self._last_lr, dtype=np.float64),
        }
        for key, value in self._hyper().items():
            out[key] = np.asarray(value, dtype=np.float64) if isinstance(value, (list, tuple)) else value
        return out

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore from ``state_dict()``; the optimizer's lrs are set to the saved ``last_lr``."""
        n = len(self.optimizer.param_groups)
        base_lrs = np.asarray(state["base_lrs"], dtype=np.float64).reshape(-1)
        last_lr = np.asarray(state["last_lr"], dtype=np.float64).reshape(-1)
        if len(base_lrs) != n or len(last_lr) != n:
            raise ValueError(f"scheduler state has {len(base_lrs)} groups, the optimizer has {n}")
        for key, current in self._hyper().items():
            value = np.asarray(state[key])
            if isinstance(current, (list, tuple)):
                setattr(self, key, [type(current[0])(v) for v in value.reshape(-1)] if len(current) else [])
            else:
                setattr(self, key, type(current)(value.item()))
        self.last_epoch = int(np.asarray(state["last_epoch"]).item())
        self.base_lrs = [float(b) for b in base_lrs]
        self._last_lr = [float(v) for v in last_lr]
        for group, base, lr in zip(self.optimizer.param_groups, self.base_lrs, self._last_lr):
            group["initial_lr"], group["lr"] = base, lr


class StepLR(LRScheduler):
    """lr = initial_lr * gamma ** (epoch // step_size): decay by ``gamma`` every ``step_size`` epochs."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if not isinstance(step_size, int) or step_size <= 0:
            raise ValueError(f"StepLR step_size must be a positive integer, got {step_size!r}")
        self.step_size, self.gamma = step_size, float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)

    def _hyper(self) -> dict[str, Any]:
        return {"step_size": self.step_size, "gamma": self.gamma}


class MultiStepLR(LRScheduler):
    """lr = initial_lr * gamma ** (number of milestones <= epoch): decay at each listed epoch."""

    def __init__(self, optimizer: Optimizer, milestones: Iterable[int], gamma: float = 0.1, last_epoch: int = -1):
        milestones = [int(m) for m in milestones]
        if any(b <= a for a, b in zip(milestones, milestones[1:])) or any(m < 0 for m in milestones):
            raise ValueError(f"MultiStepLR milestones must be non-negative and strictly increasing, got {milestones}")
        self.milestones, self.gamma = milestones, float(gamma)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** bisect_right(self.milestones, epoch)

    def _hyper(self) -> dict[str, Any]:
        return {"milestones": list(self.milestones), "gamma": self.gamma}


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2.

    Falls from initial_lr to eta_min over T_max epochs (SGDR without restarts; periodic beyond T_max,
    like PyTorch's closed form).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):  # noqa: N803
        if not isinstance(T_max, int) or T_max <= 0:
            raise ValueError(f"CosineAnnealingLR T_max must be a positive integer, got {T_max!r}")
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return self.eta_min + (base_lr - self.eta_min) * (1 + math.cos(math.pi * epoch / self.T_max)) / 2

    def _hyper(self) -> dict[str, Any]:
        return {"T_max": self.T_max, "eta_min": self.eta_min}


__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR"]
