"""LeNet-5 with quantized activations -> ``IntegerLeNet``: integer weights, int32 biases, folded batch norm,
per-channel M0/shift and thresholds; saved as a plain ``.npz`` (no pickle) that states every tensor's bit
width and provenance.

What each layer becomes (channel f; ``S_in`` the input step, ``S_w[f]`` the weight step, ``S_f = S_in S_w[f]``):

* weights: symmetric k-bit integers ``q = clip(rint(w / S_w), -(2^(k-1)-1), 2^(k-1)-1)``, per channel or
  per tensor, exactly ``tinyqnn.quant.quantize_symmetric`` (the fake-quantized model uses the same ``q S_w``);
* the accumulator ``acc = sum q * x_int`` is the pre-activation in units of ``S_f``;
* batch norm (eval: running statistics; scale-free or affine) and the step alpha fold into one positive
  real multiplier ``M_f = |gamma_f| S_f / (sigma_f alpha)`` and a shift ``B_f`` (accumulator units), so that
  the paper's quantizer ``clip(ceil(BN(z) / alpha), 0, 2^b - 1)`` is ``clip(ceil(M_f (acc + B_f)), 0, 2^b-1)``.
  A channel with ``gamma_f < 0`` has its weights and ``B_f`` negated, which keeps ``M_f > 0``;
* (a) ``method="requant"``: ``B_f`` rounded to an int32 bias, ``M_f`` split into (M0, shift) by
  ``quantize_multiplier``, ceiling rounding (``multiply_by_quantized_multiplier(..., rounding="ceil")``),
  fused clamp to ``[0, 2^b - 1]``. The bias's rounding error ``B_f - bias_f`` (up to half an accumulator
  unit, which at 2-bit activations would flip about one level in a thousand) is put back as an int64
  ``bias_residual = round((B_f - bias_f) M0)`` added to the 62-bit product ``acc * M0`` before the shift:
  ``level = clip(ceil((acc M0 + R) / 2^(31 - shift)), 0, 2^b - 1)``;
  (b) ``method="thresholds"``: ``2^b - 1`` integer thresholds per channel,
  computed from the unrounded ``B_f`` and stated on the accumulator that holds the int32 bias;
* the input: MNIST pixels ``p`` (uint8) are normalised as ``(p - 255 mean) / (255 std)``; the zero point
  ``255 * 0.1307 = 33.33`` is not an integer, so conv1 pads with ``p = 0`` and its bias carries
  ``-33.33 * (sum of the weights over the taps inside the image)`` per output position (F, 28, 28);
* the last layer's accumulators are requantized (double rounding, TFLite's default) to int32 logits at one
  common scale ``min_f S_f / 256`` and its bias, rounded at that scale, is added after: their argmax is the
  prediction. At the accumulator's own scale two classes' logits tied exactly on a few images in 10,000
  (the requantization and the bias rounding each lose up to half a unit), and argmax then picked the first;
  256 sub-units leave rounding errors far below the logits' real gaps.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..args import one_line
from ..utils import atomic_write_bytes, read_npz
from .intrep import check_fits
from .requant import check_same_scale, quantize_multiplier
from .thresholds import compute_thresholds

FORMAT = "tinyqnn-integer-lenet"
FORMAT_VERSION = 2  # 2: logits at min S_f / LOGIT_SUBUNITS, the output layer's bias added at that scale
#: the logits' unit is the finest accumulator unit divided by this (see the module docstring)
LOGIT_SUBUNITS = 256
METHODS = ("requant", "thresholds")
LAYERS = ("conv1", "conv2", "fc1", "fc2", "fc3")


class IntegerModelError(ValueError):
    """An integer model file is missing, truncated, or inconsistent (names the file and the problem)."""


@dataclass
class IntLayer:
    """One integer layer. Shapes: weight (F, C, KH, KW) or (F, K); weight_scale (F,); bias (F,) or (F, H', W');
    multiplier, quantized_multiplier, shift (F,); thresholds (F, [H', W',] 2^b - 1); bias_real and
    bias_residual shaped like bias."""

    name: str
    kind: str  # "conv" or "linear"
    weight: np.ndarray
    weight_bits: int
    weight_scale: np.ndarray
    bias: np.ndarray
    in_scale: float
    in_bits: int
    padding: int = 0
    pool: int = 0  # max-pool window after the activation (0: none)
    act_bits: int | None = None  # None: the output layer (logits)
    alpha: float | None = None
    multiplier: np.ndarray | None = None
    quantized_multiplier: np.ndarray | None = None
    shift: np.ndarray | None = None
    bias_real: np.ndarray | None = None
    bias_residual: np.ndarray | None = None
    thresholds: np.ndarray | None = None

    @property
    def acc_scale(self) -> np.ndarray:
        """(F,) the real value of one accumulator unit, ``S_in * S_w[f]``."""
        return self.in_scale * self.weight_scale

    @property
    def accumulator_bias(self) -> np.ndarray | None:
        """The bias the accumulator adds (its last step); None for the output layer, whose bias is added to
        the requantized logits at their finer scale."""
        return None if self.act_bits is None else self.bias


@dataclass
class IntegerLeNet:
    """An integer-only LeNet-5: ``layers`` conv1, conv2, fc1, fc2, fc3; ``meta`` says how it was made.

    ``input_scale`` / ``input_zero_point``: the real input is ``input_scale * (p - input_zero_point)``
    for the uint8 pixels ``p``. Inference: ``tinyqnn.fixedpoint.infer.integer_forward``.
    """

    layers: list[IntLayer]
    input_scale: float
    input_zero_point: float
    method: str = "requant"
    meta: dict[str, Any] = field(default_factory=dict)

    def layer(self, name: str) -> IntLayer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no layer {name!r}; layers are {[l.name for l in self.layers]}")


# ---------------------------------------------------------------- conversion
def _act_setup(act: Any, name: str) -> tuple[int, float]:
    from ..quant.modules import QuantAct

    if not isinstance(act, QuantAct):
        raise ValueError(f"{name} is {type(act).__name__}, not a QuantAct: only activation-quantized models convert "
                         "(tinyqnn.quant.quantize_activations)")
    if act.ste.learnable:
        raise ValueError(f"{name} uses the learned-range STE {act.ste.name!r}; the integer pipeline implements the "
                         "paper's fixed-alpha quantized ReLU")
    if act.quantizer != "ceil" or not act.ste.uses_rule:
        raise ValueError(f"{name}: the integer pipeline implements the paper's ceil rule; got quantizer "
                         f"{act.quantizer!r} with STE {act.ste.name!r}")
    return int(act.bits), float(act.alpha)


def _bn_setup(bn: Any, features: int, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(mu, sigma, gamma, beta) of a batch norm in eval mode (identity: 0, 1, 1, 0), float64, shape (F,)."""
    from .. import nn

    one, zero = np.ones(features), np.zeros(features)
    if isinstance(bn, nn.Identity):
        return zero, one, one, zero
    if bn.running_mean is None:
        raise ValueError(f"{name} has no running statistics (track_running_stats=False); it cannot be folded")
    mu = np.asarray(bn.running_mean, dtype=np.float64)
    sigma = np.sqrt(np.asarray(bn.running_var, dtype=np.float64) + bn.eps)
    gamma = one if bn.weight is None else np.asarray(bn.weight.data, dtype=np.float64)
    beta = zero if bn.bias is None else np.asarray(bn.bias.data, dtype=np.float64)
    if np.any(gamma == 0):
        raise ValueError(f"{name} has a zero scale (gamma) in channels {np.flatnonzero(gamma == 0).tolist()}: "
                         "their output is constant and has no threshold")
    return mu, sigma, gamma, beta


def quantize_weight_int(w: np.ndarray, bits: int, per_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric integer weights and their (F,) float64 scales, exactly as ``quantize_symmetric`` makes them."""
    from ..quant.weight import symmetric_scale

    scale = symmetric_scale(w, bits, per_channel)  # in w's dtype, as the fake-quantized layer computes it
    top = 2 ** (bits - 1) - 1
    q = np.clip(np.rint(w / scale), -top, top).astype(np.int64)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64).reshape(-1), (w.shape[0],)).copy()
    return q, scale


def _weight_setup(layer: Any, weight_bits: int | None, per_channel: bool | None) -> tuple[int, bool]:
    """Bits and granularity: the fine-tuned layer's own (QuantConv2d/QuantLinear), unless given."""
    own = getattr(layer, "weight_bits", None)
    if own is not None and getattr(layer, "weight_quantizer", "symmetric") != "symmetric":
        raise ValueError(f"only symmetric weight quantization converts, got {layer.weight_quantizer!r}")
    bits = weight_bits if weight_bits is not None else (own if own is not None else 8)
    pc = per_channel if per_channel is not None else bool(getattr(layer, "per_channel", True))
    if not 2 <= int(bits) <= 16:
        raise ValueError(f"weight_bits must be in 2..16, got {bits}")
    return int(bits), pc


def convert_lenet(model: Any, weight_bits: int | None = None, per_channel: bool | None = None,
                  method: str = "requant", mean: float = 0.1307, std: float = 0.3081,
                  provenance: dict[str, Any] | None = None) -> IntegerLeNet:
    """Convert a trained ``tinyqnn.models.LeNet5`` with ``QuantAct`` activations into an ``IntegerLeNet``.

    Args:
        model: LeNet5 (batch norm scale-free, affine or absent; max pooling) whose act1..act4 are QuantAct
            with the ceil rule; conv/linear layers float or QuantConv2d/QuantLinear (fine-tuned).
        weight_bits, per_channel: weight quantization (default: a Quant layer's own setting, else 8 bits per channel).
        method: default activation method at inference, "requant" (M0/shift) or "thresholds" (both are stored).
        mean, std: the input normalisation of the data set (MNIST's by default).
        provenance: extra facts recorded in ``meta`` (checkpoint path, training run, ...).
    """
    from .. import nn

    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    for name in ("pool1", "pool2"):
        if not isinstance(getattr(model, name, None), nn.MaxPool2d):
            raise ValueError(f"{name} must be a MaxPool2d (max commutes with the monotone quantizer); got "
                             f"{type(getattr(model, name, None)).__name__}")
    input_scale, zero_point = 1.0 / (255.0 * std), 255.0 * mean
    spec = [("conv1", "bn1", "act1", 2), ("conv2", "bn2", "act2", 2), ("fc1", "bn3", "act3", 0),
            ("fc2", "bn4", "act4", 0), ("fc3", None, None, 0)]
    layers: list[IntLayer] = []
    in_scale, in_bits, weight_info = input_scale, 8, {}
    for name, bn_name, act_name, pool in spec:
        module = getattr(model, name)
        bits, pc = _weight_setup(module, weight_bits, per_channel)
        w = np.asarray(module.weight.data)
        q, s_w = quantize_weight_int(w, bits, pc)
        b_float = np.zeros(q.shape[0]) if module.bias is None else np.asarray(module.bias.data, dtype=np.float64)
        s_acc = in_scale * s_w
        padding = int(module.padding[0]) if q.ndim == 4 else 0
        offset = 0.0  # the input zero point's share of the accumulator, in accumulator units
        if name == "conv1":
            from .accumulate import int_conv2d  # sum of the weights over the taps inside the image

            taps, _ = int_conv2d(np.ones((1, 1, 28, 28), dtype=np.int64), q, padding=padding, count=False)
            offset = -zero_point * taps[0].astype(np.float64)  # (F, 28, 28)
        weight_info[name] = dict(bits=bits, per_channel=pc)
        if act_name is None:  # the output layer: int32 logits at one common, finer scale; bias added there
            out_scale = float(s_acc.min()) / LOGIT_SUBUNITS
            m0, sh = quantize_multiplier(s_acc / out_scale)
            bias = np.rint(b_float / out_scale).astype(np.int64)
            check_fits(bias, 32, True, f"{name}'s bias at the logits' scale")
            layers.append(IntLayer(name, "linear", q, bits, s_w, bias, in_scale, in_bits,
                                   multiplier=s_acc / out_scale, quantized_multiplier=np.asarray(m0),
                                   shift=np.asarray(sh), bias_real=b_float / out_scale))
            break
        act_bits, alpha = _act_setup(getattr(model, act_name), act_name)
        mu, sigma, gamma, beta = _bn_setup(getattr(model, bn_name), q.shape[0], bn_name)
        sign = np.sign(gamma)
        multiplier = np.abs(gamma) * s_acc / (sigma * alpha)
        per_channel_shift = (b_float - mu + beta * sigma / gamma) / s_acc  # (F,) accumulator units
        shape = (-1,) + (1,) * (np.ndim(offset) - 1) if np.ndim(offset) else (-1,)
        bias_real = sign.reshape(shape) * (per_channel_shift.reshape(shape) + offset)
        q = q * sign.reshape((-1,) + (1,) * (q.ndim - 1)).astype(np.int64)
        m0, sh = quantize_multiplier(multiplier)
        bias = np.rint(bias_real).astype(np.int64)
        # what rounding the bias to an integer lost, in units of the product acc * M0 (|R| <= M0 / 2 < 2^30)
        residual = np.rint((bias_real - bias) * np.asarray(m0, dtype=np.float64).reshape(shape)).astype(np.int64)
        layers.append(IntLayer(
            name, "conv" if q.ndim == 4 else "linear", q, bits, s_w, bias, in_scale,
            in_bits, padding=padding, pool=pool, act_bits=act_bits, alpha=alpha, multiplier=multiplier,
            quantized_multiplier=np.asarray(m0), shift=np.asarray(sh), bias_real=bias_real, bias_residual=residual,
            thresholds=compute_thresholds(multiplier, bias_real, act_bits) + bias[..., None]))
        in_scale, in_bits = alpha, act_bits
    meta = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "default_method": method,
        "source": "tinyqnn.fixedpoint.convert_lenet", "weights": weight_info,
        "weight_quantizer": "symmetric: q = clip(rint(w / s), -(2^(k-1)-1), 2^(k-1)-1), s = max|w| / (2^(k-1)-1)",
        "activation_quantizer": "clip(ceil(BN(z) / alpha), 0, 2^b - 1) (Yin et al. 2019, ceil rule)",
        "batch_norm": "folded (eval-mode running statistics)", "input": {"mean": mean, "std": std},
        **(provenance or {}),
    }
    return IntegerLeNet(layers, input_scale, zero_point, method, meta)


# ---------------------------------------------------------------- files
#: per stored tensor: (description, how its bit width is stated)
_TENSORS = ("weight", "bias", "weight_scale", "multiplier", "quantized_multiplier", "shift", "bias_real",
            "bias_residual", "thresholds")


def _tensor_facts(layer: IntLayer) -> dict[str, dict[str, Any]]:
    """Bit width, signedness and provenance of each tensor of a layer (stored in the file's meta)."""
    facts: dict[str, dict[str, Any]] = {
        "weight": dict(bits=layer.weight_bits, signed=True, provenance="symmetric quantization of the trained float "
                       "weights (sign flipped where the batch norm scale is negative)"),
        "bias": dict(bits=32, signed=True, provenance="float bias, batch norm shift and input zero point folded, "
                     "rounded to accumulator units S_in * S_w (the logits: to their unit min S_in * S_w / "
                     f"{LOGIT_SUBUNITS}, added after requantization)"),
        "weight_scale": dict(bits=64, signed=None, provenance="float64 step S_w of the weight quantizer"),
        "bias_real": dict(bits=64, signed=None, provenance="the unrounded folded shift B (float64), "
                          "for the thresholds and for checking"),
        "multiplier": dict(bits=64, signed=None, provenance="real multiplier M (float64): |gamma| S_in S_w / "
                           f"(sigma alpha), or {LOGIT_SUBUNITS} S_w / min S_w for the logits"),
        "quantized_multiplier": dict(bits=32, signed=True, provenance="M0 of quantize_multiplier(M) (Q0.31)"),
        "shift": dict(bits=8, signed=True, provenance="shift of quantize_multiplier(M), M = M0 2^(shift-31)"),
    }
    if layer.bias_residual is not None:
        facts["bias_residual"] = dict(bits=32, signed=True, provenance="round((B - bias) M0): the bias's rounding "
                                      "error at the scale of the product acc * M0, added before the shift")
    if layer.thresholds is not None:
        facts["thresholds"] = dict(bits=32, signed=True, provenance="T_k = floor((k-1)/M - B) + 1 + bias, "
                                   "k = 1..2^b-1 (compared with the accumulator, bias included)")
    return facts


def save_integer_model(model: IntegerLeNet, path: str | Path) -> Path:
    """Write ``model`` to ``path`` (.npz, atomically, loadable with ``allow_pickle=False``)."""
    path = Path(path)
    arrays: dict[str, np.ndarray] = {}
    layers_meta = []
    for layer in model.layers:
        facts = _tensor_facts(layer)
        for key in _TENSORS:
            value = getattr(layer, key)
            if value is not None:
                value = np.asarray(value)
                if facts[key]["signed"] is not None:  # integers in the smallest dtype that holds their width
                    bits = facts[key]["bits"]
                    value = value.astype(np.int8 if bits <= 8 else np.int16 if bits <= 16 else
                                         np.int32 if bits <= 32 else np.int64)
                arrays[f"{layer.name}/{key}"] = value
                facts[key].update(shape=list(value.shape), dtype=str(value.dtype))
        layers_meta.append(dict(name=layer.name, kind=layer.kind, weight_bits=layer.weight_bits,
                                in_scale=layer.in_scale, in_bits=layer.in_bits, padding=layer.padding,
                                pool=layer.pool, act_bits=layer.act_bits, alpha=layer.alpha, tensors=facts))
    meta = {**model.meta, "format": FORMAT, "format_version": FORMAT_VERSION, "default_method": model.method,
            "input_scale": model.input_scale, "input_zero_point": model.input_zero_point,
            "input_bits": 8, "layers": layers_meta}
    arrays["meta"] = np.array(json.dumps(meta))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_integer_model(path: str | Path) -> IntegerLeNet:
    """Read an ``IntegerLeNet`` written by ``save_integer_model``; checks every tensor against the widths and
    shapes the file states and the scale chain between layers (``IntegerModelError`` naming the file)."""
    path = Path(path)
    if not path.is_file():
        raise IntegerModelError(f"integer model {path} does not exist")
    try:
        arrays = read_npz(path)
    except (ValueError, OSError) as error:
        raise IntegerModelError(f"integer model {path} {error}") from None
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except (KeyError, json.JSONDecodeError) as error:
        raise IntegerModelError(f"integer model {path} has no readable 'meta' entry ({error})") from None
    if not isinstance(meta, dict):  # a list or a number: nothing below could read it
        raise IntegerModelError(f"integer model {path}: 'meta' must be a JSON object, got {type(meta).__name__} "
                                f"{meta!r:.60}")
    if meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise IntegerModelError(f"{path} is not a {FORMAT} v{FORMAT_VERSION} file (format {meta.get('format')!r}, "
                                f"version {meta.get('format_version')!r})")
    try:
        layers = [_load_layer(entry, arrays) for entry in meta["layers"]]
        if [l.name for l in layers] != list(LAYERS):
            raise ValueError(f"layers {[l.name for l in layers]}, expected {list(LAYERS)}")
        check_same_scale(layers[0].in_scale, meta["input_scale"], "the input and conv1")
        for prev, layer in zip(layers, layers[1:]):
            if prev.act_bits != layer.in_bits:
                raise ValueError(f"{prev.name} outputs {prev.act_bits}-bit levels but {layer.name} reads "
                                 f"{layer.in_bits}-bit inputs")
            check_same_scale(prev.alpha, layer.in_scale, f"{prev.name}'s output and {layer.name}'s input")
            if np.prod(prev.weight.shape[:1]) and layer.kind == "linear" and prev.kind == "linear" and \
                    layer.weight.shape[1] != prev.weight.shape[0]:
                raise ValueError(f"{layer.name} reads {layer.weight.shape[1]} inputs, {prev.name} makes "
                                 f"{prev.weight.shape[0]}")
        return IntegerLeNet(layers, float(meta["input_scale"]), float(meta["input_zero_point"]),
                            meta.get("default_method", "requant"), meta)
    except (KeyError, ValueError, TypeError, AttributeError) as error:  # AttributeError: a list where a dict belongs
        raise IntegerModelError(f"integer model {path} is inconsistent: {one_line(error)}") from None


def _load_layer(entry: dict[str, Any], arrays: dict[str, np.ndarray]) -> IntLayer:
    name, facts = entry["name"], entry["tensors"]
    values: dict[str, np.ndarray | None] = {}
    for key in _TENSORS:
        stored = f"{name}/{key}"
        if key not in facts:
            values[key] = None
            continue
        if stored not in arrays:
            raise KeyError(f"tensor {stored} is listed in meta but missing from the archive")
        value = arrays[stored]
        if list(value.shape) != facts[key]["shape"]:
            raise ValueError(f"{stored} has shape {value.shape}, meta states {facts[key]['shape']}")
        if facts[key]["signed"] is not None:
            value = check_fits(value, facts[key]["bits"], facts[key]["signed"], stored)
        values[key] = value
    f = values["weight"].shape[0]
    for key in ("weight_scale", "multiplier", "quantized_multiplier", "shift"):
        if values[key].shape != (f,):
            raise ValueError(f"{name}/{key} has shape {values[key].shape}, expected ({f},) for {f} output channels")
    if values["bias"].shape[0] != f:
        raise ValueError(f"{name}/bias has {values['bias'].shape[0]} channels, the weight {f}")
    if entry["weight_bits"] != facts["weight"]["bits"]:
        raise ValueError(f"{name}: weight_bits {entry['weight_bits']} vs the weight tensor's {facts['weight']['bits']}")
    if entry["act_bits"] is not None:
        levels = 2 ** int(entry["act_bits"]) - 1
        if values["thresholds"] is None or values["thresholds"].shape[-1] != levels:
            raise ValueError(f"{name}: {entry['act_bits']}-bit activations need {levels} thresholds per channel")
        if values["bias_residual"] is None or values["bias_residual"].shape != values["bias"].shape:
            raise ValueError(f"{name}: bias_residual must have the bias's shape {values['bias'].shape}")
    return IntLayer(name=name, kind=entry["kind"], weight=values["weight"], weight_bits=int(entry["weight_bits"]),
                    weight_scale=values["weight_scale"], bias=values["bias"], in_scale=float(entry["in_scale"]),
                    in_bits=int(entry["in_bits"]), padding=int(entry["padding"]), pool=int(entry["pool"]),
                    act_bits=entry["act_bits"], alpha=entry["alpha"], multiplier=values["multiplier"],
                    quantized_multiplier=values["quantized_multiplier"], shift=values["shift"],
                    bias_real=values["bias_real"], bias_residual=values["bias_residual"],
                    thresholds=values["thresholds"])




def is_integer_model_file(path: str | Path) -> bool:
    """True if ``path`` is a .npz archive whose ``meta`` names this module's integer-model format (any version):
    a file ``convert`` wrote and may replace. Reads only the small ``meta`` entry."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"])) if "meta" in archive.files else None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, json.JSONDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT
