"""Figures in the paper's style: path strips, trace curves, GIFs.

Introduced in the chapter "The pipeline end to end" (book/00).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from .images import ToPixels
from .images import frame_indices as _frame_indices
from .images import to_pixel_array as _image
from .paths import PathResult

__all__ = ["ema", "path_strip", "save_gif", "show_images", "trace_curve"]


def ema(values: Sequence[float], alpha: float = 0.1) -> np.ndarray:
    """Exponential moving average ``m_t = (1 - alpha) m_{t-1} + alpha v_t``, ``m_0 = v_0``.

    Args:
        values: the series.
        alpha: weight of the newest value, in (0, 1].

    Returns:
        The smoothed series, same length.
    """
    if not 0 < alpha <= 1:
        raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
    v = np.asarray(values, dtype=float)
    out = np.empty_like(v)
    for i, x in enumerate(v):
        out[i] = x if i == 0 else (1 - alpha) * out[i - 1] + alpha * x
    return out


def path_strip(
    result: PathResult,
    index: int = 0,
    *,
    frames: int | Sequence[int] = 8,
    to_pixels: ToPixels | None = None,
    classes: Sequence[str] | None = None,
    target: torch.Tensor | None = None,
    title: str | None = None,
    size: float = 1.1,
) -> Figure:
    """A strip of images along one path, each frame labelled as in Figures 3-6 of the paper.

    Each frame's title gives the path's own step (a path that stopped early stays at its
    last step) and its distance: to the target for horizontal paths, from the start for
    paths across leaves (whose first distance is 0). Below each frame: the predicted class
    and its probability; below the last frame, why the path stopped, where known.

    Args:
        result: the paths.
        index: which path of the batch.
        frames: number of evenly spaced records, or the record indices to show.
        to_pixels: map from model inputs to pixels in [0, 1] (e.g. ``data.to_pixels``).
        classes: class names (default: the class index).
        target: an image ``(*input_shape)`` to append as the destination.
        title: figure title.
        size: inches per frame.

    Returns:
        The matplotlib figure.
    """
    one = result.select(index)  # checks index; every tensor below has B = 1
    idx = _frame_indices(one.points.shape[0], frames)
    n = len(idx) + (target is not None)
    fig, axes = plt.subplots(1, n, figsize=(size * n, size * 1.7), squeeze=False)
    taken = int(one.steps_taken[0]) if len(one.steps_taken) else None
    # Paths across leaves record their distance from the start (0 at the first record).
    where = "from start" if float(one.distances[0, 0]) == 0.0 else "to target"
    reason = one.stop_reasons[0] if one.stop_reasons else None
    short = {"reached": "reached", "max_steps": "max steps", "vanishing direction": "stalled"}
    for k, (ax, r) in enumerate(zip(axes[0], idx, strict=False)):
        img = _image(one.points[r, 0], to_pixels)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        c = int(one.predictions[r, 0])
        name = classes[c] if classes is not None else str(c)
        own = int(one.steps[r]) if taken is None else min(int(one.steps[r]), taken)
        dist = float(one.distances[r, 0])
        ax.set_title(f"step {own}\n{where} {dist:.1f}", fontsize=7)
        label = f"{name} {float(one.probabilities[r, 0]):.2f}"
        if k == len(idx) - 1 and reason:
            label += f"\nstop: {short.get(reason, reason)}"
        ax.set_xlabel(label, fontsize=8)
    if target is not None:
        ax = axes[0][-1]
        img = _image(target, to_pixels)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_title("target", fontsize=7)
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig


def show_images(
    images: torch.Tensor,
    labels: Sequence[str] | None = None,
    *,
    to_pixels: ToPixels | None = None,
    ncols: int | None = None,
    size: float = 1.1,
    title: str | None = None,
) -> Figure:
    """A grid of images ``(N, *input_shape)`` with optional captions.

    Args:
        images: the images.
        labels: one caption per image.
        to_pixels: map from model inputs to pixels in [0, 1].
        ncols: columns (default: all in one row).
        size: inches per image.
        title: figure title.

    Returns:
        The matplotlib figure.
    """
    n = images.shape[0]
    ncols = ncols or n
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * 1.3 * nrows), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        img = _image(images[i], to_pixels)
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        if labels is not None:
            ax.set_xlabel(labels[i], fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.3)
    return fig


def trace_curve(
    history: dict[str, list], *, alpha: float = 0.1, ax: plt.Axes | None = None
) -> plt.Axes:
    """Mean trace of G during training, raw (blue) and EMA-smoothed (red), as Figure 2.

    Args:
        history: a training history with ``step`` and ``trace``.
        alpha: EMA weight.
        ax: axes to draw on (new figure if None).

    Returns:
        The axes.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    steps, trace = history["step"], history["trace"]
    ax.plot(steps, trace, color="tab:blue", lw=1, label="mean Tr G")
    ax.plot(steps, ema(trace, alpha), color="tab:red", lw=1.5, label=f"EMA (alpha={alpha})")
    ax.set_xlabel("training step")
    ax.set_ylabel("mean Tr G(x, w)")
    ax.legend(fontsize=8)
    return ax


def save_gif(
    result: PathResult,
    path: str | os.PathLike,
    index: int = 0,
    *,
    to_pixels: ToPixels | None = None,
    frames: int = 40,
    duration_ms: int = 80,
    scale: int = 4,
) -> None:
    """Write one path as an animated GIF.

    Args:
        result: the paths.
        path: output file.
        index: which path of the batch.
        to_pixels: map from model inputs to pixels in [0, 1].
        frames: number of evenly spaced records.
        duration_ms: time per frame.
        scale: integer upscaling of each image.
    """
    from PIL import Image

    single = result.select(index)
    imgs = []
    for r in _frame_indices(single.points.shape[0], frames):
        a = (_image(single.points[r, 0], to_pixels) * 255).round().astype(np.uint8)
        im = Image.fromarray(a)
        imgs.append(im.resize((im.width * scale, im.height * scale), Image.NEAREST))
    imgs[0].save(path, save_all=True, append_images=imgs[1:], duration=duration_ms, loop=0)
