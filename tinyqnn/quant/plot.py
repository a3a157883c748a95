"""Draw an STE: its forward quantizer and its surrogate derivative, side by side (matplotlib)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .alpha import default_alpha
from .ste import STE, get_ste


def ste_curves(
    ste: str | type[STE], bits: int = 2, alpha: float | None = None, quantizer: str = "ceil",
    x_range: tuple[float, float] = (-1.0, 3.0), num: int = 2001, **params: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, quantize(x), derivative(x)) on a grid of ``num`` points (float64 arrays of shape (num,)).

    For PACT ``alpha`` is the clip level, for LSQ the step (default: the paper's step for ``bits``,
    times 2^bits - 1 for PACT).
    """
    cls = get_ste(ste)
    bits = 1 if cls.binary else bits
    a = default_alpha(bits) if alpha is None else float(alpha)
    if alpha is None and cls.learnable == "clip":
        a *= 2**bits - 1
    x = np.linspace(*x_range, num)
    y = np.asarray(cls.quantize(x, bits, a, quantizer, **params))
    return x, y, np.asarray(cls.derivative(x, bits, a, **params))


def plot_ste(
    ste: str | type[STE], bits: int = 2, alpha: float | None = None, quantizer: str = "ceil",
    x_range: tuple[float, float] = (-1.0, 3.0), axes: Sequence[Any] | None = None, **params: Any,
):
    """Left: the forward quantizer; right: the surrogate derivative mu'(x). Returns the figure.

    ``axes``: two matplotlib Axes to draw into (default: a new 1x2 figure).
    """
    import matplotlib.pyplot as plt

    cls = get_ste(ste)
    x, q, d = ste_curves(cls, bits, alpha, quantizer, x_range, **params)
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    else:
        fig = axes[0].figure
    shown_bits = 1 if cls.binary else bits
    axes[0].plot(x, q, color="C0")  # dense grid: jumps show as near-vertical lines
    axes[0].plot(x, x, ":", color="gray", lw=0.8, label="y = x")
    axes[0].set_title(f"{cls.name}: forward ({shown_bits} bit{'s' if shown_bits > 1 else ''})")
    axes[0].set_xlabel("x")
    axes[0].legend(loc="upper left", fontsize=8)
    axes[1].plot(x, d, color="C1")
    axes[1].set_title(f"{cls.name}: backward mu'(x)")
    axes[1].set_xlabel("x")
    for ax in axes:
        ax.axhline(0, color="k", lw=0.5)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_stes(names: Sequence[str], bits: int = 2, **kwargs: Any):
    """One row (quantizer | derivative) per STE name. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(names), 2, figsize=(9, 2.8 * len(names)), squeeze=False)
    for name, row in zip(names, axes):
        plot_ste(name, bits=bits, axes=row, **kwargs)
    fig.tight_layout()
    return fig
