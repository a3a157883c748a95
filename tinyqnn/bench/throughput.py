"""Throughput of training and inference, tinyqnn vs PyTorch CPU, measured in the same run.

``python -m tinyqnn benchmark [--model lenet5|resnet20] [--threads 2] [--repeats 7] [--steps N] [--bounds] [--json FILE]``

Both frameworks run the same architecture on the same random batch with the same loss (cross-entropy)
and optimizer (SGD with momentum):

- ``lenet5``: LeNet-5 without batch norm, batch 64 of 1x28x28;
- ``resnet20``: ResNet-20 for CIFAR (16/32/64 channels, batch norm, option-A shortcuts), batch 128
  of 3x32x32.

A training step is forward, loss, backward and the optimizer step; an inference step is a forward
pass in eval mode without graph recording. Both frameworks get the same number of threads T:
``torch.set_num_threads(T)``; tinyqnn's large operations (convolutions, pooling, ReLU, batch norm)
are shared among T threads (``tinyqnn.engine.parallel.THREADS``) with NumPy's BLAS pinned to one
thread by ``threadpoolctl``. Both warm up, and then
alternate (in reversed order every other repeat) so that machine noise hits both alike. Reported:
the median images/s over the repeats, and the ratio tinyqnn / PyTorch (higher is better for
tinyqnn). Each sample also records how much CPU *other* processes used meanwhile (from
/proc/stat): when that is more than a fifth of a core, the report warns that the machine was busy.
PyTorch is optional: without it only tinyqnn's numbers are printed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass

import numpy as np

Step = Callable[[], None]

#: other processes' CPU use (in cores, median over the samples) above which the report warns
BUSY_CORES = 0.2


# ---------------------------------------------------------------------- the measured models
LENET5_IMAGE = (1, 28, 28)
RESNET20_IMAGE = (3, 32, 32)


def _lenet5():
    from ..models import LeNet5

    return LeNet5()


def _resnet20():
    from ..models import resnet20

    return resnet20()


def tinyqnn_lenet5(batch: int, seed: int) -> tuple[Step, Step]:
    """tinyqnn's LeNet-5 (no batch norm): (train step, inference step) on one random batch (N, 1, 28, 28)."""
    return _tinyqnn_steps(_lenet5, (batch, *LENET5_IMAGE), seed)


def tinyqnn_resnet20(batch: int, seed: int) -> tuple[Step, Step]:
    """tinyqnn's ResNet-20: (train step, inference step) on one random batch (N, 3, 32, 32)."""
    return _tinyqnn_steps(_resnet20, (batch, *RESNET20_IMAGE), seed)


def _tinyqnn_steps(build: Callable, shape: tuple[int, ...], seed: int) -> tuple[Step, Step]:
    from .. import manual_seed, no_grad, optim, tensor
    from ..nn import functional as F

    manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = tensor(rng.standard_normal(shape).astype(np.float32))
    y = tensor(rng.integers(0, 10, shape[0]))
    model = build()
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


def torch_lenet5(batch: int, seed: int) -> tuple[Step, Step]:
    """The same LeNet-5 in PyTorch: (train step, inference step)."""
    return _torch_steps(torch_lenet5_model, (batch, *LENET5_IMAGE), seed)


def torch_resnet20(batch: int, seed: int) -> tuple[Step, Step]:
    """The same ResNet-20 in PyTorch: (train step, inference step)."""
    return _torch_steps(torch_resnet20_model, (batch, *RESNET20_IMAGE), seed)


def torch_lenet5_model():
    """LeNet-5 as ``tinyqnn.models.LeNet5()`` builds it (no batch norm), in PyTorch."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10),
    )


def torch_resnet20_model():
    """ResNet-20 as ``tinyqnn.models.resnet20()`` builds it (option-A shortcuts), in PyTorch."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class ShortcutA(nn.Module):
        def __init__(self, extra: int, stride: int):
            super().__init__()
            self.extra, self.stride = extra, stride

        def forward(self, x):
            return F.pad(x[:, :, :: self.stride, :: self.stride],
                         (0, 0, 0, 0, self.extra // 2, self.extra - self.extra // 2))

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            same = stride == 1 and cin == cout
            self.shortcut = nn.Identity() if same else ShortcutA(cout - cin, stride)

        def forward(self, x):
            out = F.relu(self.bn1(self.conv1(x)))
            return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    class ResNet20(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            blocks, cin = [], 16
            for stage, width in enumerate((16, 32, 64)):
                for i in range(3):
                    blocks.append(Block(cin, width, 2 if stage > 0 and i == 0 else 1))
                    cin = width
            self.layers = nn.Sequential(*blocks)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            out = self.layers(F.relu(self.bn1(self.conv1(x))))
            return self.fc(torch.mean(out, dim=(2, 3)))

    return ResNet20()


def _torch_steps(build: Callable, shape: tuple[int, ...], seed: int) -> tuple[Step, Step]:
    import torch

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal(shape).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, shape[0]))
    model = build()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

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

    return train_step, infer_step


@dataclass(frozen=True)
class Workload:
    """One benchmarked model: its batch, default steps per sample and warm-up, the step builders
    ``(batch, seed) -> (train step, inference step)``, and (for ``--bounds``) tinyqnn's model and one
    input's shape (C, H, W)."""

    title: str
    batch: int
    steps: int
    warmup: int
    tinyqnn: Callable[[int, int], tuple[Step, Step]]
    torch: Callable[[int, int], tuple[Step, Step]]
    model: Callable[[], object]
    image: tuple[int, int, int]


WORKLOADS: dict[str, Workload] = {
    "lenet5": Workload("LeNet-5", 64, 30, 20, tinyqnn_lenet5, torch_lenet5, _lenet5, LENET5_IMAGE),
    "resnet20": Workload("ResNet-20 (CIFAR shapes)", 128, 3, 2, tinyqnn_resnet20, torch_resnet20, _resnet20,
                         RESNET20_IMAGE),
}


# ---------------------------------------------------------------------- measuring
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


#: OpenBLAS kernel families (threadpoolctl's "architecture") that use AVX-512
AVX512_KERNELS = {"skylakex", "cooperlake", "sapphirerapids"}


def _blas_facts() -> dict:
    """NumPy's BLAS (name, version, kernel family), OPENBLAS_CORETYPE, and whether the CPU has AVX-512."""
    facts: dict = {"openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"), "cpu_avx512": None}
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), None)
        facts["cpu_avx512"] = None if flags is None else "avx512f" in flags
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return facts
    blas = next((lib for lib in threadpool_info() if lib.get("user_api") == "blas"), None)
    if blas:
        facts.update(library=blas.get("internal_api"), version=blas.get("version"),
                     kernels=blas.get("architecture"))
    return facts


def blas_note(result: dict) -> str | None:
    """A note when NumPy's OpenBLAS runs AVX2 kernels on a CPU with AVX-512 (which PyTorch uses), else None."""
    blas = result["machine"].get("blas", {})
    kernels = blas.get("kernels")
    if not (blas.get("cpu_avx512") and blas.get("library") == "openblas" and kernels
            and kernels.lower() not in AVX512_KERNELS):
        return None
    why = f" (OPENBLAS_CORETYPE={blas['openblas_coretype']} is set)" if blas.get("openblas_coretype") else ""
    return (f"NOTE: NumPy's OpenBLAS runs its {kernels} kernels{why} on a CPU with AVX-512, which PyTorch "
            "uses: tinyqnn's matrix products may run at up to half PyTorch's speed. To compare "
            "like with like, run with OpenBLAS's own choice: env -u OPENBLAS_CORETYPE python -m tinyqnn benchmark")


def _machine_busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot (every core; Linux /proc/stat), else None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")  # user..steal; guest is inside user


def _process_seconds() -> float:
    return time.process_time()  # every thread of this process; finer than os.times()' clock ticks


@dataclass
class Sample:
    """One timed run of ``steps`` steps."""

    images_per_s: float
    wall_s: float
    cpu_s: float  # this process, every thread
    others_cores: float | None  # CPU used meanwhile by every other process, in cores


def measure(step: Step, steps: int, batch: int) -> Sample:
    """Time ``steps`` calls of ``step``; also what this process and the rest of the machine used meanwhile."""
    busy0, cpu0, t0 = _machine_busy_seconds(), _process_seconds(), time.perf_counter()
    for _ in range(steps):
        step()
    wall = time.perf_counter() - t0
    cpu, busy1 = _process_seconds() - cpu0, _machine_busy_seconds()
    others = None
    if busy0 is not None and busy1 is not None:  # /proc/stat counts in clock ticks: clamp short samples' rounding
        others = min(max(0.0, (busy1 - busy0 - cpu) / wall), float(os.cpu_count() or 1))
    return Sample(steps * batch / wall, wall, cpu, others)


def _blas_limits() -> Callable[[int], AbstractContextManager] | None:
    """``threads -> context`` pinning NumPy's BLAS threads (threadpoolctl), or None when it is missing."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return lambda threads: threadpool_limits(limits=threads, user_api="blas")


@contextmanager
def _tinyqnn_threads(threads: int, blas: Callable[[int], AbstractContextManager] | None) -> Iterator[None]:
    """tinyqnn with ``threads`` threads: its large operations are shared among that many threads, and
    BLAS gets one thread (its GEMMs are per sample, too small to split again; OpenBLAS's idle
    threads spin and, on a busy machine, slowed the whole step down several-fold)."""
    from ..engine import parallel

    saved, parallel.THREADS = parallel.THREADS, threads
    try:
        with blas(1) if blas else nullcontext():
            yield
    finally:
        parallel.THREADS = saved


def _torch_threads(threads: int) -> Callable[[], AbstractContextManager]:
    import torch

    class Pinned(AbstractContextManager):
        def __enter__(self):
            self.saved = torch.get_num_threads()
            torch.set_num_threads(threads)

        def __exit__(self, *exc):
            torch.set_num_threads(self.saved)

    return Pinned


def run(model: str = "lenet5", threads: tuple[int, ...] = (2,), repeats: int = 7, steps: int | None = None,
        warmup: int | None = None, batch: int | None = None, seed: int = 0, use_torch: bool = True,
        bounds: bool = False) -> dict:
    """Measure ``model`` in both frameworks at each thread count; returns samples, medians, ratios, machine facts.

    Args:
        model: a key of ``WORKLOADS``.
        threads: thread counts to compare at (each framework gets the same count).
        repeats: timed samples per framework, mode and thread count (medians are reported).
        steps, warmup, batch: per sample / before measuring / images per step (None: the model's default).
        bounds: also measure how fast tinyqnn could at most be here (``tinyqnn.bench.bounds``).
    """
    work = WORKLOADS[model]
    steps, warmup, batch = steps or work.steps, work.warmup if warmup is None else warmup, batch or work.batch
    blas = _blas_limits()
    result: dict = {
        "model": model,
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__,
                    "numpy_threads": "pinned with threadpoolctl" if blas else
                    "NOT pinned (BLAS default; pip install threadpoolctl)",
                    "blas": _blas_facts(),
                    "load_before": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "settings": {"threads": list(threads), "repeats": repeats, "steps": steps, "warmup": warmup, "batch": batch},
        "samples": {},
    }
    # row name -> (train step, inference step, context that pins the threads)
    rows: dict[str, tuple[Step, Step, Callable[[], AbstractContextManager]]] = {}
    for t in threads:
        rows[f"tinyqnn/{t}t"] = (*work.tinyqnn(batch, seed), lambda t=t: _tinyqnn_threads(t, blas))
    if use_torch:
        try:
            import torch

            for t in threads:
                rows[f"pytorch/{t}t"] = (*work.torch(batch, seed), _torch_threads(t))
            result["machine"]["torch"] = torch.__version__
        except ImportError:
            result["machine"]["torch"] = "not installed (pip install torch==2.13.0 to compare)"

    for name, (train, infer, pin) in rows.items():
        with pin():
            for _ in range(warmup):  # allocations, BLAS/OpenMP thread start-up, PyTorch's kernel choice
                train()
                infer()
        result["samples"][name] = {"train": [], "inference": []}
    names = list(rows)
    for r in range(repeats):  # alternate, reversing the order every other repeat, so noise hits all rows alike
        for name in names if r % 2 == 0 else names[::-1]:
            train, infer, pin = rows[name]
            with pin():
                result["samples"][name]["train"].append(measure(train, steps, batch).__dict__)
                result["samples"][name]["inference"].append(measure(infer, steps, batch).__dict__)
    result["machine"]["load_after"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    result["median"] = {name: {mode: statistics.median(s["images_per_s"] for s in samples)
                               for mode, samples in modes.items()}
                        for name, modes in result["samples"].items()}
    # images per second of this process's CPU time: with one thread, a steadier measure on a shared
    # machine (time spent waiting for a core is not counted, though cache contention still is)
    result["median_per_cpu_s"] = {
        name: {mode: statistics.median(s["images_per_s"] * s["wall_s"] / max(s["cpu_s"], 1e-9) for s in samples)
               for mode, samples in modes.items()}
        for name, modes in result["samples"].items() if name.endswith("/1t")}
    result["ratio"] = {f"{t}t": {mode: result["median"][f"tinyqnn/{t}t"][mode] / result["median"][f"pytorch/{t}t"][mode]
                                 for mode in ("train", "inference")}
                       for t in threads if f"pytorch/{t}t" in result["median"]}
    cpu = result["median_per_cpu_s"]
    if "pytorch/1t" in cpu:
        result["ratio_per_cpu_s"] = {mode: cpu["tinyqnn/1t"][mode] / cpu["pytorch/1t"][mode]
                                     for mode in ("train", "inference")}
    others = [s["others_cores"] for modes in result["samples"].values() for samples in modes.values()
              for s in samples if s["others_cores"] is not None]
    result["others_cores"] = {"median": statistics.median(others), "max": max(others)} if others else None
    if bounds:
        from . import bounds as benchmark_bounds

        result["bounds"] = benchmark_bounds.measure_bounds(
            work.model, work.image, batch, lambda n: work.tinyqnn(n, seed), lambda: _tinyqnn_threads(1, blas), seed)
        torch_medians = {t: result["median"][f"pytorch/{t}t"] for t in threads if f"pytorch/{t}t" in result["median"]}
        result["bounds"]["ratios"] = benchmark_bounds.ceiling_ratios(result["bounds"], torch_medians)
    return result


def busy_warning(result: dict) -> str | None:
    """A warning with the figures when other processes used the CPU during the measurement, else None."""
    others, m = result.get("others_cores"), result["machine"]
    load = m.get("load_before"), m.get("load_after")
    if others is not None:
        if others["median"] <= BUSY_CORES:
            return None
        text = (f"other processes used {others['median']:.2f} cores (median; max {others['max']:.2f}) of "
                f"{m['cores']} while this ran")
    elif load[0] is not None and load[0][0] > BUSY_CORES:  # no /proc/stat: the load before we started
        text = f"the load average was {load[0][0]:.2f} before this started"
    else:
        return None
    if load[0] is not None:
        text += f"; load average {load[0][0]:.2f} before, {load[1][0]:.2f} after"
    text = f"WARNING: the machine was busy: {text}. Timings are noisy; compare ratios, rerun on an idle machine."
    if any(t != 1 for t in result.get("settings", {}).get("threads", [1])):
        text += (" With more than one thread the ratios mostly measure how each framework's threads cope with"
                 " the competition; the one-thread rows per CPU-second compare the computations.")
    return text


def report(result: dict) -> str:
    m, s = result["machine"], result["settings"]
    work = WORKLOADS[result["model"]]
    lines = [
        f"machine: {m['cpu']}, {m['cores']} cores; Python {m['python']}, NumPy {m['numpy']} "
        f"(BLAS threads {m['numpy_threads']}), PyTorch {m.get('torch', '-')}",
        f"{work.title}, batch {s['batch']}; median of {s['repeats']} runs of {s['steps']} steps "
        f"after {s['warmup']} warm-up steps",
        f"{'':14s}{'train img/s':>14s}{'infer img/s':>14s}",
    ]
    for name, med in result["median"].items():
        lines.append(f"{name:14s}{med['train']:14.1f}{med['inference']:14.1f}")
    for t, r in result["ratio"].items():
        note = f"(tinyqnn / PyTorch, {t[:-1]} threads each)"
        lines.append(f"{'ratio/' + t:14s}{r['train']:14.2f}{r['inference']:14.2f}   {note}")
    if result["median_per_cpu_s"]:
        lines.append("per CPU-second of this process (1 thread; waiting for a core not counted):")
        for name, med in result["median_per_cpu_s"].items():
            lines.append(f"{name:14s}{med['train']:14.1f}{med['inference']:14.1f}")
        if "ratio_per_cpu_s" in result:
            r = result["ratio_per_cpu_s"]
            lines.append(f"{'ratio/1t':14s}{r['train']:14.2f}{r['inference']:14.2f}   (per CPU-second)")
    if result["others_cores"] is not None:
        lines.append(f"other processes' CPU use while measuring: median {result['others_cores']['median']:.2f}, "
                     f"max {result['others_cores']['max']:.2f} cores")
    blas = m.get("blas", {})
    if blas.get("kernels"):
        pinned = f" (OPENBLAS_CORETYPE={blas['openblas_coretype']})" if blas.get("openblas_coretype") else ""
        lines.insert(1, f"NumPy's BLAS: {blas['library']} {blas['version']}, {blas['kernels']} kernels{pinned}")
    if "bounds" in result:
        from .bounds import report_lines

        lines += report_lines(result["bounds"], result["bounds"]["ratios"])
    for extra in (blas_note(result), busy_warning(result)):
        if extra:
            lines.append(extra)
    return "\n".join(lines)


def _thread_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(v) for v in text.split(","))
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"--threads takes positive integers separated by commas, got {text!r}")
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tinyqnn benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=sorted(WORKLOADS), default="lenet5", help="network to time (default lenet5)")
    p.add_argument("--threads", type=_thread_counts, default=(2,),
                   help="threads for each framework; a list such as 1,2 compares at each count (default 2)")
    p.add_argument("--repeats", type=int, default=7, help="timed samples per row and mode; medians are reported")
    p.add_argument("--steps", type=int, default=None, help="steps per sample (default: 30 for lenet5, 3 for resnet20)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: 20 lenet5, 2 resnet20)")
    p.add_argument("--batch-size", type=int, default=None, help="images per step (default: 64 lenet5, 128 resnet20)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    p.add_argument("--bounds", action="store_true",
                   help="also measure two ceilings: the step's matrix products alone at their best rate here, and "
                        "the cost per step that does not grow with the batch (Amdahl); adds seconds to a minute")
    p.add_argument("--json", default=None, help="also write every sample to this JSON file")
    p.add_argument("--force", action="store_true", help="replace a --json file that the benchmark did not write")
    args = p.parse_args(argv)
    if args.json:  # refused now, not after minutes of measuring
        from ..utils import RunFolderError, output_file, written_by

        try:
            output_file(args.json, "benchmark", lambda path: written_by(path, "benchmark"), args.force)
        except RunFolderError as error:
            p.error(str(error))
    for name in ("repeats", "steps", "warmup", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "warmup" else 1):
            p.error(f"--{name.replace('_', '-')} must be positive, got {value}")
    result = run(args.model, args.threads, args.repeats, args.steps, args.warmup, args.batch_size,
                 use_torch=not args.no_torch, bounds=args.bounds)
    print(report(result))
    if args.json:
        from ..utils import atomic_write_bytes, tag

        atomic_write_bytes(args.json, json.dumps(tag(result, "benchmark"), indent=2).encode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
