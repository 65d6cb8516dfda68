"""The paper's "data leaf" put to work: moving off it, anchors on it, projecting on it.

The paper (§4.3 and §6) conjectures that all valid data lie on one leaf of the foliation, the
*data leaf*, that other leaves hold noisy images, and proposes two uses it never tried: the
distance from the data leaf as an out-of-distribution (OOD) score, and a projection on the
data leaf as a denoiser. For a ReLU network the leaf pieces (flat, one per activation region)
do not glue into leaves across region faces, so the objects computed here are named by what
they are (book/03 and book/19): leaf pieces, horizontal paths and, for what paths can reach,
orbits. This module holds what the chapters of Part III need:

- :func:`across_leaves_noise` (images moved along ker G, off their leaf piece, in short
  re-projected steps) and :func:`noise_dx_share` (its manipulation check: the share of a noise
  displacement in D, at the clean and at the noisy image);
- :func:`nearest_neighbours` (anchors: training images; its distance matrix is the one of
  ``denoise.knn_denoise`` and of the feature and PCA neighbours in :mod:`manifoldlib.ood`);
- :func:`leaf_projection` (a horizontal path from an anchor towards a point, and where it
  stops).

Every OOD score, the leaf distance ``tangent_residual`` included, lives in
:mod:`manifoldlib.ood`; the statistics (Wilson, Clopper-Pearson, AUROC, DeLong) in
:mod:`manifoldlib.stats`, the image utilities (PSNR, blur) in :mod:`manifoldlib.images` and
the rendered letters in :mod:`manifoldlib.data`.

Introduced in the chapters "How far horizontal paths get between test images" (book/12),
"Out-of-distribution detection by distance from leaf pieces" (book/13) and "Denoising along
horizontal paths" (book/14).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from . import _jacobian as _jac
from ._checks import (
    CHUNK,
    check_input,
    check_like,
    check_positive,
    check_tensor,
    eval_mode,
)
from .paths import Clamp, across_leaves_path, horizontal_path

__all__ = [
    "LeafProjection",
    "NoiseShare",
    "across_leaves_noise",
    "leaf_projection",
    "nearest_neighbours",
    "noise_dx_share",
]


# --------------------------------------------------------------------------------------------
# The leaf: moving off it, anchors on it, distances from it
# --------------------------------------------------------------------------------------------


def across_leaves_noise(
    model: nn.Module,
    x: torch.Tensor,
    distance: float,
    *,
    max_step: float = 0.1,
    clamp: Clamp = None,
    rtol: float | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Images moved off their leaf piece: a path across leaves (§4.2) along a Gaussian direction.

    A thin wrapper of :func:`manifoldlib.across_leaves_path` with one fixed Gaussian direction
    per image, re-projected on ``ker G`` at every step, in ``ceil(distance / max_step)``
    equal steps of length at most ``max_step``: the path length is ``distance`` (the
    Euclidean displacement is at most that, less when clamping bites or the direction turns).
    The paper uses 250 steps of 0.1 (Figure 6). The steps are short because ``ker G(x)``
    changes along the path (at every face of an activation region, and with every clamp):
    re-projecting at every short step is what keeps the path across leaves (chapter "Moving
    across leaves", its exercise on long steps); a few long steps are a different noise.
    Check what the noise is with :func:`noise_dx_share`.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: starting images ``(B, *input_shape)``.
        distance: total path length (normalised units), > 0.
        max_step: the longest step (default 0.1, the paper's), > 0; the path takes
            ``ceil(distance / max_step)`` steps of ``distance / steps``.
        clamp: ``(low, high)`` pixel range to clamp into after each step, or None.
        rtol: relative tolerance for degenerate gradients (see ``LowRankPSD.rank``).
        generator: random generator for the Gaussian directions.

    Returns:
        ``(B, *input_shape)`` noisy images.

    Raises:
        ValueError: ``distance`` or ``max_step`` not a positive finite number.

    Introduced in the chapter "How far horizontal paths get between test images".
    """
    check_input(model, x)
    check_positive(distance, "distance")
    check_positive(max_step, "max_step")
    steps = max(1, math.ceil(distance / max_step - 1e-9))
    direction = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    path = across_leaves_path(
        model,
        x,
        direction,
        step_size=distance / steps,
        steps=steps,
        clamp=clamp,
        record_every=steps,
        rtol=rtol,
    )
    return path.final


@dataclass(frozen=True)
class NoiseShare:
    """How much of a noise displacement ``z - x`` lies in ``D``: a manipulation check.

    Attributes:
        at_clean: ``(B,)`` ``||P_{D_x}(z - x)|| / ||z - x||`` at the clean image ``x``.
        at_noisy: ``(B,)`` ``||P_{D_z}(z - x)|| / ||z - x||`` at the noisy image ``z``.

    A random direction in ``R^n`` has a share about ``sqrt((C - 1) / n)`` (0.107 for MNIST);
    noise that lies in ``ker G`` has share 0 at the point where ``ker G`` is taken.
    """

    at_clean: torch.Tensor
    at_noisy: torch.Tensor


def noise_dx_share(
    model: nn.Module,
    x: torch.Tensor,
    noisy: torch.Tensor,
    *,
    rtol: float | None = None,
    chunk: int = CHUNK,
) -> NoiseShare:
    """The share of a noise displacement in ``D``, at the clean image and at the noisy one.

    The manipulation check of a comparison between noise along ``ker G`` and isotropic noise:
    the two arms test "alignment with ker G" only where their shares differ.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: ``(B, *input_shape)`` clean images.
        noisy: ``(B, *input_shape)`` noisy images ``z``, each different from its ``x``.
        rtol: relative tolerance for degenerate gradients.
        chunk: images per Jacobian.

    Returns:
        A :class:`NoiseShare` of ``(B,)`` shares in ``[0, 1]``, in ``x``'s dtype.

    Raises:
        ValueError: shapes differ, or some ``z`` equals its ``x`` (no displacement).

    Introduced in the chapter "How far horizontal paths get between test images".
    """
    check_input(model, x)
    check_like(x, noisy, "x", "noisy")
    check_positive(chunk, "chunk", integer=True)
    delta = (noisy - x).detach()
    size = delta.flatten(1).norm(dim=1)
    if bool((size == 0).any()):
        raise ValueError("noisy must differ from x for every image (a zero displacement)")
    shares = []
    for base in (x, noisy):
        parts = []
        with eval_mode(model):
            for b, v in zip(base.detach().split(chunk), delta.split(chunk), strict=True):
                rows, _ = _jac.difference_jacobian(model, b)
                parts.append(_jac.project(rows, v, rtol, differences=True).flatten(1).norm(dim=1))
        shares.append((torch.cat(parts) / size).to(x.dtype))
    return NoiseShare(at_clean=shares[0], at_noisy=shares[1])


def _squared_distances(
    query: torch.Tensor, bank: torch.Tensor, chunk: int
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Squared Euclidean distances of ``chunk`` queries at a time to every bank image.

    The one distance matrix of :func:`nearest_neighbours` and ``denoise.knn_denoise``:
    ``||q - b||^2 = ||q||^2 - 2 q.b + ||b||^2`` in float64 (so near-duplicates keep digits),
    not clamped (round-off may leave tiny negatives).

    Yields:
        ``(chunk, N)`` squared distances and ``(N,)`` ``||b||^2``.
    """
    b_flat = bank.flatten(1).double()
    b_sq = b_flat.pow(2).sum(1)
    for q in query.flatten(1).double().split(chunk):
        yield q.pow(2).sum(1, keepdim=True) - 2 * q @ b_flat.T + b_sq, b_sq


def nearest_neighbours(
    query: torch.Tensor, bank: torch.Tensor, *, exclude_self: bool = False, chunk: int = CHUNK
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean nearest neighbour of each query in a bank of images.

    Used to pick an *anchor* for each query: a training image (by the paper's conjecture, a
    point of the data leaf; in the book's terms, a point whose orbit the test images may share).

    Args:
        query: ``(B, *input_shape)``.
        bank: ``(N, *input_shape)``.
        exclude_self: ignore exact zero distances (when the query belongs to the bank).
        chunk: queries per distance matrix.

    Returns:
        ``indices`` ``(B,)`` into the bank and ``distances`` ``(B,)``.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_tensor(query, "query", min_dim=2)
    check_tensor(bank, "bank", min_dim=2)
    if query.shape[1:] != bank.shape[1:]:
        raise ValueError(
            f"query and bank must hold images of the same shape, got {tuple(query.shape[1:])} "
            f"and {tuple(bank.shape[1:])}"
        )
    idx, dist = [], []
    for d2, b_sq in _squared_distances(query, bank, chunk):
        d2 = d2.clamp_min(0)
        if exclude_self:
            d2 = torch.where(d2 <= 1e-12 * b_sq.max(), torch.inf, d2)
        best = d2.min(dim=1)
        idx.append(best.indices)
        dist.append(best.values.sqrt())
    return torch.cat(idx), torch.cat(dist).to(query.dtype)


@dataclass
class LeafProjection:
    """Where horizontal paths from anchors towards given points end.

    Attributes:
        points: ``(B, *input_shape)`` the end of each path: a point of the anchor's orbit (up
            to the discretisation of the path) close to the query.
        residual: ``(B,)`` distance from the end to the query.
        initial: ``(B,)`` distance from the anchor to the query.
        steps_taken: ``(B,)`` steps made by each path.
        stop_reasons: why each path stopped (see :class:`manifoldlib.PathResult`).
    """

    points: torch.Tensor
    residual: torch.Tensor
    initial: torch.Tensor
    steps_taken: torch.Tensor
    stop_reasons: list[str]

    @property
    def relative_residual(self) -> torch.Tensor:
        """``(B,)`` residual divided by the initial distance."""
        return self.residual / self.initial.clamp_min(1e-30)


def leaf_projection(
    model: nn.Module,
    anchors: torch.Tensor,
    x: torch.Tensor,
    *,
    step_size: float = 0.5,
    max_steps: int = 100,
    threshold: float = 1e-3,
    clamp: Clamp = None,
    rtol: float | None = None,
) -> LeafProjection:
    """Move from each anchor towards ``x`` along a horizontal path; return where it stops.

    Algorithm 1 (§4.3) is projected gradient descent of ``||x - p||^2`` along horizontal
    directions: run from an anchor towards ``x``, each step lies in ``D`` at its base point (so
    the path stays in the anchor's orbit, crossing from leaf piece to leaf piece at region
    faces), and it ends where ``x - p`` is orthogonal to ``D_p`` (a stationary point of the
    distance along horizontal directions; or where ``max_steps`` stops it). Its end is the
    computable stand-in for the paper's "projection of x on the data leaf", and the residual
    ``||x - p||`` an upper bound (up to the path's discretisation) of the distance from ``x``
    to the points horizontal paths reach from the anchor. Neither needs a clean ``x``.

    Limits: the descent is greedy, so the end depends on the anchor and may be a local
    minimum far from the true closest point; ``D`` has dimension ``C - 1`` only, so the end
    looks like a deformation of the anchor.

    Args:
        model: classifier returning scores ``(B, C)``.
        anchors: starting points ``(B, *input_shape)`` (e.g. the nearest
            training images, see :func:`nearest_neighbours`).
        x: the points to approach ``(B, *input_shape)``.
        step_size: longest step (the path shortens it near the end, see
            :func:`manifoldlib.horizontal_path`).
        max_steps: most steps per path.
        threshold: stop when closer than this to ``x``.
        clamp: pixel range to clamp into after each step, or None.
        rtol: relative tolerance for degenerate gradients (see ``LowRankPSD.rank``).

    Returns:
        A :class:`LeafProjection`.

    Introduced in the chapter "Denoising along horizontal paths".
    """
    check_input(model, anchors, "anchors")
    check_like(anchors, x, "anchors", "x")
    path = horizontal_path(
        model,
        anchors,
        x,
        step_size=step_size,
        max_steps=max_steps,
        threshold=threshold,
        clamp=clamp,
        record_every=max_steps,
        rtol=rtol,
    )
    return LeafProjection(
        points=path.final,
        residual=path.distances[-1],
        initial=path.distances[0],
        steps_taken=path.steps_taken,
        stop_reasons=list(path.stop_reasons),
    )
