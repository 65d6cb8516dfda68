"""The built book in a real browser: headless Chromium over localhost, network otherwise off.

Needs the built HTML (`python tools/build_book.py`) and Chromium (Debian's `chromium`
package) driven by Playwright's Python package. Every page of `_toc.yml` is checked for a
title, rendered maths, loaded figures, no error output and no request to another host; the
explorer chapter for its widgets, for the static form of its explorer (kernel-only controls
disabled under a notice, numbers that agree with the path shown, a slider and mode buttons
that still move through the frames without a kernel) and for its gallery of 90
precomputed paths (a 10 x 10 grid of thumbnails, each opening its strip). Screenshots go to
`_build/screenshots/`.

The live foliation explorer (book/foliation_explorer/explorer.html, included by chapter 4)
is also tested on its own, wrapped in a minimal page (no build needed), at a desktop and a
phone-sized viewport: the path it draws must agree with `manifoldlib.horizontal_path` on
the same weights, and the ReLU/tanh toggle must change the picture.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"

pytestmark = pytest.mark.browser


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


# The PyData theme logs an error when the browser has no stored light/dark preference yet;
# every other JavaScript error fails (the doubled `const THEBE_JS_URL` of Jupyter Book 1.0.4
# is removed by book/_ext/script_once.py).
KNOWN_JS_ERRORS = ("Got invalid theme mode",)

# A file name or hash as alt text (what myst-nb writes when a cell gives none).
HASHY = re.compile(r"[0-9a-f]{16}|\.(png|jpe?g|svg)\b|_images/", re.I)

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
    // a lazy image in a hidden part (a closed strip of chapter 17's gallery) is not asked for yet
    brokenImages: imgs.filter(i => !(i.loading === 'lazy' && !i.offsetParent))
      .filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(-60)),
    errors: main.querySelectorAll('.output.error, .output_error, .cell_output .traceback').length,
    traceback: /Traceback \\(most recent call last\\)/.test(main.innerText),
    widgets: main.querySelectorAll('.jupyter-widgets, .widget-slider, .widget-box').length,
    // output figures (myst-nb writes them under _images/ named by their hash): each must sit
    // in a numbered, captioned figure and have alt text that is not a file name or hash
    // Output figures only: a widget's frames (chapter 17's explorer) and images inside an HTML
    // output (its path gallery) are not figures; they carry their own alt text.
    figures: Array.from(main.querySelectorAll('.cell_output img'))
      .filter(i => !i.closest('.jupyter-widgets, .widget-area, .text_html'))
      .map(i => {
      const fig = i.closest('figure');
      const cap = fig && fig.querySelector('figcaption');
      return {
        src: i.getAttribute('src').slice(-30),
        alt: i.getAttribute('alt') || '',
        caption: cap ? cap.textContent.trim() : '',
      };
    }),
  };
}"""


def _offline_page(browser, viewport, *, console: bool = True):
    """A page whose requests to any host but this one are aborted and recorded.

    Returns the context, the page, the list of outside URLs asked for and the list of
    JavaScript errors (page errors, and console errors when ``console``).
    """
    ctx = browser.new_context(viewport=viewport)
    outside, errors = [], []

    def route(r):
        if urlparse(r.request.url).hostname in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    p = ctx.new_page()
    p.on("pageerror", lambda e: errors.append(str(e)))
    if console:
        p.on("console", lambda m: m.type == "error" and errors.append(m.text))
    return ctx, p, outside, errors


@pytest.mark.parametrize("page", toc_pages())
def test_page_renders_offline(page, server, browser):
    SHOTS.mkdir(parents=True, exist_ok=True)
    ctx, p, outside, js_errors = _offline_page(browser, {"width": 1200, "height": 900})
    p.on("response", lambda r: r.status >= 400 and js_errors.append(f"{r.status} {r.url}"))
    p.goto(f"{server}/{page}.html", wait_until="networkidle")
    # MathJax typesets asynchronously; wait for it where the page has maths.
    if p.evaluate("document.querySelectorAll('main .math').length") > 0:
        p.wait_for_selector("mjx-container", state="attached", timeout=60_000)
    if "explorer" in page:
        p.wait_for_selector(".jupyter-widgets, .widget-slider", state="attached", timeout=60_000)
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
    for fig in info["figures"]:
        assert re.match(r"Fig\. \d+ \S", fig["caption"]), (
            f"figure without a numbered caption: {fig}"
        )
        alt = fig["alt"]
        assert len(alt.split()) >= 4 and not HASHY.search(alt), f"alt text says nothing: {fig}"
    assert not outside, f"requests to other hosts: {outside[:5]}"
    js_errors = [e for e in js_errors if not any(k in e for k in KNOWN_JS_ERRORS)]
    assert not js_errors, f"JavaScript errors: {js_errors[:3]}"
    print(
        f"{page}: {info['images']} figures, {info['mathRendered']} formulas, {info['widgets']} widgets"
    )


# --- the live foliation explorer (book/foliation_explorer, included by chapter 4) -----------

EXPLORER = ROOT / "book" / "foliation_explorer"


@pytest.fixture(scope="module")
def explorer_page(tmp_path_factory):
    """The explorer fragment wrapped in a minimal page, served from localhost."""
    folder = tmp_path_factory.mktemp("explorer")
    fragment = (EXPLORER / "explorer.html").read_text()
    (folder / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>explorer</title></head><body>{fragment}</body></html>"
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    httpd.shutdown()


def _open_explorer(browser, url, viewport):
    ctx, p, outside, errors = _offline_page(browser, viewport)
    p.goto(url, wait_until="networkidle")
    p.wait_for_selector("#fx-root[data-ready='1']", state="attached", timeout=60_000)
    return ctx, p, outside, errors


def _click_plane(p, x, y, box):
    """Click the plane at world coordinates (x, y) in [-box, box]^2."""
    r = p.locator("#fx-root .fx-plane").bounding_box()
    p.mouse.click(
        r["x"] + (x + box) / (2 * box) * r["width"], r["y"] + (box - y) / (2 * box) * r["height"]
    )


@pytest.mark.parametrize(
    "viewport", [{"width": 1000, "height": 900}, {"width": 375, "height": 740}]
)
def test_live_explorer_agrees_with_manifoldlib(viewport, explorer_page, browser):
    import json
    import sys
    import warnings

    import torch

    sys.path.insert(0, str(ROOT / "tools"))
    import export_toy_explorer as ex

    import manifoldlib as ml

    weights = json.loads((EXPLORER / "weights.json").read_text())
    box = weights["paths"]["box"]
    ctx, p, outside, errors = _open_explorer(browser, explorer_page, viewport)
    width = p.evaluate("document.querySelector('#fx-root .fx-plane').getBoundingClientRect().width")
    assert width <= viewport["width"], "the explorer is wider than the screen"
    SHOTS.mkdir(parents=True, exist_ok=True)
    A, B = (-1.5, 0.5), (-1.0, -1.5)  # chapter 4's A and B (classes 0 and 1 of the moons)
    _click_plane(p, *A, box)  # a point: its leaf and kernel direction
    _click_plane(p, *B, box)  # a target: Algorithm 1 both ways
    state = p.evaluate("window.foliationExplorer.finish()")
    p.screenshot(path=str(SHOTS / f"explorer-{viewport['width']}.png"), full_page=True)
    assert state["model"] == "moons-relu"
    got_a, got_b = torch.tensor(state["point"]), torch.tensor(state["target"])
    assert (got_a - torch.tensor(A)).abs().max() < 0.03  # a click is accurate to a pixel
    assert (got_b - torch.tensor(B)).abs().max() < 0.03

    net = ex.load_exported(weights["models"]["moons-relu"])
    s = weights["paths"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="horizontal_path relies on Theorem 3.1")
        ref = ml.horizontal_path(
            net,
            got_a[None].double(),
            got_b[None].double(),
            step_size=s["step_size"],
            max_steps=s["max_steps"],
            threshold=s["threshold"],
            progress=False,
        )
    js = torch.tensor(state["exact"]["points"], dtype=torch.float64)
    py = ref.points[:, 0]
    assert int(ref.steps_taken[0]) == state["exact"]["steps"]
    assert state["exact"]["stop"].replace(" ", "_") == ref.stop_reasons[0].replace(" ", "_")
    for k in (0, len(js) // 4, len(js) // 2, len(js) - 1):
        assert (js[k] - py[k]).norm() < 1e-6, f"step {k}: browser {js[k]} vs manifoldlib {py[k]}"
    # the kernel direction the page shows is orthogonal to D_x (manifoldlib's projection)
    ker = torch.tensor(state["leaf"]["kernel"], dtype=torch.float64)[None]
    assert ml.tangent_projection(net, got_a[None].double(), ker).norm() < 1e-9
    # the paper's least squares leaves D_x; the exact path does not
    assert max(state["lsq"]["offShare"]) > 0.5 and max(state["exact"]["offShare"]) < 1e-9

    # the distance plot's axis is distance / initial: its "1" tick at the initial distance
    ticks = state["ticks"]
    assert abs(ticks["one"] - ticks["start"]) < 0.5, f"the '1' tick is not at d0: {ticks}"
    # touch targets of at least 24 CSS px (WCAG 2.5.8)
    small = p.evaluate(
        "Array.from(document.querySelectorAll('#fx-root button, #fx-root select, "
        "#fx-root input, #fx-root label')).map(e => e.getBoundingClientRect())"
        ".filter(r => r.height < 24).length"
    )
    assert small == 0, f"{small} explorer controls are under 24 px high"
    # the keyboard reaches the plane: Enter picks the cursor, arrows move it
    plane = p.locator("#fx-root .fx-plane")
    plane.focus()
    p.keyboard.press("Escape")
    p.keyboard.press("Enter")
    for _ in range(3):
        p.keyboard.press("ArrowRight")
    p.keyboard.press("Enter")
    keyed = p.evaluate("window.foliationExplorer.finish()")
    step = box / 24
    assert keyed["point"] == [0, 0] and abs(keyed["target"][0] - 3 * step) < 1e-9, keyed["target"]
    assert keyed["exact"] is not None, "no path from the keyboard's point and target"
    _click_plane(p, *A, box)
    _click_plane(p, *B, box)
    p.evaluate("window.foliationExplorer.finish()")

    before = p.evaluate("window.foliationExplorer.signature()")
    p.locator("#fx-root .fx-act").click()  # ReLU -> tanh
    after = p.evaluate("window.foliationExplorer.finish()")
    assert after["model"] == "moons-tanh"
    assert p.evaluate("window.foliationExplorer.signature()") != before, "picture unchanged"
    bench = p.evaluate("window.foliationExplorer.benchmarkDrag(30)")
    print(f"explorer at {viewport['width']} px: drag redraw {bench['ms_per_frame']:.1f} ms/frame")
    ctx.close()
    assert not outside, f"requests to other hosts: {outside[:3]}"
    assert not errors, f"JavaScript errors: {errors[:3]}"


# --- chapter 17 on the static page: the explorer's static form and the path gallery ---------

EXPLORER_PAGE = "book/17_explorer"


def _open_built(browser, server, page):
    viewport = {"width": 1200, "height": 900}
    ctx, p, outside, errors = _offline_page(browser, viewport, console=False)
    p.goto(f"{server}/{page}.html", wait_until="networkidle")
    return ctx, p, outside, errors


def test_gallery_opens_strips(server, browser):
    """10 x 10 grid: 90 end-point thumbnails (+ 10 on the diagonal), each opening its strip."""
    ctx, p, outside, errors = _open_built(browser, server, EXPLORER_PAGE)
    grid = p.locator("#path-gallery .pg-grid")
    assert grid.count() == 1, "the gallery is not on the page"
    links = p.locator("#path-gallery .pg-grid a")
    assert links.count() == 90
    assert p.locator("#path-gallery .pg-grid img.pg-diag").count() == 10
    broken = p.evaluate(
        "Array.from(document.querySelectorAll('#path-gallery .pg-grid img'))"
        ".filter(i => !(i.complete && i.naturalWidth > 0)).length"
    )
    assert broken == 0, f"{broken} gallery thumbnails did not load"
    # the strips' frames are files loaded lazily (tools/build_book.py): none before a click
    lazy = p.evaluate(
        "Array.from(document.querySelectorAll('#path-gallery .pg-strip img'))"
        ".map(i => [i.loading, i.src.startsWith('data:'), i.complete && i.naturalWidth > 0])"
    )
    assert lazy and all(lz == "lazy" and not data for lz, data, _ in lazy), "frames not lazy"
    assert not any(done for *_, done in lazy), "hidden strips' frames were loaded with the page"
    strip = p.locator("#path-gallery-3-8")
    assert not strip.is_visible(), "a strip is open before any click"
    history = p.evaluate("history.length")
    p.locator('#path-gallery .pg-grid a[href="#path-gallery-3-8"]').click()
    p.wait_for_timeout(200)
    assert strip.is_visible(), "clicking the thumbnail did not open its strip"
    assert p.locator("#path-gallery .pg-strip:visible").count() == 1
    frames = strip.locator("figure")
    assert frames.count() >= 2
    p.wait_for_function(
        "Array.from(document.querySelectorAll('#path-gallery-3-8 img'))"
        ".every(i => i.complete && i.naturalWidth > 0)",
        timeout=30_000,
    )  # the opened strip's frames load
    # the strip's numbers are its own path's: the last frame is the step where it stopped
    taken = int(strip.get_attribute("data-steps-taken"))
    steps = [int(s) for s in strip.locator("img").evaluate_all("l => l.map(i => i.dataset.step)")]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == taken
    assert f"{taken} steps" in strip.locator("p").inner_text()
    # another thumbnail replaces it
    p.locator('#path-gallery .pg-grid a[href="#path-gallery-0-7"]').click()
    p.wait_for_timeout(200)
    assert p.locator("#path-gallery-0-7").is_visible() and not strip.is_visible()
    # the reader's place: no history entry per thumbnail, and a way back to the grid
    assert p.evaluate("history.length") == history, "each thumbnail added a history entry"
    p.locator("#path-gallery-0-7 a.pg-back").click()
    p.wait_for_timeout(200)
    assert not p.locator("#path-gallery-0-7").is_visible(), "back to the grid kept the strip"
    thumb = p.locator('#path-gallery .pg-grid a[href="#path-gallery-0-7"]').bounding_box()
    assert thumb is not None and 0 <= thumb["y"] < 900, "back to the grid is not at the thumbnail"
    SHOTS.mkdir(parents=True, exist_ok=True)
    p.screenshot(path=str(SHOTS / "17_gallery.png"), full_page=False)
    ctx.close()
    assert not outside, f"requests to other hosts: {outside[:3]}"


def test_static_explorer_is_honest(server, browser):
    """Kernel-only controls disabled under a notice; the numbers agree with the path shown."""
    ctx, p, outside, errors = _open_built(browser, server, EXPLORER_PAGE)
    p.wait_for_selector(".widget-slider", state="attached", timeout=60_000)
    p.wait_for_timeout(500)
    text = p.locator("main").inner_text()
    assert "No Python kernel on this page" in text, "the one-line notice is missing"
    state = p.evaluate(
        """() => {
      const buttons = Array.from(document.querySelectorAll('main .jupyter-widgets button'))
        .filter(b => b.offsetParent !== null && /compute/.test(b.textContent));
      const boxes = Array.from(document.querySelectorAll('main .jupyter-widgets input'))
        .filter(i => i.offsetParent !== null && i.type !== 'range');
      const status = Array.from(document.querySelectorAll('main .widget-html-content'))
        .map(e => e.textContent).filter(t => /steps taken of at most/.test(t))
        .filter((t, k, all) => all.indexOf(t) === k);
      return {
        buttons: buttons.map(b => b.disabled),
        boxes: boxes.map(i => [i.disabled, i.value]),
        status,
      };
    }"""
    )
    assert state["buttons"] and all(state["buttons"]), f"a live compute button: {state}"
    assert state["boxes"] and all(d for d, _ in state["boxes"]), f"a live box: {state}"
    # the visible boxes (source, target, max steps, steps taken) agree with the status line
    values = [int(v) for _, v in state["boxes"]]
    assert len(values) == 4, state
    src, tgt, most, taken = values
    assert any(
        f"from image {src} (target {tgt}): {taken} steps taken of at most {most}" in s
        for s in state["status"]
    ), state
    ctx.close()
    assert not outside, f"requests to other hosts: {outside[:3]}"
    errors = [e for e in errors if not any(k in e for k in KNOWN_JS_ERRORS)]
    assert not errors, f"JavaScript errors: {errors[:3]}"


VISIBLE_CAPTIONS = """() => Array.from(document.querySelectorAll('main .widget-html-content'))
  .filter(e => e.offsetParent !== null).map(e => e.textContent)
  .filter(t => /^step \\d+:/.test(t))"""


def test_static_explorer_scrubs_without_a_kernel(server, browser):
    """The slider and the mode buttons work on the static page (browser links to Stacks)."""
    ctx, p, outside, errors = _open_built(browser, server, EXPLORER_PAGE)
    p.wait_for_selector(".widget-slider", state="attached", timeout=60_000)
    p.wait_for_timeout(500)
    # the frames' steps as the chapter printed them (from the path itself)
    printed = re.search(r"steps shown: \[([0-9, ]+)\]", p.locator("main").inner_text())
    assert printed, "the chapter's list of steps shown is missing"
    expected = [int(s) for s in printed.group(1).split(",")]
    handle = p.locator("main .noUi-handle").locator("visible=true")
    assert handle.count() == 1
    seen = []
    for _ in expected:
        [caption] = p.evaluate(VISIBLE_CAPTIONS)  # one frame shown at a time
        seen.append(int(re.match(r"step (\d+):", caption).group(1)))
        assert "distance to target" in caption
        handle.first.focus()
        p.keyboard.press("ArrowRight")
        p.wait_for_timeout(150)
    assert seen == expected, f"the slider showed steps {seen}, the path has {expected}"
    # the mode buttons switch to the other path's view and to its own settings
    p.locator("main .widget-toggle-button", has_text="across leaves").click()
    p.wait_for_timeout(300)
    [caption] = p.evaluate(VISIBLE_CAPTIONS)
    assert caption.startswith("step 0:") and "distance from start" in caption
    boxes = p.evaluate(
        "Array.from(document.querySelectorAll('main .jupyter-widgets input'))"
        ".filter(i => i.offsetParent !== null && i.type !== 'range')"
        ".map(i => [i.disabled, Number(i.value)])"
    )
    status = re.search(
        r"across leaves path from image (\d+) \(seed (\d+)\): (\d+) steps taken of at most (\d+)",
        p.locator("main").inner_text(),
    )
    assert status and all(d for d, _ in boxes), (status, boxes)
    assert [v for _, v in boxes] == [int(g) for g in status.group(1, 2, 4, 3)]
    ctx.close()
    assert not outside, f"requests to other hosts: {outside[:3]}"
    errors = [e for e in errors if not any(k in e for k in KNOWN_JS_ERRORS)]
    assert not errors, f"JavaScript errors: {errors[:3]}"


# --- phones and laptops: the contents menu (issue 27) ----------------------------------------

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True}
LAPTOP = {"viewport": {"width": 1366, "height": 900}}


def test_menu_opens_on_a_phone(server, browser):
    """Tapping ☰ at 390 px opens the contents (it did nothing while the theme's hidden header
    buttons came first; book/_templates/sections/header.html removes them)."""
    ctx = browser.new_context(**PHONE)
    p = ctx.new_page()
    p.goto(f"{server}/book/04_toy_foliations.html", wait_until="networkidle")
    toc = p.locator("#pst-primary-sidebar-modal a.reference.internal", has_text="Frobenius")
    assert not toc.first.is_visible(), "the contents are showing before the tap"
    toggle = p.locator("button.primary-toggle:visible")
    assert toggle.count() == 1, "one visible ☰ button"
    toggle.first.tap()
    p.wait_for_timeout(400)
    assert p.evaluate("document.querySelector('#pst-primary-sidebar-modal').open")
    assert toc.first.is_visible(), "tapping ☰ did not show the contents"
    ctx.close()


def test_menu_collapses_the_sidebar_on_a_laptop(server, browser):
    """At 1366 px ☰ hides the sidebar (and a second click brings it back)."""
    ctx = browser.new_context(**LAPTOP)
    p = ctx.new_page()
    p.goto(f"{server}/book/04_toy_foliations.html", wait_until="networkidle")
    sidebar = p.locator("#pst-primary-sidebar")

    def shown():
        box = sidebar.bounding_box()
        return box is not None and box["x"] + box["width"] > 1

    assert shown(), "the sidebar is hidden on a laptop before any click"
    p.locator("button.primary-toggle:visible").first.click()
    p.wait_for_timeout(400)
    assert not shown(), "☰ did not collapse the sidebar"
    assert not p.evaluate("document.querySelector('#pst-primary-sidebar-modal').open")
    p.locator("button.primary-toggle:visible").first.click()
    p.wait_for_timeout(400)
    assert shown(), "☰ did not bring the sidebar back"
    ctx.close()


# --- phones: formulas, accessibility (axe-core), screenshots ---------------------------------

AXE = ROOT / "vendor" / "node_modules" / "axe-core" / "axe.min.js"
# Committed screenshots (small PNGs of the first screen), so that changes to the look show up
# in review: the start page, chapter 4 and chapter 17 at a phone's and a laptop's width.
LOOK = ROOT / "tests" / "screenshots"
LOOK_PAGES = ("book/intro", "book/04_toy_foliations", "book/17_explorer")
# Page loads of the phone tests: generous, for a busy shared machine (a few s in CI).
NAV_TIMEOUT = 180_000

# An inline formula wider than its column (book.js marks it; book.css lets it scroll in place).
OVERFLOWING = """() => Array.from(document.querySelectorAll('main mjx-container:not([display="true"])'))
  .filter(m => m.offsetParent !== null).filter(m => {
    const col = m.parentElement.closest('p, li, dd, dt, td, th, figcaption, div, section');
    const r = m.getBoundingClientRect(), c = col.getBoundingClientRect();
    return r.left < c.left - 1 || r.right > c.right + 1;
  }).map(m => m.textContent.slice(0, 60))"""

# axe-core's rules, run offline; violations of impact "serious" or "critical" fail.
RUN_AXE = """async () => {
  const r = await axe.run(document.querySelector('main') ? 'main' : document, {
    resultTypes: ['violations'],
  });
  return r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => ({id: v.id, impact: v.impact, n: v.nodes.length,
                where: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
}"""


def _settled(p):
    """Wait for MathJax and book.js's formula check (and the widgets, on chapter 17)."""
    p.wait_for_selector("html[data-formulas-checked]", state="attached", timeout=NAV_TIMEOUT)
    if p.locator("main .jupyter-widgets, main script[type*='widget-view']").count():
        p.wait_for_selector(".widget-slider", state="attached", timeout=60_000)
    p.wait_for_timeout(200)


@pytest.mark.parametrize("page", toc_pages())
def test_phone_formulas_and_accessibility(page, server, browser):
    """At 390 px no inline formula runs out of its column; axe-core finds no serious issue."""
    if not AXE.is_file():
        pytest.skip("axe-core is not installed: run `python tools/build_book.py` (npm ci)")
    ctx = browser.new_context(**PHONE)
    p = ctx.new_page()
    p.goto(f"{server}/{page}.html", wait_until="networkidle", timeout=NAV_TIMEOUT)
    _settled(p)
    over = p.evaluate(OVERFLOWING)
    scrolled = int(p.evaluate("document.documentElement.dataset.formulasChecked"))
    p.add_script_tag(path=str(AXE))
    serious = p.evaluate(RUN_AXE)
    ctx.close()
    print(f"{page}: {scrolled} wide inline formulas scroll in place; axe serious: {serious}")
    assert not over, f"inline formulas wider than their column at 390 px: {over[:3]}"
    assert not serious, f"axe-core: {serious}"


def _small_png(path: Path) -> None:
    """Re-save a screenshot with a 64-colour palette (about a third of the size)."""
    from PIL import Image

    with Image.open(path) as im:
        small = im.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


@pytest.mark.parametrize("form", [PHONE, LAPTOP], ids=["390", "1366"])
def test_screenshots_for_review(form, server, browser):
    """The first screen of the start page, chapter 4 and chapter 17, committed as PNGs."""
    LOOK.mkdir(parents=True, exist_ok=True)
    width = form["viewport"]["width"]
    ctx = browser.new_context(**form)
    for page in LOOK_PAGES:
        p = ctx.new_page()
        p.goto(f"{server}/{page}.html", wait_until="networkidle", timeout=NAV_TIMEOUT)
        _settled(p)
        shot = LOOK / f"{Path(page).name}-{width}.png"
        p.screenshot(path=str(shot), full_page=False, scale="css")
        p.close()
        _small_png(shot)
        assert shot.stat().st_size < 400_000, f"{shot.name} is not small"
    ctx.close()


def test_chapter_17_sends_under_3_mb(server, browser):
    """What chapter 17 sends on load, gzip-compressed as a static host would, is under 3 MB."""
    import gzip
    from urllib.parse import unquote

    ctx = browser.new_context(**LAPTOP)
    p = ctx.new_page()
    urls = []
    p.on("requestfinished", lambda r: urls.append(r.url))
    p.goto(f"{server}/{EXPLORER_PAGE}.html", wait_until="networkidle")
    p.wait_for_selector(".widget-slider", state="attached", timeout=60_000)
    p.wait_for_timeout(1000)
    ctx.close()
    sizes = {}
    for url in dict.fromkeys(urls):
        f = HTML / unquote(urlparse(url).path.lstrip("/"))
        if f.is_file():
            sizes[f.relative_to(HTML).as_posix()] = len(gzip.compress(f.read_bytes(), 6))
    total = sum(sizes.values())
    top = sorted(sizes.items(), key=lambda kv: -kv[1])[:4]
    print(f"chapter 17 sends {total / 1e6:.2f} MB gzip-compressed in {len(sizes)} files; {top}")
    assert total < 3_000_000, f"chapter 17 sends {total / 1e6:.2f} MB (claim: under 3 MB)"


# --- search ------------------------------------------------------------------------------------

# Text that belongs to the theme's page furniture or to TeX source, never to a snippet.
SNIPPET_JUNK = re.compile(r"\\[()\[\]]|\\[a-zA-Z]{2,}|\.ipynb|\.pdf|Skip to main content")


@pytest.mark.parametrize("query", ["orbit", "distribution"])
def test_search_snippets_are_prose(query, server, browser):
    """Search results quote the chapter's text: no header buttons, no TeX source.

    Sphinx cuts snippets from the page's ``[role=main]`` as fetched (TeX not yet typeset);
    book.js replaces that with the article's text and formulas written as plain text.
    """
    ctx = browser.new_context(**LAPTOP)
    p = ctx.new_page()
    p.goto(f"{server}/search.html?q={query}", wait_until="networkidle", timeout=NAV_TIMEOUT)
    p.wait_for_selector("#search-results p.context", state="attached", timeout=NAV_TIMEOUT)
    p.wait_for_function(
        "document.querySelector('#search-results .search-summary') !== null"
        " || document.querySelectorAll('#search-results p.context').length >= 5",
        timeout=NAV_TIMEOUT,
    )
    snippets = p.eval_on_selector_all("#search-results p.context", "ps => ps.map(x => x.innerText)")
    ctx.close()
    print(f"{query}: {len(snippets)} snippets; first: {snippets[0][:160]!r}")
    assert len(snippets) >= 3, f"search for {query!r} found too little: {snippets}"
    junk = [s[:160] for s in snippets if SNIPPET_JUNK.search(s)]
    assert not junk, f"snippets with page furniture or TeX source: {junk[:3]}"
    with_term = [s for s in snippets if query in s.lower()]
    assert len(with_term) >= len(snippets) // 2, f"snippets miss the query: {snippets[:3]}"


def test_search_index_has_no_tex_commands():
    """Formulas are indexed by their letters (book/_ext/search_text.py), not by TeX commands."""
    import json

    index = HTML / "searchindex.js"
    if not index.is_file():
        pytest.skip("the book is not built: run `python tools/build_book.py` first")
    text = index.read_text().strip()
    data = json.loads(text[text.index("(") + 1 : text.rindex(")")])
    terms, names = data["terms"], data["docnames"]
    assert "orbit" in terms and "leaf" in terms, "the index lost the prose"
    # Pages of prose and maths only (TeX in a chapter's code, e.g. a plot label, is code).
    prose = {names.index(p) for p in ("book/notation", "book/glossary", "book/errata")}
    found = {}
    for t in ("mathcal", "mathbb", "frac", "mathrm", "operatorname"):
        docs = terms.get(t, [])
        docs = {docs} if isinstance(docs, int) else set(docs)
        if docs & prose:
            found[t] = sorted(names[d] for d in docs & prose)
    assert not found, f"TeX commands indexed as words: {found}"


# --- figures: readable labels and a full-size view ---------------------------------------------

#: Font sizes (pt) that manifoldlib's plotting helpers use for their smallest labels.
HELPER_FONT_PT = {"path_strip": 7.0, "show_images": 8.0, "trace_curve": 8.0}
#: Matplotlib's default text size (ticks, legends, axis labels), in pt.
DEFAULT_FONT_PT = 10.0
#: Figures (stem, cell id) exempt from the 9 px rule. Empty: the two 6 pt legends it held
#: (chapters 7 and 15) are 7 pt since their chapters were re-executed. Mutation: a figure
#: cell with ``fontsize=6`` fails the test.
SMALL_LEGENDS: set[tuple[str, str]] = set()
FONT_ARG = re.compile(r"\b(?:fontsize|labelsize)\s*=\s*(\d+(?:\.\d+)?)")


def smallest_font_pt(stem: str) -> dict[str, tuple[str, float]]:
    """Alt text of each output figure -> (cell id, the smallest font size its code sets, pt).

    Read from the code: the cell's own ``fontsize=``/``labelsize=`` arguments, those of the
    notebook's functions that the cell calls, and of manifoldlib's plotting helpers; text
    with no size given is matplotlib's default 10 pt.
    """
    import json

    nb = json.loads((ROOT / "book" / f"{stem}.ipynb").read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    defs = {}
    for c in code:
        src = "".join(c["source"])
        for m in re.finditer(r"^def (\w+)\(.*?(?=^\S|\Z)", src, re.S | re.M):
            defs[m.group(1)] = [float(x) for x in FONT_ARG.findall(m.group(0))]
    out = {}
    for c in code:
        alt = c.get("metadata", {}).get("mystnb", {}).get("image", {}).get("alt")
        if not alt:
            continue
        src = "".join(c["source"])
        sizes = [DEFAULT_FONT_PT] + [float(x) for x in FONT_ARG.findall(src)]
        sizes += [pt for name, pt in HELPER_FONT_PT.items() if re.search(rf"\b{name}\(", src)]
        for name, found in defs.items():
            if re.search(rf"\b{name}\(", src):
                sizes += found
        out[" ".join(alt.split())] = (c["id"], min(sizes))
    return out


FIGURE_SIZES = """() => Array.from(document.querySelectorAll('main .cell_output figure img'))
  .filter(i => !i.closest('.jupyter-widgets, .widget-area, .text_html'))
  .map(i => ({alt: i.getAttribute('alt').replace(/\\s+/g, ' ').trim(), src: i.src,
              natural: i.naturalWidth, shown: i.getBoundingClientRect().width,
              right: i.getBoundingClientRect().right}))"""


def _png_dpi(path: Path) -> float:
    from PIL import Image

    with Image.open(path) as im:
        return float(im.info.get("dpi", (100.0, 100.0))[0])


@pytest.mark.parametrize("page", [p for p in toc_pages() if re.search(r"/\d\d_", p)])
def test_figure_labels_readable_at_1366(page, server, browser):
    """At 1366 px every output figure's smallest text is at least 9 CSS px.

    Label size (CSS px) = its font size in pt x the PNG's dpi / 72 x shown width / natural
    width. Figures may extend over the right margin up to their natural size (book.css).
    """
    from urllib.parse import unquote

    stem = Path(page).name
    fonts = smallest_font_pt(stem)
    ctx = browser.new_context(**LAPTOP)
    p = ctx.new_page()
    p.goto(f"{server}/{page}.html", wait_until="networkidle", timeout=NAV_TIMEOUT)
    p.wait_for_timeout(300)
    figs = p.evaluate(FIGURE_SIZES)
    ctx.close()
    small, sizes = [], []
    for f in figs:
        cell, pt = fonts[f["alt"]]
        dpi = _png_dpi(HTML / unquote(urlparse(f["src"]).path.lstrip("/")))
        px = pt * dpi / 72 * f["shown"] / f["natural"]
        sizes.append(px)
        assert f["right"] <= LAPTOP["viewport"]["width"], f"figure runs off the screen: {f}"
        if px < 9 and (stem, cell) not in SMALL_LEGENDS:
            small.append(
                f"cell {cell}: {pt:g} pt at {f['shown'] / f['natural']:.2f} -> {px:.1f} px"
            )
    if sizes:
        print(f"{stem}: {len(sizes)} figures, smallest label {min(sizes):.1f} CSS px at 1366 px")
    assert not small, f"labels under 9 CSS px at 1366 px: {small}"


@pytest.mark.parametrize("form", [PHONE, LAPTOP], ids=["390-tap", "1366-keyboard"])
@pytest.mark.parametrize("scheme", ["http", "file"])
def test_figure_opens_full_size(form, scheme, server, browser):
    """Tap (phone) or Enter (keyboard) on a figure shows it at its natural size; Escape closes
    it and the focus goes back to the figure. Over HTTP and from file://."""
    page = "book/08_horizontal_paths"
    url = f"{server}/{page}.html" if scheme == "http" else (HTML / f"{page}.html").as_uri()
    ctx = browser.new_context(**form)
    p = ctx.new_page()
    p.goto(url, wait_until="load", timeout=NAV_TIMEOUT)
    img = p.locator("main .cell_output figure img.fig-zoomable").first
    img.scroll_into_view_if_needed()
    natural = img.evaluate("i => i.naturalWidth")
    if form is PHONE:
        img.tap()
    else:
        img.focus()
        p.keyboard.press("Enter")
    dialog = p.locator("dialog.fig-dialog")
    dialog.wait_for(state="visible", timeout=10_000)
    shown = p.evaluate(
        "document.querySelector('dialog.fig-dialog img').getBoundingClientRect().width"
    )
    title = p.locator("dialog.fig-dialog .fig-dialog-title").inner_text()
    close = p.locator("dialog.fig-dialog .fig-dialog-close").bounding_box()
    p.keyboard.press("Escape")
    dialog.wait_for(state="hidden", timeout=10_000)
    refocused = p.evaluate("document.activeElement.classList.contains('fig-zoomable')")
    ctx.close()
    print(
        f"{scheme} {form['viewport']['width']} px: {title}, natural {natural} px, shown {shown:.0f}"
    )
    assert abs(shown - natural) <= 1, f"not full size: {shown} px shown, {natural} px natural"
    assert title.startswith("Fig."), f"the dialog does not say which figure: {title!r}"
    assert close["width"] >= 24 and close["height"] >= 24, "close button under 24 px"
    assert refocused, "the focus did not go back to the figure"


# --- citations and the bibliography (issue 27's "small things") ------------------------------


def test_citations_are_author_year_and_the_bibliography_is_for_readers():
    """A citation "Grementieri and Fioresi, 2022" links to an entry labelled the same way (not
    [1], pybtex's `plain` labels; book/_ext/bib_style.py), and the bibliography page opens with
    prose for readers (no file names or MyST roles: it was a note for authors)."""
    from html import unescape

    page = HTML / "book" / "02_frobenius.html"
    bib = HTML / "book" / "bibliography.html"
    if not bib.is_file():
        pytest.skip("the book is not built: run `python tools/build_book.py` first")
    entries = {}
    for m in re.finditer(
        r'<div class="citation" id="([^"]+)"[^>]*>\s*<span class="label">'
        r'<span class="fn-bracket">\[</span>(.*?)<span class="fn-bracket">\]</span>',
        bib.read_text(),
    ):
        entries[m.group(1)] = unescape(m.group(2))
    assert entries, "no bibliography entries found"
    assert not [lab for lab in entries.values() if re.fullmatch(r"\d+", lab)], "numbered labels"
    cites = re.findall(
        r'<a class="reference internal" href="bibliography.html#([^"]+)"[^>]*>(.*?)</a>',
        page.read_text(),
    )
    assert cites, "chapter 2 cites nothing"
    for anchor, text in cites:
        text = unescape(re.sub(r"<[^>]+>", "", text))
        label = entries[anchor]
        # the text "Grementieri and Fioresi, 2022" and the label "Grementieri and Fioresi 2022"
        assert text.replace(",", "") == label, f"citation {text!r} links to entry [{label}]"
    main = bib.read_text().split("<main", 1)[1]
    before_list = main.split('<div class="citation"', 1)[0]
    prose = re.findall(r"<p>(.*?)</p>", before_list, re.S)
    assert prose, "the bibliography page has no opening note"
    assert not re.search(r"<code|\.bib\b|\{cite", " ".join(prose)), f"a note for authors: {prose}"
    print(f"{len(cites)} citations in chapter 2, {len(entries)} entries, e.g. {cites[0][1]!r}")


# --- code: plotting cells folded, computing cells shown ---------------------------------------

#: A line of plotting code (matplotlib calls on plt/fig/ax objects, or the book's plot helpers).
PLOT_LINE = re.compile(
    r"\bplt\.|\bfig\w*\.|\bax\w*[.\[]|\baxes\b|\.imshow\(|\.set_\w+\(|\.legend\(|\.subplots\("
    r"|\.colorbar\(|\.annotate\(|\.text\(|\.plot\(|\.scatter\(|\.savefig\("
)


def _plotting_cells(stem: str) -> tuple[list[str], list[str]]:
    """(ids of plotting cells over 8 lines, ids of cells tagged hide-input) of a chapter.

    A plotting cell: at least 40% of its non-comment lines are plotting code.
    """
    import json

    nb = json.loads((ROOT / "book" / f"{stem}.ipynb").read_text())
    plotting, folded = [], []
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        lines = [s for s in "".join(c["source"]).splitlines() if s.strip()]
        lines = [s for s in lines if not s.lstrip().startswith("#")]
        if len(lines) > 8 and sum(bool(PLOT_LINE.search(s)) for s in lines) >= 0.4 * len(lines):
            plotting.append(c["id"])
        if "hide-input" in c.get("metadata", {}).get("tags", []):
            folded.append(c["id"])
    return plotting, folded


@pytest.mark.parametrize("form", [PHONE], ids=["390"])
def test_plotting_cells_are_folded(form, server, browser):
    """Every plotting cell of more than 8 lines is folded (its code behind a toggle, its figure
    shown); a tap on the toggle shows the code. book/figures.yml's `fold` sets the tag."""
    stems = [Path(p).name for p in toc_pages() if re.search(r"/\d\d_", p)]
    unfolded, unrendered, n_plot, n_folded = [], [], 0, 0
    for stem in stems:
        plotting, folded = _plotting_cells(stem)
        n_plot, n_folded = n_plot + len(plotting), n_folded + len(folded)
        unfolded += [f"{stem} {cid}" for cid in plotting if cid not in folded]
        html = (HTML / "book" / f"{stem}.html").read_text()
        if html.count("cell tag_hide-input") != len(folded):
            unrendered.append(stem)
    print(f"{n_plot} plotting cells over 8 lines, {n_folded} cells folded in {len(stems)} chapters")
    assert n_plot > 10, "the plotting-cell rule finds nothing: check PLOT_LINE"
    assert not unfolded, f"plotting cells shown unfolded: {unfolded}"
    assert not unrendered, f"folds not on the built pages (rebuild the book): {unrendered}"
    # on the page: the folded code is hidden, its figure shown, and a tap shows the code
    ctx = browser.new_context(**form)
    p = ctx.new_page()
    p.goto(f"{server}/book/05_training_trace.html", wait_until="load", timeout=NAV_TIMEOUT)
    cell = p.locator("main .cell.tag_hide-input").first
    code, figure = cell.locator(".cell_input pre"), cell.locator(".cell_output img")
    cell.scroll_into_view_if_needed()
    assert not code.is_visible() and figure.first.is_visible(), "fold hides the wrong part"
    toggle = cell.locator("summary")
    assert toggle.bounding_box()["height"] >= 24, "the toggle is under 24 px high"
    toggle.tap()
    p.wait_for_timeout(200)
    assert code.is_visible(), "tapping the toggle did not show the code"
    ctx.close()


# --- chapter 4's explorer: where a reader finds it, and its colours ---------------------------


def test_chapter_4_explorer_is_found(server, browser):
    """The intro and chapter 4's overview link to the explorer, which sits after the two-class
    section (not at the chapter's end, where it was at 85% of the page)."""
    for page in ("intro", "04_toy_foliations"):
        html = (HTML / "book" / f"{page}.html").read_text()
        assert 'href="04_toy_foliations.html#fx-explorer"' in html or (
            page == "04_toy_foliations" and 'href="#fx-explorer"' in html
        ), f"{page} does not link to the explorer"
    ctx = browser.new_context(**LAPTOP)
    p = ctx.new_page()
    p.goto(f"{server}/book/04_toy_foliations.html", wait_until="load", timeout=NAV_TIMEOUT)
    where = p.evaluate(
        """() => {
      const main = document.querySelector('main').getBoundingClientRect();
      const top = e => (e.getBoundingClientRect().top - main.top) / main.height;
      const h2 = Array.from(document.querySelectorAll('main h2'));
      const three = h2.find(h => /Three classes/.test(h.textContent));
      const overview = document.querySelector('#overview');
      return {explorer: top(document.querySelector('#fx-root')), three: top(three),
              fromOverview: !!(overview && overview.querySelector('a[href="#fx-explorer"]'))};
    }"""
    )
    ctx.close()
    print(f"chapter 4's explorer at {where['explorer']:.0%} of the page")
    assert where["fromOverview"], "the overview does not link to the explorer"
    assert where["explorer"] < where["three"] and where["explorer"] < 0.6, where


def _luminance(rgb: tuple[float, ...]) -> float:
    def lin(c):
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a, b) -> float:
    la, lb = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def _rgb(css: str) -> tuple[float, ...]:
    return tuple(float(v) for v in re.findall(r"[\d.]+", css)[:3])


def test_explorer_colours_in_dark_mode_and_three_blobs(explorer_page, browser):
    """In dark mode every legend key stands out from the page (the black "leaf" key has a light
    casing); the ker G key's colour is on the segment and in no class's
    colour of the three-blobs picture (it was a class's colour there)."""
    ctx, p, outside, errors = _open_explorer(browser, explorer_page, LAPTOP["viewport"])
    p.evaluate("document.body.style.background = 'rgb(18, 18, 18)'")  # the theme's dark page
    keys = p.evaluate(
        """() => Array.from(document.querySelectorAll('#fx-root .fx-legend i')).map(i => {
      const s = getComputedStyle(i);
      return {fill: s.backgroundColor, rings: s.boxShadow.match(/rgba?\\([^)]*\\)/g) || [],
              text: i.parentElement.textContent};
    })"""
    )
    page = (18, 18, 18)
    for k in keys:
        best = max(
            [_contrast(_rgb(k["fill"]), page)] + [_contrast(_rgb(r), page) for r in k["rings"]]
        )
        assert best >= 3, f"legend key {k} vanishes on a dark page (contrast {best:.1f})"
    # pixels of the plane within an RGB distance of 40 from the ker G key's colour
    kernel = _rgb(next(k["fill"] for k in keys if k["text"].startswith("ker G")))
    count = """(rgb) => {
      const c = document.querySelector('#fx-root .fx-plane');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let k = 0; k < d.length; k += 4) {
        const e = (d[k] - rgb[0]) ** 2 + (d[k + 1] - rgb[1]) ** 2 + (d[k + 2] - rgb[2]) ** 2;
        if (e < 1600) n++;
      }
      return n;
    }"""
    p.evaluate("window.foliationExplorer.point(-1.5, 0.5)")  # two moons: a leaf and ker G
    p.evaluate("window.foliationExplorer.finish()")
    on_segment = p.evaluate(count, list(kernel))
    # three blobs, no point: classes and regions only (in 2-D with 3 classes ker G is {0})
    p.evaluate("window.foliationExplorer.select('blobs2d', null)")
    p.evaluate("window.foliationExplorer.finish()")
    in_classes = p.evaluate(count, list(kernel))
    ctx.close()
    print(f"ker G colour {kernel}: {on_segment} px on the moons' segment, {in_classes} px in blobs")
    assert on_segment > 50, "the ker G segment is not drawn in its legend's colour"
    assert in_classes < 20, f"the three blobs' picture uses ker G's colour ({in_classes} px)"
    assert not outside and not errors, (outside[:3], errors[:3])


# --- numbers: per chapter, and the paper's visibly the paper's -------------------------------


def test_numbers_restart_per_chapter_and_name_other_chapters():
    """In every chapter each kind of numbered box (Fig., Definition, Theorem, Exercise, ...) is
    numbered 1, 2, ... in page order (book/_ext/numbers_per_chapter.py; chapter 2 opened with
    Exercise 8); a box title that quotes a number of the paper ("3.1") says it is the paper's;
    a reference to a box of another chapter says which chapter ("Definition 1 of chapter 2"),
    one to a box of its own page does not."""
    from html import unescape

    pages = [p for p in toc_pages() if p.startswith("book/")]
    if not (HTML / f"{pages[0]}.html").is_file():
        pytest.skip("the book is not built: run `python tools/build_book.py` first")
    bad, n_other, n_boxes = [], 0, 0
    for page in pages:
        html = (HTML / f"{page}.html").read_text()
        stem = Path(page).name
        chapter = re.match(r"(\d\d)_", stem)
        if chapter:
            seen: dict[str, list[int]] = {}
            for kind, k in re.findall(r'class="caption-number">([A-Z][a-z]+\.?) (\d+)', html):
                seen.setdefault(kind, []).append(int(k))
            for kind, ks in seen.items():
                n_boxes += len(ks)
                if ks != list(range(1, len(ks) + 1)):
                    bad.append(f"{stem}: {kind} numbered {ks[:6]}")
            for title in re.findall(
                r'<p class="admonition-title"><span class="caption-number">[^<]*</span>(.*?)</p>',
                html,
            ):
                title = unescape(re.sub(r"<[^>]+>", "", title))
                if re.search(r"\b\d+\.\d+\b|\b[A-Z]\.\d+\b", title) and "paper" not in title:
                    bad.append(
                        f"{stem}: a box quotes the paper's number without saying so: {title}"
                    )
        for href, text in re.findall(
            r'<a class="reference internal" href="([^"]*)">([^<]*)</a>', html
        ):
            text = " ".join(unescape(text).split())
            if not re.match(r"[A-Z][a-z]+\.? \d+\b", text):
                continue
            target = href.split("#", 1)[0]
            other = re.match(r"(?:\.\./book/)?(\d\d)_\w+\.html$", target)
            if other and target != f"{stem}.html":
                n_other += 1
                if not text.endswith(f"of chapter {int(other.group(1))}"):
                    bad.append(f"{stem}: {text!r} links to {href}")
            elif href.startswith("#") and "of chapter" in text:
                bad.append(f"{stem}: {text!r} names a chapter for a box on its own page")
    print(f"{n_boxes} numbered boxes and figures; {n_other} references to other chapters' boxes")
    assert n_other > 20 and n_boxes > 100, "the patterns find nothing: check the HTML"
    assert not bad, bad[:5]


def test_wide_displayed_formulas_show_that_they_scroll(server, browser):
    """At 390 px a displayed formula wider than the column scrolls sideways with a hint (a
    shadow at the cut edge, from book.css) and takes the keyboard focus, so that the arrow keys
    scroll it (book.js gives it tabindex 0; Chromium also focuses scrollable boxes by itself,
    so only the shadow's removal fails this test there)."""
    ctx = browser.new_context(**PHONE)
    p = ctx.new_page()
    found = {}
    for page in ("book/08_horizontal_paths", "book/errata", "book/02_frobenius"):
        p.goto(f"{server}/{page}.html", wait_until="networkidle", timeout=NAV_TIMEOUT)
        _settled(p)
        found = p.evaluate(
            """() => {
          const m = Array.from(document.querySelectorAll('main mjx-container[display="true"]'))
            .find(m => m.offsetParent !== null && m.scrollWidth > m.clientWidth + 20);
          if (!m) return {};
          m.id = 'wide-formula';
          const s = getComputedStyle(m);
          return {page: location.pathname, overflow: s.overflowX, tabindex: m.tabIndex,
                  hint: s.backgroundImage, scrolls: m.classList.contains('scrolls'),
                  over: m.scrollWidth - m.clientWidth};
        }"""
        )
        if found:
            break
    assert found, "no displayed formula is wider than a phone's column: pick another page"
    formula = p.locator("#wide-formula")
    formula.scroll_into_view_if_needed()
    formula.focus()
    for _ in range(5):
        p.keyboard.press("ArrowRight")
    p.wait_for_timeout(200)
    moved = formula.evaluate("m => m.scrollLeft")
    ctx.close()
    print(
        f"{found['page']}: a displayed formula {found['over']} px wider than its box; "
        f"arrow keys scrolled it {moved} px"
    )
    assert found["overflow"] == "auto" and found["scrolls"] and found["tabindex"] == 0, found
    assert found["hint"].count("radial-gradient") == 2, f"no shadow at the cut edge: {found}"
    assert moved > 0, "the arrow keys did not scroll the formula"
