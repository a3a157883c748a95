"""The course site (`make site`) in headless Chromium: math typeset, every image loaded, nothing fetched from
outside 127.0.0.1, working links to the exercises and the browser course, and search."""
from __future__ import annotations

from pathlib import Path

import pytest

from tinyqnn.course.web import browser

pytestmark = [pytest.mark.usefixtures("browser_ready"), pytest.mark.slow]

# after MathJax: every math element typeset, no TeX errors; every <img> decoded with a real size
PAGE_STATE = """async () => {
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  const math = [...document.querySelectorAll('.math')];
  const imgs = [...document.querySelectorAll('img')];
  await Promise.all(imgs.map(i => i.decode().catch(() => null)));
  return {math: math.length, typeset: math.filter(m => m.querySelector('mjx-container')).length,
          errors: document.querySelectorAll('mjx-merror').length,
          images: imgs.map(i => [i.getAttribute('src').slice(0, 60), i.naturalWidth]),
          links: [...document.querySelectorAll('.tq-links a')].map(a => a.getAttribute('href'))};
}"""


def lesson_pages(site: Path) -> list[str]:
    pages = sorted(p.relative_to(site).as_posix() for p in (site / "lessons").glob("*.html"))
    assert len(pages) == 10, pages
    return ["intro.html", *pages]


def test_every_page_renders_its_math_and_images_offline(site_dir: Path) -> None:
    failed: list[str] = []
    seen_math = seen_images = 0
    with browser.serve(site_dir) as base, browser.browser_context() as (context, guard):
        page = context.new_page()
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        for name in lesson_pages(site_dir):
            page.goto(base + name, wait_until="load")
            state = page.evaluate(PAGE_STATE)
            assert state["typeset"] == state["math"], f"{name}: {state['math'] - state['typeset']} math not typeset"
            assert state["errors"] == 0, f"{name}: {state['errors']} MathJax errors"
            broken = [src for src, width in state["images"] if width == 0]
            assert not broken, f"{name}: images not loaded: {broken}"
            seen_math += state["math"]
            seen_images += len(state["images"])
            if name.startswith("lessons/"):
                stem = Path(name).stem
                assert f"../exercises/{stem}/{stem}.ipynb" in state["links"], (name, state["links"])
                assert any(f"path=lessons/{stem}.ipynb" in href for href in state["links"]), state["links"]
                assert (site_dir / "exercises" / stem / f"{stem}.ipynb").is_file()
                if (site_dir / "lite").is_dir():  # the browser course is included: its links lead somewhere
                    assert (site_dir / "lite" / "notebooks" / "index.html").is_file()
                    assert (site_dir / "lite" / "files" / "lessons" / f"{stem}.ipynb").is_file()
                    assert (site_dir / "lite" / "files" / "exercises" / stem / f"{stem}.ipynb").is_file()
    assert seen_math > 100 and seen_images > 20, (seen_math, seen_images)  # the lessons' math and figures exist
    assert not failed, failed
    assert not guard.outside, f"requests left 127.0.0.1: {guard.outside}"


def test_search_finds_a_lesson(site_dir: Path) -> None:
    with browser.serve(site_dir) as base, browser.browser_context() as (context, guard):
        page = context.new_page()
        page.goto(base + "search.html?q=straight-through", wait_until="load")
        page.wait_for_selector("#search-results li a", timeout=30_000)
        hits = page.eval_on_selector_all("#search-results li a", "as => as.map(a => a.getAttribute('href'))")
    assert any("06_ste" in h for h in hits), hits
    assert not guard.outside, guard.outside


def test_the_guard_catches_a_request_to_another_host(tmp_path: Path) -> None:
    # the check the two tests above rely on: a page that loads a CDN script is caught, not fetched
    (tmp_path / "index.html").write_text('<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js">'
                                         '</script><img src="https://example.org/x.png"><p>hi</p>')
    with browser.serve(tmp_path) as base, browser.browser_context() as (context, guard):
        page = context.new_page()
        page.goto(base + "index.html", wait_until="load")
    assert sorted(guard.outside) == ["https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js",
                                     "https://example.org/x.png"]
