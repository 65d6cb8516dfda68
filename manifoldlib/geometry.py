"""The local data matrix G(x, w), the local Fisher matrix F(x, w), and projections.

Model contract (stated once for the whole library): a model maps a batch ``x`` of shape
``(B, *input_shape)`` to class **scores** of shape ``(B, C)``, ``C >= 2``. We take
``log_softmax`` of the scores ourselves, which also accepts a model that already ends in
``LogSoftmax`` (log-softmax is idempotent). Every routine runs the model in eval mode and
restores its mode afterwards.

The key facts used throughout: with ``S`` the ``C x n`` Jacobian of the scores and
``p = softmax(s)``, the rows of the Jacobian of ``log p`` are ``grad s_i - sum_k p_k grad s_k``,
so (paper, eq. 6 and Prop. 2.1)

    G(x, w) = S^T (diag(p) - p p^T) S = A^T A,   A = (H^T M H)^(1/2) H^T S   ((C-1) x n),

where ``M = diag(p) - p p^T`` is the ``C x C`` Hessian of log-sum-exp, whose kernel is the
all-ones vector, and ``H`` is an orthonormal basis of its complement. ``A`` has ``C - 1`` rows:
the rank bound of Prop. 2.1.3 holds by construction, and no cancellation hides in a row of
``A`` (forming ``sqrt(p_i) grad log p_i`` for a confident class subtracts nearly equal float32
vectors). Everything about G (trace, non-zero spectrum, rank, products) comes from the small
``(C-1) x (C-1)`` Gram matrix ``A A^T``, never from the ``n x n`` matrix. And the tangent space
``D_x = span{grad log p_i} = span{grad s_i - grad s_j}`` is the row space of ``H^T S``,
independent of ``p``.

Introduced in the chapter "Information geometry and the local data matrix" (book/01).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    check_finite,
    check_model,
    check_same_shape,
    check_tensor,
    eval_mode,
)

__all__ = [
    "LowRankPSD",
    "precision",
    "TraceEstimate",
    "local_data_lowrank",
    "local_data_matrix",
    "local_fisher_lowrank",
    "local_fisher_matrix",
    "log_probabilities",
    "logprob_jacobian",
    "kernel_projection",
    "score_jacobian",
    "tangent_basis",
    "tangent_projection",
    "tangent_projection_from_jacobian",
    "trace_mc",
]

#: Dense matrices larger than this (in bytes, whole batch) are refused.
DENSE_LIMIT_BYTES = 2 * 1024**3
#: Classes per vectorised backward pass for a single input (see ``_score_jacobian``).
JAC_CHUNK = 25
#: Elements of the float64 working copy per chunk when a Gram matrix is accumulated.
GRAM_CHUNK_ELEMENTS = 2**24


@contextlib.contextmanager
def precision(model: nn.Module, dtype: torch.dtype = torch.float64) -> Iterator[nn.Module]:
    """Compute with ``model`` in another floating dtype (float64 by default), then restore it.

    Casting float32 weights to float64 and back is exact, so the model is unchanged
    afterwards. Inputs must be given in the same dtype (``x.double()``).

    Example::

        with ml.precision(model):
            G = ml.local_data_lowrank(model, x.double())

    Args:
        model: the network; its parameters and buffers are cast in place.
        dtype: the floating dtype to compute in.

    Yields:
        The same model, cast.

    Introduced in the chapter "The spectrum of G".
    """
    if not torch.empty(0, dtype=dtype).is_floating_point():
        raise TypeError(f"dtype must be a floating dtype, got {dtype}")
    originals = {
        name: t.dtype
        for name, t in [*model.named_parameters(), *model.named_buffers()]
        if t.is_floating_point()
    }
    model.to(dtype)
    try:
        yield model
    finally:
        for name, old in originals.items():
            owner_name, _, attr = name.rpartition(".")
            owner = model.get_submodule(owner_name) if owner_name else model
            if attr in owner._parameters:
                owner._parameters[attr].data = owner._parameters[attr].data.to(old)
            else:
                owner._buffers[attr] = owner._buffers[attr].to(old)


def _check_input(model: nn.Module, x: torch.Tensor, name: str = "x") -> None:
    check_model(model)
    check_tensor(x, name, min_dim=2)
    param = next(iter(model.parameters()), None)
    if param is not None:
        if param.dtype != x.dtype:
            raise TypeError(
                f"{name} has dtype {x.dtype} but the model's parameters are {param.dtype}; "
                f"convert one of them (e.g. model.double() and {name}.double() for float64)"
            )
        if param.device != x.device:
            raise ValueError(
                f"{name} is on {x.device} but the model's parameters are on {param.device}; "
                f"move them to the same device"
            )
    check_finite(x, name)


def _scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Forward pass under the model contract; checks and returns the scores (B, C)."""
    scores = model(x)
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


def _log_softmax_scores(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Forward pass under the model contract; returns log p (B, C)."""
    return F.log_softmax(_scores(model, x), dim=1)


def log_probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Log-probabilities ``log p(y|x, w)`` of every class, without gradients.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.

    Returns:
        ``(B, C)`` log-probabilities.

    Introduced in the chapter "Information geometry and the local data matrix".
    """
    _check_input(model, x)
    with torch.no_grad(), eval_mode(model):
        return _log_softmax_scores(model, x)


def _score_jacobian(
    model: nn.Module, x: torch.Tensor, *, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Jacobian of the scores w.r.t. x, (B, C, *in), and log p (B, C); no argument checks.

    Scores of a model ending in LogSoftmax are log-probabilities: their Jacobian differs from
    that of the raw scores by a multiple of one row per sample, which changes neither
    ``grad log p`` nor G nor D_x (all built from differences ``grad s_i - grad s_j``).
    """
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        scores = _scores(model, xg)
        logp = F.log_softmax(scores, dim=1)
        num_classes = scores.shape[1]
        if create_graph:
            rows = [
                torch.autograd.grad(scores[:, i].sum(), xg, retain_graph=True, create_graph=True)[0]
                for i in range(num_classes)
            ]
            jac = torch.stack(rows, dim=1)
        else:
            # Written into one preallocated tensor: stacking a list of rows would hold the
            # Jacobian twice (1.2 GB instead of 0.6 GB at ImageNet size, C = 1000).
            jac = torch.empty(
                (x.shape[0], num_classes, *x.shape[1:]), dtype=x.dtype, device=x.device
            )
            if x.shape[0] == 1:
                # One sample: vectorised backward passes over chunks of one-hot cotangents.
                # Chunked, because is_grads_batched over all C = 1000 classes of an ImageNet
                # net was measured 20x slower (and 2 GB larger) than the plain loop, while
                # chunks of JAC_CHUNK classes beat the loop (by 1.3x for the MNIST CNN).
                eye = torch.eye(num_classes, dtype=scores.dtype, device=scores.device)
                starts = range(0, num_classes, JAC_CHUNK)
                for k, a in enumerate(starts):
                    cot = eye[a : a + JAC_CHUNK].unsqueeze(1)  # (k, 1, C)
                    (g,) = torch.autograd.grad(
                        scores, xg, cot, is_grads_batched=True, retain_graph=k < len(starts) - 1
                    )
                    jac[0, a : a + JAC_CHUNK] = g[:, 0]
            else:
                # C backward passes over the whole batch: measured faster than vmap for B > 1
                # on CPUs (the batch already fills the cores), and it needs no functorch.
                for i in range(num_classes):
                    jac[:, i] = torch.autograd.grad(
                        scores[:, i].sum(), xg, retain_graph=i < num_classes - 1
                    )[0]
    if not create_graph:
        jac, logp = jac.detach(), logp.detach()
    return jac, logp


def score_jacobian(
    model: nn.Module, x: torch.Tensor, *, return_logp: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Jacobian of the class scores ``s(x, w)`` with respect to ``x``, batched.

    The rows ``grad_x s_i`` span the same differences ``grad s_i - grad s_j`` as the rows
    ``grad_x log p_i``, so D_x, G and every projection can be computed from them
    (:func:`tangent_projection_from_jacobian`). One forward pass and C backward passes over
    the whole batch.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        return_logp: also return the log-probabilities ``(B, C)``.

    Returns:
        ``(B, C, *input_shape)`` Jacobian, and ``(B, C)`` log-probabilities if asked.

    Introduced in the chapter "Training and the trace of G".
    """
    _check_input(model, x)
    with eval_mode(model):
        jac, logp = _score_jacobian(model, x)
    return (jac, logp) if return_logp else jac


def tangent_projection_from_jacobian(
    jac: torch.Tensor, v: torch.Tensor, *, rtol: float | None = None
) -> torch.Tensor:
    """Orthogonal projection of ``v`` on ``D_x`` from a precomputed Jacobian.

    Args:
        jac: score (or log-probability) Jacobian ``(B, C, *input_shape)``, e.g. from
            :func:`score_jacobian`.
        v: vectors ``(B, *input_shape)``.
        rtol: relative tolerance for degenerate gradients (see :meth:`LowRankPSD.rank`).

    Returns:
        ``(B, *input_shape)`` projections, in ``v``'s dtype.

    Introduced in the chapter "Computing it fast".
    """
    check_tensor(jac, "jac", min_dim=3)
    check_tensor(v, "v", min_dim=2)
    if jac.shape[0] != v.shape[0] or jac.shape[2:] != v.shape[1:]:
        raise ValueError(
            f"jac must have shape (B, C, *input_shape) matching v (B, *input_shape); "
            f"got jac {tuple(jac.shape)} and v {tuple(v.shape)}"
        )
    return _project(jac, v, rtol)


def _logprob_from_scores(jac: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    """Rows grad log p_i = grad s_i - sum_k p_k grad s_k (the chain rule of log-softmax)."""
    mean = torch.einsum("bk,bk...->b...", logp.exp(), jac)
    return jac - mean.unsqueeze(1)


def _jacobian(
    model: nn.Module, x: torch.Tensor, *, create_graph: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Jacobian of log p w.r.t. x (B, C, *in) and log p (B, C); no argument checks."""
    jac, logp = _score_jacobian(model, x, create_graph=create_graph)
    return _logprob_from_scores(jac, logp), logp


def logprob_jacobian(
    model: nn.Module, x: torch.Tensor, *, return_logp: bool = False, create_graph: bool = False
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Gradients ``grad_x log p_i(y|x, w)`` of every class, batched.

    Costs one forward pass and C backward passes over the whole batch (no loop over samples).

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        return_logp: also return the log-probabilities ``(B, C)``.
        create_graph: keep the graph, for second derivatives (Hessian-vector products).

    Returns:
        ``(B, C, *input_shape)`` Jacobian, and ``(B, C)`` log-probabilities if asked.

    Introduced in the chapter "Information geometry and the local data matrix".
    """
    _check_input(model, x)
    with eval_mode(model):
        jac, logp = _jacobian(model, x, create_graph=create_graph)
    return (jac, logp) if return_logp else jac


def _default_rtol(num_rows: int, num_cols: int, dtype: torch.dtype) -> float:
    # Not NumPy's max(M, N) * eps: with m = 10^6 parameters (the Fisher matrix) that would be
    # 0.1 in float32. The Gram matrix is formed in float64, so the error left is that of the
    # gradients themselves (a few eps of their dtype) or, for float64 gradients, the Gram
    # route's own resolution sqrt(eps64) = 1.5e-8 on singular values. The exact zero of
    # Prop. 2.1.3 appears at about 4e-8 relative on the float32 MNIST CNN; 10 * C * eps leaves
    # a margin of 30 there.
    del num_cols
    eps = max(torch.finfo(dtype).eps, torch.finfo(torch.float64).eps ** 0.5)
    return 10 * num_rows * eps


def _helmert(num_classes: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(C, C-1) orthonormal basis of the vectors whose entries sum to zero (Helmert)."""
    h = torch.zeros(num_classes, num_classes - 1, dtype=dtype, device=device)
    for k in range(1, num_classes):
        h[:k, k - 1] = 1.0
        h[k, k - 1] = -float(k)
        h[:, k - 1] /= math.sqrt(k * (k + 1))
    return h


def _work_dtype(t: torch.Tensor) -> torch.dtype:
    # Small C x C algebra runs in float64 (Apple's MPS has no float64).
    return torch.float64 if t.device.type != "mps" else torch.float32


def _metric_coefficients(logp: torch.Tensor) -> torch.Tensor:
    """(B, C-1, C) matrix K with K^T K = diag(p) - p p^T, computed without cancellation.

    The diagonal ``p_i (1 - p_i)`` is formed as ``p_i * sum_{k != i} p_k`` from the
    log-probabilities (1 - p_i in float would lose every digit for a confident class).
    """
    b, c = logp.shape
    dtype = _work_dtype(logp)
    lp = logp.to(dtype)
    p = lp.exp()
    others = lp.unsqueeze(1).expand(b, c, c).clone()
    others.diagonal(dim1=1, dim2=2).fill_(-math.inf)
    rest = torch.logsumexp(others, dim=2).exp()  # sum_{k != i} p_k
    m = -p.unsqueeze(2) * p.unsqueeze(1)
    m.diagonal(dim1=1, dim2=2).copy_(p * rest)
    h = _helmert(c, dtype, logp.device)
    lam, v = torch.linalg.eigh(h.T @ m @ h)
    root = (v * lam.clamp_min(0).sqrt().unsqueeze(1)) @ v.transpose(1, 2)
    return root @ h.T


@dataclass
class LowRankPSD:
    """A batch of PSD matrices ``M_b = A_b^T A_b`` kept in factored form.

    For the local data matrix ``A = (H^T M H)^(1/2) H^T S`` has ``C - 1`` rows (see the module
    docstring); the local Fisher matrix is factored the same way with the Jacobian of the
    scores w.r.t. the parameters. Nothing of size ``m x m`` is built.

    Attributes:
        factor: ``(B, r, m)`` the rows of ``A`` (``r = C - 1``).
        shape: the shape that vectors of length ``m`` take (the input shape for G, ``(d,)``
            for F).

    Introduced in the chapter "The spectrum of G".
    """

    factor: torch.Tensor
    shape: tuple[int, ...]
    # The Gram matrix, kept after its first use: at ImageNet size (C = 1000, n = 150528) it
    # costs n C^2 = 1.5e11 multiply-adds, and trace/rank/eigenvalues all start from it.
    # Keyed by the factor's storage, shape and version counter, so that a replaced or
    # modified factor is never paired with a stale Gram matrix.
    _gram: torch.Tensor | None = field(default=None, init=False, repr=False, compare=False)
    _gram_key: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def size(self) -> int:
        """``m``, the side of each matrix."""
        return self.factor.shape[2]

    def trace(self) -> torch.Tensor:
        """Trace of each matrix, ``(B,)``: ``sum_i p_i ||grad log p_i||^2`` (eq. 11)."""
        return self.factor.pow(2).sum(dim=(1, 2))

    def gram(self) -> torch.Tensor:
        """The ``(B, r, r)`` Gram matrix ``A A^T``, in float64 for an accurate spectrum."""
        f = self.factor
        key = (f.data_ptr(), tuple(f.shape), tuple(f.stride()), f._version, f.dtype)
        if self._gram is None or self._gram_key != key:
            self._gram, self._gram_key = self._compute_gram(), key
        return self._gram

    def _compute_gram(self) -> torch.Tensor:
        dtype = _work_dtype(self.factor)
        b, r, m = self.factor.shape
        # Accumulated over column chunks: a float64 copy of the whole factor would be twice
        # its size (1.2 GB for one ImageNet-size input with C = 1000).
        cols = max(1, GRAM_CHUNK_ELEMENTS // max(1, b * r))
        if cols >= m:
            a = self.factor.to(dtype)
            return a @ a.transpose(1, 2)
        out = torch.zeros(b, r, r, dtype=dtype, device=self.factor.device)
        for chunk in self.factor.split(cols, dim=2):
            a = chunk.to(dtype)
            out.baddbmm_(a, a.transpose(1, 2))
        return out

    def eigh(self, rtol: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Non-zero spectrum through the ``C x C`` Gram matrix.

        If ``A A^T u = lam u`` then ``A^T A (A^T u) = lam (A^T u)``, so the eigenvalues of the
        matrix that are not zero are those of the small Gram matrix, with eigenvectors
        ``A^T u / sqrt(lam)``.

        Args:
            rtol: relative tolerance below which an eigenvalue counts as zero (see :meth:`rank`).

        Returns:
            ``eigenvalues`` ``(B, r)`` in decreasing order (clamped at 0) and ``eigenvectors``
            ``(B, r, *shape)``, orthonormal; rows whose eigenvalue is numerically zero are 0.
            All other eigenvalues of the ``m x m`` matrix are exactly zero.
        """
        lam, u = torch.linalg.eigh(self.gram())
        lam, u = lam.flip(-1).clamp_min(0), u.flip(-1)
        keep = self._nonzero(lam, rtol)
        sigma = lam.sqrt()
        scale = torch.where(keep, 1.0 / sigma.clamp_min(torch.finfo(sigma.dtype).tiny), 0.0)
        vecs = (u * scale.unsqueeze(1)).transpose(1, 2) @ self.factor.to(u.dtype)
        shape = (self.factor.shape[0], self.factor.shape[1], *self.shape)
        return lam.to(self.factor.dtype), vecs.to(self.factor.dtype).reshape(shape)

    def _nonzero(self, lam: torch.Tensor, rtol: float | None, atol: float = 0.0) -> torch.Tensor:
        if rtol is None:
            rtol = _default_rtol(self.factor.shape[1], self.size, self.factor.dtype)
        sigma = lam.clamp_min(0).sqrt()
        tol = torch.clamp(rtol * sigma.max(dim=-1, keepdim=True).values, min=atol)
        return sigma > tol

    def eigenvalues(self) -> torch.Tensor:
        """``(B, r)`` eigenvalues in decreasing order (the rest of the spectrum is zero)."""
        return torch.linalg.eigvalsh(self.gram()).flip(-1).clamp_min(0).to(self.factor.dtype)

    def rank(self, rtol: float | None = None, atol: float = 0.0) -> torch.Tensor:
        """Numerical rank of each matrix, ``(B,)``.

        An eigenvalue ``lam`` counts when ``sqrt(lam) > max(atol, rtol * sqrt(lam_max))``, the
        ``matrix_rank`` rule applied to the singular values of ``A``. The factor has ``C - 1``
        rows, so the exact zero eigenvalue of Prop. 2.1.3 is never counted; the tolerance only
        decides about small genuine eigenvalues. The default ``rtol = 10 * r * eps`` (eps of the
        factor's dtype, but at least 1.5e-8, the resolution of the float64 Gram route on
        singular values: 1.1e-5 for C = 10 in float32, 1.3e-6 in float64) sits above the
        relative error of the float32 gradients. Eigenvalues of G carry the weights ``p_i``, so a
        class with a tiny probability gives a tiny eigenvalue: a very confident prediction
        lowers the numerical rank, and a fully trained network drives G to 0 (section 4.1).
        Use ``atol`` to count eigenvalues that are small in absolute terms as zero.

        Args:
            rtol: relative tolerance on singular values; default ``10 * r * eps``.
            atol: absolute tolerance on singular values.

        Returns:
            ``(B,)`` integer ranks, at most ``C - 1`` for G and F by Prop. 2.1.
        """
        return self._nonzero(torch.linalg.eigvalsh(self.gram()), rtol, atol).sum(-1)

    def matvec(self, v: torch.Tensor) -> torch.Tensor:
        """Product ``M v`` for ``v`` of shape ``(B, *shape)``, in ``O(C m)``."""
        flat = v.reshape(v.shape[0], 1, -1).to(self.factor.dtype)
        coeff = (self.factor * flat).sum(-1, keepdim=True)  # (B, C, 1) = A v
        return (self.factor * coeff).sum(1).reshape(v.shape)

    def quadratic(self, v: torch.Tensor) -> torch.Tensor:
        """Quadratic form ``v^T M v = ||A v||^2`` for ``v`` of shape ``(B, *shape)``."""
        flat = v.reshape(v.shape[0], 1, -1).to(self.factor.dtype)
        return (self.factor * flat).sum(-1).pow(2).sum(-1)

    def to_dense(self, max_bytes: int = DENSE_LIMIT_BYTES) -> torch.Tensor:
        """The dense ``(B, m, m)`` matrices (small inputs only)."""
        _check_dense_size(self.factor.shape[0], self.size, self.factor.element_size(), max_bytes)
        return self.factor.transpose(1, 2) @ self.factor


def _check_dense_size(batch: int, m: int, element_size: int, max_bytes: int) -> None:
    need = batch * m * m * element_size
    if need > max_bytes:
        raise ValueError(
            f"a dense {m} x {m} matrix for {batch} input(s) needs {need / 2**30:.1f} GiB "
            f"(limit {max_bytes / 2**30:.1f} GiB); use local_data_lowrank(model, x) (or "
            "local_fisher_lowrank) for the trace, spectrum, rank and products without it"
        )


def local_data_lowrank(model: nn.Module, x: torch.Tensor) -> LowRankPSD:
    """The local data matrix G(x, w) (eq. 6) in factored form ``A^T A``.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.

    Returns:
        A :class:`LowRankPSD` with factor ``(B, C-1, n)``, ``n = prod(input_shape)``.

    Introduced in the chapter "Information geometry and the local data matrix".
    """
    _check_input(model, x)
    with eval_mode(model):
        jac, logp = _score_jacobian(model, x)
    coeff = _metric_coefficients(logp).to(jac.dtype)
    flat = jac.flatten(2)  # (B, C, n)
    c = flat.shape[1]
    # factor = coeff @ flat, written over the first C-1 rows of the Jacobian chunk by chunk,
    # so that the factor costs no memory beyond the Jacobian itself.
    cols = max(1, GRAM_CHUNK_ELEMENTS // max(1, flat.shape[0] * c))
    for a in range(0, flat.shape[2], cols):
        flat[:, : c - 1, a : a + cols] = coeff @ flat[:, :, a : a + cols]
    return LowRankPSD(factor=flat[:, : c - 1], shape=tuple(x.shape[1:]))


def local_data_matrix(
    model: nn.Module, x: torch.Tensor, *, max_bytes: int = DENSE_LIMIT_BYTES
) -> torch.Tensor:
    """Dense local data matrix ``G(x, w) = E_{y~p}[grad log p grad log p^T]`` (eq. 6).

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        max_bytes: refuse when the ``(B, n, n)`` result would exceed this many bytes.

    Returns:
        ``(B, n, n)`` symmetric PSD matrices, ``n = prod(input_shape)``.

    Raises:
        ValueError: the dense matrices would not fit; the message names
            :func:`local_data_lowrank`.

    Introduced in the chapter "Information geometry and the local data matrix".
    """
    check_tensor(x, "x", min_dim=2)
    n = math.prod(x.shape[1:])
    _check_dense_size(x.shape[0], n, x.element_size(), max_bytes)
    return local_data_lowrank(model, x).to_dense(max_bytes)


def _fisher_factor(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(B, C-1, d) factor of F(x, w) for each sample, from the score Jacobian (torch.func)."""
    from torch.func import functional_call, jacrev, vmap

    names = [k for k, p in model.named_parameters() if p.requires_grad]
    if not names:
        raise ValueError("model has no trainable parameters: the local Fisher matrix is empty")
    params = {k: p.detach() for k, p in model.named_parameters() if p.requires_grad}
    frozen = {k: p.detach() for k, p in model.named_parameters() if not p.requires_grad}
    buffers = dict(model.named_buffers())

    def scores_one(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        return functional_call(model, {**p, **frozen, **buffers}, (xi.unsqueeze(0),)).squeeze(0)

    with torch.enable_grad():
        logp = _log_softmax_scores(model, x).detach()
        jac = vmap(jacrev(scores_one), in_dims=(None, 0))(params, x)
    flat = torch.cat([jac[k].flatten(2) for k in names], dim=2)
    return _metric_coefficients(logp).to(flat.dtype) @ flat


def local_fisher_lowrank(model: nn.Module, x: torch.Tensor) -> LowRankPSD:
    """The local Fisher matrix F(x, w) (eq. 5) over the trainable parameters, factored.

    Parameters are flattened and concatenated in the order of ``model.named_parameters()``.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.

    Returns:
        A :class:`LowRankPSD` with factor ``(B, C-1, d)``, ``d`` the number of trainable
        parameters.

    Introduced in the chapter "Information geometry and the local data matrix".
    """
    _check_input(model, x)
    with eval_mode(model):
        factor = _fisher_factor(model, x)
    return LowRankPSD(factor=factor, shape=(factor.shape[2],))


def local_fisher_matrix(
    model: nn.Module, x: torch.Tensor, *, max_bytes: int = DENSE_LIMIT_BYTES
) -> torch.Tensor:
    """Dense local Fisher matrix ``F(x, w)`` (eq. 5), ``(B, d, d)``; small models only.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        max_bytes: refuse when the result would exceed this many bytes.

    Returns:
        ``(B, d, d)`` symmetric PSD matrices.

    Introduced in the chapter "Information geometry and the local data matrix".
    """
    check_model(model)
    check_tensor(x, "x", min_dim=2)
    d = sum(p.numel() for p in model.parameters() if p.requires_grad)
    _check_dense_size(x.shape[0], d, x.element_size(), max_bytes)
    return local_fisher_lowrank(model, x).to_dense(max_bytes)


@dataclass
class TraceEstimate:
    """Monte-Carlo estimate of ``Tr G(x, w)``.

    Attributes:
        values: ``(B,)`` per-input estimates (mean over the samples).
        stderr: ``(B,)`` their standard errors (NaN with a single sample).
        mean: estimate of the batch mean of the trace.
        mean_stderr: its standard error (over all ``B * samples`` draws).
        samples: number of draws of ``y`` per input.
    """

    values: torch.Tensor
    stderr: torch.Tensor
    mean: float
    mean_stderr: float
    samples: int


def trace_mc(
    model: nn.Module,
    x: torch.Tensor,
    *,
    samples: int = 1,
    generator: torch.Generator | None = None,
) -> TraceEstimate:
    """Unbiased Monte-Carlo estimate of ``Tr G(x, w)`` from eq. (11).

    ``Tr G = E_{y~p} ||grad_x log p_y||^2``: draw ``y`` from ``p(.|x)`` and take the squared
    norm of one gradient. Each draw costs one backward pass over the batch (instead of C).

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        samples: draws of ``y`` per input.
        generator: random generator for the draws (for reproducibility).

    Returns:
        A :class:`TraceEstimate`.

    Introduced in the chapter "Training and the trace of G".
    """
    from ._checks import check_positive

    _check_input(model, x)
    check_positive(samples, "samples", integer=True)
    draws = []
    with eval_mode(model), torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        logp = _log_softmax_scores(model, xg)
        probs = logp.detach().exp()
        y = torch.multinomial(probs, samples, replacement=True, generator=generator)  # (B, S)
        onehot = F.one_hot(y.T, probs.shape[1]).to(logp.dtype)  # (S, B, C)
        # One backward pass per draw; draws are batched through vmap, up to 256 images x draws
        # at a time (a large batch already fills the cores and vmap multiplies the memory).
        chunks = onehot.split(max(1, 256 // x.shape[0]))
        for k, go in enumerate(chunks):
            (g,) = torch.autograd.grad(
                logp, xg, go, is_grads_batched=True, retain_graph=k < len(chunks) - 1
            )
            draws.append(g.flatten(2).pow(2).sum(2))
    d = torch.cat(draws, 0)  # (samples, B)
    values = d.mean(0)
    if samples > 1:
        stderr = d.std(0, unbiased=True) / math.sqrt(samples)
    else:
        stderr = torch.full_like(values, float("nan"))
    flat = d.flatten()
    mean_stderr = (
        float(flat.std(unbiased=True) / math.sqrt(flat.numel()))
        if flat.numel() > 1
        else float("nan")
    )
    return TraceEstimate(
        values.detach(), stderr.detach(), float(values.mean()), mean_stderr, samples
    )


def _tangent_coordinates(
    jac: torch.Tensor, rtol: float | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Spanning rows of D_x from the score Jacobian, and the pseudo-inverse of their Gram.

    ``D_x = span{grad log p_i} = span{grad s_i - grad s_j}`` is the row space of ``H^T S``
    (H: orthonormal basis of the zero-sum vectors): ``C - 1`` rows with no exact dependency, so
    the tolerance only has to catch genuine degeneracy (e.g. a dead network).

    Returns:
        rows ``(B, C-1, n)`` and ``K^+`` ``(B, C-1, C-1)`` in float64, ranks ``(B,)``.
    """
    b, c = jac.shape[:2]
    dtype = _work_dtype(jac)
    rows = _helmert(c, dtype, jac.device).T @ jac.reshape(b, c, -1).to(dtype)
    lam, u = torch.linalg.eigh(rows @ rows.transpose(1, 2))
    if rtol is None:
        rtol = _default_rtol(c - 1, rows.shape[2], jac.dtype)
    sigma = lam.clamp_min(0).sqrt()
    nonzero = sigma > rtol * sigma.max(-1, keepdim=True).values
    inv = torch.where(nonzero, 1.0 / lam.clamp_min(torch.finfo(dtype).tiny), 0.0)
    pinv = (u * inv.unsqueeze(1)) @ u.transpose(1, 2)
    return rows, pinv, nonzero.sum(-1)


def _project(jac: torch.Tensor, v: torch.Tensor, rtol: float | None = None) -> torch.Tensor:
    """Orthogonal projection of v (B, *in) on D_x from a precomputed score Jacobian."""
    rows, pinv, _ = _tangent_coordinates(jac, rtol)
    flat = v.reshape(v.shape[0], -1, 1).to(rows.dtype)
    coeff = pinv @ (rows @ flat)  # (B, C-1, 1): least-squares coefficients
    return (rows.transpose(1, 2) @ coeff).reshape(v.shape).to(v.dtype)


def _check_projection_args(model: nn.Module, x: torch.Tensor, v: torch.Tensor) -> None:
    _check_input(model, x)
    check_tensor(v, "v", min_dim=2)
    check_same_shape(x, v, "x", "v")
    check_finite(v, "v")


def tangent_projection(
    model: nn.Module, x: torch.Tensor, v: torch.Tensor, *, rtol: float | None = None
) -> torch.Tensor:
    """Orthogonal projection of ``v`` on ``D_x = span{grad_x log p_i} = (ker G)^perp``.

    Exact (up to round-off): least squares on ``C - 1`` spanning vectors ``H^T S`` through their
    small Gram matrix in float64; no ``n x n`` factorisation.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: base points ``(B, *input_shape)``.
        v: vectors ``(B, *input_shape)``.
        rtol: relative tolerance for degenerate gradients (see :meth:`LowRankPSD.rank`).

    Returns:
        ``(B, *input_shape)`` projections, in ``v``'s dtype.

    Introduced in the chapter "Horizontal paths on the data leaf".
    """
    _check_projection_args(model, x, v)
    with eval_mode(model):
        jac, _ = _score_jacobian(model, x)
    return _project(jac, v, rtol)


def kernel_projection(
    model: nn.Module, x: torch.Tensor, v: torch.Tensor, *, rtol: float | None = None
) -> torch.Tensor:
    """Orthogonal projection of ``v`` on ``ker G(x, w)``: ``v - tangent_projection(v)``.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: base points ``(B, *input_shape)``.
        v: vectors ``(B, *input_shape)``.
        rtol: relative tolerance for degenerate gradients.

    Returns:
        ``(B, *input_shape)`` projections, in ``v``'s dtype.

    Introduced in the chapter "Moving across leaves".
    """
    _check_projection_args(model, x, v)
    with eval_mode(model):
        jac, _ = _score_jacobian(model, x)
    return v - _project(jac, v, rtol)


def tangent_basis(
    model: nn.Module, x: torch.Tensor, *, rtol: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """An orthonormal basis of ``D_x`` for each input.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: base points ``(B, *input_shape)``.
        rtol: relative tolerance for degenerate gradients.

    Returns:
        ``basis`` ``(B, C-1, *input_shape)`` (rows beyond the rank are zero) and ``ranks``
        ``(B,)``.

    Introduced in the chapter "Foliations you can see".
    """
    _check_input(model, x)
    with eval_mode(model):
        jac, _ = _score_jacobian(model, x)
    rows, _, ranks = _tangent_coordinates(jac, rtol)
    lam, u = torch.linalg.eigh(rows @ rows.transpose(1, 2))
    lam, u = lam.flip(-1), u.flip(-1)
    r = torch.arange(lam.shape[1], device=lam.device).unsqueeze(0) < ranks.unsqueeze(1)
    scale = torch.where(r, 1.0 / lam.clamp_min(torch.finfo(lam.dtype).tiny).sqrt(), 0.0)
    basis = (u * scale.unsqueeze(1)).transpose(1, 2) @ rows
    return basis.to(x.dtype).reshape(x.shape[0], -1, *x.shape[1:]), ranks
