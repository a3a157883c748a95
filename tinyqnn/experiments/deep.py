"""Table 1's deep rows (Yin et al. 2019): activation-quantized ResNets over depth, and the instability test.

    python -m tinyqnn deep --dataset fashion-mnist --out runs/deep_fashion           # the full sweep (days here)
    python -m tinyqnn deep --quick --out runs/deep-quick                              # seconds to minutes

For each net (ResNet-8/14/20 of the ResNet-(6n+2) family by default, ``--depths``; on CIFAR-10 also
``--vgg11``): a float cell (the pre-trained full-precision net; also the float baseline), then for each
bit width and STE a quantized cell that starts from it with every ReLU swapped for
``QuantAct(bits, paper's alpha, ste)`` (ceiling quantizer), as the paper does. Then the instability test
on each net: the ``--instability-bits`` clipped-ReLU cell continued with the identity STE at lr 1e-5,
next to a control run that keeps the clipped ReLU (``tinyqnn.experiments.instability``).

The paper's recipe (Table 2, CIFAR-10, ResNet-20 / VGG-11): SGD momentum 0.9, batch 128, lr 0.01
divided by 10 after epochs 80 and 140 of 200, from the pre-trained float net; random 32x32 crops of
4-pixel-padded images and horizontal flips. Not stated there: weight decay (default 1e-4 here, the
value of the authors' companion code) and how the float net was trained (here: the same schedule
at lr 0.1). Defaults here cut the epochs (``--epochs``, milestones scaled with ``--milestones``) to fit
a CPU; MNIST and Fashion-MNIST (28x28, 1 channel) use the same nets with a 1-channel stem (maps 28,
14, 7) and no augmentation.

Layout of ``--out``: ``<net>/<cell>/`` per cell (``checkpoint.npz`` after every epoch, recording the
model, so ``tinyqnn evaluate`` / ``load_model`` rebuild it; ``metrics.json/csv``; ``curves.png``;
``final.json`` once finished), ``<net>/instability_<b>bit/`` for the test, and at the top ``deep.md`` /
``deep.csv`` (final training loss / test accuracy per cell) and ``depth.png`` (accuracy and training
loss against depth, one line per STE). Rerunning skips finished cells and resumes a half-finished one
from its last epoch (the batch order and the crops depend only on (seed, epoch)).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..train.checkpoint import read_checkpoint_meta
from ..train.loop import TrainingDiverged
from ..utils import atomic_write_bytes, save_figure
from .table1 import (FLOAT_CELL, EpochLoader, _check_same, _evenly, cell_name, load_cell_result, parse_cell,
                     sweep_folder)

DATASETS = ("mnist", "fashion-mnist", "cifar10")
STES = ("identity", "relu", "clipped_relu")

#: Yin et al. Table 1, CIFAR-10: (net, bits, ste) -> (final training loss, validation accuracy %)
PAPER_DEEP: dict[tuple[str, int, str], tuple[float, float]] = {
    ("vgg11", 2, "identity"): (0.19, 86.58), ("vgg11", 2, "relu"): (0.10, 88.69),
    ("vgg11", 2, "clipped_relu"): (0.02, 90.92),
    ("vgg11", 4, "identity"): (3.1e-2, 90.19), ("vgg11", 4, "relu"): (1.5e-3, 92.01),
    ("vgg11", 4, "clipped_relu"): (1.3e-3, 92.08),
    ("resnet20", 2, "identity"): (1.56, 46.52), ("resnet20", 2, "relu"): (1.50, 48.05),
    ("resnet20", 2, "clipped_relu"): (0.24, 88.39),
    ("resnet20", 4, "identity"): (1.38, 54.16), ("resnet20", 4, "relu"): (0.25, 86.59),
    ("resnet20", 4, "clipped_relu"): (0.04, 91.24),
}

#: ``--quick``: the bundled Fashion-MNIST subset cut to 512 / 256 images, ResNet-8 and -14, 2 bits,
#: 2 float + 1 quantized epochs, 1 instability epoch (tens of seconds on a shared 2-core machine)
QUICK = dict(dataset="fashion-mnist", subset=True, train_limit=512, test_limit=256, depths=(8, 14), bits=(2,),
             epochs=1, pretrain_epochs=2, milestones=(), instability_epochs=1, instability_bits=(2,))


@dataclass
class DeepConfig:
    """Everything that defines the sweep; each cell stores the part it depends on and refuses another."""

    dataset: str = "fashion-mnist"
    subset: bool = False  # the bundled subset (MNIST / Fashion-MNIST only)
    train_limit: int | None = None
    test_limit: int | None = None
    depths: tuple[int, ...] = (8, 14, 20)
    width: int = 16  # channels of the first stage (ResNet: width, 2 width, 4 width; the paper's 16)
    vgg11: bool = False  # also VGG-11 (CIFAR-10 only)
    bits: tuple[int, ...] = (2, 4)
    stes: tuple[str, ...] = STES
    epochs: int = 20
    pretrain_epochs: int = 20
    lr: float = 0.01  # quantized cells (paper)
    pretrain_lr: float = 0.1
    milestones: tuple[int, ...] = (8, 14)  # the paper's 80, 140 of 200, scaled to 20 epochs
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    eval_batch_size: int = 500
    augment: bool | None = None  # None: crop + flip on CIFAR-10 only
    instability_bits: tuple[int, ...] = (4,)
    instability_epochs: int = 20
    instability_lr: float = 1e-5
    seed: int = 0
    data_dir: str | None = None
    quick: bool = False

    def nets(self) -> list[str]:
        return [f"resnet{d}" for d in self.depths] + (["vgg11"] if self.vgg11 else [])

    def cells(self) -> list[str]:
        return [FLOAT_CELL] + [cell_name(b, s) for b in self.bits for s in self.stes]

    def augmented(self) -> bool:
        return self.dataset == "cifar10" if self.augment is None else bool(self.augment)


def quick_config(**overrides: Any) -> DeepConfig:
    """The ``--quick`` sweep (for tests and notebooks): ``run_deep(quick_config(), "runs/deep-quick")``."""
    return DeepConfig(**{**QUICK, "quick": True, **overrides})


# ---------------------------------------------------------------------- data and models
def load_data(cfg: DeepConfig) -> tuple[Any, Any]:
    """(train, test) of the sweep: full sets, or the bundled subset, limited as configured; CIFAR-10's
    training set carries the crop-and-flip augmentation when ``cfg.augmented()``."""
    from .. import data

    if cfg.dataset not in DATASETS:
        raise ValueError(f"unknown dataset {cfg.dataset!r}; choose one of {', '.join(DATASETS)}")
    if cfg.dataset == "cifar10":
        if cfg.subset:
            raise ValueError("there is no bundled CIFAR-10 subset; use --train-limit / --test-limit instead")
        train, test = data.CIFAR10(cfg.data_dir, train=True), data.CIFAR10(cfg.data_dir, train=False)
    elif cfg.subset:
        make = data.mnist_subset if cfg.dataset == "mnist" else data.fashion_mnist_subset
        train, test = make(train=True), make(train=False)
    else:
        cls = data.MNIST if cfg.dataset == "mnist" else data.FashionMNIST
        train, test = cls(root=cfg.data_dir, train=True), cls(root=cfg.data_dir, train=False)
    train, test = _evenly(train, cfg.train_limit), _evenly(test, cfg.test_limit)
    if cfg.augmented():
        if not hasattr(train, "transform"):
            raise ValueError(f"--augment needs images with a transform slot (CIFAR-10), not {cfg.dataset}")
        train.transform = data.RandomCropFlip(padding=4, seed=cfg.seed)
    return train, test


def in_channels(dataset: str) -> int:
    return 3 if dataset == "cifar10" else 1


def build_net(net: str, dataset: str, bits: int | None = None, ste: str | None = None, width: int = 16) -> Any:
    """The float net (``bits=None``) or the same net with every ReLU a ``QuantAct(bits, paper's alpha, ste)``;
    ResNets have ``width``, 2 ``width`` and 4 ``width`` channels (VGG-11: 64 ... 512 times ``width`` / 16)."""
    from ..models import VGG, resnet_depth
    from ..quant import default_alpha, quantize_activations

    if net == "vgg11":
        if dataset != "cifar10":
            raise ValueError("VGG-11 needs 32x32 images (CIFAR-10)")
        model = VGG(in_channels(dataset), widths_divisor=max(1, 16 // width))
    elif net.startswith("resnet") and net[6:].isdigit():
        model = resnet_depth(int(net[6:]), in_channels(dataset), widths=(width, 2 * width, 4 * width))
    else:
        raise ValueError(f"unknown net {net!r} (resnetD with D = 6n + 2, or vgg11)")
    return model if bits is None else quantize_activations(model, bits, ste, alpha=default_alpha(bits))


def cell_config(cfg: DeepConfig, net: str, name: str) -> dict[str, Any]:
    """What a cell's result depends on (all but its epoch count), as stored in its files."""
    from ..quant import default_alpha

    bits, ste = parse_cell(name)
    is_float = bits is None
    conf = {
        "net": net, "width": cfg.width, "cell": name, "dataset": cfg.dataset, "subset": cfg.subset, "train_limit": cfg.train_limit,
        "test_limit": cfg.test_limit, "augment": cfg.augmented(), "bits": bits, "ste": ste,
        "alpha": None if is_float else default_alpha(bits), "quantizer": None if is_float else "ceil",
        "lr": cfg.pretrain_lr if is_float else cfg.lr, "milestones": list(cfg.milestones), "momentum": cfg.momentum,
        "weight_decay": cfg.weight_decay, "batch_size": cfg.batch_size, "seed": cfg.seed,
        "start": "random init" if is_float else f"{FLOAT_CELL} cell after {cfg.pretrain_epochs} epochs",
    }
    return json.loads(json.dumps(conf))


# ---------------------------------------------------------------------- cells
def run_cell(net: str, name: str, cfg: DeepConfig, out: Path, data: tuple[Any, Any], progress: bool = True,
             fit_fn: Callable[..., Any] | None = None, plots: bool = True) -> dict[str, Any]:
    """Train (or skip, or resume) one cell of one net; returns its final record (also ``final.json``);
    ``plots=False`` skips its ``curves.png`` (drawing it costs more than a quick cell's training)."""
    from .. import manual_seed, optim
    from ..data import DataLoader
    from ..train import RunLog, fit, load_checkpoint, plot_history

    fit_fn = fit_fn or fit
    net_dir, cell_dir = out / net, out / net / name
    conf = cell_config(cfg, net, name)
    epochs = cfg.pretrain_epochs if name == FLOAT_CELL else cfg.epochs
    done = load_cell_result(cell_dir)
    if done is not None:
        _check_same(done["config"], conf, cell_dir / "final.json")
        if done.get("diverged") or done["epochs"] >= epochs:  # a diverged cell is a result, not retried
            return {**done, "skipped": True}
    checkpoint = cell_dir / "checkpoint.npz"
    history: list[dict[str, Any]] = []
    if checkpoint.is_file():
        meta = read_checkpoint_meta(checkpoint)
        _check_same(meta.get("config", {}), conf, checkpoint)
        history = list(meta.get("history", []))
    bits, ste = parse_cell(name)
    manual_seed(cfg.seed)
    model = build_net(net, cfg.dataset, bits, ste, cfg.width)
    if not history and bits is not None:  # a fresh quantized cell starts from the float cell's weights
        if load_cell_result(net_dir / FLOAT_CELL) is None:
            raise FileNotFoundError(f"cell {net}/{name} starts from the float cell, but {net_dir / FLOAT_CELL} "
                                    "is not finished")
        load_checkpoint(net_dir / FLOAT_CELL / "checkpoint.npz", model, check_quantization=False)
    train, test = data
    train_loader = EpochLoader(train, cfg.batch_size, cfg.seed, epoch=len(history))
    test_loader = DataLoader(test, batch_size=cfg.eval_batch_size)
    optimizer = optim.SGD(model.parameters(), lr=conf["lr"], momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(cfg.milestones), gamma=0.1)
    log = RunLog(cell_dir, conf)
    log.rows = [dict(row) for row in history]
    start, first_epoch = time.perf_counter(), len(history) + 1
    try:
        history = fit_fn(model, train_loader, test_loader, optimizer, epochs, scheduler=scheduler, log=log,
                         checkpoint=checkpoint, resume=True, progress=progress, meta={"config": conf})
    except TrainingDiverged as error:  # a result, not a crash: the paper's bad STEs fail this way on deep nets
        return _diverged(net, name, conf, cell_dir, str(error), len(train), len(test), cfg.dataset)
    wall = time.perf_counter() - start
    if not history or history[-1]["epoch"] < epochs:
        raise RuntimeError(f"cell {net}/{name} stopped after {len(history)} of {epochs} epochs")
    last = history[-1]
    record = {
        "net": net, "cell": name, "bits": bits, "ste": ste, "alpha": conf["alpha"], "epochs": last["epoch"],
        "final_train_loss": last["train_loss"], "final_test_loss": last["test_loss"],
        "final_test_accuracy": 100 * last["test_accuracy"],
        "best_test_accuracy": 100 * max(r["test_accuracy"] for r in history),
        "train_seconds_per_epoch": float(np.mean([r["epoch_seconds"] for r in history])),
        "session_wall_seconds": wall, "wall_seconds_per_epoch": wall / max(1, last["epoch"] - first_epoch + 1),
        "train_size": len(train), "test_size": len(test), "config": conf, "history": history,
    }
    atomic_write_bytes(cell_dir / "final.json", json.dumps(record, indent=2).encode())
    if plots:
        plot_history(history, cell_dir / "curves.png", title=f"{net} {name} ({cfg.dataset})")
    return {**record, "skipped": False}


def _diverged(net: str, name: str, conf: dict[str, Any], cell_dir: Path, message: str, n_train: int, n_test: int,
              dataset: str) -> dict[str, Any]:
    """The record of a cell whose loss became NaN/inf: kept (``final.json``, ``diverged``) so that the sweep
    goes on, the tables say so, and a rerun does not train it again. Its last good checkpoint stays."""
    bits, ste = parse_cell(name)
    history = list(read_checkpoint_meta(cell_dir / "checkpoint.npz").get("history", [])) \
        if (cell_dir / "checkpoint.npz").is_file() else []
    record = {
        "net": net, "cell": name, "bits": bits, "ste": ste, "alpha": conf["alpha"], "diverged": message,
        "epochs": history[-1]["epoch"] if history else 0, "final_train_loss": float("nan"), "final_test_loss": float("nan"),
        "final_test_accuracy": float("nan"), "best_test_accuracy": max((100 * r["test_accuracy"] for r in history),
                                                                        default=float("nan")),
        "train_seconds_per_epoch": float("nan"), "train_size": n_train, "test_size": n_test, "config": conf,
        "history": history,
    }
    atomic_write_bytes(cell_dir / "final.json", json.dumps(record, indent=2).encode())
    return {**record, "skipped": False}


def run_instability_test(net: str, bits: int, cfg: DeepConfig, out: Path, data: tuple[Any, Any],
                         progress: bool = True, plots: bool = True) -> dict[str, Any]:
    """The identity STE from the net's ``bits``-bit clipped-ReLU cell at ``cfg.instability_lr``, beside a
    control that keeps the clipped ReLU; results and the computed verdict in ``<net>/instability_<b>bit/``."""
    from .instability import _run_one, plot_runs, summarize, verdict

    src_dir = out / net / cell_name(bits, "clipped_relu")
    if load_cell_result(src_dir) is None:
        raise FileNotFoundError(f"the instability test starts from {src_dir}, which is not finished")
    src = src_dir / "checkpoint.npz"
    conf = read_checkpoint_meta(src)["config"]
    test_dir = out / net / f"instability_{bits}bit"
    runs = {}
    for name, ste in (("switched", "identity"), ("control", "clipped_relu")):
        runs[name] = _run_one(name, ste, src, conf, data, test_dir, cfg.instability_epochs, cfg.instability_lr,
                              cfg.momentum, cfg.seed, progress, build=lambda: build_net(net, cfg.dataset, bits,
                                                                                         "clipped_relu", cfg.width))
    summary = {name: summarize(rows) for name, rows in runs.items()}
    info = {"bits": bits, "source_ste": "clipped_relu", "switch_ste": "identity", "source": str(src_dir),
            "lr": cfg.instability_lr, "momentum": cfg.momentum, "n_test": len(data[1]), "n_train": len(data[0]),
            "net": net}
    text, flags = verdict(summary["switched"], summary["control"], info)
    result = {"net": net, "info": info, "summary": summary, "flags": flags, "verdict": text, "runs": runs}
    atomic_write_bytes(test_dir / "instability.json", json.dumps(result, indent=2).encode())
    atomic_write_bytes(test_dir / "verdict.md", f"# Instability test on {net} ({cfg.dataset})\n\n{text}\n".encode())
    if plots:
        plot_runs({"switched to identity": runs["switched"], "control (clipped_relu)": runs["control"]},
                  test_dir / "instability.png", f"{bits}-bit {net} from a clipped-ReLU minimum, lr {cfg.instability_lr:g}")
    return result


# ---------------------------------------------------------------------- tables and the figure
def depth_of(net: str) -> int:
    return 11 if net == "vgg11" else int(net[6:])


def _entry(r: dict[str, Any]) -> str:
    if r.get("diverged"):
        return "diverged (" + r["diverged"].split(":")[0].replace("training diverged ", "") + ")"
    return f"{r['final_train_loss']:.2g} / {r['final_test_accuracy']:.2f}"


def write_tables(results: dict[str, dict[str, dict[str, Any]]], tests: dict[str, dict[str, Any]], cfg: DeepConfig,
                 out: Path) -> Path:
    """``deep.csv`` (one row per cell) and ``deep.md`` (per net and bit width: loss / accuracy per STE,
    the paper's CIFAR-10 numbers in brackets where it has them, and the instability verdicts)."""
    rows = []
    for net in cfg.nets():
        for name in cfg.cells():
            r = results.get(net, {}).get(name)
            if r is None:
                continue
            rows.append({"net": net, "depth": depth_of(net), "cell": name, "bits": r["bits"] or "float",
                         "ste": r["ste"] or "", "epochs": "diverged" if r.get("diverged") else r["epochs"], "final_train_loss": f"{r['final_train_loss']:.4g}",
                         "final_test_accuracy": f"{r['final_test_accuracy']:.2f}",
                         "best_test_accuracy": f"{r['best_test_accuracy']:.2f}",
                         "train_seconds_per_epoch": f"{r['train_seconds_per_epoch']:.1f}"})
    if rows:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(out / "deep.csv", buffer.getvalue().encode())
    any_r = next((r for net in results.values() for r in net.values()), None)
    sizes = f"{any_r['train_size']} training / {any_r['test_size']} test images" if any_r else "?"
    source = "bundled subset" if cfg.subset else "full data set"
    lines = [f"# Deep rows of Table 1 (Yin et al. 2019) on {cfg.dataset}" + (" (QUICK configuration)" if cfg.quick else ""),
             "",
             "Each entry: final training loss / test accuracy (%) after the cell's last epoch"
             + (" (the paper's CIFAR-10 value in brackets)." if cfg.dataset == "cifar10" else "."),
             f"Data: {cfg.dataset}, {source}, {sizes}{', crop + flip augmentation' if cfg.augmented() else ''}. "
             f"ResNet widths {cfg.width}/{2 * cfg.width}/{4 * cfg.width}. Float cells: {cfg.pretrain_epochs} epochs "
             f"at lr {cfg.pretrain_lr}; quantized cells: {cfg.epochs} epochs at lr {cfg.lr} from the float cell; SGD momentum {cfg.momentum}, batch {cfg.batch_size}, "
             f"weight decay {cfg.weight_decay}, lr / 10 after epochs {list(cfg.milestones)}; seed {cfg.seed}.",
             "", "| net | bits | " + " | ".join(cfg.stes) + " | float |", "|---|---|" + "---|" * (len(cfg.stes) + 1)]
    for net in cfg.nets():
        res = results.get(net, {})
        fl = res.get(FLOAT_CELL)
        for b in cfg.bits:
            cells = []
            for s in cfg.stes:
                r = res.get(cell_name(b, s))
                text = "—" if r is None else _entry(r)
                if cfg.dataset == "cifar10" and (net, b, s) in PAPER_DEEP:
                    p = PAPER_DEEP[(net, b, s)]
                    text += f" ({p[0]:.2g} / {p[1]:.2f})"
                cells.append(text)
            float_text = "—" if fl is None else _entry(fl)
            lines.append(f"| {net} | {b} | " + " | ".join(cells) + f" | {float_text} |")
    if tests:
        lines += ["", "## Instability test (identity STE from the clipped-ReLU minimum)", ""]
        for key, t in tests.items():
            lines.append(f"- {key}: {t['verdict']}")
    path = out / "deep.md"
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode())
    return path


def plot_depth(results: dict[str, dict[str, dict[str, Any]]], cfg: DeepConfig, path: Path) -> None:
    """Test accuracy and final training loss against depth: one colour per STE, one line style per bit
    width, the float nets in black."""
    import matplotlib.pyplot as plt  # never switch the backend: a notebook's inline figures must keep working

    nets = [n for n in cfg.nets() if n.startswith("resnet") and n in results]
    depths = [depth_of(n) for n in nets]
    fig, (ax_acc, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    styles = ["-", "--", ":", "-."]

    def line(key: str, label: str, **kw: Any) -> None:
        pts = [(depth_of(n), results[n][key]) for n in nets if key in results[n]]
        if pts:
            d, r = zip(*pts)
            ax_acc.plot(d, [x["final_test_accuracy"] for x in r], marker="o", label=label, **kw)
            ax_loss.plot(d, [x["final_train_loss"] for x in r], marker="o", label=label, **kw)

    for i, ste in enumerate(cfg.stes):
        for j, b in enumerate(cfg.bits):
            line(cell_name(b, ste), f"{ste}, {b} bits", color=f"C{i}", ls=styles[j % len(styles)])
    line(FLOAT_CELL, "float", color="k", ls=":")
    ax_acc.set(xlabel="depth (ResNet-(6n+2))", ylabel="test accuracy (%)", title="accuracy vs depth")
    ax_loss.set(xlabel="depth (ResNet-(6n+2))", ylabel="final training loss", yscale="log",
                title="training loss vs depth")
    for ax in (ax_acc, ax_loss):
        ax.set_xticks(depths)
        ax.grid(alpha=0.3)
    ax_acc.legend(fontsize=7, ncol=2)
    tag = " (QUICK configuration)" if cfg.quick else ""
    fig.suptitle(f"Activation-quantized ResNets on {cfg.dataset}{tag}")
    fig.tight_layout()
    save_figure(fig, path)


# ---------------------------------------------------------------------- the sweep
def run_deep(cfg: DeepConfig, out: str | Path, progress: bool = True, plots: bool = True,
             log: Callable[[str], None] = print, fit_fn: Callable[..., Any] | None = None,
             instability: bool = True) -> dict[str, Any]:
    """Every net's cells (float first), then the instability tests; tables after every cell, then the figure.

    Returns ``{"cells": {net: {cell: record}}, "instability": {"<net> <b>bit": result}}``.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "deep.json", json.dumps(asdict(cfg), indent=2).encode())
    data = load_data(cfg)
    results: dict[str, dict[str, dict[str, Any]]] = {}
    tests: dict[str, dict[str, Any]] = {}
    jobs = [(net, name) for net in cfg.nets() for name in cfg.cells()]
    for i, (net, name) in enumerate(jobs, 1):
        t0 = time.perf_counter()
        record = run_cell(net, name, cfg, out, data, progress=progress, fit_fn=fit_fn, plots=plots)
        results.setdefault(net, {})[name] = record
        status = "done already, skipped" if record["skipped"] else f"{time.perf_counter() - t0:.0f} s"
        if record.get("diverged"):
            log(f"[{i}/{len(jobs)}] {net:>8} {name:>16}: {record['diverged']} ({status})")
        else:
            log(f"[{i}/{len(jobs)}] {net:>8} {name:>16}: train loss {record['final_train_loss']:.3g}, "
                f"test accuracy {record['final_test_accuracy']:.2f}% after {record['epochs']} epochs ({status})")
        write_tables(results, tests, cfg, out)
    if instability:
        for net in cfg.nets():
            for b in cfg.instability_bits:
                src = results.get(net, {}).get(cell_name(b, "clipped_relu"))
                if src is None or src.get("diverged"):
                    continue
                t0 = time.perf_counter()
                tests[f"{net} {b}bit"] = run_instability_test(net, b, cfg, out, data, progress, plots)
                flags = tests[f"{net} {b}bit"]["flags"]
                log(f"instability {net} {b} bits: {'REPRODUCED' if flags['reproduced'] else 'not reproduced'} "
                    f"({time.perf_counter() - t0:.0f} s)")
        write_tables(results, tests, cfg, out)
    if plots:
        plot_depth(results, cfg, out / "depth.png")
    return {"cells": results, "instability": tests}


def config_from_args(args: argparse.Namespace) -> DeepConfig:
    from ..quant import available_stes, check_bits

    cfg = quick_config() if args.quick else DeepConfig()
    for key in ("dataset", "data_dir", "seed"):
        if getattr(args, key) is not None:
            setattr(cfg, key, getattr(args, key))
    if args.subset:
        cfg.subset = True
    if args.vgg11:
        cfg.vgg11 = True
    if args.augment is not None:
        cfg.augment = args.augment == "on"
    for key in ("depths", "bits", "stes", "milestones", "instability_bits"):
        value = getattr(args, key)
        if value is not None:
            setattr(cfg, key, tuple(value))
    for key in ("width", "epochs", "pretrain_epochs", "lr", "pretrain_lr", "batch_size", "weight_decay", "train_limit",
                "test_limit", "instability_epochs", "instability_lr"):
        value = getattr(args, key)
        if value is not None:
            setattr(cfg, key, value)
    for b in cfg.bits + cfg.instability_bits:
        check_bits(b)
    unknown = [s for s in cfg.stes if s not in available_stes()]
    if unknown:
        raise ValueError(f"unknown STE(s) {unknown}; choose from {', '.join(available_stes())}")
    bad = [d for d in cfg.depths if d < 8 or (d - 2) % 6]
    if bad:
        raise ValueError(f"--depths must be 6n + 2 with n >= 1 (8, 14, 20, 26, 32, ...), got {bad}")
    if cfg.vgg11 and cfg.dataset != "cifar10":
        raise ValueError("--vgg11 needs --dataset cifar10 (VGG-11 takes 32x32 images)")
    if cfg.dataset == "cifar10" and cfg.subset:
        raise ValueError("there is no bundled CIFAR-10 subset; use --train-limit / --test-limit")
    return cfg


def build_parser() -> argparse.ArgumentParser:
    from ..args import add_data_dir_arg, add_threads_arg, non_negative_float, non_negative_int, positive_float, positive_int
    from ..quant import available_stes

    p = argparse.ArgumentParser(prog="python -m tinyqnn deep", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="%(choices)s (default fashion-mnist; cifar10 needs cifar-10-binary.tar.gz, see --data-dir)")
    p.add_argument("--depths", type=int, nargs="+", default=None, metavar="D",
                   help="ResNet depths, each 6n + 2 (default 8 14 20; quick 8 14)")
    p.add_argument("--width", type=positive_int, default=None,
                   help="channels of the ResNets' first stage (then 2x, 4x; default 16, as in the paper)")
    p.add_argument("--vgg11", action="store_true", help="also the paper's VGG-11 (CIFAR-10 only)")
    p.add_argument("--bits", type=int, nargs="+", default=None, choices=range(1, 9), metavar="{1,...,8}",
                   help="activation bit widths (default 2 4; quick 2)")
    p.add_argument("--stes", nargs="+", default=None, choices=available_stes(), metavar="STE",
                   help="STEs, from %(choices)s (default identity relu clipped_relu)")
    p.add_argument("--epochs", type=positive_int, default=None, help="epochs of each quantized cell (default 20; "
                   "paper 200; quick 1)")
    p.add_argument("--pretrain-epochs", type=positive_int, default=None,
                   help="epochs of each float cell (default 20; quick 2)")
    p.add_argument("--lr", type=positive_float, default=None, help="lr of the quantized cells (default 0.01, paper)")
    p.add_argument("--pretrain-lr", type=positive_float, default=None, help="lr of the float cells (default 0.1)")
    p.add_argument("--milestones", type=positive_int, nargs="*", default=None,
                   help="epochs after which lr is divided by 10 (default 8 14: the paper's 80 140 of 200, "
                        "scaled; quick none)")
    p.add_argument("--batch-size", type=positive_int, default=None, help="mini-batch size (default 128, paper)")
    p.add_argument("--weight-decay", type=non_negative_float, default=None,
                   help="L2 weight decay (default 1e-4; the paper states none, its authors' code uses 1e-4)")
    p.add_argument("--augment", choices=("on", "off"), default=None,
                   help="random crop (4-pixel padding) + horizontal flip of training images "
                        "(default on for cifar10, off otherwise; needs cifar10)")
    p.add_argument("--train-limit", type=positive_int, default=None, help="use this many evenly spaced training images")
    p.add_argument("--test-limit", type=positive_int, default=None, help="use this many evenly spaced test images")
    p.add_argument("--subset", action="store_true", help="the bundled MNIST / Fashion-MNIST subset")
    p.add_argument("--instability-bits", type=int, nargs="*", default=None, choices=range(1, 9), metavar="B",
                   help="bit widths whose clipped-ReLU cell gets the instability test (default 4, as in the "
                        "paper; none: skip the test)")
    p.add_argument("--instability-epochs", type=positive_int, default=None,
                   help="epochs of the instability test's two runs (default 20, paper; quick 1)")
    p.add_argument("--instability-lr", type=positive_float, default=None,
                   help="lr of the instability test (default 1e-5, paper)")
    p.add_argument("--out", default=None, help="output folder (default results/deep, quick: results/deep-quick)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder that is not a deep sweep (nothing there is deleted)")
    add_data_dir_arg(p)
    p.add_argument("--seed", type=non_negative_int, default=None, help="random seed (default 0)")
    add_threads_arg(p)
    p.add_argument("--quick", action="store_true",
                   help="seconds-to-minutes version: Fashion-MNIST subset cut to 512 / 256 images, ResNet-8 and "
                        "-14, 2 bits, 2 float + 1 quantized epochs, 1 instability epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from ..args import USER_ERRORS, one_line
    from ..utils import default_blas_threads, default_num_threads, set_num_threads

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:
        return int(done.code or 0)
    set_num_threads(args.threads or default_num_threads(), default_blas_threads())
    try:
        cfg = config_from_args(args)
        out = Path(args.out or ("results/deep-quick" if cfg.quick else "results/deep"))
        folder = sweep_folder(out, "deep", "deep.json", "a tinyqnn deep sweep", args.force)
        print(f"deep sweep on {cfg.dataset}{' (quick)' if cfg.quick else ''}: nets {', '.join(cfg.nets())}, "
              f"cells {', '.join(cfg.cells())} -> {out}/", flush=True)
        start = time.perf_counter()
        with folder:
            run_deep(cfg, out, progress=not args.no_progress, plots=not args.no_plots,
                     log=lambda s: print(s, flush=True))
    except USER_ERRORS as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - start:.0f} s: {out / 'deep.md'}, {out / 'deep.csv'}"
          + ("" if args.no_plots else f", {out / 'depth.png'}"))
    print((out / "deep.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
