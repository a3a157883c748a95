"""Stochastic gradient descent with momentum (PyTorch's formulation)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Tensor
from .optimizer import Optimizer, ParamsT


class SGD(Optimizer):
    """SGD, exactly as ``torch.optim.SGD``. For each parameter p with gradient g:

        g <- g + weight_decay * p                     (L2 penalty folded into the gradient)
        b <- g                          on the first step,
        b <- momentum * b + (1 - dampening) * g       afterwards
        g <- g + momentum * b   if nesterov   else   g <- b      (only when momentum != 0)
        p <- p - lr * g

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        momentum: mu (>= 0); 0 is plain SGD.
        dampening: scales the new gradient inside the momentum buffer.
        weight_decay: L2 coefficient (>= 0).
        nesterov: Nesterov momentum (needs momentum > 0 and dampening = 0).
    """

    def __init__(
        self, params: ParamsT, lr: float, momentum: float = 0.0, dampening: float = 0.0,
        weight_decay: float = 0.0, nesterov: bool = False,
    ):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        if group["momentum"] < 0:
            raise ValueError(f"invalid momentum: {group['momentum']} (must be >= 0)")
        if group["weight_decay"] < 0:
            raise ValueError(f"invalid weight_decay: {group['weight_decay']} (must be >= 0)")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(
                f"Nesterov momentum needs momentum > 0 and dampening = 0, got momentum={group['momentum']}, "
                f"dampening={group['dampening']}"
            )

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        dtype = p.dtype
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        if wd != 0:
            grad = grad + dtype.type(wd) * p.data
        if mu != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(grad, dtype=dtype, copy=True)
            else:
                buf *= dtype.type(mu)
                buf += dtype.type(1 - group["dampening"]) * grad
            grad = grad + dtype.type(mu) * buf if group["nesterov"] else buf
        p.data -= dtype.type(lr) * grad
