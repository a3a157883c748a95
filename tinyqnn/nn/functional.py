"""Neural-network operations as plain functions of tensors (``import tinyqnn.nn.functional as F``).

The layers in ``tinyqnn.nn`` hold parameters and call these. Semantics follow PyTorch's
``torch.nn.functional``; shapes use N = batch, C = channels, H/W = height/width, K = classes.
Ops with a non-trivial derivative are fused ``Function`` subclasses in ``tinyqnn.nn.ops``;
the rest are compositions of engine ops.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..engine import Tensor, as_tensor, leaky_relu, matmul, relu, sigmoid, tanh
from .ops import AvgPool2d, BatchNorm, Conv2d, CrossEntropy, Dropout, LogSoftmax, MaxPool2d, Softmax

IntPair = int | tuple[int, int]

_REDUCTIONS = ("mean", "sum", "none")

__all__ = [
    "linear", "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "dropout", "relu", "leaky_relu", "sigmoid",
    "tanh", "softmax", "log_softmax", "cross_entropy", "mse_loss",
]


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """Fully connected layer: out = x @ weight.T + bias.

    Shapes: x (N, in) or (*, in), weight (out, in), bias (out,) -> out (N, out) or (*, out).
    """
    if weight.ndim != 2:
        raise ValueError(f"linear expects weight of shape (out_features, in_features), got {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"linear: x has {x.shape[-1] if x.ndim else 0} input features (shape {x.shape}) but weight "
            f"{weight.shape} expects {weight.shape[1]}"
        )
    out = matmul(x, weight.T)
    if bias is not None:
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"linear: bias must have shape ({weight.shape[0]},) for weight {weight.shape}, "
                             f"got {bias.shape}")
        out = out + bias
    return out


def conv2d(x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair = 0) -> Tensor:
    """2-D convolution (cross-correlation) with zero padding.

    Shapes: x (N, C, H, W), weight (F, C, KH, KW), bias (F,) -> (N, F, OH, OW),
    OH = (H + 2*padding - KH) // stride + 1 (likewise OW). stride/padding: int or (h, w) pair.
    """
    return Conv2d.apply(as_tensor(x), weight, bias, stride=stride, padding=padding)


def max_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> Tensor:
    """Max over KH x KW windows (stride defaults to the kernel size; padding is -inf).

    Shapes: x (N, C, H, W) -> (N, C, OH, OW), OH = (H + 2*padding - KH) // stride + 1.
    """
    return MaxPool2d.apply(as_tensor(x), kernel_size=kernel_size, stride=stride, padding=padding)


def avg_pool2d(x: Tensor, kernel_size: IntPair, stride: IntPair | None = None, padding: IntPair = 0) -> Tensor:
    """Mean over KH x KW windows (stride defaults to the kernel size; padded zeros are counted).

    Shapes: x (N, C, H, W) -> (N, C, OH, OW).
    """
    return AvgPool2d.apply(as_tensor(x), kernel_size=kernel_size, stride=stride, padding=padding)


def batch_norm(x: Tensor, running_mean: np.ndarray | None, running_var: np.ndarray | None,
               weight: Tensor | None = None, bias: Tensor | None = None, training: bool = False,
               momentum: float = 0.1, eps: float = 1e-5, *, residual: Tensor | None = None, stride: int = 1,
               relu: bool = False) -> Tensor:
    """Normalize each channel to zero mean and unit variance, then scale by weight and shift by bias.

    Shapes: x (N, C) or (N, C, H, W); running_mean, running_var, weight, bias (C,).
    training=True: batch statistics (biased variance); running_mean/var, when given, are updated
        IN PLACE: r = (1 - momentum) r + momentum * stat, using the unbiased batch variance.
    training=False: the running statistics. weight/bias None = scale-free BN (no affine part).
    Fused extras (one pass over memory instead of three separate ops; same result):
    residual (N, C_r, H_r, W_r): adds ResNet's option-A shortcut of it, every ``stride``-th pixel into
        channels (C - C_r) // 2 onwards (C_r = C, stride 1: a plain ``+ residual``);
    relu=True: max(., 0) of the result.
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm expects x of shape (N, C) or (N, C, H, W), got {x.shape}")
    c = x.shape[1]
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: pass both running_mean and running_var, or neither")
    if running_mean is None and not training:
        raise ValueError("batch_norm in eval mode (training=False) needs running_mean and running_var")
    for name, value in {"running_mean": running_mean, "running_var": running_var}.items():
        if value is not None and not isinstance(value, np.ndarray):
            raise TypeError(f"batch_norm: {name} must be a NumPy array (updated in place), got {type(value).__name__}")
    for name, value in {"running_mean": running_mean, "running_var": running_var, "weight": weight,
                        "bias": bias}.items():
        if value is not None and tuple(value.shape) != (c,):
            raise ValueError(f"batch_norm: {name} must have shape ({c},) for x {x.shape}, got {tuple(value.shape)}")
    return BatchNorm.apply(x, weight, bias, None if residual is None else as_tensor(residual),
                           running_mean=running_mean, running_var=running_var, training=bool(training),
                           momentum=float(momentum), eps=float(eps), relu=bool(relu), stride=int(stride))


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p).

    The identity when not training or p == 0. The mask comes from ``tinyqnn.engine.default_generator()``,
    so ``tinyqnn.manual_seed`` makes it repeatable. Shapes: x (any) -> same shape.
    """
    if not 0 <= p < 1:
        raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
    x = as_tensor(x)
    if not training or p == 0:
        return x
    return Dropout.apply(x, float(p))


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis`` (max subtracted first, so large inputs are safe)."""
    return Softmax.apply(as_tensor(x), axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, computed stably as x - max - log(sum(exp(x - max)))."""
    return LogSoftmax.apply(as_tensor(x), axis)


def _class_indices(target: Any, n: int, k: int) -> np.ndarray:
    """``target`` as an integer array of shape (n,) with values in [0, k), or a clear error."""
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: target must hold integer class indices, got dtype {t.dtype} "
                        "(e.g. y.astype(np.int64))")
    if t.shape != (n,):
        raise ValueError(f"cross_entropy: target shape {t.shape} does not match logits batch: expected ({n},)")
    if n and (t.min() < 0 or t.max() >= k):
        bad = t[(t < 0) | (t >= k)][0]
        raise ValueError(f"cross_entropy: target class {bad} is out of range for {k} classes (valid: 0..{k - 1})")
    return t


def cross_entropy(logits: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy: -log softmax(logits)[target], averaged ("mean"), summed or per sample ("none").

    Shapes: logits (N, K) float, target (N,) int class indices (array or Tensor) -> () or (N,).
    """
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy expects logits of shape (N, K), got {logits.shape}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    t = _class_indices(target, *logits.shape)
    return CrossEntropy.apply(logits, t, reduction)


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002 (PyTorch's name)
    """Mean squared error: (input - target)**2, averaged ("mean"), summed or elementwise ("none").

    Shapes: input and target of the same shape -> () or that shape.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"mse_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    input = as_tensor(input)
    target = as_tensor(target, like=input)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target.shape} differ")
    diff = input - target
    squared = diff * diff
    if reduction == "mean":
        return squared.mean()
    if reduction == "sum":
        return squared.sum()
    return squared
