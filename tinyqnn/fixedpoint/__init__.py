"""The simulated fixed-point MAC unit and integer-only inference of the quantized LeNet-5.

Read in this order: ``intrep`` (two's-complement widths, wrap, saturate) -> ``mac`` (one MAC step, the
naive loops, the trace) -> ``accumulate`` (the vectorized unit) -> ``requant`` (gemmlowp/TFLite
requantization) -> ``thresholds`` (FINN-style integer thresholds) -> ``convert`` (LeNet-5 -> IntegerLeNet,
.npz files) -> ``infer`` (integer inference) -> ``report`` / ``sweep`` / ``benchmark`` / ``cli``.

Typical use::

    from tinyqnn.fixedpoint import (convert_lenet, format_trace, integer_forward, run_integer_report,
                                    summary_line, trace_dot)
    print(format_trace(trace_dot([200, 100, 50], [127, 127, -128], bias=5, acc_bits=16)))  # one dot product
    imodel = convert_lenet(model, weight_bits=8, per_channel=True, method="requant")  # or "thresholds"
    logits, stats = integer_forward(imodel, test_set.images, acc_bits=16, overflow="saturate", collect=True)
    print(summary_line(run_integer_report(model, test_set, float_model=float_model)))
"""
from .convert import IntegerLeNet, IntegerModelError, IntLayer, convert_lenet, load_integer_model, save_integer_model
from .infer import integer_forward, predict
from .report import ENERGY_PJ, format_layer_report, layer_report, run_integer_report, summary_line
from .sweep import accumulator_sweep, plot_sweep
from .thresholds import apply_thresholds, compute_thresholds
from .accumulate import accumulate, exact_matmul, im2col, int_conv2d, int_linear
from .intrep import bits_needed, check_fits, int_range, overflows, saturate, wrap
from .mac import add_step, format_trace, mac_step, naive_conv2d, naive_dot, naive_linear, trace_dot
from .requant import (
    INT32_MAX, INT32_MIN, multiply_by_quantized_multiplier, quantize_multiplier, real_multiplier, requantize,
    rounding_divide_by_pot, saturating_rounding_doubling_high_mul,
)

__all__ = [
    "IntegerLeNet", "IntegerModelError", "IntLayer", "convert_lenet", "load_integer_model", "save_integer_model",
    "integer_forward", "predict", "ENERGY_PJ", "format_layer_report", "layer_report", "run_integer_report",
    "summary_line", "accumulator_sweep", "plot_sweep", "apply_thresholds", "compute_thresholds",
    "accumulate", "exact_matmul", "im2col", "int_conv2d", "int_linear",
    "bits_needed", "check_fits", "int_range", "overflows", "saturate", "wrap",
    "add_step", "format_trace", "mac_step", "naive_conv2d", "naive_dot", "naive_linear", "trace_dot",
    "INT32_MAX", "INT32_MIN", "multiply_by_quantized_multiplier", "quantize_multiplier", "real_multiplier",
    "requantize", "rounding_divide_by_pot", "saturating_rounding_doubling_high_mul",
]
