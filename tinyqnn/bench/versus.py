"""Training-step time of this tree against another checkout, and as a library against the command line.

``python -m tinyqnn benchmark-versus --against /path/to/old/checkout [--torch] [--repeats 15]``

Each contender is one long-lived worker process that builds the benchmark's model on the same
random batch (``tinyqnn_resnet20`` / ``tinyqnn_lenet5`` of ``tinyqnn.bench.throughput``, or of the
older ``tinyqnn.benchmark``) and then, when asked, times ``--steps`` training steps. The workers take
turns, in reversed order every other repeat, so that the load of a shared machine hits all alike;
the report gives each one's median, the ratios of the medians, and how much CPU other processes used
meanwhile. Every worker runs with one tinyqnn thread and one BLAS thread.

Contenders:

- ``this tree, CLI``: this checkout in a process that called ``keep_freed_memory()`` (what
  ``python -m tinyqnn ...`` does);
- ``this tree, library``: this checkout imported as a library (``TINYQNN_KEEP_FREED_MEMORY=0``: malloc
  left alone, as in a notebook);
- with ``--against DIR``: the checkout in DIR the same two ways (its code imported from ``DIR``, ahead
  of any installed copy; the report prints the file each worker imported);
- with ``--torch``: the same network in PyTorch CPU (one thread), when torch is installed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

#: the worker: builds the step, then answers each line "N" on stdin with one JSON line of timings
WORKER = r"""
import json, os, sys, time
kind, model, batch, tree = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
# import tinyqnn from `tree`: first on the path, and no editable-install finder redirecting elsewhere
sys.path.insert(0, tree)
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__name__", type(f).__name__).lower()]
if os.environ.get("TINYQNN_KEEP_FREED_MEMORY") != "0" and kind == "tinyqnn":
    from tinyqnn.engine import keep_freed_memory
    keep_freed_memory()
if kind == "tinyqnn":
    import tinyqnn
    try:
        from tinyqnn.bench import throughput as bench
    except ImportError:  # checkouts before the benchmark moved into tinyqnn/bench
        from tinyqnn import benchmark as bench
    where = tinyqnn.__file__
    train, _ = getattr(bench, "tinyqnn_" + model)(batch, 0)
else:
    import torch
    torch.set_num_threads(1)
    from tinyqnn.bench import throughput as bench
    where = torch.__file__ + " " + torch.__version__
    train, _ = getattr(bench, "torch_" + model)(batch, 0)
train(); train()  # warm-up
print(json.dumps({"ready": where}), flush=True)
for line in sys.stdin:
    steps = int(line)
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range(steps):
        train()
    print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}), flush=True)
"""


@dataclass
class Worker:
    """One contender's process and its samples (seconds per step)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    where: str = ""
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.where = self._answer()["ready"]

    def _answer(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"benchmark worker {self.name!r} ended early (exit status {self.proc.wait()}); "
                               f"run it by hand: {' '.join(self.argv[:2])} ...")
        return json.loads(line)

    def time(self, steps: int) -> None:
        self.proc.stdin.write(f"{steps}\n")
        self.proc.stdin.flush()
        answer = self._answer()
        self.wall.append(answer["wall"] / steps)
        self.cpu.append(answer["cpu"] / steps)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def _busy_seconds() -> float | None:
    from .throughput import _machine_busy_seconds

    return _machine_busy_seconds()


def make_workers(model: str, batch: int, against: str | None, torch: bool) -> list[Worker]:
    """The contenders (see the module docstring), each with its own environment."""
    here = str(Path(__file__).resolve().parents[2])
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TINYQNN_KEEP_FREED_MEMORY")}
    base.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", TINYQNN_THREADS="1")
    trees = [("this tree", here)] + ([(f"{Path(against).name}", str(Path(against).resolve()))] if against else [])
    workers = []
    for label, tree in trees:
        for mode, keep in (("CLI", "1"), ("library", "0")):
            env = {**base, "TINYQNN_KEEP_FREED_MEMORY": keep}
            workers.append(Worker(f"{label}, {mode}", [sys.executable, "-c", WORKER, "tinyqnn", model, str(batch), tree],
                                  env))
    if torch:
        env = {**base, "TINYQNN_KEEP_FREED_MEMORY": "0"}
        workers.append(Worker("PyTorch", [sys.executable, "-c", WORKER, "torch", model, str(batch), here], env))
    return workers


def run(model: str = "resnet20", against: str | None = None, torch: bool = False, repeats: int = 15,
        steps: int = 2, batch: int | None = None) -> dict:
    """Alternate the workers ``repeats`` times; returns every sample and the medians (seconds per step)."""
    batch = batch or (128 if model == "resnet20" else 64)
    workers = make_workers(model, batch, against, torch)
    others: list[float] = []
    try:
        for w in workers:
            w.start()
        for r in range(repeats):
            busy0, t0 = _busy_seconds(), time.perf_counter()
            cpu0 = sum(sum(w.cpu) for w in workers)
            for w in workers if r % 2 == 0 else workers[::-1]:
                w.time(steps)
            wall = time.perf_counter() - t0
            busy1 = _busy_seconds()
            if busy0 is not None and busy1 is not None:
                ours = sum(sum(w.cpu) for w in workers) - cpu0
                others.append(max(0.0, (busy1 - busy0 - ours * steps) / wall))
    finally:
        for w in workers:
            w.stop()
    return {
        "model": model, "batch": batch, "repeats": repeats, "steps": steps,
        "workers": [{"name": w.name, "imported": w.where, "wall_s": w.wall, "cpu_s": w.cpu,
                     "median_wall_s": statistics.median(w.wall), "median_cpu_s": statistics.median(w.cpu)}
                    for w in workers],
        "others_cores": others, "load_average": list(os.getloadavg()),
    }


def report(result: dict) -> str:
    """Medians per worker and the ratios that answer the two questions (speed-up; library vs CLI)."""
    ws = {w["name"]: w for w in result["workers"]}
    lines = [f"{result['model']}, batch {result['batch']}, one thread, {result['repeats']} alternating samples of "
             f"{result['steps']} training steps; medians (seconds per step, wall / CPU of the worker)"]
    for w in result["workers"]:
        lines.append(f"  {w['name']:<24} {w['median_wall_s'] * 1000:8.1f} ms  {w['median_cpu_s'] * 1000:8.1f} ms CPU"
                     f"   ({w['imported']})")
    def ratio(a: str, b: str, what: str) -> None:
        if a in ws and b in ws:
            for key, label in (("median_wall_s", "wall"), ("median_cpu_s", "CPU")):
                lines.append(f"  {what} ({label}): {ws[b][key] / ws[a][key]:.2f}x")
    others = [n for n in ws if not n.startswith("this tree") and n != "PyTorch"]
    old = {n.rsplit(", ", 1)[1]: n for n in others}
    for mode in ("CLI", "library"):
        if mode in old:
            ratio(f"this tree, {mode}", old[mode], f"speed-up over {old[mode]}")
    ratio("this tree, library", "this tree, CLI", "library step / CLI step, this tree")
    if "library" in old:
        ratio(old["library"], old["CLI"], f"library step / CLI step, {old['library'].rsplit(', ', 1)[0]}")
    if "PyTorch" in ws:
        for mode in ("CLI", "library"):
            ratio(f"this tree, {mode}", "PyTorch", f"PyTorch step / this tree's {mode} step (tinyqnn's speed ratio)")
    if result["others_cores"]:
        med = statistics.median(result["others_cores"])
        lines.append(f"  other processes used {med:.2f} cores (median; max {max(result['others_cores']):.2f}) "
                     f"meanwhile; load average {', '.join(f'{v:.1f}' for v in result['load_average'])}"
                     + (": the machine was shared, the medians are noisy" if med > 0.2 else ""))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinyqnn benchmark-versus", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=("resnet20", "lenet5"), default="resnet20", help="network (default resnet20)")
    p.add_argument("--against", default=None, metavar="DIR",
                   help="another checkout of tinyqnn (e.g. `git worktree add ../old d72fd88`) to compare with")
    p.add_argument("--torch", action="store_true", help="also time PyTorch CPU on the same network (torch installed)")
    p.add_argument("--repeats", type=int, default=15, help="alternating samples per worker (default 15)")
    p.add_argument("--steps", type=int, default=2, help="training steps per sample (default 2)")
    p.add_argument("--batch-size", type=int, default=None, help="images per step (default 128 resnet20, 64 lenet5)")
    p.add_argument("--json", default=None, help="also write every sample to this JSON file")
    args = p.parse_args(argv)
    if args.against and not (Path(args.against) / "tinyqnn" / "__init__.py").is_file():
        print(f"error: --against {args.against} is not a tinyqnn checkout (no tinyqnn/__init__.py there)",
              file=sys.stderr)
        return 2
    if args.repeats < 1 or args.steps < 1:
        print(f"error: --repeats and --steps must be >= 1, got {args.repeats}, {args.steps}", file=sys.stderr)
        return 2
    result = run(args.model, args.against, args.torch, args.repeats, args.steps, args.batch_size)
    print(report(result))
    if args.json:
        from ..utils import atomic_write_bytes

        atomic_write_bytes(Path(args.json), json.dumps(result, indent=1).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
