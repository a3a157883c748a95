"""Accuracy and overflow counts of the integer LeNet-5 against the accumulator width, wrap vs saturate."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .convert import IntegerLeNet
from .infer import integer_forward

DEFAULT_WIDTHS = tuple(range(12, 33))


def accumulator_sweep(imodel: IntegerLeNet, pixels: np.ndarray, labels: np.ndarray,
                      widths: Sequence[int] = DEFAULT_WIDTHS, modes: Sequence[str] = ("wrap", "saturate"),
                      method: str | None = None, batch_size: int = 500,
                      log: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    """One row per (mode, width): accuracy %, overflowed additions (all layers and per layer), agreement with
    the exact (62-bit, never overflowing) accumulator's predictions."""
    if len(widths) == 0 or len(modes) == 0:  # an empty table would read as a finished sweep
        raise ValueError(f"accumulator_sweep needs at least one width and one mode, got {list(widths)}, {list(modes)}")
    reference = integer_forward(imodel, pixels, method=method, acc_bits=62, batch_size=batch_size)[0].argmax(1)
    rows = []
    for mode in modes:
        for bits in widths:
            logits, stats = integer_forward(imodel, pixels, method=method, acc_bits=bits, overflow=mode,
                                            batch_size=batch_size, collect=True)
            pred = logits.argmax(axis=1)
            row = dict(mode=mode, acc_bits=int(bits), accuracy=100.0 * float(np.mean(pred == labels)),
                       agreement_with_exact=float(np.mean(pred == reference)),
                       overflows=int(sum(s["overflows"] for s in stats.values())),
                       outputs_overflowed=int(sum(s["outputs_overflowed"] for s in stats.values())),
                       per_layer={name: s["overflows"] for name, s in stats.items()})
            rows.append(row)
            if log:
                log(f"{mode:8s} {bits:2d}-bit accumulator: accuracy {row['accuracy']:6.2f}%   "
                    f"overflowed additions {row['overflows']:,}")
    return rows


def plot_sweep(rows: list[dict[str, Any]], path: str | Path, title: str = "") -> None:
    """Accuracy (top) and overflowed additions (bottom, log scale) vs accumulator width, one line per mode."""
    import matplotlib.pyplot as plt  # the default backend: a notebook keeps its inline figures
    import matplotlib.ticker

    from ..utils import save_figure

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(6.4, 6.0), sharex=True)
    for mode, style in (("wrap", "o-"), ("saturate", "s--")):
        sel = [r for r in rows if r["mode"] == mode]
        if not sel:
            continue
        bits = [r["acc_bits"] for r in sel]
        ax1.plot(bits, [r["accuracy"] for r in sel], style, label=mode)
        ax2.plot(bits, [max(r["overflows"], 0.5) for r in sel], style, label=mode)
    ax1.set_ylabel("test accuracy (%)")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.set_yscale("log")
    ax2.set_ylabel("overflowed additions (0 drawn at 0.5)")
    ax2.set_xlabel("accumulator width (bits)")
    ax2.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax2.grid(alpha=0.3)
    if title:
        ax1.set_title(title)
    fig.tight_layout()
    save_figure(fig, path)
