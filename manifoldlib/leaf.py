"""The paper's "data leaf" put to work: path statistics, out-of-distribution scores, denoising.

The paper (§4.3 and §6) conjectures that all valid data lie on one leaf of the foliation, the
*data leaf*, that other leaves hold noisy images, and proposes two uses it never tried: the
distance from the data leaf as an out-of-distribution (OOD) score, and a projection on the
data leaf as a denoiser. For a ReLU network the leaf pieces (flat, one per activation region)
do not glue into leaves across region faces, so the objects computed here are named by what
they are (book/03 and book/19): leaf pieces, horizontal paths and, for what paths can reach,
orbits. This module holds what the chapters of Part III need:

- moving off, anchoring, measuring: :func:`across_leaves_noise` (images moved along ker G,
  off their leaf piece, in short re-projected steps), :func:`noise_dx_share` (its manipulation
  check: the share of a noise displacement in D, at the clean and at the noisy image),
  :func:`nearest_neighbours` (anchors: training images), :func:`tangent_residual` (the
  distance from a point to the anchor's leaf piece continued as the plane ``a + D_a``, one
  Jacobian) and :func:`leaf_projection` (a horizontal path from an anchor towards a point,
  and where it stops);
- scores: :func:`max_softmax_score` (the baseline of Hendrycks & Gimpel, 2017),
  :func:`log_trace` and :func:`trace_score` (the local trace of G, eq. 11);

The statistics (Wilson, Clopper-Pearson, AUROC) live in :mod:`manifoldlib.stats`, the image
utilities (PSNR, blur) in :mod:`manifoldlib.images` and the rendered letters in
:mod:`manifoldlib.data`.

Convention for every OOD score: **larger means more out-of-distribution**, and
``auroc(in, out)`` is the probability that an out-of-distribution input scores higher than an
in-distribution one (ties count one half).

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

# The imports marked F401: names that lived here before the split into data, images and
# stats, kept importable as ``manifoldlib.leaf.<name>``.
from .paths import Clamp, across_leaves_path, horizontal_path

__all__ = [
    "LeafProjection",
    "NoiseShare",
    "across_leaves_noise",
    "leaf_projection",
    "log_trace",
    "max_softmax_score",
    "nearest_neighbours",
    "noise_dx_share",
    "tangent_residual",
    "trace_score",
]


# --------------------------------------------------------------------------------------------
# Scores computed by the model at one point
# --------------------------------------------------------------------------------------------


def max_softmax_score(model: nn.Module, x: torch.Tensor, *, chunk: int = CHUNK) -> torch.Tensor:
    """The maximum-softmax-probability baseline, as an OOD score: ``-max_i p_i(y|x, w)``.

    Hendrycks & Gimpel (2017): a classifier is less confident out of distribution, so the
    negated top probability is larger there. Forward passes only.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        chunk: inputs per forward pass.

    Returns:
        ``(B,)`` scores in ``[-1, -1/C]``.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_input(model, x)
    check_positive(chunk, "chunk", integer=True)
    with torch.no_grad(), eval_mode(model):
        logp = torch.cat([_jac.forward_log_probs(model, c) for c in x.split(chunk)])
    return -logp.max(dim=1).values.exp()


def log_trace(model: nn.Module, x: torch.Tensor, *, chunk: int = CHUNK) -> torch.Tensor:
    """``log Tr G(x, w)`` for each input, exactly (one Jacobian, no sampling).

    ``Tr G = E_{y~p} ||grad_x log p_y||^2`` (eq. 11): by eq. (8), ``n`` times the mean KL
    divergence per unit squared step in a random direction, i.e. how strongly the model's
    output reacts to a move of the input in a random direction.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        chunk: inputs per Jacobian.

    Returns:
        ``(B,)`` log-traces (the trace is floored at 1e-30 before the log).

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_input(model, x)
    check_positive(chunk, "chunk", integer=True)
    traces = []
    with eval_mode(model):
        for c in x.split(chunk):
            jac, logp = _jac.jacobian_of_scores(model, c)
            factor = _jac.metric_factor(jac, logp)
            traces.append(factor.double().pow(2).sum(dim=(1, 2)))
    return torch.cat(traces).clamp_min(1e-30).log().to(x.dtype)


def trace_score(
    model: nn.Module, x: torch.Tensor, reference: torch.Tensor, *, chunk: int = CHUNK
) -> torch.Tensor:
    """How atypical the local trace of G is: ``|log Tr G(x) - m| / s``.

    ``m`` is the median and ``s`` the interquartile range / 1.349 (a robust standard
    deviation) of ``reference``, the log-traces of in-distribution inputs (e.g. training
    images; see :func:`log_trace`). Two-sided, because nothing in the theory fixes in which
    direction the trace moves away from the data: near the training images of a partially trained
    model the trace has a typical size, and an input is suspicious when it is either much
    more or much less sensitive. Only in-distribution data are used to calibrate it.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        reference: ``(N,)`` log-traces of in-distribution inputs, ``N >= 4``.
        chunk: inputs per Jacobian.

    Returns:
        ``(B,)`` scores, larger = more atypical.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_tensor(reference, "reference", min_dim=1)
    if reference.dim() != 1 or reference.numel() < 4:
        raise ValueError(f"reference must be (N,) log-traces, N >= 4, got {tuple(reference.shape)}")
    ref = reference.double()
    q1, m, q3 = torch.quantile(ref, torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    scale = float((q3 - q1) / 1.349)
    if not scale > 0:
        raise ValueError("reference log-traces have zero spread; pass more varied inputs")
    values = log_trace(model, x, chunk=chunk).double()
    return ((values - m).abs() / scale).to(x.dtype)


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


def tangent_residual(
    model: nn.Module,
    anchors: torch.Tensor,
    x: torch.Tensor,
    *,
    rtol: float | None = None,
    chunk: int = CHUNK,
) -> torch.Tensor:
    """Distance ``||P_ker G(a) (x - a)||`` from ``x`` to the plane of the anchor's leaf piece.

    The leaf piece through the anchor ``a`` lies in the affine plane ``a + D_a`` (for a ReLU
    network it is that plane cut to the anchor's activation region). The distance
    from ``x`` to that plane is the norm of the part of ``x - a`` in ``ker G(a, w)``: the
    "kernel energy" that a move from ``a`` to ``x`` must spend off that plane. One Jacobian per
    anchor, no path.

    Args:
        model: classifier returning scores ``(B, C)``.
        anchors: reference points (e.g. training images) ``(B, *input_shape)``.
        x: query points ``(B, *input_shape)``.
        rtol: relative tolerance for degenerate gradients (see ``LowRankPSD.rank``).
        chunk: pairs per Jacobian.

    Returns:
        ``(B,)`` distances (normalised units).

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_input(model, anchors, "anchors")
    check_like(anchors, x, "anchors", "x")
    check_positive(chunk, "chunk", integer=True)
    delta = (x.detach() - anchors).double()
    with eval_mode(model):
        return _jac.kernel_norms(model, anchors, delta, rtol, chunk).to(x.dtype)


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
