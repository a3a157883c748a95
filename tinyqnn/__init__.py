"""tinyqnn: train activation-quantized networks from scratch in NumPy, then run them on integer hardware.

The package reads bottom-up: ``engine`` (Tensor, Function, autograd) -> ``nn`` (layers, losses) ->
``optim`` -> ``data`` -> ``models`` -> ``train``; later: ``quant`` -> ``fixedpoint`` -> ``course``.
"""
from .engine import *  # noqa: F401,F403
from .engine import Context, Function, Tensor, manual_seed, no_grad, set_grad_enabled
from .engine.gradcheck import gradcheck
from . import data, models, nn, optim, train  # noqa: E402,F401  (import tinyqnn; tinyqnn.nn.Linear, ...)

__version__ = "0.1.0"
