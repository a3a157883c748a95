"""Elementwise operations: each a forward rule and its local derivative.

Binary ops broadcast like NumPy; their backward sums the gradient back to each input's shape
(``unbroadcast``).
"""
from __future__ import annotations

import numpy as np

from .. import buffers
from ..function import Context, Function
from ..parallel import elementwise
from ._util import unbroadcast


class Add(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.shapes = a.shape, b.shape
        return np.add(a, b, out=buffers.empty(np.broadcast_shapes(a.shape, b.shape), np.result_type(a, b)))

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        sa, sb = ctx.shapes  # d(a+b)/da = d(a+b)/db = 1
        return unbroadcast(grad, sa), unbroadcast(grad, sb)


class Sub(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.shapes = a.shape, b.shape
        return a - b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        sa, sb = ctx.shapes
        return unbroadcast(grad, sa), unbroadcast(-grad, sb)


class Mul(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        a, b = ctx.saved_tensors  # d(ab)/da = b, d(ab)/db = a
        ga = unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return a / b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        a, b = ctx.saved_tensors  # d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        ga = unbroadcast(grad / b, a.shape) if ctx.needs_input_grad[0] else None
        gb = unbroadcast(-grad * a / (b * b), b.shape) if ctx.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        return -a

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        return -grad


class Pow(Function):
    """a ** b for tensors a, b (either may be a constant)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = a**b
        ctx.save_for_backward(a, b, out)
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        a, b, out = ctx.saved_tensors
        ga = gb = None
        zero = np.zeros((), dtype=grad.dtype)
        with np.errstate(divide="ignore", invalid="ignore"):
            if ctx.needs_input_grad[0]:  # d(a^b)/da = b a^(b-1); exactly 0 for b = 0 (a^(-1) is inf at a = 0)
                ga = unbroadcast(grad * np.where(b == 0, zero, b * a ** (b - 1)), a.shape)
            if ctx.needs_input_grad[1]:  # d(a^b)/db = a^b ln a (a > 0); 0 where a^b = 0 (ln 0 = -inf)
                gb = unbroadcast(grad * np.where(out == 0, zero, out * np.log(a)), b.shape)
        return ga, gb


class Exp(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (out,) = ctx.saved_tensors  # d e^a / da = e^a
        return grad * out


class Log(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a)
        return np.log(a)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (a,) = ctx.saved_tensors  # d ln a / da = 1/a
        return grad / a


class Sqrt(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (out,) = ctx.saved_tensors  # d sqrt(a)/da = 1 / (2 sqrt(a))
        return grad / (2 * out)


class Abs(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a)
        return np.abs(a)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (a,) = ctx.saved_tensors  # d|a|/da = sign(a), 0 at 0 (as in PyTorch)
        return grad * np.sign(a)


class Clip(Function):
    """Clamp to [lo, hi]; gradient 1 strictly inside or on the bounds, 0 outside (PyTorch's clamp)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, lo: float | None = None, hi: float | None = None) -> np.ndarray:
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"clip: min ({lo}) is larger than max ({hi})")
        mask = np.ones(a.shape, dtype=bool)
        if lo is not None:
            mask &= a >= lo
        if hi is not None:
            mask &= a <= hi
        ctx.save_for_backward(mask)
        return np.clip(a, lo, hi).astype(a.dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None


class Maximum(Function):
    """Elementwise max; on ties the gradient is split evenly between both inputs."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        a, b = ctx.saved_tensors
        share_a = ((a > b) + 0.5 * (a == b)).astype(grad.dtype)
        return unbroadcast(grad * share_a, a.shape), unbroadcast(grad * (1 - share_a), b.shape)


class Minimum(Function):
    """Elementwise min; on ties the gradient is split evenly between both inputs."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return np.minimum(a, b)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        a, b = ctx.saved_tensors
        share_a = ((a < b) + 0.5 * (a == b)).astype(grad.dtype)
        return unbroadcast(grad * share_a, a.shape), unbroadcast(grad * (1 - share_a), b.shape)


class Where(Function):
    """``where(condition, a, b)``: a where condition holds, else b; condition gets no gradient."""

    @staticmethod
    def forward(ctx: Context, condition: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        condition = np.asarray(condition, dtype=bool)
        ctx.save_for_backward(condition)
        ctx.shapes = a.shape, b.shape
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (condition,) = ctx.saved_tensors
        sa, sb = ctx.shapes
        zero = np.zeros((), dtype=grad.dtype)
        return None, unbroadcast(np.where(condition, grad, zero), sa), unbroadcast(np.where(condition, zero, grad), sb)


class Cast(Function):
    """Explicit dtype conversion; the gradient is converted back."""

    keeps_dtype = False

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, dtype: np.dtype) -> np.ndarray:
        ctx.in_dtype = a.dtype
        return a.astype(dtype)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        return grad.astype(ctx.in_dtype)


# ------------------------------------------------------------------ activations
class ReLU(Function):
    """max(a, 0); large arrays are split among threads (``tinyqnn.engine.parallel``)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        zero, out = a.dtype.type(0), buffers.empty_like(a)
        # max against an array of zeros, not the scalar: NumPy's vectorised loop (buffers.zeros_view)
        def relu(x: np.ndarray, o: np.ndarray) -> None:
            np.maximum(x, buffers.zeros_view(x.shape, x.dtype), out=o)

        if not ctx.needs_input_grad[0]:  # inference skips the mask: one pass instead of two
            elementwise(relu, a, out)
            return out
        mask = np.empty(a.shape, dtype=bool)  # 1 for a > 0, else 0: the local derivative
        elementwise(lambda x, o, m: (relu(x, o), np.greater(x, zero, out=m)), a, out, mask)
        ctx.save_for_backward(mask)
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (mask,) = ctx.saved_tensors
        dx = buffers.empty_like(grad)
        elementwise(lambda g, m, d: np.multiply(g, m, out=d), grad, mask, dx)
        return dx


class LeakyReLU(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, negative_slope: float = 0.01) -> np.ndarray:
        slope = np.where(a > 0, 1.0, negative_slope).astype(a.dtype)
        ctx.save_for_backward(slope)
        return a * slope

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (slope,) = ctx.saved_tensors
        return grad * slope, None


class Sigmoid(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        # exp of a non-positive number only, so large |a| neither overflows nor warns
        e = np.exp(-np.abs(a))
        out = np.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (s,) = ctx.saved_tensors  # s' = s (1 - s)
        return grad * s * (1 - s)


class Tanh(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        (t,) = ctx.saved_tensors  # tanh' = 1 - tanh^2
        return grad * (1 - t * t)
