"""An interactive explorer of horizontal paths and paths across leaves (ipywidgets).

:class:`PathExplorer` lets a reader choose a source and a target test image (by index or by
class), computes a horizontal path (Algorithm 1) or a path across the leaves (section 4.2)
and scrubs through it with a slider: the image at each step, the predicted class and the
bar chart of the probabilities.

Designed to survive a static page. Every frame is rendered once, in Python, into its own
small widget (a PNG ``Image`` and an ``HTML`` caption with the bars), all frames sit in a
``Stack``, and the slider drives the stack through ``jslink``, a link that runs in the
browser. So the page rendered from the saved widget state (Jupyter Book, nbviewer) still
scrubs through the frames and switches between the two modes; only "compute" needs a
kernel. Frames are few and small (a 28 x 28 digit is about 1 KB as PNG) to keep the saved
state light. :meth:`PathExplorer.for_static_page` shows the kernel-only controls disabled, with
each mode's own settings and a one-line notice; :func:`path_gallery_html` renders many
precomputed paths as a grid of thumbnails that open their strips (plain HTML and CSS), and
:func:`load_path_gallery` reads the file ``tools/make_path_gallery.py`` writes.

Which ipywidgets it finds decides how the explorer is wired (:attr:`PathExplorer.backend`):
``"stack"`` with ipywidgets 8 (the browser links above); ``"boxes"`` with ipywidgets 7, which
has no ``Stack`` (Google Colab has shipped 7.7): each stack is a box whose children are shown
and hidden through ``layout.display`` by Python observers, so everything works with a kernel
but a static page would not scrub; and ``"strip"`` where even that is impossible (ipywidgets
older than 7, or ``MANIFOLDLIB_WIDGETS=static`` for a front end that shows no widgets): the
explorer then displays its frames as static strips under a one-line notice saying why.

Introduced in the chapter "An interactive explorer" (book/17).
"""

from __future__ import annotations

import html
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ipywidgets as widgets
import numpy as np
import torch
from torch import nn

from ._checks import check_model, check_positive, check_tensor
from .data import bundled_file
from .images import ToPixels, frame_indices, image_png
from .paths import Clamp, PathResult, across_leaves_path, horizontal_path

__all__ = [
    "GALLERY_MNIST",
    "MODES",
    "PathExplorer",
    "PathGallery",
    "load_path_gallery",
    "path_gallery_html",
    "probability_bars_html",
]

#: The explorer's two modes, in the order of its toggle buttons.
MODES = ("horizontal", "across leaves")

#: Chapter 17's gallery of MNIST paths, written by ``tools/make_path_gallery.py``.
GALLERY_MNIST = Path(__file__).resolve().parent.parent / "data" / "path_gallery_mnist.npz"


def probability_bars_html(
    probabilities: Sequence[float], classes: Sequence[str], *, width: int = 110
) -> str:
    """A bar chart of class probabilities in plain HTML (no JavaScript, no images).

    Args:
        probabilities: ``C`` probabilities.
        classes: ``C`` class names.
        width: pixels of a bar at probability 1.

    Returns:
        HTML text; the most probable class is drawn in orange, the others in blue.

    Introduced in the chapter "An interactive explorer".
    """
    probs = [float(p) for p in probabilities]
    if len(probs) != len(classes):
        raise ValueError(f"probabilities has {len(probs)} entries but classes has {len(classes)}")
    top = int(np.argmax(probs))
    rows = []
    for i, (p, name) in enumerate(zip(probs, classes, strict=True)):
        color = "#e67e22" if i == top else "#3b75af"
        rows.append(
            '<div style="display:flex;align-items:center;height:12px;font:10px monospace">'
            f'<span style="width:5.5em;overflow:hidden">{html.escape(str(name))}</span>'
            f'<span style="background:{color};width:{max(1, round(p * width))}px;'
            f'height:9px;display:inline-block"></span>'
            f"<span>&nbsp;{p:.2f}</span></div>"
        )
    return "".join(rows)


def path_gallery_html(
    result: PathResult,
    pairs: Sequence[tuple[int, int]],
    classes: Sequence[str],
    *,
    to_pixels: ToPixels | None = None,
    frames: int = 7,
    scale: int = 2,
    step_size: float | None = None,
    anchor: str = "gallery",
    diagonal: Sequence[torch.Tensor] | None = None,
) -> str:
    """Many precomputed paths as a grid of end-point thumbnails, each opening its strip.

    Plain HTML and CSS (``:target``), no JavaScript and no kernel: a row per source class,
    a column per target class; each cell shows the path's last point and links to a strip
    of ``frames`` evenly spaced records with the step, the predicted class, its probability
    and the distance to the target, all read from the path itself. A strip shows only the
    records of its own path (a path that stopped early is not shown frozen, and its last
    frame is labelled with the step where it stopped).

    Args:
        result: a :class:`~manifoldlib.paths.PathResult` with one path per pair (``B``).
        pairs: ``B`` pairs ``(source class, target class)``; each pair at most once.
        classes: class names; the grid has ``len(classes)`` rows and columns.
        to_pixels: map from model inputs to pixels in [0, 1] (e.g. ``data.to_pixels``).
        frames: frames per strip.
        scale: upscaling factor of the images.
        step_size: the path's step length, to state path lengths (optional).
        anchor: prefix of the HTML ids (unique per page).
        diagonal: ``len(classes)`` images ``(*input_shape)`` to show on the diagonal (e.g.
            each class's source image), framed in grey; default: empty cells.

    Returns:
        HTML text (images inlined as base64 PNG).

    Introduced in the chapter "An interactive explorer".
    """
    import base64

    if not isinstance(result, PathResult):
        raise TypeError(f"result must be a PathResult, got {type(result).__name__}")
    if len(pairs) != result.points.shape[1]:
        raise ValueError(f"{len(pairs)} pairs for {result.points.shape[1]} paths")
    if len(set(pairs)) != len(pairs):
        raise ValueError("each (source class, target class) pair may appear only once")
    check_positive(frames, "frames", integer=True)
    c = len(classes)
    if any(not (0 <= a < c and 0 <= b < c) for a, b in pairs):
        raise ValueError(f"pair classes must be in [0, {c})")
    if diagonal is not None and len(diagonal) != c:
        raise ValueError(f"diagonal must hold {c} images, got {len(diagonal)}")

    def src(x: torch.Tensor) -> str:
        data = base64.b64encode(image_png(x, to_pixels, scale)).decode()
        return f"data:image/png;base64,{data}"

    name = [html.escape(str(n)) for n in classes]
    where = {pair: q for q, pair in enumerate(pairs)}
    cells = ['<div class="pg-h"></div>'] + [f'<div class="pg-h">{n}</div>' for n in name]
    strips = []
    for a in range(c):
        cells.append(f'<div class="pg-h">{name[a]} &rarr;</div>')
        for b in range(c):
            q = where.get((a, b))
            if q is None:
                if a == b and diagonal is not None:
                    cells.append(
                        f'<img class="pg-diag" src="{src(diagonal[a])}" '
                        f'title="the {name[a]} used as source and target" '
                        f'alt="the {name[a]} used as source and target">'
                    )
                else:
                    cells.append("<div></div>")
                continue
            single = result.select(q)
            taken = int(single.steps_taken[0])
            d0, d1 = float(single.distances[0, 0]), float(single.distances[-1, 0])
            end = int(single.predictions[-1, 0])
            length = f" (path length at most {taken * step_size:.1f})" if step_size else ""
            summary = (
                f"{name[a]} &rarr; {name[b]}: {taken} steps{length}, stopped: "
                f"{html.escape(single.stop_reasons[0])}; distance to the target "
                f"{d0:.1f} &rarr; {d1:.1f}; the end point is predicted {name[end]}"
            )
            ident = f"{anchor}-{a}-{b}"
            cells.append(
                f'<a href="#{ident}" title="{summary}"><img src="{src(single.points[-1, 0])}" '
                f'alt="end point of the path {name[a]} to {name[b]}"></a>'
            )
            figs = []
            for r, step in _own_frames(single, frames):
                k = int(single.predictions[r, 0])
                p = float(single.class_probabilities[r, 0, k])
                figs.append(
                    f'<figure><img src="{src(single.points[r, 0])}" data-step="{step}" '
                    f'alt="step {step}"><figcaption>step {step}<br>'
                    f"{name[k]} {p:.2f}<br>d {float(single.distances[r, 0]):.1f}"
                    "</figcaption></figure>"
                )
            strips.append(
                f'<div class="pg-strip" id="{ident}" data-steps-taken="{taken}"><p>{summary}</p>'
                f'<div class="pg-frames">{"".join(figs)}</div></div>'
            )
    style = (
        f"<style>#{anchor} .pg-grid{{display:grid;grid-template-columns:auto repeat({c},auto);"
        "gap:2px;justify-content:start;font:10px sans-serif;align-items:center}"
        f"#{anchor} .pg-grid img{{display:block;border:1px solid #ddd}}"
        f"#{anchor} .pg-grid img.pg-diag{{border-color:#888;opacity:0.6}}"
        f"#{anchor} .pg-h{{padding:0 3px;white-space:nowrap}}"
        f"#{anchor} .pg-strip{{display:none;margin-top:0.6em}}"
        f"#{anchor} .pg-strip:target{{display:block}}"
        f"#{anchor} .pg-frames{{display:flex;flex-wrap:wrap;gap:4px}}"
        f"#{anchor} figure{{margin:0;font:10px sans-serif;text-align:center}}</style>"
    )
    return (
        f'<div id="{anchor}" class="path-gallery">{style}'
        f'<div class="pg-grid">{"".join(cells)}</div>{"".join(strips)}</div>'
    )


@dataclass
class PathGallery:
    """Precomputed paths for pairs of classes, as stored by ``tools/make_path_gallery.py``.

    Attributes:
        result: the paths (``B`` of them); ``points`` are pixels in [0, 1], ``(R, B, 1, H, W)``,
            rounded to 8 bits as stored (draw them with ``to_pixels`` the identity).
        pairs: ``B`` pairs ``(source class, target class)``.
        sources: ``(B,)`` the test-image index of each path's source.
        targets: ``(B,)`` the test-image index of each path's target.
        class_images: ``(C,)`` the test image chosen for each class.
        seconds: wall time of the computation, in seconds.
        cpu_seconds: its CPU time, in seconds (None if the file does not say).
        provenance: how the file was made (script, seed, model configuration key, settings).

    Introduced in the chapter "An interactive explorer".
    """

    result: PathResult
    pairs: list[tuple[int, int]]
    sources: torch.Tensor
    targets: torch.Tensor
    class_images: torch.Tensor
    seconds: float
    cpu_seconds: float | None = None
    provenance: dict = field(default_factory=dict)

    def index(self, source_class: int, target_class: int) -> int:
        """The position in the batch of the path for ``(source_class, target_class)``."""
        return self.pairs.index((int(source_class), int(target_class)))


def load_path_gallery(
    path: str | os.PathLike = GALLERY_MNIST, *, download: bool = False
) -> PathGallery:
    """Load a gallery of precomputed paths written by ``tools/make_path_gallery.py``.

    Args:
        path: the ``.npz`` file (default: the repository's ``data/path_gallery_mnist.npz``).
        download: for the default file in an installed wheel (Colab), which has no ``data/``
            folder: fetch it once from the repository (see :func:`manifoldlib.bundled_file`).

    Returns:
        A :class:`PathGallery`; its ``result`` holds pixels (draw with ``to_pixels`` the
        identity), probabilities stored in half precision, and the stored distances.

    Introduced in the chapter "An interactive explorer".
    """
    if Path(path) == GALLERY_MNIST:
        path = bundled_file(GALLERY_MNIST, download)
    with np.load(path, allow_pickle=False) as f:
        pixels = torch.from_numpy(f["pixels"]).float() / 255
        probs = torch.from_numpy(f["probabilities"].astype(np.float32))
        top = probs.max(dim=-1)
        result = PathResult(
            points=pixels[:, :, None],
            steps=torch.from_numpy(f["steps"]),
            class_probabilities=probs,
            probabilities=top.values,
            predictions=top.indices,
            distances=torch.from_numpy(f["distances"]),
            steps_taken=torch.from_numpy(f["steps_taken"]),
            reached=torch.from_numpy(f["reached"]),
            stop_reasons=[str(r) for r in f["stop_reasons"]],
        )
        return PathGallery(
            result=result,
            pairs=[(int(a), int(b)) for a, b in f["pairs"]],
            sources=torch.from_numpy(f["sources"]),
            targets=torch.from_numpy(f["targets"]),
            class_images=torch.from_numpy(f["class_images"]),
            seconds=float(f["seconds"]),
            cpu_seconds=float(f["cpu_seconds"]) if "cpu_seconds" in f.files else None,
            provenance=json.loads(str(f["provenance"])),
        )


def _own_frames(single: PathResult, frames: int) -> list[tuple[int, int]]:
    """``frames`` evenly spaced ``(record, step)`` pairs of one path (``B = 1``), its own only.

    The records of a batch are shared: after a path stops, later records repeat its end
    point, and the record of the step where it stopped carries the loop's step number, one
    more than the steps it took when its direction vanished. So: the records before the path
    stopped, then its end point, labelled with the number of steps the path took.
    """
    taken = int(single.steps_taken[0])
    last = single.points.shape[0] - 1
    before = [r for r in range(last) if int(single.steps[r]) < taken]
    rows = before + [last]
    pick = frame_indices(len(rows), frames)
    return [(rows[i], int(single.steps[rows[i]]) if i < len(before) else taken) for i in pick]


def _widget_support() -> tuple[str, str]:
    """How the explorer can be wired with the ipywidgets found here: ``(backend, why)``.

    ``"stack"``: ipywidgets 8 (``Stack`` and browser links). ``"boxes"``: ipywidgets 7
    (:class:`_DisplayStack`, driven from Python). ``"strip"``: neither is possible, or the
    environment variable ``MANIFOLDLIB_WIDGETS`` is ``static``; ``why`` is the one-line reason.
    """
    version = getattr(widgets, "__version__", "0")
    if os.environ.get("MANIFOLDLIB_WIDGETS", "").strip().lower() == "static":
        return "strip", "MANIFOLDLIB_WIDGETS=static asks for the static form"
    if hasattr(widgets, "Stack") and hasattr(widgets, "jslink"):
        return "stack", ""
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = 0
    if major >= 7 and "index" in widgets.ToggleButtons.class_trait_names():
        return "boxes", ""
    return "strip", f"the explorer needs ipywidgets 7 or later, and this is ipywidgets {version}"


class _DisplayStack(widgets.VBox):
    """A ``Stack`` for ipywidgets 7: shows the child ``selected_index``, hides the others.

    The children are hidden through their ``layout.display``. ``selected_index`` is a Python
    property, not a synchronised trait, so a browser link cannot drive it: Python observers do.
    """

    def __init__(
        self, children: Sequence[widgets.Widget] = (), selected_index: int | None = None, **kwargs
    ) -> None:
        super().__init__(children, **kwargs)
        self._selected = selected_index
        self.observe(self._show, names="children")
        self._show()

    @property
    def selected_index(self) -> int | None:
        """The child shown (None: none)."""
        return self._selected

    @selected_index.setter
    def selected_index(self, value: int | None) -> None:
        self._selected = value
        self._show()

    def _show(self, change: dict | None = None) -> None:
        for k, child in enumerate(self.children):
            child.layout.display = None if k == self._selected else "none"


def _stack(backend: str, children: Sequence[widgets.Widget], **kwargs: object) -> widgets.Box:
    """A ``Stack`` with ipywidgets 8, else a :class:`_DisplayStack`."""
    if backend == "stack":
        return widgets.Stack(list(children), **kwargs)
    return _DisplayStack(list(children), **kwargs)


def _labelled(text: str, widget: widgets.Widget) -> widgets.HBox:
    """A control with its label in an HTML widget.

    Not ``description=``: ipywidgets typesets descriptions through MathJax 2's
    ``MathJax.Hub``, which a page with MathJax 3 (Jupyter Book) lacks, and the control's view
    then breaks on the static page.
    """
    label = widgets.HTML(f'<span style="font-size:12px">{html.escape(text)}</span>')
    label.layout.width = f"{max(4.5, 0.62 * len(text)):.1f}em"
    return widgets.HBox([label, widget])


class _ModeView:
    """The widgets of one mode: a slider, a stack of pre-rendered frames, side images.

    No ``Play`` button: in the static page's widget manager (html-manager 1.0.6) its view
    throws when its value changes, and a link that throws stops the slider's other links.
    """

    def __init__(self, frames: int, side_labels: Sequence[str], backend: str = "stack") -> None:
        self.slider = widgets.IntSlider(value=0, min=0, max=0, continuous_update=True)
        self.status = widgets.HTML()
        self.images = [widgets.Image(format="png") for _ in range(frames)]
        self.captions = [widgets.HTML() for _ in range(frames)]
        self.stack = _stack(
            backend,
            [widgets.VBox([im, cap]) for im, cap in zip(self.images, self.captions, strict=True)],
            selected_index=0,
        )
        # In the browser (live or static page) the slider drives the stack directly (a Stack,
        # ipywidgets 8 only) ...
        self.links = []
        if backend == "stack":
            self.links.append(
                widgets.jslink((self.slider, "value"), (self.stack, "selected_index"))
            )
        # ... and in Python too, so that a kernel (or a test) sees the same state.
        self.slider.observe(self._on_slider, names="value")
        self.side = [widgets.Image(format="png") for _ in side_labels]
        side = widgets.VBox(
            [
                widgets.VBox([widgets.HTML(f"<small>{html.escape(lab)}</small>"), im])
                for lab, im in zip(side_labels, self.side, strict=True)
            ]
        )
        self.box = widgets.VBox(
            [
                self.status,
                _labelled("frame", self.slider),
                widgets.HBox([self.stack, side]),
            ]
        )
        self.result: PathResult | None = None
        self.records: list[int] = []
        # The step shown on each frame (the path's own: see _own_frames).
        self.labels: list[int] = []
        # What produced the shown path: source, target or seed, most steps (None if loaded).
        self.settings: dict[str, object] | None = None

    def _on_slider(self, change: dict) -> None:
        self.stack.selected_index = int(change["new"])


class PathExplorer(widgets.VBox):
    """Scrub through horizontal paths and paths across leaves, live or on a static page.

    Display it as the last expression of a cell. "compute" runs the path for the chosen
    images with the model (results are kept in a small in-memory cache); :meth:`load` shows a
    path computed elsewhere; ``frame`` (or the slider) selects the step shown.

    Args:
        model: classifier returning scores ``(B, C)``.
        images: ``(N, *input_shape)`` the images to choose from (e.g. ``data.test_x``).
        labels: ``(N,)`` their labels, for choosing by class (optional).
        to_pixels: map from model inputs to pixels in [0, 1] (e.g. ``data.to_pixels``).
        clamp: ``(low, high)`` pixel range for the paths (e.g. ``data.pixel_range``).
        classes: class names (default: ``"0"``, ``"1"``, ...).
        frames: frames per path (evenly spaced records; the PNGs live in the saved state).
        steps: default number of steps (most steps for a horizontal path).
        step_size: Euclidean length of a step.
        threshold: a horizontal path stops within this distance of its target.
        rtol: relative tolerance of the rank decision in each projection (None: the
            library's default; see :func:`manifoldlib.horizontal_path`).
        scale: upscaling factor of the displayed images.
        cache_size: paths kept in the in-memory cache.

    Attributes:
        backend: how it is wired, from the ipywidgets found (see the module's docstring):
            ``"stack"`` (ipywidgets 8: browser links, so a static page scrubs too),
            ``"boxes"`` (ipywidgets 7: boxes shown and hidden by Python, a kernel needed) or
            ``"strip"`` (displayed as static strips, see :meth:`strip_html`).
        backend_note: the one-line reason for ``"strip"`` (empty otherwise).

    Introduced in the chapter "An interactive explorer".
    """

    def __init__(
        self,
        model: nn.Module,
        images: torch.Tensor,
        labels: torch.Tensor | None = None,
        *,
        to_pixels: ToPixels | None = None,
        clamp: Clamp = None,
        classes: Sequence[str] | None = None,
        frames: int = 12,
        steps: int = 300,
        step_size: float = 0.1,
        threshold: float = 1.0,
        rtol: float | None = None,
        scale: int = 4,
        cache_size: int = 8,
    ) -> None:
        check_model(model)
        check_tensor(images, "images", min_dim=2)
        for value, name in ((frames, "frames"), (steps, "steps"), (scale, "scale")):
            check_positive(value, name, integer=True)
        check_positive(cache_size, "cache_size", integer=True)
        check_positive(step_size, "step_size")
        check_positive(threshold, "threshold")
        if frames < 2:
            raise ValueError(f"frames must be at least 2, got {frames}")
        if labels is not None and (
            not isinstance(labels, torch.Tensor) or labels.shape != (images.shape[0],)
        ):
            raise ValueError(f"labels must be a tensor of shape ({images.shape[0]},)")
        self.model = model
        self.images = images
        self.labels = labels
        self.to_pixels = to_pixels
        self.clamp = clamp
        self.frames = frames
        self.step_size = float(step_size)
        self.threshold = float(threshold)
        if rtol is not None:
            check_positive(rtol, "rtol")
        self.rtol = rtol
        self.scale = scale
        self.cache_size = cache_size
        self._cache: OrderedDict[tuple, PathResult] = OrderedDict()
        with torch.no_grad():
            num_classes = int(model(images[:1]).shape[1])
        self.classes = (
            tuple(str(c) for c in classes)
            if classes is not None
            else tuple(str(i) for i in range(num_classes))
        )
        if len(self.classes) != num_classes:
            raise ValueError(
                f"classes has {len(self.classes)} names but the model has {num_classes}"
            )

        self.backend, self.backend_note = _widget_support()
        n = images.shape[0]
        self.mode = widgets.ToggleButtons(options=list(MODES), value=MODES[0])
        by_class = [("by index", -1)] + [(c, i) for i, c in enumerate(self.classes)]
        self.source_class = widgets.Dropdown(options=by_class, value=-1)
        self.source_index = widgets.BoundedIntText(value=0, min=0, max=n - 1)
        self.target_class = widgets.Dropdown(options=by_class, value=-1)
        self.target_index = widgets.BoundedIntText(value=min(1, n - 1), min=0, max=n - 1)
        self.seed = widgets.IntText(value=0)
        self.steps = widgets.BoundedIntText(value=steps, min=1, max=100_000)
        self.compute_button = widgets.Button(description="compute", button_style="primary")
        if labels is not None:
            self.source_class.observe(self._class_to_index(self.source_index), names="value")
            self.target_class.observe(self._class_to_index(self.target_index), names="value")
        else:
            self.source_class.disabled = self.target_class.disabled = True
        self.compute_button.on_click(lambda _: self.compute())

        self.views = {
            MODES[0]: _ModeView(frames, ["source", "target"], self.backend),
            MODES[1]: _ModeView(frames, ["start"], self.backend),
        }
        stacked = [v.box for v in self.views.values()]
        self.view_stack = _stack(self.backend, stacked, selected_index=0)
        # The mode buttons switch the view in the browser too (static pages included).
        self._links = []
        if self.backend == "stack":
            self._links.append(
                widgets.jslink((self.mode, "index"), (self.view_stack, "selected_index"))
            )
        self.mode.observe(self._on_mode, names="value")
        controls = widgets.VBox(
            [
                self.mode,
                widgets.HBox(
                    [_labelled("source", self.source_class), _labelled("index", self.source_index)]
                ),
                widgets.HBox(
                    [_labelled("target", self.target_class), _labelled("index", self.target_index)]
                ),
                widgets.HBox(
                    [
                        _labelled("seed", self.seed),
                        _labelled("max steps", self.steps),
                        self.compute_button,
                    ]
                ),
            ]
        )
        self._kernel_controls = list(controls.children[1:])
        # The static form (see for_static_page): a notice and, per mode, disabled copies of
        # the controls holding that mode's own settings, switched by the mode buttons.
        self.notice = widgets.HTML(layout=widgets.Layout(display="none"))
        self.static_panel = _stack(self.backend, [], layout=widgets.Layout(display="none"))
        if self.backend == "stack":
            self._links.append(
                widgets.jslink((self.mode, "index"), (self.static_panel, "selected_index"))
            )
        controls.children = (*controls.children, self.notice, self.static_panel)
        super().__init__([controls, self.view_stack])
        if self.backend == "strip" and hasattr(widgets.Widget, "_ipython_display_"):
            self._ipython_display_ = None  # ipywidgets 7: display through _repr_mimebundle_

    @classmethod
    def from_data(cls, model: nn.Module, data: object, **kwargs: object) -> PathExplorer:
        """An explorer over the test images of an :class:`~manifoldlib.data.ImageData`.

        Args:
            model: classifier returning scores ``(B, C)``.
            data: the data set (its ``test_x``, ``test_y``, ``to_pixels``, ``pixel_range``,
                ``classes`` are used).
            **kwargs: passed to :class:`PathExplorer`.

        Returns:
            The explorer.
        """
        kwargs.setdefault("to_pixels", data.to_pixels)
        kwargs.setdefault("clamp", data.pixel_range)
        kwargs.setdefault("classes", data.classes)
        return cls(model, data.test_x, data.test_y, **kwargs)

    def __repr__(self) -> str:
        # The text/plain of a displayed widget is compared by nbval: keep it short and stable.
        return (
            f"PathExplorer(images={self.images.shape[0]}, frames={self.frames}, "
            f"mode={self.mode.value!r})"
        )

    # --- the static form where widgets cannot work (backend "strip") ---------------------

    def strip_html(self) -> str:
        """The explorer as static strips: a one-line notice, then each computed path's frames.

        What the explorer displays when its :attr:`backend` is ``"strip"`` (no widgets): per
        mode with a path, its status line and its frames side by side (the same PNGs and
        captions, with the bars, that the slider would select). Plain HTML, no JavaScript.

        Returns:
            HTML text (images inlined as base64 PNG).
        """
        import base64

        why = self.backend_note or f"the widgets backend is {self.backend!r}"
        parts = [
            '<div class="path-explorer-strip"><div style="font-size:12px;color:#555">'
            f"The interactive explorer is not available here ({html.escape(why)}): its "
            "frames are shown as static strips.</div>"
        ]
        for mode, view in self.views.items():
            if view.result is None:
                continue
            figs = [
                '<figure style="margin:0;width:200px">'
                f'<img src="data:image/png;base64,{base64.b64encode(im.value).decode()}" '
                f'alt="{mode} path, step {step}"><figcaption>{cap.value}</figcaption></figure>'
                for im, cap, step in zip(view.images, view.captions, view.labels, strict=False)
            ]
            parts.append(
                f"<p><b>{html.escape(mode)}</b>: {view.status.value}</p>"
                f'<div style="display:flex;flex-wrap:wrap;gap:4px">{"".join(figs)}</div>'
            )
        return "".join(parts) + "</div>"

    def _repr_mimebundle_(self, **kwargs: object) -> dict | None:
        # ipywidgets 8 displays a widget through this method; ipywidgets 7 through
        # _ipython_display_, which __init__ masks for the strip (as ipywidgets 7's close() does)
        # so that IPython falls back to this method.
        if self.backend == "strip":
            return {"text/plain": repr(self), "text/html": self.strip_html()}
        parent = getattr(super(), "_repr_mimebundle_", None)
        return parent(**kwargs) if parent is not None else None

    # --- choosing images ----------------------------------------------------------------

    def _class_to_index(self, box: widgets.BoundedIntText) -> Callable[[dict], None]:
        def handler(change: dict) -> None:
            c = int(change["new"])
            if c >= 0:
                hits = (self.labels == c).nonzero().flatten()
                if hits.numel():
                    box.value = int(hits[0])

        return handler

    @property
    def status(self) -> widgets.HTML:
        """The status line of the selected mode (what was computed, or is being computed)."""
        return self.views[self.mode.value].status

    def _on_mode(self, change: dict) -> None:
        index = MODES.index(change["new"])
        self.view_stack.selected_index = index
        if self.static_panel.children:
            self.static_panel.selected_index = index

    # --- computing and showing paths ----------------------------------------------------

    def compute(self, mode: str | None = None) -> PathResult:
        """Compute (or fetch from the cache) the path chosen by the controls and show it.

        Args:
            mode: ``"horizontal"`` or ``"across leaves"``; default: the selected mode.

        Returns:
            The :class:`~manifoldlib.paths.PathResult` (one path).
        """
        mode = self.mode.value if mode is None else mode
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        steps = int(self.steps.value)
        src = int(self.source_index.value)
        other = int(self.target_index.value) if mode == MODES[0] else int(self.seed.value)
        key = (mode, src, other, steps, self.step_size, self.threshold, self.rtol)
        if key in self._cache:
            self._cache.move_to_end(key)
            result = self._cache[key]
            cached = True
        else:
            self.views[mode].status.value = f"computing a {mode} path of up to {steps} steps ..."
            result = self._run(mode, src, other, steps)
            self._cache[key] = result
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            cached = False
        side = [self.images[src]]
        if mode == MODES[0]:
            side.append(self.images[other])
        self.load(result, mode=mode, side_images=side)
        self.views[mode].settings = {"source": src, "other": other, "steps": steps}
        what = f"target {other}" if mode == MODES[0] else f"seed {other}"
        self.views[mode].status.value = (
            f"{mode} path from image {src} ({what}): {int(result.steps_taken[0])} steps "
            f"taken of at most {steps}, stopped: {result.stop_reasons[0]}"
            f"{' (from the cache)' if cached else ''}"
        )
        return result

    def for_static_page(self, static: bool = True) -> None:
        """Show the controls that need a kernel disabled, for a page without one.

        A static page (Jupyter Book, nbviewer) renders the widget state saved at the end of
        execution; nothing there can run Python. With ``static=True`` the live source,
        target, seed and step boxes and the "compute" button are hidden and replaced by
        disabled copies holding the settings of the path each mode shows (switched with the
        mode buttons, in the browser), and a one-line notice says why. ``static=False``
        restores the live controls.

        Args:
            static: switch to the static form (``True``) or back (``False``).
        """
        for row in self._kernel_controls:
            row.layout.display = "none" if static else None
        self.notice.layout.display = None if static else "none"
        self.static_panel.layout.display = None if static else "none"
        if not static:
            return
        self.notice.value = (
            '<div style="font-size:12px;color:#555">No Python kernel on this page: choosing '
            "images and computing are disabled (they show the settings of the path on "
            "display); the slider and the mode buttons work. Open the chapter in Jupyter to "
            "compute other paths.</div>"
        )
        panels = []
        for mode, view in self.views.items():
            s = view.settings
            if s is None or view.result is None:
                panels.append(widgets.HTML("<small>(a path loaded from elsewhere)</small>"))
                continue
            other = "target" if mode == MODES[0] else "seed"
            boxes = [
                ("source", s["source"]),
                (other, s["other"]),
                ("max steps", s["steps"]),
                ("steps taken", int(view.result.steps_taken[0])),
            ]
            items = [_labelled(name, widgets.IntText(value=v, disabled=True)) for name, v in boxes]
            items.append(widgets.Button(description="compute", disabled=True))
            panels.append(widgets.HBox(items, layout=widgets.Layout(flex_flow="row wrap")))
        self.static_panel.children = panels
        self.static_panel.selected_index = MODES.index(self.mode.value)

    def _run(self, mode: str, src: int, other: int, steps: int) -> PathResult:
        x = self.images[src : src + 1]
        every = max(1, steps // (4 * self.frames))
        if mode == MODES[0]:
            return horizontal_path(
                self.model,
                x,
                self.images[other : other + 1],
                step_size=self.step_size,
                max_steps=steps,
                threshold=self.threshold,
                clamp=self.clamp,
                record_every=every,
                rtol=self.rtol,
                progress=False,
            )
        g = torch.Generator().manual_seed(other)
        direction = torch.randn(x.shape, generator=g).to(x.dtype)
        return across_leaves_path(
            self.model,
            x,
            direction,
            step_size=self.step_size,
            steps=steps,
            clamp=self.clamp,
            record_every=every,
            rtol=self.rtol,
            progress=False,
        )

    def load(
        self,
        result: PathResult,
        index: int = 0,
        *,
        mode: str = MODES[0],
        side_images: Sequence[torch.Tensor] = (),
    ) -> None:
        """Show one path of a :class:`~manifoldlib.paths.PathResult` (computed anywhere).

        Args:
            result: the paths.
            index: which path of the batch.
            mode: the view to fill, ``"horizontal"`` or ``"across leaves"``.
            side_images: images ``(*input_shape)`` shown beside the frames (source and
                target, or the start).
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not isinstance(result, PathResult):
            raise TypeError(f"result must be a PathResult, got {type(result).__name__}")
        if not 0 <= index < result.points.shape[1]:
            raise ValueError(f"index must be in [0, {result.points.shape[1]}), got {index}")
        view = self.views[mode]
        single = result.select(index)
        shown = _own_frames(single, self.frames)
        records = [r for r, _ in shown]
        what = "distance to target" if mode == MODES[0] else "distance from start"
        for k, (im, cap) in enumerate(zip(view.images, view.captions, strict=True)):
            if k >= len(records):
                im.value, cap.value = b"", ""
                continue
            r, step = shown[k]
            probs = single.class_probabilities[r, 0]
            c = int(single.predictions[r, 0])
            im.value = image_png(single.points[r, 0], self.to_pixels, self.scale)
            cap.value = (
                f'<div style="font:11px sans-serif">step {step}: predicted '
                f"<b>{html.escape(self.classes[c])}</b> (p = {float(probs[c]):.2f}), "
                f"{what} {float(single.distances[r, 0]):.1f}</div>"
                + probability_bars_html(probs.tolist(), self.classes)
            )
        for im, x in zip(view.side, side_images, strict=False):
            im.value = image_png(x, self.to_pixels, self.scale)
        view.result, view.records = single, records
        view.labels = [step for _, step in shown]
        view.settings = None
        view.slider.value = 0
        view.slider.max = len(records) - 1
        view.stack.selected_index = 0
        self.mode.value = mode

    # --- reading the displayed state (tests, printed facts) -----------------------------

    @property
    def frame(self) -> int:
        """The frame shown in the selected mode (the slider's value)."""
        return int(self.views[self.mode.value].slider.value)

    @frame.setter
    def frame(self, value: int) -> None:
        view = self.views[self.mode.value]
        if not 0 <= value <= view.slider.max:
            raise ValueError(f"frame must be in [0, {view.slider.max}], got {value}")
        view.slider.value = value

    def num_frames(self, mode: str | None = None) -> int:
        """Frames filled in a mode (0 before a path is computed or loaded)."""
        return len(self.views[self.mode.value if mode is None else mode].records)

    def displayed(self) -> dict[str, object]:
        """What the selected frame shows: step, predicted class, probabilities, caption.

        Returns:
            A dict with ``record`` (index into the path's records), ``step`` (the steps the
            path had taken at that frame), ``prediction``, ``probabilities`` (list of C floats) and ``caption`` (the HTML).
        """
        view = self.views[self.mode.value]
        if view.result is None:
            raise ValueError("no path yet: call compute() or load() first")
        k = int(view.stack.selected_index)
        r = view.records[k]
        return {
            "record": r,
            "step": view.labels[k],
            "prediction": int(view.result.predictions[r, 0]),
            "probabilities": view.result.class_probabilities[r, 0].tolist(),
            "caption": view.captions[k].value,
        }
