"""Hou et al. (2019), Section 4.1: the synthetic linear model with LAB weights and FP / SQm / clipped gradients.

    python -m tinyqnn hou-linear --out results/hou/linear          (about 15 minutes on one core)
    python -m tinyqnn hou-linear --quick --out /tmp/hou-linear      (seconds; what CI runs)

w*, x ~ U[-0.5, 0.5]^d, y ~ N(x.w*, 0.2^2), batch 64, loss ||Xw - y||^2 / (2B); 1-bit LAB weights; RMSProp
(beta = 0.999, bias-corrected) with lr 0.03 / sqrt(t); one worker; gradients FP, SQ2, SQ3, SQ2 with clipping at
c = 1, 2, 3; d from 10 to 10^4; several seeds. The paper stops when the average loss has not fallen for 5000
iterations; here every run has a fixed ``--iterations`` (said in the output). Two variants: ``uniform`` (the paper's)
and ``spiky`` (feature 0 multiplied by sqrt(d), so ||g||_inf ||g||_1 / ||g||^2 grows like sqrt(d): the regime
where Proposition 1's d-dependence and clipping's benefit show).

Outputs in ``--out``: ``cells/*.json`` (resumable), ``summary.json``, ``tables.md`` (final average training loss
sum_t f_t / T; measured norm blow-up E||Q g||^2 / ||g||^2 against the bounds; clipping bias against d sigma^2 F(c)),
``curves_<variant>.png`` and ``blowup.png``.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..args import check_fits_memory, positive_int
from ..utils import save_figure
from .hou_common import add_cell_args, experiment_folder, markdown_table, run_cells, subsample, write_json, write_text

SETTINGS: dict[str, dict[str, Any]] = {
    "FP": dict(grad_bits=None, clip=None), "SQ2": dict(grad_bits=2, clip=None), "SQ3": dict(grad_bits=3, clip=None),
    "SQ2 c=1": dict(grad_bits=2, clip=1.0), "SQ2 c=2": dict(grad_bits=2, clip=2.0), "SQ2 c=3": dict(grad_bits=2, clip=3.0),
}
VARIANTS = ("uniform", "spiky")
#: memory per feature of one run, about: a 64 x d float64 batch, its copies in the loss and its gradient, and
#: the server's d-sized vectors
BYTES_PER_D = 4 * 64 * 8


def run_cell(cell: dict[str, Any]) -> dict[str, Any]:
    """One training run of the linear model; returns curves and diagnostics (JSON-able)."""
    from ..distributed import LinearProblem, TrainConfig, train

    c = cell["config"]
    d = c["d"]
    problem = LinearProblem(d=d, batch_size=64, noise=0.2, seed=c["seed"],
                            spike=math.sqrt(d) if c["variant"] == "spiky" else 1.0)
    cfg = TrainConfig(workers=1, iterations=c["iterations"], weight_bits=1, optimizer="rmsprop", lr=0.03,
                      lr_decay="sqrt", beta=0.999, seed=c["seed"], **SETTINGS[c["setting"]])
    start = time.perf_counter()
    server, h = train(problem, cfg)
    avg = h.average_loss()
    its, values = subsample(avg)
    return {"config": c, "iterations": its, "average_loss": values, "final_average_loss": float(avg[-1]),
            "final_expected_loss": problem.evaluate(server.quantized_params())["expected_loss"],
            "blowup": h.blowup()[0], "spread": h.spread()[0], "clip_bias": h.clip_bias()[0],
            "bits_up_per_iteration": h.bits_up[-1], "bits_down_per_iteration": h.bits_down[-1],
            "seconds": time.perf_counter() - start}


def make_cells(ds: list[int], seeds: list[int], iterations: int, variants: list[str]) -> list[dict[str, Any]]:
    return [{"name": f"{v}_d{d}_{s.replace(' ', '').replace('=', '')}_seed{seed}",
             "config": {"variant": v, "d": d, "setting": s, "seed": seed, "iterations": iterations}}
            for v in variants for d in ds for s in SETTINGS for seed in seeds]


def _span(values: list[float], fmt: str) -> str:
    """``"2.13"`` for one value, ``"2.11–2.16"`` (min–max) for several: a table states what the seeds gave."""
    lo, hi = min(values), max(values)
    return f"{lo:{fmt}}" if len(values) == 1 or f"{lo:{fmt}}" == f"{hi:{fmt}}" else f"{lo:{fmt}}–{hi:{fmt}}"


def summarise(results: dict[str, dict[str, Any]], ds: list[int], variants: list[str]) -> tuple[dict, str]:
    from ..distributed.gradient import blowup_bound, clipped_blowup_bound, clipping_bias_F

    def group(v: str, d: int, s: str) -> list[dict[str, Any]]:
        return [r for r in results.values() if r["config"]["variant"] == v and r["config"]["d"] == d
                and r["config"]["setting"] == s]

    summary: dict[str, Any] = {}
    text = []
    for v in variants:
        rows, blow_rows, bias_rows = [], [], []
        for d in ds:
            row = [d]
            for s in SETTINGS:
                vals = [r["final_average_loss"] for r in group(v, d, s)]
                summary[f"{v}/d{d}/{s}/final_average_loss"] = (float(np.mean(vals)), float(np.std(vals)))
                row.append(f"{np.mean(vals):.4g} ± {np.std(vals):.2g}")
            fp = summary[f"{v}/d{d}/FP/final_average_loss"][0]
            row.append(f"{summary[f'{v}/d{d}/SQ2/final_average_loss'][0] / fp:.3f}")
            rows.append(row)
            sq2 = group(v, d, "SQ2")
            blows = [r["blowup"] for r in sq2]
            blow = float(np.mean(blows))
            # Lemma 3 bounds the SQ2 run by the spread of the gradients *it* quantized (its own run, seed by seed);
            # the FP run's gradients follow another trajectory and can have a smaller spread
            spreads = [r["spread"] for r in sq2]
            spread = float(np.mean(spreads))
            bound = blowup_bound(d, 2)
            blow_row = [d, _span(spreads, ".2f"), f"{(1 + math.sqrt(d)) / 2:.2f}", _span(blows, ".3f"),
                        _span([x + 1 for x in spreads], ".2f"), f"{bound:.2f}",
                        _span([b / bound for b in blows], ".0%")]
            bias_row = [d]
            for c in (1, 2, 3):
                bc = float(np.mean([r["blowup"] for r in group(v, d, f"SQ2 c={c}")]))
                summary[f"{v}/d{d}/SQ2 c={c}/blowup"] = bc
                blow_row.append(f"{_span([r['blowup'] for r in group(v, d, f'SQ2 c={c}')], '.3f')} "
                                f"(≤ {clipped_blowup_bound(c, 2):.2f})")
                biases = [r["clip_bias"] for r in group(v, d, f"SQ2 c={c}")]
                summary[f"{v}/d{d}/SQ2 c={c}/clip_bias"] = float(np.mean(biases))
                summary[f"{v}/d{d}/SQ2 c={c}/clip_bias_range"] = (float(min(biases)), float(max(biases)))
                deviations = [100 * (b / clipping_bias_F(c) - 1) for b in biases]
                bias_row.append(f"{_span(biases, '.3g')} ({_span(deviations, '+.1f')}%)")
            summary[f"{v}/d{d}/SQ2/blowup"], summary[f"{v}/d{d}/spread"] = blow, spread
            summary[f"{v}/d{d}/SQ2/blowup_range"] = (float(min(blows)), float(max(blows)))
            blow_rows.append(blow_row)
            bias_rows.append(bias_row)
        bias_rows.append(["F(c) (Gaussian)"] + [f"{clipping_bias_F(c):.3g}" for c in (1, 2, 3)])
        iters = next(iter(results.values()))["config"]["iterations"]
        text += [f"### {v} features: final average training loss sum_t f_t / T at T = {iters} (mean ± sd over seeds)\n",
                 markdown_table(["d", *SETTINGS, "SQ2 / FP"], rows),
                 f"\n### {v} features: norm blow-up E‖Q(g)‖² / ‖g‖² of SQ2 (measured over the run; "
                 "ranges over seeds)\n",
                 markdown_table(["d", "spread ‖g‖∞‖g‖₁/‖g‖² of SQ2's gradients", "max spread (1+√d)/2",
                                 "SQ2 measured", "Lemma 3 with that spread", "Prop. 1 bound", "measured / Prop. 1",
                                 "SQ2 c=1", "SQ2 c=2", "SQ2 c=3"], blow_rows),
                 f"\n### {v} features: clipping bias ‖Clip(g) − g‖² / (d σ²) vs F(c) (range over seeds, "
                 "deviation from F(c))\n",
                 markdown_table(["d", "c = 1", "c = 2", "c = 3"], bias_rows), "\n"]
    return summary, "\n".join(text)


def plot(results: dict[str, dict[str, Any]], ds: list[int], variants: list[str], out: Path) -> None:
    import matplotlib.pyplot as plt  # the default backend: a notebook keeps its inline figures

    from ..distributed.gradient import blowup_bound, clipped_blowup_bound

    for v in variants:
        fig, axes = plt.subplots(1, len(ds), figsize=(4 * len(ds), 3.4), squeeze=False)
        for ax, d in zip(axes[0], ds):
            for s in SETTINGS:
                runs = [r for r in results.values() if r["config"]["variant"] == v and r["config"]["d"] == d
                        and r["config"]["setting"] == s]
                if runs:
                    ax.plot(runs[0]["iterations"], np.mean([r["average_loss"] for r in runs], axis=0), label=s)
            ax.set(xscale="log", yscale="log", title=f"d = {d}", xlabel="iteration t")
        axes[0][0].set_ylabel("average training loss Σf/t")
        axes[0][-1].legend(fontsize=7)
        fig.suptitle(f"Linear model, LAB weights, {v} features (mean over seeds)")
        fig.tight_layout()
        save_figure(fig, out / f"curves_{v}.png")
    fig, ax = plt.subplots(figsize=(5.5, 4))
    dd = np.array(ds, float)
    for v, marker in zip(variants, "os"):
        for s in ("SQ2", "SQ2 c=3"):
            vals = [np.mean([r["blowup"] for r in results.values() if r["config"]["variant"] == v
                             and r["config"]["d"] == d and r["config"]["setting"] == s]) for d in ds]
            ax.plot(dd, vals, marker=marker, label=f"{s}, {v}")
    ax.plot(dd, [blowup_bound(int(d), 2) for d in dd], "k--", label="Prop. 1 bound (1+√d)/2·Δ+1")
    ax.axhline(clipped_blowup_bound(3, 2), color="gray", ls=":", label="Prop. 2 bound, c = 3")
    ax.set(xscale="log", yscale="log", xlabel="d", ylabel="E||Q(g)||² / ||g||²", title="Norm blow-up, SQ2")
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out / "blowup.png")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinyqnn hou-linear", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/hou/linear", help="folder for cells, tables and plots (resumable)")
    p.add_argument("--ds", type=positive_int, nargs="+", default=[10, 100, 1000, 10000],
                   help="dimensions d of the linear model (default 10 100 1000 10000)")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per setting (default 3)")
    p.add_argument("--iterations", type=positive_int, default=3000, help="iterations T per run (default 3000)")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                   help="feature distributions: %(choices)s (default all)")
    p.add_argument("--quick", action="store_true", help="d in {10, 100}, 1 seed, 100 iterations (for CI)")
    add_cell_args(p)
    args = p.parse_args(argv)
    if args.quick:
        args.ds, args.seeds, args.iterations = [10, 100], 1, 100
    check_fits_memory(p, "--ds", max(args.ds), BYTES_PER_D * max(args.ds), "float64 batches of 64 x d and their "
                      "gradients")
    out = Path(args.out)
    cells = make_cells(args.ds, list(range(args.seeds)), args.iterations, args.variants)
    with experiment_folder(out, "hou-linear", args):  # the run-manifest rule: never a user's own file
        results = run_cells(run_cell, cells, out, args, fresh=args.fresh, progress=not args.no_progress)
        summary, text = summarise(results, args.ds, args.variants)
        header = (f"# Hou et al. 2019, synthetic linear model: LAB weights, RMSProp lr 0.03/sqrt(t), batch 64, "
                  f"1 worker, {args.iterations} iterations, {args.seeds} seed(s)\n\n")
        write_text(out / "tables.md", header + text)
        write_json(out / "summary.json", {"args": {k: v for k, v in vars(args).items()}, "summary": summary})
        plot(results, args.ds, args.variants, out)
        print(header + text)
        print(f"tables, plots and cells in {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
