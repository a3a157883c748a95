"""``train_one_epoch`` / ``evaluate`` / ``fit``: the loops every lesson and experiment uses."""
from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .. import nn
from ..engine import Tensor, no_grad
from ..nn import functional as F
from .checkpoint import load_checkpoint, save_checkpoint
from .log import RunLog

LossFn = Callable[[Tensor, Tensor], Tensor]


def _nested_bars_render() -> bool:
    """True in a terminal or a notebook. A nested bar redraws with cursor-up codes, which a log file
    (``python -m tinyqnn demo > log``, CI) keeps as ``\x1b[A`` noise, so there only the epoch bar shows."""
    from tqdm.autonotebook import tqdm as auto_tqdm
    from tqdm.std import tqdm as std_tqdm

    return auto_tqdm is not std_tqdm or sys.stderr.isatty()


def _progress(loader: Iterable, enabled: bool, desc: str) -> Iterable:
    """``loader`` wrapped in a per-batch bar (nested under ``fit``'s epoch bar) when it can render."""
    if not (enabled and _nested_bars_render()):
        return loader
    return tqdm(loader, desc=desc, leave=False, dynamic_ncols=True)


def train_one_epoch(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    optimizer: Any,
    loss_fn: LossFn = F.cross_entropy,
    progress: bool = True,
    desc: str = "train",
) -> dict[str, float]:
    """One pass over ``loader`` with ``optimizer`` steps; returns mean loss, accuracy and images/s.

    The loss and accuracy are averaged over the samples seen *during* the epoch (while the
    weights still change), as most training logs do.
    """
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    bar = _progress(loader, progress, desc)
    for x, y in bar:
        logits = model(x)
        loss = loss_fn(logits, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        n = len(y)
        total_loss += loss.item() * n
        correct += int((logits.data.argmax(axis=1) == y.data).sum())
        seen += n
        if progress and hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}", refresh=False)
    elapsed = time.perf_counter() - start
    if seen == 0:
        raise ValueError("train_one_epoch: the loader produced no batches (batch_size larger than the dataset with drop_last?)")
    return {"loss": total_loss / seen, "accuracy": correct / seen, "images_per_s": seen / elapsed, "seconds": elapsed}


def evaluate(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    loss_fn: LossFn = F.cross_entropy,
    progress: bool = False,
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` (in eval mode, no graph recorded) over ``loader``."""
    was_training = model.training
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    try:
        with no_grad():
            for x, y in _progress(loader, progress, "eval"):
                logits = model(x)
                n = len(y)
                total_loss += loss_fn(logits, y).item() * n
                correct += int((logits.data.argmax(axis=1) == y.data).sum())
                seen += n
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("evaluate: the loader produced no batches")
    return {"loss": total_loss / seen, "accuracy": correct / seen}


def fit(
    model: nn.Module,
    train_loader: Iterable[tuple[Tensor, Tensor]],
    test_loader: Iterable[tuple[Tensor, Tensor]] | None,
    optimizer: Any,
    epochs: int,
    scheduler: Any = None,
    loss_fn: LossFn = F.cross_entropy,
    log: RunLog | None = None,
    checkpoint: str | Path | None = None,
    resume: bool = False,
    time_budget_s: float | None = None,
    progress: bool = True,
    meta: dict[str, Any] | None = None,
) -> list[dict[str, float]]:
    """Train for ``epochs`` epochs, evaluating after each; returns the per-epoch history.

    Args:
        log: where per-epoch metrics go (JSON + CSV), optional.
        checkpoint: ``.npz`` path written (atomically) after every epoch; with ``resume=True`` an
            existing checkpoint is loaded first and training continues from the epoch after it. The
            optimizer and scheduler must be built with the checkpoint's settings (lr, momentum,
            milestones, ...): different ones are refused, not silently replaced. ``log`` then keeps
            the checkpoint's earlier epochs, and a loader with ``set_epoch`` (``DataLoader``) is told each
            epoch, so a resumed run sees the batches an uninterrupted one would.
        time_budget_s: stop after the first epoch that ends past this many seconds (for demos).
        meta: extra JSON-able facts stored in the checkpoint (e.g. the run's configuration).
    """
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    history: list[dict[str, float]] = []
    first_epoch = 1
    if resume and checkpoint is not None and Path(checkpoint).exists():
        requested = _settings(optimizer, scheduler)
        saved = load_checkpoint(checkpoint, model, optimizer=optimizer, scheduler=scheduler)
        _refuse_changed_settings(checkpoint, _settings(optimizer, scheduler), requested)
        history = list(saved.get("history", []))
        first_epoch = int(saved.get("epoch", 0)) + 1
        if log is not None:  # the checkpoint's history is the truth: rows of unsaved epochs are dropped
            log.rows = [dict(row) for row in history]
    start = time.perf_counter()
    epoch_bar = tqdm(range(first_epoch, epochs + 1), desc="epochs", disable=not progress, dynamic_ncols=True)
    for epoch in epoch_bar:
        if callable(getattr(train_loader, "set_epoch", None)):
            train_loader.set_epoch(epoch)  # the batch order depends on the epoch: a resumed run sees the same
        lr = optimizer.param_groups[0]["lr"]
        metrics = train_one_epoch(model, train_loader, optimizer, loss_fn, progress, desc=f"epoch {epoch}")
        row: dict[str, float] = {"epoch": epoch, "lr": lr, "train_loss": metrics["loss"],
                                 "train_accuracy": metrics["accuracy"], "images_per_s": metrics["images_per_s"],
                                 "epoch_seconds": metrics["seconds"]}
        if test_loader is not None:
            test = evaluate(model, test_loader, loss_fn)
            row.update(test_loss=test["loss"], test_accuracy=test["accuracy"])
        if scheduler is not None:
            scheduler.step()
        history.append(row)
        epoch_bar.set_postfix({k: f"{row[k]:.4f}" for k in ("train_loss", "test_accuracy") if k in row})
        if log is not None:
            log.append(row)
        if checkpoint is not None:
            save_checkpoint(checkpoint, model, optimizer=optimizer, scheduler=scheduler,
                            meta={**(meta or {}), "epoch": epoch, "history": history})
        if time_budget_s is not None and time.perf_counter() - start > time_budget_s:
            break
    return history


def _settings(optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """The optimizer's and scheduler's hyper-parameters (not their progress): what a resume must keep."""
    state = optimizer.state_dict()
    settings = {}
    for key, value in state.items():
        if not key.startswith("param_groups.") or key.endswith(".params"):
            continue
        if key.endswith(".lr") and key[:-3] + ".initial_lr" in state:
            continue  # a scheduler moves lr; its starting value initial_lr is the setting
        settings[f"optimizer {key}"] = np.asarray(value).tolist()
    if scheduler is not None:
        for key, value in scheduler.state_dict().items():
            if key not in ("last_epoch", "last_lr"):
                settings[f"scheduler {key}"] = np.asarray(value).tolist()
    return settings


def _refuse_changed_settings(checkpoint: str | Path, saved: dict[str, Any], requested: dict[str, Any]) -> None:
    """A resumed run continues with the checkpoint's settings; other ones given to ``fit`` would be
    silently overwritten by the loaded state (and logged as used), so they are an error."""
    changed = [f"{key}: checkpoint {saved.get(key)!r}, given {value!r}"
               for key, value in requested.items() if saved.get(key) != value]
    if changed:
        raise ValueError(f"cannot resume from {checkpoint} with other settings ({'; '.join(changed)}); "
                         "resume with the run's own settings, or start a new run elsewhere")


def predictions(model: nn.Module, loader: Iterable[tuple[Tensor, Tensor]]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted and true labels over ``loader`` (for confusion matrices)."""
    model.eval()
    preds, labels = [], []
    with no_grad():
        for x, y in loader:
            preds.append(model(x).data.argmax(axis=1))
            labels.append(y.data)
    return np.concatenate(preds), np.concatenate(labels)
