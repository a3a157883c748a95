"""Compare analytic gradients with central differences, in float64."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .grad_mode import no_grad
from .tensor import Tensor


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` with a message naming the input, index, expected and received values."""


def numerical_grad(fn: Callable[..., Tensor], inputs: Sequence[Tensor], index: int, eps: float = 1e-6) -> np.ndarray:
    """Central differences of ``fn(*inputs).sum()`` with respect to ``inputs[index]`` (same shape)."""
    x = inputs[index]
    grad = np.zeros_like(x.data)
    if not x.data.flags.c_contiguous:  # reshape(-1) would copy and the perturbations would not reach fn
        raise ValueError("numerical_grad perturbs inputs in place; pass C-contiguous data (np.ascontiguousarray)")
    flat, gflat = x.data.reshape(-1), grad.reshape(-1)
    with no_grad():  # only values are needed, recording thousands of graphs would be wasted work
        for i in range(flat.size):
            saved = flat[i]
            flat[i] = saved + eps
            plus = float(np.asarray(fn(*inputs).data, dtype=np.float64).sum())
            flat[i] = saved - eps
            minus = float(np.asarray(fn(*inputs).data, dtype=np.float64).sum())
            flat[i] = saved
            gflat[i] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(
    fn: Callable[..., Tensor],
    *inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    seed: int = 0,
    raise_exception: bool = True,
) -> bool:
    """Check ``backward`` of ``fn`` against central differences.

    Inputs are copied to float64 (rounding error of float32 differences would swamp the check).
    The output is reduced with fixed random weights, ``(fn(*inputs) * w).sum()``, so that every
    output element is checked with a different weight (a plain sum could hide permuted gradients).

    Args:
        fn: function of tensors returning a tensor.
        *inputs: tensors or arrays; floating ones are checked, others passed through unchanged.
        eps: finite-difference step; atol/rtol: tolerance, as in ``np.allclose``.
    Returns:
        True when every gradient matches; otherwise raises ``GradcheckError`` (or returns False).
    """
    checked = [
        # C order: numerical_grad perturbs entries through a flat view (a transposed input would copy)
        Tensor(np.array(x.data if isinstance(x, Tensor) else x, dtype=np.float64, order="C"), requires_grad=True)
        if np.asarray(x.data if isinstance(x, Tensor) else x).dtype.kind == "f"
        else x
        for x in inputs
    ]
    out = fn(*checked)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    if out.dtype != np.float64:
        raise GradcheckError(f"gradcheck: fn turned float64 inputs into a {out.dtype} output")
    weights = np.random.default_rng(seed).uniform(0.5, 1.5, size=out.shape)

    def weighted(*xs: Tensor) -> Tensor:
        return (fn(*xs) * weights).sum()

    weighted(*checked).backward()
    for k, x in enumerate(checked):
        if not isinstance(x, Tensor) or not x.requires_grad:
            continue
        analytic = x.grad.data if x.grad is not None else np.zeros_like(x.data)
        with np.errstate(all="ignore"):
            numeric = numerical_grad(weighted, checked, k, eps)
        bad = ~np.isclose(analytic, numeric, atol=atol, rtol=rtol)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            message = (
                f"gradcheck failed for input {k} (shape {x.shape}) at index {where}: "
                f"central difference gives {numeric[where]:.6g}, backward gave {analytic[where]:.6g} "
                f"({int(bad.sum())} of {bad.size} entries differ; atol={atol}, rtol={rtol})"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True
