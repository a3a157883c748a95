"""Drive the browser course in headless Chromium: open a notebook, run it, read its outputs.

JupyterLab's API is reached through ``window.jupyterapp``, which JupyterLite exposes when the page config says
``exposeAppInBrowser``; we add that setting to the served ``jupyter-lite.json`` for the test only (a route), so the
built site stays as learners get it.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

APP = "notebooks/index.html"  # the Notebook interface: what the site's links open

# open -> kernel ready; returns seconds from navigation start to an idle kernel that imported tinyqnn
WAIT_KERNEL = """async () => {
  while (!window.jupyterapp || !jupyterapp.shell.currentWidget || !jupyterapp.shell.currentWidget.sessionContext) {
    await new Promise(r => setTimeout(r, 100));
  }
  const ctx = jupyterapp.shell.currentWidget.sessionContext;
  await ctx.ready;
  while (!ctx.session || !ctx.session.kernel) { await new Promise(r => setTimeout(r, 100)); }
  const future = ctx.session.kernel.requestExecute({code: 'import tinyqnn', silent: true});
  const reply = await future.done;
  return reply.content.status;
}"""

RUN_ALL = """async () => {
  const panel = jupyterapp.shell.currentWidget;
  await jupyterapp.commands.execute('notebook:run-all-cells');
  const cells = [];
  for (const cell of panel.content.model.cells) {
    const out = cell.type === 'code' ? cell.toJSON() : {};
    cells.push({type: cell.type, id: (cell.getMetadata('nbgrader') || {}).grade_id || null,
                count: out.execution_count ?? null, outputs: out.outputs || []});
  }
  return cells;
}"""

# run the notebook's last cell (the exercises' score cell) on its own, as a learner does; returns its outputs
RUN_LAST = """async () => {
  const notebook = jupyterapp.shell.currentWidget.content;
  notebook.activeCellIndex = notebook.widgets.length - 1;
  await jupyterapp.commands.execute('notebook:run-cell');
  let last = null;
  for (const cell of notebook.model.cells) { last = cell; }
  return last.toJSON().outputs || [];
}"""

SET_SOURCES = """(sources) => {
  const panel = jupyterapp.shell.currentWidget;
  let n = 0;
  for (const cell of panel.content.model.cells) {
    const id = (cell.getMetadata('nbgrader') || {}).grade_id;
    if (id && id in sources) { cell.sharedModel.setSource(sources[id]); n += 1; }
  }
  return n;
}"""


def output_text(outputs: list[dict]) -> str:
    """The stream text of a cell's outputs (stdout and stderr), joined."""
    parts = []
    for out in outputs:
        text = out.get("text", "")
        parts.append("".join(text) if isinstance(text, list) else text)
    return "".join(parts)


@dataclass
class Run:
    """One notebook run in the browser: every cell with its grade_id, execution count and outputs."""
    cells: list[dict]
    kernel_seconds: float = 0.0
    run_seconds: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)  # grade_id or "cell N" -> "Ename: evalue"

    def __post_init__(self) -> None:
        for i, cell in enumerate(self.cells):
            for out in cell["outputs"]:
                if out.get("output_type") == "error":
                    self.errors[cell["id"] or f"cell {i}"] = f"{out.get('ename')}: {out.get('evalue')}"[:300]

    @property
    def reached_end(self) -> bool:
        """True when the last code cell ran."""
        code = [c for c in self.cells if c["type"] == "code"]
        return bool(code) and code[-1]["count"] is not None


def expose_app(route) -> None:
    """Route handler for ``**/jupyter-lite.json``: the file as served, plus ``exposeAppInBrowser``."""
    response = route.fetch()
    config = json.loads(response.text())
    config.setdefault("jupyter-config-data", {})["exposeAppInBrowser"] = True
    route.fulfill(response=response, body=json.dumps(config))


def open_notebook(page, base: str, path: str, timeout_s: float = 600) -> float:
    """Open ``path`` (e.g. ``lessons/01_chain_rule.ipynb``) and wait for its kernel; returns the seconds taken."""
    page.set_default_timeout(timeout_s * 1000)
    start = time.perf_counter()
    page.goto(f"{base}{APP}?path={path}", wait_until="load")
    status = page.evaluate(WAIT_KERNEL)
    if status != "ok":
        raise RuntimeError(f"`import tinyqnn` in the browser kernel ended with status {status!r}")
    return time.perf_counter() - start


def run_all(page) -> tuple[list[dict], float]:
    """Run every cell of the open notebook (stops at the first error, as JupyterLab does); (cells, seconds)."""
    start = time.perf_counter()
    cells = page.evaluate(RUN_ALL)
    return cells, time.perf_counter() - start


def run_notebook(context, base: str, path: str, sources: dict[str, str] | None = None) -> Run:
    """Open ``path`` in a new page, optionally replace cells' sources (grade_id -> source), run it all."""
    page = context.new_page()
    try:
        kernel_seconds = open_notebook(page, base, path)
        if sources:
            replaced = page.evaluate(SET_SOURCES, sources)
            if replaced != len(sources):
                raise RuntimeError(f"{path}: replaced {replaced} of {len(sources)} cells {sorted(sources)}")
        cells, seconds = run_all(page)
        return Run(cells, kernel_seconds, seconds)
    finally:
        page.close()
