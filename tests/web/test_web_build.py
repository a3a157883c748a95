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
