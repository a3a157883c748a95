"""Sharing one operation's work among threads: ``over_slices(fn, n)``.

NumPy releases the GIL inside its copies, ufunc loops and BLAS calls, so threads that each handle a
slice of a batch (samples, or channels) run truly in parallel while they are in NumPy; only the
Python between those calls is serialized. ``THREADS`` sets how many slices (1: the calling thread
alone, the default). Give BLAS one thread when this is above 1 (``threadpoolctl``), or BLAS's own
threads and these compete for the same cores.

Waking a sleeping worker costs tens of microseconds, so the calling thread computes the first slice
itself, and callers split only work that is large enough (``worth_splitting``).
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

import numpy as np

T = TypeVar("T")

#: slices each split operation is cut into (the calling thread plus THREADS - 1 workers)
THREADS = 1
#: below this many array elements per slice, an elementwise split costs more than it saves (measured
#: on 2 cores: LeNet-5's 0.3M-value maps lose, ResNet-20's 1-2M-value maps gain 1.3-1.7x)
MIN_SLICE_ELEMENTS = 1 << 19
_pool: tuple[int, ThreadPoolExecutor] | None = None


def worth_splitting(elements: int) -> bool:
    """True when ``THREADS`` > 1 and an elementwise pass over ``elements`` values is big enough to split."""
    return THREADS > 1 and elements >= 2 * MIN_SLICE_ELEMENTS


def over_slices(fn: Callable[[int, int], T], n: int) -> list[T]:
    """``fn(start, stop)`` on ``THREADS`` contiguous slices of ``range(n)``, in parallel; results in order.

    The calling thread runs the first slice (its cache already holds the inputs); the others go to
    worker threads. ``fn`` must only write to its own slice of any shared output.
    """
    global _pool
    parts = max(1, min(THREADS, n))
    if parts == 1:
        return [fn(0, n)]
    if _pool is None or _pool[0] != parts:
        if _pool is not None:
            _pool[1].shutdown(wait=False)
        _pool = parts, ThreadPoolExecutor(max_workers=parts - 1, thread_name_prefix="tinyqnn-worker")
    bounds = [n * k // parts for k in range(parts + 1)]
    others = [_pool[1].submit(fn, a, b) for a, b in zip(bounds[1:-1], bounds[2:])]
    try:
        first = fn(bounds[0], bounds[1])
    finally:
        wait(others)  # never leave a worker writing into an output after an error here
    return [first, *(future.result() for future in others)]


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
