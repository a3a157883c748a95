"""Fixtures for the course CI checks (helpers live in coursekit.py; see its docstring for the cost model)."""
from __future__ import annotations

import concurrent.futures as cf
import traceback

import pytest

from coursekit import (ASSIGNMENTS, LESSONS, REPO, WORKERS, Batch, build_batch, build_loop_batch, grading,
                       right_answer_cases, run_lesson, wrong_answer_cases)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "assignment" in metafunc.fixturenames:
        metafunc.parametrize("assignment", ASSIGNMENTS)
    if "lesson" in metafunc.fixturenames:
        metafunc.parametrize("lesson", LESSONS)
    if "wrong_case" in metafunc.fixturenames:
        metafunc.parametrize("wrong_case", wrong_answer_cases(), ids=[f"{a}-{i}" for a, i in wrong_answer_cases()])
    if "right_case" in metafunc.fixturenames:
        metafunc.parametrize("right_case", right_answer_cases(), ids=[f"{a}-{i}" for a, i in right_answer_cases()])


@pytest.fixture(scope="session")
def batches(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Batch]:
    """assignment -> graded Batch; plus key "<first assignment>:loop" for the infinite-loop scenario."""
    root = tmp_path_factory.mktemp("course")
    with cf.ThreadPoolExecutor(max_workers=WORKERS) as pool:  # threads only wait on nbgrader subprocesses
        jobs = {a: pool.submit(build_batch, a, root) for a in ASSIGNMENTS}
        if ASSIGNMENTS:
            jobs[f"{ASSIGNMENTS[0]}:loop"] = pool.submit(build_loop_batch, ASSIGNMENTS[0], root)
        return {key: job.result() for key, job in jobs.items()}


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
