"""Lie brackets of the gradient fields and the involutivity of D_x (Theorem 3.1, Remark §3).

By Frobenius' theorem (paper, eq. 10 and Appendix A) the distribution
``D_x = (ker G(x, w))^perp = span{grad_x log p_k}`` has integral submanifolds (leaves) exactly
when it is involutive: the Lie bracket of two fields of D stays in D. For the spanning fields
``X_i = grad_x log p_i`` the bracket is (eq. 17)

    [X_i, X_j] = H(log p_j) X_i - H(log p_i) X_j,

with ``H`` the Hessian in ``x``. Theorem 3.1 (B.2) shows that for a piecewise-linear network
(ReLU) both products lie in D_x, wherever the network is differentiable; with a smooth
non-linearity (GELU, tanh, sigmoid) they need not. This module computes the brackets at a
batch of points with Hessian-vector products (double back-propagation, no Hessian is formed)
and measures how much of each bracket lies outside D_x:

    residual = || [X_i, X_j] - Proj_D [X_i, X_j] || / || [X_i, X_j] ||,

which is zero (up to round-off) for an involutive distribution.

The Remark at the end of §3 concerns the parameter space: the fields
``w -> grad_w log p_i(y|x, w)``, one per data point x and class i, span
``D'_w = (ker F(w))^perp`` with ``F(w) = E_x F(x, w)``, and that distribution is not
involutive. :func:`parameter_involutivity_residual` measures it the same way.

ReLU networks are not differentiable on the union of the hypersurfaces where a
pre-activation vanishes. Autograd uses ``relu'(0) = 0`` there, and the second derivative of
ReLU is zero everywhere: so the brackets computed here are those of the linear piece the
point lies in, which is what Theorem B.2 uses (it is a local statement on each open piece).

Introduced in the chapter "Why ReLU networks foliate, region by region" (book/03).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from . import _jacobian as _jac
from ._checks import check_input, check_tensor, eval_mode

__all__ = [
    "involutivity_residual",
    "logprob_brackets",
    "parameter_brackets",
    "parameter_gradient_fields",
    "parameter_involutivity_residual",
]

Pair = tuple[int, int]


def _check_pairs(pairs: Sequence[Pair] | None, num_classes: int, name: str) -> list[Pair]:
    """All pairs ``i < j`` by default; otherwise validate the given class pairs."""
    if pairs is None:
        return [(i, j) for i in range(num_classes) for j in range(i + 1, num_classes)]
    out = []
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(f"{name} must be a sequence of pairs (i, j), got {pair!r}")
        i, j = (int(v) for v in pair)
        if not (0 <= i < num_classes and 0 <= j < num_classes):
            raise ValueError(f"{name} holds {pair!r}: indices must lie in 0 .. {num_classes - 1}")
        out.append((i, j))
    if not out:
        raise ValueError(f"{name} is empty; give at least one pair (i, j)")
    return out


def logprob_brackets(
    model: nn.Module, x: torch.Tensor, pairs: Sequence[Pair] | None = None
) -> torch.Tensor:
    """Lie brackets ``[grad_x log p_i, grad_x log p_j]`` at a batch of points (eq. 17).

    Two Hessian-vector products per pair, ``H(log p_j) X_i - H(log p_i) X_j``, by double
    back-propagation over the whole batch (no per-sample loop, no ``n x n`` Hessian).

    Args:
        model: classifier returning scores ``(B, C)``; it must be twice differentiable almost
            everywhere (every torch activation is; ReLU's second derivative is 0).
        x: points ``(B, *input_shape)``.
        pairs: class pairs ``(i, j)``; default all ``i < j``.

    Returns:
        ``(B, P, *input_shape)`` brackets, ``P = len(pairs)``.

    Raises:
        ValueError: a pair holds an index outside ``0 .. C-1``.

    Introduced in the chapter "Why ReLU networks foliate, region by region".
    """
    check_input(model, x)
    with eval_mode(model):
        return _jac.logprob_brackets(model, x, lambda c: _check_pairs(pairs, c, "pairs"))


def involutivity_residual(
    model: nn.Module,
    x: torch.Tensor,
    pairs: Sequence[Pair] | None = None,
    *,
    rtol: float | None = None,
) -> torch.Tensor:
    """Relative size of the part of each bracket outside ``D_x`` (0: involutive).

    ``|| b - Proj_D b || / || b ||`` for ``b = [grad_x log p_i, grad_x log p_j]``, with the exact
    projection on ``D_x`` of :func:`manifoldlib.tangent_projection`. For a ReLU network it is
    at round-off level (about ``1e-15`` in float64, ``1e-6`` in float32); with a smooth
    activation it is generically of order one. Use float64 to separate the two cleanly.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: points ``(B, *input_shape)``.
        pairs: class pairs ``(i, j)``; default all ``i < j``.
        rtol: relative tolerance for degenerate gradients in the projection.

    Returns:
        ``(B, P)`` residuals in ``[0, 1]``; NaN where the bracket is exactly zero.

    Introduced in the chapter "Why ReLU networks foliate, region by region".
    """
    brackets = logprob_brackets(model, x, pairs)  # checks the arguments
    with eval_mode(model):
        rows, _ = _jac.difference_jacobian(model, x)
    b, p = brackets.shape[:2]
    flat = brackets.reshape(b * p, *x.shape[1:])
    rows_rep = rows.repeat_interleave(p, dim=0)
    outside = flat - _jac.project(rows_rep, flat, rtol, differences=True)
    num = outside.flatten(1).norm(dim=1)
    den = flat.flatten(1).norm(dim=1)
    res = torch.where(den > 0, num / den.clamp_min(torch.finfo(den.dtype).tiny), torch.nan)
    return res.reshape(b, p)


# --- Parameter space (Remark of section 3) -------------------------------------------------


def _param_logp(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The flat parameter vector ``w`` (requiring grad) and ``log p(y|x, w)``, ``(B, C)``.

    Call under ``torch.enable_grad()``: ``log p`` keeps its graph to ``w`` for the callers'
    first and second derivatives in parameter space.
    """
    fn, w0 = _jac.weight_log_probs_fn(model, x)
    w = w0.clone().requires_grad_(True)
    return w, fn(w)


def parameter_gradient_fields(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The fields ``grad_w log p_i(y|x_b, w)``, one per data point and class, at the current w.

    They span ``D'_w = (ker F(w))^perp`` for ``F(w) = E_x F(x, w)`` over the points ``x``
    (Prop. 2.1 applied to the average). Parameters are flattened and concatenated in the order
    of ``model.named_parameters()``.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: the data set ``(B, *input_shape)``.

    Returns:
        ``(B, C, d)`` gradients, ``d`` the number of trainable parameters.

    Introduced in the chapter "Why ReLU networks foliate, region by region".
    """
    check_input(model, x)
    with eval_mode(model):
        jac, logp = _jac.weight_score_jacobian(model, x)
    return _jac.logprob_rows(jac, logp)


def _check_field_pairs(
    pairs: Sequence[tuple[Pair, Pair]], num_points: int, num_classes: int
) -> list[tuple[Pair, Pair]]:
    out = []
    for pair in pairs:
        if not (isinstance(pair, (tuple, list)) and len(pair) == 2):
            raise ValueError(
                f"pairs must hold ((point, class), (point, class)) entries, got {pair!r}"
            )
        fields = []
        for f in pair:
            if not (isinstance(f, (tuple, list)) and len(f) == 2):
                raise ValueError(f"pairs holds {pair!r}: each field is (point, class)")
            s, k = int(f[0]), int(f[1])
            if not (0 <= s < num_points and 0 <= k < num_classes):
                raise ValueError(
                    f"pairs holds {pair!r}: point must lie in 0 .. {num_points - 1} and class "
                    f"in 0 .. {num_classes - 1}"
                )
            fields.append((s, k))
        out.append((fields[0], fields[1]))
    if not out:
        raise ValueError("pairs is empty; give at least one pair of fields")
    return out


def parameter_brackets(
    model: nn.Module, x: torch.Tensor, pairs: Sequence[tuple[Pair, Pair]] | None = None
) -> tuple[torch.Tensor, list[tuple[Pair, Pair]]]:
    """Lie brackets of parameter-gradient fields ``Y_{b,i}(w) = grad_w log p_i(y|x_b, w)``.

    ``[Y_a, Y_b] = H_w(log p_b) Y_a - H_w(log p_a) Y_b`` (eq. 17 in parameter space), two
    Hessian-vector products in ``w`` per pair. Meant for small networks (the Remark of §3).

    Args:
        model: classifier returning scores ``(B, C)``.
        x: the data set ``(B, *input_shape)``.
        pairs: pairs of fields ``((b, i), (b', j))``; default all pairs of distinct fields.

    Returns:
        ``(P, d)`` brackets and the list of the ``P`` pairs.

    Introduced in the chapter "Why ReLU networks foliate, region by region".
    """
    check_input(model, x)
    with eval_mode(model), torch.enable_grad():
        w, logp = _param_logp(model, x)
        b, c = logp.shape
        fields = [(s, k) for s in range(b) for k in range(c)]
        if pairs is None:
            pair_list = [
                (fields[u], fields[v])
                for u in range(len(fields))
                for v in range(u + 1, len(fields))
            ]
        else:
            pair_list = _check_field_pairs(pairs, b, c)
        used = sorted({f for p in pair_list for f in p})
        grads = {
            f: torch.autograd.grad(logp[f], w, create_graph=True, retain_graph=True)[0]
            for f in used
        }
        products: dict[tuple[Pair, Pair], torch.Tensor] = {}
        for fa, fb in pair_list:
            for h, v in ((fb, fa), (fa, fb)):
                if (h, v) not in products:
                    (hv,) = torch.autograd.grad(
                        (grads[h] * grads[v].detach()).sum(), w, retain_graph=True
                    )
                    products[(h, v)] = hv
    out = [products[(fb, fa)] - products[(fa, fb)] for fa, fb in pair_list]
    return torch.stack(out).detach(), pair_list


def _span_residual(vectors: torch.Tensor, span: torch.Tensor, rtol: float) -> torch.Tensor:
    """``||v - Proj v|| / ||v||`` for rows v of ``vectors`` (P, d), span = rows of (K, d)."""
    u, s, vh = torch.linalg.svd(span.to(torch.float64), full_matrices=False)
    basis = vh[s > rtol * s.max()]
    v = vectors.to(torch.float64)
    outside = v - (v @ basis.T) @ basis
    den = v.norm(dim=1)
    res = torch.where(den > 0, outside.norm(dim=1) / den.clamp_min(1e-300), torch.nan)
    return res.to(vectors.dtype)


def parameter_involutivity_residual(
    model: nn.Module,
    x: torch.Tensor,
    pairs: Sequence[tuple[Pair, Pair]] | None = None,
    *,
    rtol: float | None = None,
) -> tuple[torch.Tensor, int]:
    """How far brackets of parameter-gradient fields leave ``D'_w = (ker F(w))^perp``.

    The distribution of the Remark of §3 is spanned by all the fields
    ``grad_w log p_i(y|x_b, w)`` over the data set; it is a proper subspace of ``R^d`` when
    ``B (C - 1) < d``. (When it is all of ``R^d`` it is trivially involutive.)

    Args:
        model: classifier returning scores ``(B, C)`` (small: ``d`` up to a few thousand).
        x: the data set ``(B, *input_shape)``.
        pairs: pairs of fields ``((b, i), (b', j))``; default all pairs of distinct fields.
        rtol: relative tolerance on singular values for the rank of the span; default
            ``1e3 * B * C * eps`` of ``x``'s dtype.

    Returns:
        ``(P,)`` residuals ``||b - Proj b|| / ||b||`` and the rank of ``D'_w``.

    Introduced in the chapter "Why ReLU networks foliate, region by region".
    """
    check_tensor(x, "x", min_dim=2)
    fields = parameter_gradient_fields(model, x)
    brackets, _ = parameter_brackets(model, x, pairs)
    span = fields.reshape(-1, fields.shape[2])
    if rtol is None:
        rtol = 1e3 * span.shape[0] * torch.finfo(x.dtype).eps
    s = torch.linalg.svdvals(span.to(torch.float64))
    rank = int((s > rtol * s.max()).sum())
    return _span_residual(brackets, span, rtol), rank
