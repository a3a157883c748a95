"""A model's JSON description (architecture + per-layer quantization), and the model rebuilt from it.

Checkpoints store ``model_record(model)`` so that a checkpoint says what it was trained as::

    {"version": 1, "arch": "LeNet5", "class": "LeNet5", "kwargs": {"num_classes": 10, "batch_norm": true, ...},
     "dtype": "float32",
     "layers": {"conv1": {"type": "Conv2d"}, "act1": {"type": "QuantAct", "bits": 2, "ste": "clipped_relu",
                "alpha": 0.6511, "quantizer": "ceil"}, ...}}

Every sub-module is listed by its dotted name: plain layers by class name, quantized ones by their
``quant_config()`` (bits, alpha, STE and its parameters, rounding rule; weight quantizer settings).
``build_model(record)`` rebuilds the model from a registered architecture, and
``record_differences(a, b)`` says, layer by layer, where two records disagree.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import nn
from .lenet import LeNet5
from .resnet import ResNetCIFAR
from .vgg import VGG

RECORD_VERSION = 1

#: architectures ``build_model`` can rebuild: name -> class taking the recorded ``kwargs``
ARCHITECTURES: dict[str, type[nn.Module]] = {"LeNet5": LeNet5, "ResNetCIFAR": ResNetCIFAR, "VGG": VGG}


def _describe(module: nn.Module) -> dict[str, Any]:
    if callable(getattr(module, "quant_config", None)):
        return module.quant_config()
    return {"type": type(module).__name__}


def _dtype_of(model: nn.Module) -> str | None:
    floating = [p.data.dtype for p in model.parameters() if p.data.dtype.kind == "f"]
    return str(floating[0]) if floating else None


def model_record(model: nn.Module) -> dict[str, Any]:
    """JSON-able description of ``model``: architecture and constructor arguments (when registered in
    ``ARCHITECTURES``), parameter dtype, and every sub-module's type or quantization settings."""
    name = type(model).__name__
    known = ARCHITECTURES.get(name) is type(model) and hasattr(model, "arch_kwargs")
    return {
        "version": RECORD_VERSION,
        "arch": name if known else None,
        "class": name,  # what the model is, also when it cannot be rebuilt from the record
        "kwargs": dict(model.arch_kwargs) if known else None,
        "dtype": _dtype_of(model),
        "layers": {path: _describe(m) for path, m in model.named_modules() if path},
    }


def _same(a: Any, b: Any) -> bool:
    """Equality of JSON values, floats up to rounding (a step computed twice may differ in the last bit)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) \
                or not isinstance(b, (int, float)):
            return False
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return type(a) is type(b) and a == b


def describe_layer(config: dict[str, Any] | None) -> str:
    """``{"type": "QuantAct", "bits": 2, ...}`` -> ``"QuantAct(bits=2, ...)"``; plain layers say "float"."""
    if config is None:
        return "no such layer"
    rest = {k: v for k, v in config.items() if k != "type"}
    kind = config.get("type", "?")
    if not rest:
        return f"{kind} (float)" if kind in ("ReLU", "Conv2d", "Linear") else kind
    return f"{kind}(" + ", ".join(f"{k}={v!r}" for k, v in rest.items()) + ")"


def _plain(config: dict[str, Any] | None) -> bool:
    return config is None or set(config) == {"type"}


def record_differences(
    stored: dict[str, Any], current: dict[str, Any], only_shared: bool = False, quantized_only: bool = False,
) -> list[str]:
    """Human-readable differences between two ``model_record``s: architecture arguments, then layers.

    Args:
        only_shared: for partial loads (``strict=False``): skip the architecture arguments and the
            layers only one record has.
        quantized_only: report only layers that are quantized in at least one record (a float layer
            where the other quantizes is reported; ReLU vs Tanh is not a quantization difference).
    """
    out = []
    if stored.get("arch") and current.get("arch") and stored["arch"] != current["arch"]:
        out.append(f"architecture: recorded {stored['arch']}, model {current['arch']}")
    elif stored.get("kwargs") and current.get("kwargs") and not only_shared:
        for key in sorted(set(stored["kwargs"]) | set(current["kwargs"])):
            a, b = stored["kwargs"].get(key), current["kwargs"].get(key)
            if not _same(a, b):
                out.append(f"{stored.get('arch')} argument {key}: recorded {a!r}, model {b!r}")
    a_layers, b_layers = stored.get("layers", {}), current.get("layers", {})
    names = [n for n in a_layers if n in b_layers] if only_shared else list(dict.fromkeys([*a_layers, *b_layers]))
    groups: dict[tuple[str, str], list[str]] = {}  # the same difference in act1..act4 is said once
    for name in names:
        a, b = a_layers.get(name), b_layers.get(name)
        if quantized_only and _plain(a) and _plain(b):
            continue
        if a is None or b is None or not _same(a, b):
            groups.setdefault((describe_layer(a), describe_layer(b)), []).append(name)
    for (a_text, b_text), layers in groups.items():
        out.append(f"layer{'s' if len(layers) > 1 else ''} {', '.join(layers)}: recorded {a_text}, model {b_text}")
    return out


def _set_submodule(model: nn.Module, path: str, new: nn.Module) -> None:
    parent_path, _, leaf = path.rpartition(".")
    parent = dict(model.named_modules())[parent_path] if parent_path else model
    parent._modules[leaf] = new  # same slot: keeps the order of the state dict and of a Sequential


def _rebuild_layer(path: str, config: dict[str, Any], current: nn.Module) -> nn.Module | None:
    """The quantized layer ``config`` describes (built from ``current``'s shape), or None if plain."""
    from ..quant.modules import QuantAct, QuantConv2d, QuantLinear

    kind = config.get("type")
    if kind == "QuantAct":
        from ..quant.ste import available_stes

        if config.get("ste") not in available_stes():
            raise ValueError(f"layer {path} uses the STE {config.get('ste')!r}, which is not registered in this "
                             f"session (known: {', '.join(available_stes())}); register it (make_ste / register_ste) "
                             "before loading")
        return QuantAct.from_config(config)
    if kind in ("QuantConv2d", "QuantLinear"):
        quantizer = config.get("weight_quantizer")
        if not isinstance(quantizer, str) or quantizer.startswith("custom:"):
            raise ValueError(f"layer {path} was trained with a custom weight quantizer ({quantizer}), which "
                             "cannot be rebuilt from its name: build the model yourself and use load_checkpoint")
        cls = QuantConv2d if kind == "QuantConv2d" else QuantLinear
        base = nn.Conv2d if kind == "QuantConv2d" else nn.Linear
        if not isinstance(current, base):
            raise ValueError(f"layer {path} is recorded as {kind} but the architecture has a "
                             f"{type(current).__name__} there")
        return cls.from_float(current, weight_quantizer=quantizer, weight_bits=config["weight_bits"],
                              per_channel=config["per_channel"])
    return None


def record_class(record: dict[str, Any]) -> str:
    """What model a record describes, for messages: ``"a LeNet5"``, ``"a ResNetCIFAR"``, or for records written
    before they named the class, ``"a model of 67 layers (conv1, bn1, ...), not a registered architecture"``."""
    name = record.get("arch") or record.get("class")
    if isinstance(name, str):
        return f"a {name}"
    layers = list(record.get("layers") or {})
    return f"a model of {len(layers)} layers ({', '.join(layers[:3])}, ...), not a registered architecture"


def build_model(record: dict[str, Any]) -> nn.Module:
    """The model ``record`` (from ``model_record``) describes, freshly initialised, in training mode.

    Raises ValueError naming what cannot be rebuilt: an unregistered architecture, an unknown STE or
    weight quantizer, or layers the architecture does not have.
    """
    if not isinstance(record, dict) or not isinstance(record.get("layers"), dict):
        raise ValueError(f"a model record is a dict with a 'layers' dict, got {type(record).__name__}")
    arch = record.get("arch")
    if arch not in ARCHITECTURES:
        raise ValueError(f"cannot rebuild {record_class(record)}: tinyqnn rebuilds {', '.join(ARCHITECTURES)} "
                         "(build the model yourself and use load_checkpoint)")
    kwargs = record.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ValueError(f"the recorded arguments of {arch} must be a dict, got {kwargs!r}")
    try:
        model = ARCHITECTURES[arch](**kwargs)
    except MemoryError:  # e.g. a hand-edited record asking for 1e11 classes
        raise ValueError(f"the recorded {arch}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())}) is too large "
                         "to build in this machine's memory") from None
    for path, config in record["layers"].items():
        if not isinstance(config, dict):
            raise ValueError(f"layer {path}: the record must be a dict, got {config!r}")
        modules = dict(model.named_modules())
        if path not in modules:
            continue  # reported below, with every other difference
        new = _rebuild_layer(path, config, modules[path])
        if new is not None:
            _set_submodule(model, path, new)
    if record.get("dtype"):
        model.to(np.dtype(record["dtype"]))
    problems = record_differences(record, model_record(model))
    if problems:
        raise ValueError(f"the rebuilt {arch} differs from the record: " + "; ".join(problems))
    return model
