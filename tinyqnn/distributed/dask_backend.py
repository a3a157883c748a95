"""The same workers as real processes on Dask distributed (optional extra: ``pip install tinyqnn[distributed]``).

``DaskExecutor()`` starts a ``LocalCluster`` of ``n_workers`` processes with one thread each and closes it on
``close()`` (or at the end of a ``with`` block); ``DaskExecutor(address="tcp://host:8786")`` connects to a running
scheduler instead (and leaves that cluster running). The problem, with every worker's data, is scattered to the
workers once; each iteration submits N tasks ``worker_step(problem, n, t, weights, config)`` and gathers the replies
in worker order. Since a reply depends only on those arguments, the weights equal the in-process run's bit for bit.

Failures: a task that raises stops the run with ``WorkerFailure`` naming every failed worker and the iteration (it
would raise again). A worker *process* that dies is handled by Dask's scheduler, which reruns the lost task on a live
worker (up to ``distributed.scheduler.allowed-failures`` times; the rerun computes the same reply); past that,
``KilledWorker`` stops the run with ``WorkerFailure``. Either way a missing gradient is never averaged.

``map_cells(fn, cells)`` runs independent experiment cells (e.g. the Table 1 grid) as tasks.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .packing import Message
from .training import TrainConfig, WorkerFailure, WorkerReply, worker_step


class MissingExtraError(ImportError, RuntimeError):
    """An optional extra is not installed. A RuntimeError too, so the command line prints it as one line."""


def _import_distributed():
    try:
        import distributed
    except ImportError as error:
        raise MissingExtraError(f"the Dask backend (--dask, --scheduler) needs the optional extra 'distributed' "
                                f"({error}): in the tinyqnn folder run pip install -e \".[distributed]\"") from error
    return distributed


class DaskExecutor:
    """Run workers on Dask. Args: address (a scheduler; None = a new LocalCluster), n_workers / threads_per_worker
    for the LocalCluster, client (an existing ``distributed.Client``, left open), connect_timeout: seconds to wait
    for the scheduler at ``address`` before failing with an ``OSError`` that names it."""

    def __init__(self, address: str | None = None, n_workers: int = 2, threads_per_worker: int = 1,
                 client: Any = None, connect_timeout: float = 10.0, **cluster_kwargs: Any):
        for name, value in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker)):
            # a LocalCluster of 0 workers accepts tasks and never runs them: refuse it before it waits forever
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not connect_timeout > 0:
            raise ValueError(f"connect_timeout must be > 0 seconds, got {connect_timeout!r}")
        distributed = _import_distributed()
        self._own_cluster = self._own_client = None
        if client is not None:
            self.client = client
        else:
            if address is None:
                # a free port: a fixed one (Dask's :8787) clashes with a second cluster on the same machine
                cluster_kwargs.setdefault("dashboard_address", ":0")
                self._own_cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=threads_per_worker,
                                                             processes=True, **cluster_kwargs)
                self.client = self._own_client = distributed.Client(self._own_cluster)
            else:
                try:
                    self.client = self._own_client = distributed.Client(address, timeout=connect_timeout)
                except (OSError, TimeoutError) as error:
                    raise OSError(f"no Dask scheduler answered at {address} within {connect_timeout:g} s "
                                  f"(is `dask scheduler` running there, and is the address right?): {error}") from None
        self._problem = None

    def setup(self, problem: Any) -> None:
        # once per run: the data lives on every worker, each task then only carries the weights
        self._problem = self.client.scatter(problem, broadcast=True, hash=False)

    def run(self, t: int, weights: list[Message], config: TrainConfig) -> list[WorkerReply]:
        distributed = _import_distributed()
        futures = [self.client.submit(worker_step, self._problem, n, t, weights, config, pure=False,
                                      key=f"tinyqnn-worker-{n}-t{t}-{id(self)}-{id(weights)}")
                   for n in range(config.workers)]
        replies: list[WorkerReply] = []
        failures: list[tuple[str, BaseException]] = []
        # wait for every task before judging: the error then names each worker that failed, not only the first
        # (a process that dies can take a queued task of another worker with it)
        for n, future in enumerate(futures):
            try:
                replies.append(future.result())
            except distributed.scheduler.KilledWorker as error:
                failures.append((f"worker {n} at iteration {t}: the Dask worker processes running its task died "
                                 f"more often than Dask allows ({error})", error))
            except Exception as error:
                failures.append((f"worker {n} failed at iteration {t}: {type(error).__name__}: {error}", error))
        if failures:
            self._cancel(futures)
            raise WorkerFailure("; ".join(text for text, _ in failures) +
                                f"; no update applied (weights are those after iteration {t - 1})") from failures[0][1]
        return replies

    def _cancel(self, futures: Sequence[Any]) -> None:
        self.client.cancel(list(futures))

    def map_cells(self, fn: Callable[[Any], Any], cells: Sequence[Any]) -> list[Any]:
        """``[fn(cell) for cell in cells]``, each a Dask task; results in order."""
        return self.client.gather(self.client.map(fn, list(cells), pure=False))

    def close(self) -> None:
        """Close what this executor started (a passed-in client or a remote cluster are left alone)."""
        if self._own_client is not None:
            self._own_client.close()
        if self._own_cluster is not None:
            self._own_cluster.close()
        self._own_client = self._own_cluster = None

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
