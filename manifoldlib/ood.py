"""Every out-of-distribution score of the book, and the controls for the leaf distance.

The chapter on OOD detection compares the paper's proposal (the distance from the data leaf,
:func:`tangent_residual`) with the standard scores of the literature, measured the same way:

- the leaf's scores: :func:`tangent_residual` (the distance from a point to the plane of its
  anchor's leaf piece, one Jacobian), :func:`log_trace` and :func:`trace_score` (the local
  trace of G, eq. 11);
- output-based scores: :func:`max_softmax_score` (Hendrycks & Gimpel, 2017),
  :func:`energy_score` (Liu et al., 2020) and :func:`gradnorm_score` (Huang et al., 2021);
- feature-based scores on the penultimate layer (:func:`penultimate_features`, read with a
  forward hook): :func:`mahalanobis_score` with class means and a shared covariance
  (:func:`fit_class_gaussians`, Lee et al., 2018) and :func:`knn_feature_score` on
  normalised features (Sun et al., 2022);
- a model-free score: :func:`high_frequency_energy`, the energy of an image minus its 3 x 3
  box blur (the measure of pixel noise of the chapter "Noisy leaves");
- controls that replace the distribution ``D_x`` by another 9-dimensional subspace:
  :func:`subspace_residual` with :func:`random_subspace_basis` or :func:`local_pca_basis`,
  and :func:`matched_isotropic_noise`, isotropic noise with the same norm after clipping as
  a given displacement.

The metrics (AUROC, DeLong's interval and paired test, FPR at 95% TPR) live in
:mod:`manifoldlib.stats`. Convention for every OOD score: **larger means more
out-of-distribution**.

Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import _jacobian as _jac
from ._checks import (
    CHUNK,
    check_finite,
    check_input,
    check_like,
    check_model,
    check_positive,
    check_same_shape,
    check_tensor,
    eval_mode,
)
from .leaf import _squared_distances

__all__ = [
    "ClassGaussians",
    "energy_score",
    "fit_class_gaussians",
    "gradnorm_score",
    "high_frequency_energy",
    "knn_feature_score",
    "local_pca_basis",
    "log_trace",
    "mahalanobis_score",
    "matched_isotropic_noise",
    "max_softmax_score",
    "penultimate_features",
    "random_subspace_basis",
    "subspace_residual",
    "tangent_residual",
    "trace_score",
]


def high_frequency_energy(pixels: torch.Tensor) -> torch.Tensor:
    """Model-free OOD score: the energy of an image minus its 3 x 3 box blur.

    ``||x - blur(x)||^2`` per image, with ``blur`` the mean over each pixel's 3 x 3
    neighbourhood (at the border over the neighbours inside the image). Strokes of a digit are
    smooth at that scale, pixel noise is not, so the score is large for noisy images.

    Args:
        pixels: ``(B, channels, H, W)`` images in pixel units (e.g. ``data.to_pixels(x)``).

    Returns:
        ``(B,)`` scores, larger = more high-frequency energy.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_tensor(pixels, "pixels", min_dim=4)
    if pixels.dim() != 4:
        raise ValueError(f"pixels must be (B, channels, H, W), got shape {tuple(pixels.shape)}")
    blur = torch.nn.functional.avg_pool2d(pixels, 3, stride=1, padding=1, count_include_pad=False)
    return (pixels - blur).flatten(1).pow(2).sum(1)


# --------------------------------------------------------------------------------------------
# Scores computed by the model at one point (the leaf's, the output's)
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
            rows, logp = _jac.difference_jacobian(model, c)  # C - 1 backward passes
            factor = _jac.metric_factor(rows, logp, differences=True)
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
    anchor, no path. Anchors: :func:`manifoldlib.leaf.nearest_neighbours`.

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


# --------------------------------------------------------------------------------------------
# Model outputs and features
# --------------------------------------------------------------------------------------------


def _last_linear(model: nn.Module) -> nn.Linear:
    last = None
    for module in model.modules():
        if isinstance(module, nn.Linear):
            last = module
    if last is None:
        raise ValueError("the model has no nn.Linear layer: pass the layer to hook explicitly")
    return last


def _forward_with_features(
    model: nn.Module, x: torch.Tensor, layer: nn.Module | None, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores ``(B, C)`` and the input of ``layer`` ``(B, D)`` (default: the last Linear)."""
    check_model(model)
    check_tensor(x, "x", min_dim=2)
    check_finite(x, "x")
    check_positive(chunk, "chunk", integer=True)
    layer = _last_linear(model) if layer is None else layer
    seen: list[torch.Tensor] = []

    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        seen.append(inputs[0].detach().flatten(1))

    handle = layer.register_forward_pre_hook(hook)
    try:
        with torch.no_grad(), eval_mode(model):
            scores = torch.cat([_jac.forward_scores(model, c) for c in x.split(chunk)])
    finally:
        handle.remove()
    return scores, torch.cat(seen)


def penultimate_features(
    model: nn.Module, x: torch.Tensor, *, layer: nn.Module | None = None, chunk: int = 512
) -> torch.Tensor:
    """The input of the model's last linear layer (its penultimate features), by a forward hook.

    For :class:`manifoldlib.models.MnistCNN` these are the 128 ReLU outputs of the first fully
    connected layer. The model is not changed: a forward pre-hook on ``layer`` records its
    input and is removed afterwards.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        layer: the module whose input to record (default: the last ``nn.Linear``).
        chunk: inputs per forward pass.

    Returns:
        ``(B, D)`` features.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_input(model, x)
    return _forward_with_features(model, x, layer, chunk)[1]


def energy_score(
    model: nn.Module, x: torch.Tensor, *, temperature: float = 1.0, chunk: int = 512
) -> torch.Tensor:
    """The energy score of Liu et al. (2020): ``E(x) = -T logsumexp(f(x) / T)``.

    ``f`` are the model's scores (logits); in-distribution inputs have lower energy, so the
    energy itself is the OOD score. Unlike the MSP it does not saturate at 1.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        temperature: ``T > 0``.
        chunk: inputs per forward pass.

    Returns:
        ``(B,)`` energies (larger = more out-of-distribution).

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_input(model, x)
    check_positive(temperature, "temperature")
    scores, _ = _forward_with_features(model, x, None, chunk)
    return -temperature * torch.logsumexp(scores / temperature, dim=1)


def gradnorm_score(
    model: nn.Module, x: torch.Tensor, *, temperature: float = 1.0, chunk: int = 512
) -> torch.Tensor:
    """GradNorm (Huang et al., 2021), negated so that larger means out-of-distribution.

    GradNorm is the L1 norm of the gradient, with respect to the weights ``W`` of the last
    linear layer, of the KL divergence between the uniform distribution ``u`` and the softmax
    ``p = softmax(f / T)``. With ``h`` the input of that layer, the gradient is
    ``(p - u) h^T / T``, a rank-one matrix whose L1 norm is ``||p - u||_1 ||h||_1 / T``: no
    backward pass is needed (the tests check the closed form against autograd). In-distribution
    inputs have larger gradients, so the score is ``-||p - u||_1 ||h||_1 / T``.

    Args:
        model: classifier whose last layer is an ``nn.Linear`` returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        temperature: ``T > 0``.
        chunk: inputs per forward pass.

    Returns:
        ``(B,)`` scores (larger = more out-of-distribution).

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_input(model, x)
    check_positive(temperature, "temperature")
    scores, h = _forward_with_features(model, x, None, chunk)
    p = torch.softmax(scores.double() / temperature, dim=1)
    u = 1.0 / p.shape[1]
    norm = (p - u).abs().sum(1) * h.double().abs().sum(1) / temperature
    return (-norm).to(x.dtype)


@dataclass
class ClassGaussians:
    """Class-conditional Gaussians with a shared covariance, fitted to features.

    Attributes:
        means: ``(C, D)`` class means.
        precision: ``(D, D)`` inverse of the shared (pooled, within-class) covariance.
    """

    means: torch.Tensor
    precision: torch.Tensor


def fit_class_gaussians(
    features: torch.Tensor, labels: torch.Tensor, *, ridge: float = 1e-6
) -> ClassGaussians:
    """Fit class means and one shared covariance to features (Lee et al., 2018).

    The covariance is the pooled within-class covariance ``(1/N) sum_i (f_i - mu_{y_i})
    (f_i - mu_{y_i})^T``, plus ``ridge`` times its mean diagonal on the diagonal (ReLU features
    can have dead units, which would make it singular); inverted in float64.

    Args:
        features: ``(N, D)`` training features.
        labels: ``(N,)`` integer labels ``0..C-1``; every class must occur.
        ridge: relative regularisation of the covariance.

    Returns:
        A :class:`ClassGaussians`.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_tensor(features, "features", min_dim=2)
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise ValueError(
            f"features must be (N, D) and labels (N,), got {tuple(features.shape)} and "
            f"{tuple(labels.shape)}"
        )
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge!r}")
    f = features.double()
    classes = int(labels.max()) + 1
    counts = torch.bincount(labels.long(), minlength=classes)
    if (counts == 0).any():
        raise ValueError(f"every class 0..{classes - 1} needs at least one example")
    means = torch.zeros(classes, f.shape[1], dtype=torch.float64).index_add_(0, labels.long(), f)
    means /= counts[:, None]
    centred = f - means[labels.long()]
    cov = centred.T @ centred / f.shape[0]
    cov += ridge * cov.diagonal().mean().clamp_min(1e-30) * torch.eye(f.shape[1], dtype=f.dtype)
    return ClassGaussians(means=means, precision=torch.linalg.inv(cov))


def mahalanobis_score(features: torch.Tensor, fit: ClassGaussians) -> torch.Tensor:
    """Squared Mahalanobis distance to the closest class mean (Lee et al., 2018).

    ``min_c (f - mu_c)^T Sigma^{-1} (f - mu_c)``, without the input preprocessing and layer
    ensemble of the original paper.

    Args:
        features: ``(B, D)`` features (e.g. :func:`penultimate_features`).
        fit: class means and shared precision from :func:`fit_class_gaussians`.

    Returns:
        ``(B,)`` distances (larger = more out-of-distribution).

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_tensor(features, "features", min_dim=2)
    diff = features.double()[:, None, :] - fit.means[None]  # (B, C, D)
    d2 = torch.einsum("bcd,de,bce->bc", diff, fit.precision, diff)
    return d2.min(dim=1).values.to(features.dtype)


def knn_feature_score(
    features: torch.Tensor, bank: torch.Tensor, *, k: int = 10, chunk: int = 1024
) -> torch.Tensor:
    """Deep k-nearest-neighbour score (Sun et al., 2022) on L2-normalised features.

    Both the queries and the bank (training features) are scaled to unit norm; the score is
    the Euclidean distance to the ``k``-th nearest bank feature (by the distance helper of
    :func:`manifoldlib.leaf.nearest_neighbours`).

    Args:
        features: ``(B, D)`` query features.
        bank: ``(N, D)`` training features, ``N >= k``.
        k: which neighbour.
        chunk: queries per distance matrix.

    Returns:
        ``(B,)`` distances in ``[0, 2]`` (larger = more out-of-distribution).

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_tensor(features, "features", min_dim=2)
    check_tensor(bank, "bank", min_dim=2)
    check_positive(k, "k", integer=True)
    if k > bank.shape[0]:
        raise ValueError(f"k = {k} exceeds the bank size {bank.shape[0]}")
    check_positive(chunk, "chunk", integer=True)
    b = torch.nn.functional.normalize(bank.double(), dim=1)
    q = torch.nn.functional.normalize(features.double(), dim=1)
    out = [
        d2.clamp_min(0).kthvalue(k, dim=1).values.sqrt()
        for d2, _ in _squared_distances(q, b, chunk)
    ]
    return torch.cat(out).to(features.dtype)


# --------------------------------------------------------------------------------------------
# Controls: other subspaces than D_x, isotropic noise of matched norm
# --------------------------------------------------------------------------------------------


def subspace_residual(anchors: torch.Tensor, x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """Distance from ``x`` to the affine plane ``a + span(basis)``: ``||(I - Q Q^T)(x - a)||``.

    With ``Q`` an orthonormal basis of ``D_a`` this is :func:`manifoldlib.tangent_residual`;
    with another subspace of the same dimension it is a control for it.

    Args:
        anchors: ``(B, *input_shape)`` points ``a``.
        x: ``(B, *input_shape)`` queries.
        basis: ``(B, n, k)`` or ``(n, k)`` orthonormal columns, ``n`` the number of pixels.

    Returns:
        ``(B,)`` distances.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_tensor(anchors, "anchors", min_dim=2)
    check_tensor(x, "x", min_dim=2)
    check_same_shape(anchors, x, "anchors", "x")
    delta = (x - anchors).flatten(1).double()
    q = basis.double()
    if q.dim() == 2:
        q = q.expand(delta.shape[0], -1, -1)
    if q.dim() != 3 or q.shape[:2] != (delta.shape[0], delta.shape[1]):
        raise ValueError(
            f"basis must be ({delta.shape[0]}, {delta.shape[1]}, k) or ({delta.shape[1]}, k), "
            f"got {tuple(basis.shape)}"
        )
    coords = torch.einsum("bnk,bn->bk", q, delta)
    residual = delta - torch.einsum("bnk,bk->bn", q, coords)
    return residual.norm(dim=1).to(x.dtype)


def random_subspace_basis(
    batch: int, n: int, k: int, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Orthonormal bases of ``batch`` independent uniformly random ``k``-dimensional subspaces.

    QR of Gaussian ``(n, k)`` matrices (with the signs of ``R``'s diagonal fixed, the
    subspace is Haar-distributed).

    Args:
        batch: number of subspaces.
        n: ambient dimension.
        k: subspace dimension, ``k <= n``.
        generator: random generator.

    Returns:
        ``(batch, n, k)`` float64 orthonormal columns.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    for value, name in ((batch, "batch"), (n, "n"), (k, "k")):
        check_positive(value, name, integer=True)
    if k > n:
        raise ValueError(f"k = {k} exceeds n = {n}")
    g = torch.randn(batch, n, k, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    return q * torch.sign(torch.diagonal(r, dim1=1, dim2=2)).unsqueeze(1)


def local_pca_basis(
    anchors: torch.Tensor, bank: torch.Tensor, *, neighbours: int = 30, k: int = 9
) -> torch.Tensor:
    """Tangent plane of the data estimated from the data alone: local PCA around each anchor.

    The ``neighbours`` bank images nearest to the anchor ``a`` (itself excluded when it is in
    the bank) give the directions ``b_j - a``; their top ``k`` right singular vectors span
    the plane through ``a`` that best fits the neighbourhood, a model-free counterpart of
    ``D_a``.

    Args:
        anchors: ``(B, *input_shape)``.
        bank: ``(N, *input_shape)`` training images, ``N > neighbours``.
        neighbours: how many nearest bank images to use, ``>= k``.
        k: dimension of the plane.

    Returns:
        ``(B, n, k)`` float64 orthonormal columns.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_tensor(anchors, "anchors", min_dim=2)
    check_tensor(bank, "bank", min_dim=2)
    check_positive(neighbours, "neighbours", integer=True)
    check_positive(k, "k", integer=True)
    if k > neighbours or neighbours >= bank.shape[0]:
        raise ValueError(f"need k <= neighbours < N, got k={k}, neighbours={neighbours}")
    a = anchors.flatten(1).double()
    b = bank.flatten(1).double()
    idx = []
    for d2, b_sq in _squared_distances(a, b, CHUNK):
        d2 = torch.where(d2 <= 1e-12 * b_sq.max(), torch.inf, d2)  # the anchor itself
        idx.append(d2.topk(neighbours, dim=1, largest=False).indices)  # (chunk, neighbours)
    diffs = b[torch.cat(idx)] - a[:, None, :]  # (B, neighbours, n)
    _, _, vh = torch.linalg.svd(diffs, full_matrices=False)
    return vh[:, :k, :].transpose(1, 2).contiguous()


def matched_isotropic_noise(
    x: torch.Tensor,
    norms: torch.Tensor,
    *,
    clamp: tuple[torch.Tensor | float, torch.Tensor | float] | None = None,
    generator: torch.Generator | None = None,
    iterations: int = 60,
) -> torch.Tensor:
    """Isotropic noise whose displacement has a given norm **after** clipping.

    For each image a uniformly random direction ``e`` (unit norm) is drawn and the scale ``s``
    is found by bisection so that ``||clip(x + s e) - x|| = norm`` (the left side grows with
    ``s``, so bisection converges). Clipping removes part of the energy of naive noise; this
    matches it to, e.g., the displacement of a path across leaves, which is clipped too.
    Where the norm cannot be reached (every pixel saturated), the largest reachable one is
    used.

    Args:
        x: ``(B, *input_shape)`` clean images.
        norms: ``(B,)`` target norms of ``clip(x + s e) - x``.
        clamp: ``(low, high)`` pixel range (numbers or tensors broadcastable to ``x``), or None.
        generator: random generator for the directions.
        iterations: bisection steps.

    Returns:
        ``(B, *input_shape)`` noisy images.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    check_tensor(x, "x", min_dim=2)
    check_finite(x, "x")
    norms = torch.as_tensor(norms, dtype=torch.float64, device=x.device).flatten()
    if norms.shape[0] != x.shape[0] or (norms < 0).any():
        raise ValueError("norms must hold one non-negative norm per image")
    xd = x.double()
    # drawn on the generator's device (a CPU generator gives the same draws everywhere)
    gen_device = generator.device if generator is not None else x.device
    e = torch.randn(x.shape, generator=generator, dtype=torch.float64, device=gen_device)
    e = e.to(x.device)
    e = e / e.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))
    shape = (-1, *([1] * (x.dim() - 1)))

    def moved(s: torch.Tensor) -> torch.Tensor:
        y = xd + s.view(shape) * e
        if clamp is not None:
            lo, hi = (torch.as_tensor(c, dtype=torch.float64, device=x.device) for c in clamp)
            y = torch.maximum(torch.minimum(y, hi), lo)
        return y

    def size(s: torch.Tensor) -> torch.Tensor:
        return (moved(s) - xd).flatten(1).norm(dim=1)

    low = torch.zeros_like(norms)
    high = norms.clone()
    for _ in range(40):  # grow the upper end until it reaches the target (or saturates)
        short = size(high) < norms
        if not short.any():
            break
        high = torch.where(short, 2 * high, high)
    for _ in range(iterations):
        mid = (low + high) / 2
        below = size(mid) < norms
        low, high = torch.where(below, mid, low), torch.where(below, high, mid)
    return moved(high).to(x.dtype)
