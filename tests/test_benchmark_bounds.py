"""The benchmark's ceilings (``--bounds``): what they count and how they turn into ratios (never their speed)."""
import sys

import numpy as np
import pytest

from tinyqnn.bench import bounds as benchmark_bounds
from tinyqnn.bench import throughput as benchmark
from tinyqnn.bench.bounds import Products, ceiling_ratios, fixed_cost, gemm_seconds, layer_products
from tinyqnn.models import LeNet5, resnet20


def test_lenet5_products_are_read_off_its_layers():
    got = layer_products(LeNet5(), (4, 1, 28, 28))
    assert got == [
        Products("conv1", 6, 1 * 5 * 5, 28 * 28, 4, needs_dx=False),  # fed by the data: no dx
        Products("conv2", 16, 6 * 5 * 5, 10 * 10, 4, needs_dx=True),
        Products("fc1", 120, 400, 1, 4, needs_dx=True),
        Products("fc2", 84, 120, 1, 4, needs_dx=True),
        Products("fc3", 10, 84, 1, 4, needs_dx=True),
    ]


def test_resnet20_flops_match_the_architecture():
    """ResNet-20's well-known 40.55 M multiply-adds per CIFAR image, counted by hand from its layers."""
    n = 3
    layers = layer_products(resnet20(), (n, 3, 32, 32))
    first = 16 * 27 * 32 * 32                           # conv1, 3 -> 16 channels at 32x32
    stage1 = 6 * 16 * 16 * 9 * 32 * 32                  # six 16 -> 16 convolutions at 32x32
    stage2 = 32 * 16 * 9 * 16 * 16 + 5 * 32 * 32 * 9 * 16 * 16  # one with stride 2, then five at 16x16
    stage3 = 64 * 32 * 9 * 8 * 8 + 5 * 64 * 64 * 9 * 8 * 8
    macs = first + stage1 + stage2 + stage3 + 64 * 10
    assert macs == 40_551_040
    unit = {(l.f, l.k, l.p): {"forward": 1.0, "dx": 1.0, "dw": 1.0} for l in layers}
    seconds, flops = gemm_seconds(layers, unit, train=False)
    assert flops == 2 * macs * n and seconds == flops
    # training: forward, dx and dW of every layer, except dx of the first convolution (its input is the data)
    _, train_flops = gemm_seconds(layers, unit, train=True)
    assert train_flops == 3 * 2 * macs * n - 2 * first * n


def test_gemm_seconds_divides_each_kind_by_its_own_rate():
    layer = Products("c", 2, 3, 5, 7, needs_dx=True)  # 2 * 2*3*5*7 = 420 FLOPs per GEMM
    rates = {(2, 3, 5): {"forward": 420.0, "dx": 210.0, "dw": 105.0}}
    assert gemm_seconds([layer], rates, train=True) == (pytest.approx(1 + 2 + 4), 3 * 420)
    assert gemm_seconds([layer], rates, train=False) == (pytest.approx(1.0), 420)


def test_fixed_cost_is_the_intercept_of_a_straight_line():
    # 0.9 ms fixed + 0.1 ms per image: 1.0 ms at batch 1, 7.3 ms at batch 64
    assert fixed_cost(1.0e-3, 7.3e-3, 64) == pytest.approx(0.9e-3)
    assert fixed_cost(1.0e-3, 200e-3, 64) == 0.0  # noisy timings never give a negative cost
    assert fixed_cost(1.0e-3, 0.5e-3, 64) == 1.0e-3  # ... nor one above the batch-1 step
    assert fixed_cost(2.0e-3, 2.0e-3, 1) == 2.0e-3


def _bounds(batch=10, gemm_s=1.0, fixed_s=0.5, step_s=2.5):
    return {"batch": batch, **{mode: {"gemm_s": gemm_s, "fixed_s": fixed_s, "step_s": step_s}
                               for mode in ("train", "inference")}}


def test_ceiling_ratios_follow_amdahl():
    torch = {1: {"train": 10.0, "inference": 20.0}, 2: {"train": 20.0, "inference": 40.0}}
    ratios = ceiling_ratios(_bounds(), torch)
    assert set(ratios) == {"1t gemm", "2t gemm", "2t fixed"}  # one thread: the fixed-cost bound is the step itself
    assert ratios["1t gemm"] == {"train": pytest.approx(1.0), "inference": pytest.approx(0.5)}  # 10 img / 1 s
    assert ratios["2t gemm"]["train"] == pytest.approx((10 / 0.5) / 20)
    assert ratios["2t fixed"]["train"] == pytest.approx((10 / (0.5 + 2.0 / 2)) / 20)
    three = ceiling_ratios(_bounds(), {3: {"train": 10.0, "inference": 10.0}})
    assert three["3t fixed"]["inference"] == pytest.approx((10 / (0.5 + 2.0 / 3)) / 10)
    assert ceiling_ratios(_bounds(), {}) == {}


def test_best_rates_take_the_widest_block_that_fits_in_cache(monkeypatch):
    monkeypatch.setattr(benchmark_bounds, "_seconds_per_call", lambda fn, *a, **k: (fn(), 1e-3)[1])
    layer = Products("c", 16, 144, 1024, 128, needs_dx=True)
    widest = max(s * 1024 for s in benchmark_bounds.BLOCK_SAMPLES if 144 * s * 1024 * 4 <= benchmark_bounds.CACHE_BYTES)
    rates = benchmark_bounds.best_rates(layer, np.random.default_rng(0))
    assert widest < 8 * 1024  # the cache cap matters for this layer
    assert rates == {kind: pytest.approx(2 * 16 * 144 * widest / 1e-3) for kind in ("forward", "dx", "dw")}
    # a linear layer's block is the whole batch
    rates = benchmark_bounds.best_rates(Products("fc", 10, 64, 1, 128, needs_dx=True), np.random.default_rng(0))
    assert rates["forward"] == pytest.approx(2 * 10 * 64 * 128 / 1e-3)


def test_run_with_bounds_reports_the_ceilings(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    monkeypatch.setattr(benchmark_bounds, "MIN_STEP_SAMPLE_S", 1e-3)
    monkeypatch.setattr(benchmark_bounds, "MIN_SAMPLE_S", 1e-4)
    result = benchmark.run("lenet5", threads=(1,), repeats=1, steps=1, warmup=0, batch=4, bounds=True)
    b = result["bounds"]
    assert b["batch"] == 4 and [layer["name"] for layer in b["layers"]] == ["conv1", "conv2", "fc1", "fc2", "fc3"]
    for mode in ("train", "inference"):
        assert 0 < b[mode]["gemm_s"] and 0 <= b[mode]["fixed_s"] <= b[mode]["batch1_s"]
    assert b["train"]["gemm_flops"] > b["inference"]["gemm_flops"]
    assert b["ratios"] == {}  # no PyTorch: no ratios, only the times
    text = benchmark.report(result)
    assert "matrix products alone: train" in text and "fixed cost per step" in text
    assert "highest ratio" not in text


def test_report_lists_each_ceiling():
    bounds = {**_bounds(), "gemm_rate_range": [40e9, 120e9]}
    for mode in ("train", "inference"):
        bounds[mode]["gemm_flops"] = 3e9
    torch = {1: {"train": 10.0, "inference": 20.0}, 2: {"train": 20.0, "inference": 40.0}}
    lines = benchmark_bounds.report_lines(bounds, ceiling_ratios(bounds, torch))
    text = "\n".join(lines)
    assert "40-120 GFLOP/s" in text and "train 1000.0 ms" in text and "train 500.00 ms" in text
    assert [line.split()[:2] for line in lines[-3:]] == [["1", "thread:"], ["2", "threads:"], ["2", "threads:"]]
    assert lines[-1].split()[-2:] == [f"{(10 / 1.5) / 20:.2f}", f"{(10 / 1.5) / 40:.2f}"]
