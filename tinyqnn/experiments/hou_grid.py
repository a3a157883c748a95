"""Hou et al. (2019), Sections 4.2.2-4.2.5 on Fashion-MNIST: weights x gradients x clipping, with N workers.

    python -m tinyqnn hou-grid --out results/hou/grid               (about 40 minutes on one core)
    python -m tinyqnn hou-grid --quick --out /tmp/hou-grid          (bundled subset, seconds; what CI runs)
    python -m tinyqnn hou-grid --dask                               (cells as tasks on a Dask LocalCluster)
    python -m tinyqnn hou-grid --scheduler tcp://host:8786          (cells on a running Dask cluster)

The paper uses Cifarnet on CIFAR-10 with Adam (lr 2e-4); this is the NumPy-sized stand-in: a one-hidden-layer MLP
784 -> 256 -> 10 on Fashion-MNIST, Adam with a constant lr 1e-3, batch 64 per worker, ``--epochs`` passes over the
data (1 by default; not to convergence). Parts (``--parts``):

* ``grid`` (Table 1, 2 workers): weights FP / LAB / LAQ2 / LAQ3 / LAQ4 x gradients FP / SQ2 / SQ3 / SQ4, each SQm
  without clipping and with c = 3. Test accuracy, training loss, bits per iteration. Per-layer blow-up
  ||Q g||^2 / ||g||^2 against layer size (Figure 6b) from the LAQ2 cells.
* ``clipping`` (Figure 6c): LAQ2 weights, SQ2 gradients, c in {1, 2, 3, none}: early vs final training loss.
* ``scaling`` (Table 2, weak scaling): LAQ3 weights, N in {1, 2, 4, 8} workers, each with batch 64 and a 1/N shard,
  iterations scaled by 1/N (the same number of samples in total); gradients FP, SQ2, SQ2 c = 3.

Outputs in ``--out``: ``cells/*.json`` (resumable), ``summary.json``, ``tables.md``, ``*.png``.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..args import add_data_dir_arg, check_fits_memory, non_negative_int, positive_float, positive_int
from ..utils import save_figure
from .hou_common import add_cell_args, experiment_folder, markdown_table, run_cells, subsample, write_json, write_text
from .hou_mlp import BYTES_PER_HIDDEN, load_data

WEIGHTS = {"FP": None, "LAB": 1, "LAQ2": 2, "LAQ3": 3, "LAQ4": 4}
GRADS = {"FP": (None, None), "SQ2": (2, None), "SQ3": (3, None), "SQ4": (4, None),
         "SQ2 c=3": (2, 3.0), "SQ3 c=3": (3, 3.0), "SQ4 c=3": (4, 3.0)}
CLIPS = {"c=1": 1.0, "c=2": 2.0, "c=3": 3.0, "none": None}
SCALING_GRADS = ("FP", "SQ2", "SQ2 c=3")
SMOOTH = 50  # iterations in the running mean of f_t used for "iterations to reach a loss"


def run_cell(cell: dict[str, Any]) -> dict[str, Any]:
    from ..distributed import MLPProblem, TrainConfig, train

    c = cell["config"]
    train_set, test_set = load_data(c["dataset"], c["data_dir"])
    problem = MLPProblem.from_datasets(c["hidden"], train_set, test_set, workers=c["workers"], seed=c["seed"])
    cfg = TrainConfig(workers=c["workers"], iterations=c["iterations"], weight_bits=c["weight_bits"],
                      grad_bits=c["grad_bits"], clip=c["clip"], optimizer="adam", lr=c["lr"], lr_decay="none",
                      seed=c["seed"])
    start = time.perf_counter()
    server, h = train(problem, cfg)
    loss = np.asarray(h.loss)
    smooth = np.convolve(loss, np.ones(SMOOTH) / SMOOTH, mode="valid") if len(loss) >= SMOOTH else loss
    its, values = subsample(h.average_loss())
    sits, svalues = subsample(smooth)
    return {"config": c, "iterations": its, "average_loss": values, "smooth_iterations": [i + SMOOTH - 1 for i in sits],
            "smooth_loss": svalues, "final_train_loss": float(np.mean(loss[-min(100, len(loss)):])),
            **problem.evaluate(server.quantized_params()),
            "layers": {n: {"size": s, "blowup": b, "spread": sp, "clip_bias": cb}
                       for n, s, b, sp, cb in zip(problem.names, h.sizes, h.blowup(), h.spread(), h.clip_bias())},
            "bits_up_per_iteration": h.bits_up[-1], "bits_down_per_iteration": h.bits_down[-1],
            "bits_up_total": int(sum(h.bits_up)), "seconds": time.perf_counter() - start}


def iterations_to(result: dict[str, Any], target: float) -> int | None:
    """First iteration at which the running mean of f_t (over SMOOTH iterations) is <= target."""
    for t, v in zip(result["smooth_iterations"], result["smooth_loss"]):
        if v <= target:
            return t
    return None


def make_cells(args: argparse.Namespace) -> list[dict[str, Any]]:
    base = {"dataset": args.dataset, "data_dir": args.data_dir, "hidden": args.hidden, "lr": args.lr,
            "seed": args.seed}
    n_train = 6000 if "subset" in args.dataset else 60000
    per_epoch_2 = n_train // (2 * 64)
    iterations_2 = args.iterations or args.epochs * per_epoch_2
    cells = []

    def add(name: str, workers: int, iterations: int, w: str, g: str, clip: float | None = None) -> None:
        bits, c = GRADS[g]
        cells.append({"name": name, "config": {**base, "workers": workers, "iterations": iterations,
                                               "weight_bits": WEIGHTS[w], "grad_bits": bits,
                                               "clip": clip if clip is not None else c}})

    if "grid" in args.parts:
        for w in args.weights:
            for g in args.grads:
                add(f"grid_{w}_{g.replace(' ', '').replace('=', '')}", 2, iterations_2, w, g)
    if "clipping" in args.parts:
        for name, c in CLIPS.items():
            add(f"clip_LAQ2_SQ2_{name.replace('=', '')}", 2, iterations_2, "LAQ2", "SQ2", c)
    if "scaling" in args.parts:
        for n in args.scaling_workers:
            for g in SCALING_GRADS:
                add(f"scale_N{n}_LAQ3_{g.replace(' ', '').replace('=', '')}", n, max(1, iterations_2 * 2 // n),
                    "LAQ3", g)
    return cells


def tables(results: dict[str, dict[str, Any]], cells: list[dict[str, Any]], args: argparse.Namespace) -> tuple[str, dict]:
    from ..distributed.gradient import blowup_bound, clipped_blowup_bound

    by_name = {c["name"]: results[c["name"]] for c in cells}
    text, summary = [], {}
    grid = {n: r for n, r in by_name.items() if n.startswith("grid_")}
    if grid:
        def key(w: str, g: str) -> str:
            return f"grid_{w}_{g.replace(' ', '').replace('=', '')}"

        some = next(iter(grid.values()))["config"]
        text.append(f"### Weights x gradients, {some['workers']} workers, {some['iterations']} iterations: "
                    f"test accuracy (%) / final training loss (mean f_t over the last 100 iterations)\n")
        rows = []
        for w in args.weights:
            row = [w]
            for g in args.grads:
                r = grid.get(key(w, g))
                row.append("" if r is None else f"{r['test_accuracy']:.2f} / {r['final_train_loss']:.3f}")
                if r is not None:
                    summary[f"grid/{w}/{g}"] = {"test_accuracy": r["test_accuracy"],
                                                "final_train_loss": r["final_train_loss"]}
            rows.append(row)
        text.append(markdown_table(["weights \\ gradients", *args.grads], rows))
        w0 = args.weights[0]
        text.append("\nBits per iteration (both workers), uplink gradients / downlink weights (both workers):\n")
        rows = []
        for g in args.grads:
            r = grid.get(key(w0, g))
            if r:
                rows.append([g, r["bits_up_per_iteration"], f"{grid[key(w0, 'FP')]['bits_up_per_iteration'] / r['bits_up_per_iteration']:.1f}x"
                             if key(w0, "FP") in grid else ""])
        text.append(markdown_table(["gradients", "uplink bits / iteration", "reduction vs FP"], rows))
        rows = []
        for w in args.weights:
            r = grid.get(key(w, args.grads[0]))
            if r:
                rows.append([w, r["bits_down_per_iteration"]])
        text.append("\n" + markdown_table(["weights", "downlink bits / iteration"], rows))
        layer_rows = []
        for g in ("SQ2", "SQ2 c=3"):
            r = grid.get(key("LAQ2", g))
            if r is None:
                continue
            for name, L in r["layers"].items():
                bound = blowup_bound(L["size"], 2) if g == "SQ2" else clipped_blowup_bound(3.0, 2)
                layer_rows.append([g, name, L["size"], f"{L['spread']:.2f}", f"{L['blowup']:.3f}", f"{bound:.2f}"])
                summary[f"layers/{g}/{name}"] = L
        if layer_rows:
            text.append("\n### Per-layer norm blow-up ‖Q(g)‖² / ‖g‖² (LAQ2 weights, averaged over the run)\n")
            text.append(markdown_table(["gradients", "layer", "size d", "spread ‖g‖∞‖g‖₁/‖g‖²", "measured",
                                        "bound (Prop. 1 / Prop. 2)"], layer_rows))
    clip = {n: r for n, r in by_name.items() if n.startswith("clip_")}
    if clip:
        text.append("\n### Clipping factor, LAQ2 weights + SQ2 gradients (2 workers)\n")
        rows = []
        for name in CLIPS:
            r = clip.get(f"clip_LAQ2_SQ2_{name.replace('=', '')}")
            if r is None:
                continue
            early = r["smooth_loss"][int(np.searchsorted(r["smooth_iterations"], 100))] \
                if r["smooth_iterations"] and r["smooth_iterations"][-1] >= 100 else math.nan
            rows.append([name, f"{early:.3f}", f"{r['final_train_loss']:.3f}", f"{r['test_accuracy']:.2f}",
                         f"{r['layers']['W1']['clip_bias']:.4f}"])
            summary[f"clipping/{name}"] = {"loss_at_100": early, "final_train_loss": r["final_train_loss"],
                                           "test_accuracy": r["test_accuracy"]}
        text.append(markdown_table(["c", "training loss near t = 100 (mean of 50)", "final training loss",
                                    "test acc (%)", "W1 clipping bias ‖Clip g − g‖²/(dσ²)"], rows))
    scale = {n: r for n, r in by_name.items() if n.startswith("scale_")}
    if scale:
        target = args.target_loss
        text.append(f"\n### Weak scaling, LAQ3 weights, batch 64 per worker, iterations x 1/N: test accuracy (%) / "
                    f"iterations until the running mean of f_t reaches {target}\n")
        rows = []
        for n in args.scaling_workers:
            row = [n]
            for g in SCALING_GRADS:
                r = scale.get(f"scale_N{n}_LAQ3_{g.replace(' ', '').replace('=', '')}")
                if r is None:
                    row.append("")
                    continue
                reach = iterations_to(r, target)
                row.append(f"{r['test_accuracy']:.2f} / {reach if reach is not None else 'not reached'}"
                           f" of {r['config']['iterations']}")
                summary[f"scaling/N{n}/{g}"] = {"test_accuracy": r["test_accuracy"], "iterations_to_target": reach,
                                                "iterations": r["config"]["iterations"]}
            rows.append(row)
        text.append(markdown_table(["N workers", *SCALING_GRADS], rows))
    return "\n".join(text) + "\n", summary


def plots(results: dict[str, dict[str, Any]], cells: list[dict[str, Any]], args: argparse.Namespace, out: Path) -> None:
    import matplotlib.pyplot as plt  # the default backend: a notebook keeps its inline figures

    from ..distributed.gradient import blowup_bound, clipped_blowup_bound

    names = {c["name"] for c in cells}
    grid_w = [w for w in args.weights if any(n.startswith(f"grid_{w}_") for n in names)]
    if grid_w:
        fig, axes = plt.subplots(1, len(grid_w), figsize=(3.6 * len(grid_w), 3.4), squeeze=False, sharey=True)
        for ax, w in zip(axes[0], grid_w):
            for i, g in enumerate(args.grads):
                r = results.get(f"grid_{w}_{g.replace(' ', '').replace('=', '')}")
                if r:
                    ax.plot(r["smooth_iterations"], r["smooth_loss"], "--" if "c=" in g else "-",
                            color=f"C{i % 4 if 'c=' not in g else args.grads.index(g.split()[0])}", label=g)
            ax.set(title=f"weights {w}", xlabel="iteration", yscale="log")
        axes[0][0].set_ylabel(f"training loss (running mean of {SMOOTH})")
        axes[0][-1].legend(fontsize=7)
        fig.tight_layout()
        save_figure(fig, out / "grid_curves.png")
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for g, marker in (("SQ2", "o"), ("SQ2 c=3", "s")):
            r = results.get(f"grid_LAQ2_{g.replace(' ', '').replace('=', '')}")
            if r:
                sizes = [L["size"] for L in r["layers"].values()]
                ax.plot(sizes, [L["blowup"] for L in r["layers"].values()], marker, ms=8, label=f"{g} measured")
        d = np.geomspace(1, 3e5, 50)
        ax.plot(d, [blowup_bound(int(x), 2) for x in d], "k--", label="Prop. 1 bound")
        ax.axhline(clipped_blowup_bound(3.0, 2), color="gray", ls=":", label="Prop. 2 bound (c = 3)")
        ax.set(xscale="log", yscale="log", xlabel="layer size d", ylabel="‖Q(g)‖² / ‖g‖²",
               title="Per-layer blow-up (LAQ2 weights)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        save_figure(fig, out / "layer_blowup.png")
    if any(n.startswith("clip_") for n in names):
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for name in CLIPS:
            r = results.get(f"clip_LAQ2_SQ2_{name.replace('=', '')}")
            if r:
                ax.plot(r["smooth_iterations"], r["smooth_loss"], label=name)
        ax.set(yscale="log", xlabel="iteration", ylabel=f"training loss (running mean of {SMOOTH})",
               title="Clipping factor (LAQ2 + SQ2)")
        ax.legend()
        fig.tight_layout()
        save_figure(fig, out / "clipping.png")
    if any(n.startswith("scale_") for n in names):
        fig, axes = plt.subplots(1, len(SCALING_GRADS), figsize=(11, 3.4), sharey=True)
        for ax, g in zip(axes, SCALING_GRADS):
            for n in args.scaling_workers:
                r = results.get(f"scale_N{n}_LAQ3_{g.replace(' ', '').replace('=', '')}")
                if r:
                    ax.plot(r["smooth_iterations"], r["smooth_loss"], label=f"N = {n}")
            ax.set(title=f"LAQ3 / {g}", xlabel="iteration", xscale="log", yscale="log")
        axes[0].set_ylabel("training loss (running mean)")
        axes[-1].legend(fontsize=7)
        fig.tight_layout()
        save_figure(fig, out / "scaling.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinyqnn hou-grid", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/hou/grid", help="folder for cells, tables and plots (resumable)")
    p.add_argument("--dataset", choices=("fashion-mnist", "mnist", "fashion-mnist-subset", "mnist-subset"),
                   default="fashion-mnist", help="data set: %(choices)s (default fashion-mnist)")
    add_data_dir_arg(p)
    p.add_argument("--parts", nargs="+", choices=("grid", "clipping", "scaling"), default=["grid", "clipping", "scaling"],
                   help="which studies to run: %(choices)s (default all)")
    p.add_argument("--weights", nargs="+", choices=tuple(WEIGHTS), default=list(WEIGHTS),
                   help="weight quantizers: %(choices)s (default all)")
    p.add_argument("--grads", nargs="+", choices=tuple(GRADS), default=list(GRADS),
                   help="gradient quantizers: %(choices)s (default all)")
    p.add_argument("--scaling-workers", type=positive_int, nargs="+", default=[1, 2, 4, 8],
                   help="worker counts of the weak-scaling study (default 1 2 4 8)")
    p.add_argument("--hidden", type=positive_int, default=256, help="hidden units of the MLP (default 256)")
    p.add_argument("--epochs", type=positive_int, default=1, help="passes over the training set (sets the iterations)")
    p.add_argument("--iterations", type=non_negative_int, default=0,
                   help="iterations with 2 workers (overrides --epochs; 0: from --epochs)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="server learning rate (default 1e-3)")
    p.add_argument("--target-loss", type=positive_float, default=0.6, help="for the weak-scaling 'iterations to reach'")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of data order, initialisation and quantizer streams")
    p.add_argument("--quick", action="store_true", help="bundled subset, few cells, 20 iterations (CI)")
    add_cell_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.dataset, args.iterations, args.hidden = "fashion-mnist-subset", 20, 32
        args.weights, args.grads, args.scaling_workers = ["FP", "LAB", "LAQ2"], ["FP", "SQ2", "SQ2 c=3"], [1, 2]
    check_fits_memory(p, "--hidden", args.hidden,
                      BYTES_PER_HIDDEN * args.hidden * max(1, max(args.scaling_workers) // 2),
                      "784 float64 weights per hidden unit, in about 20 copies, more with more workers")
    out = Path(args.out)
    cells = make_cells(args)
    with experiment_folder(out, "hou-grid", args):  # the run-manifest rule: never a user's own file
        results = run_cells(run_cell, cells, out, args, fresh=args.fresh, progress=not args.no_progress)
        header = (f"# Hou et al. 2019 stand-in on {args.dataset}: MLP 784-{args.hidden}-10, Adam lr {args.lr} (constant), "
                  f"batch 64 per worker, seed {args.seed}\n\n")
        text, summary = tables(results, cells, args)
        write_text(out / "tables.md", header + text)
        write_json(out / "summary.json", {"args": vars(args), "summary": summary})
        plots(results, cells, args, out)
        print(header + text)
        print(f"tables, plots and cells in {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
