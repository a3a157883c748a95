"""tinyqnn.engine.memory: glibc's malloc keeps freed blocks for reuse, unless the user says otherwise."""
from __future__ import annotations

import platform

import numpy as np
import pytest

from tinyqnn.engine.memory import keep_freed_memory

on_glibc = platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not on_glibc, reason="mallopt is glibc's")
def test_sets_the_thresholds_on_glibc(monkeypatch):
    for name in ("TINYQNN_KEEP_FREED_MEMORY", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    assert keep_freed_memory() is True


@pytest.mark.parametrize("name, value", [("TINYQNN_KEEP_FREED_MEMORY", "0"), ("MALLOC_TRIM_THRESHOLD_", "131072"),
                                         ("MALLOC_MMAP_THRESHOLD_", "131072")])
def test_the_users_choice_wins(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    assert keep_freed_memory() is False


def test_importing_tinyqnn_leaves_malloc_alone_and_the_command_line_opts_in(monkeypatch):
    """A library import must not change process-wide allocator settings; `python -m tinyqnn` may."""
    import importlib

    import tinyqnn.cli
    import tinyqnn.engine as engine
    import tinyqnn.engine.memory as memory

    calls = []

    def spy() -> bool:
        calls.append(1)
        return True

    monkeypatch.setattr(memory, "keep_freed_memory", spy)
    monkeypatch.setattr(engine, "keep_freed_memory", spy)  # restored to the real one afterwards
    importlib.reload(engine)  # the package body runs again, importing the spy from .memory
    assert calls == [], "importing tinyqnn.engine changed malloc's settings"
    tinyqnn.cli.main(["evaluate", "/nonexistent/checkpoint.npz"])  # fails fast, after the opt-in
    assert calls == [1]


def test_buffer_pool_reuses_a_block_only_when_no_view_of_it_is_left():
    import numpy as np

    from tinyqnn.engine import buffers

    shape = (4, buffers.MIN_BYTES // 4)  # one block of exactly MIN_BYTES * 4
    a = buffers.empty(shape, np.float32)
    view = a[1:3, ::2]  # a view keeps the block busy
    base = id(a.base)  # not the block itself: holding it would keep it busy
    del a
    b = buffers.empty(shape, np.float32)
    assert id(b.base) != base  # in use through `view`: a new block
    b[...] = 1
    view[...] = 2
    assert (b == 1).all()  # writing one never touches the other
    del view
    c = buffers.empty(shape, np.float32)
    assert id(c.base) == base  # every view gone: the block comes back
    small = buffers.empty(8, np.float64)
    assert small.base is None  # small arrays come from NumPy itself
    assert buffers.zeros(shape).sum() == 0 and buffers.empty(shape, np.int8).dtype == np.int8


def test_zeros_view_is_read_only_zeros_of_any_shape_and_relu_keeps_nan():
    """The shared zeros ReLU runs against: right shape and dtype, all zero, not writable (a write would
    change every later ReLU), grown when a larger block is asked for; max against it keeps NaN."""
    from tinyqnn.engine import buffers

    for shape, dtype in (((3, 4), np.float32), (5, np.float64), ((2, 1 << 17), np.float32), ((0, 3), np.float32)):
        z = buffers.zeros_view(shape, dtype)
        assert z.shape == ((shape,) if isinstance(shape, int) else shape) and z.dtype == dtype
        assert not z.any() and not z.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            z[...] = 1
    a = np.array([-1.0, np.nan, 2.0, -0.0], dtype=np.float32)
    out = np.maximum(a, buffers.zeros_view(a.shape, a.dtype))
    assert np.isnan(out[1]) and out[0] == 0 and out[2] == 2
