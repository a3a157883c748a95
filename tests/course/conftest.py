"""Fixtures for the course CI checks (helpers live in coursekit.py; see its docstring for the cost model)."""
from __future__ import annotations

import concurrent.futures as cf
import re
import traceback
from pathlib import Path

import pytest

from coursekit import (ASSIGNMENTS, LESSONS, REPO, WORKERS, Batch, BatchJob, grading, right_answer_cases,
                       run_lesson, wrong_answer_cases)

COURSE = Path(__file__).parent
_batch_job: BatchJob | None = None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "assignment" in metafunc.fixturenames:
        metafunc.parametrize("assignment", ASSIGNMENTS)
    if "lesson" in metafunc.fixturenames:
        metafunc.parametrize("lesson", LESSONS)
    if "wrong_case" in metafunc.fixturenames:
        metafunc.parametrize("wrong_case", wrong_answer_cases(), ids=[f"{a}-{i}" for a, i in wrong_answer_cases()])
    if "right_case" in metafunc.fixturenames:
        metafunc.parametrize("right_case", right_answer_cases(), ids=[f"{a}-{i}" for a, i in right_answer_cases()])


def _needs_batches(item: pytest.Item) -> bool:
    return "batches" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """(This hook sees the whole session's items.) The course's tests go after the other tests and before the
    browser tests, those reading ``batches`` first: the batches are graded in the background meanwhile
    (``pytest_collection_finish``), and no other course test (some have time limits: lessons, sandboxes)
    shares the machine with them."""
    def rank(item: pytest.Item) -> int:
        path = Path(str(item.path))
        if COURSE not in path.parents:
            return 3 if COURSE.parent / "web" in path.parents else 0
        return 1 if _needs_batches(item) else 2

    items[:] = sorted(items, key=rank)  # stable: each group keeps its order


def pytest_collection_finish(session: pytest.Session) -> None:
    global _batch_job
    if any(_needs_batches(item) for item in session.items) and not session.config.option.collectonly:
        _batch_job = BatchJob(session.config._tmp_path_factory.mktemp("course"))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _batch_job is not None:
        _batch_job.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The background batches' times, beside pytest's durations: what the suite's course part waits for."""
    if _batch_job is not None and _batch_job.log.exists():
        times = [line for line in _batch_job.log.read_text(errors="replace").splitlines()
                 if re.match(r"\d\d:\d\d:\d\d build_", line) and not line.endswith(": start")]
        if times:
            terminalreporter.write_sep("=", "background nbgrader batches (end time, seconds)")
            for line in times:
                terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def batches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Batch]:
    """assignment -> graded Batch; plus key "<first assignment>:loop" for the infinite-loop scenario."""
    global _batch_job
    if _batch_job is None:  # not started with the session (a test asked for it through request.getfixturevalue)
        _batch_job = BatchJob(tmp_path_factory.mktemp("course"))
    return _batch_job.result()


@pytest.fixture(scope="session")
def lesson_runs() -> dict[str, tuple[list[str], float] | str]:
    """lesson file name -> (error messages, seconds), or a traceback string when the run itself failed."""
    results: dict[str, tuple[list[str], float] | str] = {}
    with cf.ProcessPoolExecutor(max_workers=WORKERS) as pool:
        jobs = {name: pool.submit(run_lesson, str(REPO / grading.LESSONS_DIR / name)) for name in LESSONS}
        for name, job in jobs.items():
            try:
                results[name] = job.result()
            except Exception:
                results[name] = traceback.format_exc()
    return results
