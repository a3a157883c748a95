"""Turn a float model into a quantized one (a new model; the original is left untouched).

``quantize_activations`` swaps activations for ``QuantAct``: a model with the LeNet5 hook
``set_activation(factory)`` gets ``factory(name, num_features)`` for each of its named activations,
and then every remaining ``nn.ReLU`` (and every existing ``QuantAct``, so a quantized model can be
re-converted to another STE) anywhere in the module tree is replaced in place, keeping its position
(order matters in a ``Sequential``). ``quantize_weights`` does the same for Conv2d / Linear.
"""
from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from .. import nn
from .modules import QuantAct, QuantConv2d, QuantLinear
from .ste import STE


def _copy_model(model: nn.Module) -> nn.Module:
    """A structural deep copy whose parameters/buffers hold copies of ``model.state_dict()``."""
    new = copy.deepcopy(model)
    new.load_state_dict(model.state_dict())  # state_dict returns copies: no array is shared
    new.zero_grad()
    return new


def replace_modules(
    model: nn.Module, match: Callable[[nn.Module], bool], make: Callable[[str, nn.Module], nn.Module]
) -> int:
    """Replace, in place, every sub-module ``m`` with ``match(m)`` by ``make(dotted_name, m)``.

    Returns the number replaced. The root itself is never replaced.
    """
    count = 0
    for prefix, parent in list(model.named_modules()):
        for name, child in list(parent._modules.items()):
            if child is not None and match(child):
                parent._modules[name] = make(f"{prefix}.{name}" if prefix else name, child)  # same slot, same order
                count += 1
    return count


def quantize_activations(
    model: nn.Module,
    bits: int,
    ste: str | type[STE] = "clipped_relu",
    alpha: float | None = None,
    quantizer: str = "ceil",
    **ste_params: Any,
) -> nn.Module:
    """A copy of ``model`` with every activation a ``QuantAct(bits, alpha, ste, quantizer)``.

    Args:
        model: any Module tree; ``nn.ReLU`` and ``QuantAct`` modules are swapped, and if the model
            has ``set_activation(factory)`` (tinyqnn's LeNet5) that hook is used first.
        bits, ste, alpha (None: the paper's value), quantizer, **ste_params: as ``QuantAct``.
    Returns:
        the new model (same weights, copied; same training/eval mode).
    """
    QuantAct(bits, alpha, ste, quantizer, **ste_params)  # validate once, before copying anything
    new = _copy_model(model)

    def factory(name: str, num_features: int | None = None) -> QuantAct:
        return QuantAct(bits, alpha, ste, quantizer, **ste_params)

    if callable(getattr(new, "set_activation", None)):
        new.set_activation(factory)
    replace_modules(new, lambda m: isinstance(m, (nn.ReLU, QuantAct)), lambda name, m: factory(name))
    new.train(model.training)
    return new


def quantize_weights(
    model: nn.Module, weight_quantizer: Any = "symmetric", weight_bits: int = 8, per_channel: bool = False
) -> nn.Module:
    """A copy of ``model`` with each ``nn.Conv2d`` / ``nn.Linear`` replaced by its fake-quantized version."""
    new = _copy_model(model)
    kw = dict(weight_quantizer=weight_quantizer, weight_bits=weight_bits, per_channel=per_channel)

    def make(name: str, m: nn.Module) -> nn.Module:
        return (QuantConv2d if isinstance(m, nn.Conv2d) else QuantLinear).from_float(m, **kw)

    plain = lambda m: type(m) in (nn.Conv2d, nn.Linear)  # noqa: E731  (subclasses may be quantized already)
    replace_modules(new, plain, make)
    new.train(model.training)
    return new
