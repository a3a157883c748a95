"""``BatchNorm1d`` / ``BatchNorm2d``: normalise each channel with batch statistics.

Training: y = (x - mean_B) / sqrt(var_B + eps) * weight + bias, with the batch's mean and biased
variance per channel; the running estimates move towards the batch's mean and *unbiased* variance,
``running = (1 - momentum) * running + momentum * batch``. Evaluation: the running estimates replace
the batch statistics, so the layer becomes a fixed per-channel affine map.

``affine=False`` drops ``weight`` and ``bias``: the scale-free batch norm that Yin et al. (2019) put
before each quantized activation, where the activation's own step size sets the scale.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .. import init
from ...engine import Tensor
from ..module import Module, Parameter


class _BatchNorm(Module):
    #: allowed input ranks, for the error message
    _ndims: tuple[int, ...] = ()
    _layout: str = ""

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, affine: bool = True,
        track_running_stats: bool = True, dtype: Any = np.float32,
    ):
        super().__init__()
        if num_features <= 0:
            raise ValueError(f"{type(self).__name__} needs num_features > 0, got {num_features}")
        if eps <= 0:
            raise ValueError(f"{type(self).__name__} needs eps > 0, got {eps}")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{type(self).__name__} needs momentum in [0, 1] or None, got {momentum}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def reset_parameters(self) -> None:
        self.reset_running_stats()
        if self.affine:
            init.ones_(self.weight)
            init.zeros_(self.bias)

    def forward(self, x: Tensor, *, residual: Tensor | None = None, stride: int = 1, relu: bool = False) -> Tensor:
        """x -> bn(x); with ``residual`` / ``relu``, the fused ``relu(bn(x) + shortcut(residual))`` of
        ``F.batch_norm`` (a ResNet block's tail in one pass)."""
        name = type(self).__name__
        if x.ndim not in self._ndims:
            raise ValueError(f"{name} expects input of shape {self._layout}, got shape {x.shape}")
        if x.shape[1] != self.num_features:
            raise ValueError(
                f"{name} expects num_features={self.num_features} channels in axis 1, "
                f"but the input has {x.shape[1]} (input shape {x.shape})"
            )
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1  # in place: the buffer array stays the same object
            if self.momentum is None:  # cumulative moving average over all batches seen
                momentum = 1.0 / float(self.num_batches_tracked)
        # batch statistics while training, and always when there are no running estimates
        use_batch_stats = self.training or self.running_mean is None
        return F.batch_norm(
            x, self.running_mean, self.running_var, self.weight, self.bias,
            training=use_batch_stats, momentum=momentum, eps=self.eps, residual=residual, stride=stride, relu=relu,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch norm over features: x (N, C) or (N, C, L) -> same shape; statistics per C.

    Args:
        num_features: C.
        eps: added to the variance for stability.
        momentum: weight of the newest batch in the running estimates (None: cumulative average).
        affine: learn weight (init 1) and bias (init 0), shape (C,).
        track_running_stats: keep running_mean (zeros), running_var (ones), num_batches_tracked
            buffers; without them evaluation also uses batch statistics.
    """

    _ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch norm over channels of images: x (N, C, H, W) -> same shape; statistics per C over N, H, W.

    Arguments as for ``BatchNorm1d``.
    """

    _ndims = (4,)
    _layout = "(N, C, H, W)"
