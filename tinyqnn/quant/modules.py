"""Quantized layers: ``QuantAct`` (quantized ReLU + STE) and fake-quantized ``QuantConv2d`` / ``QuantLinear``."""
from __future__ import annotations

import json
from typing import Any

import numpy as np

from .. import nn
from ..engine import Tensor
from ..nn import functional as F
from .activation import check_alpha, check_bits, check_float_input, check_rule, num_levels
from .alpha import default_alpha
from .ste import STE, LSQSTE, PACTSTE, get_ste
from .weight import fake_quantize_weight, get_weight_quantizer


class QuantAct(nn.Module):
    """Quantized activation: forward ``ste``'s quantizer, backward its surrogate derivative.

    Args:
        bits: bit width (>= 1); the quantized ReLU has levels {0, alpha, ..., (2^bits - 1) alpha}.
        alpha: step; None takes the paper's value for ``bits`` (``PAPER_ALPHA``: 1.2221, 0.6511, 0.1946
            for 1, 2, 4 bits; other widths the round-rule MSE optimum). Fixed during training,
            except for PACT (learned clip, initialised at (2^bits - 1) alpha) and LSQ (learned step,
            initialised at alpha), which hold it as a Parameter ``clip`` / ``step``.
        ste: registry name or STE class: "clipped_relu" (default), "relu", "identity", "pact",
            "lsq", "dorefa", sign STEs ("hardtanh", "approx_sign", "swish_sign", which need
            bits=1), or your own (``make_ste``).
        quantizer: "ceil" (the paper's rule) or "round" (nearest level); used by the quantized-ReLU STEs.
        **ste_params: extra keyword arguments of the STE (e.g. ``beta`` of swish_sign).

    Shapes: any -> same (elementwise).
    """

    def __init__(
        self, bits: int = 2, alpha: float | None = None, ste: str | type[STE] = "clipped_relu",
        quantizer: str = "ceil", **ste_params: Any,
    ):
        super().__init__()
        self.bits = check_bits(bits)
        self.quantizer = check_rule(quantizer)
        self.ste: type[STE] = get_ste(ste)
        if self.ste.binary and self.bits != 1:
            raise ValueError(f"STE {self.ste.name!r} is binary (sign); use bits=1, got bits={bits}")
        self._alpha = default_alpha(self.bits) if alpha is None else check_alpha(alpha)
        self.ste_params = _json_params(ste_params, self.ste.name)
        if self.ste.learnable == "clip":
            self.clip = nn.Parameter(np.array(num_levels(self.bits) * self._alpha, dtype=np.float32))
        elif self.ste.learnable == "step":
            self.step = nn.Parameter(np.array(self._alpha, dtype=np.float32))

    @property
    def alpha(self) -> float:
        """The effective step: fixed ``alpha``, PACT's ``clip / (2^bits - 1)`` or LSQ's learned ``step``."""
        if self.ste.learnable == "clip":
            return float(self.clip.data) / num_levels(self.bits)
        if self.ste.learnable == "step":
            return float(self.step.data)
        return self._alpha

    @alpha.setter
    def alpha(self, value: float) -> None:
        if self.ste.learnable:  # a learned step lives in its Parameter, which the optimizer holds
            raise AttributeError(f"QuantAct with STE {self.ste.name!r} learns its {self.ste.learnable}; "
                                 f"set .{self.ste.learnable}.data instead of .alpha")
        self._alpha = check_alpha(value)

    def quant_config(self) -> dict[str, Any]:
        """The settings that define this quantizer, JSON-able (checkpoints record and compare them).

        A learned clip/step is not part of it: it is a Parameter, saved with the weights.
        """
        config: dict[str, Any] = {"type": "QuantAct", "bits": self.bits, "ste": self.ste.name}
        if not self.ste.learnable:
            config["alpha"] = self._alpha
        if self.ste.uses_rule:
            config["quantizer"] = self.quantizer
        if self.ste_params:
            config["ste_params"] = dict(self.ste_params)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> QuantAct:
        """The ``QuantAct`` that ``quant_config()`` described (the STE name must be registered)."""
        return cls(config["bits"], config.get("alpha"), config["ste"], config.get("quantizer", "ceil"),
                   **config.get("ste_params", {}))

    def forward(self, x: Tensor) -> Tensor:
        check_float_input(x.data, "QuantAct")  # before _like: a learned clip/step must not become an integer
        if self.ste.learnable == "clip":
            return PACTSTE.apply(x, _like(self.clip, x), bits=self.bits)
        if self.ste.learnable == "step":
            return LSQSTE.apply(x, _like(self.step, x), bits=self.bits, **self.ste_params)
        return self.ste.apply(x, bits=self.bits, alpha=self.alpha, quantizer=self.quantizer, **self.ste_params)

    def extra_repr(self) -> str:
        text = f"bits={self.bits}, ste={self.ste.name!r}"
        if self.ste.learnable:
            return text
        if self.ste.uses_rule:
            text += f", alpha={self.alpha:.4g}, quantizer={self.quantizer!r}"
        return text + "".join(f", {k}={v!r}" for k, v in self.ste_params.items())


#: the paper calls it a quantized ReLU
QuantReLU = QuantAct


def _json_params(params: dict[str, Any], ste: str) -> dict[str, Any]:
    """STE parameters must survive a JSON round trip: checkpoints record them."""
    try:
        if json.loads(json.dumps(params)) == params:
            return dict(params)
    except (TypeError, ValueError):
        pass
    raise ValueError(f"parameters of STE {ste!r} must be plain numbers, strings or booleans (they are saved in "
                     f"checkpoints as JSON), got {params!r}")


def _like(param: Tensor, x: Tensor) -> Tensor:
    """A learned scalar in the dtype of ``x`` (differentiable cast only when needed)."""
    return param if param.dtype == x.dtype else param.to(x.dtype)


def _single_if_square(pair: tuple[int, int]) -> int | tuple[int, int]:
    return pair[0] if pair[0] == pair[1] else pair


class _WeightQuantMixin:
    """Shared settings of the fake-quantized layers."""

    def _setup(self, weight_quantizer: Any, weight_bits: int, per_channel: bool) -> None:
        get_weight_quantizer(weight_quantizer)  # fail early on unknown names
        self.weight_quantizer, self.weight_bits, self.per_channel = weight_quantizer, int(weight_bits), per_channel

    def quantized_weight(self) -> Tensor:
        """The weight as the forward pass sees it (gradient flows to the float weight unchanged)."""
        return fake_quantize_weight(self.weight, self.weight_quantizer, self.weight_bits, self.per_channel)

    def _quantizer_name(self) -> str:
        if isinstance(self.weight_quantizer, str):
            return self.weight_quantizer
        return f"custom:{getattr(self.weight_quantizer, '__name__', 'function')}"  # no registry to rebuild it from

    def quant_config(self) -> dict[str, Any]:
        """The weight quantizer's settings, JSON-able (checkpoints record and compare them)."""
        return {"type": type(self).__name__, "weight_quantizer": self._quantizer_name(),
                "weight_bits": self.weight_bits, "per_channel": self.per_channel}

    def _quant_repr(self) -> str:
        return (f", weight_quantizer={self._quantizer_name()!r}, weight_bits={self.weight_bits}, "
                f"per_channel={self.per_channel}")


class QuantLinear(_WeightQuantMixin, nn.Linear):
    """``nn.Linear`` whose weight is fake-quantized in every forward (identity STE for the weight).

    Args: as ``nn.Linear``, plus ``weight_quantizer`` ("symmetric", "binary", "ternary", "none" or a
    function ``f(w, bits, per_channel)``), ``weight_bits`` and ``per_channel`` (one scale per output row).
    Shapes: x (N, *, in_features) -> (N, *, out_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = np.float32,
                 weight_quantizer: Any = "symmetric", weight_bits: int = 8, per_channel: bool = False):
        super().__init__(in_features, out_features, bias=bias, dtype=dtype)
        self._setup(weight_quantizer, weight_bits, per_channel)

    def forward(self, x: Tensor) -> Tensor:
        check_float_input(x.data, "QuantLinear")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"QuantLinear expects in_features={self.in_features} in the last axis, got shape {x.shape}"
            )
        return F.linear(x, self.quantized_weight(), self.bias)

    @classmethod
    def from_float(cls, layer: nn.Linear, **kwargs: Any) -> QuantLinear:
        """A QuantLinear with a copy of ``layer``'s weight and bias."""
        new = cls(layer.in_features, layer.out_features, bias=layer.bias is not None, dtype=layer.weight.dtype,
                  **kwargs)
        new.load_state_dict(layer.state_dict())
        return new

    def extra_repr(self) -> str:
        return super().extra_repr() + self._quant_repr()


class QuantConv2d(_WeightQuantMixin, nn.Conv2d):
    """``nn.Conv2d`` whose weight (F, C, KH, KW) is fake-quantized in every forward (identity STE).

    Args: as ``nn.Conv2d``, plus ``weight_quantizer``, ``weight_bits``, ``per_channel`` (one scale per
    output channel F). Shapes: x (N, C, H, W) -> (N, F, H', W').
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1, padding: Any = 0,
                 bias: bool = True, dtype: Any = np.float32, weight_quantizer: Any = "symmetric",
                 weight_bits: int = 8, per_channel: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=bias, dtype=dtype)
        self._setup(weight_quantizer, weight_bits, per_channel)

    def forward(self, x: Tensor) -> Tensor:
        check_float_input(x.data, "QuantConv2d")
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"QuantConv2d expects (N, {self.in_channels}, H, W) inputs, got shape {x.shape}")
        return F.conv2d(x, self.quantized_weight(), self.bias, stride=_single_if_square(self.stride),
                        padding=_single_if_square(self.padding))

    @classmethod
    def from_float(cls, layer: nn.Conv2d, **kwargs: Any) -> QuantConv2d:
        """A QuantConv2d with a copy of ``layer``'s weight and bias."""
        new = cls(layer.in_channels, layer.out_channels, layer.kernel_size, stride=layer.stride, padding=layer.padding,
                  bias=layer.bias is not None, dtype=layer.weight.dtype, **kwargs)
        new.load_state_dict(layer.state_dict())
        return new

    def extra_repr(self) -> str:
        return super().extra_repr() + self._quant_repr()
