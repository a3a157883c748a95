"""``Linear``: y = x W^T + b."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .. import init
from ...engine import Tensor
from ..module import Module, Parameter


class Linear(Module):
    """Fully connected layer.

    Args:
        in_features, out_features: sizes of each input and output sample.
        bias: learn an additive bias.
        dtype: parameter dtype (float32 by default; float64 for gradient checks).

    Shapes: x (N, *, in_features) -> (N, *, out_features); weight (out_features, in_features),
    bias (out_features,).

    Initialisation (PyTorch's default): weight ~ U(-1/sqrt(in), 1/sqrt(in)) via
    ``kaiming_uniform_(a=sqrt(5))``, bias ~ U(-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = np.float32):
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(f"Linear needs positive sizes, got in_features={in_features}, out_features={out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.layer_default_(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if not x.is_floating_point():  # else NumPy promotes and the error would blame a float64 output
            raise TypeError(f"Linear expects a floating-point input like its {self.weight.dtype} weight, got an "
                            f"{x.dtype} input of shape {x.shape}; convert it first, e.g. x.to(np.{self.weight.dtype})")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear expects inputs with in_features={self.in_features} in the last axis, got shape {x.shape}"
            )
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
