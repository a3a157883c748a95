"""``Function``: one differentiable operation = a forward rule + its local derivative.

A subclass implements two static methods on plain NumPy arrays::

    class Square(Function):
        @staticmethod
        def forward(ctx, x):              # x: ndarray
            ctx.save_for_backward(x)
            return x * x
        @staticmethod
        def backward(ctx, grad):          # grad: dLoss/dOutput, same shape as the output
            (x,) = ctx.saved_tensors
            return 2 * x * grad           # dLoss/dx, same shape as x

and is used as ``y = Square.apply(t)``. ``apply`` unwraps Tensors, runs ``forward`` and, when a
gradient is needed, records the node; ``Tensor.backward`` (the only graph traversal) calls
``backward``. ``backward`` returns one gradient per positional input of ``forward`` (``None`` for
inputs that are not Tensors or need no gradient).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .grad_mode import is_grad_enabled

if TYPE_CHECKING:
    from .tensor import Tensor


class Context:
    """What ``forward`` leaves for ``backward``: saved arrays and any attributes it sets."""

    def __init__(self, needs_input_grad: tuple[bool, ...]):
        self.needs_input_grad = needs_input_grad
        self.saved_tensors: tuple[Any, ...] = ()

    def save_for_backward(self, *arrays: Any) -> None:
        """Keep arrays needed by ``backward`` (read them back from ``ctx.saved_tensors``)."""
        self.saved_tensors = arrays


class Function:
    """Base class of every differentiable operation; see the module docstring."""

    #: forward must return the dtype of its floating inputs (only an explicit cast may not)
    keeps_dtype: bool = True

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> np.ndarray:
        raise NotImplementedError("a Function subclass must implement forward(ctx, *inputs)")

    @staticmethod
    def backward(ctx: Context, grad_output: np.ndarray) -> Any:
        raise NotImplementedError("a Function subclass must implement backward(ctx, grad_output)")

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> "Tensor":
        from .tensor import Tensor

        float_dtypes = {a.dtype for a in args if isinstance(a, Tensor) and a.is_floating_point()}
        if len(float_dtypes) > 1:
            names = ", ".join(sorted(str(d) for d in float_dtypes))
            raise TypeError(
                f"{cls.__name__}: inputs mix floating dtypes ({names}); tinyqnn never promotes "
                "silently, convert one side first, e.g. x.to(np.float64)"
            )
        enabled = is_grad_enabled()  # under no_grad nothing needs a gradient, so forward may skip saving
        needs = tuple(enabled and isinstance(a, Tensor) and a.requires_grad for a in args)
        record = any(needs)
        ctx = Context(needs)
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        out = cls.forward(ctx, *raw, **kwargs)
        if not isinstance(out, np.ndarray):
            out = np.asarray(out)
        (in_dtype,) = float_dtypes or {None}
        if cls.keeps_dtype and in_dtype is not None and out.dtype.kind == "f" and out.dtype != in_dtype:
            raise TypeError(
                f"{cls.__name__}.forward turned {in_dtype} inputs into a {out.dtype} output; "
                "keep the input dtype (NumPy promotes when mixing with float64 arrays or scalars)"
            )
        record = record and out.dtype.kind == "f"  # integer/bool results (a cast to int) carry no gradient
        result = Tensor(out, requires_grad=record, _copy=False)
        if record:
            result._fn = cls
            result._ctx = ctx
            result._inputs = args
        return result
