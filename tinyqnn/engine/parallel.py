"""Sharing one operation's work among threads: ``over_slices(fn, n)``.

NumPy releases the GIL inside its copies, ufunc loops and BLAS calls, so threads that each handle a
slice of a batch (samples, or channels) run truly in parallel while they are in NumPy; only the
Python between those calls is serialized. ``THREADS`` sets how many slices (1: the calling thread
alone, the default). Give BLAS one thread when this is above 1 (``threadpoolctl``), or BLAS's own
threads and these compete for the same cores.

Waking a sleeping worker costs tens of microseconds, so the calling thread computes the first slice
itself, and callers split only work that is large enough (``worth_splitting``). Two independent
computations (a convolution's dW and dx) can also run side by side (``side_by_side``). Work already
running in parallel is never split again (``threads()`` is 1 there): a worker waiting for its own
pool would wait forever.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

import numpy as np

T = TypeVar("T")


def threads_from_env() -> int:
    """What ``$TINYQNN_THREADS`` asks for (a whole number >= 1), else 1."""
    value = os.environ.get("TINYQNN_THREADS", "")
    return int(value) if value.isdigit() and int(value) >= 1 else 1


#: slices each split operation is cut into (the calling thread plus THREADS - 1 workers); set with
#: ``tinyqnn.utils.set_num_threads`` (``--threads``), and inherited by child processes as $TINYQNN_THREADS
THREADS = threads_from_env()
#: below this many array elements per slice, an elementwise split costs more than it saves (measured
#: on 2 cores: LeNet-5's 0.3M-value maps lose, ResNet-20's 1-2M-value maps gain 1.3-1.7x)
MIN_SLICE_ELEMENTS = 1 << 19
_pool: tuple[int, ThreadPoolExecutor] | None = None
_inside = threading.local()  # .active: this thread is running one part of parallel work


def threads() -> int:
    """Threads a computation started here may use: ``THREADS``, or 1 inside work already in parallel."""
    return 1 if getattr(_inside, "active", False) else THREADS


def worth_splitting(elements: int) -> bool:
    """True when ``threads()`` > 1 and an elementwise pass over ``elements`` values is big enough to split."""
    return threads() > 1 and elements >= 2 * MIN_SLICE_ELEMENTS


def _as_part(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` marked, while it runs, as one part of parallel work (so it does not split again)."""
    def part(*args):
        saved, _inside.active = getattr(_inside, "active", False), True
        try:
            return fn(*args)
        finally:
            _inside.active = saved
    return part


def _run(parts: list[tuple[Callable[..., T], tuple]]) -> list[T]:
    """Each ``(fn, args)``: the first on the calling thread, the others on workers; results in order."""
    global _pool
    if _pool is None or _pool[0] != THREADS:
        if _pool is not None:
            _pool[1].shutdown(wait=False)
        _pool = THREADS, ThreadPoolExecutor(max_workers=THREADS - 1, thread_name_prefix="tinyqnn-worker")
    others = [_pool[1].submit(_as_part(fn), *args) for fn, args in parts[1:]]
    try:
        first = _as_part(parts[0][0])(*parts[0][1])
    finally:
        wait(others)  # never leave a worker writing into an output after an error here
    return [first, *(future.result() for future in others)]


def over_slices(fn: Callable[[int, int], T], n: int) -> list[T]:
    """``fn(start, stop)`` on ``threads()`` contiguous slices of ``range(n)``, in parallel; results in order.

    The calling thread runs the first slice (its cache already holds the inputs); the others go to
    worker threads. ``fn`` must only write to its own slice of any shared output.
    """
    parts = max(1, min(threads(), n))
    if parts == 1:
        return [fn(0, n)]
    bounds = [n * k // parts for k in range(parts + 1)]
    return _run([(fn, (a, b)) for a, b in zip(bounds[:-1], bounds[1:])])


def side_by_side(first: Callable[[], T], second: Callable[[], T]) -> tuple[T, T]:
    """``(first(), second())``, computed at the same time when ``threads()`` > 1 (each on one thread)."""
    if threads() == 1:
        return first(), second()
    a, b = _run([(first, ()), (second, ())])
    return a, b


def split_batch(fn: Callable[[int, int], T], n: int, elements: int) -> list[T]:
    """``over_slices(fn, n)`` when a pass over ``elements`` values is worth splitting, else ``[fn(0, n)]``."""
    return over_slices(fn, n) if worth_splitting(elements) else [fn(0, n)]


def elementwise(fn: Callable[..., object], *arrays: np.ndarray) -> None:
    """``fn(*arrays)`` for an elementwise kernel that writes into some of ``arrays`` (same shape), run on
    matching slices in parallel when they are C-contiguous and large enough, else in one call."""
    n = arrays[0].size
    if not worth_splitting(n) or not all(a.flags.c_contiguous for a in arrays):
        fn(*arrays)
        return
    flat = [a.reshape(-1) for a in arrays]
    over_slices(lambda start, stop: fn(*(f[start:stop] for f in flat)), n)
