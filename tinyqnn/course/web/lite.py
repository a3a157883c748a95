"""``python -m tinyqnn lite``: the browser course, JupyterLite with the Pyodide kernel, nothing to install.

``lessons/`` and ``exercises/`` are copied in (kernelspec set to JupyterLite's ``python``; no other cell is
touched) and tinyqnn itself is preloaded in every kernel: a wheel built from this checkout, with its pure-Python
dependency ``tqdm`` and the kernel's ``comm``, served by the site and loaded when Pyodide starts; numpy,
matplotlib and threadpoolctl come from Pyodide's own packages. ``TINYQNN_QUICK=1`` is set in the browser, so long
cells shorten themselves as in grading (see ``tinyqnn.course.quick_mode``).

Where Pyodide comes from: by default Pyodide's own distribution (its CDN), as every JupyterLite site does; with
``--offline``, a bundle of Pyodide inside the site (``pyodide/``: the core from npm, the wasm wheels the kernel
needs, each checked against the official lock; see ``tinyqnn.course.web.assets``), for classrooms without internet.

The build always starts from an empty folder: an incremental ``jupyter lite build`` was seen to drop the
``pyodideUrl`` setting silently.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from .. import grading
from . import assets
from .site import MARKER, replace_dir

CDN_PYODIDE = f"https://cdn.jsdelivr.net/pyodide/v{assets.PYODIDE_VERSION}/full/pyodide.js"
KERNELSPEC = {"name": "python", "display_name": "Python (Pyodide)", "language": "python"}
KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"
WHEELS_DIR = "wheels"  # our wheels, at the site's root
#: the kernel's worker script lives in extensions/@jupyterlite/pyodide-kernel-extension/static/; Pyodide
#: resolves a relative package URL against it, so this leads back to the site's root
WORKER_TO_ROOT = "../../../../"
PRELOAD = ("numpy", "matplotlib", "threadpoolctl")  # from Pyodide's distribution
BUILD_INFO = "tinyqnn-lite.json"


def build_wheel(root: Path, dest: Path) -> Path:
    """A wheel of tinyqnn from ``root`` (only pyproject.toml, README.md and tinyqnn/ are copied to build it)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(root / name, src / name)
        shutil.copytree(root / "tinyqnn", src / "tinyqnn", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(src), "-w", str(dest)],
                              capture_output=True, text=True)
        wheels = sorted(dest.glob("tinyqnn-*-py3-none-any.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            raise RuntimeError(f"building the tinyqnn wheel failed (exit {proc.returncode}): {proc.stderr[-400:]}")
    return wheels[0]


def stage_contents(root: Path, dest: Path) -> list[str]:
    """Copy lessons/ and exercises/ notebooks into ``dest`` with kernelspec ``python``; returns their paths."""
    written = []
    sources = sorted((root / grading.LESSONS_DIR).glob("*.ipynb"))
    sources += sorted((root / grading.EXERCISES_DIR).glob("*/*.ipynb"))
    for path in sources:
        rel = path.relative_to(root)
        nb = nbformat.read(path, as_version=4)
        nb.metadata["kernelspec"] = dict(KERNELSPEC)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, dest / rel)
        written.append(rel.as_posix())
    return written


def lite_config(pyodide_url: str, wheels: list[str]) -> dict:
    """jupyter-lite.json: the kernel's Pyodide, what it preloads, quick mode; no PyPI at run time."""
    packages = [*PRELOAD, *(f"{WORKER_TO_ROOT}{WHEELS_DIR}/{name}" for name in wheels)]
    return {"jupyter-lite-schema-version": 0, "jupyter-config-data": {
        "appName": "tinyqnn",
        "litePluginSettings": {KERNEL_PLUGIN: {
            "pyodideUrl": pyodide_url,
            "disablePyPIFallback": True,  # everything the course needs is in the site or in Pyodide's distribution
            "loadPyodideOptions": {"packages": packages, "env": {"HOME": "/home/pyodide", "TINYQNN_QUICK": "1"}},
        }},
    }}


def build_lite(out: Path, root: Path | None = None, offline: bool = False, cache: Path | None = None) -> dict:
    """Build the browser course into ``out`` from scratch; returns {"seconds", "bytes", "notebooks", "offline"}."""
    start = time.perf_counter()
    root = Path(root or grading.repo_root()).resolve()
    out = Path(out).resolve()
    work = out.parent / f".{out.name}.building"
    shutil.rmtree(work, ignore_errors=True)
    try:
        wheel_dir = work / "wheels"
        wheels = [build_wheel(root, wheel_dir)]
        wheels += [assets.pypi_wheel(req, cache) for req in assets.EXTRA_WHEELS]
        notebooks = stage_contents(root, work / "contents")
        pyodide_url = "./pyodide/pyodide.js" if offline else CDN_PYODIDE  # "./": relative to the site's root
        (work / "lite").mkdir()
        (work / "lite" / "jupyter-lite.json").write_text(
            json.dumps(lite_config(pyodide_url, [w.name for w in wheels]), indent=1) + "\n")
        # only the kernel's extension: others in the venv (nbgrader's, for one) need a Jupyter server
        labext = work / "labextensions" / "@jupyterlite" / "pyodide-kernel-extension"
        shutil.copytree(_kernel_extension_root() / "@jupyterlite" / "pyodide-kernel-extension", labext)
        jupyter = Path(sys.executable).parent / "jupyter"
        output = work / "_output"
        proc = subprocess.run([str(jupyter), "lite", "build", "--lite-dir", str(work / "lite"),
                               "--contents", str(work / "contents"), "--output-dir", str(output),
                               "--no-sourcemaps", "--ignore-sys-prefix",
                               "--FederatedExtensionAddon.extra_labextensions_path", str(work / "labextensions")],
                              capture_output=True, text=True, cwd=work)
        if proc.returncode != 0 or not (output / "index.html").is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise RuntimeError(f"jupyter lite build failed (exit {proc.returncode}):\n{tail}")
        (output / WHEELS_DIR).mkdir()
        for wheel in wheels:
            shutil.copy2(wheel, output / WHEELS_DIR / wheel.name)
        if offline:
            assets.offline_pyodide(output / "pyodide", cache)
        _check_setting(output, pyodide_url)
        (output / BUILD_INFO).write_text(json.dumps({"offline": offline, "pyodide": assets.PYODIDE_VERSION,
                                                     "wheels": [w.name for w in wheels]}, indent=1) + "\n")
        (output / MARKER).write_text("built by python -m tinyqnn lite\n")
        replace_dir(output, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"seconds": time.perf_counter() - start, "bytes": size, "notebooks": notebooks, "offline": offline}


def _kernel_extension_root() -> Path:
    """The labextensions folder holding the Pyodide kernel's extension (we include no other extension)."""
    import jupyterlite_pyodide_kernel

    found = [p for p in (Path(sys.prefix) / "share" / "jupyter" / "labextensions",
                         Path(jupyterlite_pyodide_kernel.__file__).parent / "labextension")
             if (p / "@jupyterlite" / "pyodide-kernel-extension").is_dir()]
    if not found:
        raise RuntimeError("the jupyterlite-pyodide-kernel extension is not installed; pip install -e \".[web]\"")
    return found[0]


def _check_setting(output: Path, pyodide_url: str) -> None:
    """Refuse a build whose jupyter-lite.json lost our Pyodide setting (seen after incremental builds)."""
    config = json.loads((output / "jupyter-lite.json").read_text())["jupyter-config-data"]
    got = config.get("litePluginSettings", {}).get(KERNEL_PLUGIN, {}).get("pyodideUrl")
    if got != pyodide_url:
        raise RuntimeError(f"the built jupyter-lite.json has pyodideUrl {got!r}, not {pyodide_url!r}")


def main(argv: list[str] | None = None) -> int:
    root = grading.repo_root()
    parser = argparse.ArgumentParser(prog="python -m tinyqnn lite",
                                     description="Build the browser course (JupyterLite + Pyodide): lessons and "
                                                 "exercises run in the browser, nothing to install.")
    parser.add_argument("--out", type=Path, default=root / "build" / "lite", help="output folder (default build/lite)")
    parser.add_argument("--offline", action="store_true",
                        help=f"bundle Pyodide {assets.PYODIDE_VERSION} into the site (no internet needed to use it)")
    parser.add_argument("--cache", type=Path, default=None, help="download cache (default build/web-cache)")
    args = parser.parse_args(argv)
    try:
        info = build_lite(args.out, root, args.offline, args.cache)
    except (ValueError, RuntimeError, OSError, assets.AssetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    where = "bundled (offline)" if info["offline"] else f"from {CDN_PYODIDE.rsplit('/', 1)[0]}"
    print(f"lite: {len(info['notebooks'])} notebooks in {args.out} ({info['bytes'] / 1e6:.1f} MB, "
          f"{info['seconds']:.1f} s); Pyodide {assets.PYODIDE_VERSION} {where}")
    print(f"open: python3 -m http.server -d {args.out} 8000  ->  http://127.0.0.1:8000/lab/index.html")
    return 0
