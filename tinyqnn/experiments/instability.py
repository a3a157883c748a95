"""The instability test of Yin et al. (2019, Section 4.2), on LeNet-5 or on the deep sweep's ResNets.

    python -m tinyqnn.experiments.instability --from results/table1/4bit_clipped_relu --out results/instability
    python -m tinyqnn.experiments.instability --quick          # builds a quick clipped-ReLU cell if needed
    python -m tinyqnn instability --from results/deep_fashion_small/resnet14/4bit_clipped_relu \
        --switch-to identity relu --epochs 8 --out results/instability_deep    # a ResNet cell of `deep`

Start from a finished clipped-ReLU cell of the Table 1 grid or of the deep sweep (``tinyqnn deep``: the
cell records its ResNet, data set and subset), a good minimum for that STE, keep its
weights and BN statistics, switch every activation's STE to the identity (or to each ``--switch-to``
STE, one run each), and train ``--epochs``
epochs (paper: 20) with SGD at lr 1e-5, momentum 0.9. The paper (ResNet-20, 4-bit, CIFAR-10) saw
the training loss and validation error rise sharply within those epochs, because the identity
coarse gradient does not vanish at the clipped-ReLU minimum. A control run continues with the
source's own STE at the same lr, so a drift that any low-lr continuation shows is not counted
(training also refreshes the BN running statistics, which alone moves the eval-mode loss a bit;
the control shows that part too).

Per epoch (epoch 0 = the start) both runs log the training loss measured in eval mode over the
whole training set (comparable across epochs, and defined at epoch 0), the running training loss
of the epoch (what training logs usually show) and the validation loss / error. Outputs in
``--out``: ``instability.csv``, ``instability.json``, ``instability.png`` and ``verdict.md`` (a
paragraph computed from the numbers). Each run keeps a checkpoint after every epoch and resumes.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..train.checkpoint import read_checkpoint_meta
from ..utils import atomic_write_bytes, output_folder, save_figure
from .table1 import EpochLoader, GridConfig, build_model, cell_name, load_data

QUICK_GRID_OUT = Path("results/table1-quick")
#: a rise counts when the loss grows by more than this fraction of its start value ...
LOSS_TOL = 0.05
#: ... and the validation error by more than max(ERROR_TOL_PP, 3 test images) percentage points
ERROR_TOL_PP = 0.1


def _source_checkpoint(source: Path) -> Path:
    path = source / "checkpoint.npz" if source.is_dir() else source
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; run the Table 1 grid first (python -m tinyqnn "
                                f"grid / python -m tinyqnn.experiments.table1) or pass --from <cell folder>")
    return path


def _run_one(
    name: str, ste: str, src: Path, conf: dict[str, Any], data: tuple[Any, Any], out: Path, epochs: int,
    lr: float, momentum: float, seed: int, progress: bool, build: Callable[[], Any] | None = None,
) -> list[dict[str, Any]]:
    """Continue the source model with ``ste`` for ``epochs`` epochs; per-epoch rows (epoch 0 = start).

    ``build()`` makes the source's (quantized) architecture, LeNet-5 from ``conf`` unless given (the deep
    experiment passes its ResNets)."""
    from .. import manual_seed, optim
    from ..data import DataLoader
    from ..quant import QuantAct, quantize_activations
    from ..train import evaluate, load_checkpoint, save_checkpoint, train_one_epoch
    from tqdm.auto import tqdm

    train, test = data
    run_dir = out / name
    checkpoint = run_dir / "checkpoint.npz"
    run_conf = {"source": str(src.resolve()), "ste": ste, "lr": lr, "momentum": momentum, "seed": seed,
                "weight_decay": conf.get("weight_decay", 0.0), "bits": conf["bits"], "alpha": conf["alpha"]}
    manual_seed(seed)
    source_model = build() if build is not None else build_model(conf["bits"], conf["ste"], conf["alpha"])
    load_checkpoint(src, source_model)
    expected = sum(isinstance(m, QuantAct) for m in source_model.modules())
    # same weights and BN statistics, every QuantAct re-made with the new STE (same bits and alpha)
    model = quantize_activations(source_model, conf["bits"], ste=ste, alpha=conf["alpha"])
    acts = [m for m in model.modules() if isinstance(m, QuantAct)]
    if not acts or len(acts) != expected or any(a.ste.name != ste for a in acts):
        raise RuntimeError(f"expected {expected} QuantAct modules with STE {ste!r}, got {[a.ste.name for a in acts]}")
    optimizer = optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=run_conf["weight_decay"])
    rows: list[dict[str, Any]] = []
    if checkpoint.is_file():
        meta = read_checkpoint_meta(checkpoint)
        if meta.get("config") != json.loads(json.dumps(run_conf)):
            raise ValueError(f"{checkpoint} was made with another configuration ({meta.get('config')}); "
                             f"use another --out or delete {run_dir}")
        load_checkpoint(checkpoint, model, optimizer=optimizer)
        rows = list(meta["history"])
    train_eval = DataLoader(train, batch_size=1000)
    test_eval = DataLoader(test, batch_size=1000)
    loader = EpochLoader(train, conf["batch_size"], seed, epoch=max(0, len(rows) - 1))

    def measure(epoch: int, running: dict[str, float] | None) -> dict[str, Any]:
        tr, te = evaluate(model, train_eval), evaluate(model, test_eval)
        return {"run": name, "ste": ste, "epoch": epoch, "lr": lr,
                "train_loss": tr["loss"], "train_error": 100 * (1 - tr["accuracy"]),
                "running_train_loss": None if running is None else running["loss"],
                "val_loss": te["loss"], "val_error": 100 * (1 - te["accuracy"]),
                "epoch_seconds": None if running is None else running["seconds"]}

    if not rows:
        rows.append(measure(0, None))

    for epoch in tqdm(range(len(rows), epochs + 1), desc=name, disable=not progress, dynamic_ncols=True):
        running = train_one_epoch(model, loader, optimizer, progress=progress, desc=f"{name} epoch {epoch}")
        rows.append(measure(epoch, running))
        save_checkpoint(checkpoint, model, optimizer=optimizer, meta={"config": run_conf, "history": rows})
    return rows[: epochs + 1]


def summarize(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Start / final / peak of the (eval-mode) training loss and of the validation error of one run."""
    loss = np.array([r["train_loss"] for r in rows])
    err = np.array([r["val_error"] for r in rows])
    return {
        "loss_start": float(loss[0]), "loss_final": float(loss[-1]), "loss_peak": float(loss.max()),
        "loss_peak_epoch": int(rows[int(loss.argmax())]["epoch"]),
        "loss_change": float(loss[-1] / loss[0] - 1),
        "error_start": float(err[0]), "error_final": float(err[-1]), "error_peak": float(err.max()),
        "error_change_pp": float(err[-1] - err[0]), "epochs": int(rows[-1]["epoch"]),
    }


def verdict(switched: dict[str, float], control: dict[str, float], info: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A paragraph (and its booleans) from the two runs' summaries; ``info``: bits, source, lr, stes, n_test."""
    err_tol = max(ERROR_TOL_PP, 100 * 3 / info["n_test"])
    loss_rose = switched["loss_change"] > LOSS_TOL
    error_rose = switched["error_change_pp"] > err_tol
    # a rise is the switched STE's doing only if it exceeds what the control run did by the same margin
    loss_beyond = loss_rose and switched["loss_change"] - control["loss_change"] > LOSS_TOL
    error_beyond = error_rose and switched["error_change_pp"] - control["error_change_pp"] > err_tol
    reproduced = loss_beyond and error_beyond
    names = {"loss": "the training loss", "error": "the validation error"}
    if reproduced:
        conclusion = (f"the instability is reproduced at {info.get('net', 'LeNet-5')} scale: training loss and validation error rose, "
                      "beyond the control's drift.")
    elif loss_beyond or error_beyond:
        yes, no = ("loss", "error") if loss_beyond else ("error", "loss")
        conclusion = (f"the instability is only partly reproduced: {names[yes]} rose beyond the control's drift, "
                      f"{names[no]} did not.")
    elif loss_rose or error_rose:
        what = " and ".join(names[k] for k, ok in (("loss", loss_rose), ("error", error_rose)) if ok)
        conclusion = (f"the instability is NOT reproduced: {what} of the {info['switch_ste']} run rose, but the "
                      f"control run's rose about as much, so the rise is not the {info['switch_ste']} STE's doing.")
    else:
        conclusion = ("the instability is NOT reproduced at this scale and length: neither the training loss nor the "
                      "validation error rose beyond the thresholds.")

    def moved(s: dict[str, float]) -> str:
        return (f"training loss {s['loss_start']:.3g} -> {s['loss_final']:.3g} ({100 * s['loss_change']:+.1f} %, "
                f"peak {s['loss_peak']:.3g} at epoch {s['loss_peak_epoch']}), validation error "
                f"{s['error_start']:.2f} % -> {s['error_final']:.2f} % ({s['error_change_pp']:+.2f} pp)")

    text = (
        f"Starting from the {info['bits']}-bit {info['source_ste']} cell ({info['source']}), "
        f"{switched['epochs']} epochs with the {info['switch_ste']} STE at lr {info['lr']:g} (momentum "
        f"{info['momentum']:g}, weights and BN statistics kept) {'raised' if loss_rose else 'did not raise'} the "
        f"training loss and {'raised' if error_rose else 'did not raise'} the validation error: {moved(switched)}. "
        f"The control run, continuing with the {info['source_ste']} STE at the same lr, went {moved(control)}. "
        f"A rise counts when the loss grows by more than {100 * LOSS_TOL:.0f} % and the error by more than "
        f"{err_tol:.2f} pp (the larger of {ERROR_TOL_PP} pp and 3 of the {info['n_test']} validation images), and "
        f"is blamed on the {info['switch_ste']} STE only if it also exceeds the control's change by that margin; "
        f"training losses are measured in eval mode over all {info['n_train']} training images. "
        f"Verdict: {conclusion} (For scale: the paper's ResNet-20 on CIFAR-10 with 4-bit activations saw the "
        f"loss of its clipped-ReLU start spike to about 5 and its accuracy fall to about 17 % within 20 epochs.)"
    )
    flags = {"loss_rose": loss_rose, "error_rose": error_rose, "loss_beyond_control": loss_beyond,
             "error_beyond_control": error_beyond,
             "reproduced": reproduced, "error_tolerance_pp": err_tol, "loss_tolerance": LOSS_TOL}
    return text, flags


def plot_runs(runs: dict[str, list[dict[str, Any]]], path: Path, title: str) -> None:
    """Training loss (eval mode, log scale) and validation error per epoch, one line per run."""
    import matplotlib.pyplot as plt  # never switch the backend: a notebook's inline figures must keep working
    from matplotlib.ticker import MaxNLocator

    fig, (ax_loss, ax_err) = plt.subplots(1, 2, figsize=(10, 3.6))
    for i, (name, rows) in enumerate(runs.items()):
        epochs = [r["epoch"] for r in rows]
        ax_loss.plot(epochs, [r["train_loss"] for r in rows], "o-", color=f"C{i}", label=name)
        ax_err.plot(epochs, [r["val_error"] for r in rows], "o-", color=f"C{i}", label=name)
    ax_loss.set(xlabel="epoch", ylabel="training loss (eval mode)", yscale="log", title="training loss")
    ax_err.set(xlabel="epoch", ylabel="validation error (%)", title="validation error")
    for ax in (ax_loss, ax_err):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def _source_model_and_data(src: Path, conf: dict[str, Any], data_dir: str | None
                           ) -> tuple[Callable[[], Any] | None, tuple[Any, Any], str]:
    """(builder of the source's architecture, None for LeNet-5; (train, test); the net's name) for a Table 1
    cell or a deep-sweep cell (whose config names its ``net``)."""
    if conf.get("net"):
        from . import deep

        sweep_file = src.parent.parent.parent / "deep.json"  # <out>/<net>/<cell>/checkpoint.npz
        if data_dir is None and sweep_file.is_file():
            data_dir = json.loads(sweep_file.read_text()).get("data_dir")
        cfg = deep.DeepConfig(dataset=conf["dataset"], subset=conf["subset"], train_limit=conf["train_limit"],
                              test_limit=conf["test_limit"], augment=conf["augment"], seed=conf["seed"],
                              data_dir=data_dir)
        return (lambda: deep.build_net(conf["net"], conf["dataset"], conf["bits"], conf["ste"], conf["width"]),
                deep.load_data(cfg), conf["net"])
    grid_file = src.parent.parent / "grid.json"
    if data_dir is None and grid_file.is_file():  # where the grid found its data
        data_dir = json.loads(grid_file.read_text()).get("data_dir")
    data_cfg = GridConfig(dataset=conf["dataset"], subset=conf["subset"], train_limit=conf["train_limit"],
                          test_limit=conf["test_limit"], data_dir=data_dir)
    return None, load_data(data_cfg), "LeNet-5"


def run_instability(
    source: str | Path, out: str | Path, epochs: int = 20, lr: float = 1e-5, momentum: float = 0.9,
    switch_to: str | Sequence[str] = "identity", seed: int = 0, data_dir: str | None = None, progress: bool = True,
    plots: bool = True, log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the switched and the control continuation from ``source`` (a cell folder or checkpoint of the
    Table 1 grid or of the deep sweep).

    ``switch_to``: one STE (run ``"switched"``) or several (the first is ``"switched"``, the others
    ``"switched_<ste>"``), each compared with the one control run.
    Returns ``{"runs": {name: rows}, "summary": {name: summary}, "verdict": text, "flags": {...},
    "verdicts": {ste: {"text", "flags"}}}`` (``flags``: the first STE's); the same goes to ``out`` as
    CSV / JSON / PNG / Markdown.
    """
    switches = (switch_to,) if isinstance(switch_to, str) else tuple(switch_to)
    if not switches or len(set(switches)) != len(switches):
        raise ValueError(f"switch_to needs one or more distinct STEs, got {list(switches)}")
    src = _source_checkpoint(Path(source))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    conf = read_checkpoint_meta(src).get("config", {})
    if conf.get("bits") is None or conf.get("ste") is None:
        raise ValueError(f"{src} is not a quantized Table 1 or deep-sweep cell (its config has no bits/ste: {conf})")
    if not (src.parent / "final.json").is_file():
        log(f"warning: {src.parent} is not finished; its checkpoint may not be a minimum")
    build, data, net = _source_model_and_data(src, conf, data_dir)
    names = {ste: "switched" if i == 0 else f"switched_{ste}" for i, ste in enumerate(switches)}
    stes = {**{name: ste for ste, name in names.items()}, "control": conf["ste"]}
    runs = {}
    for name, ste in stes.items():
        t0 = time.perf_counter()
        runs[name] = _run_one(name, ste, src, conf, data, out, epochs, lr, momentum, seed, progress, build=build)
        s = summarize(runs[name])
        log(f"{name} ({ste} STE): loss {s['loss_start']:.4g} -> {s['loss_final']:.4g}, val error "
            f"{s['error_start']:.2f}% -> {s['error_final']:.2f}% ({time.perf_counter() - t0:.0f} s)")
    summary = {name: summarize(rows) for name, rows in runs.items()}
    info = {"bits": conf["bits"], "source_ste": conf["ste"], "switch_ste": switches[0], "source": str(src.parent),
            "lr": lr, "momentum": momentum, "n_test": len(data[1]), "n_train": len(data[0]), "net": net}
    verdicts = {}
    for ste, name in names.items():
        ste_text, ste_flags = verdict(summary[name], summary["control"], {**info, "switch_ste": ste})
        verdicts[ste] = {"text": ste_text, "flags": ste_flags}
    text, flags = verdicts[switches[0]]["text"], verdicts[switches[0]]["flags"]
    if len(switches) > 1:
        text = "\n\n".join(f"**{ste} STE.** {v['text']}" for ste, v in verdicts.items())

    columns = ["run", "ste", "epoch", "lr", "train_loss", "train_error", "running_train_loss", "val_loss",
               "val_error", "epoch_seconds"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for rows in runs.values():
        writer.writerows({k: r[k] for k in columns} for r in rows)
    atomic_write_bytes(out / "instability.csv", buffer.getvalue().encode())
    result = {"info": info, "summary": summary, "flags": flags, "verdict": text, "verdicts": verdicts, "runs": runs}
    atomic_write_bytes(out / "instability.json", json.dumps(result, indent=2).encode())
    heading = f"# Instability test (Yin et al. 2019, Section 4.2) at {net} scale"
    atomic_write_bytes(out / "verdict.md", f"{heading}\n\n{text}\n".encode())
    if plots:
        labels = {**{name: f"switched to {ste}" for ste, name in names.items()}, "control": f"control ({conf['ste']})"}
        plot_runs({labels[k]: v for k, v in runs.items()}, out / "instability.png",
                  f"{conf['bits']}-bit {net} from a {conf['ste']} minimum, lr {lr:g}")
    return result


def build_parser() -> argparse.ArgumentParser:
    from ..args import add_data_dir_arg, non_negative_float, non_negative_int, positive_float, positive_int
    from ..quant import available_stes

    p = argparse.ArgumentParser(prog="python -m tinyqnn instability", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="source", default=None,
                   help="a finished Table 1 cell folder (or its checkpoint.npz), or a deep-sweep cell "
                        "(<deep out>/resnetD/<b>bit_clipped_relu); default <grid-out>/<bits>bit_clipped_relu")
    p.add_argument("--grid-out", default=None,
                   help="the Table 1 grid folder (default results/table1, quick: results/table1-quick)")
    p.add_argument("--bits", type=int, choices=range(1, 9), metavar="{1,...,8}", default=4,
                   help="picks the default source cell, 1 to 8 (default 4, as in the paper)")
    p.add_argument("--switch-to", nargs="+", choices=available_stes(), default=["identity"], metavar="STE",
                   help="STE(s) to continue with, one run each, from %(choices)s (default identity)")
    p.add_argument("--epochs", type=positive_int, default=None, help="default 20 (paper); quick 2")
    p.add_argument("--lr", type=positive_float, default=1e-5, help="learning rate (default 1e-5, as in the paper)")
    p.add_argument("--momentum", type=non_negative_float, default=0.9, help="SGD momentum (default 0.9)")
    p.add_argument("--out", default=None, help="default results/instability (quick: results/instability-quick)")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty --out that is not an instability run (replacing files of the same names)")
    add_data_dir_arg(p, "the --data-dir the grid was run with (its grid.json)")
    p.add_argument("--seed", type=non_negative_int, default=0, help="random seed (default 0)")
    p.add_argument("--quick", action="store_true", help="2 epochs from a quick-grid cell (trained first if missing)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG figures")
    return p


#: the files of ``run_instability`` besides each run's own folder
OUTPUT_FILES = ("instability.csv", "instability.json", "verdict.md", "instability.png")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    grid_out = Path(args.grid_out or (QUICK_GRID_OUT if args.quick else "results/table1"))
    source = Path(args.source) if args.source else grid_out / cell_name(args.bits, "clipped_relu")
    out = Path(args.out or ("results/instability-quick" if args.quick else "results/instability"))
    epochs = args.epochs if args.epochs is not None else (2 if args.quick else 20)
    if args.quick and args.source is None and not (source / "final.json").is_file():
        from . import table1

        print(f"no quick clipped-ReLU cell at {source}: training one (quick Table 1 grid, {args.bits} bits)",
              flush=True)
        table1.main(["--quick", "--bits", str(args.bits), "--stes", "clipped_relu", "--out", str(grid_out),
                     "--no-plots", "--seed", str(args.seed)] + (["--no-progress"] if args.no_progress else []))
    try:
        with output_folder(out, "instability", args.force, OUTPUT_FILES):  # never a user's own file
            result = run_instability(source, out, epochs=epochs, lr=args.lr, momentum=args.momentum,
                                     switch_to=args.switch_to, seed=args.seed, data_dir=args.data_dir,
                                     progress=not args.no_progress, plots=not args.no_plots,
                                     log=lambda s: print(s, flush=True))
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"\n{result['verdict']}\n\nCSV, JSON, plot and verdict in {out}/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
