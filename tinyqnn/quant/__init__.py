"""Quantization: the quantized ReLU, its step alpha, straight-through estimators, weight and affine
quantizers, quantized modules and float -> quantized model conversion.

Read in this order: ``activation`` (sigma_alpha) -> ``alpha`` (fitting the step) -> ``ste`` (the
STE zoo) -> ``weight`` / ``affine`` -> ``modules`` -> ``convert``; ``plot`` draws any STE.
"""
from .activation import QUANTIZER_RULES, check_alpha, check_bits, clip_level, level_index, num_levels, quantize_relu
from .affine import (
    FakeQuantize, MinMaxObserver, MovingAverageMinMaxObserver, MSEObserver, Observer, PercentileObserver,
    calculate_qparams, dequantize, fake_quantize, qrange, quantize,
)
from .alpha import PAPER_ALPHA, default_alpha, lloyd_alpha, optimal_alpha, quantization_mse
from .ste import (
    STE, ApproxSignSTE, ClippedReLUSTE, DoReFaSTE, HardTanhSTE, IdentitySTE, LSQSTE, PACTSTE, ReLUSTE, SwishSignSTE,
    available_stes, get_ste, make_ste, register_ste, ste_quantize,
)
from .weight import (
    WEIGHT_QUANTIZERS, WeightSTE, fake_quantize_weight, get_weight_quantizer, quantize_binary, quantize_symmetric,
    quantize_ternary,
)


def __getattr__(name: str):
    # modules/convert need tinyqnn.nn; import them lazily so the NumPy-only parts load on their own
    if name in ("QuantAct", "QuantReLU", "QuantConv2d", "QuantLinear"):
        from . import modules

        return getattr(modules, name)
    if name in ("quantize_activations", "quantize_weights", "replace_modules"):
        from . import convert

        return getattr(convert, name)
    raise AttributeError(f"module 'tinyqnn.quant' has no attribute {name!r}")


__all__ = [
    "QUANTIZER_RULES", "check_alpha", "check_bits", "clip_level", "level_index", "num_levels", "quantize_relu",
    "FakeQuantize", "MinMaxObserver", "MovingAverageMinMaxObserver", "MSEObserver", "Observer", "PercentileObserver",
    "calculate_qparams", "dequantize", "fake_quantize", "qrange", "quantize",
    "PAPER_ALPHA", "default_alpha", "lloyd_alpha", "optimal_alpha", "quantization_mse",
    "STE", "ApproxSignSTE", "ClippedReLUSTE", "DoReFaSTE", "HardTanhSTE", "IdentitySTE", "LSQSTE", "PACTSTE",
    "ReLUSTE", "SwishSignSTE", "available_stes", "get_ste", "make_ste", "register_ste", "ste_quantize",
    "WEIGHT_QUANTIZERS", "WeightSTE", "fake_quantize_weight", "get_weight_quantizer", "quantize_binary",
    "quantize_symmetric", "quantize_ternary",
    "QuantAct", "QuantReLU", "QuantConv2d", "QuantLinear", "quantize_activations", "quantize_weights",
    "replace_modules",
]
