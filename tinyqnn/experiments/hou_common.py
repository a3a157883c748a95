"""Shared plumbing of the Hou et al. (2019) reproductions: resumable cells, Dask option, tables.

A *cell* is one training run, named, with a JSON-able config; its result is written atomically to
``<out>/cells/<name>.json`` as soon as it finishes. A rerun skips every cell whose file exists with the same
config (``--fresh`` recomputes), so an interrupted command resumes where it stopped. Independent cells can run
as Dask tasks (``--dask`` for a LocalCluster, ``--scheduler ADDRESS`` for a running cluster).
"""
from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np

from ..args import positive_float, positive_int
from ..utils import atomic_write_bytes, output_folder


def write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=True, default=float) + "\n").encode())


def write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats printed as given (format them first)."""
    lines = ["| " + " | ".join(map(str, headers)) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(map(str, r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def subsample(curve: Sequence[float], points: int = 200) -> tuple[list[int], list[float]]:
    """(iterations, values) at about ``points`` log-spaced iterations (1-based), for plots and JSON."""
    n = len(curve)
    if n == 0:
        return [], []
    idx = np.unique(np.geomspace(1, n, min(points, n)).astype(int)) - 1
    return [int(i) + 1 for i in idx], [float(curve[i]) for i in idx]


def add_cell_args(p: argparse.ArgumentParser) -> None:
    """The options every Hou et al. experiment shares: which stored cells to redo, progress bars, where to run."""
    p.add_argument("--fresh", action="store_true", help="recompute cells already stored in --out")
    p.add_argument("--force", action="store_true",
                   help="write into a non-empty --out that is not this command's run (replacing files of the same "
                        "names, e.g. tables.md)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (for logs)")
    p.add_argument("--dask", action="store_true", help="run independent cells as tasks on a new Dask LocalCluster")
    p.add_argument("--scheduler", default=None, help="address of a running Dask scheduler (implies --dask)")
    p.add_argument("--dask-workers", type=positive_int, default=2, help="LocalCluster processes (default 2)")
    p.add_argument("--scheduler-timeout", type=positive_float, default=10.0, metavar="SECONDS",
                   help="how long to wait for --scheduler to answer before giving up (default 10)")


#: what every Hou et al. command writes besides ``cells/*.json`` and its figures
SUMMARY_FILES = ("tables.md", "summary.json")


def experiment_folder(out: Path, command: str, args: argparse.Namespace) -> AbstractContextManager[Path]:
    """``out`` as ``command``'s run folder (``tinyqnn.utils.output_folder``): a new or empty folder or one of its
    own runs (resumed), anything else only with ``--force``; a user's ``tables.md`` there is never replaced."""
    return output_folder(out, command, args.force, SUMMARY_FILES)


def run_cells(fn: Callable[[dict[str, Any]], dict[str, Any]], cells: Sequence[dict[str, Any]], out: Path,
              args: argparse.Namespace, fresh: bool = False, progress: bool = True,
              log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Run ``fn(cell)`` for every cell (each a dict with "name" and "config") not already stored; return all results.

    Results are saved to ``out/cells/<name>.json`` one by one (in process) or as they arrive (Dask).
    """
    cell_dir = out / "cells"
    results: dict[str, dict[str, Any]] = {}
    todo = []
    for cell in cells:
        path = cell_dir / f"{cell['name']}.json"
        if path.exists() and not fresh:
            stored = json.loads(path.read_text())
            if stored.get("config") == json.loads(json.dumps(cell["config"], default=float)):
                results[cell["name"]] = stored
                continue
        todo.append(cell)
    if len(cells) - len(todo):
        log(f"resuming: {len(cells) - len(todo)} of {len(cells)} cells already in {cell_dir}/")
    if not todo:
        return results
    if getattr(args, "dask", False) or getattr(args, "scheduler", None):
        from ..distributed.dask_backend import DaskExecutor

        timeout = getattr(args, "scheduler_timeout", 10.0)
        if args.scheduler:  # say what a silent wait is for: a wrong address takes the whole timeout to fail
            log(f"connecting to the Dask scheduler at {args.scheduler} (waiting up to {timeout:g} s) ...")
        with DaskExecutor(address=args.scheduler, n_workers=args.dask_workers, connect_timeout=timeout) as ex:
            from distributed import as_completed

            futures = {ex.client.submit(fn, c, pure=False): c for c in todo}
            for future in as_completed(futures):
                cell = futures[future]
                results[cell["name"]] = future.result()
                write_json(cell_dir / f"{cell['name']}.json", results[cell["name"]])
                log(f"done {cell['name']}")
        return results
    cells_iter: Any = todo
    if progress:
        from tqdm.auto import tqdm

        cells_iter = tqdm(todo, desc="cells")
    for cell in cells_iter:
        results[cell["name"]] = fn(cell)
        write_json(cell_dir / f"{cell['name']}.json", results[cell["name"]])
    return results
