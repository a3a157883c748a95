"""Figures for the two-layer theory: correlations, loss curves, and the spurious-minimum experiment."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .descent import DescentHistory


def _axes(ax: Any, ncols: int = 1, width: float = 5.0):
    import matplotlib.pyplot as plt

    if ax is not None:
        return (ax.figure if ncols == 1 else ax[0].figure), ax
    fig, ax = plt.subplots(1, ncols, figsize=(width * ncols, 3.5))
    return fig, ax


def plot_inner_products(histories: Mapping[str, DescentHistory], ax: Any = None):
    """<E g_mu, df/dw> along training, one curve per STE (the paper proves it is >= 0)."""
    fig, ax = _axes(ax)
    for name, h in histories.items():
        ax.plot(h.step, h.inner, label=name)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("iteration")
    ax.set_ylabel("<E g, df/dw>")
    ax.set_title("correlation of the coarse gradient with the true gradient")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_loss_curves(histories: Mapping[str, Sequence[DescentHistory]], ax: Any = None, log: bool = True):
    """Population loss vs iteration from several starts; one colour per STE."""
    fig, ax = _axes(ax)
    for i, (name, runs) in enumerate(histories.items()):
        for j, h in enumerate(runs):
            ax.plot(h.step, h.loss, color=f"C{i}", alpha=0.7, label=name if j == 0 else None)
    if log:
        ax.set_yscale("symlog", linthresh=1e-6)
    ax.set_xlabel("iteration")
    ax.set_ylabel("population loss f(v, w)")
    ax.set_title("coarse gradient descent from random starts")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_spurious_escape(histories: Mapping[str, DescentHistory], axes: Any = None):
    """Loss (left) and angle theta(w, w*) (right) of runs started at a spurious minimizer:
    the identity STE drifts away, ReLU / clipped ReLU stay put."""
    fig, axes = _axes(axes, ncols=2)
    for name, h in histories.items():
        axes[0].plot(h.step, h.loss, label=name)
        axes[1].plot(h.step, h.angle, label=name)
    axes[0].set_ylabel("population loss")
    axes[1].set_ylabel("theta(w, w*)")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.legend()
    axes[0].set_title("started at a spurious minimum (theta = pi)")
    fig.tight_layout()
    return fig
