"""The speed work in the differentiation core, against the plain routes and float64 oracles.

For ``C >= SYMMETRIC_GRAM_MIN_CLASSES`` :func:`manifoldlib.local_data_lowrank` computes the
trace, rank and eigenvalues from ``K (S S^T) K^T`` (a symmetric product) without forming the
``(C-1) x n`` factor; these tests compare it with the factor route and with a float64 dense G.
"""

from __future__ import annotations

import pytest
import torch
from oracles import ref_G, ref_jacobian
from torch import nn

import manifoldlib as ml
from manifoldlib import _jacobian as _jac
from manifoldlib.geometry import LowRankPSD


def _net(classes: int, dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)
    return (
        nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 7 * 7, classes)
        )
        .to(dtype)
        .eval()
    )


def test_symmetric_gram_matches_full_product():
    s = torch.randn(2, 37, 9000)
    full = s.double() @ s.double().transpose(1, 2)
    for blocks in (1, 3, 5):
        got = _jac.symmetric_gram(s, row_blocks=blocks)
        torch.testing.assert_close(got, full, rtol=1e-5, atol=1e-3)
        assert torch.equal(got, got.transpose(1, 2))


@pytest.mark.parametrize("classes", [_jac.SYMMETRIC_GRAM_MIN_CLASSES, 100])
def test_lazy_route_matches_factor_route(classes):
    model = _net(classes)
    x = torch.randn(2, 3, 16, 16)
    g = ml.local_data_lowrank(model, x)
    assert type(g).__name__ == "_ScoreJacobianPSD"
    lam, tr, rank = g.eigenvalues(), g.trace(), g.rank()
    jac, logp = ml.score_jacobian(model, x, return_logp=True)
    ref = LowRankPSD(factor=_jac.metric_factor(jac, logp), shape=(3, 16, 16))
    torch.testing.assert_close(lam, ref.eigenvalues(), rtol=1e-4, atol=1e-6 * float(lam.max()))
    torch.testing.assert_close(tr, ref.trace(), rtol=1e-4, atol=0)
    assert torch.equal(rank, ref.rank())
    # forming the factor afterwards gives the same matrix
    torch.testing.assert_close(g.factor, ref.factor, rtol=1e-4, atol=1e-6)
    v = torch.randn(2, 3, 16, 16)
    torch.testing.assert_close(g.matvec(v), ref.matvec(v), rtol=1e-4, atol=1e-6)


def test_lazy_route_matches_float64_dense_G():
    classes = 80
    model = _net(classes, torch.float64)
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64)
    g = ml.local_data_lowrank(model, x)
    assert type(g).__name__ == "_ScoreJacobianPSD"
    dense = ref_G(model, x)[0]  # the float64 oracle's dense G (eq. 6)
    lam_dense = torch.linalg.eigvalsh(dense).flip(0)[: classes - 1]
    torch.testing.assert_close(
        g.eigenvalues()[0], lam_dense, rtol=1e-7, atol=1e-10 * float(lam_dense[0])
    )
    torch.testing.assert_close(g.trace()[0], torch.diagonal(dense).sum(), rtol=1e-9, atol=0)


@pytest.mark.parametrize("batch", [1, 3])
def test_difference_jacobian_is_helmert_rows_of_the_score_jacobian(batch):
    model = _net(12, torch.float64)
    x = torch.randn(batch, 3, 16, 16, dtype=torch.float64)
    rows, logp = _jac.difference_jacobian(model, x)
    jac, logp2 = ml.score_jacobian(model, x, return_logp=True)
    h = _jac.helmert(12, torch.float64, x.device)
    torch.testing.assert_close(
        rows, torch.einsum("ck,bc...->bk...", h, jac), rtol=1e-10, atol=1e-12
    )
    torch.testing.assert_close(logp, logp2)
    v = torch.randn_like(x)
    torch.testing.assert_close(
        _jac.project(rows, v, differences=True), _jac.project(jac, v), rtol=1e-10, atol=1e-12
    )
    # the projection is the orthogonal projector on the span of grad log p_i (float64 oracle)
    g = ref_jacobian(model, x).flatten(2)  # (B, C, n), the oracle's autograd Jacobian
    q = torch.linalg.pinv(g.transpose(1, 2))  # (B, C, n)
    p = (g.transpose(1, 2) @ q @ v.flatten(1).unsqueeze(2)).reshape(v.shape)
    torch.testing.assert_close(ml.tangent_projection(model, x, v), p, rtol=1e-7, atol=1e-9)


def test_metric_factor_from_difference_rows_matches_float64_G():
    """A = (H^T M H)^(1/2) H^T S gives G = A^T A, the float64 oracle's G (eq. 6)."""
    model = _net(7, torch.float64)
    x = torch.randn(3, 3, 16, 16, dtype=torch.float64)
    rows, logp = _jac.difference_jacobian(model, x)
    a = _jac.metric_factor(rows, logp, differences=True)  # (B, C-1, n)
    torch.testing.assert_close(a.transpose(1, 2) @ a, ref_G(model, x), rtol=1e-9, atol=1e-12)
    jac, logp2 = ml.score_jacobian(model, x, return_logp=True)
    # same Gram as the factor from the whole Jacobian (the factors differ by a rotation)
    b = _jac.metric_factor(jac, logp2)
    torch.testing.assert_close(a @ a.transpose(1, 2), b @ b.transpose(1, 2), rtol=1e-9, atol=1e-12)
    root = _jac.metric_root(logp)
    torch.testing.assert_close(root, root.transpose(1, 2))
