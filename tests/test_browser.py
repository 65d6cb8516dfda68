"""The built book in a real browser: headless Chromium over localhost, network otherwise off.

Needs the built HTML (`python tools/build_book.py`) and Chromium (Debian's `chromium`
package) driven by Playwright's Python package. Every page of `_toc.yml` is checked for a
title, rendered maths, loaded figures, no error output and no request to another host; the
explorer chapter for its widgets. Screenshots go to `_build/screenshots/`.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"

pytestmark = pytest.mark.browser


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def toc_pages() -> list[str]:
    toc = (ROOT / "_toc.yml").read_text()
    root = re.search(r"root:\s*(\S+)", toc).group(1)
    return [root] + re.findall(r"file:\s*([^\s#]+)", toc)


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").exists():
        pytest.skip("the book is not built: run `python tools/build_book.py` first")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest's output readable
            pass

    handler = functools.partial(Quiet, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=exe,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


# sphinx-thebe's inline configuration script is emitted twice on every page by Jupyter Book
# 1.0.4 (extension set up twice), so the second `const THEBE_JS_URL` is a redeclaration. It is
# harmless while live code (thebe) is off, as here; every other JavaScript error fails.
# The PyData theme logs an error when the browser has no stored light/dark preference yet.
KNOWN_JS_ERRORS = (
    "Identifier 'THEBE_JS_URL' has already been declared",
    "Got invalid theme mode",
)

CHECK_PAGE = """() => {
  const main = document.querySelector('main') || document.body;
  const imgs = Array.from(main.querySelectorAll('img'));
  // Text outside code, scripts and typeset maths: where a raw $$ would mean untypeset maths.
  const prose = main.cloneNode(true);
  prose.querySelectorAll('code, pre, script, style, mjx-container, .MathJax')
    .forEach(e => e.remove());
  const text = prose.textContent;
  return {
    title: document.title,
    h1: (main.querySelector('h1') || {}).textContent || '',
    mathSource: main.querySelectorAll('.math, div.math, span.math').length,
    mathRendered: main.querySelectorAll('mjx-container').length,
    rawDisplayMath: (text.match(/\\$\\$/g) || []).length,
    rawContext: (text.match(/.{0,60}\\$\\$.{0,60}/) || [''])[0],
    images: imgs.length,
    brokenImages: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(-60)),
    errors: main.querySelectorAll('.output.error, .output_error, .cell_output .traceback').length,
    traceback: /Traceback \\(most recent call last\\)/.test(main.innerText),
    widgets: main.querySelectorAll('.jupyter-widgets, .widget-slider, .widget-box').length,
  };
}"""


@pytest.mark.parametrize("page", toc_pages())
def test_page_renders_offline(page, server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx = browser.new_context(viewport={"width": 1200, "height": 900})
    outside: list[str] = []
    js_errors: list[str] = []

    def route(r):
        host = urlparse(r.request.url).hostname
        if host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    p = ctx.new_page()
    p.on("pageerror", lambda e: js_errors.append(str(e)))
    p.on("console", lambda m: m.type == "error" and js_errors.append(m.text))
    p.on("response", lambda r: r.status >= 400 and js_errors.append(f"{r.status} {r.url}"))
    p.goto(f"{server}/{page}.html", wait_until="networkidle")
    # MathJax typesets asynchronously; wait for it where the page has maths.
    if p.evaluate("document.querySelectorAll('main .math').length") > 0:
        p.wait_for_selector("mjx-container", state="attached", timeout=20_000)
    if "explorer" in page:
        p.wait_for_selector(".jupyter-widgets, .widget-slider", state="attached", timeout=20_000)
    p.wait_for_timeout(300)
    info = p.evaluate(CHECK_PAGE)
    p.screenshot(path=str(SHOTS / f"{Path(page).name}.png"), full_page=True)
    ctx.close()

    assert info["title"].strip(), "page has no title"
    assert info["h1"].strip(), "page has no heading"
    if info["mathSource"]:
        assert info["mathRendered"] > 0, "maths not rendered by MathJax"
    assert info["rawDisplayMath"] == 0, f"raw $$ left in the text: {info['rawContext']}"
    assert not info["brokenImages"], f"figures not loaded: {info['brokenImages']}"
    assert info["errors"] == 0 and not info["traceback"], "error output on the page"
    if "explorer" in page:
        assert info["widgets"] > 0, "the explorer's widgets are missing"
    assert not outside, f"requests to other hosts: {outside[:5]}"
    js_errors = [e for e in js_errors if not any(k in e for k in KNOWN_JS_ERRORS)]
    assert not js_errors, f"JavaScript errors: {js_errors[:3]}"
    print(
        f"{page}: {info['images']} figures, {info['mathRendered']} formulas, {info['widgets']} widgets"
    )
