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

from . import _jacobian as _jac
from ._checks import (
    check_input,
    check_like,
    check_model,
    check_positive,
    check_tensor,
    eval_mode,
)

__all__ = [
    "LowRankPSD",
    "MeanTrace",
    "mean_trace",
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


@contextlib.contextmanager
def precision(model: nn.Module, dtype: torch.dtype = torch.float64) -> Iterator[nn.Module]:
    """Compute with ``model`` in another floating dtype (float64 by default), then restore it.

    Casting float32 weights to float64 and back is exact, so the model is unchanged
    afterwards. Inputs must be given in the same dtype (``x.double()``).

    Example::

        with ml.geometry.precision(model):
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


def log_probabilities(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Log-probabilities ``log p(y|x, w)`` of every class, without gradients.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.

    Returns:
        ``(B, C)`` log-probabilities.

    Introduced in the chapter "Information geometry and the local data matrix".
    """
    check_input(model, x)
    with torch.no_grad(), eval_mode(model):
        return _jac.forward_log_probs(model, x)


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
    check_input(model, x)
    with eval_mode(model):
        jac, logp = _jac.jacobian_of_scores(model, x)
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
    return _jac.project(jac, v, rtol)


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
    check_input(model, x)
    with eval_mode(model):
        jac, logp = _jac.jacobian_of_scores(model, x, create_graph=create_graph)
    jac = _jac.logprob_rows(jac, logp)
    return (jac, logp) if return_logp else jac


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
        dtype = _jac.work_dtype(self.factor)
        b, r, m = self.factor.shape
        # Accumulated over column chunks: a float64 copy of the whole factor would be twice
        # its size (1.2 GB for one ImageNet-size input with C = 1000).
        cols = max(1, _jac.GRAM_CHUNK_ELEMENTS // max(1, b * r))
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

    def _rows_dtype(self) -> tuple[int, torch.dtype]:
        """``(r, dtype)`` of the factor (without forming it, in the lazy subclass)."""
        return self.factor.shape[1], self.factor.dtype

    def _nonzero(self, lam: torch.Tensor, rtol: float | None, atol: float = 0.0) -> torch.Tensor:
        if rtol is None:
            rtol = _jac.default_rtol(*self._rows_dtype())
        sigma = lam.clamp_min(0).sqrt()
        tol = torch.clamp(rtol * sigma.max(dim=-1, keepdim=True).values, min=atol)
        return sigma > tol

    def eigenvalues(self) -> torch.Tensor:
        """``(B, r)`` eigenvalues in decreasing order (the rest of the spectrum is zero)."""
        dtype = self._rows_dtype()[1]
        return torch.linalg.eigvalsh(self.gram()).flip(-1).clamp_min(0).to(dtype)

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


class _ScoreJacobianPSD(LowRankPSD):
    """G in factored form whose factor ``A = K S`` is formed only when it is asked for.

    For many classes (``C >= SYMMETRIC_GRAM_MIN_CLASSES``) the trace, rank and eigenvalues
    come from the Gram matrix ``K (S S^T) K^T`` (:func:`manifoldlib._jacobian.metric_gram`, a
    symmetric product of the centred score Jacobian, ``n C^2 / 2`` multiply-adds), not from
    the factor (``n C^2`` to form it and as many for its Gram matrix). ``factor``,
    :meth:`eigh`, :meth:`matvec`, :meth:`quadratic` and :meth:`to_dense` form the factor, over
    the Jacobian's own storage, on first use.
    """

    def __init__(self, jac: torch.Tensor, logp: torch.Tensor, shape: tuple[int, ...]) -> None:
        self._scores: torch.Tensor | None = jac
        self._logp = logp
        self._factor: torch.Tensor | None = None
        self._lazy_gram: torch.Tensor | None = None
        self._num_rows, self._dtype = jac.shape[1] - 1, jac.dtype
        self._n = math.prod(jac.shape[2:])
        self.shape = shape
        self._gram, self._gram_key = None, None

    @property
    def factor(self) -> torch.Tensor:  # type: ignore[override]
        if self._factor is None:
            self._factor = _jac.metric_factor(self._scores, self._logp)
            self._scores = None
        return self._factor

    @factor.setter
    def factor(self, value: torch.Tensor) -> None:
        self._factor, self._scores, self._lazy_gram = value, None, None

    @property
    def size(self) -> int:
        return self._n

    def _rows_dtype(self) -> tuple[int, torch.dtype]:
        return self._num_rows, self._dtype

    def gram(self) -> torch.Tensor:
        if self._lazy_gram is not None:
            return self._lazy_gram
        if self._factor is not None:
            return super().gram()
        self._lazy_gram = _jac.metric_gram(self._scores, self._logp)
        return self._lazy_gram

    def trace(self) -> torch.Tensor:
        if self._factor is not None:
            return super().trace()
        return torch.diagonal(self.gram(), dim1=1, dim2=2).sum(-1).to(self._dtype)


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
    check_input(model, x)
    with eval_mode(model):
        # Many classes: the Gram route works from the whole score Jacobian. Otherwise the
        # C - 1 rows H^T S (one backward pass fewer) give the factor. One image's forward
        # pass tells C.
        with torch.no_grad():
            classes = _jac.forward_scores(model, x[:1]).shape[1]
        if classes >= _jac.SYMMETRIC_GRAM_MIN_CLASSES:
            jac, logp = _jac.jacobian_of_scores(model, x)
            return _ScoreJacobianPSD(jac, logp, tuple(x.shape[1:]))
        rows, logp = _jac.difference_jacobian(model, x)
    factor = _jac.metric_factor(rows, logp, differences=True)
    return LowRankPSD(factor=factor, shape=tuple(x.shape[1:]))


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
    """(B, C-1, d) factor of F(x, w) for each sample, from the weight score Jacobian."""
    jac, logp = _jac.weight_score_jacobian(model, x)
    return _jac.metric_coefficients(logp).to(jac.dtype) @ jac


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
    check_input(model, x)
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
        mean_stderr: its standard error as an estimate of the mean trace *of the data
            distribution* the ``B`` inputs are a sample of: the clustered (between-input plus
            within-input) error ``std(values) / sqrt(B)``, whose square estimates
            ``sigma_b^2 / B + sigma_w^2 / (B * samples)`` without bias (``sigma_b^2`` the
            variance of the exact trace over inputs, ``sigma_w^2`` the mean variance of one
            draw around it). More draws per input shrink only the second term. With ``B = 1``
            only the within-input part is known: ``stderr[0]`` (NaN with one sample).
        samples: number of draws of ``y`` per input.
        batch_stderr: standard error as an estimate of the mean of the exact traces *of these
            B inputs* (inputs fixed, only the draws random): ``sqrt(sum_b stderr_b^2) / B``;
            NaN with a single sample (the within-input spread is then unknown).
    """

    values: torch.Tensor
    stderr: torch.Tensor
    mean: float
    mean_stderr: float
    samples: int
    batch_stderr: float = float("nan")


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
    check_input(model, x)
    check_positive(samples, "samples", integer=True)

    def draw(logp: torch.Tensor) -> torch.Tensor:  # (S, B, C) one-hot classes y ~ p(.|x)
        y = torch.multinomial(logp.exp(), samples, replacement=True, generator=generator)
        return F.one_hot(y.T, logp.shape[1])

    with eval_mode(model):
        d, _ = _jac.logprob_vjp(model, x, draw, reduce=lambda g: g.flatten(2).pow(2).sum(2))
    # d: (samples, B) squared norms ||grad_x log p_y||^2
    values = d.mean(0)
    n = values.numel()
    if samples > 1:
        stderr = d.std(0, unbiased=True) / math.sqrt(samples)
        batch_stderr = float(stderr.pow(2).sum().sqrt() / n)
    else:
        stderr = torch.full_like(values, float("nan"))
        batch_stderr = float("nan")
    # Clustered error: the B per-input means are independent, the draws within one input
    # share its exact trace. Not the std of all B * samples draws over sqrt(B * samples),
    # which divides the between-input variance by the number of draws too.
    mean_stderr = float(values.std(unbiased=True) / math.sqrt(n)) if n > 1 else float(stderr[0])
    return TraceEstimate(
        values.detach(),
        stderr.detach(),
        float(values.mean()),
        mean_stderr,
        samples,
        batch_stderr,
    )


#: Images per pass of :func:`mean_trace`. Chunks of 32-64 MNIST images ran 1.2x faster per image
#: than chunks of 256 (exact 6.5 vs 8.0, Monte Carlo 1.3 vs 1.6 CPU-ms per image, one thread):
#: a chunk's activations and gradients then stay in the caches across the C - 1 backward passes.
TRACE_CHUNK = 64


@dataclass
class MeanTrace:
    """The mean of ``Tr G(x, w)`` over a batch (:func:`mean_trace`).

    ``float(m)`` is the mean.

    Attributes:
        mean: the batch mean of the trace.
        mean_stderr: its standard error (0 for the exact method).
        rank_min: the smallest numerical rank of G over the batch (None for Monte Carlo).
        rank_max: the largest (None for Monte Carlo).
        method: ``"exact"`` or ``"mc"``.

    Introduced in the chapter "Training and the trace of G".
    """

    mean: float
    mean_stderr: float
    rank_min: int | None = None
    rank_max: int | None = None
    method: str = "exact"

    def __float__(self) -> float:
        return self.mean


def mean_trace(
    model: nn.Module,
    x: torch.Tensor,
    *,
    method: str = "exact",
    chunk: int = TRACE_CHUNK,
    generator: torch.Generator | None = None,
) -> MeanTrace:
    """Mean of ``Tr G(x, w)`` over a batch, exactly or by Monte Carlo.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        method: ``"exact"`` (C - 1 backward passes per chunk, and the ranks) or ``"mc"`` (one
            backward pass per chunk, :func:`trace_mc`, unbiased).
        chunk: images per pass (``TRACE_CHUNK`` by default: measured fastest on the MNIST CNN).
        generator: random generator for the MC draws.

    Returns:
        A :class:`MeanTrace`.

    Introduced in the chapter "Training and the trace of G".
    """
    check_input(model, x)
    check_positive(chunk, "chunk", integer=True)
    if method == "exact":
        traces, ranks = [], []
        for xc in x.split(chunk):
            g = local_data_lowrank(model, xc)
            traces.append(g.trace())
            ranks.append(g.rank())
        t, r = torch.cat(traces), torch.cat(ranks)
        return MeanTrace(float(t.mean()), 0.0, int(r.min()), int(r.max()), "exact")
    if method == "mc":
        est = [trace_mc(model, xc, generator=generator).values for xc in x.split(chunk)]
        v = torch.cat(est)
        return MeanTrace(float(v.mean()), float(v.std() / math.sqrt(len(v))), method="mc")
    raise ValueError(f"method must be 'exact' or 'mc', got {method!r}")


def _check_projection_args(model: nn.Module, x: torch.Tensor, v: torch.Tensor) -> None:
    check_input(model, x)
    check_like(x, v, "x", "v")


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

    Introduced in the chapter "Horizontal paths between test images".
    """
    _check_projection_args(model, x, v)
    with eval_mode(model):
        rows, _ = _jac.difference_jacobian(model, x)
    return _jac.project(rows, v, rtol, differences=True)


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
    return v - tangent_projection(model, x, v, rtol=rtol)


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
    check_input(model, x)
    with eval_mode(model):
        diff, _ = _jac.difference_jacobian(model, x)  # C - 1 backward passes
    rows, _, ranks = _jac.tangent_coordinates(diff, rtol, differences=True)
    lam, u = torch.linalg.eigh(rows @ rows.transpose(1, 2))
    lam, u = lam.flip(-1), u.flip(-1)
    r = torch.arange(lam.shape[1], device=lam.device).unsqueeze(0) < ranks.unsqueeze(1)
    scale = torch.where(r, 1.0 / lam.clamp_min(torch.finfo(lam.dtype).tiny).sqrt(), 0.0)
    basis = (u * scale.unsqueeze(1)).transpose(1, 2) @ rows
    return basis.to(x.dtype).reshape(x.shape[0], -1, *x.shape[1:]), ranks
