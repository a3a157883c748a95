"""``Tensor``: an n-dimensional array that remembers how it was computed.

Reverse-mode autodiff in one place: ``Tensor.backward`` sorts the graph topologically (iteratively, so
a 10,000-op chain is fine) and calls each node's ``Function.backward`` once, summing the gradients of
every path into a node. Leaves (tensors created by the user with ``requires_grad=True``) accumulate
into ``.grad`` across calls, exactly like PyTorch; call ``zero_grad`` on the optimizer to reset them.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import buffers

from .grad_mode import no_grad

DEFAULT_DTYPE = np.float32

ArrayLike = Any  # anything np.asarray accepts


class Tensor:
    """An array plus the autograd bookkeeping.

    Args:
        data: array-like. Python floats/ints and lists become float32; float NumPy arrays keep
            their dtype (float32 or float64); integer/bool arrays keep theirs (for labels, masks).
        requires_grad: make this a leaf whose gradient is accumulated into ``.grad``.
        dtype: optional explicit dtype.
    """

    __array_priority__ = 1000  # so ndarray <op> Tensor defers to Tensor's reflected operators

    def __init__(self, data: ArrayLike, requires_grad: bool = False, dtype: Any = None, *, _copy: bool = True):
        if isinstance(data, Tensor):
            data = data.data
        if dtype is not None:
            array = np.array(data, dtype=dtype, copy=_copy or None)
        elif isinstance(data, np.ndarray | np.generic):
            array = np.array(data, copy=_copy or None)
        else:  # Python numbers and lists: floats become float32, ints int64 (as in torch.tensor)
            array = np.asarray(data)
            if array.dtype.kind == "f":
                array = array.astype(DEFAULT_DTYPE)
        if array.dtype.kind not in "fiub":
            raise TypeError(f"Tensor holds numbers, got an array of dtype {array.dtype}")
        if requires_grad and array.dtype.kind != "f":
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {array.dtype}")
        self.data: np.ndarray = array
        self.requires_grad: bool = bool(requires_grad)
        self.grad: Tensor | None = None
        self._fn: type | None = None  # the Function that produced this tensor (None for leaves)
        self._ctx = None
        self._inputs: tuple = ()
        self._retains_grad = False

    # ------------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        return self._fn is None

    def is_floating_point(self) -> bool:
        return self.data.dtype.kind == "f"

    def numpy(self) -> np.ndarray:
        """The underlying array (no copy); refuses while the tensor is part of a graph."""
        if self.requires_grad:
            raise RuntimeError("call .detach().numpy() on a tensor that requires grad")
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {self.shape}")
        return self.data.item()

    def tolist(self) -> Any:
        return self.data.tolist()

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype)

    def __len__(self) -> int:
        return len(self.data)

    def __bool__(self) -> bool:
        # without this, ``if t > 0:`` would fall back to __len__ and be True for any 1-element tensor
        return bool(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", precision=4, threshold=20)
        extra = f", grad_fn={self._fn.__name__}" if self._fn else (", requires_grad=True" if self.requires_grad else "")
        return f"tensor({body}, dtype={self.dtype}{extra})"

    def detach(self) -> Tensor:
        """Same data (shared), cut from the graph."""
        return Tensor(self.data, _copy=False)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and not self.is_floating_point():
            raise TypeError(f"only floating-point tensors can require gradients, got dtype {self.dtype}")
        if not self.is_leaf:
            raise RuntimeError("requires_grad_ can only change leaf tensors; use detach() first")
        self.requires_grad = flag
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after ``backward`` (for inspection)."""
        self._retains_grad = True

    def to(self, dtype: Any) -> Tensor:
        """Explicit dtype conversion (differentiable)."""
        return _ops.Cast.apply(self, dtype=np.dtype(dtype))

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    # ------------------------------------------------------------------ autograd
    def backward(self, gradient: ArrayLike | None = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad``.

        Args:
            gradient: dLoss/dself, same shape as self; may be omitted for a one-element tensor.
            retain_graph: keep saved arrays so that ``backward`` can run through this graph again.
        """
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad (did you build it under no_grad?)")
        if gradient is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without an argument needs a one-element tensor, got shape {self.shape}")
            seed = np.ones_like(self.data)
        else:
            seed = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient, dtype=self.dtype)
            if seed.shape != self.shape:
                raise ValueError(f"backward(gradient): gradient shape {seed.shape} does not match tensor shape {self.shape}")

        grads: dict[int, np.ndarray] = {id(self): seed}
        for node in reversed(self._topological_order()):
            grad = grads.pop(id(node), None)
            if grad is None:
                continue
            if node._fn is None or node._retains_grad:
                node._accumulate(grad)
            if node._fn is None:
                continue
            if node._ctx is None:
                raise RuntimeError(
                    "trying to backward through the graph a second time; pass retain_graph=True the first time"
                )
            input_grads = node._fn.backward(node._ctx, grad)
            if not isinstance(input_grads, tuple):
                input_grads = (input_grads,)
            if len(input_grads) != len(node._inputs):
                raise RuntimeError(
                    f"{node._fn.__name__}.backward returned {len(input_grads)} gradients for {len(node._inputs)} inputs"
                )
            for parent, g in zip(node._inputs, input_grads):
                if not isinstance(parent, Tensor) or not parent.requires_grad or g is None:
                    continue
                g = np.asarray(g)
                if g.shape != parent.shape:
                    raise RuntimeError(
                        f"{node._fn.__name__}.backward returned a gradient of shape {g.shape} "
                        f"for an input of shape {parent.shape}"
                    )
                if g.dtype != parent.dtype:
                    g = g.astype(parent.dtype)
                key = id(parent)
                if key in grads:  # a tensor used twice: sum its gradients (into tinyqnn's own reusable memory)
                    total = grads[key]
                    grads[key] = np.add(total, g, out=buffers.empty(np.broadcast_shapes(total.shape, g.shape),
                                                                    np.result_type(total, g)))
                else:
                    grads[key] = g
            if not retain_graph:
                node._ctx = None

    def _accumulate(self, grad: np.ndarray) -> None:
        if self.grad is None:
            self.grad = Tensor(np.array(grad, dtype=self.dtype), _copy=False)
        else:
            self.grad = Tensor(self.grad.data + grad, _copy=False)

    def _topological_order(self) -> list[Tensor]:
        """Nodes reachable from self, each after all of its inputs (iterative depth-first search)."""
        order: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, inputs_done = stack.pop()
            if inputs_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for parent in node._inputs:
                if isinstance(parent, Tensor) and parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
        return order

    # ------------------------------------------------------------------ operators
    def __add__(self, other: ArrayLike) -> Tensor:
        return _ops.add(self, other)

    def __radd__(self, other: ArrayLike) -> Tensor:
        return _ops.add(other, self)

    def __sub__(self, other: ArrayLike) -> Tensor:
        return _ops.sub(self, other)

    def __rsub__(self, other: ArrayLike) -> Tensor:
        return _ops.sub(other, self)

    def __mul__(self, other: ArrayLike) -> Tensor:
        return _ops.mul(self, other)

    def __rmul__(self, other: ArrayLike) -> Tensor:
        return _ops.mul(other, self)

    def __truediv__(self, other: ArrayLike) -> Tensor:
        return _ops.div(self, other)

    def __rtruediv__(self, other: ArrayLike) -> Tensor:
        return _ops.div(other, self)

    def __neg__(self) -> Tensor:
        return _ops.neg(self)

    def __pow__(self, exponent: ArrayLike) -> Tensor:
        return _ops.pow(self, exponent)

    def __rpow__(self, base: ArrayLike) -> Tensor:
        return _ops.pow(base, self)

    def __matmul__(self, other: ArrayLike) -> Tensor:
        return _ops.matmul(self, other)

    def __rmatmul__(self, other: ArrayLike) -> Tensor:
        return _ops.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return _ops.getitem(self, index)

    # comparisons are not differentiable: they return plain boolean tensors
    def __lt__(self, other: ArrayLike) -> Tensor:
        return Tensor(self.data < _raw(other), _copy=False)

    def __le__(self, other: ArrayLike) -> Tensor:
        return Tensor(self.data <= _raw(other), _copy=False)

    def __gt__(self, other: ArrayLike) -> Tensor:
        return Tensor(self.data > _raw(other), _copy=False)

    def __ge__(self, other: ArrayLike) -> Tensor:
        return Tensor(self.data >= _raw(other), _copy=False)

    def eq(self, other: ArrayLike) -> Tensor:
        """Elementwise equality (``==`` keeps identity semantics so tensors stay hashable)."""
        return Tensor(self.data == _raw(other), _copy=False)

    __hash__ = object.__hash__

    # ------------------------------------------------------------------ methods (thin wrappers over ops)
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return _ops.mean(self, axis, keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return _ops.max(self, axis, keepdims)

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return _ops.min(self, axis, keepdims)

    def var(self, axis: int | Sequence[int] | None = None, keepdims: bool = False, correction: int = 1) -> Tensor:
        return _ops.var(self, axis, keepdims, correction)

    def argmax(self, axis: int | None = None) -> Tensor:
        return Tensor(np.argmax(self.data, axis=axis), _copy=False)

    def exp(self) -> Tensor:
        return _ops.exp(self)

    def log(self) -> Tensor:
        return _ops.log(self)

    def sqrt(self) -> Tensor:
        return _ops.sqrt(self)

    def abs(self) -> Tensor:
        return _ops.abs(self)

    def clip(self, min: float | None = None, max: float | None = None) -> Tensor:
        return _ops.clip(self, min, max)

    def relu(self) -> Tensor:
        return _ops.relu(self)

    def sigmoid(self) -> Tensor:
        return _ops.sigmoid(self)

    def tanh(self) -> Tensor:
        return _ops.tanh(self)

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return _ops.reshape(self, _shape_args(shape))

    def view(self, *shape: int | Sequence[int]) -> Tensor:
        return _ops.reshape(self, _shape_args(shape))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        return _ops.transpose(self, dim0, dim1)

    def permute(self, *dims: int | Sequence[int]) -> Tensor:
        return _ops.permute(self, _shape_args(dims))

    @property
    def T(self) -> Tensor:
        return _ops.permute(self, tuple(reversed(range(self.ndim))))


def _shape_args(args: tuple) -> tuple[int, ...]:
    """Accept both ``t.reshape(2, 3)`` and ``t.reshape((2, 3))``."""
    if len(args) == 1 and isinstance(args[0], Sequence | np.ndarray):
        return tuple(int(a) for a in args[0])
    return tuple(int(a) for a in args)


def _raw(x: ArrayLike) -> Any:
    return x.data if isinstance(x, Tensor) else x


def as_tensor(x: ArrayLike, like: Tensor | None = None) -> Tensor:
    """``x`` as a Tensor; scalars and arrays take ``like``'s dtype so float32 code stays float32."""
    if isinstance(x, Tensor):
        return x
    if like is not None and like.is_floating_point():
        return Tensor(np.asarray(x, dtype=like.dtype), _copy=False)
    return Tensor(x)


# ---------------------------------------------------------------------- factories
def tensor(data: ArrayLike, requires_grad: bool = False, dtype: Any = None) -> Tensor:
    """Create a tensor (copies ``data``), like ``torch.tensor``."""
    return Tensor(data, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape: int | Sequence[int], dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape_args(shape), dtype=dtype), requires_grad=requires_grad, _copy=False)


def ones(*shape: int | Sequence[int], dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape_args(shape), dtype=dtype), requires_grad=requires_grad, _copy=False)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros_like(t.data), requires_grad=requires_grad, _copy=False)


def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones_like(t.data), requires_grad=requires_grad, _copy=False)


def randn(*shape: int | Sequence[int], dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from tinyqnn's seeded generator (see ``manual_seed``)."""
    from .random import default_generator

    data = default_generator().standard_normal(_shape_args(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad, _copy=False)


def rand(*shape: int | Sequence[int], dtype: Any = DEFAULT_DTYPE, requires_grad: bool = False) -> Tensor:
    """Uniform [0, 1) samples from tinyqnn's seeded generator."""
    from .random import default_generator

    data = default_generator().random(_shape_args(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad, _copy=False)


def arange(*args: float, dtype: Any = DEFAULT_DTYPE) -> Tensor:
    return Tensor(np.arange(*args, dtype=dtype), _copy=False)


from . import ops as _ops  # noqa: E402  (ops import Tensor; bind them last)

__all__ = [
    "Tensor", "tensor", "as_tensor", "zeros", "ones", "zeros_like", "ones_like", "randn", "rand", "arange", "no_grad",
]
