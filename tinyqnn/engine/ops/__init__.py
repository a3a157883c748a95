"""The differentiable operations, as functions on tensors (``tinyqnn.exp(x)``, ``tinyqnn.matmul(a, b)``).

Each wraps one ``Function`` subclass; the operator overloads of ``Tensor`` call these.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..tensor import Tensor, as_tensor
from .elementwise import (
    Abs, Add, Cast, Clip, Div, Exp, LeakyReLU, Log, Maximum, Minimum, Mul, Neg, Pow, ReLU, Sigmoid, Sqrt, Sub, Tanh,
    Where,
)
from .linalg import MatMul
from .reduce import Max, Mean, Sum, Var
from .shape import Concatenate, GetItem, Pad, Permute, Reshape, Stack

Axis = int | Sequence[int] | None


def _pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    """Both operands as tensors; a plain number or array takes the dtype of the tensor beside it."""
    if isinstance(a, Tensor):
        return a, as_tensor(b, like=a)
    if isinstance(b, Tensor):
        return as_tensor(a, like=b), b
    return as_tensor(a), as_tensor(b)


def add(a: Any, b: Any) -> Tensor:
    return Add.apply(*_pair(a, b))


def sub(a: Any, b: Any) -> Tensor:
    return Sub.apply(*_pair(a, b))


def mul(a: Any, b: Any) -> Tensor:
    return Mul.apply(*_pair(a, b))


def div(a: Any, b: Any) -> Tensor:
    return Div.apply(*_pair(a, b))


def neg(a: Tensor) -> Tensor:
    return Neg.apply(as_tensor(a))


def pow(a: Any, b: Any) -> Tensor:  # noqa: A001  (mirrors torch.pow)
    return Pow.apply(*_pair(a, b))


def exp(a: Tensor) -> Tensor:
    return Exp.apply(as_tensor(a))


def log(a: Tensor) -> Tensor:
    return Log.apply(as_tensor(a))


def sqrt(a: Tensor) -> Tensor:
    return Sqrt.apply(as_tensor(a))


def abs(a: Tensor) -> Tensor:  # noqa: A001
    return Abs.apply(as_tensor(a))


def clip(a: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    return Clip.apply(as_tensor(a), min, max)


clamp = clip


def maximum(a: Any, b: Any) -> Tensor:
    return Maximum.apply(*_pair(a, b))


def minimum(a: Any, b: Any) -> Tensor:
    return Minimum.apply(*_pair(a, b))


def where(condition: Any, a: Any, b: Any) -> Tensor:
    a, b = _pair(a, b)
    cond = condition.data if isinstance(condition, Tensor) else condition
    return Where.apply(cond, a, b)


def relu(a: Tensor) -> Tensor:
    return ReLU.apply(as_tensor(a))


def leaky_relu(a: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU.apply(as_tensor(a), negative_slope)


def sigmoid(a: Tensor) -> Tensor:
    return Sigmoid.apply(as_tensor(a))


def tanh(a: Tensor) -> Tensor:
    return Tanh.apply(as_tensor(a))


def sum(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return Sum.apply(as_tensor(a), axis, keepdims)


def mean(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return Mean.apply(as_tensor(a), axis, keepdims)


def max(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return Max.apply(as_tensor(a), axis, keepdims)


def min(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    return neg(max(neg(a), axis, keepdims))


def var(a: Tensor, axis: Axis = None, keepdims: bool = False, correction: int = 1) -> Tensor:
    return Var.apply(as_tensor(a), axis, keepdims, correction)


def reshape(a: Tensor, shape: Sequence[int]) -> Tensor:
    return Reshape.apply(as_tensor(a), tuple(shape))


def flatten(a: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge axes ``start_dim..end_dim`` into one (``x.flatten(1)`` turns (N, C, H, W) into (N, C*H*W))."""
    a = as_tensor(a)
    if a.ndim == 0:
        return reshape(a, (1,))
    start, end = start_dim % a.ndim, end_dim % a.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for shape {a.shape}")
    return reshape(a, a.shape[:start] + (-1,) + a.shape[end + 1 :])


def permute(a: Tensor, dims: Sequence[int]) -> Tensor:
    return Permute.apply(as_tensor(a), tuple(dims))


def transpose(a: Tensor, dim0: int = -2, dim1: int = -1) -> Tensor:
    """Swap two axes (default: the last two, as for a matrix)."""
    a = as_tensor(a)
    if not (-a.ndim <= dim0 < a.ndim and -a.ndim <= dim1 < a.ndim):
        raise ValueError(f"transpose dims ({dim0}, {dim1}) are out of range for shape {a.shape}")
    dims = list(range(a.ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(a, dims)


def getitem(a: Tensor, index: Any) -> Tensor:
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem.apply(a, index)


def concatenate(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    if len(tensors) == 0:
        raise ValueError("concatenate needs at least one tensor")
    return Concatenate.apply(*tensors, axis=axis)


cat = concatenate


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    if len(tensors) == 0:
        raise ValueError("stack needs at least one tensor")
    return Stack.apply(*tensors, axis=axis)


def pad(a: Tensor, pad_width: int | Sequence[int] | Sequence[tuple[int, int]], value: float = 0.0) -> Tensor:
    """Constant padding with NumPy's ``pad_width``: one ``(before, after)`` pair per axis, or one pair
    / one int for every axis (``pad(x, 1)`` pads every side by 1)."""
    a = as_tensor(a)
    widths = np.asarray(pad_width)
    if widths.size == 0:  # a 0-d tensor: nothing to pad, () is its (empty) list of pairs
        widths = widths.astype(np.int64).reshape(0, 2)
    try:  # NumPy's rule: pad_width broadcasts to shape (ndim, 2)
        widths = np.broadcast_to(widths, (a.ndim, 2))
    except ValueError:
        raise ValueError(f"pad_width {pad_width} does not fit a tensor of shape {a.shape}: "
                         "give one (before, after) pair per axis") from None
    if widths.dtype.kind not in "iu":
        raise ValueError(f"pad_width {pad_width} must hold integers")
    return Pad.apply(a, tuple((int(lo), int(hi)) for lo, hi in widths), value)


def matmul(a: Any, b: Any) -> Tensor:
    return MatMul.apply(*_pair(a, b))


__all__ = [
    "add", "sub", "mul", "div", "neg", "pow", "exp", "log", "sqrt", "abs", "clip", "clamp", "maximum", "minimum",
    "where", "relu", "leaky_relu", "sigmoid", "tanh", "sum", "mean", "max", "min", "var", "reshape", "flatten",
    "permute", "transpose", "getitem", "concatenate", "cat", "stack", "pad", "matmul", "Cast",
]
