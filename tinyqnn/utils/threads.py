"""Threads: tinyqnn's own worker threads and NumPy's BLAS threads, in this process and its children."""
from __future__ import annotations

import os


def set_num_threads(threads: int, blas_threads: int = 1) -> None:
    """Compute with ``threads`` threads in this process and in the processes it starts.

    tinyqnn's own worker threads share each large operation (``tinyqnn.engine.parallel``); NumPy's BLAS
    gets ``blas_threads``, by default one. tinyqnn's matrix products are small (LeNet-5: at most a few
    hundred by a few thousand), so splitting each one gains little, and on a busy machine OpenBLAS's idle
    threads spin-wait and slow every product several-fold; two kinds of threads on the same cores would
    also compete. Children inherit both (``TINYQNN_THREADS``, ``OPENBLAS_NUM_THREADS`` and kin).
    """
    for name, value in (("threads", threads), ("blas_threads", blas_threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    from threadpoolctl import threadpool_limits

    from ..engine import parallel

    parallel.THREADS = threads
    threadpool_limits(limits=blas_threads, user_api="blas")  # called, not entered: the limit stays in force
    os.environ["TINYQNN_THREADS"] = str(threads)
    for var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ[var] = str(blas_threads)  # children (notebook kernels, subprocesses) start with the same limits


def _positive_env(*names: str) -> int | None:
    for var in names:
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) >= 1:
            return int(value)
    return None


def default_num_threads() -> int:
    """1, or what ``TINYQNN_THREADS`` asks for now (the user's explicit choice)."""
    from ..engine.parallel import threads_from_env

    return threads_from_env()


def default_blas_threads() -> int:
    """1, or what ``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` ask for (the user's explicit choice)."""
    return _positive_env("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") or 1


def get_num_threads() -> int | None:
    """The BLAS thread count NumPy uses now (the largest over its BLAS libraries), or None if unknown."""
    from threadpoolctl import threadpool_info

    counts = [info["num_threads"] for info in threadpool_info() if info.get("user_api") == "blas"]
    return max(counts) if counts else None
