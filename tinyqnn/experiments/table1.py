"""Table 1 of Yin et al. (2019): LeNet-5 on MNIST, float weights, quantized activations, bits x STE.

    python -m tinyqnn.experiments.table1 --out results/table1            # the paper's recipe (hours)
    python -m tinyqnn.experiments.table1 --quick --out results/table1-quick   # bundled subset, < 1 min

The paper's recipe: a pre-trained float LeNet-5 with a scale-free batch norm before each activation
is the start of every quantized run; its four ReLUs become ``QuantAct(bits, alpha, ste)`` with the
paper's fixed ``alpha`` (``tinyqnn.quant.PAPER_ALPHA``); SGD momentum 0.9, batch 64, lr 0.1 divided
by 10 after epochs 20 and 40, 50 epochs. The float pre-training is itself the cell ``float`` (same
recipe by default; the paper does not say how it pre-trained) and doubles as the float baseline.

Every cell lives in ``<out>/<cell>/``: ``checkpoint.npz`` (after every epoch), ``metrics.json/.csv``
(one row per epoch, including the training wall time ``epoch_seconds``), ``curves.png`` and, once
finished, ``final.json``. Re-running the command skips finished cells and resumes a half-finished
one from its last epoch (``tinyqnn.train.fit(resume=True)``; the batch order of an epoch depends
only on (seed, epoch), so a resumed run sees the batches an uninterrupted one would). Asking for
more epochs than a finished cell has continues it. A cell whose stored configuration differs from
the requested one (other lr, data, ...) is an error: use another ``--out`` or delete the cell.

The grid's outputs in ``<out>/``: ``table1.md`` and ``table1.csv`` (final training loss / test
accuracy per cell, next to the paper's MNIST numbers), ``accuracy_vs_bits.png`` and ``curves.png``.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..train.checkpoint import read_checkpoint_meta
from ..utils import atomic_write_bytes, save_figure

DATASETS = ("mnist", "fashion-mnist")
GRID_STES = ("identity", "relu", "clipped_relu")
GRID_BITS = (1, 2, 4)
FLOAT_CELL = "float"

#: Yin et al. (2019) Table 1, MNIST / LeNet-5: (bits, ste) -> (final training loss, validation accuracy %)
PAPER_TABLE1: dict[str, dict[tuple[int, str], tuple[float, float]]] = {
    "mnist": {
        (2, "identity"): (2.6e-2, 98.49), (2, "relu"): (5.1e-3, 99.24), (2, "clipped_relu"): (5.4e-3, 99.23),
        (4, "identity"): (6.0e-3, 98.98), (4, "relu"): (9.0e-4, 99.32), (4, "clipped_relu"): (8.8e-4, 99.24),
    },
}

#: ``--quick``: bundled subset, about 300 SGD steps in all (10-40 s on a shared 2-core machine). lr 0.02:
#: the paper's 0.1 is meant for 50 epochs and makes a few dozen steps too noisy to compare anything.
QUICK = dict(subset=True, train_limit=1000, test_limit=500, epochs=1, pretrain_epochs=3, lr=0.02, milestones=())


@dataclass
class GridConfig:
    """Everything that defines the grid. Cells compare their stored copy of it (minus ``epochs`` and
    ``data_dir``) before being skipped or resumed."""

    dataset: str = "mnist"
    subset: bool = False  # the bundled class-balanced subset instead of the full data set
    train_limit: int | None = None  # use only this many (evenly spaced) training images
    test_limit: int | None = None
    bits: tuple[int, ...] = GRID_BITS
    stes: tuple[str, ...] = GRID_STES
    epochs: int = 50
    pretrain_epochs: int = 50
    lr: float = 0.1
    milestones: tuple[int, ...] = (20, 40)
    momentum: float = 0.9
    weight_decay: float = 0.0  # the paper states none
    batch_size: int = 64
    eval_batch_size: int = 1000
    seed: int = 0
    data_dir: str | None = None
    quick: bool = False

    def cells(self) -> list[str]:
        return [FLOAT_CELL] + [cell_name(b, s) for b in self.bits for s in self.stes]


def quick_config(**overrides: Any) -> GridConfig:
    """The ``--quick`` grid as a ``GridConfig`` (for notebooks: ``run_grid(quick_config(), "runs/t1")``)."""
    return GridConfig(**{**QUICK, "quick": True, **overrides})


def resume_files(cfg: GridConfig) -> tuple[str, ...]:
    """The files (relative to the grid's folder) from which ``run_grid`` would skip or resume a cell."""
    return tuple(f"{cell}/{name}" for cell in cfg.cells() for name in ("final.json", "checkpoint.npz"))


def cell_name(bits: int, ste: str) -> str:
    """Folder name of a quantized cell, e.g. ``4bit_clipped_relu``."""
    return f"{bits}bit_{ste}"


def parse_cell(name: str) -> tuple[int | None, str | None]:
    """``"4bit_relu" -> (4, "relu")``; ``"float" -> (None, None)``."""
    if name == FLOAT_CELL:
        return None, None
    bits, _, ste = name.partition("bit_")
    return int(bits), ste


def paper_table1(dataset: str = "mnist") -> dict[tuple[int, str], tuple[float, float]]:
    """The paper's (training loss, accuracy %) per (bits, ste); empty for data sets it did not run."""
    return dict(PAPER_TABLE1.get(dataset, {}))


# ---------------------------------------------------------------------- data
def _evenly(dataset: Any, limit: int | None) -> Any:
    """``limit`` evenly spaced samples of ``dataset`` (all of it when ``limit`` is None or too big)."""
    n = len(dataset)
    if limit is None or limit >= n:
        return dataset
    if limit < 1:
        raise ValueError(f"a data limit must be >= 1, got {limit}")
    index = (np.arange(limit) * n) // limit
    return type(dataset).from_arrays(dataset.images[index], dataset.labels[index], dataset.train)


def load_data(cfg: GridConfig) -> tuple[Any, Any]:
    """(train, test) datasets of the grid (full, or the bundled subset), limited as configured."""
    from .. import data

    if cfg.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {cfg.dataset!r}; choose one of {', '.join(DATASETS)}")
    if cfg.subset:
        make = data.mnist_subset if cfg.dataset == "mnist" else data.fashion_mnist_subset
        train, test = make(train=True), make(train=False)
    else:
        cls = data.MNIST if cfg.dataset == "mnist" else data.FashionMNIST
        train, test = cls(root=cfg.data_dir, train=True), cls(root=cfg.data_dir, train=False)
    return _evenly(train, cfg.train_limit), _evenly(test, cfg.test_limit)


class EpochLoader:
    """Shuffled mini-batches whose order depends only on ``(seed, epoch)``.

    ``fit`` iterates the loader once per epoch; each ``iter()`` is the next epoch. Set ``epoch`` to
    the last finished epoch before resuming, and the remaining epochs see exactly the batches an
    uninterrupted run would have seen.
    """

    def __init__(self, dataset: Any, batch_size: int, seed: int, epoch: int = 0):
        from ..data import DataLoader

        self._make = lambda e: DataLoader(dataset, batch_size=batch_size, shuffle=True, seed=seed * 1_000_003 + e)
        self.dataset = dataset
        self.epoch = epoch
        self._len = len(self._make(0))

    def __len__(self) -> int:
        return self._len

    def set_epoch(self, epoch: int) -> None:
        """The next ``iter()`` yields epoch ``epoch`` (``fit`` calls this before each epoch)."""
        self.epoch = epoch - 1

    def __iter__(self):
        self.epoch += 1
        if hasattr(self.dataset, "set_epoch"):  # random augmentation: its numbers depend on (seed, epoch) too
            self.dataset.set_epoch(self.epoch)
        return iter(self._make(self.epoch))


# ---------------------------------------------------------------------- cells
def build_model(bits: int | None = None, ste: str | None = None, alpha: float | None = None):
    """LeNet-5 with a scale-free BN before each activation; ReLU (``bits=None``) or ``QuantAct``."""
    from ..models import LeNet5
    from ..quant import QuantAct

    if bits is None:
        return LeNet5(batch_norm=True, bn_affine=False)
    return LeNet5(batch_norm=True, bn_affine=False, activation=lambda name, n: QuantAct(bits, alpha, ste))


def cell_config(cfg: GridConfig, name: str) -> dict[str, Any]:
    """The facts a cell's result depends on (all but its epoch count), as stored in its files."""
    from ..quant import default_alpha

    bits, ste = parse_cell(name)
    is_float = bits is None
    conf: dict[str, Any] = {
        "cell": name, "dataset": cfg.dataset, "subset": cfg.subset, "train_limit": cfg.train_limit,
        "test_limit": cfg.test_limit, "bits": bits, "ste": ste,
        "alpha": None if is_float else default_alpha(bits), "quantizer": None if is_float else "ceil",
        "lr": cfg.lr, "milestones": list(cfg.milestones), "momentum": cfg.momentum,
        "weight_decay": cfg.weight_decay, "batch_size": cfg.batch_size, "seed": cfg.seed,
        "start": "random init" if is_float else f"{FLOAT_CELL} cell after {cfg.pretrain_epochs} epochs",
    }
    return json.loads(json.dumps(conf))  # the JSON round trip a stored copy went through


def _check_same(stored: dict[str, Any], wanted: dict[str, Any], where: Path) -> None:
    diff = {k: (stored.get(k), wanted[k]) for k in wanted if stored.get(k) != wanted[k]}
    if diff:
        text = ", ".join(f"{k}: stored {a!r} vs requested {b!r}" for k, (a, b) in diff.items())
        raise ValueError(f"{where} was made with another configuration ({text}); "
                         f"use another --out or delete {where.parent if where.is_file() else where}")


def load_cell_result(cell_dir: str | Path) -> dict[str, Any] | None:
    """The ``final.json`` of a finished cell, or None."""
    path = Path(cell_dir) / "final.json"
    return json.loads(path.read_text()) if path.is_file() else None


def run_cell(
    name: str, cfg: GridConfig, out: Path, data: tuple[Any, Any] | None = None, progress: bool = True,
    fit_fn: Callable[..., list[dict[str, float]]] | None = None,
) -> dict[str, Any]:
    """Train (or skip, or resume) one cell; returns its final record (also in ``<out>/<name>/final.json``).

    Wall time: ``history[i]["epoch_seconds"]`` is the training pass of epoch i; the record's
    ``wall_seconds_per_epoch`` also counts evaluation and checkpointing (this session's epochs).

    ``data``: (train, test) datasets, loaded from ``cfg`` when None. ``fit_fn``: ``tinyqnn.train.fit``
    unless given (tests count calls with it).
    """
    from .. import manual_seed, optim
    from ..data import DataLoader
    from ..train import RunLog, fit, load_checkpoint, plot_history

    fit_fn = fit_fn or fit
    cell_dir = out / name
    conf = cell_config(cfg, name)
    epochs = cfg.pretrain_epochs if name == FLOAT_CELL else cfg.epochs
    done = load_cell_result(cell_dir)
    if done is not None:
        _check_same(done["config"], conf, cell_dir / "final.json")
        if done["epochs"] >= epochs:
            return {**done, "skipped": True}
    checkpoint = cell_dir / "checkpoint.npz"
    history: list[dict[str, Any]] = []
    if checkpoint.is_file():
        meta = read_checkpoint_meta(checkpoint)
        _check_same(meta.get("config", {}), conf, checkpoint)
        history = list(meta.get("history", []))

    bits, ste = parse_cell(name)
    manual_seed(cfg.seed)
    model = build_model(bits, ste, conf["alpha"])
    if not history and bits is not None:  # a fresh quantized cell starts from the float cell's weights
        start = out / FLOAT_CELL / "checkpoint.npz"
        if load_cell_result(out / FLOAT_CELL) is None:
            raise FileNotFoundError(f"cell {name} starts from the float cell, but {out / FLOAT_CELL} is not finished")
        load_checkpoint(start, model, check_quantization=False)  # float weights into the quantized net
    train, test = data if data is not None else load_data(cfg)
    train_loader = EpochLoader(train, cfg.batch_size, cfg.seed, epoch=len(history))
    test_loader = DataLoader(test, batch_size=cfg.eval_batch_size)
    optimizer = optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones), gamma=0.1)
    log = RunLog(cell_dir, conf)
    log.rows = [dict(row) for row in history]  # keep the epochs of earlier sessions in metrics.json/csv

    start_time, first_epoch = time.perf_counter(), len(history) + 1
    history = fit_fn(model, train_loader, test_loader, optimizer, epochs, scheduler=scheduler, log=log,
                     checkpoint=checkpoint, resume=True, progress=progress, meta={"config": conf})
    wall = time.perf_counter() - start_time
    if not history or history[-1]["epoch"] < epochs:
        raise RuntimeError(f"cell {name} stopped after {len(history)} of {epochs} epochs")
    last = history[-1]
    record = {
        "cell": name, "bits": bits, "ste": ste, "alpha": conf["alpha"], "epochs": last["epoch"],
        "final_train_loss": last["train_loss"], "final_test_loss": last["test_loss"],
        "final_test_accuracy": 100 * last["test_accuracy"],
        "best_test_accuracy": 100 * max(r["test_accuracy"] for r in history),
        "train_seconds_per_epoch": float(np.mean([r["epoch_seconds"] for r in history])),
        "session_wall_seconds": wall, "wall_seconds_per_epoch": wall / max(1, last["epoch"] - first_epoch + 1),
        "train_size": len(train), "test_size": len(test),
        "config": conf, "history": history,
    }
    atomic_write_bytes(cell_dir / "final.json", json.dumps(record, indent=2).encode())
    plot_history(history, cell_dir / "curves.png", title=f"{name} ({cfg.dataset})")
    return {**record, "skipped": False}


# ---------------------------------------------------------------------- tables and plots
def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _fmt_cell(loss: float | None, acc: float | None) -> str:
    return "—" if loss is None or acc is None else f"{loss:.1e} / {acc:.2f}"


def write_tables(results: dict[str, dict[str, Any]], cfg: GridConfig, out: Path) -> tuple[Path, Path]:
    """``table1.md`` and ``table1.csv`` in ``out`` from the cells' final records (missing ones: "—")."""
    paper = paper_table1(cfg.dataset)
    rows = []
    for name in cfg.cells():
        bits, ste = parse_cell(name)
        r = results.get(name)
        p_loss, p_acc = paper.get((bits, ste), (None, None)) if bits is not None else (None, None)
        rows.append({
            "cell": name, "bits": "float" if bits is None else bits, "ste": ste or "none (ReLU)",
            "alpha": "" if r is None or r["alpha"] is None else r["alpha"],
            "epochs": "" if r is None else r["epochs"],
            "final_train_loss": "" if r is None else f"{r['final_train_loss']:.4g}",
            "final_test_loss": "" if r is None else f"{r['final_test_loss']:.4g}",
            "final_test_accuracy": "" if r is None else f"{r['final_test_accuracy']:.2f}",
            "best_test_accuracy": "" if r is None else f"{r['best_test_accuracy']:.2f}",
            "paper_train_loss": "" if p_loss is None else p_loss,
            "paper_test_accuracy": "" if p_acc is None else p_acc,
            "train_seconds_per_epoch": "" if r is None else f"{r['train_seconds_per_epoch']:.1f}",
        })
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    csv_path = out / "table1.csv"
    atomic_write_bytes(csv_path, buffer.getvalue().encode())

    from ..quant import default_alpha

    any_r = next(iter(results.values()), None)
    sizes = f"{any_r['train_size']} training / {any_r['test_size']} test images" if any_r else "?"
    source = "bundled subset" if cfg.subset else "full data set"
    schedule = f"divided by 10 after epochs {list(cfg.milestones)}" if cfg.milestones else "(constant)"
    lines = [
        f"# Table 1 (Yin et al. 2019): LeNet-5 on {cfg.dataset}, float weights, quantized activations",
        "",
        f"Each entry: final training loss / test accuracy (%, on the test set; the paper's \"validation accuracy\") "
        f"after the cell's last epoch"
        + (" (paper's MNIST value in brackets)." if paper else "."),
        f"Data: {cfg.dataset}, {source}, {sizes}. Quantized cells: {_n(cfg.epochs, 'epoch')} from the float "
        f"cell ({_n(cfg.pretrain_epochs, 'epoch')}); SGD momentum {cfg.momentum}, batch {cfg.batch_size}, lr {cfg.lr} "
        f"{schedule}, weight decay {cfg.weight_decay}; scale-free BN "
        f"before each activation; alpha fixed per bit width (ceil quantizer).",
        "",
        "| bits | alpha | " + " | ".join(cfg.stes) + " |",
        "|---|---|" + "---|" * len(cfg.stes),
    ]
    for b in cfg.bits:
        entries = []
        for s in cfg.stes:
            r = results.get(cell_name(b, s))
            text = _fmt_cell(r and r["final_train_loss"], r and r["final_test_accuracy"])
            if (b, s) in paper:
                text += " (" + _fmt_cell(*paper[(b, s)]) + ")"
            entries.append(text)
        lines.append(f"| {b} | {default_alpha(b):.4g} | " + " | ".join(entries) + " |")
    r = results.get(FLOAT_CELL)
    lines += ["", f"Float baseline (ReLU, same BN; the paper reports none): "
              f"{_fmt_cell(r and r['final_train_loss'], r and r['final_test_accuracy'])}."]
    missing = [n for n in cfg.cells() if n not in results]
    if missing:
        lines.append(f"Not finished yet: {', '.join(missing)}.")
    md_path = out / "table1.md"
    atomic_write_bytes(md_path, ("\n".join(lines) + "\n").encode())
    return md_path, csv_path


def plot_accuracy_vs_bits(results: dict[str, dict[str, Any]], cfg: GridConfig, path: Path) -> None:
    """Test accuracy vs bit width, one line per STE; paper's points hollow; float baseline dashed."""
    import matplotlib.pyplot as plt  # never switch the backend: a notebook's inline figures must keep working

    paper = paper_table1(cfg.dataset)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for i, ste in enumerate(cfg.stes):
        pts = [(b, results[cell_name(b, ste)]["final_test_accuracy"]) for b in cfg.bits if cell_name(b, ste) in results]
        if pts:
            ax.plot(*zip(*pts), "o-", color=f"C{i}", label=f"{ste} (ours)")
        ppts = [(b, paper[(b, ste)][1]) for b in cfg.bits if (b, ste) in paper]
        if ppts:
            ax.plot(*zip(*ppts), "o--", color=f"C{i}", mfc="none", alpha=0.7, label=f"{ste} (paper)")
    if FLOAT_CELL in results:
        ax.axhline(results[FLOAT_CELL]["final_test_accuracy"], color="k", ls=":", label="float (ours)")
    ax.set_xscale("log", base=2)
    ax.minorticks_off()
    ax.set_xticks(list(cfg.bits), [str(b) for b in cfg.bits])
    ax.set(xlabel="activation bits", ylabel="test accuracy (%)",
           title=f"LeNet-5 on {cfg.dataset}: accuracy vs bits")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


def plot_grid_curves(results: dict[str, dict[str, Any]], cfg: GridConfig, path: Path) -> None:
    """Training loss and test accuracy per epoch for every finished cell (colour = STE, style = bits).

    Quantized cells are drawn after the float cell's epochs, where they start from its weights.
    """
    import matplotlib.pyplot as plt  # never switch the backend: a notebook's inline figures must keep working

    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    styles = ["-", "--", ":", "-."]
    for name in cfg.cells():
        r = results.get(name)
        if r is None:
            continue
        bits, ste = parse_cell(name)
        color = "k" if bits is None else f"C{list(cfg.stes).index(ste)}"
        ls = "-" if bits is None else styles[list(cfg.bits).index(bits) % len(styles)]
        shift = 0 if bits is None else cfg.pretrain_epochs
        epochs = [h["epoch"] + shift for h in r["history"]]
        ax_loss.plot(epochs, [h["train_loss"] for h in r["history"]], ls, color=color, label=name, marker=".")
        ax_acc.plot(epochs, [100 * h["test_accuracy"] for h in r["history"]], ls, color=color, label=name, marker=".")
    ax_loss.set(xlabel="epoch (float pre-training, then quantized)", ylabel="training loss", yscale="log",
                title="training loss per cell")
    ax_acc.set(xlabel="epoch (float pre-training, then quantized)", ylabel="test accuracy (%)",
               title="test accuracy per cell")
    for ax in (ax_loss, ax_acc):
        ax.axvline(cfg.pretrain_epochs + 0.5, color="gray", lw=0.8)
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_figure(fig, path)


# ---------------------------------------------------------------------- the grid
def run_grid(cfg: GridConfig, out: str | Path, progress: bool = True, plots: bool = True,
             log: Callable[[str], None] = print, fit_fn: Callable[..., Any] | None = None) -> dict[str, dict[str, Any]]:
    """Run (or skip/resume) every cell of ``cfg``, float first; write the tables (after every cell) and plots.

    Returns ``{cell: final record}``; a record's ``skipped`` is True when the cell was already done.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "grid.json", json.dumps(asdict(cfg), indent=2).encode())
    data = load_data(cfg)
    results: dict[str, dict[str, Any]] = {}
    cells = cfg.cells()
    for i, name in enumerate(cells, 1):
        t0 = time.perf_counter()
        if progress and load_cell_result(out / name) is None:
            log(f"[{i}/{len(cells)}] {name}: training ...")
        record = run_cell(name, cfg, out, data=data, progress=progress, fit_fn=fit_fn)
        results[name] = record
        status = "done already, skipped" if record["skipped"] else f"{time.perf_counter() - t0:.0f} s"
        log(f"[{i}/{len(cells)}] {name:>18}: train loss {record['final_train_loss']:.3g}, "
            f"test accuracy {record['final_test_accuracy']:.2f}% after {_n(record['epochs'], 'epoch')} ({status})")
        write_tables(results, cfg, out)
    if plots:
        plot_accuracy_vs_bits(results, cfg, out / "accuracy_vs_bits.png")
        plot_grid_curves(results, cfg, out / "curves.png")
    return results


def config_from_args(args: argparse.Namespace) -> GridConfig:
    cfg = GridConfig(dataset=args.dataset, data_dir=args.data_dir, seed=args.seed, subset=args.subset)
    if args.quick:
        for key, value in QUICK.items():
            setattr(cfg, key, value)
        cfg.quick = True
    for key in ("bits", "stes", "milestones"):
        value = getattr(args, key)
        if value is not None:
            setattr(cfg, key, tuple(value))
    for key in ("epochs", "pretrain_epochs", "lr", "batch_size", "weight_decay", "train_limit", "test_limit"):
        value = getattr(args, key)
        if value is not None:
            setattr(cfg, key, value)
    from ..quant import available_stes, check_bits

    for b in cfg.bits:
        check_bits(b)
    unknown = [s for s in cfg.stes if s not in available_stes()]
    if unknown:
        raise ValueError(f"unknown STE(s) {unknown}; choose from {', '.join(available_stes())}")
    if cfg.epochs < 1 or cfg.pretrain_epochs < 1:
        raise ValueError(f"--epochs and --pretrain-epochs must be >= 1, got {cfg.epochs}, {cfg.pretrain_epochs}")
    return cfg


def build_parser() -> argparse.ArgumentParser:
    from ..args import add_data_dir_arg, add_threads_arg, non_negative_float, non_negative_int, positive_float, positive_int
    from ..quant import available_stes

    p = argparse.ArgumentParser(prog="python -m tinyqnn grid", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default="mnist",
                   help="%(choices)s (default mnist; fashion-mnist has no paper numbers)")
    p.add_argument("--bits", type=int, nargs="+", default=None, choices=range(1, 9), metavar="{1,...,8}",
                   help=f"activation bit widths, each 1 to 8 (default {' '.join(map(str, GRID_BITS))})")
    p.add_argument("--stes", nargs="+", default=None, choices=available_stes(), metavar="STE",
                   help=f"STEs, from %(choices)s (default {' '.join(GRID_STES)})")
    p.add_argument("--epochs", type=positive_int, default=None,
                   help="epochs of each quantized cell (default 50; quick 1)")
    p.add_argument("--pretrain-epochs", type=positive_int, default=None,
                   help="epochs of the float cell (default 50; quick 3)")
    p.add_argument("--lr", type=positive_float, default=None, help="initial learning rate (default 0.1; quick 0.02)")
    p.add_argument("--milestones", type=positive_int, nargs="*", default=None,
                   help="epochs after which lr is divided by 10 (default 20 40; quick none)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="mini-batch size (default 64)")
    p.add_argument("--weight-decay", type=non_negative_float, default=None,
                   help="L2 weight decay (default 0: the paper states none)")
    p.add_argument("--train-limit", type=positive_int, default=None,
                   help="use this many evenly spaced training images")
    p.add_argument("--test-limit", type=positive_int, default=None, help="use this many evenly spaced test images")
    p.add_argument("--subset", action="store_true", help="the bundled subset instead of the full data set")
    p.add_argument("--out", default=None, help="output folder (default results/table1, quick: results/table1-quick)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder that is not a tinyqnn grid (nothing there is deleted)")
    add_data_dir_arg(p)
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    add_threads_arg(p)
    p.add_argument("--quick", action="store_true",
                   help="CI / notebook size: bundled subset (1000 train / 500 test), 3 float + 1 quantized "
                        "epochs, lr 0.02")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    return p


def sweep_folder(out: Path, command: str, marker: str, what: str, force: bool) -> AbstractContextManager[Path]:
    """The run folder of a resumable sweep (``grid``, ``deep``): refused (``RunFolderError``, before any work) if it
    is not empty and not a sweep of this kind, unless ``force``; a folder holding ``marker`` is one, with or without
    a manifest (runs from before manifests, or written by the library's ``run_grid`` / ``run_deep``), and its files
    are the sweep's to replace. Returns the ``recording_run`` to write the sweep in."""
    from ..utils import RunFolderError, describe_folder, folder_state, recording_run

    own = (out / marker).is_file()
    if folder_state(out) == "foreign" and not own and not force:
        raise RunFolderError(f"{out} is not empty and is not {what} (it holds {describe_folder(out)}); "
                             f"choose another --out, or pass --force to write the {command}'s files into it")
    return recording_run(out, command, replace_unlisted=own or force)


def main(argv: Sequence[str] | None = None) -> int:
    from ..args import USER_ERRORS, one_line
    from ..utils import default_blas_threads, default_num_threads, set_num_threads

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --help, or a refused value (argparse printed why): a status, as for other errors
        return int(done.code or 0)
    set_num_threads(args.threads or default_num_threads(), default_blas_threads())
    try:
        cfg = config_from_args(args)
        out = Path(args.out or ("results/table1-quick" if cfg.quick else "results/table1"))
        folder = sweep_folder(out, "grid", "grid.json", "a tinyqnn grid", args.force)
        cells = cfg.cells()
        print(f"Table 1 grid on {cfg.dataset}{' (quick)' if cfg.quick else ''}: {len(cells)} cells "
              f"({', '.join(cells)}) -> {out}/", flush=True)
        start = time.perf_counter()
        with folder:
            run_grid(cfg, out, progress=not args.no_progress, plots=not args.no_plots,
                     log=lambda s: print(s, flush=True))
    except USER_ERRORS as error:  # another configuration in --out, missing data, a diverged cell, ...
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - start:.0f} s: {out / 'table1.md'}, {out / 'table1.csv'}"
          + ("" if args.no_plots else f", {out / 'accuracy_vs_bits.png'}, {out / 'curves.png'}"))
    print((out / "table1.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
