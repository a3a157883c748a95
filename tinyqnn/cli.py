"""Command line: ``python -m tinyqnn <command>`` (``--help`` lists them).

- ``demo``: the README's main job: a float LeNet-5 on MNIST, then the same net with 2-bit activations
  trained with the clipped-ReLU STE; prints both test accuracies (a few minutes).
- ``grid`` / ``instability`` / ``theory-figures``: the experiments of Yin et al. (``tinyqnn.experiments``).
- ``train`` / ``evaluate``: LeNet-5 runs with logs, curves and resumable checkpoints.
- ``benchmark``: throughput against PyTorch CPU when it is installed (see ``tinyqnn.benchmark``).
- ``check`` / ``release``: the course's self-check and exercise regeneration (``tinyqnn.course``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

DATASETS = ("mnist", "fashion-mnist", "mnist-subset")


def _datasets(name: str, data_dir: str | None):
    from . import data

    if name == "mnist":
        return data.MNIST(root=data_dir, train=True), data.MNIST(root=data_dir, train=False)
    if name == "fashion-mnist":
        return data.FashionMNIST(root=data_dir, train=True), data.FashionMNIST(root=data_dir, train=False)
    if name == "mnist-subset":
        return data.mnist_subset(train=True), data.mnist_subset(train=False)
    if name == "fashion-mnist-subset":  # grid runs with --subset --dataset fashion-mnist
        return data.fashion_mnist_subset(train=True), data.fashion_mnist_subset(train=False)
    raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def run_training(config: dict[str, Any], out: Path | None, resume: bool = False,
                 progress: bool = True) -> tuple[Any, list[dict[str, float]]]:
    """Train a float LeNet-5 described by ``config`` (see ``_add_train_args``); returns (model, history)."""
    from . import manual_seed, optim
    from .data import DataLoader
    from .models import LeNet5
    from .train import RunLog, fit, plot_history

    if resume and out is not None and (out / "checkpoint.npz").is_file():
        _check_resumable(out / "checkpoint.npz", config)
    manual_seed(config["seed"])
    train_set, test_set = _datasets(config["dataset"], config.get("data_dir"))
    train_loader = DataLoader(train_set, batch_size=config["batch_size"], shuffle=True, seed=config["seed"])
    test_loader = DataLoader(test_set, batch_size=1000)
    model = LeNet5(batch_norm=config["batch_norm"])
    optimizer = optim.SGD(model.parameters(), lr=config["lr"], momentum=config["momentum"],
                          weight_decay=config["weight_decay"])
    scheduler = optim.lr_scheduler.MultiStepLR(optimizer, milestones=config["milestones"], gamma=0.1)
    log = RunLog(out, config) if out is not None else None
    history = fit(model, train_loader, test_loader, optimizer, config["epochs"], scheduler=scheduler, log=log,
                  checkpoint=out / "checkpoint.npz" if out is not None else None, resume=resume,
                  progress=progress, meta={"config": config})
    if out is not None and history:
        plot_history(history, out / "curves.png", title=f"LeNet-5 on {config['dataset']}")
    return model, history


#: run settings a resumed run may change: how long it trains, and where the data files are
RESUMABLE_CHANGES = ("epochs", "data_dir")


def _check_resumable(checkpoint: Path, config: dict[str, Any]) -> None:
    """``--resume`` continues the run in the checkpoint; other settings (``--lr``, ``--milestones``, ...)
    would be replaced by the checkpoint's while logged as used, so they are refused."""
    from .train import read_checkpoint_meta

    stored = read_checkpoint_meta(checkpoint).get("config") or {}
    changed = [f"--{key.replace('_', '-')} {config[key]!r} (the run used {stored[key]!r})"
               for key in stored if key in config and key not in RESUMABLE_CHANGES and stored[key] != config[key]]
    if changed:
        raise ValueError(f"--resume continues the run in {checkpoint}, which was trained with other settings: "
                         f"{', '.join(changed)}. Resume with the run's settings (only --epochs may change), "
                         "or train into another --out")


def _add_train_args(p: argparse.ArgumentParser, epochs: int) -> None:
    p.add_argument("--dataset", choices=DATASETS, default="mnist")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (default: $TINYQNN_DATA, cache, download)")
    p.add_argument("--epochs", type=int, default=epochs)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--milestones", type=int, nargs="*", default=[], help="epochs after which lr is divided by 10")
    p.add_argument("--batch-norm", action="store_true", help="batch norm before each activation")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")


def _config(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("dataset", "data_dir", "epochs", "batch_size", "lr", "momentum", "weight_decay", "milestones",
            "batch_norm", "seed")
    return {k: getattr(args, k) for k in keys}


def cmd_demo(args: argparse.Namespace) -> int:
    """Float LeNet-5 (scale-free BN), then the same net with 2-bit activations and the clipped-ReLU STE."""
    import shutil

    from .experiments.table1 import GridConfig, run_grid

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)  # the demo's own folder: always train afresh
    cfg = GridConfig(dataset=args.dataset, bits=(args.bits,), stes=(args.ste,), pretrain_epochs=args.float_epochs,
                     epochs=args.quant_epochs, lr=args.lr, milestones=(), data_dir=args.data_dir, seed=args.seed)
    print(f"tinyqnn demo: LeNet-5 on {args.dataset}: {args.float_epochs} float epoch(s), then "
          f"{args.quant_epochs} epoch(s) with {args.bits}-bit activations ({args.ste} STE)", flush=True)
    start = time.perf_counter()
    results = run_grid(cfg, out, progress=not args.no_progress, plots=True,
                       log=lambda line: print(line, flush=True))
    float_cell, quant_cell = results["float"], results[f"{args.bits}bit_{args.ste}"]
    print(f"\ntest accuracy  float LeNet-5: {float_cell['final_test_accuracy']:.2f}%   "
          f"{args.bits}-bit {args.ste} LeNet-5: {quant_cell['final_test_accuracy']:.2f}%   "
          f"({time.perf_counter() - start:.0f} s; curves and checkpoints in {out}/)")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    _, history = run_training(_config(args), out, resume=args.resume, progress=not args.no_progress)
    for row in history:
        print(f"epoch {row['epoch']:3d}  lr {row['lr']:.4g}  train loss {row['train_loss']:.4f}  "
              f"test acc {100 * row['test_accuracy']:.2f}%  {row['epoch_seconds']:.1f} s")
    print(f"checkpoint, metrics and curves in {out}/")
    return 0


def _evaluation_set(config: dict[str, Any], dataset: str | None, data_dir: str | None) -> tuple[str, Any]:
    """The test set a run was evaluated on (its data set, bundled subset, ``test_limit``), unless
    ``dataset`` overrides it. Returns (name, test set)."""
    name = dataset or config.get("dataset") or "mnist"
    if dataset is None and config.get("subset"):  # a grid run on the bundled subset
        name = {"mnist": "mnist-subset", "fashion-mnist": "fashion-mnist-subset"}.get(name, name)
    _, test_set = _datasets(name, data_dir or config.get("data_dir"))
    limit = config.get("test_limit") if dataset is None else None
    if limit:
        from .experiments.table1 import _evenly  # the grid's own choice of its evenly spaced test images

        test_set = _evenly(test_set, limit)
    return name, test_set


def _describe_model(model: Any) -> str:
    """``"float LeNet5(...)"`` or ``"LeNet5(...) with QuantAct(bits=2, ...)"``: what is being evaluated."""
    from .models.record import describe_layer

    quantizers = list(dict.fromkeys(describe_layer(m.quant_config()) for m in model.modules()
                                    if callable(getattr(m, "quant_config", None))))
    kwargs = getattr(model, "arch_kwargs", {})
    arch = type(model).__name__ + ("(" + ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) + ")" if kwargs else "")
    return f"float {arch}" if not quantizers else f"{arch} with " + ", ".join(quantizers)


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Rebuild the model a checkpoint was trained as (``tinyqnn.train.load_model``) and test it."""
    from .data import DataLoader
    from .train import evaluate, load_model

    model, meta = load_model(args.checkpoint)
    name, test_set = _evaluation_set(meta.get("config") or {}, args.dataset, args.data_dir)
    result = evaluate(model, DataLoader(test_set, batch_size=1000))
    print(f"{args.checkpoint}: {_describe_model(model)}")
    print(f"{len(test_set)} {name} test images: test loss {result['loss']:.4f}, "
          f"test accuracy {100 * result['accuracy']:.2f}%")
    return 0


#: commands with their own argument parsers: ``python -m tinyqnn NAME ARGS`` calls ``module.main(ARGS)``
DELEGATED = {
    "benchmark": ("tinyqnn.benchmark", "throughput vs PyTorch CPU (see `benchmark --help`)"),
    "check": ("tinyqnn.course.check", "score your own exercise notebook (see `check --help`)"),
    "release": ("tinyqnn.course.release", "regenerate exercises/ from solutions/ (instructors)"),
    "new-assignment": ("tinyqnn.course.new", "start a new unit from the template (instructors)"),
    "grid": ("tinyqnn.experiments.table1", "Yin et al. Table 1: bits x STE grid on LeNet-5, resumable (see `grid --help`)"),
    "instability": ("tinyqnn.experiments.instability", "identity STE from a clipped-ReLU minimum at lr 1e-5"),
    "theory-figures": ("tinyqnn.experiments.theory_figures", "the two-layer model's figures (coarse gradients)"),
    "fixedpoint": ("tinyqnn.fixedpoint.cli", "integer-only LeNet-5 on a simulated MAC unit (convert, evaluate, sweep, ...)"),
    "hou-linear": ("tinyqnn.experiments.hou_linear", "Hou et al. 2019: linear model, LAB + SQm/clipped gradients"),
    "hou-mlp": ("tinyqnn.experiments.hou_mlp", "Hou et al. 2019: MLP with d hidden units, LAQ3, FP vs SQ3"),
    "hou-grid": ("tinyqnn.experiments.hou_grid", "Hou et al. 2019: weights x gradients x clipping grid, N workers"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tinyqnn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="the main job: float and 2-bit LeNet-5 on MNIST in a few minutes")
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist")
    p.add_argument("--data-dir", default=None, help="folder with the IDX files (default: $TINYQNN_DATA, cache, download)")
    p.add_argument("--float-epochs", type=int, default=3)
    p.add_argument("--quant-epochs", type=int, default=3)
    p.add_argument("--bits", type=int, default=2)
    p.add_argument("--ste", default="clipped_relu")
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train a float LeNet-5 (resumable)")
    _add_train_args(p, epochs=10)
    p.add_argument("--out", default="runs/lenet5", help="folder for checkpoint.npz, metrics.json/csv, curves.png")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.npz if present")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy of a saved checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--dataset", choices=DATASETS, default=None)
    p.add_argument("--data-dir", default=None)
    p.set_defaults(func=cmd_evaluate)

    for name, (_, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in DELEGATED:
        import importlib

        return int(importlib.import_module(DELEGATED[argv[0]][0]).main(argv[1:]) or 0)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
