"""Matrix product (with NumPy's batching and broadcasting rules)."""
from __future__ import annotations

import numpy as np

from ..function import Context, Function
from ._util import unbroadcast


class MatMul(Function):
    """``a @ b``. 1-D operands are treated as a row (a) or column (b) vector, as in NumPy."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul needs tensors with at least one dimension; use * for scalars")
        if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
            raise ValueError(f"matmul shape mismatch: {a.shape} @ {b.shape} (inner dimensions differ)")
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul shape mismatch: {a.shape} @ {b.shape} (batch dimensions {a.shape[:-2]} and "
                f"{b.shape[:-2]} do not broadcast)"
            ) from None
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        a, b = ctx.saved_tensors
        a2 = a[None, :] if a.ndim == 1 else a  # promote vectors to matrices as forward did
        b2 = b[:, None] if b.ndim == 1 else b
        # re-insert the vector axes forward dropped: p (last) first, then m (before p), so that
        # vector @ vector, whose gradient is 0-d, becomes (1, 1)
        g = grad[..., None] if b.ndim == 1 else grad
        if a.ndim == 1:
            g = g[..., None, :]
        ga = gb = None
        if ctx.needs_input_grad[0]:  # dL/da = dL/dout @ b^T
            ga = unbroadcast(g @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:  # dL/db = a^T @ dL/dout
            gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g, b2.shape).reshape(b.shape)
        return ga, gb
