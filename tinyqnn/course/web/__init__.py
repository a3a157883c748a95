"""The course on the web: a static course site (Jupyter Book 1) and a browser course (JupyterLite + Pyodide).

- ``assets``: the pinned third-party files both need (MathJax, Pyodide, wasm wheels), fetched through the
  package registries once and checked against pinned hashes;
- ``site``: ``python -m tinyqnn site``, every lesson as a web page, offline (no CDN);
- ``lite``: ``python -m tinyqnn lite``, lessons and exercises running in the browser on Pyodide;
- ``browser``: a local static server and headless Chromium with a guard on every request (tests, measurements);
- ``measure``: ``python -m tinyqnn web-measure``, build times, sizes and browser-vs-CPython run times.

Nothing here is imported by the rest of tinyqnn; it needs the ``web`` extra (``pip install -e ".[web]"``).
"""
