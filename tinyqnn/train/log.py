"""Per-epoch run logs (JSON + CSV, rewritten atomically) and the training-curve plot."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from ..utils import atomic_write_bytes, save_figure


class RunLog:
    """Collects one dict of metrics per epoch and mirrors them to ``<dir>/metrics.json`` and ``.csv``."""

    def __init__(self, directory: str | Path, config: dict[str, Any] | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.config = dict(config or {})
        self.rows: list[dict[str, Any]] = []

    def append(self, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))
        self.flush()

    def flush(self) -> None:
        payload = {"config": self.config, "epochs": self.rows}
        atomic_write_bytes(self.directory / "metrics.json", json.dumps(payload, indent=2).encode())
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_bytes(self.directory / "metrics.csv", buffer.getvalue().encode())


def plot_history(history: list[dict[str, Any]], path: str | Path | None = None, title: str = ""):
    """Loss and accuracy per epoch, train vs test; saved to ``path`` if given. Returns the figure."""
    import matplotlib.pyplot as plt  # never switch the backend: a notebook's inline figures must keep working
    from matplotlib.ticker import MaxNLocator

    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax_loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    if history and "test_loss" in history[0]:
        ax_loss.plot(epochs, [r["test_loss"] for r in history], "s-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    ax_acc.plot(epochs, [100 * r["train_accuracy"] for r in history], "o-", label="train")
    if history and "test_accuracy" in history[0]:
        ax_acc.plot(epochs, [100 * r["test_accuracy"] for r in history], "s-", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, dpi=120)
    return fig
