"""Weight initialisation, in place on ``tensor.data`` (dtype kept), drawing from tinyqnn's seeded generator.

Why the scales: a layer with ``fan_in`` inputs of unit variance and weights of variance ``s^2``
produces outputs of variance ``fan_in * s^2``; choosing ``s^2 = gain^2 / fan_in`` keeps the signal
from growing or dying with depth (He et al. 2015, "kaiming"). Glorot & Bengio (2010, "xavier")
average the forward and backward conditions: ``s^2 = 2 gain^2 / (fan_in + fan_out)``.
A uniform distribution on ``[-b, b]`` has variance ``b^2 / 3``, hence the ``sqrt(3)`` in the bounds.
"""
from __future__ import annotations

import math

import numpy as np

from ..engine import Tensor, default_generator


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor by which ``nonlinearity`` shrinks the standard deviation, to be undone by the init.

    linear/conv/sigmoid: 1, tanh: 5/3, relu: sqrt(2), leaky_relu(slope): sqrt(2 / (1 + slope^2)),
    selu: 3/4.
    """
    if nonlinearity in ("linear", "identity", "sigmoid") or nonlinearity.startswith("conv"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise ValueError(f"leaky_relu gain needs a numeric negative slope, got {slope!r}")
        return math.sqrt(2.0 / (1.0 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4.0
    raise ValueError(
        f"unsupported nonlinearity {nonlinearity!r}; use linear, conv1d/2d, sigmoid, tanh, relu, leaky_relu or selu"
    )


def fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight: Linear (out, in) -> (in, out); Conv (F, C, KH, KW) -> (C*KH*KW, F*KH*KW)."""
    if tensor.ndim < 2:
        raise ValueError(f"fan in/out needs a weight with at least 2 dimensions, got shape {tensor.shape}")
    receptive_field = int(np.prod(tensor.shape[2:])) if tensor.ndim > 2 else 1
    return tensor.shape[1] * receptive_field, tensor.shape[0] * receptive_field


def _fan(tensor: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    fan = fan_in if mode == "fan_in" else fan_out
    if fan == 0:
        raise ValueError(f"cannot initialise a weight of shape {tensor.shape}: {mode} is 0")
    return fan


def _fill(tensor: Tensor, values: np.ndarray | float) -> Tensor:
    """Write into the existing array (references to ``tensor.data`` stay valid), keeping its dtype."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init functions work on Tensors/Parameters, got {type(tensor).__name__}")
    tensor.data[...] = np.asarray(values).astype(tensor.dtype, copy=False)
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Fill with U(a, b)."""
    if a > b:
        raise ValueError(f"uniform_: lower bound a={a} exceeds upper bound b={b}")
    gen = generator or default_generator()
    return _fill(tensor, gen.uniform(a, b, size=tensor.shape))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Fill with N(mean, std^2)."""
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}")
    gen = generator or default_generator()
    return _fill(tensor, gen.normal(mean, std, size=tensor.shape))


def constant_(tensor: Tensor, value: float) -> Tensor:
    return _fill(tensor, value)


def zeros_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    return _fill(tensor, 1.0)


def kaiming_uniform_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He uniform: U(-b, b) with b = gain * sqrt(3 / fan); ``a`` is the leaky_relu slope for the gain.

    PyTorch's Linear/Conv default is ``a=sqrt(5)``, which gives b = 1/sqrt(fan_in).
    """
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(tensor, mode))
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu",
    generator: np.random.Generator | None = None,
) -> Tensor:
    """He normal: N(0, std^2) with std = gain / sqrt(fan)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(tensor, mode))
    return normal_(tensor, 0.0, std, generator)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot uniform: U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: np.random.Generator | None = None) -> Tensor:
    """Glorot normal: N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


__all__ = [
    "calculate_gain", "fan_in_and_fan_out", "uniform_", "normal_", "constant_", "zeros_", "ones_",
    "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_",
]


def layer_default_(weight: Tensor, bias: Tensor | None) -> None:
    """PyTorch's default for Linear and Conv2d: weight ~ kaiming_uniform(a=sqrt 5), i.e. U(-1/sqrt(fan_in),
    1/sqrt(fan_in)), and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1.0 / math.sqrt(fan_in_and_fan_out(weight)[0])
        uniform_(bias, -bound, bound)
