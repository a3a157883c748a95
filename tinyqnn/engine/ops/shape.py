"""Operations that move elements around without changing them: their backward moves gradients back."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..function import Context, Function


class Reshape(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        ctx.shape = a.shape
        try:
            return a.reshape(shape)
        except ValueError:
            raise ValueError(f"cannot reshape a tensor of shape {a.shape} ({a.size} elements) into {shape}") from None

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        return grad.reshape(ctx.shape), None


class Permute(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
        # normalise negative dims first: argsort of (-1, 0, 1) would not invert the permutation (2, 0, 1)
        if any(not -a.ndim <= d < a.ndim for d in dims) or sorted(d % a.ndim for d in dims) != list(range(a.ndim)):
            raise ValueError(f"permute dims {dims} are not a permutation of the {a.ndim} axes of shape {a.shape}")
        ctx.dims = tuple(d % a.ndim for d in dims)
        return a.transpose(ctx.dims)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        return grad.transpose(np.argsort(ctx.dims)), None  # the inverse permutation


def _is_basic_index(index: Any) -> bool:
    """Slices, ints, None and Ellipsis select each element at most once (no fancy indexing)."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(isinstance(p, slice | int | np.integer | type(None) | type(Ellipsis)) for p in parts)


class GetItem(Function):
    @staticmethod
    def forward(ctx: Context, a: np.ndarray, index: Any) -> np.ndarray:
        ctx.shape, ctx.index = a.shape, index
        return np.asarray(a[index])

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        out = np.zeros(ctx.shape, dtype=grad.dtype)
        if _is_basic_index(ctx.index):
            out[ctx.index] = grad
        else:  # fancy indices may repeat an element: add, do not overwrite
            np.add.at(out, ctx.index, grad)
        return out, None


class Concatenate(Function):
    @staticmethod
    def forward(ctx: Context, *arrays: np.ndarray, axis: int = 0) -> np.ndarray:
        ctx.axis = axis
        try:
            out = np.concatenate(arrays, axis=axis)
        except ValueError as e:  # also AxisError (bad axis) and rank mismatches
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(f"cannot concatenate shapes {shapes} along axis {axis}: {e}") from None
        ctx.splits = np.cumsum([a.shape[axis] for a in arrays])[:-1]
        return out

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        return tuple(np.split(grad, ctx.splits, axis=ctx.axis))


class Stack(Function):
    @staticmethod
    def forward(ctx: Context, *arrays: np.ndarray, axis: int = 0) -> np.ndarray:
        ctx.axis = axis
        shapes = ", ".join(str(a.shape) for a in arrays)
        if any(a.shape != arrays[0].shape for a in arrays):
            raise ValueError(f"stack needs equal shapes, got {shapes}")
        if not -arrays[0].ndim - 1 <= axis <= arrays[0].ndim:
            raise ValueError(f"stack axis {axis} is out of range for shapes {shapes} (result has {arrays[0].ndim + 1} axes)")
        return np.stack(arrays, axis=axis)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        return tuple(np.moveaxis(grad, ctx.axis, 0))


class Pad(Function):
    """Constant padding; ``pad_width`` is NumPy's: one ``(before, after)`` pair per axis."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, pad_width: tuple[tuple[int, int], ...], value: float = 0.0) -> np.ndarray:
        if len(pad_width) != a.ndim or any(lo < 0 or hi < 0 for lo, hi in pad_width):
            raise ValueError(f"pad_width {pad_width} needs one non-negative (before, after) pair for each of {a.ndim} axes")
        ctx.crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(pad_width, a.shape))
        return np.pad(a, pad_width, constant_values=value)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray):
        return grad[ctx.crop], None, None
