"""tinyqnn.engine.memory: glibc's malloc keeps freed blocks for reuse, unless the user says otherwise."""
from __future__ import annotations

import platform

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
