"""How fast tinyqnn could at most be here: two measured ceilings for the benchmark's ratios.

``python -m tinyqnn benchmark --bounds`` adds them to the report. Each is an upper bound on tinyqnn's
speed under a stated assumption, measured on this machine with this NumPy, in the same run as the
benchmark, so a missed target can be told apart from an out-of-reach one:

- **Matrix products.** In an im2col engine every convolution and linear layer of a training step is
  three GEMMs per sample (forward ``W2 @ cols``, dx ``W2.T @ dout``, dW ``dout @ cols.T``; no dx for a
  layer fed by the data, forward only for inference). Each shape is timed on operands that stay in
  cache, at block widths of 1 to 8 samples' columns (the batch for linear layers), on one BLAS
  thread; the best rate per GEMM sets its time. A step that did nothing else, shared perfectly
  among T threads, would take ``gemm / T``.
- **Fixed cost** (Amdahl). Part of a step's time does not grow with the batch: Python, the engine's
  bookkeeping, NumPy's cost per call. A straight line through the step's time at batch 1 and at the
  full batch (one thread) gives it. tinyqnn's threads share each operation's arrays, so this part
  runs on one thread; if everything else of today's one-thread step were shared perfectly among T
  threads, the step would take ``fixed + (t1 - fixed) / T``.
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np

#: block widths tried for a convolution's GEMMs, in samples (as ``tinyqnn.nn.ops.conv`` builds columns)
BLOCK_SAMPLES = (1, 2, 4, 8)
#: operands larger than this would not stay in cache: such block widths are not tried
CACHE_BYTES = 1 << 22
#: each GEMM is repeated for at least this long per timing sample
MIN_SAMPLE_S = 2e-3
#: ... and each training or inference step (as the benchmark's samples: many small steps, one large)
MIN_STEP_SAMPLE_S = 0.1


@dataclass(frozen=True)
class Products:
    """The GEMMs of one layer, per sample: weight (F, K) against columns (K, P), for N samples.

    A convolution has K = C*KH*KW and P = OH*OW; a linear layer K = in_features, P = 1.
    ``needs_dx``: whether the layer's input needs a gradient (not for the first layer, fed by the data).
    """

    name: str
    f: int
    k: int
    p: int
    n: int
    needs_dx: bool

    @property
    def flops(self) -> int:
        """2 F K P N, the FLOPs of each of the layer's GEMMs (forward, dx and dW multiply and add as often)."""
        return 2 * self.f * self.k * self.p * self.n


def layer_products(model, x_shape: tuple[int, ...]) -> list[Products]:
    """The ``Products`` of every ``nn.Conv2d`` and ``nn.Linear`` of ``model``, read off one forward pass
    on zeros of shape ``x_shape`` (N, ...)."""
    from .. import nn, tensor

    found: list[Products] = []

    def record(name: str):
        def hook(module, inputs, output) -> None:
            x, y = inputs[0], output
            if isinstance(module, nn.Conv2d):
                n, c = x.shape[:2]
                f, _, kh, kw = module.weight.shape
                found.append(Products(name, f, c * kh * kw, int(np.prod(y.shape[2:])), n, needs_dx=x.requires_grad))
            else:  # Linear on (N, *, in): every leading position is a sample
                n = int(np.prod(x.shape[:-1]))
                found.append(Products(name, module.out_features, module.in_features, 1, n,
                                      needs_dx=x.requires_grad))
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:  # with grad recording on: whether a layer's input needs a gradient is read off the graph
        model(tensor(np.zeros(x_shape, dtype=np.float32)))
    finally:
        for h in handles:
            h.remove()
    return found


def _seconds_per_call(fn: Callable[[], object], samples: int = 5, min_sample_s: float = MIN_SAMPLE_S) -> float:
    """Median seconds of one ``fn()`` over ``samples`` samples of at least ``min_sample_s`` each."""
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    calls = max(1, int(min_sample_s / once))
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def best_rates(layer: Products, rng: np.random.Generator) -> dict[str, float]:
    """FLOP/s of the layer's forward, dx and dW GEMMs at the best block width that fits in cache."""
    samples = BLOCK_SAMPLES + ((layer.n,) if layer.p == 1 else ())  # linear layers: the whole batch at once
    widths = sorted({min(layer.n, s) * layer.p for s in samples})
    rates = {"forward": 0.0, "dx": 0.0, "dw": 0.0}
    w2 = rng.standard_normal((layer.f, layer.k), dtype=np.float32)
    for cols_n in widths:
        if max(layer.k, layer.f) * cols_n * 4 > CACHE_BYTES and cols_n != widths[0]:  # the narrowest always runs
            continue
        cols = rng.standard_normal((layer.k, cols_n), dtype=np.float32)
        grad = rng.standard_normal((layer.f, cols_n), dtype=np.float32)
        out, dcols, dw = (np.empty((layer.f, cols_n), np.float32), np.empty((layer.k, cols_n), np.float32),
                          np.empty((layer.f, layer.k), np.float32))
        timed = {"forward": lambda: np.matmul(w2, cols, out=out),
                 "dx": lambda: np.matmul(w2.T, grad, out=dcols),
                 "dw": lambda: np.matmul(grad, cols.T, out=dw)}
        flops = 2 * layer.f * layer.k * cols_n
        for kind, fn in timed.items():
            rates[kind] = max(rates[kind], flops / _seconds_per_call(fn))
    return rates


def gemm_seconds(layers: list[Products], rates: dict[tuple, dict[str, float]], train: bool) -> tuple[float, int]:
    """(seconds, FLOPs) of a step's GEMMs at ``rates`` (keyed by ``(f, k, p)``): forward only for inference."""
    seconds, flops = 0.0, 0
    for layer in layers:
        kinds = ("forward", "dx", "dw") if train else ("forward",)
        for kind in kinds:
            if kind == "dx" and not layer.needs_dx:
                continue
            seconds += layer.flops / rates[(layer.f, layer.k, layer.p)][kind]
            flops += layer.flops
    return seconds, flops


def fixed_cost(t_one: float, t_full: float, batch: int) -> float:
    """The batch-independent part of a step from its times at batch 1 and at ``batch`` (a straight line),
    never below zero nor above ``t_one``."""
    if batch <= 1:
        return t_one
    per_image = (t_full - t_one) / (batch - 1)
    return min(max(t_one - per_image, 0.0), t_one)


def ceiling_ratios(bounds: dict, torch_images_per_s: dict[int, dict[str, float]]) -> dict[str, dict[str, float]]:
    """The highest ratio tinyqnn / PyTorch each ceiling allows, per thread count and mode.

    ``bounds`` is ``measure_bounds``'s result; ``torch_images_per_s[T][mode]`` PyTorch's medians.
    Keys: ``"{T}t gemm"`` (the GEMMs alone, shared by T threads) and, for T > 1, ``"{T}t fixed"``
    (the fixed cost on one thread, the rest of today's one-thread step shared by T).
    """
    batch, out = bounds["batch"], {}
    for t, torch in sorted(torch_images_per_s.items()):
        for label in ("gemm", "fixed") if t > 1 else ("gemm",):
            row = {}
            for mode in ("train", "inference"):
                m = bounds[mode]
                seconds = (m["gemm_s"] / t if label == "gemm"
                           else m["fixed_s"] + (m["step_s"] - m["fixed_s"]) / t)
                row[mode] = (batch / seconds) / torch[mode]
            out[f"{t}t {label}"] = row
    return out


def measure_bounds(build_model: Callable[[], object], image_shape: tuple[int, ...], batch: int,
                   steps: Callable[[int], tuple[Callable[[], None], Callable[[], None]]],
                   one_thread: Callable[[], AbstractContextManager], seed: int = 0) -> dict:
    """Both ceilings for a model: per mode ("train", "inference") the GEMM seconds and FLOPs, the fixed
    cost and the one-thread step time, all in seconds per step of ``batch`` images.

    Args:
        build_model: a new tinyqnn model; ``image_shape``: one input's (C, H, W).
        steps: ``batch -> (train step, inference step)`` of tinyqnn's benchmark.
        one_thread: ``() -> context manager`` that runs tinyqnn and NumPy's BLAS on one thread.
    """
    layers = layer_products(build_model(), (batch, *image_shape))
    rng = np.random.default_rng(seed)
    with one_thread():
        rates = {}
        for layer in layers:
            key = (layer.f, layer.k, layer.p)
            if key not in rates:
                rates[key] = best_rates(layer, rng)
        step_times = {}
        for n in (1, batch):
            train, infer = steps(n)
            step_times[n] = {"train": _step_seconds(train), "inference": _step_seconds(infer)}
    result: dict = {"batch": batch, "layers": [layer.__dict__ for layer in layers]}
    for mode in ("train", "inference"):
        gemm_s, flops = gemm_seconds(layers, rates, train=mode == "train")
        t_one, t_full = step_times[1][mode], step_times[batch][mode]
        result[mode] = {"gemm_s": gemm_s, "gemm_flops": flops, "step_s": t_full,
                        "fixed_s": fixed_cost(t_one, t_full, batch), "batch1_s": t_one}
    every_rate = [rate for by_kind in rates.values() for rate in by_kind.values()]
    result["gemm_rate_range"] = [min(every_rate), max(every_rate)]
    return result


def _step_seconds(step: Callable[[], None], warmup: int = 3, samples: int = 5) -> float:
    """Median seconds per call of a training or inference step after ``warmup`` calls."""
    for _ in range(warmup):
        step()
    return _seconds_per_call(step, samples, MIN_STEP_SAMPLE_S)


def report_lines(bounds: dict, ratios: dict[str, dict[str, float]]) -> list[str]:
    """The ceilings as report lines: the measured times, then the ratios they allow."""
    tr, inf = bounds["train"], bounds["inference"]
    low, high = bounds["gemm_rate_range"]
    lines = [
        "ceilings (--bounds; tinyqnn on one thread, see tinyqnn.bench.bounds):",
        f"  matrix products alone: train {tr['gemm_s'] * 1e3:.1f} ms, inference {inf['gemm_s'] * 1e3:.1f} ms per step "
        f"({tr['gemm_flops'] / 1e9:.2f} and {inf['gemm_flops'] / 1e9:.2f} GFLOP at the best rates measured for "
        f"their shapes, {low / 1e9:.0f}-{high / 1e9:.0f} GFLOP/s, operands in cache)",
        f"  fixed cost per step (does not grow with the batch): train {tr['fixed_s'] * 1e3:.2f} ms, inference "
        f"{inf['fixed_s'] * 1e3:.2f} ms; whole step: train {tr['step_s'] * 1e3:.1f} ms, inference "
        f"{inf['step_s'] * 1e3:.1f} ms",
    ]
    if ratios:
        rows = []
        for key, row in ratios.items():
            t, label = key.split()
            threads = f"{t[:-1]} thread{'s' if t != '1t' else ''}: "
            what = ("matrix products alone" + (", shared" if t != "1t" else "") if label == "gemm"
                    else "fixed cost + the rest of the 1-thread step, shared")
            rows.append((threads + what, row))
        width = max(len(label) for label, _ in rows)
        lines.append(f"  {'highest ratio these allow (tinyqnn / PyTorch)':{width}s}{'train':>7s}{'infer':>7s}")
        lines += [f"  {label:{width}s}{row['train']:7.2f}{row['inference']:7.2f}" for label, row in rows]
    return lines
