"""The two-linear-layer experiments of Yin et al. (2019, Section 3) as figures, from ``tinyqnn.theory``.

    python -m tinyqnn.experiments.theory_figures --out results/theory

Full-batch coarse gradient descent (Algorithm 1) with the closed-form expected gradients, for the
identity, ReLU and clipped-ReLU STEs, on a teacher (v*, w*) that has spurious minima:

(a) ``inner_products.png``: <E[g_mu], df/dw> along descent from one random start per STE (the
    paper proves it is >= 0: the coarse gradient is a descent direction of the true loss);
(b) ``loss_curves.png``: the population loss from several random starts per STE;
(c) ``spurious_minimum.png``: descent started exactly at a spurious minimizer (theta = pi).
    ReLU and clipped-ReLU coarse gradients vanish there, so those runs stay; the identity STE's
    does not (Lemma 9): it pushes w along its own axis towards 0, where w rattles around the origin
    (theta flips between pi and 0) and the loss rises well above the minimum's. For this teacher the
    run eventually settles at theta = 0, i.e. the instability happens to carry it to the global
    minimum; the point of the figure is that the identity STE does not stay at a critical point.

``theory.json`` holds the numbers behind each figure. The inner product is reported only where it
is numerically defined: at theta = 0 or pi (to ~1e-6) df/dw has no well-defined direction (f is
not differentiable in w there), and the value computed from rounding noise is excluded.
Everything runs in a few seconds.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import replace
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..args import non_negative_int, positive_float, positive_int
from ..utils import atomic_write_bytes, claim_folder, output_folder, save_figure

STES = ("identity", "relu", "clipped_relu")
#: teacher: m = 5 patches, n = 4 inputs; (1^T v*)^2 = 4 < (m + 1)|v*|^2 / 2 = 7.02, so spurious minima
#: and saddles exist (Proposition 1), and 1^T v* != 0 with m > 1, so the identity STE is unstable there
V_STAR = (1.0, 0.8, -0.6, 0.5, 0.3)
W_STAR = (0.5, 0.5, 0.5, 0.5)
#: angles closer than this to 0 or pi make df/dw's direction undefined (see the module docstring)
DEGENERATE_SIN = 1e-6
#: "monotone" allows rises this small: at theta = 0 the loss has a kink (linear in theta), and a
#: fixed step rattles around it by ~1e-8
MONOTONE_TOL = 1e-7


def _defined(h: Any) -> np.ndarray:
    return np.sin(h.angle) > DEGENERATE_SIN


def inner_product_stats(h: Any) -> dict[str, float]:
    """Min / max of <E g, df/dw> over the recorded steps where it is defined, and how many were not."""
    ok = _defined(h)
    vals = h.inner[ok]
    return {"min": float(vals.min()) if vals.size else math.nan, "max": float(vals.max()) if vals.size else math.nan,
            "steps_defined": int(ok.sum()), "steps_degenerate": int((~ok).sum())}


def run_theory(steps: int = 1200, lr: float = 0.05, starts: int = 5, seed: int = 0,
               spurious_steps: int = 400) -> dict[str, Any]:
    """Run the three experiments; returns the ``DescentHistory`` objects and a JSON-able summary."""
    from ..theory import (
        coarse_gradient_descent, from_spurious_minimum, population_loss, random_starts, spurious_minimizer,
    )

    v_star, w_star = np.array(V_STAR), np.array(W_STAR)
    rng = np.random.default_rng(seed)
    v0, w0 = rng.standard_normal(v_star.size), rng.standard_normal(w_star.size)
    inner = {s: coarse_gradient_descent(v0, w0, v_star, w_star, s, lr=lr, steps=steps) for s in STES}
    curves = random_starts(v_star, w_star, STES, num_starts=starts, seed=seed + 1, lr=lr, steps=steps)
    spurious = from_spurious_minimum(v_star, w_star, STES, lr=lr, steps=spurious_steps)
    v_sp, w_sp = spurious_minimizer(v_star, w_star)
    f_sp = population_loss(v_sp, w_sp, v_star, w_star)

    def escape(h: Any) -> dict[str, Any]:
        rise = h.loss - h.loss[0]
        first = np.flatnonzero(rise > 1e-3)
        return {"loss_start": float(h.loss[0]), "loss_max": float(h.loss.max()), "loss_end": float(h.loss[-1]),
                "max_abs_loss_change": float(np.abs(rise).max()),
                "first_step_loss_up_1e-3": int(h.step[first[0]]) if first.size else None,
                "angle_end": float(h.angle[-1]), "w_norm_min": float(h.w_norm.min()),
                "coarse_grad_norm_start": float(h.coarse_norm[0])}

    summary = {
        "teacher": {"v_star": list(V_STAR), "w_star": list(W_STAR)},
        "settings": {"lr": lr, "steps": steps, "starts": starts, "seed": seed, "spurious_steps": spurious_steps,
                     "gradients": "closed forms (infinite data)"},
        "inner_products": {s: inner_product_stats(h) for s, h in inner.items()},
        "loss_curves": {s: {"final_losses": [float(h.loss[-1]) for h in runs],
                            "final_angles": [float(h.angle[-1]) for h in runs],
                            "monotone": [bool(np.all(np.diff(h.loss) <= MONOTONE_TOL)) for h in runs],
                            "largest_increase": [float(np.diff(h.loss).max()) for h in runs],
                            "inner_min": float(min(inner_product_stats(h)["min"] for h in runs))}
                        for s, runs in curves.items()},
        "spurious_minimum": {"loss_at_minimizer": f_sp, **{s: escape(h) for s, h in spurious.items()}},
    }
    return {"inner": inner, "curves": curves, "spurious": spurious, "summary": summary}


def write_figures(result: dict[str, Any], out: str | Path) -> list[Path]:
    """The three PNGs and ``theory.json`` in ``out``; returns their paths."""
    import matplotlib.pyplot as plt  # never switch the backend: a notebook's inline figures must keep working

    from ..theory.plots import plot_inner_products, plot_loss_curves, plot_spurious_escape

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, ax = plt.subplots(figsize=(7, 3.8))
    # steps where df/dw has no defined direction (theta = 0 or pi) are left out of the curve
    masked = {s: replace(h, inner=np.where(_defined(h), h.inner, np.nan)) for s, h in result["inner"].items()}
    plot_inner_products(masked, ax=ax)
    ax.set_yscale("symlog", linthresh=1e-8)
    ax.set_ylim(bottom=0)
    paths.append(out / "inner_products.png")
    save_figure(fig, paths[-1])
    paths.append(out / "loss_curves.png")
    save_figure(plot_loss_curves(result["curves"]), paths[-1])
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    plot_spurious_escape(result["spurious"], axes=axes[:2])
    for name, h in result["spurious"].items():
        axes[2].plot(h.step, h.w_norm, label=name)
    axes[2].set(xlabel="iteration", ylabel="|w|", title="norm of w")
    axes[2].legend()
    fig.tight_layout()
    paths.append(out / "spurious_minimum.png")
    save_figure(fig, paths[-1])
    paths.append(out / "theory.json")
    atomic_write_bytes(paths[-1], json.dumps(result["summary"], indent=2).encode())
    return paths


#: what ``write_figures`` writes
OUTPUT_FILES = ("inner_products.png", "loss_curves.png", "spurious_minimum.png", "theory.json")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tinyqnn theory-figures", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="results/theory", help="output folder (default results/theory)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty --out that is not a theory-figures run (replacing files of the same names)")
    p.add_argument("--steps", type=positive_int, default=1200, help="descent steps for (a) and (b)")
    p.add_argument("--spurious-steps", type=positive_int, default=400, help="descent steps for (c)")
    p.add_argument("--lr", type=positive_float, default=0.05,
                   help="step size (0.1 is already too large for monotone ReLU descent from some starts)")
    p.add_argument("--starts", type=positive_int, default=5, help="random starts per STE for (b)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--quick", action="store_true", help="fewer steps and starts (400 / 3)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    steps, starts = (400, 3) if args.quick else (args.steps, args.starts)
    t0 = time.perf_counter()
    claim_folder(args.out, "theory-figures", args.force, OUTPUT_FILES)  # refused before the work, not after
    result = run_theory(steps=steps, lr=args.lr, starts=starts, seed=args.seed, spurious_steps=args.spurious_steps)
    with output_folder(args.out, "theory-figures", args.force, OUTPUT_FILES):  # never a user's own file
        paths = write_figures(result, args.out)
    s = result["summary"]
    for ste in STES:
        sp, ip = s["spurious_minimum"][ste], s["inner_products"][ste]
        print(f"{ste:>13}: min <E g, df/dw> = {ip['min']:.3g}; from the spurious minimum loss "
              f"{sp['loss_start']:.4f} -> max {sp['loss_max']:.4f}, end {sp['loss_end']:.4f}")
    print(f"{len(paths)} files in {args.out}/ ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
