"""Hou et al. (2019), Section 4.2.1 (i): a one-hidden-layer MLP with d hidden units, LAQ3 weights, FP vs SQ3 gradients.

    python -m tinyqnn hou-mlp --out results/hou/mlp                (MNIST; about 20 minutes on one core)
    python -m tinyqnn hou-mlp --quick --out /tmp/hou-mlp            (bundled MNIST subset, seconds; what CI runs)

The paper trains on CIFAR-10; this runs on MNIST (784 -> d -> 10), d from 64 to 4096, 2 workers with batch 64 each,
RMSProp (beta = 0.999, bias-corrected) with the paper's lr 0.1 / sqrt(t), for ``--iterations`` iterations (not to
convergence; said in the output). The paper's claim: a larger d degrades quantized gradients more relative to
full-precision ones, while the final loss need not grow with d.

Outputs in ``--out``: ``cells/*.json`` (resumable), ``summary.json``, ``tables.md``, ``curves.png``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..args import add_data_dir_arg, check_fits_memory, non_negative_int, positive_float, positive_int
from ..utils import save_figure
from .hou_common import add_cell_args, experiment_folder, markdown_table, run_cells, subsample, write_json, write_text

GRADIENTS = {"FP": None, "SQ3": 3}
#: memory per hidden unit of one run, about: W1's 784 float64 weights in ~20 copies (server weights and optimizer
#: state, each worker's decoded weights, gradients and messages, temporaries of the step)
BYTES_PER_HIDDEN = 20 * 784 * 8


def load_data(dataset: str, data_dir: str | None) -> tuple[Any, Any]:
    from .. import data

    if dataset == "mnist-subset":
        return data.mnist_subset(True), data.mnist_subset(False)
    if dataset == "fashion-mnist-subset":
        return data.fashion_mnist_subset(True), data.fashion_mnist_subset(False)
    cls = data.MNIST if dataset == "mnist" else data.FashionMNIST
    return cls(root=data_dir, train=True), cls(root=data_dir, train=False)


def run_cell(cell: dict[str, Any]) -> dict[str, Any]:
    from ..distributed import MLPProblem, TrainConfig, train

    c = cell["config"]
    train_set, test_set = load_data(c["dataset"], c["data_dir"])
    problem = MLPProblem.from_datasets(c["hidden"], train_set, test_set, workers=c["workers"], seed=c["seed"])
    cfg = TrainConfig(workers=c["workers"], iterations=c["iterations"], weight_bits=3,
                      grad_bits=GRADIENTS[c["gradient"]], optimizer="rmsprop", lr=c["lr"], lr_decay="sqrt",
                      seed=c["seed"])
    start = time.perf_counter()
    server, h = train(problem, cfg, progress=c.get("progress", False))
    its, values = subsample(h.average_loss())
    return {"config": c, "iterations": its, "average_loss": values, "final_average_loss": float(h.average_loss()[-1]),
            "last_100_loss": float(np.mean(h.loss[-100:])), **problem.evaluate(server.quantized_params()),
            "blowup": dict(zip(problem.names, h.blowup())), "bits_up_per_iteration": h.bits_up[-1],
            "seconds": time.perf_counter() - start}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinyqnn hou-mlp", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/hou/mlp", help="folder for cells, tables and plots (resumable)")
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist", "mnist-subset", "fashion-mnist-subset"),
                   default="mnist", help="data set: %(choices)s (default mnist)")
    add_data_dir_arg(p)
    p.add_argument("--hidden", type=positive_int, nargs="+", default=[64, 256, 1024, 4096],
                   help="hidden units d (default 64 256 1024 4096)")
    p.add_argument("--iterations", type=positive_int, default=400, help="iterations per run (default 400)")
    p.add_argument("--workers", type=positive_int, default=2, help="data-parallel workers N (default 2)")
    p.add_argument("--lr", type=positive_float, default=0.1,
                   help="base learning rate, decayed as lr/sqrt(t) (default 0.1)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of data order, initialisation and quantizer streams")
    p.add_argument("--quick", action="store_true", help="bundled MNIST subset, d in {16, 64}, 30 iterations (CI)")
    add_cell_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.dataset, args.hidden, args.iterations = "mnist-subset", [16, 64], 30
    check_fits_memory(p, "--hidden", max(args.hidden), BYTES_PER_HIDDEN * max(args.hidden),
                      "784 float64 weights per hidden unit, in about 20 copies")
    out = Path(args.out)
    cells = [{"name": f"d{d}_{g}", "config": {"dataset": args.dataset, "data_dir": args.data_dir, "hidden": d,
                                             "gradient": g, "iterations": args.iterations, "workers": args.workers,
                                             "lr": args.lr, "seed": args.seed}}
             for d in args.hidden for g in GRADIENTS]
    with experiment_folder(out, "hou-mlp", args):  # the run-manifest rule: never a user's own file
        results = run_cells(run_cell, cells, out, args, fresh=args.fresh, progress=not args.no_progress)
        rows, summary = [], {}
        for d in args.hidden:
            fp, sq = results[f"d{d}_FP"], results[f"d{d}_SQ3"]
            summary[d] = {g: {k: results[f"d{d}_{g}"][k] for k in ("final_average_loss", "last_100_loss", "test_loss",
                                                                    "test_accuracy")} for g in GRADIENTS}
            rows.append([d, f"{fp['final_average_loss']:.4f}", f"{sq['final_average_loss']:.4f}",
                         f"{sq['final_average_loss'] / fp['final_average_loss']:.3f}",
                         f"{fp['test_accuracy']:.2f}", f"{sq['test_accuracy']:.2f}",
                         f"{sq['blowup']['W1']:.2f}", f"{sq['blowup']['W2']:.2f}"])
        header = (f"# Hou et al. 2019, MLP with d hidden units on {args.dataset}: LAQ3 weights, {args.workers} workers x "
                  f"batch 64, RMSProp lr {args.lr}/sqrt(t), {args.iterations} iterations, seed {args.seed}\n\n")
        text = header + markdown_table(
            ["d", "avg train loss FP", "avg train loss SQ3", "SQ3 / FP", "test acc FP (%)", "test acc SQ3 (%)",
             "SQ3 blow-up W1", "SQ3 blow-up W2"], rows)
        write_text(out / "tables.md", text)
        write_json(out / "summary.json", {"args": vars(args), "summary": summary})
        import matplotlib.pyplot as plt  # the default backend: a notebook keeps its inline figures

        fig, ax = plt.subplots(figsize=(6, 4))
        for i, d in enumerate(args.hidden):
            for g, ls in (("FP", "-"), ("SQ3", "--")):
                r = results[f"d{d}_{g}"]
                ax.plot(r["iterations"], r["average_loss"], ls, color=f"C{i}", label=f"d = {d}, {g}")
        ax.set(xscale="log", xlabel="iteration t", ylabel="average training loss Σf/t",
               title=f"MLP on {args.dataset}, LAQ3 weights")
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        save_figure(fig, out / "curves.png")
        print(text)
        print(f"tables, plots and cells in {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
