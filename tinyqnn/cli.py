"""Command line: ``python -m tinyqnn <command>`` (``--help`` lists them).

- ``demo``: the README's main job: a float LeNet-5 on MNIST, then the same net with 2-bit activations
  trained with the clipped-ReLU STE; prints both test accuracies (a few minutes).
- ``grid`` / ``instability`` / ``theory-figures``: the experiments of Yin et al. (``tinyqnn.experiments``).
- ``train`` / ``evaluate``: LeNet-5 runs with logs, curves and resumable checkpoints.
- ``benchmark``: throughput against PyTorch CPU when it is installed (see ``tinyqnn.bench``).
- ``check`` / ``release``: the course's self-check and exercise regeneration (``tinyqnn.course``).
- ``grade`` / ``grade-benchmark``: instructors' sandboxed, parallel autograding into nbgrader's gradebook.
- ``workspace``: copy the lessons and exercises to a folder of your own, outside git.

Commands compute on one thread unless ``--threads N`` (or ``$TINYQNN_THREADS``) says otherwise, with one BLAS
thread unless ``$OPENBLAS_NUM_THREADS`` says otherwise (see ``tinyqnn.utils.set_num_threads``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .args import (USER_ERRORS, add_data_dir_arg, add_threads_arg, non_negative_float, non_negative_int, one_line,
                   positive_float, positive_int)

DATASETS = ("mnist", "fashion-mnist", "mnist-subset")
#: the files ``train`` writes into its ``--out`` folder
TRAIN_FILES = ("checkpoint.npz", "metrics.json", "metrics.csv", "curves.png")


def _stes() -> list[str]:
    from .quant import available_stes

    return available_stes()


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
    p.add_argument("--dataset", choices=DATASETS, default="mnist",
                   help="data set (default mnist; mnist-subset is the bundled 6,000 + 1,000 images)")
    add_data_dir_arg(p)
    p.add_argument("--epochs", type=positive_int, default=epochs, help=f"epochs to train (default {epochs})")
    p.add_argument("--batch-size", type=positive_int, default=64, help="mini-batch size (default 64)")
    p.add_argument("--lr", type=positive_float, default=0.05, help="SGD learning rate (default 0.05)")
    p.add_argument("--momentum", type=non_negative_float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--weight-decay", type=non_negative_float, default=5e-4, help="L2 weight decay (default 5e-4)")
    p.add_argument("--milestones", type=positive_int, nargs="*", default=[],
                   help="epochs after which lr is divided by 10 (default none)")
    p.add_argument("--batch-norm", action="store_true", help="batch norm before each activation")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    add_threads_arg(p)


def _config(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("dataset", "data_dir", "epochs", "batch_size", "lr", "momentum", "weight_decay", "milestones",
            "batch_norm", "seed")
    return {k: getattr(args, k) for k in keys}


def cmd_demo(args: argparse.Namespace) -> int:
    """Float LeNet-5 (scale-free BN), then the same net with 2-bit activations and the clipped-ReLU STE."""
    from .experiments.table1 import GridConfig, resume_files, run_grid
    from .utils import folder_state, recording_run, refuse_foreign, remove_run_files

    out = Path(args.out)
    cfg = GridConfig(dataset=args.dataset, bits=(args.bits,), stes=(args.ste,), pretrain_epochs=args.float_epochs,
                     epochs=args.quant_epochs, lr=args.lr, milestones=(), data_dir=args.data_dir, seed=args.seed)
    state = folder_state(out, "demo")
    if state == "foreign" and not args.force:
        refuse_foreign(out, "demo")
    # The demo always trains afresh: drop its earlier files, or (--force) just the ones it would resume from.
    if state == "foreign":
        remove_run_files(out, also=resume_files(cfg), only_also=True)
    else:
        remove_run_files(out)
    print(f"tinyqnn demo: LeNet-5 on {args.dataset}: {args.float_epochs} float epoch(s), then "
          f"{args.quant_epochs} epoch(s) with {args.bits}-bit activations ({args.ste} STE)", flush=True)
    start = time.perf_counter()
    quant_name = f"{args.bits}bit_{args.ste}"
    with recording_run(out, "demo", replace_unlisted=args.force):
        results = run_grid(cfg, out, progress=not args.no_progress, plots=True,
                           log=lambda line: print(line, flush=True))
        integer_line = _demo_on_integer_unit(args, out / "float" / "checkpoint.npz",
                                             out / quant_name / "checkpoint.npz", out / "integer_report.json")
    float_cell, quant_cell = results["float"], results[quant_name]
    print(f"\ntest accuracy  float LeNet-5: {float_cell['final_test_accuracy']:.2f}%   "
          f"{args.bits}-bit {args.ste} LeNet-5: {quant_cell['final_test_accuracy']:.2f}%   "
          f"({time.perf_counter() - start:.0f} s; curves and checkpoints in {out}/)")
    print(integer_line)
    return 0


def _demo_on_integer_unit(args: argparse.Namespace, float_checkpoint: Path, quant_checkpoint: Path,
                          report_path: Path) -> str:
    """Run the demo's trained quantized LeNet-5 on the simulated integer MAC unit (8-bit weights per channel,
    requantization by multiplier and shift); returns the line comparing float, fake-quantized and integer-only
    test accuracy, and writes the whole report as JSON."""
    import json

    from .fixedpoint import run_integer_report, summary_line
    from .train import load_model
    from .utils import atomic_write_bytes

    print("running the quantized model on the simulated integer MAC unit ...", flush=True)
    model, _ = load_model(quant_checkpoint)
    float_model, _ = load_model(float_checkpoint)
    try:
        report = run_integer_report(model, _datasets(args.dataset, args.data_dir)[1], float_model=float_model)
    except ValueError as error:  # a setup the converter does not implement (it says which): the demo still ends
        return f"integer MAC unit: not run ({error})"
    atomic_write_bytes(report_path, (json.dumps(report, indent=2, default=str) + "\n").encode())
    return summary_line(report)


def _describe_run(out: Path) -> str:
    """``"a finished run (10 of 10 epochs)"`` from the checkpoint's metadata, as far as it can be read."""
    from .train.checkpoint import read_checkpoint_meta

    try:
        meta = read_checkpoint_meta(out / "checkpoint.npz")
        done, wanted = int(meta["epoch"]), int(meta["config"]["epochs"])
    except (ValueError, KeyError, TypeError, OSError):  # unreadable or older metadata: refuse all the same
        return "a training run"
    return f"a {'finished' if done >= wanted else 'stopped'} training run ({done} of {wanted} epochs)"


def cmd_train(args: argparse.Namespace) -> int:
    from .utils import RunFolderError, folder_state, recording_run, refuse_foreign, remove_run_files

    out = Path(args.out)
    state = folder_state(out, "train")
    legacy = state == "foreign" and (out / "checkpoint.npz").is_file()  # a run from before run manifests
    if state == "foreign" and not legacy:
        if not args.force:
            refuse_foreign(out, "train")
        remove_run_files(out, also=TRAIN_FILES, only_also=True)  # --force: replace only what train writes
    elif state != "empty" and not args.resume:  # a train run, finished or stopped
        if not args.force:
            raise RunFolderError(f"{out} holds {_describe_run(out)}; continue it with --resume (e.g. "
                                 f"--epochs N --resume), or start over with --force (replaces only the run's own "
                                 "files) or another --out")
        remove_run_files(out, also=TRAIN_FILES)
    with recording_run(out, "train", replace_unlisted=legacy or args.force):
        _, history = run_training(_config(args), out, resume=args.resume, progress=not args.no_progress)
    for row in history:
        print(f"epoch {row['epoch']:3d}  lr {row['lr']:.4g}  train loss {row['train_loss']:.4f}  "
              f"test accuracy {100 * row['test_accuracy']:.2f}%  {row['epoch_seconds']:.1f} s")
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
    "benchmark": ("tinyqnn.bench.throughput", "throughput vs PyTorch CPU (see `benchmark --help`)"),
    "benchmark-versus": ("tinyqnn.bench.versus",
                         "training-step time vs another checkout, and library vs command line (see its --help)"),
    "check": ("tinyqnn.course.check", "score your own exercise notebook (see `check --help`)"),
    "release": ("tinyqnn.course.release", "regenerate exercises/ from solutions/ (instructors)"),
    "grade": ("tinyqnn.course.grade", "autograde a class: sandboxed, parallel, resumable, into nbgrader's gradebook"),
    "grade-benchmark": ("tinyqnn.course.grade_benchmark", "nbgrader autograde vs grade --jobs 1/2 vs Dask on one class"),
    "new-assignment": ("tinyqnn.course.new", "start a new unit from the template (instructors)"),
    "grid": ("tinyqnn.experiments.table1", "Yin et al. Table 1: bits x STE grid on LeNet-5, resumable (see `grid --help`)"),
    "deep": ("tinyqnn.experiments.deep", "Yin et al. Table 1's deep rows: quantized ResNets over depth, STEs, "
             "instability (see `deep --help`)"),
    "instability": ("tinyqnn.experiments.instability", "identity STE from a clipped-ReLU minimum at lr 1e-5"),
    "theory-figures": ("tinyqnn.experiments.theory_figures", "the two-layer model's figures (coarse gradients)"),
    "hou-linear": ("tinyqnn.experiments.hou_linear", "Hou et al. 2019: linear model, LAB + SQm/clipped gradients"),
    "hou-mlp": ("tinyqnn.experiments.hou_mlp", "Hou et al. 2019: MLP with d hidden units, LAQ3, FP vs SQ3"),
    "hou-grid": ("tinyqnn.experiments.hou_grid", "Hou et al. 2019: weights x gradients x clipping grid, N workers"),
    "workspace": ("tinyqnn.course.workspace", "copy lessons/ and exercises/ to your own folder outside git"),
    "site": ("tinyqnn.course.web.site", "build the course site: every lesson as a web page, offline (web extra)"),
    "lite": ("tinyqnn.course.web.lite", "build the browser course: lessons and exercises on Pyodide (web extra)"),
    "web-measure": ("tinyqnn.course.web.measure", "site build time and size, browser vs CPython lesson run times"),
    "fixedpoint": ("tinyqnn.fixedpoint.cli", "integer-only LeNet-5 on a simulated MAC unit (convert, evaluate, sweep, ...)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tinyqnn", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="the main job: float and 2-bit LeNet-5 on MNIST in a few minutes",
                       prog="python -m tinyqnn demo")
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist"), default="mnist", help="data set (default mnist)")
    add_data_dir_arg(p)
    p.add_argument("--float-epochs", type=positive_int, default=3, help="epochs of the float network (default 3)")
    p.add_argument("--quant-epochs", type=positive_int, default=3,
                   help="epochs of the quantized network, started from the float one (default 3)")
    p.add_argument("--bits", type=int, choices=range(1, 9), default=2, metavar="{1,...,8}",
                   help="activation bit width, 1 to 8 (default 2)")
    p.add_argument("--ste", choices=_stes(), default="clipped_relu",
                   help="straight-through estimator: %(choices)s (default %(default)s)")
    p.add_argument("--lr", type=positive_float, default=0.05, help="SGD learning rate (default 0.05)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo); rerunning replaces "
                   "the demo's own files there and nothing else")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty folder that is not a tinyqnn run (replacing only the demo's files)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    add_threads_arg(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="train a float LeNet-5 (resumable)", prog="python -m tinyqnn train")
    _add_train_args(p, epochs=10)
    p.add_argument("--out", default="runs/lenet5", help="folder for checkpoint.npz, metrics.json/csv, curves.png")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.npz if present")
    p.add_argument("--force", action="store_true",
                   help="start over in a folder that holds a run or other files (replacing only train's own files)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="test accuracy of a saved checkpoint", prog="python -m tinyqnn evaluate")
    p.add_argument("checkpoint", help="a checkpoint.npz written by train, demo or grid")
    p.add_argument("--dataset", choices=DATASETS, default=None, help="data set (default: the checkpoint's)")
    add_data_dir_arg(p, "the checkpoint's, $TINYQNN_DATA, cache, download")
    add_threads_arg(p)
    p.set_defaults(func=cmd_evaluate)

    for name, (_, text) in DELEGATED.items():
        sub.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .utils import default_blas_threads, default_num_threads, set_num_threads

    argv = sys.argv[1:] if argv is None else list(argv)
    from .engine import keep_freed_memory

    keep_freed_memory()  # our own process: reuse freed arrays across training steps (see tinyqnn.engine.memory)
    try:
        if argv and argv[0] in DELEGATED:
            import importlib

            if not argv[0].startswith("benchmark"):  # the benchmarks pin its own threads per measurement
                set_num_threads(default_num_threads(), default_blas_threads())  # --threads options override this
            return int(importlib.import_module(DELEGATED[argv[0]][0]).main(argv[1:]) or 0)
        args = build_parser().parse_args(argv)
        set_num_threads(getattr(args, "threads", None) or default_num_threads(), default_blas_threads())
        return int(args.func(args) or 0)
    except USER_ERRORS as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
