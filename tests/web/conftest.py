"""Browser tests of the course on the web: they read what `make site` / `make lite` built.

Without Chromium or playwright they skip, naming the install command; CI sets TINYQNN_WEB_TESTS=1, which turns
every such skip into a failure (CI must really run them).
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


def built(folder: str, command: str) -> Path:
    from tinyqnn.course.web.site import MARKER

    path = ROOT / "build" / folder
    if not (path / MARKER).is_file():
        skip_or_fail(f"no {path} built; run `{command}` first")
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
