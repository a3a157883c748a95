"""``python -m tinyqnn fixedpoint {convert,evaluate,sweep,report,bench}``: the integer MAC unit from the shell.

    python -m tinyqnn fixedpoint convert runs/demo/2bit_clipped_relu/checkpoint.npz --out lenet_int.npz
    python -m tinyqnn fixedpoint evaluate lenet_int.npz [--method thresholds] [--acc-bits 16 --overflow saturate]
    python -m tinyqnn fixedpoint sweep lenet_int.npz --out results/fixedpoint      # accuracy vs accumulator width
    python -m tinyqnn fixedpoint report runs/demo/2bit_clipped_relu/checkpoint.npz --out results/fixedpoint
    python -m tinyqnn fixedpoint bench [--checkpoint CKPT]                        # throughput vs float NumPy

Checkpoints are read with ``tinyqnn.train.load_model``, which rebuilds the trained model with its
quantization setup (bits, alpha, STE, rule) from the checkpoint's own record.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..args import USER_ERRORS, add_data_dir_arg, int_in, one_line, positive_int
from ..utils import atomic_write_bytes, claim_folder, output_folder

DATASETS = ("mnist", "fashion-mnist", "mnist-subset", "fashion-mnist-subset")
#: the command recorded in the manifest of a folder that ``sweep`` and ``report`` write (they share one folder)
FOLDER_COMMAND = "fixedpoint"
SWEEP_FILES = ("sweep.json", "sweep.png")
REPORT_FILES = ("report.json", "layers.md", "lenet_int.npz")


def _test_set(name: str, data_dir: str | None, limit: int | None = None) -> Any:
    from .. import data

    if name == "mnist":
        test = data.MNIST(root=data_dir, train=False)
    elif name == "fashion-mnist":
        test = data.FashionMNIST(root=data_dir, train=False)
    elif name == "mnist-subset":
        test = data.mnist_subset(train=False)
    elif name == "fashion-mnist-subset":
        test = data.fashion_mnist_subset(train=False)
    else:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    if limit is not None and limit < len(test):
        test = type(test).from_arrays(test.images[:limit], test.labels[:limit], False)
    return test


def _load_checkpoint_model(path: str) -> tuple[Any, dict[str, Any]]:
    from ..models.record import record_class
    from ..train import load_model  # rebuilds the model from the checkpoint's architecture/quantization record
    from ..train.checkpoint import read_checkpoint_meta

    record = read_checkpoint_meta(path).get("model")
    if record is not None and record.get("arch") != "LeNet5":  # say so before anything else is tried
        raise ValueError(f"the integer unit supports LeNet-5 only; checkpoint {path} holds {record_class(record)}")
    model, meta = load_model(path)
    model.eval()
    return model, meta


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="img", leave=False)
    return bar, bar.update


def _write_json(path: Path, payload: Any) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, default=_jsonable) + "\n").encode())


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def cmd_convert(args: argparse.Namespace) -> int:
    from .. import data
    from ..utils import output_file
    from .convert import convert_lenet, is_integer_model_file, save_integer_model

    if Path(args.out).suffix != ".npz":
        raise ValueError(f"--out {args.out}: an integer model is written as a .npz file; name it NAME.npz")
    # never the checkpoint itself, nor a file that is not an integer model (unless --force)
    output_file(args.out, "fixedpoint convert", is_integer_model_file, args.force, inputs=(args.checkpoint,))
    model, meta = _load_checkpoint_model(args.checkpoint)
    norm = data.FashionMNIST if args.dataset.startswith("fashion") else data.MNIST  # its mean / std (no file read)
    imodel = convert_lenet(model, args.weight_bits, not args.per_tensor, args.method, mean=norm.mean, std=norm.std,
                           provenance={"checkpoint": str(args.checkpoint),
                                       "checkpoint_config": meta.get("config", {}),
                                       "checkpoint_model": meta.get("model"),  # its architecture/quantization record
                                       "converted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    save_integer_model(imodel, args.out)
    print(f"{args.checkpoint} -> {args.out}: {args.weight_bits}-bit weights "
          f"({'per tensor' if args.per_tensor else 'per channel'}), activations "
          f"{[l.act_bits for l in imodel.layers[:-1]]} bits, default method {args.method}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from .convert import load_integer_model
    from .infer import integer_forward

    imodel = load_integer_model(args.model)
    test = _test_set(args.dataset, args.data_dir, args.limit)
    bar, update = _progress(len(test), not args.no_progress, "integer inference")
    start = time.perf_counter()
    logits, stats = integer_forward(imodel, test.images, method=args.method, acc_bits=args.acc_bits,
                                    overflow=args.overflow, collect=True, progress=update)
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.close()
    acc = 100.0 * float(np.mean(logits.argmax(1) == test.labels))
    print(f"{args.model}: integer-only accuracy {acc:.2f}% on {len(test):,} {args.dataset} test images "
          f"({args.method or imodel.method}, {args.acc_bits}-bit accumulator, {args.overflow}; {seconds:.1f} s)")
    for name, s in stats.items():
        print(f"  {name:6s} accumulator range [{s['acc_min']:,}, {s['acc_max']:,}]   overflowed additions "
              f"{s['overflows']:,} in {s['outputs_overflowed']:,} of {s['outputs']:,} outputs")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from .convert import load_integer_model
    from .sweep import accumulator_sweep, plot_sweep

    imodel = load_integer_model(args.model)
    test = _test_set(args.dataset, args.data_dir, args.limit)
    widths = list(range(args.min_bits, args.max_bits + 1))
    from tqdm import tqdm

    bar = tqdm(total=2 * len(widths), desc="accumulator sweep", leave=False, disable=args.no_progress)

    def log(line: str) -> None:
        bar.update(1)
        bar.write(line) if not args.no_progress else print(line, flush=True)

    out = Path(args.out)
    with output_folder(out, FOLDER_COMMAND, args.force, SWEEP_FILES):  # refused before the sweep runs
        rows = accumulator_sweep(imodel, test.images, test.labels, widths, method=args.method, log=log)
        bar.close()
        _write_json(out / "sweep.json", {"model": str(args.model), "dataset": args.dataset, "images": len(test),
                                         "method": args.method or imodel.method, "rows": rows})
        plot_sweep(rows, out / "sweep.png", title=f"integer LeNet-5, {len(test):,} {args.dataset} test images")
    print(f"sweep table and plot in {out}/ (sweep.json, sweep.png)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .convert import convert_lenet, save_integer_model
    from .report import format_layer_report, layer_report, run_integer_report, summary_line

    out = Path(args.out)
    claim_folder(out, FOLDER_COMMAND, args.force, REPORT_FILES)  # before any work
    model, meta = _load_checkpoint_model(args.checkpoint)
    float_model = _load_checkpoint_model(args.float_checkpoint)[0] if args.float_checkpoint else None
    test = _test_set(args.dataset, args.data_dir, args.limit)
    imodel = convert_lenet(model, args.weight_bits, not args.per_tensor, args.method, mean=test.mean, std=test.std,
                           provenance={"checkpoint": str(args.checkpoint), "checkpoint_model": meta.get("model")})
    report = run_integer_report(model, test, args.weight_bits, not args.per_tensor, args.method,
                                float_model=float_model, integer_model=imodel)
    rows = layer_report(imodel, test.images)
    with output_folder(out, FOLDER_COMMAND, args.force, REPORT_FILES):
        _write_json(out / "report.json", {"checkpoint": str(args.checkpoint), "dataset": args.dataset,
                                          "accuracy": report, "layers": rows})
        atomic_write_bytes(out / "layers.md", (format_layer_report(rows) + "\n").encode())
        save_integer_model(imodel, out / "lenet_int.npz")
    print(format_layer_report(rows))
    print()
    print(summary_line(report))
    print(f"report.json, layers.md and the integer model lenet_int.npz in {out}/")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tinyqnn fixedpoint", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="convert, evaluate, sweep, report or bench (each has its own --help)")

    def data_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dataset", choices=DATASETS, default="mnist", help="test set: %(choices)s (default mnist)")
        add_data_dir_arg(p)
        p.add_argument("--limit", type=positive_int, default=None, help="only the first N test images (N >= 1)")

    def weight_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--weight-bits", type=int_in(2, 16), default=8,
                       help="bits of the integer weights, 2 to 16 (default 8)")
        p.add_argument("--per-tensor", action="store_true", help="one weight scale per layer (default: per channel)")
        p.add_argument("--method", choices=("requant", "thresholds"), default="requant",
                       help="activation step: multiplier and shift, or integer thresholds (default requant)")

    def integer_model_args(p: argparse.ArgumentParser) -> None:  # commands that run a converted model
        p.add_argument("model", help="an integer model file written by `convert` or `report`")
        data_args(p)
        p.add_argument("--method", choices=("requant", "thresholds"), default=None,
                       help="activation step (default: the one the model was converted with)")

    p = sub.add_parser("convert", help="checkpoint -> integer model (.npz)")
    p.add_argument("checkpoint", help="a checkpoint of an activation-quantized LeNet-5")
    p.add_argument("--out", required=True, help="the integer model file to write (.npz); an existing file is "
                   "replaced only if it is an integer model (never the checkpoint itself)")
    p.add_argument("--force", action="store_true", help="replace an existing --out file that is not an integer model")
    p.add_argument("--dataset", choices=DATASETS, default="mnist", help="whose normalisation the inputs had")
    weight_args(p)
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("evaluate", help="accuracy and overflow counts of an integer model")
    integer_model_args(p)
    p.add_argument("--acc-bits", type=int_in(2, 62), default=32, help="accumulator width in bits, 2 to 62 (default 32)")
    p.add_argument("--overflow", choices=("wrap", "saturate"), default="wrap",
                   help="what the accumulator does past its range (default wrap)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("sweep", help="accuracy and overflows vs accumulator width, wrap and saturate")
    integer_model_args(p)
    p.add_argument("--min-bits", type=int_in(2, 62), default=12, help="narrowest accumulator, 2 to 62 (default 12)")
    p.add_argument("--max-bits", type=int_in(2, 62), default=32, help="widest accumulator, 2 to 62 (default 32)")
    p.add_argument("--out", default="runs/fixedpoint", help="folder for the JSON, tables and plots (a new or "
                   "empty folder, or one that sweep/report wrote; rerunning replaces only their files)")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder that sweep/report did not "
                   "write, replacing files of the same names")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="float / fake-quantized / integer accuracy, per-layer costs and energy")
    p.add_argument("checkpoint", help="a checkpoint of an activation-quantized LeNet-5")
    p.add_argument("--float-checkpoint", default=None, help="a float baseline for the first column")
    data_args(p)
    weight_args(p)
    p.add_argument("--out", default="runs/fixedpoint", help="folder for the JSON, tables and plots (a new or "
                   "empty folder, or one that sweep/report wrote; rerunning replaces only their files)")
    p.add_argument("--force", action="store_true", help="write into a non-empty folder that sweep/report did not "
                   "write, replacing files of the same names")
    p.set_defaults(func=cmd_report)

    sub.add_parser("bench", help="integer vs float inference throughput (see `bench --help`)", add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "bench":
        from .benchmark import main as bench_main

        return bench_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "sweep" and args.min_bits > args.max_bits:  # an empty sweep would be written as a result
        parser.error(f"sweep: --min-bits {args.min_bits} is above --max-bits {args.max_bits}; nothing to sweep")
    try:
        return int(args.func(args) or 0)
    except USER_ERRORS as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
