"""The differentiation core: every derivative of the model with respect to its input x.

Private. The public modules (``geometry``, ``paths``, ``leaf``, ``adversarial``,
``foliation``, ...) check their arguments, then call these small functions, which check
nothing and assume eval mode. Keeping them in one place means one implementation to make fast
and one to test against the float64 oracles of ``tests/oracles.py``.

Notation (the module docstring of :mod:`manifoldlib.geometry` gives the derivation): ``S`` is
the ``C x n`` Jacobian of the class scores ``s(x, w)``, ``p = softmax(s)``, ``H`` a ``C x (C-1)``
orthonormal basis of the zero-sum vectors (Helmert), ``M = diag(p) - p p^T``. Then

- ``G(x, w) = S^T M S = A^T A`` with ``A = K S``, ``K = (H^T M H)^(1/2) H^T`` (``(C-1) x C``);
- ``D_x = (ker G)^perp`` is the row space of ``H^T S`` (independent of ``p``).

Functions, by what they return:

- :func:`forward_scores`, :func:`forward_log_probs`: the forward pass under the model contract;
- :func:`jacobian_of_scores`: ``S`` for a batch, and ``log p``;
- :func:`difference_jacobian`: only the ``C - 1`` rows ``H^T S`` that ``D_x`` and ``G`` need;
- :func:`logprob_rows`: ``grad log p_i`` from ``S`` (chain rule of log-softmax);
- :func:`logprob_vjp`: products ``u^T grad_x log p`` for a batch of cotangents ``u``;
- :func:`metric_quadratic`: ``v^T G v`` for a batch of vectors ``v``, one forward-mode pass;
- :func:`metric_root`, :func:`metric_coefficients`: ``K``; :func:`metric_factor`: ``A = K S``;
- :func:`tangent_coordinates`, :func:`project`: ``D_x`` and the orthogonal projection on it;
- :func:`kernel_norms`: ``||v - P v||``, the part of each vector across the leaf;
- :func:`logprob_brackets`: Lie brackets of the fields ``grad log p_i`` (second derivatives).

And every derivative in the parameters ``w`` (the Fisher matrix, the parameter-space fields of
the Remark of §3), with the parameters flattened in the order of ``model.named_parameters()``:

- :func:`weight_log_probs_fn`: ``w -> log p(y|x, w)`` as a function of the flat vector ``w``
  (for second derivatives in ``w``);
- :func:`weight_score_jacobian`: ``dS/dw`` ``(B, C, d)`` per sample (``torch.func.jacrev``
  under ``vmap``: one reverse pass per class for the whole batch, not one per sample and class).

Introduced in the chapter "Computing it fast".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "GRAM_CHUNK_ELEMENTS",
    "JAC_CHUNK",
    "default_rtol",
    "difference_jacobian",
    "forward_log_probs",
    "forward_scores",
    "helmert",
    "jacobian_of_scores",
    "kernel_norms",
    "logprob_brackets",
    "logprob_rows",
    "logprob_vjp",
    "metric_coefficients",
    "metric_root",
    "metric_factor",
    "metric_quadratic",
    "project",
    "tangent_coordinates",
    "weight_log_probs_fn",
    "weight_score_jacobian",
    "work_dtype",
    "metric_gram",
    "symmetric_gram",
    "SYMMETRIC_GRAM_MIN_CLASSES",
]

#: Classes per vectorised backward pass for a single input (see :func:`jacobian_of_scores`).
JAC_CHUNK = 25
#: Elements of a working copy per chunk when a factor or a Gram matrix is accumulated.
GRAM_CHUNK_ELEMENTS = 2**24


def forward_scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's class scores ``(B, C)`` for ``x`` ``(B, *input_shape)``, checked.

    Args:
        model: classifier, in eval mode.
        x: inputs ``(B, *input_shape)``.

    Returns:
        ``(B, C)`` scores.

    Raises:
        ValueError: the model failed on ``x`` (the message names the shape received and what a
            batch looks like; the model's own exception is chained), or it broke the contract
            (not ``(B, C)``, ``C < 2``, non-finite scores).
    """
    try:
        scores = model(x)
    except torch.OutOfMemoryError:
        raise
    except (RuntimeError, ValueError) as err:  # torch's shape errors (matmul, conv, batch-norm)
        raise ValueError(
            f"the model failed on x of shape {tuple(x.shape)}: {err}. x must be a batch "
            f"(B, *input_shape) whose input_shape the model accepts, e.g. (B, 1, 28, 28) for "
            "MNIST digits; a single image needs its batch dimension (x[None])"
        ) from err
    if not isinstance(scores, torch.Tensor) or scores.dim() != 2 or scores.shape[0] != x.shape[0]:
        shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise ValueError(
            f"model must return class scores of shape (B, C) = ({x.shape[0]}, C), got {shape}"
        )
    if scores.shape[1] < 2:
        raise ValueError(
            f"model must return at least C = 2 class scores, got C = {scores.shape[1]}: "
            "with one class p(y|x) = 1 and G(x, w) = 0 everywhere"
        )
    if not bool(torch.isfinite(scores).all()):
        raise ValueError("model returned NaN or infinite scores for this input")
    return scores


def forward_log_probs(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``log p(y|x, w)`` ``(B, C)``: log-softmax of :func:`forward_scores` (graph kept).

    Args:
        model: classifier, in eval mode.
        x: inputs ``(B, *input_shape)``.

    Returns:
        ``(B, C)`` log-probabilities.
    """
    return F.log_softmax(forward_scores(model, x), dim=1)


def jacobian_of_scores(
    model: nn.Module, x: torch.Tensor, *, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Jacobian ``S`` of the scores w.r.t. x, ``(B, C, *in)``, and ``log p`` ``(B, C)``.

    Scores of a model ending in LogSoftmax are log-probabilities: their Jacobian differs from
    that of the raw scores by a multiple of one row per sample, which changes neither
    ``grad log p`` nor G nor D_x (all built from differences ``grad s_i - grad s_j``).

    Args:
        model: classifier, in eval mode.
        x: inputs ``(B, *input_shape)``.
        create_graph: keep the graph (for second derivatives); otherwise both are detached.

    Returns:
        ``jac`` ``(B, C, *input_shape)`` and ``logp`` ``(B, C)``.
    """
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        scores = forward_scores(model, xg)
        logp = F.log_softmax(scores, dim=1)
        c = scores.shape[1]
        if create_graph:
            rows = [
                torch.autograd.grad(scores[:, i].sum(), xg, retain_graph=True, create_graph=True)[0]
                for i in range(c)
            ]
            return torch.stack(rows, dim=1), logp
        # Written into one preallocated tensor: stacking a list of rows would hold the
        # Jacobian twice (1.2 GB instead of 0.6 GB at ImageNet size, C = 1000).
        jac = torch.empty((x.shape[0], c, *x.shape[1:]), dtype=x.dtype, device=x.device)
        if x.shape[0] == 1:
            # One sample: vectorised backward passes over chunks of one-hot cotangents.
            # Chunked, because is_grads_batched over all C = 1000 classes of an ImageNet net
            # was measured 20x slower (and 2 GB larger) than the plain loop, while chunks of
            # JAC_CHUNK classes beat the loop (by 1.3x for the MNIST CNN).
            eye = torch.eye(c, dtype=scores.dtype, device=scores.device)
            starts = range(0, c, JAC_CHUNK)
            for k, a in enumerate(starts):
                cot = eye[a : a + JAC_CHUNK].unsqueeze(1)  # (k, 1, C)
                (g,) = torch.autograd.grad(
                    scores, xg, cot, is_grads_batched=True, retain_graph=k < len(starts) - 1
                )
                jac[0, a : a + JAC_CHUNK] = g[:, 0]
        else:
            # C backward passes over the whole batch: measured faster than vmap for B > 1 on
            # CPUs (the batch already fills the cores), and it needs no functorch.
            for i in range(c):
                jac[:, i] = torch.autograd.grad(scores[:, i].sum(), xg, retain_graph=i < c - 1)[0]
    return jac, logp.detach()


def difference_jacobian(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``C - 1`` rows ``H^T S`` ``(B, C-1, *in)`` that span ``D_x``, and ``log p`` ``(B, C)``.

    ``D_x``, the projections on it and on ``ker G`` need only the differences of the score
    gradients, whose orthonormal combinations are the rows of ``H^T S`` (``H``:
    :func:`helmert`). Each row is one backward pass with a column of ``H`` as cotangent, so
    this costs ``C - 1`` backward passes instead of the ``C`` of :func:`jacobian_of_scores`
    (measured 1.12x faster per path step on the MNIST CNN, batch 32, one thread); the loop
    over rows beat one vectorised (``is_grads_batched``) pass over all ``B (C - 1)`` cotangents
    for ``B > 1`` on CPUs (0.86x), as for the full Jacobian. For one input the rows run
    vectorised in chunks of ``JAC_CHUNK``, as in :func:`jacobian_of_scores`.

    Args:
        model: classifier, in eval mode.
        x: inputs ``(B, *input_shape)``.

    Returns:
        ``rows`` ``(B, C-1, *input_shape)`` (detached, ``x``'s dtype) and ``logp`` ``(B, C)``.
    """
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        scores = forward_scores(model, xg)
        logp = F.log_softmax(scores, dim=1).detach()
        c = scores.shape[1]
        h = helmert(c, scores.dtype, scores.device)  # (C, C-1)
        rows = torch.empty((x.shape[0], c - 1, *x.shape[1:]), dtype=x.dtype, device=x.device)
        if x.shape[0] == 1:
            starts = range(0, c - 1, JAC_CHUNK)
            for k, a in enumerate(starts):
                cot = h[:, a : a + JAC_CHUNK].T.unsqueeze(1)  # (k, 1, C)
                (g,) = torch.autograd.grad(
                    scores, xg, cot, is_grads_batched=True, retain_graph=k < len(starts) - 1
                )
                rows[0, a : a + JAC_CHUNK] = g[:, 0]
        else:
            for i in range(c - 1):
                cot = h[:, i].expand_as(scores)
                rows[:, i] = torch.autograd.grad(scores, xg, cot, retain_graph=i < c - 2)[0]
    return rows, logp


def logprob_rows(jac: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    """Rows ``grad log p_i = grad s_i - sum_k p_k grad s_k`` (chain rule of log-softmax).

    Args:
        jac: score Jacobian ``(B, C, *input_shape)``.
        logp: log-probabilities ``(B, C)``.

    Returns:
        ``(B, C, *input_shape)`` Jacobian of ``log p``.
    """
    mean = torch.einsum("bk,bk...->b...", logp.exp(), jac)
    return jac - mean.unsqueeze(1)


def logprob_vjp(
    model: nn.Module,
    x: torch.Tensor,
    cotangents: torch.Tensor | Callable[[torch.Tensor], torch.Tensor],
    *,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
    per_pass: int = 256,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Products ``sum_i u_i grad_x log p_i`` for a stack of cotangents ``u``.

    One backward pass per cotangent, batched through ``is_grads_batched`` up to ``per_pass``
    images x cotangents at a time (a large batch already fills the cores; vmap multiplies the
    memory). Used for the Monte-Carlo trace (one-hot draws) and the FGSM gradient.

    Args:
        model: classifier, in eval mode.
        x: inputs ``(B, *input_shape)``.
        cotangents: ``(S, B, C)``, or a callable of ``log p`` ``(B, C)`` (detached) returning
            them (for cotangents that depend on the prediction).
        reduce: applied to each chunk of products ``(s, B, *input_shape)`` before they are
            concatenated (e.g. squared norms), so that all ``S`` products are never held.
        per_pass: images x cotangents per backward pass.

    Returns:
        ``(S, B, *input_shape)`` products (or their reductions) and ``log p`` ``(B, C)``
        (detached).
    """
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        logp = forward_log_probs(model, xg)
        cot = cotangents(logp.detach()) if callable(cotangents) else cotangents
        chunks = cot.to(logp.dtype).split(max(1, per_pass // x.shape[0]))
        out = []
        for k, u in enumerate(chunks):
            if u.shape[0] == 1:
                # One cotangent per image: a plain backward pass (the vectorised one cost 25%
                # more for the Monte-Carlo trace's single draw).
                (g,) = torch.autograd.grad(logp, xg, u[0], retain_graph=k < len(chunks) - 1)
                g = g.unsqueeze(0)
            else:
                (g,) = torch.autograd.grad(
                    logp, xg, u, is_grads_batched=True, retain_graph=k < len(chunks) - 1
                )
            out.append(g if reduce is None else reduce(g))
    return torch.cat(out), logp.detach()


def metric_quadratic(model: nn.Module, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``v^T G(x, w) v = sum_i p_i (grad log p_i . v)^2`` ``(B,)`` float64, by one ``jvp``.

    One forward-mode pass (``torch.func.jvp``) gives the directional derivatives ``S v`` of
    the ``C`` scores; with ``p = softmax(s)``, ``grad log p_i . v = (S v)_i - p . (S v)`` and
    the quadratic form is their variance under ``p``, computed in float64. No Jacobian and no
    factor of ``G``: measured 38 ms against 237 ms through G's factor (issue 26). Every
    G-length and every ``delta^T G delta`` of the package goes through here.

    Args:
        model: classifier, in eval mode.
        x: base points ``(B, *input_shape)``.
        v: vectors ``(B, *input_shape)`` (cast to ``x``'s dtype).

    Returns:
        ``(B,)`` non-negative float64 values.
    """
    from torch.func import jvp

    with warnings.catch_warnings():
        # torch's first forward-mode pass scripts its decompositions with torch.jit.script,
        # which warns that torch.jit.script is deprecated: torch's own doing, not the caller's.
        warnings.filterwarnings("ignore", message=".*torch.jit.script", category=FutureWarning)
        scores, tangent = jvp(
            lambda z: forward_scores(model, z), (x.detach(),), (v.detach().to(x.dtype),)
        )
    logp = F.log_softmax(scores.detach().double(), dim=1)
    sv = tangent.detach().double()  # (B, C) = S v
    centred = sv - (logp.exp() * sv).sum(1, keepdim=True)  # grad log p_i . v
    return (logp.exp() * centred.pow(2)).sum(1)


def default_rtol(num_rows: int, dtype: torch.dtype) -> float:
    """Default relative tolerance on singular values for ``num_rows`` gradient rows.

    Not NumPy's ``max(M, N) * eps``: with ``m = 10^6`` parameters (the Fisher matrix) that
    would be 0.1 in float32. The Gram matrix is formed in float64, so the error left is that
    of the gradients themselves (a few eps of their dtype) or, for float64 gradients, the Gram
    route's own resolution ``sqrt(eps64) = 1.5e-8`` on singular values. The exact zero of
    Prop. 2.1.3 appears at about 4e-8 relative on the float32 MNIST CNN; ``10 * C * eps``
    leaves a margin of 30 there.

    Args:
        num_rows: number of spanning rows (``C - 1``).
        dtype: dtype of the gradients.

    Returns:
        ``10 * num_rows * max(eps(dtype), sqrt(eps64))``.
    """
    eps = max(torch.finfo(dtype).eps, torch.finfo(torch.float64).eps ** 0.5)
    return 10 * num_rows * eps


def helmert(num_classes: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(C, C-1)`` orthonormal basis ``H`` of the vectors whose entries sum to zero.

    Args:
        num_classes: ``C``.
        dtype: dtype of the result.
        device: device of the result.

    Returns:
        The Helmert basis ``(C, C-1)``.
    """
    h = torch.zeros(num_classes, num_classes - 1, dtype=dtype, device=device)
    for k in range(1, num_classes):
        h[:k, k - 1] = 1.0
        h[k, k - 1] = -float(k)
        h[:, k - 1] /= math.sqrt(k * (k + 1))
    return h


def work_dtype(t: torch.Tensor) -> torch.dtype:
    """Dtype of the small ``C x C`` algebra: float64, except on Apple's MPS (no float64)."""
    return torch.float64 if t.device.type != "mps" else torch.float32


def metric_root(logp: torch.Tensor) -> torch.Tensor:
    """``(H^T M H)^(1/2)`` ``(B, C-1, C-1)``, ``M = diag(p) - p p^T``, without cancellation.

    The diagonal ``p_i (1 - p_i)`` is formed as ``p_i * sum_{k != i} p_k`` from the
    log-probabilities (``1 - p_i`` in float would lose every digit for a confident class).
    ``K = root H^T`` (:func:`metric_coefficients`) satisfies ``K^T K = M``, because ``H H^T`` is the
    projection on the zero-sum vectors and ``M`` annihilates the all-ones vector.

    Args:
        logp: log-probabilities ``(B, C)``.

    Returns:
        ``(B, C-1, C-1)`` symmetric PSD, in :func:`work_dtype`.
    """
    b, c = logp.shape
    dtype = work_dtype(logp)
    lp = logp.to(dtype)
    p = lp.exp()
    others = lp.unsqueeze(1).expand(b, c, c).clone()
    others.diagonal(dim1=1, dim2=2).fill_(-math.inf)
    rest = torch.logsumexp(others, dim=2).exp()  # sum_{k != i} p_k
    m = -p.unsqueeze(2) * p.unsqueeze(1)
    m.diagonal(dim1=1, dim2=2).copy_(p * rest)
    h = helmert(c, dtype, logp.device)
    lam, v = torch.linalg.eigh(h.T @ m @ h)
    return (v * lam.clamp_min(0).sqrt().unsqueeze(1)) @ v.transpose(1, 2)


def metric_coefficients(logp: torch.Tensor) -> torch.Tensor:
    """``K`` ``(B, C-1, C)`` with ``K^T K = diag(p) - p p^T``: :func:`metric_root` times ``H^T``.

    Args:
        logp: log-probabilities ``(B, C)``.

    Returns:
        ``(B, C-1, C)`` in :func:`work_dtype`.
    """
    root = metric_root(logp)
    return root @ helmert(logp.shape[1], root.dtype, logp.device).T


def metric_factor(
    jac: torch.Tensor, logp: torch.Tensor, *, differences: bool = False
) -> torch.Tensor:
    """The factor ``A = K S`` ``(B, C-1, n)`` of ``G = A^T A``, written over ``jac``.

    The product is formed chunk by chunk over columns, so that the factor costs no memory
    beyond the Jacobian itself. ``jac`` is overwritten. From the ``C - 1`` rows ``R = H^T S``
    (:func:`difference_jacobian`) the factor is ``A = (H^T M H)^(1/2) R`` (:func:`metric_root`),
    which needs one backward pass fewer.

    Args:
        jac: score Jacobian ``(B, C, *input_shape)``, or with ``differences`` the rows ``H^T S``
            ``(B, C-1, *input_shape)`` (consumed).
        logp: log-probabilities ``(B, C)``.
        differences: ``jac`` holds the ``C - 1`` rows ``H^T S``.

    Returns:
        ``(B, C-1, n)`` a view into ``jac``'s storage, in ``jac``'s dtype.
    """
    coeff = (metric_root if differences else metric_coefficients)(logp).to(jac.dtype)
    flat = jac.flatten(2)  # (B, C or C-1, n)
    rows = flat.shape[1]
    cols = max(1, GRAM_CHUNK_ELEMENTS // max(1, flat.shape[0] * rows))
    for a in range(0, flat.shape[2], cols):
        flat[:, : coeff.shape[1], a : a + cols] = coeff @ flat[:, :, a : a + cols]
    return flat[:, : coeff.shape[1]]


def tangent_coordinates(
    jac: torch.Tensor, rtol: float | None = None, *, differences: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Spanning rows of ``D_x`` from the score Jacobian, and the pseudo-inverse of their Gram.

    ``D_x = span{grad log p_i} = span{grad s_i - grad s_j}`` is the row space of ``H^T S``:
    ``C - 1`` rows with no exact dependency, so the tolerance only has to catch genuine
    degeneracy (e.g. a dead network).

    Args:
        jac: score (or log-probability) Jacobian ``(B, C, *input_shape)``, or with
            ``differences`` the rows ``H^T S`` ``(B, C-1, *input_shape)`` themselves
            (:func:`difference_jacobian`).
        rtol: relative tolerance on singular values; default :func:`default_rtol`.
        differences: ``jac`` already holds the ``C - 1`` rows ``H^T S``.

    Returns:
        ``rows`` ``(B, C-1, n)`` and ``K^+`` ``(B, C-1, C-1)`` in :func:`work_dtype`, and the
        ranks ``(B,)``.
    """
    b, c = jac.shape[:2]
    dtype = work_dtype(jac)
    if differences:
        rows, c = jac.reshape(b, c, -1).to(dtype), c + 1
    else:
        rows = helmert(c, dtype, jac.device).T @ jac.reshape(b, c, -1).to(dtype)
    lam, u = torch.linalg.eigh(rows @ rows.transpose(1, 2))
    if rtol is None:
        rtol = default_rtol(c - 1, jac.dtype)
    sigma = lam.clamp_min(0).sqrt()
    nonzero = sigma > rtol * sigma.max(-1, keepdim=True).values
    inv = torch.where(nonzero, 1.0 / lam.clamp_min(torch.finfo(dtype).tiny), 0.0)
    pinv = (u * inv.unsqueeze(1)) @ u.transpose(1, 2)
    return rows, pinv, nonzero.sum(-1)


def project(
    jac: torch.Tensor, v: torch.Tensor, rtol: float | None = None, *, differences: bool = False
) -> torch.Tensor:
    """Orthogonal projection of ``v`` on ``D_x`` from a precomputed score Jacobian.

    Least squares on the ``C - 1`` spanning rows of :func:`tangent_coordinates`.

    Args:
        jac: score (or log-probability) Jacobian ``(B, C, *input_shape)``, or with
            ``differences`` the rows ``H^T S`` ``(B, C-1, *input_shape)``.
        v: vectors ``(B, *input_shape)``.
        rtol: relative tolerance on singular values; default :func:`default_rtol`.
        differences: ``jac`` holds the ``C - 1`` rows (:func:`difference_jacobian`).

    Returns:
        ``(B, *input_shape)`` projections, in ``v``'s dtype.
    """
    rows, pinv, _ = tangent_coordinates(jac, rtol, differences=differences)
    flat = v.reshape(v.shape[0], -1, 1).to(rows.dtype)
    coeff = pinv @ (rows @ flat)  # (B, C-1, 1): least-squares coefficients
    return (rows.transpose(1, 2) @ coeff).reshape(v.shape).to(v.dtype)


def kernel_norms(
    model: nn.Module, x: torch.Tensor, v: torch.Tensor, rtol: float | None, chunk: int
) -> torch.Tensor:
    """``||v - P_x v||`` for each row: the length of the part of ``v`` in ``ker G(x, w)``.

    One set of ``C - 1`` difference rows (:func:`difference_jacobian`) per chunk of base points.

    Args:
        model: classifier, in eval mode.
        x: base points ``(B, *input_shape)``.
        v: vectors ``(B, *input_shape)`` (projected in their own dtype).
        rtol: relative tolerance on singular values; default :func:`default_rtol`.
        chunk: base points per Jacobian.

    Returns:
        ``(B,)`` norms, in ``v``'s dtype.
    """
    out = []
    for xs, vs in zip(x.split(chunk), v.split(chunk), strict=True):
        rows, _ = difference_jacobian(model, xs)
        out.append((vs - project(rows, vs, rtol, differences=True)).flatten(1).norm(dim=1))
    return torch.cat(out)


# Above this many classes, G's non-zero spectrum is computed from the Gram matrix of the
# score Jacobian (``metric_gram``) instead of forming the (C-1) x n factor first: forming the
# factor costs n C^2 multiply-adds and its Gram matrix as many again, the symmetric product
# of the centred Jacobian n C^2 / 2. Below it the factor is cheap and kept.
SYMMETRIC_GRAM_MIN_CLASSES = 64
# Columns per float32 block product in ``symmetric_gram`` (accumulated in float64 across
# blocks, so the float32 error of each block stays that of a sum of this many terms).
SYMMETRIC_GRAM_COLUMNS = 4096


def symmetric_gram(s: torch.Tensor, row_blocks: int = 4) -> torch.Tensor:
    """``s s^T`` for ``s`` ``(B, C, n)``, in float64, computing only blocks on and above the diagonal.

    A blocked symmetric rank-k update (syrk): the C rows are cut into ``row_blocks`` blocks
    and only the blocks ``(i, j >= i)`` are multiplied, ``(k + 1) / (2 k)`` of the full
    product for ``k`` blocks; each block is a float32 (the input's dtype) matrix product over
    ``SYMMETRIC_GRAM_COLUMNS`` columns, accumulated in float64. The lower triangle is filled
    by symmetry.

    Args:
        s: ``(B, C, n)`` rows.
        row_blocks: number of row blocks (1: one plain product).

    Returns:
        ``(B, C, C)`` symmetric, in the work dtype (float64 except on MPS).
    """
    b, c, n = s.shape
    dtype = work_dtype(s)
    out = torch.zeros(b, c, c, dtype=dtype, device=s.device)
    row_blocks = max(1, min(row_blocks, c))
    edges = [round(i * c / row_blocks) for i in range(row_blocks + 1)]
    for a in range(0, n, SYMMETRIC_GRAM_COLUMNS):
        chunk = s[:, :, a : a + SYMMETRIC_GRAM_COLUMNS]
        for i in range(row_blocks):
            lo, hi = edges[i], edges[i + 1]
            block = chunk[:, lo:hi] @ chunk[:, lo:].transpose(1, 2)  # (B, hi-lo, C-lo)
            out[:, lo:hi, lo:] += block.to(dtype)
    upper = out.triu()
    return upper + upper.triu(1).transpose(1, 2)


def metric_gram(jac: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``A A^T = K (S S^T) K^T`` ``(B, C-1, C-1)`` of G's factor, without the factor.

    ``K`` (:func:`metric_coefficients`) annihilates the all-ones vector, so ``K S = K S_c`` with
    ``S_c = S - 1 m^T`` for any row ``m``; ``jac`` is centred in place on its class mean first
    (``O(C n)``), which removes the component common to all score gradients and with it the
    cancellation that ``K (S S^T) K^T`` would otherwise suffer. Then a symmetric product
    (:func:`symmetric_gram`).

    Args:
        jac: score Jacobian ``(B, C, *input_shape)`` (centred in place; ``K jac`` unchanged).
        logp: log-probabilities ``(B, C)``.

    Returns:
        ``(B, C-1, C-1)`` in the work dtype.
    """
    flat = jac.flatten(2)
    flat -= flat.mean(dim=1, keepdim=True)
    k = metric_coefficients(logp)  # (B, C-1, C), work dtype
    return k @ symmetric_gram(flat) @ k.transpose(1, 2)


def _hvp_products(
    grads: dict[int, torch.Tensor], xg: torch.Tensor, needed: dict[int, set[int]]
) -> dict[tuple[int, int], torch.Tensor]:
    """``H(log p_i) X_j`` for each needed (i, j), from gradients built with create_graph.

    ``H(log p_i) v = grad_x <grad_x log p_i, v>`` with ``v`` held fixed; summing over the batch
    keeps samples separate because the model treats them independently (eval mode).
    """
    out: dict[tuple[int, int], torch.Tensor] = {}
    todo = [(i, j) for i in sorted(needed) for j in sorted(needed[i])]
    for k, (i, j) in enumerate(todo):
        v = grads[j].detach()
        (hv,) = torch.autograd.grad(
            (grads[i] * v).sum(), xg, retain_graph=k < len(todo) - 1, allow_unused=True
        )
        # A network that is linear in x (no hidden layer) can leave the graph unused.
        out[(i, j)] = torch.zeros_like(xg) if hv is None else hv
    return out


def logprob_brackets(
    model: nn.Module, x: torch.Tensor, choose_pairs: Callable[[int], list[tuple[int, int]]]
) -> torch.Tensor:
    """``[grad log p_i, grad log p_j] = H(log p_j) X_i - H(log p_i) X_j`` for chosen pairs.

    Double back-propagation over the whole batch: the gradients ``X_k = grad_x log p_k`` are
    built with ``create_graph`` for the classes the pairs use, then two Hessian-vector products
    per pair (no per-sample loop, no ``n x n`` Hessian).

    Args:
        model: classifier in eval mode, returning scores ``(B, C)``.
        x: points ``(B, *input_shape)``.
        choose_pairs: maps the number of classes ``C`` to the pairs ``(i, j)`` to compute (the
            caller's argument check, run once ``C`` is known).

    Returns:
        ``(B, P, *input_shape)`` brackets.
    """
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        logp = F.log_softmax(forward_scores(model, xg), dim=1)
        pair_list = choose_pairs(logp.shape[1])
        classes = sorted({k for p in pair_list for k in p})
        grads = {
            k: torch.autograd.grad(logp[:, k].sum(), xg, create_graph=True, retain_graph=True)[0]
            for k in classes
        }
        needed: dict[int, set[int]] = {}
        for i, j in pair_list:
            needed.setdefault(j, set()).add(i)  # H(log p_j) X_i
            needed.setdefault(i, set()).add(j)  # H(log p_i) X_j
        hv = _hvp_products(grads, xg, needed)
    out = [hv[(j, i)] - hv[(i, j)] for i, j in pair_list]
    return torch.stack(out, 1).detach()


def _trainable(model: nn.Module) -> tuple[dict, dict, dict]:
    """The trainable parameters, the frozen ones and the buffers, detached, by name."""
    params = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("model has no trainable parameters: the parameter space is empty")
    frozen = {k: p.detach() for k, p in model.named_parameters() if not p.requires_grad}
    return params, frozen, dict(model.named_buffers())


def weight_log_probs_fn(
    model: nn.Module, x: torch.Tensor
) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """``w -> log p(y|x, w)`` ``(B, C)`` of the flat trainable-parameter vector, and ``w`` now.

    Args:
        model: classifier returning scores ``(B, C)``, in eval mode.
        x: inputs ``(B, *input_shape)``.

    Returns:
        The function (differentiable in ``w``) and the current ``w`` ``(d,)``, detached.
    """
    from torch.func import functional_call

    params, frozen, buffers = _trainable(model)
    names = list(params)
    shapes = [t.shape for t in params.values()]
    sizes = [t.numel() for t in params.values()]
    w0 = torch.cat([t.flatten() for t in params.values()])
    with torch.no_grad():
        forward_scores(model, x)  # the model contract, checked once

    def logp(w: torch.Tensor) -> torch.Tensor:
        parts = torch.split(w, sizes)
        named = {k: t.view(sh) for k, t, sh in zip(names, parts, shapes, strict=True)}
        return F.log_softmax(functional_call(model, {**named, **frozen, **buffers}, (x,)), dim=1)

    return logp, w0


def weight_score_jacobian(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample Jacobian of the scores in the trainable parameters, and ``log p``.

    Args:
        model: classifier returning scores ``(B, C)``, in eval mode.
        x: inputs ``(B, *input_shape)``.

    Returns:
        ``(B, C, d)`` Jacobian (parameters flattened in ``named_parameters()`` order) and
        ``(B, C)`` log-probabilities (detached).
    """
    from torch.func import functional_call, jacrev, vmap

    params, frozen, buffers = _trainable(model)

    def scores_one(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, {**p, **frozen, **buffers}, (xi.unsqueeze(0),)).squeeze(0)

    with torch.enable_grad():
        logp = forward_log_probs(model, x).detach()
        jac = vmap(jacrev(scores_one), in_dims=(None, 0))(params, x)
    return torch.cat([jac[k].flatten(2) for k in params], dim=2), logp
