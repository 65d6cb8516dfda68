"""The live digit page (book/live_digit): its generated fragment, its weights, and the page itself.

Without a browser: the committed fragment ``live.html`` is exactly what
``tools/export_live_digit.py`` makes from its sources, the weight bytes match their recorded
SHA-256 (also stated in the page's README), page plus weights stay under 3 MB, the stated test
accuracy is that of the shipped weights, and (when the checkpoint is in the model cache) a
re-export gives the committed bytes.

In headless Chromium (``browser`` marker; the fragment wrapped in a minimal page served from
localhost, no build needed, and the built book over HTTP and ``file://`` when it exists):
``window.manifoldlibLive`` against manifoldlib in float64 on 20 shipped test digits
(probabilities to 1e-9, projections of random vectors on D_x to 1e-9, 50-step exact horizontal
paths to 1e-6); drawing with mouse and touch events updates the prediction and the D_x panel,
and a path runs to its stop reason; the keyboard draws; at 390 px the page fits and every
control is at least 24 px; one exact path step takes at most 20 ms and a redraw while drawing
at most 50 ms.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import re
import sys
import threading
import warnings
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
LIVE = ROOT / "book" / "live_digit"
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
#: The user's model cache, read before conftest's fixture points MANIFOLDLIB_DATA elsewhere.
USER_DATA = os.environ.get("MANIFOLDLIB_DATA")

sys.path.insert(0, str(ROOT / "tools"))
import export_live_digit as ex  # noqa: E402

#: The bounds the issue fixes beforehand (ms, headless Chromium on the 2-core machine).
STEP_MS, REDRAW_MS = 20.0, 50.0


def _payload() -> dict:
    return json.loads((LIVE / "weights.json").read_text())


# --- without a browser -----------------------------------------------------------------------


def test_fragment_matches_its_sources():
    assert (LIVE / "live.html").read_text() == ex.render_html(), (
        "live.html is stale: run `python tools/export_live_digit.py --html`"
    )


def test_weights_hash_size_and_readme():
    payload = _payload()
    digest = hashlib.sha256()
    for layer in payload["layers"]:
        import base64

        digest.update(base64.b64decode(layer["W"]))
        digest.update(base64.b64decode(layer["b"]))
    assert digest.hexdigest() == payload["weights_sha256"]
    readme = (LIVE / "README.md").read_text()
    assert payload["weights_sha256"] in readme, "README must state the weights' SHA-256"
    assert payload["checkpoint"]["config_key"] in readme
    size = (LIVE / "live.html").stat().st_size
    print(f"live.html (page + weights + 100 digits): {size / 1e6:.2f} MB (bound 3 MB)")
    assert size <= 3_000_000


def test_stated_accuracy_is_the_shipped_weights():
    payload = _payload()
    model, digits, labels = ex.load_exported(payload)
    test_x, test_y = ex.test_digits()
    x = torch.from_numpy(test_x.astype(np.float64) / 255)
    with torch.no_grad():
        correct = int((model(x).argmax(1).numpy() == test_y).sum())
    acc = payload["test_accuracy"]
    print(f"shipped weights: {correct}/{len(x)} test digits correct (stated {acc['correct']})")
    assert correct == acc["correct"] and len(x) == acc["total"]
    shipped = (digits * 255).round().to(torch.uint8).numpy()
    assert (shipped == test_x[payload["digits"]["test_index"]]).all()
    assert (labels.numpy() == test_y[payload["digits"]["test_index"]]).all()
    page = (ROOT / "book" / "live_digit.md").read_text()
    assert f"{acc['correct']}/{acc['total']}" in page, "the page must state the test accuracy"


def test_reexport_gives_the_committed_bytes(monkeypatch):
    """Same checkpoint -> same weights.json (skipped when the checkpoint is not cached here)."""
    if not USER_DATA:
        pytest.skip("MANIFOLDLIB_DATA is not set: the checkpoint cache is unknown")
    monkeypatch.setenv("MANIFOLDLIB_DATA", USER_DATA)
    key = _payload()["checkpoint"]["config_key"]
    if not (Path(USER_DATA) / "models" / key / f"epoch-{ex.EPOCH:03d}.pt").is_file():
        pytest.skip(f"checkpoint {key} is not in {USER_DATA}")
    payload = ex.export()
    if payload["weights_sha256"] != _payload()["weights_sha256"]:
        pytest.skip(f"the cached {key} holds other weights (trained on another CPU?)")
    text = json.dumps(payload, separators=(",", ":")) + "\n"
    assert text == (LIVE / "weights.json").read_text()


# --- in the browser --------------------------------------------------------------------------


def _serve(folder: Path):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder))
    )
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture(scope="module")
def live_url(tmp_path_factory):
    """The fragment wrapped in a minimal page, served from localhost."""
    folder = tmp_path_factory.mktemp("live")
    (folder / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<title>live digit</title></head><body>"
        f"{(LIVE / 'live.html').read_text()}</body></html>"
    )
    httpd = _serve(folder)
    yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    httpd.shutdown()


def _open(browser, url, viewport, *, touch=False):
    """A page on ``url`` whose requests to any other host are aborted and recorded."""
    ctx = browser.new_context(viewport=viewport, has_touch=touch, is_mobile=touch)
    outside, errors = [], []

    def route(r):
        if urlparse(r.request.url).hostname in ("127.0.0.1", "localhost", "", None):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    ctx.route("**/*", route)
    p = ctx.new_page()
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("console", lambda m: m.type == "error" and errors.append(m.text))
    # generous: at a load average of 45 on 2 cores a page took over 30 s to load
    p.goto(url, wait_until="load", timeout=120_000)
    p.wait_for_selector("#ld-root[data-ready='1']", state="attached", timeout=120_000)
    return ctx, p, outside, errors


#: Two shipped digits of each class (the page ships the first ten of each class).
ORACLE_DIGITS = [10 * c + k for c in range(10) for k in (0, 1)]


@pytest.mark.browser
def test_api_agrees_with_manifoldlib(live_url, browser):
    import manifoldlib as ml

    model, digits, labels = ex.load_exported(_payload())
    ctx, p, outside, errors = _open(browser, live_url, {"width": 1000, "height": 900})
    idx = ORACLE_DIGITS
    x = digits[idx]
    gen = torch.Generator().manual_seed(0)
    v = torch.randn(len(idx), 784, dtype=torch.float64, generator=gen)
    # the targets: the digit five places on, of another class
    tgt = digits[[(i + 50) % 100 for i in idx]]
    got = p.evaluate(
        """([xs, vs, ts]) => {
          const L = window.manifoldlibLive;
          return xs.map((x, k) => ({
            probs: L.predict(x),
            proj: L.project(x, vs[k]),
            basis: L.tangentBasis(x),
            path: L.horizontalPath(x, ts[k], {steps: 50}),
          }));
        }""",
        [x.tolist(), v.tolist(), tgt.tolist()],
    )
    defaults = p.evaluate("window.manifoldlibLive.model.defaults")
    ctx.close()
    assert not outside and not errors, (outside[:3], errors[:3])

    with torch.no_grad():
        probs = torch.softmax(model(x), dim=1)
    js_probs = torch.tensor([g["probs"] for g in got], dtype=torch.float64)
    err_p = (js_probs - probs).abs().max().item()
    proj = ml.tangent_projection(model, x, v)
    js_proj = torch.tensor([g["proj"] for g in got], dtype=torch.float64)
    err_v = (js_proj - proj).abs().max().item()
    # the basis is orthonormal and spans D_x: P e = e, e . e' = delta
    basis = torch.tensor(got[0]["basis"], dtype=torch.float64)
    err_b = (basis @ basis.T - torch.eye(len(basis), dtype=torch.float64)).abs().max().item()
    err_pb = ml.tangent_projection(model, x[:1].expand(len(basis), -1), basis) - basis
    err_pb = err_pb.abs().max().item()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a piecewise-linear model: no Theorem 3.1 warning
        ref = ml.horizontal_path(
            model,
            x,
            tgt,
            step_size=defaults["alpha"],
            max_steps=50,
            threshold=defaults["threshold"],
        )
    err_path = 0.0
    for k, g in enumerate(got):
        js = torch.tensor(g["path"]["points"], dtype=torch.float64)
        py = ref.points[: int(ref.steps_taken[k]) + 1, k]
        assert g["path"]["stopReason"] == ref.stop_reasons[k]
        assert js.shape == py.shape, (js.shape, py.shape)
        err_path = max(err_path, (js - py).abs().max().item())
    # the same path in manifoldlib's own (normalised) coordinates: z = (p - mean) / std, step
    # and threshold divided by std (the projection commutes with the isotropic scaling).
    mean, std = 0.1307, 0.3081
    mlp = model[1]
    ref_z = ml.horizontal_path(
        mlp,
        (x[:4] - mean) / std,
        (tgt[:4] - mean) / std,
        step_size=defaults["alpha"] / std,
        max_steps=50,
        threshold=defaults["threshold"] / std,
    )
    err_z = 0.0
    for k in range(4):
        js = torch.tensor(got[k]["path"]["points"], dtype=torch.float64)
        err_z = max(err_z, (js - (ref_z.points[:, k] * std + mean)).abs().max().item())
    print(
        f"{len(idx)} digits: probabilities {err_p:.1e} (bound 1e-9), projections {err_v:.1e} "
        f"(1e-9), basis orthonormal {err_b:.1e}, P e - e {err_pb:.1e}; 50-step exact paths "
        f"{err_path:.1e} (1e-6), in normalised coordinates {err_z:.1e} (1e-6)"
    )
    assert err_p < 1e-9 and err_v < 1e-9 and err_b < 1e-9 and err_pb < 1e-9
    assert err_path < 1e-6 and err_z < 1e-6
    assert all(len(g["basis"]) == 9 for g in got)
    assert all(g["path"]["steps"] == 50 for g in got)  # far targets: no path stops early


@pytest.mark.browser
def test_paths_and_invariant(live_url, browser):
    """Least squares leaves D_x; the exact path does not, nor does it move the ker W1 part."""
    ctx, p, outside, errors = _open(browser, live_url, {"width": 1000, "height": 900})
    r = p.evaluate(
        """() => {
          const L = window.manifoldlibLive, a = L.digits.get(3), b = L.digits.get(71);
          const ex = L.horizontalPath(a, b, {steps: 200, alpha: 0.05});
          const ls = L.leastSquaresPath(a, b, {steps: 200, alpha: 0.05});
          const dir = a.map((_, i) => Math.sin(7 * i));
          const ac = L.acrossLeavesPath(a, dir, {steps: 100, alpha: 0.05});
          const rw = L.randomWalk(a, {steps: 200, alpha: 0.05, seed: 1});
          const lower = Math.hypot(...L.kernelW1Component(b.map((v, i) => v - a[i])));
          return {
            exOff: Math.max(...ex.offShare), lsOff: Math.max(...ls.offShare),
            exDrift: Math.max(...ex.kerW1Drift), lsDrift: Math.max(...ls.kerW1Drift),
            rwDrift: Math.max(...rw.kerW1Drift), exEnd: ex.distances.at(-1), lower,
            acPred: ac.predictions, ranks: rw.ranks, crossings: rw.crossings,
            rankW1: L.model.rankW1, stop: ex.stopReason,
          };
        }"""
    )
    ctx.close()
    print(
        f"largest off-D_x share: exact {r['exOff']:.1e}, least squares {r['lsOff']:.2f}; ker W1 "
        f"drift: exact {r['exDrift']:.1e}, walk {r['rwDrift']:.1e}, least squares "
        f"{r['lsDrift']:.2f}; exact path ends {r['exEnd']:.2f} from the target, ker W1 bound "
        f"{r['lower']:.2f}; walk: rank {r['ranks'][0]} -> {r['ranks'][-1]} over "
        f"{r['crossings']} crossings (rank W1 = {r['rankW1']}); across leaves predictions "
        f"{sorted(set(r['acPred']))}"
    )
    assert not outside and not errors, (outside[:3], errors[:3])
    assert r["rankW1"] == 64
    assert r["exOff"] < 1e-9 and r["exDrift"] < 1e-9 and r["rwDrift"] < 1e-9
    assert r["lsOff"] > 1e-3 and r["lsDrift"] > 1e-3
    assert r["exEnd"] >= r["lower"] - 1e-9  # no horizontal path beats the invariant
    assert r["ranks"][0] == 9 and r["ranks"][-1] > 9 and r["ranks"][-1] <= 64
    assert len(set(r["acPred"])) == 1  # across leaves: the prediction stays


def _stroke_mouse(p, box, pts):
    p.mouse.move(box["x"] + pts[0][0] * box["width"], box["y"] + pts[0][1] * box["height"])
    p.mouse.down()
    for u, v in pts[1:]:
        p.mouse.move(box["x"] + u * box["width"], box["y"] + v * box["height"], steps=4)
    p.mouse.up()


def _stroke_touch(p, box, pts):
    cdp = p.context.new_cdp_session(p)

    def at(u, v):
        return [{"x": box["x"] + u * box["width"], "y": box["y"] + v * box["height"], "id": 1}]

    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": at(*pts[0])})
    for u, v in pts[1:]:
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": at(u, v)})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


SEVEN = [(0.25, 0.25), (0.5, 0.25), (0.75, 0.25), (0.6, 0.5), (0.5, 0.65), (0.42, 0.85)]
ONE = [(0.5, 0.15), (0.5, 0.4), (0.5, 0.6), (0.5, 0.85)]


@pytest.mark.browser
@pytest.mark.parametrize("how", ["mouse", "touch"])
def test_drawing_updates_the_panels(how, live_url, browser):
    viewport = {"width": 1000, "height": 900} if how == "mouse" else {"width": 390, "height": 844}
    ctx, p, outside, errors = _open(browser, live_url, viewport, touch=how == "touch")
    pad = p.locator("#ld-root .ld-pad")
    pad.scroll_into_view_if_needed()
    p.locator("#ld-root .ld-clear").click()
    p.wait_for_timeout(100)
    blank = p.evaluate("window.manifoldlibLive.ui.state()")
    assert sum(blank["pixels"]) == 0
    box = pad.bounding_box()
    (_stroke_mouse if how == "mouse" else _stroke_touch)(p, box, ONE if how == "touch" else SEVEN)
    p.wait_for_timeout(200)
    drawn = p.evaluate("window.manifoldlibLive.ui.state()")
    ink = sum(drawn["pixels"])
    assert ink > 10, f"the stroke left {ink:.1f} of ink"
    assert drawn["redraws"] > blank["redraws"] + 1, "panels did not update while drawing"
    assert drawn["probs"] != blank["probs"] and drawn["basisSignature"] != blank["basisSignature"]
    # the panels show what the API computes for the drawn pixels
    api = p.evaluate("(x) => window.manifoldlibLive.predict(x)", drawn["pixels"])
    assert max(abs(a - b) for a, b in zip(api, drawn["probs"], strict=True)) < 1e-12
    shown = p.locator("#ld-root .ld-pred").inner_text()
    pred = max(range(10), key=lambda c: drawn["probs"][c])
    assert f"predicts {pred}" in shown
    print(f"{how}: ink {ink:.1f}, predicted {pred}: {shown}")
    split = p.locator("#ld-root .ld-split").inner_text()
    p.locator("#ld-root .ld-dir").select_option("random")
    p.wait_for_timeout(150)
    assert p.locator("#ld-root .ld-split").inner_text() != split, "the split did not change"
    # a path runs to its stop reason
    p.locator("#ld-root .ld-steps").fill("60")
    p.locator("#ld-root .ld-run-towards").click()
    p.wait_for_selector("#ld-root[data-running='0'][data-stop*='_']", timeout=30_000)
    stop = p.evaluate("window.manifoldlibLive.ui.state().stop")
    assert stop and all(s in ("max_steps", "reached", "vanishing direction") for s in stop)
    status = p.locator("#ld-root .ld-path-status").inner_text()
    assert "stopped:" in status and "off-D" in status
    SHOTS.mkdir(parents=True, exist_ok=True)
    p.screenshot(path=str(SHOTS / f"live_digit-{how}-{viewport['width']}.png"), full_page=True)
    ctx.close()
    assert not outside and not errors, (outside[:3], errors[:3])


@pytest.mark.browser
def test_keyboard_draws_and_runs(live_url, browser):
    ctx, p, outside, errors = _open(browser, live_url, {"width": 1000, "height": 900})
    p.locator("#ld-root .ld-clear").focus()
    p.keyboard.press("Enter")  # a native button: clears
    p.locator("#ld-root .ld-pad").focus()
    p.keyboard.press("Space")  # pen down
    for _ in range(10):
        p.keyboard.press("ArrowDown")
    p.keyboard.press("Space")  # pen up
    p.wait_for_timeout(150)
    st = p.evaluate("window.manifoldlibLive.ui.state()")
    assert sum(st["pixels"]) > 5, "the keyboard drew nothing"
    p.keyboard.press("Tab")  # to the next control: the focus leaves the pad
    assert p.evaluate("document.activeElement.className") != "ld-pad"
    p.locator("#ld-root .ld-run-walk").focus()
    p.keyboard.press("Enter")
    p.wait_for_selector("#ld-root[data-running='0'][data-stop*='_']", timeout=60_000)
    assert "rank of the span" in p.locator("#ld-root .ld-path-status").inner_text()
    p.locator("#ld-root .ld-pad").focus()
    p.keyboard.press("Delete")
    p.wait_for_timeout(150)
    assert sum(p.evaluate("window.manifoldlibLive.ui.state()")["pixels"]) == 0
    ctx.close()
    assert not outside and not errors, (outside[:3], errors[:3])


@pytest.mark.browser
def test_phone_width_and_touch_targets(live_url, browser):
    ctx, p, outside, errors = _open(browser, live_url, {"width": 390, "height": 844}, touch=True)
    r = p.evaluate(
        """() => {
          const root = document.getElementById('ld-root');
          const small = Array.from(root.querySelectorAll('button, select, input, .ld-pad'))
            .map(e => [e.className || e.tagName, e.getBoundingClientRect()])
            .filter(([_, b]) => b.width < 24 || b.height < 24)
            .map(([n, b]) => `${n} ${b.width.toFixed(0)}x${b.height.toFixed(0)}`);
          return {small, width: document.documentElement.scrollWidth,
                  right: root.getBoundingClientRect().right};
        }"""
    )
    ctx.close()
    assert not r["small"], f"controls under 24 px: {r['small']}"
    assert r["width"] <= 390 and r["right"] <= 390, r


@pytest.mark.browser
def test_timing(live_url, browser):
    """Best and median of 7 repeats: the machine is shared, so contention only adds time."""
    ctx, p, outside, errors = _open(browser, live_url, {"width": 1000, "height": 900})
    p.evaluate("window.manifoldlibLive.benchmarkStep(5)")  # warm up the JIT
    steps, redraws = [], []
    for _ in range(7):
        steps.append(p.evaluate("window.manifoldlibLive.benchmarkStep(20)")["ms_per_step"])
        redraws.append(p.evaluate("window.manifoldlibLive.ui.benchmarkRedraw(10)")["ms_per_redraw"])
    ctx.close()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    step, redraw = min(steps), min(redraws)
    print(
        f"headless Chromium (load average {load:.1f}): one exact path step {step:.2f} ms best, "
        f"{np.median(steps):.2f} ms median (bound {STEP_MS:.0f}); redraw while drawing "
        f"{redraw:.2f} ms best, {np.median(redraws):.2f} ms median (bound {REDRAW_MS:.0f})"
    )
    assert step <= STEP_MS and redraw <= REDRAW_MS


# --- the built book ---------------------------------------------------------------------------

PAGE = "book/live_digit.html"


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["http", "file"])
def test_built_page(scheme, browser):
    if not (HTML / PAGE).exists():
        pytest.skip("the book is not built: run `python tools/build_book.py` first")
    if scheme == "http":
        httpd = _serve(HTML)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/{PAGE}"
    else:
        httpd, url = None, (HTML / PAGE).as_uri()
    try:
        ctx, p, outside, errors = _open(browser, url, {"width": 390, "height": 844}, touch=True)
        probs = p.evaluate("window.manifoldlibLive.predict(window.manifoldlibLive.digits.get(0))")
        text = p.locator("main").inner_text() if p.locator("main").count() else ""
        ctx.close()
    finally:
        if httpd:
            httpd.shutdown()
    assert abs(sum(probs) - 1) < 1e-12
    assert re.search(r"\d+/1000", text), "the page states the test accuracy"
    if scheme == "http":
        assert not outside, f"requests to other hosts: {outside[:3]}"
    errors = [e for e in errors if "THEBE_JS_URL" not in e and "theme mode" not in e]
    assert not errors, errors[:3]
