"""A local static server and Debian's headless Chromium (through Playwright) with a guard on every request.

Used by the browser tests and by ``web-measure``. Playwright drives the system Chromium
(``apt-get install chromium``): we never run ``playwright install``, which downloads a browser.
The guard works twice over: Chromium resolves no host name but 127.0.0.1 (``--host-resolver-rules``), and a
route on the whole browser context aborts and records every request to another host, so a test can assert
that nothing left the machine.
"""
from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM = os.environ.get("TINYQNN_CHROMIUM", "/usr/bin/chromium")
INSTALL_HINT = "apt-get update && apt-get install -y chromium  (and pip install -e \".[web]\" for playwright)"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                 # nothing but the local server resolves: a stray request fails instead of leaving the machine
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
LOCAL_HOSTS = ("127.0.0.1",)


def missing() -> str | None:
    """Why the browser tools cannot run here (with the command that fixes it), or None."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return f"the playwright package is not installed; install: {INSTALL_HINT}"
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM}; install: {INSTALL_HINT}"
    return None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
                      ".json": "application/json", ".whl": "application/octet-stream"}

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a rebuilt site is never read from a stale cache
        super().end_headers()


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) in a thread; yields the base URL ending in '/'."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


class Guard:
    """Aborts and records every request that is not to a local host; ``outside`` lists them."""

    def __init__(self) -> None:
        self.outside: list[str] = []

    def __call__(self, route) -> None:
        url = route.request.url
        scheme, host = urlsplit(url).scheme, urlsplit(url).hostname
        if scheme in ("data", "blob") or host in LOCAL_HOSTS:
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()


@contextlib.contextmanager
def browser_context(**context_options) -> Iterator[tuple[object, Guard]]:
    """A fresh headless Chromium context with the guard installed; yields (context, guard)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(**context_options)
            guard = Guard()
            context.route("**/*", guard)
            yield context, guard
            context.close()
        finally:
            browser.close()
