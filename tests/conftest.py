"""Shared fixtures for the tinyqnn test suite (keep this file small)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from tinyqnn.engine import grad_mode


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, fixed-seed generator for test data (independent of tinyqnn's own generator)."""
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _grad_mode_is_restored():
    """Every test starts with recording on; a test that leaks ``no_grad`` fails loudly."""
    assert grad_mode.is_grad_enabled(), "an earlier test left gradient recording switched off"
    yield
    leaked = not grad_mode.is_grad_enabled()
    grad_mode._grad_enabled = True  # repair, so that one leak does not fail every later test
    assert not leaked, "this test left gradient recording switched off (no_grad not restored)"


@pytest.fixture
def blas_threads_restored():
    """Tests that change BLAS thread limits or their environment variables put both back."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from tinyqnn.engine import parallel

    before, threads = threadpool_info(), parallel.THREADS
    saved_env = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS",
                                                "TINYQNN_THREADS")}
    yield
    threadpool_limits(limits=before)
    parallel.THREADS = threads
    for key, value in saved_env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def _no_network(request, monkeypatch):
    """Tests never touch the network: tinyqnn reaches it only through ``sources.fetch`` and ``run_npm_pack``,
    and here both fail at once. A module with its own offline fakes (``OWN_NETWORK_FAKES = True``, as
    tests/test_data.py, which runs the real npm path against a fake npm) is left to them."""
    if getattr(request.module, "OWN_NETWORK_FAKES", False):
        return
    from tinyqnn.data import sources

    def refuse(*args, **kwargs):
        raise OSError("tests never touch the network (tests/conftest.py); install a fake or use ../shared/data")

    monkeypatch.setattr(sources, "fetch", refuse)
    monkeypatch.setattr(sources, "run_npm_pack", refuse)
