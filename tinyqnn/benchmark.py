"""Throughput of LeNet-5 training and inference, tinyqnn vs PyTorch CPU, measured in the same run.

``python -m tinyqnn benchmark [--threads 2] [--repeats 7] [--steps 30] [--json FILE]``

Both frameworks run the same architecture (LeNet5 without batch norm), the same batch (64 images,
1x28x28), the same loss (cross-entropy) and optimizer (SGD with momentum). Timings alternate
between the frameworks, repeat, and report medians; the ratio is tinyqnn / PyTorch (higher is
better for tinyqnn). PyTorch is optional: without it only tinyqnn's numbers are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _blas_limiter():
    """``threadpoolctl.threadpool_limits`` when installed (to pin NumPy's BLAS threads), else None."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits


def _tinyqnn_steps(batch: int, seed: int):
    from . import manual_seed, no_grad, optim, tensor
    from .models import LeNet5
    from .nn import functional as F

    manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = tensor(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    y = tensor(rng.integers(0, 10, batch))
    model = LeNet5()
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def infer_step() -> None:
        model.eval()
        with no_grad():
            model(x)
        model.train()

    return train_step, infer_step


def _torch_steps(batch: int, seed: int, threads: int):
    import torch
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((batch, 1, 28, 28)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, batch))
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def train_step() -> None:
        loss = loss_fn(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def infer_step() -> None:
        model.eval()
        with torch.no_grad():
            model(x)
        model.train()

    return train_step, infer_step, torch.__version__


def _images_per_s(step: Callable[[], None], steps: int, batch: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def run(threads: int = 2, repeats: int = 7, steps: int = 30, batch: int = 64, seed: int = 0,
        use_torch: bool = True) -> dict:
    """Measure and return medians (images/s) per framework and mode, plus the machine facts.

    With ``threadpoolctl`` installed, tinyqnn is measured with 1 and with ``threads`` BLAS threads (small
    GEMMs often run faster on one thread); the ratio uses its better setting. PyTorch gets ``threads``.
    """
    limiter = _blas_limiter()
    blas_settings = sorted({1, threads}) if limiter is not None else [None]
    result: dict = {
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__,
                    "numpy_threads": "pinned with threadpoolctl" if limiter else
                    f"BLAS default ({os.cpu_count()} cores; pip install threadpoolctl to pin)"},
        "settings": {"threads": threads, "repeats": repeats, "steps": steps, "batch": batch},
        "samples": {},
    }
    # name -> (train step, inference step, BLAS threads or None)
    frameworks: dict[str, tuple[Callable, Callable, int | None]] = {}
    for blas in blas_settings:
        name = "tinyqnn" if blas is None else f"tinyqnn/{blas}t"
        frameworks[name] = (*_tinyqnn_steps(batch, seed), blas)
    if use_torch:
        try:
            p_train, p_infer, version = _torch_steps(batch, seed, threads)
            frameworks["pytorch"] = (p_train, p_infer, None)
            result["machine"]["torch"] = version
        except ImportError:
            result["machine"]["torch"] = "not installed (pip install torch==2.13.0 to compare)"

    def measure(fn: Callable, blas: int | None) -> float:
        if blas is None:
            return _images_per_s(fn, steps, batch)
        with limiter(blas):
            return _images_per_s(fn, steps, batch)

    for name, (train, infer, _) in frameworks.items():
        for _ in range(20):  # warm-up: allocations, BLAS thread start, PyTorch's lazy kernel choice
            train()
            infer()
        result["samples"][name] = {"train": [], "inference": []}
    for _ in range(repeats):  # alternate frameworks so that machine noise hits both alike
        for name, (train, infer, blas) in frameworks.items():
            result["samples"][name]["train"].append(measure(train, blas))
            result["samples"][name]["inference"].append(measure(infer, blas))
    result["median"] = {name: {mode: statistics.median(v) for mode, v in modes.items()}
                        for name, modes in result["samples"].items()}
    if "pytorch" in result["median"]:
        ours = [m for n, m in result["median"].items() if n.startswith("tinyqnn")]
        result["ratio"] = {mode: max(m[mode] for m in ours) / result["median"]["pytorch"][mode]
                           for mode in ("train", "inference")}
    return result


def report(result: dict) -> str:
    m, s = result["machine"], result["settings"]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, NumPy {m['numpy']} "
        f"(BLAS threads: {m['numpy_threads']}), PyTorch {m.get('torch', '-')}",
        f"LeNet-5, batch {s['batch']}, {s['threads']} threads; median of {s['repeats']} runs of {s['steps']} steps",
        f"{'':12s}{'train img/s':>14s}{'infer img/s':>14s}",
    ]
    for name, med in result["median"].items():
        lines.append(f"{name:12s}{med['train']:14.0f}{med['inference']:14.0f}")
    if "ratio" in result:
        r = result["ratio"]
        lines.append(f"{'ratio':12s}{r['train']:14.2f}{r['inference']:14.2f}   (best tinyqnn / PyTorch; target >= 0.75)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinyqnn benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    p.add_argument("--json", default=None, help="also write all samples to this JSON file")
    args = p.parse_args(argv)
    result = run(args.threads, args.repeats, args.steps, args.batch_size, use_torch=not args.no_torch)
    print(report(result))
    if args.json:
        from .utils import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(result, indent=2).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
