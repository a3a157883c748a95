"""tinyqnn.engine.parallel, and the operations that split their work among threads with it.

Each threaded operation must give the same numbers as on one thread (same formula on each slice)
and correct gradients (central differences in float64), for batches that do not divide evenly
among the threads and for more threads than samples.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinyqnn.nn.functional as F
from tinyqnn import Tensor, gradcheck
from tinyqnn.engine import parallel


@pytest.fixture
def split_everything(monkeypatch):
    """``set(threads)``: split every operation, however small, among that many threads."""
    monkeypatch.setattr(parallel, "MIN_SLICE_ELEMENTS", 1)

    def set_threads(threads: int) -> None:
        monkeypatch.setattr(parallel, "THREADS", threads)

    return set_threads


@pytest.mark.parametrize("threads, n", [(1, 5), (2, 5), (3, 7), (4, 2), (2, 1), (3, 0)])
def test_over_slices_covers_the_range_once_in_order(threads, n, split_everything):
    split_everything(threads)
    seen: list[tuple[int, int, str]] = []
    results = parallel.over_slices(lambda a, b: seen.append((a, b, threading.current_thread().name)) or (a, b), n)
    starts = [a for a, _ in results]
    assert starts == sorted(starts) and [b for _, b in results][-1] == n
    covered = [i for a, b in results for i in range(a, b)]
    assert covered == list(range(n))
    assert len(results) == max(1, min(threads, n))
    assert any(name == threading.current_thread().name for *_, name in seen)


def test_over_slices_waits_for_workers_when_the_callers_slice_fails(split_everything):
    split_everything(2)
    finished = []

    def work(a: int, b: int) -> None:
        if a == 0:
            raise ValueError("slice 0 failed")
        threading.Event().wait(0.05)
        finished.append((a, b))

    with pytest.raises(ValueError, match="slice 0 failed"):
        parallel.over_slices(work, 4)
    assert finished == [(2, 4)]  # the worker's slice was done before the error reached the caller


def test_over_slices_reraises_a_workers_error(split_everything):
    split_everything(2)

    def work(a: int, b: int) -> None:
        if a > 0:
            raise RuntimeError(f"slice {a}:{b} failed")

    with pytest.raises(RuntimeError, match="slice 2:4 failed"):
        parallel.over_slices(work, 4)


def test_split_batch_runs_small_work_in_one_call(monkeypatch):
    monkeypatch.setattr(parallel, "THREADS", 2)
    calls = []
    parallel.split_batch(lambda a, b: calls.append((a, b)), 8, 2 * parallel.MIN_SLICE_ELEMENTS - 1)
    assert calls == [(0, 8)]
    calls.clear()
    parallel.split_batch(lambda a, b: calls.append((a, b)), 8, 2 * parallel.MIN_SLICE_ELEMENTS)
    assert sorted(calls) == [(0, 4), (4, 8)]


def test_elementwise_leaves_non_contiguous_arrays_whole(split_everything):
    split_everything(2)
    a = np.arange(12.0).reshape(3, 4).T  # Fortran order
    out = np.empty_like(a)
    calls = []
    parallel.elementwise(lambda x, o: calls.append(x.shape) or np.negative(x, out=o), a, out)
    assert calls == [(4, 3)]
    np.testing.assert_array_equal(out, -a)


def run_op(op: str, x: np.ndarray, seed: int):
    """Forward value and input gradient of ``op`` on x, for a fixed random upstream gradient."""
    xt = Tensor(x, requires_grad=True)
    weight = Tensor(np.linspace(0.5, 1.5, x.shape[1]), requires_grad=True)
    out = {
        "relu": lambda: F.relu(xt),
        "max_pool": lambda: F.max_pool2d(xt, 2, 2),
        "max_pool_overlapping": lambda: F.max_pool2d(xt, 3, 1, 1),
        "batch_norm": lambda: F.batch_norm(xt, None, None, weight, None, training=True),
    }[op]()
    upstream = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(upstream)
    return out.data, xt.grad.data, weight.grad


OPS = ["relu", "max_pool", "max_pool_overlapping", "batch_norm"]


@pytest.mark.parametrize("op", OPS)
@settings(max_examples=10, deadline=None)
@given(st.integers(1, 5), st.integers(1, 3), st.integers(2, 7), st.integers(2, 7), st.integers(2, 4),
       st.integers(0, 2**31 - 1))
def test_threaded_ops_agree_with_one_thread(op, n, c, h, w, threads, seed):
    """Any batch size against 2-4 threads (uneven slices, more threads than samples): same results."""
    x = np.random.default_rng(seed).permutation(n * c * h * w).reshape(n, c, h, w) / (n * c * h * w) - 0.5
    saved = parallel.THREADS, parallel.MIN_SLICE_ELEMENTS
    try:
        parallel.MIN_SLICE_ELEMENTS = 1
        parallel.THREADS = 1
        single = run_op(op, x, seed)
        parallel.THREADS = threads
        split = run_op(op, x, seed)
    finally:
        parallel.THREADS, parallel.MIN_SLICE_ELEMENTS = saved
    for a, b in zip(single, split):
        if a is not None:
            np.testing.assert_allclose(b.data if isinstance(b, Tensor) else b,
                                       a.data if isinstance(a, Tensor) else a, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("op", OPS)
def test_threaded_ops_gradcheck(op, split_everything, rng):
    split_everything(3)
    size = 5 * 3 * 6 * 7
    x = ((rng.permutation(size).reshape(5, 3, 6, 7) + 0.5) / size - 0.5) * 4  # distinct, none 0: no ties, no kink
    weight = np.linspace(0.5, 1.5, 3)
    fns = {
        "relu": lambda x: F.relu(x),
        "max_pool": lambda x: F.max_pool2d(x, 2, 2),
        "max_pool_overlapping": lambda x: F.max_pool2d(x, 3, 1, 1),
        "batch_norm": lambda x, w: F.batch_norm(x, None, None, w, None, training=True),
    }
    if op == "batch_norm":
        gradcheck(fns[op], x, weight)
    else:
        gradcheck(fns[op], x)


def test_threads_are_used_for_large_maps(monkeypatch):
    """With THREADS = 2 a ResNet-sized map is really split (a worker thread computes a slice)."""
    monkeypatch.setattr(parallel, "THREADS", 2)
    names = set()
    original = parallel.over_slices

    def spy(fn, n):
        return original(lambda a, b: names.add(threading.current_thread().name) or fn(a, b), n)

    monkeypatch.setattr(parallel, "over_slices", spy)
    x = Tensor(np.ones((2, 4, 512, 256), dtype=np.float32))
    F.relu(x)
    assert any(name.startswith("tinyqnn-worker") for name in names)


def test_side_by_side_runs_both_at_once_and_keeps_their_order(split_everything):
    split_everything(2)
    both_running = threading.Barrier(2, timeout=10)  # only passes when the two run at the same time

    def make(value):
        def compute():
            both_running.wait()
            return value, threading.current_thread().name
        return compute

    (a, name_a), (b, name_b) = parallel.side_by_side(make("dw"), make("dx"))
    assert (a, b) == ("dw", "dx") and name_a != name_b
    split_everything(1)
    assert parallel.side_by_side(lambda: 1, lambda: 2) == (1, 2)


def test_parallel_work_inside_parallel_work_runs_inline(split_everything):
    """A part that asks for threads again gets one (its pool's only worker may be busy with it: no deadlock)."""
    split_everything(2)
    inner_threads = []

    def outer(a: int, b: int) -> list:
        inner_threads.append(parallel.threads())
        return parallel.over_slices(lambda c, d: (a + c, a + d), b - a)

    result: list = []
    runner = threading.Thread(target=lambda: result.append(parallel.over_slices(outer, 4)), daemon=True)
    runner.start()
    runner.join(timeout=20)
    assert not runner.is_alive(), "nested over_slices deadlocked"
    assert result == [[[(0, 2)], [(2, 4)]]] and inner_threads == [1, 1]
    assert parallel.threads() == 2  # the caller's own setting is back afterwards


def test_side_by_side_reraises_and_waits(split_everything):
    split_everything(2)
    finished = []

    def slow():
        threading.Event().wait(0.05)
        finished.append(True)

    def fail():
        raise ValueError("first failed")

    with pytest.raises(ValueError, match="first failed"):
        parallel.side_by_side(fail, slow)
    assert finished == [True]
