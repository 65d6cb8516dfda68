"""The data leaf put to work: path statistics, out-of-distribution scores and denoising.

The paper (§4.3 and §6) conjectures that all valid data lie on one leaf of the foliation, the
*data leaf*, that other leaves hold noisy images, and proposes two uses it never tried: the
distance from the data leaf as an out-of-distribution (OOD) score, and a projection on the
data leaf as a denoiser. This module holds what the chapters of Part III need for that:

- statistics: :func:`wilson_interval`, :func:`clopper_pearson_interval` (success rates of
  paths), :func:`auroc` (Mann-Whitney) and :func:`auroc_interval` (DeLong);
- the leaf: :func:`across_leaves_noise` (images moved off their leaf along ker G),
  :func:`nearest_neighbours` (anchors on the data leaf), :func:`tangent_residual` (the
  first-order distance from the data leaf, one Jacobian) and :func:`leaf_projection` (a
  horizontal path from an anchor towards a point: its end is a point of the anchor's leaf
  close to it);
- scores: :func:`max_softmax_score` (the baseline of Hendrycks & Gimpel, 2017),
  :func:`log_trace` and :func:`trace_score` (the local trace of G, eq. 11);
- images: :func:`psnr`, :func:`gaussian_blur` and :func:`best_blur` (the denoising
  baseline), :func:`rendered_characters` (an offline second data set of letters).

Convention for every OOD score: **larger means more out-of-distribution**, and
``auroc(in, out)`` is the probability that an out-of-distribution input scores higher than an
in-distribution one (ties count one half).

Introduced in the chapters "How much of the data lies on one leaf" (book/12),
"Out-of-distribution detection by distance from the data leaf" (book/13) and "Denoising by
returning to the data leaf" (book/14).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import torch
from torch import nn

from . import _jacobian as _jac
from ._checks import (
    check_finite,
    check_input,
    check_positive,
    check_same_shape,
    check_tensor,
    eval_mode,
)
from .paths import Clamp, across_leaves_path, horizontal_path

__all__ = [
    "LETTERS",
    "LeafProjection",
    "across_leaves_noise",
    "auroc",
    "auroc_interval",
    "best_blur",
    "clopper_pearson_interval",
    "gaussian_blur",
    "leaf_projection",
    "log_trace",
    "max_softmax_score",
    "nearest_neighbours",
    "psnr",
    "rendered_characters",
    "tangent_residual",
    "trace_score",
    "wilson_interval",
]


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------


def _check_counts(successes: int, trials: int, confidence: float) -> None:
    for value, name in ((successes, "successes"), (trials, "trials")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if trials <= 0:
        raise ValueError(f"trials must be positive, got {trials}")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be between 0 and trials = {trials}, got {successes}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion.

    Unlike the textbook ``p +- z sqrt(p(1-p)/n)`` it never leaves ``[0, 1]`` and does not
    collapse to a point at 0 or n successes (0/200 gives about ``[0, 0.019]``).

    Args:
        successes: number of successes ``k``.
        trials: number of trials ``n >= 1``.
        confidence: coverage of the interval (two-sided).

    Returns:
        ``(low, high)``.

    Introduced in the chapter "How much of the data lies on one leaf".
    """
    _check_counts(successes, trials, confidence)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def clopper_pearson_interval(
    successes: int, trials: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Clopper-Pearson ("exact") interval for a binomial proportion.

    The bounds are the proportions ``p`` at which observing ``k`` or more (resp. ``k`` or
    fewer) successes has probability ``(1 - confidence) / 2``, through the beta quantiles
    ``Beta(k, n - k + 1)`` and ``Beta(k + 1, n - k)``. Conservative: coverage at least the
    nominal level for every ``p``.

    Args:
        successes: number of successes ``k``.
        trials: number of trials ``n >= 1``.
        confidence: coverage of the interval (two-sided).

    Returns:
        ``(low, high)``.

    Introduced in the chapter "How much of the data lies on one leaf".
    """
    from scipy.stats import beta

    _check_counts(successes, trials, confidence)
    alpha = 1 - confidence
    k, n = int(successes), int(trials)
    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def _as_scores(values: object, name: str) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one score per input), got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; expected at least one score")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite scores")
    return arr


def _placements(s_in: np.ndarray, s_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each out score the share of in scores below it (ties 1/2), and vice versa.

    Both by binary search in the sorted other sample: ``O((n + m) log(n + m))``.
    """
    sorted_in, sorted_out = np.sort(s_in), np.sort(s_out)
    below_in = np.searchsorted(sorted_in, s_out, side="left")
    not_above_in = np.searchsorted(sorted_in, s_out, side="right")
    out_place = (below_in + not_above_in) / 2 / s_in.size  # P(in < out_j) + P(tie)/2
    above_out = s_out.size - np.searchsorted(sorted_out, s_in, side="right")
    not_below_out = s_out.size - np.searchsorted(sorted_out, s_in, side="left")
    in_place = (above_out + not_below_out) / 2 / s_out.size  # P(out > in_i) + P(tie)/2
    return in_place, out_place


def auroc(scores_in: object, scores_out: object) -> float:
    """Area under the ROC curve of a score that should be larger out of distribution.

    Computed as the Mann-Whitney statistic: ``P(S_out > S_in) + P(S_out = S_in) / 2`` over all
    pairs, which equals the area under the ROC curve of the test "out if score > t". 0.5 is
    chance, 1 a perfect separation, 0 a perfect separation in the wrong direction. Runs in
    ``O((n + m) log(n + m))`` by binary search instead of counting the ``n m`` pairs.

    Args:
        scores_in: ``(n,)`` scores of in-distribution inputs (tensor, array or sequence).
        scores_out: ``(m,)`` scores of out-of-distribution inputs.

    Returns:
        The AUROC in ``[0, 1]``.

    Introduced in the chapter "Out-of-distribution detection by distance from the data leaf".
    """
    s_in, s_out = _as_scores(scores_in, "scores_in"), _as_scores(scores_out, "scores_out")
    _, out_place = _placements(s_in, s_out)
    return float(out_place.mean())


def auroc_interval(
    scores_in: object, scores_out: object, confidence: float = 0.95
) -> tuple[float, float, float]:
    """AUROC with DeLong's normal-approximation confidence interval.

    DeLong, DeLong & Clarke-Pearson (1988): with the placements ``V_out_j`` (the share of in
    scores below out score ``j``) and ``V_in_i`` (the share of out scores above in score
    ``i``), the AUROC is their mean and its variance is
    ``var(V_out) / m + var(V_in) / n``. Deterministic (no bootstrap), so a printed claim such
    as "the lower bound exceeds 0.9" is reproducible.

    Args:
        scores_in: ``(n,)`` in-distribution scores, ``n >= 2``.
        scores_out: ``(m,)`` out-of-distribution scores, ``m >= 2``.
        confidence: two-sided coverage.

    Returns:
        ``(auroc, low, high)``, the bounds clipped to ``[0, 1]``.

    Introduced in the chapter "Out-of-distribution detection by distance from the data leaf".
    """
    s_in, s_out = _as_scores(scores_in, "scores_in"), _as_scores(scores_out, "scores_out")
    if s_in.size < 2 or s_out.size < 2:
        raise ValueError("auroc_interval needs at least 2 scores on each side")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    in_place, out_place = _placements(s_in, s_out)
    area = float(out_place.mean())
    var = out_place.var(ddof=1) / s_out.size + in_place.var(ddof=1) / s_in.size
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(max(var, 0.0))
    return area, max(0.0, area - half), min(1.0, area + half)


# --------------------------------------------------------------------------------------------
# Scores computed by the model at one point
# --------------------------------------------------------------------------------------------


def max_softmax_score(model: nn.Module, x: torch.Tensor, *, chunk: int = 512) -> torch.Tensor:
    """The maximum-softmax-probability baseline, as an OOD score: ``-max_i p_i(y|x, w)``.

    Hendrycks & Gimpel (2017): a classifier is less confident out of distribution, so the
    negated top probability is larger there. Forward passes only.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        chunk: inputs per forward pass.

    Returns:
        ``(B,)`` scores in ``[-1, -1/C]``.

    Introduced in the chapter "Out-of-distribution detection by distance from the data leaf".
    """
    check_input(model, x)
    check_positive(chunk, "chunk", integer=True)
    with torch.no_grad(), eval_mode(model):
        logp = torch.cat([_jac.forward_log_probs(model, c) for c in x.split(chunk)])
    return -logp.max(dim=1).values.exp()


def log_trace(model: nn.Module, x: torch.Tensor, *, chunk: int = 256) -> torch.Tensor:
    """``log Tr G(x, w)`` for each input, exactly (one Jacobian, no sampling).

    ``Tr G = E_{y~p} ||grad_x log p_y||^2`` (eq. 11): by eq. (8), ``n`` times the mean KL
    divergence per unit squared step in a random direction, i.e. how strongly the model's
    output reacts to a move of the input along its leaf.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        chunk: inputs per Jacobian.

    Returns:
        ``(B,)`` log-traces (the trace is floored at 1e-30 before the log).

    Introduced in the chapter "Out-of-distribution detection by distance from the data leaf".
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
    model: nn.Module, x: torch.Tensor, reference: torch.Tensor, *, chunk: int = 256
) -> torch.Tensor:
    """How atypical the local trace of G is: ``|log Tr G(x) - m| / s``.

    ``m`` is the median and ``s`` the interquartile range / 1.349 (a robust standard
    deviation) of ``reference``, the log-traces of in-distribution inputs (e.g. training
    images; see :func:`log_trace`). Two-sided, because nothing in the theory fixes in which
    direction the trace moves away from the data: near the data leaf of a partially trained
    model the trace has a typical size, and an input is suspicious when it is either much
    more or much less sensitive. Only in-distribution data are used to calibrate it.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        reference: ``(N,)`` log-traces of in-distribution inputs, ``N >= 4``.
        chunk: inputs per Jacobian.

    Returns:
        ``(B,)`` scores, larger = more atypical.

    Introduced in the chapter "Out-of-distribution detection by distance from the data leaf".
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
    steps: int = 10,
    clamp: Clamp = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Images moved off their leaf: a path across leaves (§4.2) along a Gaussian direction.

    A thin wrapper of :func:`manifoldlib.across_leaves_path` with one fixed Gaussian direction
    per image, projected on ``ker G`` at every step, and ``steps`` steps of length
    ``distance / steps``: the path length is ``distance`` (the Euclidean displacement is at
    most that, less when clamping bites). The paper uses 250 steps of 0.1 (Figure 6); since
    ``ker G`` has dimension ``n - C + 1`` (775 of 784 for MNIST) the projected direction
    hardly turns along the way, so a few long steps give nearly the same images, much faster.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: starting images ``(B, *input_shape)``.
        distance: total path length (normalised units).
        steps: number of steps.
        clamp: ``(low, high)`` pixel range to clamp into after each step, or None.
        generator: random generator for the Gaussian directions.

    Returns:
        ``(B, *input_shape)`` noisy images.

    Introduced in the chapter "How much of the data lies on one leaf".
    """
    check_input(model, x)
    check_positive(distance, "distance")
    check_positive(steps, "steps", integer=True)
    direction = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    path = across_leaves_path(
        model,
        x,
        direction,
        step_size=distance / steps,
        steps=steps,
        clamp=clamp,
        record_every=steps,
        progress=False,
    )
    return path.final


def nearest_neighbours(
    query: torch.Tensor, bank: torch.Tensor, *, exclude_self: bool = False, chunk: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean nearest neighbour of each query in a bank of images.

    Used to pick an *anchor* on the data leaf for each query: a training image, which by the
    paper's conjecture lies on the data leaf.

    Args:
        query: ``(B, *input_shape)``.
        bank: ``(N, *input_shape)``.
        exclude_self: ignore exact zero distances (when the query belongs to the bank).
        chunk: queries per distance matrix.

    Returns:
        ``indices`` ``(B,)`` into the bank and ``distances`` ``(B,)``.

    Introduced in the chapter "Out-of-distribution detection by distance from the data leaf".
    """
    check_tensor(query, "query", min_dim=2)
    check_tensor(bank, "bank", min_dim=2)
    if query.shape[1:] != bank.shape[1:]:
        raise ValueError(
            f"query and bank must hold images of the same shape, got {tuple(query.shape[1:])} "
            f"and {tuple(bank.shape[1:])}"
        )
    b_flat = bank.flatten(1).double()
    b_sq = b_flat.pow(2).sum(1)
    idx, dist = [], []
    for q in query.flatten(1).double().split(chunk):
        # ||q - b||^2 = ||q||^2 - 2 q.b + ||b||^2, in float64 so near-duplicates keep digits.
        d2 = (q.pow(2).sum(1, keepdim=True) - 2 * q @ b_flat.T + b_sq).clamp_min(0)
        if exclude_self:
            d2 = torch.where(d2 <= 1e-12 * b_sq.max(), torch.inf, d2)
        best = d2.min(dim=1)
        idx.append(best.indices)
        dist.append(best.values.sqrt())
    return torch.cat(idx), torch.cat(dist).to(query.dtype)


def tangent_residual(
    model: nn.Module, anchors: torch.Tensor, x: torch.Tensor, *, chunk: int = 256
) -> torch.Tensor:
    """First-order distance from ``x`` to the leaf of ``anchors``: ``||P_ker G(a) (x - a)||``.

    Near the anchor ``a`` the leaf through it is, to first order, the affine plane
    ``a + D_a`` (for a ReLU network exactly so inside the anchor's linear region). The distance
    from ``x`` to that plane is the norm of the part of ``x - a`` in ``ker G(a, w)``: the
    "kernel energy" that a move from ``a`` to ``x`` must spend off the leaf. One Jacobian per
    anchor, no path.

    Args:
        model: classifier returning scores ``(B, C)``.
        anchors: points on the reference leaf ``(B, *input_shape)``.
        x: query points ``(B, *input_shape)``.
        chunk: pairs per Jacobian.

    Returns:
        ``(B,)`` distances (normalised units).

    Introduced in the chapter "Out-of-distribution detection by distance from the data leaf".
    """
    check_input(model, anchors, "anchors")
    check_tensor(x, "x", min_dim=2)
    check_same_shape(anchors, x, "anchors", "x")
    check_finite(x, "x")
    out = []
    with eval_mode(model):
        for a, q in zip(anchors.split(chunk), x.detach().split(chunk), strict=True):
            jac, _ = _jac.jacobian_of_scores(model, a)
            delta = (q - a).double()
            tangent = _jac.project(jac, delta)
            out.append((delta - tangent).flatten(1).norm(dim=1))
    return torch.cat(out).to(x.dtype)


@dataclass
class LeafProjection:
    """Where horizontal paths from anchors towards given points end.

    Attributes:
        points: ``(B, *input_shape)`` the end of each path: a point on the anchor's leaf (up to
            the discretisation of the path) close to the query.
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
) -> LeafProjection:
    """Approximate the point of the anchor's leaf closest to ``x`` by a horizontal path.

    Algorithm 1 (§4.3) is Riemannian gradient descent of ``||x - p||^2`` over points ``p`` of a
    leaf: run from an anchor on the data leaf towards ``x``, it stays on the data leaf and
    ends where ``x - p`` is orthogonal to the leaf (a local minimum of the distance; or where
    ``max_steps`` stops it). Its end is a computable "projection of x on the data leaf" and
    the residual ``||x - p||`` an upper bound (up to the path's discretisation) of the distance
    from ``x`` to the leaf. Neither needs to know a clean version of ``x``.

    Limits: the descent is greedy, so the end depends on the anchor and may be a local
    minimum far from the true closest point; the leaf has dimension ``C - 1`` only, so the
    end looks like a deformation of the anchor.

    Args:
        model: classifier returning scores ``(B, C)``.
        anchors: starting points on the reference leaf ``(B, *input_shape)`` (e.g. the nearest
            training images, see :func:`nearest_neighbours`).
        x: the points to approach ``(B, *input_shape)``.
        step_size: longest step (the path shortens it near the end, see
            :func:`manifoldlib.horizontal_path`).
        max_steps: most steps per path.
        threshold: stop when closer than this to ``x``.
        clamp: pixel range to clamp into after each step, or None.

    Returns:
        A :class:`LeafProjection`.

    Introduced in the chapter "Denoising by returning to the data leaf".
    """
    path = horizontal_path(
        model,
        anchors,
        x,
        step_size=step_size,
        max_steps=max_steps,
        threshold=threshold,
        clamp=clamp,
        record_every=max_steps,
        progress=False,
    )
    return LeafProjection(
        points=path.final,
        residual=path.distances[-1],
        initial=path.distances[0],
        steps_taken=path.steps_taken,
        stop_reasons=list(path.stop_reasons),
    )


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def psnr(estimate: torch.Tensor, clean: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image, ``10 log10(range^2 / MSE)`` in dB.

    Args:
        estimate: ``(B, *image_shape)`` images in pixel units (e.g. ``data.to_pixels(x)``).
        clean: ``(B, *image_shape)`` the clean images, same units.
        data_range: the span of pixel values (1 for pixels in ``[0, 1]``).

    Returns:
        ``(B,)`` PSNR values (infinite for a perfect estimate).

    Introduced in the chapter "Denoising by returning to the data leaf".
    """
    check_tensor(estimate, "estimate", min_dim=2)
    check_tensor(clean, "clean", min_dim=2)
    check_same_shape(clean, estimate, "clean", "estimate")
    check_positive(data_range, "data_range")
    mse = (estimate.double() - clean.double()).flatten(1).pow(2).mean(1)
    return (10 * torch.log10(data_range**2 / mse)).to(estimate.dtype)


def _gaussian_kernel(sigma: float, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(dtype)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each channel with a Gaussian of standard deviation ``sigma`` pixels.

    Separable (rows, then columns), truncated at ``3 sigma`` and renormalised, with zero
    padding: the background of MNIST is 0 in pixel units, so pass pixel images, not normalised
    ones.

    Args:
        images: ``(B, C, H, W)`` images.
        sigma: standard deviation in pixels; ``sigma = 0`` returns the images unchanged.

    Returns:
        ``(B, C, H, W)`` blurred images.

    Introduced in the chapter "Denoising by returning to the data leaf".
    """
    check_tensor(images, "images", min_dim=4)
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)):
        raise TypeError(f"sigma must be a number, got {type(sigma).__name__}")
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma!r}")
    if sigma == 0:
        return images.clone()
    k = _gaussian_kernel(float(sigma), images.dtype).to(images.device)
    c, r = images.shape[1], k.numel() // 2
    rows = k.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    cols = k.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    out = torch.nn.functional.conv2d(images, rows, padding=(0, r), groups=c)
    return torch.nn.functional.conv2d(out, cols, padding=(r, 0), groups=c)


def best_blur(noisy: torch.Tensor, clean: torch.Tensor, sigmas: Sequence[float]) -> float:
    """The blur width with the highest mean PSNR on a tuning batch (an oracle-tuned baseline).

    Args:
        noisy: ``(B, C, H, W)`` noisy pixel images.
        clean: ``(B, C, H, W)`` their clean versions (tuning data, not the test images).
        sigmas: candidate widths.

    Returns:
        The best ``sigma``.
    """
    if len(sigmas) == 0:
        raise ValueError("sigmas must hold at least one width")
    scores = [float(psnr(gaussian_blur(noisy, s).clamp(0, 1), clean).mean()) for s in sigmas]
    return float(sigmas[int(np.argmax(scores))])


#: Letters rendered as a second, offline data set: those that look least like a digit.
LETTERS = "ACEFHKMNPRTUVWXYacdefhkmnprtuvwxy"


def rendered_characters(
    count: int, *, seed: int = 0, chars: str = LETTERS, size: int = 28
) -> torch.Tensor:
    """Characters drawn with PIL's default font, centred like MNIST digits: an offline OOD set.

    Each image holds one character of ``chars`` (cycled), white on black, at a random font size
    (16-22 px), stroke width 1 or 2 and rotation (+-15 degrees), then centred by its centre of
    mass as MNIST digits are. Nothing is downloaded; glyphs can differ slightly between Pillow
    versions, so use these images for claims with margins.

    Args:
        count: number of images.
        seed: seed of the random sizes and rotations.
        chars: the characters to draw.
        size: side of the square image in pixels.

    Returns:
        ``(count, 1, size, size)`` float32 pixels in ``[0, 1]``.

    Introduced in the chapter "Out-of-distribution detection by distance from the data leaf".
    """
    from PIL import Image, ImageDraw, ImageFont

    check_positive(count, "count", integer=True)
    check_positive(size, "size", integer=True)
    if not chars:
        raise ValueError("chars must hold at least one character")
    rng = np.random.default_rng(seed)
    out = np.zeros((count, 1, size, size), dtype=np.float32)
    big = 2 * size
    for i in range(count):
        font = ImageFont.load_default(size=int(rng.integers(16, 23)))
        canvas = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(canvas)
        draw.text(
            (big // 2, big // 2),
            chars[i % len(chars)],
            fill=255,
            font=font,
            anchor="mm",
            stroke_width=int(rng.integers(1, 3)),
            stroke_fill=255,
        )
        canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
        img = np.asarray(canvas, dtype=np.float32) / 255.0
        # Centre of mass to the middle, as MNIST's preprocessing does (integer shift).
        ys, xs = np.indices(img.shape)
        mass = img.sum()
        cy, cx = (ys * img).sum() / mass, (xs * img).sum() / mass
        top = int(round(cy)) - size // 2
        left = int(round(cx)) - size // 2
        out[i, 0] = img[top : top + size, left : left + size]
    return torch.from_numpy(out)
