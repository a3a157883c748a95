"""Keep freed memory in the process instead of handing it back to the kernel after every step.

A training step allocates and frees arrays of several megabytes (activations, gradients, padded
inputs). glibc's ``malloc`` serves large blocks with fresh ``mmap`` pages and returns them to the
kernel when they are freed (or trims the heap above a threshold), so each step the kernel
page-faults and zeroes the same memory again: measured on ResNet-20 (batch 128) that kernel time
was 106-112 ms of a ~590 ms training step. Raising the two thresholds lets ``malloc`` reuse the
freed blocks, as deep-learning frameworks' caching allocators do; the process keeps its peak
memory instead of shrinking after each step.

It affects the whole process (NumPy and anything else in it), so importing tinyqnn never does it:
``python -m tinyqnn ...`` (a process of tinyqnn's own) calls it at start, and a library user who wants
it calls ``tinyqnn.engine.keep_freed_memory()``. Only on glibc, and not when the user set the
``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` environment variables (their choice wins)
or ``TINYQNN_KEEP_FREED_MEMORY=0``.
"""
from __future__ import annotations

import ctypes
import os

#: glibc's mallopt parameter numbers (malloc.h)
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
#: blocks up to this size come from the reusable heap (larger ones are still mmap-ed and returned)
MMAP_THRESHOLD = 64 << 20
#: the heap is given back to the kernel only when this much is free at its top
TRIM_THRESHOLD = 256 << 20


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (see the module docstring); True if they were set.

    Does nothing (returns False) off glibc, when the user set glibc's own ``MALLOC_*`` variables,
    or with ``TINYQNN_KEEP_FREED_MEMORY=0``.
    """
    if os.environ.get("TINYQNN_KEEP_FREED_MEMORY", "1") == "0":
        return False
    if any(k in os.environ for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library already loaded into this process
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, Windows, musl without mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; setting either threshold also stops glibc adjusting them itself
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
