"""The autograd engine: ``Tensor``, ``Function`` and the differentiable ops."""
from .function import Context, Function
from .grad_mode import is_grad_enabled, no_grad, set_grad_enabled
from .random import default_generator, manual_seed
from .tensor import (
    Tensor, arange, as_tensor, ones, ones_like, rand, randn, tensor, zeros, zeros_like,
)
from . import ops
from .ops import *  # noqa: F401,F403
from .memory import keep_freed_memory  # called by the command line, opt-in for library users
