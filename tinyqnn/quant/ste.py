"""Straight-through estimators: a quantizer forward paired with a surrogate derivative backward.

A quantizer is piecewise constant, so its true derivative is 0 almost everywhere and backprop
through it learns nothing. An STE keeps the quantized forward but, going backward, multiplies the
incoming gradient by the derivative ``mu'(x)`` of some *other* function ``mu``::

    forward:  y = q(x)                  backward:  dL/dx = dL/dy * mu'(x)

Every STE is one ``tinyqnn.Function`` subclass with three pieces a reader can check against its
docstring formula: ``quantize(x, bits, alpha, ...)`` (the forward, NumPy), ``derivative(x, bits,
alpha, ...)`` (``mu'``, NumPy) and the inherited ``forward``/``backward`` that tie them to autograd.
Use them as ``get_ste("clipped_relu").apply(x, bits=2, alpha=0.6511)``.

Families:

* surrogates for the quantized ReLU (forward = ``quantize_relu`` with the ``"ceil"`` or ``"round"``
  rule): ``identity``, ``relu``, ``clipped_relu`` (Yin et al. 2019) and any learner-made STE;
* binary sign quantizers (forward ``sign(x)`` in {-1, +1}, ``bits`` must be 1): ``hardtanh``
  (alias ``saturated``, BinaryNet), ``approx_sign`` (Bi-Real Net), ``swish_sign`` (Larq);
* own quantizers: ``dorefa`` (inputs clipped to [0, 1]); ``pact`` and ``lsq`` learn their clip
  level / step, so they take that parameter as a second tensor input and return its gradient.

Learner-defined STEs::

    mine = make_ste("mine", derivative=lambda x, bits, alpha: np.exp(-x**2))   # registered as "mine"
    y = mine.apply(x, bits=2, alpha=0.65)       # or QuantAct(2, ste="mine")
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..engine import Context, Function, Tensor
from ..engine.tensor import as_tensor
from .activation import (
    check_alpha, check_bits, check_float_input, check_rule, clip_level, num_levels, quantize_relu,
)

Derivative = Callable[..., np.ndarray]


# ---------------------------------------------------------------------- base class
class STE(Function):
    """Quantized ReLU forward, ``grad * derivative(x)`` backward. Subclasses set ``derivative``.

    ``apply(x, bits=1, alpha=1.0, quantizer="ceil", **params)``; ``x`` any shape.
    ``forward`` and ``backward`` are classmethods (not the usual staticmethods) so that one pair
    serves every subclass: each only states its ``quantize`` and ``derivative``.
    """

    name: str = "ste"
    #: forward is the quantized ReLU whose rule ("ceil"/"round") the caller picks
    uses_rule: bool = True
    #: forward is sign(x); only bits=1 makes sense
    binary: bool = False
    #: name of a learned quantity passed as the second tensor input (PACT: "clip", LSQ: "step")
    learnable: str | None = None

    @staticmethod
    def quantize(x: np.ndarray, bits: int, alpha: float, quantizer: str = "ceil", **params: Any) -> np.ndarray:
        return quantize_relu(x, bits, alpha, quantizer)

    @staticmethod
    def derivative(x: np.ndarray, bits: int, alpha: float, **params: Any) -> np.ndarray:
        raise NotImplementedError("an STE subclass must define derivative(x, bits, alpha)")

    @classmethod
    def forward(  # type: ignore[override]
        cls, ctx: Context, x: np.ndarray, bits: int = 1, alpha: float = 1.0, quantizer: str = "ceil", **params: Any
    ) -> np.ndarray:
        check_float_input(x, f"STE {cls.name!r}")
        bits, alpha = check_bits(bits), check_alpha(alpha)
        check_rule(quantizer)
        if cls.binary and bits != 1:
            raise ValueError(f"STE {cls.name!r} quantizes to sign(x) in {{-1, +1}}: it needs bits=1, got bits={bits}")
        ctx.save_for_backward(x)
        ctx.args = (bits, alpha, params)
        return np.asarray(cls.quantize(x, bits, alpha, quantizer, **params), dtype=x.dtype)

    @classmethod
    def backward(cls, ctx: Context, grad: np.ndarray):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        bits, alpha, params = ctx.args
        local = np.broadcast_to(np.asarray(cls.derivative(x, bits, alpha, **params), dtype=grad.dtype), x.shape)
        return grad * local  # chain rule with the surrogate mu'(x) in place of q'(x)


def _sign(x: np.ndarray) -> np.ndarray:
    """sign with sign(0) = +1, so every output is one of the two levels; NaN stays NaN (never a level)."""
    x = np.asarray(x)
    dtype = x.dtype if x.dtype.kind == "f" else np.float64
    return np.where(x >= 0, 1, np.where(np.isnan(x), np.nan, -1)).astype(dtype)


# ---------------------------------------------------------------------- quantized-ReLU surrogates
class IdentitySTE(STE):
    """Identity STE: mu(x) = x, so mu'(x) = 1 everywhere (the gradient passes straight through)."""

    name = "identity"

    @staticmethod
    def derivative(x: np.ndarray, bits: int, alpha: float, **params: Any) -> np.ndarray:
        return np.ones_like(x)


class ReLUSTE(STE):
    """Vanilla ReLU STE: mu(x) = max(x, 0), mu'(x) = 1{x > 0}."""

    name = "relu"

    @staticmethod
    def derivative(x: np.ndarray, bits: int, alpha: float, **params: Any) -> np.ndarray:
        return (x > 0).astype(x.dtype)


class ClippedReLUSTE(STE):
    """Clipped ReLU STE: mu(x) = min(max(x, 0), (2^b - 1) alpha), mu'(x) = 1{0 < x <= (2^b - 1) alpha}.

    The clip sits where the quantized ReLU saturates, so the surrogate is zero exactly where the
    quantizer is flat for good (Yin et al. 2019 show this one has the best-behaved coarse gradient).
    """

    name = "clipped_relu"

    @staticmethod
    def derivative(x: np.ndarray, bits: int, alpha: float, **params: Any) -> np.ndarray:
        return ((x > 0) & (x <= clip_level(bits, alpha))).astype(x.dtype)


# ---------------------------------------------------------------------- binary (sign) STEs
class SignSTE(STE):
    """Base of the binary STEs: forward sign(x) in {-1, +1} (sign(0) = +1, bits must be 1);
    subclasses state only their surrogate derivative."""

    uses_rule, binary = False, True

    @staticmethod
    def quantize(x: np.ndarray, bits: int, alpha: float, quantizer: str = "ceil", **params: Any) -> np.ndarray:
        return _sign(x)


class HardTanhSTE(SignSTE):
    """Saturated STE of BinaryNet: forward sign(x) in {-1, +1} (sign(0) = +1),
    mu(x) = hardtanh(x) = clip(x, -1, 1), so mu'(x) = 1{|x| <= 1}."""

    name = "hardtanh"

    @staticmethod
    def derivative(x: np.ndarray, bits: int, alpha: float, **params: Any) -> np.ndarray:
        return (np.abs(x) <= 1).astype(x.dtype)


class ApproxSignSTE(SignSTE):
    """ApproxSign of Bi-Real Net: forward sign(x); mu is the piecewise quadratic
    mu(x) = -1 (x < -1), 2x + x^2 (-1 <= x < 0), 2x - x^2 (0 <= x < 1), 1 (x >= 1), so
    mu'(x) = max(0, 2 - 2|x|)  (a triangle of area 2, the jump of sign)."""

    name = "approx_sign"

    @staticmethod
    def derivative(x: np.ndarray, bits: int, alpha: float, **params: Any) -> np.ndarray:
        return np.maximum(0, 2 - 2 * np.abs(x)).astype(x.dtype)


class SwishSignSTE(SignSTE):
    """SwishSign (BNN+, as in Larq): forward sign(x); mu(x) = 2 s(bx) (1 + bx (1 - s(bx))) - 1 with
    s the logistic sigmoid and b = ``beta`` (default 5), so
    mu'(x) = b (2 - bx tanh(bx / 2)) / (1 + cosh(bx)). Larger beta: closer to sign, sharper peak."""

    name = "swish_sign"

    @staticmethod
    def derivative(x: np.ndarray, bits: int, alpha: float, beta: float = 5.0, **params: Any) -> np.ndarray:
        bx = np.clip(beta * x, -50, 50)  # cosh overflows far out, where mu' is 0 anyway
        return (beta * (2 - bx * np.tanh(bx / 2)) / (1 + np.cosh(bx))).astype(x.dtype)


# ---------------------------------------------------------------------- DoReFa
class DoReFaSTE(STE):
    """DoReFa-Net activation quantizer: y = rint((2^b - 1) clip(x, 0, 1)) / (2^b - 1)
    (levels i / (2^b - 1) in [0, 1]; ``alpha`` is ignored), mu(x) = clip(x, 0, 1), mu'(x) = 1{0 <= x <= 1}."""

    name = "dorefa"
    uses_rule = False

    @staticmethod
    def quantize(x: np.ndarray, bits: int, alpha: float, quantizer: str = "ceil", **params: Any) -> np.ndarray:
        n = num_levels(bits)
        return np.rint(np.clip(x, 0, 1) * n) / n

    @staticmethod
    def derivative(x: np.ndarray, bits: int, alpha: float, **params: Any) -> np.ndarray:
        return ((x >= 0) & (x <= 1)).astype(x.dtype)


# ---------------------------------------------------------------------- learned clip / step
def _learned_value(name: str, value: np.ndarray) -> float:
    value = np.asarray(value)
    if value.size != 1:
        raise ValueError(f"{name} must hold one number, got shape {value.shape}")
    v = float(value.reshape(()))
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be positive, got {v}")
    return v


class PACTSTE(STE):
    """PACT (Choi et al. 2018): a learned clip level ``a`` (a tensor), k = 2^b - 1 levels::

        y   = rint(clip(x, 0, a) * k / a) * a / k
        dy/dx = 1{0 <= x < a}          dy/da = 1{x >= a}

    (the rounding is passed straight through; on its own ``clip(x, 0, a)`` has exactly these
    derivatives). ``apply(x, clip, bits=2)``; ``clip`` shape () or (1,). For plotting,
    ``quantize``/``derivative`` take the clip level as ``alpha``.
    """

    name = "pact"
    uses_rule, learnable = False, "clip"

    @staticmethod
    def quantize(x: np.ndarray, bits: int, alpha: float, quantizer: str = "ceil", **params: Any) -> np.ndarray:
        k = num_levels(bits)
        step = alpha / k
        return np.rint(np.clip(x, 0, alpha) / step) * step

    @staticmethod
    def derivative(x: np.ndarray, bits: int, alpha: float, **params: Any) -> np.ndarray:
        return ((x >= 0) & (x < alpha)).astype(x.dtype)

    @classmethod
    def forward(  # type: ignore[override]
        cls, ctx: Context, x: np.ndarray, clip: np.ndarray, bits: int = 2
    ) -> np.ndarray:
        check_float_input(x, "STE 'pact'")
        bits, a = check_bits(bits), _learned_value("PACT clip level", clip)
        ctx.save_for_backward(x)
        ctx.a, ctx.clip_shape = a, np.shape(clip)
        return np.asarray(cls.quantize(x, bits, np.asarray(a, dtype=x.dtype)), dtype=x.dtype)

    @classmethod
    def backward(cls, ctx: Context, grad: np.ndarray):  # type: ignore[override]
        (x,) = ctx.saved_tensors
        gx = grad * ((x >= 0) & (x < ctx.a))
        ga = np.sum(grad * (x >= ctx.a)).reshape(ctx.clip_shape)
        return gx, ga


class LSQSTE(STE):
    """LSQ (Esser et al. 2020): a learned step ``s`` (a tensor) and integer range [-Qn, Qp]::

        unsigned (activations): Qn = 0, Qp = 2^b - 1;   signed (weights): Qn = 2^(b-1), Qp = 2^(b-1) - 1
        v = x / s,   y = rint(clip(v, -Qn, Qp)) * s
        dy/dx = 1{-Qn <= v <= Qp}
        dy/ds = g * ( -Qn if v <= -Qn;  Qp if v >= Qp;  rint(v) - v otherwise ),   g = 1 / sqrt(N Qp)

    N = ``x.size`` unless ``grad_scale`` is given (the paper uses the number of weights, or of
    features of one layer). ``apply(x, step, bits=2, signed=False, grad_scale=None)``.
    For plotting, ``quantize``/``derivative`` take the step as ``alpha``.
    """

    name = "lsq"
    uses_rule, learnable = False, "step"

    @staticmethod
    def bounds(bits: int, signed: bool) -> tuple[int, int]:
        bits = check_bits(bits, minimum=2 if signed else 1)
        return (2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)

    @staticmethod
    def quantize(
        x: np.ndarray, bits: int, alpha: float, quantizer: str = "ceil", signed: bool = False, **params: Any
    ) -> np.ndarray:
        qn, qp = LSQSTE.bounds(bits, signed)
        return np.rint(np.clip(x / alpha, -qn, qp)) * alpha

    @staticmethod
    def derivative(x: np.ndarray, bits: int, alpha: float, signed: bool = False, **params: Any) -> np.ndarray:
        qn, qp = LSQSTE.bounds(bits, signed)
        v = x / alpha
        return ((v >= -qn) & (v <= qp)).astype(x.dtype)

    @classmethod
    def forward(  # type: ignore[override]
        cls, ctx: Context, x: np.ndarray, step: np.ndarray, bits: int = 2, signed: bool = False,
        grad_scale: float | None = None,
    ) -> np.ndarray:
        check_float_input(x, "STE 'lsq'")  # also keeps the step from being cast to an integer dtype
        qn, qp = cls.bounds(bits, signed)
        s = _learned_value("LSQ step", step)
        v = x / np.asarray(s, dtype=x.dtype)
        q = np.rint(np.clip(v, -qn, qp))
        ctx.save_for_backward(v, q)
        ctx.qn, ctx.qp, ctx.step_shape = qn, qp, np.shape(step)
        ctx.g = 1.0 / math.sqrt(x.size * qp) if grad_scale is None else float(grad_scale)
        return (q * np.asarray(s, dtype=x.dtype)).astype(x.dtype)

    @classmethod
    def backward(cls, ctx: Context, grad: np.ndarray):  # type: ignore[override]
        v, q = ctx.saved_tensors
        qn, qp = ctx.qn, ctx.qp
        inside = (v >= -qn) & (v <= qp)
        ds = np.where(v <= -qn, -qn, np.where(v >= qp, qp, q - v))
        gs = (ctx.g * np.sum(grad * ds)).reshape(ctx.step_shape)
        return grad * inside, gs


# ---------------------------------------------------------------------- registry
_BUILTIN: dict[str, type[STE]] = {
    cls.name: cls
    for cls in (
        IdentitySTE, ReLUSTE, ClippedReLUSTE, HardTanhSTE, ApproxSignSTE, SwishSignSTE, DoReFaSTE, PACTSTE, LSQSTE
    )
}
_BUILTIN["saturated"] = HardTanhSTE
_REGISTRY: dict[str, type[STE]] = dict(_BUILTIN)


def available_stes() -> list[str]:
    """Names accepted by ``get_ste`` (built-ins and everything registered since)."""
    return sorted(_REGISTRY)


def get_ste(ste: str | type[STE]) -> type[STE]:
    """The STE class registered under ``ste`` (an STE class is returned as is)."""
    if isinstance(ste, type) and issubclass(ste, STE):
        return ste
    if not isinstance(ste, str) or ste not in _REGISTRY:
        raise ValueError(f"unknown STE {ste!r}; known STEs: {', '.join(available_stes())}")
    return _REGISTRY[ste]


def register_ste(
    name: str,
    ste: type[STE] | None = None,
    *,
    derivative: Derivative | None = None,
    quantize: Callable[..., np.ndarray] | None = None,
    formula: str | None = None,
    overwrite: bool = False,
) -> type[STE]:
    """Register an STE class, or build one from a ``derivative`` function, under ``name``.

    Args:
        name: the name ``get_ste`` / ``QuantAct(ste=...)`` will accept.
        ste: an ``STE`` subclass; or leave None and give ``derivative(x, bits, alpha) -> array``
            (the forward is then the quantized ReLU, optionally replaced by ``quantize``).
        formula: text for the class docstring (say what mu'(x) is).
        overwrite: replace an earlier user registration under the same name (built-ins never).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"an STE name must be a non-empty string, got {name!r}")
    if name in _BUILTIN:
        raise ValueError(f"{name!r} is a built-in STE and cannot be replaced; pick another name")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"an STE named {name!r} is already registered; pass overwrite=True to replace it")
    if (ste is None) == (derivative is None):
        raise ValueError("register_ste needs exactly one of `ste` (an STE subclass) or `derivative=` (a function)")
    if ste is None:
        ste = _build(name, derivative, quantize, formula)
    elif not (isinstance(ste, type) and issubclass(ste, STE)):
        raise TypeError(f"register_ste: expected an STE subclass, got {ste!r}")
    _REGISTRY[name] = ste
    return ste


def make_ste(
    name: str,
    derivative: Derivative,
    quantize: Callable[..., np.ndarray] | None = None,
    formula: str | None = None,
    register: bool = True,
) -> type[STE]:
    """Build (and by default register, replacing an earlier one of the same name) an STE whose
    backward multiplies by ``derivative(x, bits, alpha)`` -- the quickest way to try your own.

    Example: ``make_ste("gauss", derivative=lambda x, bits, alpha: np.exp(-x**2 / 2))``.
    """
    if register:
        return register_ste(name, derivative=derivative, quantize=quantize, formula=formula, overwrite=True)
    return _build(name, derivative, quantize, formula)


def _build(name: str, derivative: Derivative, quantize: Callable[..., np.ndarray] | None, formula: str | None):
    if not callable(derivative):
        raise TypeError(f"derivative must be a function (x, bits, alpha) -> array, got {derivative!r}")
    body: dict[str, Any] = {
        "name": name,
        "derivative": staticmethod(lambda x, bits, alpha, **params: derivative(x, bits, alpha)),
        "__doc__": f"User STE {name!r}: forward quantized ReLU, backward mu'(x) = "
        f"{formula or 'derivative(x, bits, alpha)'}.",
    }
    if quantize is not None:
        body["quantize"] = staticmethod(quantize)
        body["uses_rule"] = False
    return type(f"STE_{name}", (STE,), body)


# ---------------------------------------------------------------------- functional form
def ste_quantize(
    x: Tensor, ste: str | type[STE] = "clipped_relu", bits: int = 2, alpha: float | None = None,
    quantizer: str = "ceil", **params: Any,
) -> Tensor:
    """Quantize ``x`` (any shape) with the forward of ``ste`` and its surrogate backward.

    ``alpha=None`` uses the paper's step for ``bits`` (``tinyqnn.quant.alpha.default_alpha``).
    PACT and LSQ learn their clip/step: call ``PACTSTE.apply(x, clip, bits=...)`` or use ``QuantAct``.
    """
    from .alpha import default_alpha

    cls = get_ste(ste)
    if cls.learnable:
        raise ValueError(
            f"STE {cls.name!r} learns its {cls.learnable}: call {cls.__name__}.apply(x, {cls.learnable}, bits=...) "
            "with a tensor, or use QuantAct which owns that parameter"
        )
    a = default_alpha(bits) if alpha is None else alpha
    return cls.apply(as_tensor(x), bits=bits, alpha=a, quantizer=quantizer, **params)
