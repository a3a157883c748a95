"""Where ``python -m tinyqnn grade`` runs its submissions: ``--jobs N`` local workers, or a Dask cluster.

Both pools take the tasks of ``tinyqnn.course.grade.build_task`` and yield one result per task (as
``grade_submission`` returns it), in completion order. A submission that crashes or kills the process grading
it (its grading worker, or its Dask worker) does not stop the class: the task is tried once more in a fresh
worker, then yielded as a failed result with the reason (``grade.failed_result``), and every other task goes on.

Local workers are ``python -m tinyqnn.course.grade_pool`` processes, one per slot, kept warm across
submissions (they only drive sandboxes: each submission still gets its own sandbox and kernel) and restarted
when one dies, so a death costs only the task that was running in it. Tasks travel to a worker pickled (it is
the grader's own process); results come back as JSON, so even a worker a submission took over cannot make the
grader run code.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Iterable, Iterator
from typing import Any

_HEADER = 8  # bytes of big-endian length before each message


class WorkerDied(RuntimeError):
    """The grading worker exited (or broke the protocol) while it held a task."""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def worker_env() -> dict[str, str]:
    """A grading worker's environment: the grader's, with BLAS pinned to one thread (or to the user's explicit
    ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS``) as the CLI pins it: N workers already share the cores, and an
    idle OpenBLAS thread spin-waits. ``grade()`` called from Python would otherwise give each worker one BLAS
    thread per core."""
    blas = next((os.environ[v] for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
                 if os.environ.get(v, "").isdigit() and int(os.environ[v]) >= 1), "1")
    return {**os.environ, "OPENBLAS_NUM_THREADS": blas, "OMP_NUM_THREADS": blas, "MKL_NUM_THREADS": blas}


class _Worker:
    """One warm grading worker process, driven over its stdin/stdout."""

    def __init__(self) -> None:
        # a session of its own: Ctrl-C reaches the grader only, which then closes the pool
        self.proc = subprocess.Popen([sys.executable, "-m", "tinyqnn.course.grade_pool"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, start_new_session=True, env=worker_env())

    def grade(self, task: dict) -> dict:
        data = pickle.dumps(task, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            self.proc.stdin.write(len(data).to_bytes(_HEADER, "big") + data)
            self.proc.stdin.flush()
            head = self.proc.stdout.read(_HEADER)
            body = self.proc.stdout.read(int.from_bytes(head, "big")) if len(head) == _HEADER else b""
        except (BrokenPipeError, OSError):
            head = body = b""
        if len(head) < _HEADER or len(body) < int.from_bytes(head, "big"):
            self.close()
            raise WorkerDied(f"the grading worker {_describe_exit(self.proc.returncode)}")
        try:
            result = json.loads(body)
        except ValueError as err:
            self.close()
            raise WorkerDied(f"the grading worker broke the protocol ({err})") from None
        if "error" in result:  # grade_submission itself raised: a bug, or a submission that broke the worker
            raise WorkerDied(f"grading raised {result['error']}")
        return result

    def close(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            try:
                stream.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class LocalPool:
    """``--jobs N``: N warm grading workers on this machine, each restarted when it dies."""

    def __init__(self, jobs: int):
        self.executor = cf.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="grade-slot")
        self.slot = threading.local()
        self.lock = threading.Lock()
        self.workers: list[_Worker] = []

    def _worker(self) -> _Worker:
        worker = getattr(self.slot, "worker", None)
        if worker is None or worker.proc.poll() is not None:
            worker = self.slot.worker = _Worker()
            with self.lock:
                self.workers.append(worker)
        return worker

    def _run(self, task: dict) -> dict:
        from .grade import failed_result

        for attempt in (1, 2):
            try:
                result = self._worker().grade(task)
            except WorkerDied as err:
                from .sandbox import remove_orphaned_boxes

                reason = str(err)
                if self.slot.worker.proc.poll() is not None:  # dead: its sandboxes' scratch folders are ours now
                    remove_orphaned_boxes(self.slot.worker.proc.pid)
                    self.slot.worker = None
                continue
            result["attempts"] = max(result.get("attempts", 1), attempt)
            return result
        return failed_result(task, f"{reason} (tried twice)", attempts=2)

    def results(self, tasks: Iterable[dict]) -> Iterator[dict]:
        futures = [self.executor.submit(self._run, task) for task in tasks]
        for future in cf.as_completed(futures):
            yield future.result()

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        with self.lock:
            workers, self.workers = self.workers, []
        for worker in workers:
            if worker.proc.poll() is None:
                os.killpg(worker.proc.pid, signal.SIGTERM)
            worker.close()


class DaskPool:
    """``--scheduler ADDRESS``: a Dask cluster whose workers have tinyqnn installed (the files travel with the task).

    A task lost with its worker (``KilledWorker`` once the scheduler's ``distributed.scheduler.allowed-failures``
    is used up) or failing on it is submitted once more; a second failure is recorded with the reason.
    """

    def __init__(self, address: Any, timeout: float = 10):
        from distributed import Client

        self.client = address if hasattr(address, "submit") else Client(address, timeout=timeout)
        self.own = not hasattr(address, "submit")

    def results(self, tasks: Iterable[dict]) -> Iterator[dict]:
        from distributed import as_completed

        from .grade import failed_result, grade_submission

        pending: dict[str, tuple[dict, int]] = {}

        def submit(task: dict, attempt: int) -> Any:
            future = self.client.submit(grade_submission, task, pure=False)
            pending[future.key] = (task, attempt)
            return future

        queue = as_completed([submit(task, 1) for task in tasks])
        for future in queue:
            task, attempt = pending.pop(future.key)
            if future.status == "finished":
                result = future.result()
                result["attempts"] = max(result.get("attempts", 1), attempt)
                yield result
            else:
                try:
                    err: BaseException = future.exception()
                except BaseException as lost:  # cancelled: the scheduler dropped it
                    err = lost
                if attempt == 1:
                    queue.add(submit(task, 2))
                else:
                    yield failed_result(task, f"the Dask worker failed: {type(err).__name__}: {err} (tried twice)",
                                        attempts=2)
            future.release()

    def close(self) -> None:
        if self.own:
            self.client.close()


def serve() -> int:
    """A grading worker's loop: a pickled task in, ``grade_submission``'s result out as JSON, until EOF."""
    import traceback

    from .grade import grade_submission

    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the reply stream
    requests = sys.stdin.buffer
    while True:
        head = requests.read(_HEADER)
        if len(head) < _HEADER:
            return 0
        task = pickle.loads(requests.read(int.from_bytes(head, "big")))
        try:
            result = grade_submission(task)
        except Exception as err:  # reported to the grader, which retries once and then records the reason
            result = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()[-2000:]}
        data = json.dumps(result).encode()
        replies.write(len(data).to_bytes(_HEADER, "big") + data)
        replies.flush()


if __name__ == "__main__":
    raise SystemExit(serve())
