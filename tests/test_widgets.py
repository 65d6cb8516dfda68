"""The explorer, driven headlessly: the slider selects frames consistent with the path."""

from __future__ import annotations

import re

import pytest
import torch
from conftest import TinyCNN

import manifoldlib as ml
from manifoldlib.images import image_png
from manifoldlib.widgets import MODES, probability_bars_html


def _build():
    """A small explorer on a seeded tiny CNN (built anew: the backend is chosen at build time)."""
    torch.manual_seed(1)
    model = TinyCNN(num_classes=5).eval()
    g = torch.Generator().manual_seed(4)
    images = torch.randn(6, 1, 8, 8, generator=g)
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    return ml.widgets.PathExplorer(
        model, images, labels, frames=5, steps=40, step_size=0.2, threshold=0.5
    )


@pytest.fixture
def explorer():
    return _build()


def _caption_numbers(caption):
    step = int(re.search(r"step (\d+)", caption).group(1))
    pred = re.search(r"<b>([^<]+)</b>", caption).group(1)
    bars = [float(v) for v in re.findall(r"&nbsp;([0-9.]+)</span>", caption)]
    return step, pred, bars


def test_slider_scrubs_through_the_horizontal_path(explorer):
    explorer.source_index.value, explorer.target_index.value = 0, 3
    result = explorer.compute()
    assert explorer.num_frames() == 5 and explorer.frame == 0
    seen = []
    for k in range(explorer.num_frames()):
        explorer.frame = k  # as if the slider moved
        view = explorer.views[MODES[0]]
        assert view.stack.selected_index == k
        shown = explorer.displayed()
        r = shown["record"]
        torch.testing.assert_close(
            torch.tensor(shown["probabilities"]), result.class_probabilities[r, 0]
        )
        assert shown["prediction"] == int(result.predictions[r, 0])
        step, pred, bars = _caption_numbers(shown["caption"])
        assert step == int(result.steps[r]) and pred == str(shown["prediction"])
        assert bars == pytest.approx(shown["probabilities"], abs=0.006)
        assert bytes(view.images[k].value).startswith(b"\x89PNG")
        seen.append(r)
    assert seen[0] == 0 and seen[-1] == result.points.shape[0] - 1  # first and last records
    assert seen == sorted(seen)
    # the distance to the target decreases along the frames shown
    dists = result.distances[seen, 0]
    assert bool((dists[1:] <= dists[:-1] + 1e-6).all())
    with pytest.raises(ValueError, match="frame"):
        explorer.frame = 5


def test_across_leaves_mode_and_cache(explorer):
    explorer.mode.value = MODES[1]
    assert explorer.view_stack.selected_index == 1
    explorer.source_class.value = 4  # choose by class: the first image labelled 4
    assert explorer.source_index.value == 4
    explorer.seed.value = 7
    first = explorer.compute()
    again = explorer.compute()
    assert again is first and "cache" in explorer.status.value
    explorer.frame = explorer.num_frames() - 1
    shown = explorer.displayed()
    assert shown["step"] == 40 and "distance from start" in shown["caption"]
    # a path across leaves barely changes the prediction (eq. 8)
    assert shown["prediction"] == int(first.predictions[0, 0])
    explorer.seed.value = 8
    assert explorer.compute() is not first


def test_load_a_precomputed_path_and_repr(explorer):
    x = explorer.images
    result = ml.horizontal_path(explorer.model, x[:2], x[2:4], max_steps=10, progress=False)
    explorer.load(result, 1, side_images=[x[1], x[3]])
    assert explorer.num_frames() == 5
    assert explorer.displayed()["prediction"] == int(result.predictions[0, 1])
    assert repr(explorer) == "PathExplorer(images=6, frames=5, mode='horizontal')"
    with pytest.raises(ValueError, match="index"):
        explorer.load(result, 2)
    with pytest.raises(ValueError, match="mode"):
        explorer.compute("sideways")


def test_helpers():
    png = image_png(torch.rand(1, 8, 8), scale=3)
    assert png.startswith(b"\x89PNG")
    bars = probability_bars_html([0.1, 0.9], ["a", "b"])
    assert bars.count("<div") == 2 and "#e67e22" in bars.split("</div>")[1]
    with pytest.raises(ValueError, match="classes"):
        probability_bars_html([0.1, 0.9], ["a"])


def test_static_form_shows_each_modes_own_settings(explorer):
    explorer.source_index.value, explorer.target_index.value = 0, 3
    h = explorer.compute("horizontal")
    explorer.mode.value = MODES[1]
    explorer.seed.value, explorer.steps.value = 5, 12
    a = explorer.compute()
    explorer.mode.value = MODES[0]
    assert "at most 40" in explorer.views[MODES[0]].status.value
    assert f"{int(h.steps_taken[0])} steps taken" in explorer.views[MODES[0]].status.value
    explorer.for_static_page()
    assert all(row.layout.display == "none" for row in explorer._kernel_controls)
    assert "No Python kernel" in explorer.notice.value
    panels = explorer.static_panel.children
    assert len(panels) == 2 and explorer.static_panel.selected_index == 0

    def values(panel):
        boxes = [hb.children[1] for hb in panel.children[:-1]]
        assert all(b.disabled for b in boxes) and panel.children[-1].disabled
        return [b.value for b in boxes]

    # the numbers shown agree with the paths shown (a box per mode, not one shared box)
    assert values(panels[0]) == [0, 3, 40, int(h.steps_taken[0])]
    assert values(panels[1]) == [0, 5, 12, int(a.steps_taken[0])]
    explorer.mode.value = MODES[1]
    assert explorer.static_panel.selected_index == 1
    explorer.for_static_page(False)
    assert explorer.notice.layout.display == "none"
    assert all(row.layout.display is None for row in explorer._kernel_controls)


def test_gallery_html(explorer):
    from manifoldlib.widgets import path_gallery_html

    x = explorer.images
    pairs = [(0, 1), (1, 0), (2, 2)]
    result = ml.horizontal_path(
        explorer.model, x[[0, 1, 2]], x[[1, 0, 5]], max_steps=8, progress=False
    )
    page = path_gallery_html(result, pairs, list("abcde"), frames=3, step_size=0.1, anchor="g")
    assert page.count('<a href="#g-') == 3 and page.count('class="pg-strip"') == 3
    assert page.count("<figure>") == 9 and "path length" in page
    # every strip states its own path's numbers
    for q, (a, b) in enumerate(pairs):
        strip = page.split(f'id="g-{a}-{b}"')[1].split("</div></div>")[0]
        assert f"{int(result.steps_taken[q])} steps" in strip
        assert f"step {int(result.steps[-1])}" in strip
    with pytest.raises(ValueError, match="pairs"):
        path_gallery_html(result, pairs[:2], list("abcde"))
    with pytest.raises(ValueError, match="once"):
        path_gallery_html(result, [(0, 1)] * 3, list("abcde"))


def test_rtol_reaches_the_paths(explorer, monkeypatch):
    # The explorer passes its rtol to the path functions (one rtol on everything that projects)
    # and keeps paths computed with another rtol apart in its cache.
    from manifoldlib import widgets as mw

    seen = []
    real = mw.horizontal_path

    def spy(*args, **kwargs):
        seen.append(kwargs.get("rtol"))
        return real(*args, **kwargs)

    monkeypatch.setattr(mw, "horizontal_path", spy)
    explorer.compute()
    explorer.rtol = 1e-3
    explorer.compute()
    assert seen == [None, 1e-3]
    with pytest.raises(ValueError, match="rtol"):
        ml.widgets.PathExplorer(explorer.model, explorer.images, rtol=-1.0)


# --- the backends: ipywidgets 8 (Stack + browser links), ipywidgets 7 (boxes), static strips ---


def _shown_children(box):
    """Indices of the children a box shows (a Stack shows only its selected one)."""
    import ipywidgets as widgets

    if hasattr(widgets, "Stack") and isinstance(box, widgets.Stack):
        return [box.selected_index]
    return [k for k, c in enumerate(box.children) if c.layout.display != "none"]


def _scrub_and_switch(explorer):
    """Move the slider and the mode buttons; check what is shown follows, in Python."""
    explorer.source_index.value, explorer.target_index.value = 0, 3
    result = explorer.compute("horizontal")
    view = explorer.views[MODES[0]]
    for k in range(explorer.num_frames()):
        view.slider.value = k  # as the slider would
        assert _shown_children(view.stack) == [k]
        r = explorer.displayed()["record"]
        assert explorer.displayed()["prediction"] == int(result.predictions[r, 0])
        assert f"step {explorer.displayed()['step']}:" in view.captions[k].value
    explorer.mode.value = MODES[1]  # as the toggle buttons would
    assert _shown_children(explorer.view_stack) == [1]
    explorer.compute()
    explorer.for_static_page()
    assert _shown_children(explorer.static_panel) == [1]
    explorer.mode.value = MODES[0]
    assert _shown_children(explorer.view_stack) == [0]
    assert _shown_children(explorer.static_panel) == [0]
    return result


def test_backend_matches_the_installed_ipywidgets():
    import ipywidgets as widgets

    explorer = _build()
    expected = "stack" if hasattr(widgets, "Stack") else "boxes"
    print(f"ipywidgets {widgets.__version__}: backend {explorer.backend!r}")
    assert explorer.backend == expected and explorer.backend_note == ""
    _scrub_and_switch(explorer)
    # displayed as a widget, not as the static strip
    if callable(getattr(widgets.Widget, "_ipython_display_", None)):  # ipywidgets 7
        assert callable(explorer._ipython_display_)
    else:
        assert "application/vnd.jupyter.widget-view+json" in _displayed_bundle(explorer)


def test_ipywidgets_8_links_run_in_the_browser():
    # The static page scrubs only because the slider and the mode buttons are jslinked to
    # real Stacks: check the links exist and join the right traits.
    widgets = pytest.importorskip("ipywidgets")
    if not hasattr(widgets, "Stack"):
        pytest.skip(f"ipywidgets {widgets.__version__} has no Stack")
    explorer = _build()
    assert explorer.backend == "stack"
    for view in explorer.views.values():
        assert isinstance(view.stack, widgets.Stack)
        [link] = view.links
        assert link.source == (view.slider, "value")
        assert link.target == (view.stack, "selected_index")
    targets = [link.target for link in explorer._links]
    assert targets == [
        (explorer.view_stack, "selected_index"),
        (explorer.static_panel, "selected_index"),
    ]
    assert all(link.source == (explorer.mode, "index") for link in explorer._links)


def test_without_stack_boxes_driven_from_python(monkeypatch):
    # ipywidgets 7 (Colab) has no Stack: the explorer must still build and its controls must
    # still change what is shown, through boxes whose children are shown or hidden.
    import ipywidgets as widgets

    monkeypatch.delattr(widgets, "Stack", raising=False)
    monkeypatch.setattr(widgets, "__version__", "7.7.5")
    explorer = _build()
    assert explorer.backend == "boxes"
    assert not any(
        type(w).__name__ == "Stack" for w in (explorer.view_stack, explorer.static_panel)
    )
    assert all(not view.links for view in explorer.views.values()) and not explorer._links
    _scrub_and_switch(explorer)
    # a frame hidden by the slider is hidden for real: its box says display none
    view = explorer.views[MODES[0]]
    view.slider.value = 2
    assert [c.layout.display for c in view.stack.children] == [
        "none",
        "none",
        None,
        "none",
        "none",
    ]


def _displayed_bundle(explorer):
    """What IPython displays for the explorer (ipywidgets 7 and 8 route it differently)."""
    from IPython.core.formatters import DisplayFormatter

    data, _ = DisplayFormatter().format(explorer)
    return data


@pytest.mark.parametrize(
    ("how", "why"),
    [
        ("env", "MANIFOLDLIB_WIDGETS=static"),
        ("old", "needs ipywidgets 7 or later, and this is ipywidgets 6.0.0"),
    ],
)
def test_static_strip_where_widgets_cannot_work(monkeypatch, how, why):
    import base64

    import ipywidgets as widgets

    if how == "env":
        monkeypatch.setenv("MANIFOLDLIB_WIDGETS", "static")
    else:
        monkeypatch.delattr(widgets, "Stack", raising=False)
        monkeypatch.setattr(widgets, "__version__", "6.0.0")
    explorer = _build()
    assert explorer.backend == "strip" and why in explorer.backend_note
    result = _scrub_and_switch(explorer)  # the Python side still works
    bundle = _displayed_bundle(explorer)
    assert "application/vnd.jupyter.widget-view+json" not in bundle
    page = bundle["text/html"]
    # one line saying why, then every frame of both paths, with its own step
    assert page.count("not available here") == 1 and why in page
    for mode, view in explorer.views.items():
        strip = page.split(f"<b>{mode}</b>")[1].split("<p>")[0]
        pngs = re.findall(r'src="data:image/png;base64,([^"]+)"', strip)
        assert [base64.b64decode(p) for p in pngs] == [bytes(im.value) for im in view.images]
        assert [int(s) for s in re.findall(r"step (\d+):", strip)] == view.labels
    assert f"{int(result.steps_taken[0])} steps taken" in page
