"""Adam and AdamW (PyTorch's formulation)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..engine import Tensor
from .optimizer import Optimizer, ParamsT


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), exactly as ``torch.optim.Adam``. At step t, for gradient g:

        g <- g + weight_decay * p                       (L2 penalty; AdamW decouples it instead)
        m <- beta1 * m + (1 - beta1) * g                 (first moment)
        v <- beta2 * v + (1 - beta2) * g^2               (second moment)
        m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)     (undo the zero initialisation)
        p <- p - lr * m_hat / (sqrt(v_hat) + eps)

    With ``amsgrad=True`` the running maximum of v replaces v in the denominator.

    Args:
        params: parameters or parameter groups.
        lr: learning rate (>= 0).
        betas: (beta1, beta2), each in [0, 1).
        eps: added to the denominator (>= 0).
        weight_decay: L2 coefficient (>= 0).
        amsgrad: use the AMSGrad variant.
    """

    decoupled_weight_decay = False

    def __init__(
        self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        weight_decay: float = 0.0, amsgrad: bool = False,
    ):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        betas = tuple(group["betas"])
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"invalid betas {group['betas']}: need two values, each in [0, 1)")
        group["betas"] = betas
        if group["eps"] < 0:
            raise ValueError(f"invalid eps: {group['eps']} (must be >= 0)")
        if group["weight_decay"] < 0:
            raise ValueError(f"invalid weight_decay: {group['weight_decay']} (must be >= 0)")

    def _update(self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]) -> None:
        dtype = p.dtype
        lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(p.data)
            state["exp_avg_sq"] = np.zeros_like(p.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        if wd != 0:
            if self.decoupled_weight_decay:
                p.data *= dtype.type(1 - lr * wd)
            else:
                grad = grad + dtype.type(wd) * p.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= dtype.type(beta1)
        m += dtype.type(1 - beta1) * grad
        v *= dtype.type(beta2)
        v += dtype.type(1 - beta2) * grad * grad
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        denom = np.sqrt(v) / dtype.type(math.sqrt(bias_correction2)) + dtype.type(eps)
        p.data -= dtype.type(lr / bias_correction1) * m / denom


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), as ``torch.optim.AdamW``:
    ``p <- p * (1 - lr * weight_decay)`` before the Adam step, instead of adding the L2 term to g.
    """

    decoupled_weight_decay = True

    def __init__(
        self, params: ParamsT, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
        weight_decay: float = 1e-2, amsgrad: bool = False,
    ):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
