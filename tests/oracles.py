"""Slow, obvious float64 references that every test file checks manifoldlib against.

One sample at a time, dense matrices, SVDs: nothing shared with the library's code paths.

- :func:`ref_jacobian`: per-sample Jacobian of ``log_softmax(model(x))`` (autograd);
- :func:`ref_G`, :func:`ref_fisher`: the dense local data matrix (eq. 6) and Fisher matrix
  (eq. 5); :func:`ref_parameter_jacobian`, :func:`ref_parameter_log_prob_fn`: derivatives in
  the parameters ``w``, one sample and class at a time, and ``log p`` as a function of ``w``;
- :func:`ref_metric_quadratic`: ``v^T G v`` with the dense ``G = J_p^T F J_p`` (the Fisher
  metric ``F = diag(1/p)`` of the simplex pulled back by the Jacobian of ``x -> p``);
- :func:`row_basis`, :func:`ref_tangent_projector`: an orthonormal basis of
  ``D_x = span{grad log p_i}`` and the dense orthogonal projector on it, from an SVD;
- :func:`ref_trace`: ``Tr G`` by eq. (11);
- :func:`ref_kernel_residual`: ``||P_ker G(a) (x - a)||`` with the dense projector;
- :func:`ref_auroc`, :func:`ref_delong`, :func:`ref_fpr_at_tpr`: the AUROC by counting the
  ``n m`` pairs, DeLong's covariance from the pair kernel written out, and the FPR at a TPR by
  trying every threshold (plain Python loops, no ranks, no sorting).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.functional import jacobian

__all__ = [
    "ref_G",
    "ref_activation_pattern",
    "ref_auroc",
    "ref_delong",
    "ref_fisher",
    "ref_fpr_at_tpr",
    "ref_jacobian",
    "ref_kernel_residual",
    "ref_metric_quadratic",
    "ref_parameter_jacobian",
    "ref_parameter_log_prob_fn",
    "ref_tangent_projector",
    "ref_trace",
    "row_basis",
]


def ref_jacobian(model, x):
    """``(B, C, *in)`` per-sample Jacobian of log_softmax(model(x)), by autograd."""
    rows = []
    for xi in x:
        rows.append(jacobian(lambda z: F.log_softmax(model(z.unsqueeze(0)), 1)[0], xi))
    return torch.stack(rows)


def ref_G(model, x):
    """``(B, n, n)`` dense ``G = sum_i p_i grad log p_i grad log p_i^T``."""
    jac = ref_jacobian(model, x).flatten(2)
    p = F.softmax(model(x), 1).detach()
    return torch.einsum("bi,bin,bim->bnm", p, jac, jac)


def ref_metric_quadratic(model, x, v):
    """``(B,)`` ``v^T J_p^T diag(1/p) J_p v`` in float64, one sample at a time.

    ``J_p`` is the Jacobian of ``softmax(model(x))`` (autograd on the probabilities, not on
    their logarithm), ``diag(1/p)`` the Fisher metric of the categorical distributions; the
    dense ``n x n`` matrix is formed and contracted with ``v``.
    """
    out = []
    for xi, vi in zip(x.double(), v.double(), strict=True):
        jp = jacobian(lambda z: F.softmax(model(z.unsqueeze(0)), 1)[0], xi).flatten(1)  # (C, n)
        p = F.softmax(model(xi.unsqueeze(0)), 1)[0].detach()
        dense = jp.T @ torch.diag(1.0 / p) @ jp  # (n, n)
        w = vi.flatten()
        out.append(w @ dense @ w)
    return torch.stack(out)


def ref_parameter_jacobian(model, x):
    """``(B, C, d)`` ``grad_w log p_i(y|x_b, w)``, one sample and one class at a time (autograd).

    Trainable parameters flattened in ``model.named_parameters()`` order.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    out = []
    for xi in x:
        rows = []
        logp = F.log_softmax(model(xi.unsqueeze(0)), 1)[0]
        for i in range(logp.shape[0]):
            g = torch.autograd.grad(logp[i], params, retain_graph=True)
            rows.append(torch.cat([t.flatten() for t in g]))
        out.append(torch.stack(rows))
    return torch.stack(out)


def ref_parameter_log_prob_fn(model, x):
    """``w -> log p(y|x, w)`` ``(B, C)`` of the flat trainable parameters, and ``w`` now.

    The model is copied and its parameters replaced by views of ``w`` (no ``torch.func``).
    """
    import copy

    names = [k for k, p in model.named_parameters() if p.requires_grad]
    w0 = torch.cat([p.detach().flatten() for k, p in model.named_parameters() if k in names])

    def fn(w):
        m = copy.deepcopy(model)
        at = 0
        for k in names:
            mod_name, _, attr = k.rpartition(".")
            mod = m.get_submodule(mod_name) if mod_name else m
            old = getattr(mod, attr)
            delattr(mod, attr)
            setattr(mod, attr, w[at : at + old.numel()].view(old.shape))
            at += old.numel()
        return F.log_softmax(m(x), 1)

    return fn, w0


def ref_fisher(model, x):
    """``(B, d, d)`` dense local Fisher matrix over the trainable parameters."""
    jac = ref_parameter_jacobian(model, x)
    p = F.softmax(model(x), 1).detach()
    return torch.einsum("bi,bin,bim->bnm", p, jac, jac)


def row_basis(rows, rtol=1e-10):
    """``(r, n)`` orthonormal basis of the row space of ``rows`` ``(C, n)``, from an SVD."""
    _, s, vh = torch.linalg.svd(rows, full_matrices=False)
    return vh[: int((s > s[0] * rtol).sum())]


def ref_tangent_projector(model, x):
    """``(B, n, n)`` dense orthogonal projector on ``D_x``."""
    out = []
    for j in ref_jacobian(model, x).flatten(2):
        v = row_basis(j)
        out.append(v.T @ v)
    return torch.stack(out)


def ref_trace(model, x):
    """``(B,)`` ``Tr G = sum_i p_i ||grad log p_i||^2`` (eq. 11)."""
    jac = ref_jacobian(model, x).flatten(2)
    p = F.softmax(model(x), 1).detach()
    return (p * jac.pow(2).sum(2)).sum(1)


def ref_kernel_residual(model, a, x):
    """``(B,)`` ``||(I - V^T V)(x - a)||``, ``V`` a basis of ``D_a``."""
    out = []
    for j, ai, xi in zip(ref_jacobian(model, a).flatten(2), a, x, strict=True):
        v = row_basis(j)
        delta = (xi - ai).flatten()
        out.append((delta - v.T @ (v @ delta)).norm())
    return torch.stack(out)


def ref_activation_pattern(model, x):
    """``(B, m)`` bools: which ReLU units are on and which max-pool inputs win, per sample.

    Two points with the same pattern lie in one linear region of a ReLU/max-pool network (the
    network is affine there). Recorded with forward hooks, one sample at a time.
    """
    out = []
    for xi in x:
        parts = []

        def relu_hook(module, inputs, output, parts=parts):
            parts.append((output > 0).flatten())

        def pool_hook(module, inputs, output, parts=parts):
            _, idx = F.max_pool2d(
                inputs[0],
                module.kernel_size,
                module.stride,
                module.padding,
                module.dilation,
                ceil_mode=module.ceil_mode,
                return_indices=True,
            )
            parts.append(idx.flatten())

        handles = []
        for m in model.modules():
            if isinstance(m, torch.nn.ReLU):
                handles.append(m.register_forward_hook(relu_hook))
            elif isinstance(m, torch.nn.MaxPool2d):
                handles.append(m.register_forward_hook(pool_hook))
        try:
            with torch.no_grad():
                model(xi.unsqueeze(0))
        finally:
            for h in handles:
                h.remove()
        if not parts:
            raise ValueError("the model has no nn.ReLU or nn.MaxPool2d module to record")
        out.append(torch.cat([p.long() for p in parts]))
    return torch.stack(out)


def _psi(out, inn):
    """The pair kernel of the AUROC: 1 if the out score is higher, 1/2 on a tie."""
    return 1.0 if out > inn else 0.5 if out == inn else 0.0


def ref_auroc(s_in, s_out):
    """The AUROC by counting the ``n m`` pairs one by one."""
    total = sum(_psi(b, a) for a in s_in for b in s_out)
    return total / (len(s_in) * len(s_out))


def ref_delong(s_in, s_out):
    """DeLong et al. (1988) with the pair kernel written out: ``(K,)`` AUROCs, ``(K, K)`` cov.

    ``s_in`` ``(K, n)`` (or ``(n,)``), ``s_out`` ``(K, m)``; loops of ``O(K^2 n m)``.
    """
    s_in, s_out = np.atleast_2d(s_in), np.atleast_2d(s_out)
    k, n = s_in.shape
    m = s_out.shape[1]
    v10 = [
        [sum(_psi(s_out[r, j], s_in[r, i]) for i in range(n)) / n for j in range(m)]
        for r in range(k)
    ]
    v01 = [
        [sum(_psi(s_out[r, j], s_in[r, i]) for j in range(m)) / m for i in range(n)]
        for r in range(k)
    ]
    aucs = [sum(v) / m for v in v10]
    cov = np.zeros((k, k))
    for r in range(k):
        for t in range(k):
            s10 = sum((v10[r][j] - aucs[r]) * (v10[t][j] - aucs[t]) for j in range(m)) / (m - 1)
            s01 = sum((v01[r][i] - aucs[r]) * (v01[t][i] - aucs[t]) for i in range(n)) / (n - 1)
            cov[r, t] = s10 / m + s01 / n
    return np.array(aucs), cov


def ref_fpr_at_tpr(s_in, s_out, tpr):
    """Try every threshold; the lowest FPR among those accepting ``>= tpr`` of the in set."""
    best = 1.0
    for t in list(s_in) + list(s_out):
        if sum(a <= t for a in s_in) / len(s_in) >= tpr - 1e-12:
            best = min(best, sum(b <= t for b in s_out) / len(s_out))
    return best
