"""Reuse tinyqnn's own large arrays across training steps: ``empty(shape, dtype)``.

A training step allocates and frees the same large arrays every step (activations, gradients,
im2col blocks). glibc's ``malloc`` serves large blocks with fresh ``mmap`` pages and hands them back
to the kernel when they are freed, so every step the kernel page-faults and zeroes the same memory
again (ResNet-20: about a fifth of a step). ``keep_freed_memory()`` fixes that by retuning malloc for
the whole process, which only tinyqnn's own command line may do. This pool fixes it for tinyqnn's
own arrays in any process: ``empty`` hands out a view of a block that tinyqnn keeps; once every
view of a block has been dropped (its reference count is back to the pool's own), the next request
of the same size gets the same block, already paged in.

Only blocks of at least ``MIN_BYTES`` are pooled (smaller ones come cheaply from malloc's heap), and
at most ``MAX_BYTES`` in all are kept; ``clear()`` lets them go. Nothing outside tinyqnn changes.
"""
from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

#: arrays below this size come from NumPy directly (malloc's heap serves them without page faults)
MIN_BYTES = 1 << 18
#: the pool keeps at most this many bytes; beyond it, arrays come from NumPy directly
MAX_BYTES = 2 << 30

_blocks: dict[int, list[np.ndarray]] = {}  # size in bytes -> blocks of that size
_held = 0  # bytes in _blocks
_lock = threading.Lock()  # worker threads (tinyqnn.engine.parallel) allocate too


def _refs(block: np.ndarray) -> int:
    return sys.getrefcount(block)


def _baseline() -> int:
    """The reference count of a block that only the pool holds, as ``_refs`` sees it from ``empty``."""
    blocks = [np.empty(1, dtype=np.uint8)]
    for block in blocks:
        return _refs(block)
    raise AssertionError  # unreachable


_FREE = _baseline()


def empty(shape: int | tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """Like ``np.empty(shape, dtype)`` (C order, uninitialised), from the pool when large enough."""
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if nbytes < MIN_BYTES:
        return np.empty(shape, dtype=dtype)
    global _held
    with _lock:
        same = _blocks.setdefault(nbytes, [])
        for block in same:
            if _refs(block) == _FREE:  # nobody holds a view of it any more
                return block.view(dtype).reshape(shape)
        if _held + nbytes > MAX_BYTES:
            return np.empty(shape, dtype=dtype)
        block = np.empty(nbytes, dtype=np.uint8)
        same.append(block)
        _held += nbytes
    return block.view(dtype).reshape(shape)


def zeros(shape: int | tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """Like ``np.zeros``, from the pool (``empty`` then filled with 0)."""
    out = empty(shape, dtype)
    out.fill(0)
    return out


def empty_like(a: np.ndarray) -> np.ndarray:
    """``empty(a.shape, a.dtype)``."""
    return empty(a.shape, a.dtype)


_zeros: dict[np.dtype, np.ndarray] = {}  # dtype -> a read-only flat array of zeros, grown on demand


def zeros_view(shape: int | tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    """A read-only array of zeros of ``shape`` (a view of one shared block: never write to it).

    For ``np.maximum(a, zeros_view(a.shape, a.dtype))``, ReLU: against an array NumPy runs its
    vectorised loop, against the scalar 0 a scalar one (float32: 0.12 against 0.77 ns per value
    measured here, NumPy 2.4). Use it on cache-sized blocks: the zeros are read like any operand.
    """
    dtype = np.dtype(dtype)
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    size = int(np.prod(shape, dtype=np.int64))
    with _lock:
        flat = _zeros.get(dtype)
        if flat is None or flat.size < size:
            flat = np.zeros(max(size, 1 << 16), dtype=dtype)
            flat.flags.writeable = False
            _zeros[dtype] = flat
    return flat[:size].reshape(shape)


def held_bytes() -> int:
    """Bytes the pool holds (in use or free)."""
    return _held


def clear() -> None:
    """Forget every block: free ones go back to malloc now, ones in use when their last view goes."""
    global _held
    with _lock:
        _blocks.clear()
        _held = 0
