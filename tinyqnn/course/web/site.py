"""``python -m tinyqnn site``: every lesson as a web page (Jupyter Book 1 / Sphinx), fully offline.

Built from the committed notebooks as they are (no re-execution): their stored outputs are the figures. MathJax
is served from the site (``mathjax_path`` -> ``_static/mathjax``, from npm ``mathjax``) and every CDN default of
Jupyter Book is switched off (ipywidgets' require.js, launch buttons), so a page loads nothing from elsewhere.
Each lesson page starts with links to its exercise (a download from the site), to both in the browser course
(``lite/``, see ``tinyqnn.course.web.lite``) and to the repository when its URL is known.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

from .. import grading
from . import assets

MARKER = ".tinyqnn-site"  # written into every output folder we build; we replace only folders that carry it
LITE_DIR = "lite"  # where the browser course sits inside the site


def lesson_notebooks(root: Path) -> list[Path]:
    """``lessons/NN_*.ipynb`` in unit order."""
    found = sorted((root / grading.LESSONS_DIR).glob("[0-9][0-9]_*.ipynb"))
    if not found:
        raise ValueError(f"{root / grading.LESSONS_DIR} has no NN_*.ipynb lessons")
    return found


def repo_url(root: Path) -> str | None:
    """The repository's web address from ``git remote get-url origin`` (https form), or None."""
    proc = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True)
    url = proc.stdout.strip()
    if proc.returncode != 0 or not url:
        return None
    if url.startswith("git@"):  # git@github.com:owner/name.git -> https://github.com/owner/name
        host, _, path = url[4:].partition(":")
        url = f"https://{host}/{path}"
    return url.removesuffix(".git") if url.startswith("https://") else None


def links_html(stem: str, repo: str | None) -> str:
    """The links block under a lesson's title (raw HTML: Sphinx must not resolve these as documents)."""
    exercise = f"exercises/{stem}/{stem}.ipynb"
    items = [
        f'<a class="tq-exercise" href="../{exercise}" download>exercise notebook</a>',
        f'<a class="tq-lite-lesson" href="../{LITE_DIR}/notebooks/index.html?path=lessons/{stem}.ipynb">'
        "run this lesson in your browser</a>",
        f'<a class="tq-lite-exercise" href="../{LITE_DIR}/notebooks/index.html?path={exercise}">'
        "do the exercise in your browser</a>",
    ]
    if repo:
        items.append(f'<a class="tq-repo" href="{repo}/blob/main/lessons/{stem}.ipynb">source in the repository</a>')
    return '<p class="tq-links">' + " · ".join(items) + "</p>"


def stage(root: Path, src: Path, repo: str | None, mathjax: Path) -> list[str]:
    """Write the Jupyter Book source folder ``src``; returns the lesson page titles."""
    (src / "lessons").mkdir(parents=True)
    titles = []
    for path in lesson_notebooks(root):
        nb = nbformat.read(path, as_version=4)
        if not nb.cells or nb.cells[0].cell_type != "markdown" or not nb.cells[0].source.startswith("# "):
            raise ValueError(f"{path}: the first cell is not a markdown title (# Lesson N: ...)")
        first, _, rest = nb.cells[0].source.partition("\n")
        titles.append(first[2:].strip())
        # right under the title (this copy only): a raw HTML block needs blank lines around it
        nb.cells[0].source = f"{first}\n\n{links_html(path.stem, repo)}\n\n{rest.lstrip()}"
        nbformat.write(nb, src / "lessons" / path.name)
    # not under src/_static: Jupyter Book adds every .js found there to every page
    shutil.copytree(mathjax / "es5", src / "_mathjax" / "mathjax")
    chapters = "\n".join(f"- file: lessons/{p.stem}" for p in lesson_notebooks(root))
    (src / "_toc.yml").write_text(f"format: jb-book\nroot: intro\nchapters:\n{chapters}\n")
    lines = ["# tinyqnn: the course", "",
             "Train a neural network whose activations are quantized to 1–4 bits, from the chain rule up, in plain "
             "NumPy, and see why the straight-through estimator works.", "",
             "Each lesson below is a page with its figures; under its title are links to its graded exercise "
             f'and to both in the <a href="{LITE_DIR}/lab/index.html">browser course</a> (JupyterLite: '
             "Python runs in your browser, nothing to install).", ""]
    lines += [f"{i}. {{doc}}`{t} <lessons/{p.stem}>`" for i, (t, p) in
              enumerate(zip(titles, lesson_notebooks(root)), 1)]
    if repo:
        lines += ["", f'The course\'s source: <a href="{repo}">{repo}</a>.']
    (src / "intro.md").write_text("\n".join(lines) + "\n")
    config = {
        "title": "tinyqnn",
        "author": "the tinyqnn authors",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "off"},  # the committed outputs are the figures
        "launch_buttons": {"notebook_interface": "classic", "binderhub_url": "", "jupyterhub_url": "",
                           "colab_url": "", "thebe": False},
        "html": {"use_repository_button": bool(repo), "use_issues_button": False, "use_edit_page_button": False,
                 "extra_footer": ""},
        "sphinx": {"config": {
            "mathjax_path": "mathjax/tex-chtml.js",  # relative: served from the site's _static/
            "nb_ipywidgets_js": {},  # myst-nb would add require.js and the widget loader from CDNs
            "html_static_path": ["_mathjax"],  # copied into the site's _static/
        }},
    }
    if repo:
        config["repository"] = {"url": repo, "branch": "main"}
    # JSON is YAML: no YAML writer needed
    (src / "_config.yml").write_text(json.dumps(config, indent=1) + "\n")
    return titles


def replace_dir(built: Path, out: Path) -> None:
    """Move ``built`` to ``out``, replacing ``out`` only if it is empty or one of our own builds."""
    if out.exists():
        if not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).is_file()):
            raise ValueError(f"{out} exists and is not a tinyqnn web build (no {MARKER}); choose another --out")
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    built.replace(out)


def build_site(out: Path, root: Path | None = None, repo: str | None = None, lite: Path | None = None,
               cache: Path | None = None) -> dict:
    """Build the course site into ``out``; returns {"seconds", "bytes", "pages", "lite"}.

    ``lite``: a built browser course (``python -m tinyqnn lite``) copied in as ``out/lite``; without it the
    browser links point at ``lite/`` for the host to fill.
    """
    start = time.perf_counter()
    root = Path(root or grading.repo_root()).resolve()
    out = Path(out).resolve()
    mathjax = assets.npm_package("mathjax", assets.MATHJAX_VERSION, cache)
    work = out.parent / f".{out.name}.building"
    shutil.rmtree(work, ignore_errors=True)
    try:
        titles = stage(root, work / "src", repo, mathjax)
        jb = Path(sys.executable).parent / "jupyter-book"
        if not jb.is_file():
            raise RuntimeError(f"no {jb}: install the web extra, pip install -e \".[web]\" (or make site)")
        proc = subprocess.run([str(jb), "build", str(work / "src"), "--path-output", str(work), "--builder", "html"],
                              capture_output=True, text=True)
        html = work / "_build" / "html"
        if proc.returncode != 0 or not (html / "index.html").is_file():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise RuntimeError(f"jupyter-book build failed (exit {proc.returncode}):\n{tail}")
        for path in lesson_notebooks(root):
            shutil.copytree(root / grading.EXERCISES_DIR / path.stem, html / "exercises" / path.stem)
        if lite is not None:
            shutil.copytree(lite, html / LITE_DIR)
        (html / MARKER).write_text("built by python -m tinyqnn site\n")
        replace_dir(html, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"seconds": time.perf_counter() - start, "bytes": size, "pages": titles, "lite": lite is not None}


def main(argv: list[str] | None = None) -> int:
    root = grading.repo_root()
    parser = argparse.ArgumentParser(prog="python -m tinyqnn site",
                                     description="Build the course site (every lesson as a page), offline.")
    parser.add_argument("--out", type=Path, default=root / "build" / "site", help="output folder (default build/site)")
    parser.add_argument("--lite", type=Path, default=None,
                        help="a built browser course to include as lite/ (default: build/lite if it exists)")
    parser.add_argument("--repo-url", default=None, help="repository web address (default: git remote origin)")
    parser.add_argument("--cache", type=Path, default=None, help="download cache (default build/web-cache)")
    args = parser.parse_args(argv)
    lite = args.lite or (root / "build" / "lite" if (root / "build" / "lite" / MARKER).is_file() else None)
    if lite is not None and not (lite / MARKER).is_file():
        print(f"error: {lite} is not a browser course built by `python -m tinyqnn lite`", file=sys.stderr)
        return 2
    try:
        info = build_site(args.out, root, args.repo_url or repo_url(root), lite, args.cache)
    except (ValueError, RuntimeError, OSError, assets.AssetError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"site: {len(info['pages'])} lessons in {args.out} ({info['bytes'] / 1e6:.1f} MB, {info['seconds']:.1f} s)"
          + ("" if info["lite"] else "; no browser course included (run `make lite` first for the lite/ links)"))
    print(f"open: python3 -m http.server -d {args.out} 8000  ->  http://127.0.0.1:8000/")
    return 0
