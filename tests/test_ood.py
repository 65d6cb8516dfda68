"""manifoldlib.ood against slow, obvious references (pair loops, autograd, dense algebra)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import manifoldlib as ml
from manifoldlib import ood
from manifoldlib.models import MnistCNN

# ------------------------------------------------------------------ DeLong


def slow_delong(s_in, s_out):
    """DeLong et al. (1988) written out with the pair kernel psi, O(K n m) loops."""
    s_in, s_out = np.atleast_2d(s_in), np.atleast_2d(s_out)
    k, n = s_in.shape
    m = s_out.shape[1]

    def psi(out, inn):
        return 1.0 if out > inn else 0.5 if out == inn else 0.0

    v10 = np.array(
        [
            [sum(psi(s_out[r, j], s_in[r, i]) for i in range(n)) / n for j in range(m)]
            for r in range(k)
        ]
    )
    v01 = np.array(
        [
            [sum(psi(s_out[r, j], s_in[r, i]) for j in range(m)) / m for i in range(n)]
            for r in range(k)
        ]
    )
    aucs = v10.mean(1)
    s10 = np.array(
        [
            [np.sum((v10[r] - aucs[r]) * (v10[t] - aucs[t])) / (m - 1) for t in range(k)]
            for r in range(k)
        ]
    )
    s01 = np.array(
        [
            [np.sum((v01[r] - aucs[r]) * (v01[t] - aucs[t])) / (n - 1) for t in range(k)]
            for r in range(k)
        ]
    )
    return aucs, s10 / m + s01 / n


@pytest.mark.parametrize("seed", range(4))
def test_delong_fast_matches_slow_with_ties(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(2, 25), rng.integers(2, 25)
    s_in = rng.integers(0, 6, size=(3, n)).astype(float)  # ties
    s_out = rng.integers(2, 9, size=(3, m)).astype(float)
    aucs, cov = ood.delong_covariance(s_in, s_out)
    ref_aucs, ref_cov = slow_delong(s_in, s_out)
    np.testing.assert_allclose(aucs, ref_aucs, atol=1e-12)
    np.testing.assert_allclose(cov, ref_cov, atol=1e-12)
    for r in range(3):
        assert aucs[r] == pytest.approx(ml.stats.auroc(s_in[r], s_out[r]), abs=1e-12)


def test_delong_known_case_by_hand():
    # in = [0, 1], out = [0.5, 2]: V10 = [1/2, 1], V01 = [1, 1/2]; AUC = 3/4;
    # var = var(V10)/2 + var(V01)/2 = 1/8 / 2 + 1/8 / 2 = 1/8.
    aucs, cov = ood.delong_covariance([0.0, 1.0], [0.5, 2.0])
    assert aucs[0] == 0.75 and cov[0, 0] == pytest.approx(0.125)
    # Agrees with the single-score interval of ml.stats.auroc_interval.
    area, low, _ = ml.stats.auroc_interval([0.0, 1.0], [0.5, 2.0])
    half = (area - low) / 1.959963984540054
    assert half**2 == pytest.approx(0.125, rel=1e-9)


def test_delong_test_paired():
    rng = np.random.default_rng(0)
    s_in, s_out = rng.normal(size=200), rng.normal(1.0, size=150)
    same = ood.delong_test(s_in, s_out, s_in, s_out)
    assert same.difference == 0 and same.p_value == 1.0
    # A monotone transform has the same ranks: same AUROC, p = 1.
    mono = ood.delong_test(s_in, s_out, np.exp(s_in), np.exp(s_out))
    assert mono.p_value == 1.0
    # A much better score: tiny p-value, the right sign; the variance formula matches slow.
    better = ood.delong_test(s_in, s_out + 2.0, s_in, s_out)
    assert better.difference > 0.2 and better.p_value < 1e-6
    aucs, cov = slow_delong(
        np.stack([s_in[:20], s_in[:20]]), np.stack([s_out[:15] + 2, s_out[:15]])
    )
    small = ood.delong_test(s_in[:20], s_out[:15] + 2, s_in[:20], s_out[:15])
    se = math.sqrt(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    assert small.std_error == pytest.approx(se, rel=1e-9)
    assert small.p_value == pytest.approx(math.erfc(abs(small.difference / se) / math.sqrt(2)))
    with pytest.raises(ValueError, match="same inputs"):
        ood.delong_test(s_in, s_out, s_in[:5], s_out)


# ------------------------------------------------------------------ FPR at TPR


def slow_fpr(s_in, s_out, tpr):
    """Try every threshold; keep the lowest FPR among those accepting >= tpr of the in set."""
    best = 1.0
    for t in np.concatenate([s_in, s_out]):
        if np.mean(s_in <= t) >= tpr - 1e-12:
            best = min(best, float(np.mean(s_out <= t)))
    return best


@pytest.mark.parametrize("seed", range(5))
def test_fpr_matches_threshold_scan(seed):
    rng = np.random.default_rng(seed)
    s_in = rng.integers(0, 30, size=rng.integers(1, 60)).astype(float)
    s_out = rng.integers(10, 40, size=rng.integers(1, 60)).astype(float)
    for tpr in (0.5, 0.9, 0.95, 1.0):
        assert ood.fpr_at_tpr(s_in, s_out, tpr) == pytest.approx(slow_fpr(s_in, s_out, tpr))


def test_fpr_known_cases():
    s_in = np.arange(100.0)  # the 95% threshold is 94
    assert ood.fpr_at_tpr(s_in, [94.0, 94.5, 200.0, -1.0]) == 0.5
    assert ood.fpr_at_tpr(s_in, s_in + 1000) == 0.0
    assert ood.fpr_at_tpr(s_in, s_in) == 0.95
    with pytest.raises(ValueError, match="tpr"):
        ood.fpr_at_tpr(s_in, s_in, 0.0)


# ------------------------------------------------------------------ model-based scores


@pytest.fixture(scope="module")
def cnn():
    torch.manual_seed(0)
    return MnistCNN().double().eval()


def test_penultimate_features_are_the_input_of_the_last_layer(cnn):
    x = torch.randn(5, 1, 28, 28, dtype=torch.float64)
    feats = ood.penultimate_features(cnn, x, chunk=2)
    ref = cnn.classifier[1](cnn.classifier[0](cnn.features(x)))
    torch.testing.assert_close(feats, ref)
    assert not cnn._forward_pre_hooks and not cnn.classifier[2]._forward_pre_hooks


def test_energy_score(cnn):
    x = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    logits = cnn(x).detach()
    torch.testing.assert_close(ood.energy_score(cnn, x), -torch.logsumexp(logits, 1))
    t = 3.0
    ref = -t * torch.log(torch.exp(logits / t).sum(1))
    torch.testing.assert_close(ood.energy_score(cnn, x, temperature=t), ref)


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_gradnorm_closed_form_matches_autograd(cnn, temperature):
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    last = cnn.classifier[2]
    expected = []
    for xi in x:
        cnn.zero_grad()
        logp = torch.log_softmax(cnn(xi[None]) / temperature, dim=1)
        kl = -(logp.mean())  # KL(u || p) up to a constant
        kl.backward()
        expected.append(-last.weight.grad.abs().sum())
    got = ood.gradnorm_score(cnn, x, temperature=temperature)
    torch.testing.assert_close(got, torch.stack(expected))
    cnn.zero_grad()


def test_mahalanobis_against_dense_formula():
    gen = torch.Generator().manual_seed(0)
    feats = torch.randn(60, 4, generator=gen, dtype=torch.float64)
    labels = torch.arange(60) % 3
    feats[:, 0] += 3 * labels
    fit = ood.fit_class_gaussians(feats, labels, ridge=0.0)
    means = torch.stack([feats[labels == c].mean(0) for c in range(3)])
    centred = feats - means[labels]
    cov = centred.T @ centred / 60
    torch.testing.assert_close(fit.means, means)
    q = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    ref = torch.tensor(
        [min(float((qi - mu) @ torch.linalg.solve(cov, qi - mu)) for mu in means) for qi in q],
        dtype=torch.float64,
    )
    torch.testing.assert_close(ood.mahalanobis_score(q, fit), ref)
    with pytest.raises(ValueError, match="every class"):
        ood.fit_class_gaussians(feats, torch.where(labels == 1, 2, labels))


def test_knn_feature_score_against_sorting():
    gen = torch.Generator().manual_seed(1)
    bank, q = torch.randn(30, 5, generator=gen), torch.randn(4, 5, generator=gen)
    bn = bank / bank.norm(dim=1, keepdim=True)
    qn = q / q.norm(dim=1, keepdim=True)
    for k in (1, 3):
        ref = torch.stack([(qi - bn).norm(dim=1).sort().values[k - 1] for qi in qn])
        torch.testing.assert_close(ood.knn_feature_score(q, bank, k=k), ref, atol=1e-5, rtol=1e-5)
    # Scale-free: rescaling features does not change the score.
    torch.testing.assert_close(ood.knn_feature_score(3 * q, bank), ood.knn_feature_score(q, bank))


# ------------------------------------------------------------------ controls


def test_subspace_residual_and_random_basis():
    gen = torch.Generator().manual_seed(2)
    q = ood.random_subspace_basis(3, 12, 4, generator=gen)
    eye = torch.eye(4, dtype=torch.float64).expand(3, 4, 4)
    torch.testing.assert_close(q.transpose(1, 2) @ q, eye)
    a = torch.randn(3, 1, 3, 4, dtype=torch.float64, generator=gen)
    inside = a + (q @ torch.randn(3, 4, 1, dtype=torch.float64, generator=gen)).view(3, 1, 3, 4)
    torch.testing.assert_close(
        ood.subspace_residual(a, inside, q), torch.zeros(3, dtype=torch.float64)
    )
    x = torch.randn(3, 1, 3, 4, dtype=torch.float64, generator=gen)
    d = (x - a).flatten(1)
    proj = torch.stack([q[i] @ torch.linalg.lstsq(q[i], d[i]).solution for i in range(3)])
    torch.testing.assert_close(ood.subspace_residual(a, x, q), (d - proj).norm(dim=1))


def test_local_pca_basis_recovers_a_plane():
    gen = torch.Generator().manual_seed(3)
    basis = torch.linalg.qr(torch.randn(20, 2, generator=gen, dtype=torch.float64))[0]
    bank = (torch.randn(50, 2, generator=gen, dtype=torch.float64) @ basis.T).view(50, 1, 4, 5)
    anchors = bank[:3]  # in the bank: the anchor itself is excluded
    q = ood.local_pca_basis(anchors, bank, neighbours=10, k=2)
    assert q.shape == (3, 20, 2)
    for i in range(3):  # same plane: the projectors agree
        torch.testing.assert_close(q[i] @ q[i].T, basis @ basis.T)


def test_matched_isotropic_noise_has_the_norm_after_clipping():
    gen = torch.Generator().manual_seed(4)
    x = torch.rand(6, 1, 8, 8, generator=gen)
    norms = torch.tensor([0.0, 0.5, 1.0, 2.0, 3.0, 4.0])
    y = ood.matched_isotropic_noise(x, norms, clamp=(0.0, 1.0), generator=gen)
    assert y.min() >= 0 and y.max() <= 1
    torch.testing.assert_close((y - x).flatten(1).norm(dim=1), norms, atol=1e-5, rtol=1e-5)
    # Unreachable: the largest reachable norm, every pixel saturated at the bound its random
    # direction points to (a search stopped short would leave pixels strictly inside (0, 1)).
    far = ood.matched_isotropic_noise(x[:1], torch.tensor([100.0]), clamp=(0.0, 1.0), generator=gen)
    assert bool(((far == 0) | (far == 1)).all())
    assert float((far - x[:1]).norm()) > 4.0  # beyond the largest norm reached above


def test_bad_inputs():
    with pytest.raises(ValueError, match="k = 5"):
        ood.knn_feature_score(torch.randn(2, 3), torch.randn(4, 3), k=5)
    with pytest.raises(ValueError, match="no nn.Linear"):
        ood.penultimate_features(nn.Sequential(nn.Flatten()), torch.randn(2, 3))
    with pytest.raises(ValueError, match="at least 2"):
        ood.delong_covariance([1.0], [2.0, 3.0])


def test_high_frequency_energy_against_a_loop():
    """Against the 3 x 3 mean written out pixel by pixel; mutation: counting the zero padding
    at the border (count_include_pad=True) changes the border pixels and fails."""
    x = torch.rand(2, 1, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    slow = torch.zeros(2, dtype=torch.float64)
    for b in range(2):
        for i in range(5):
            for j in range(6):
                nb = x[b, 0, max(0, i - 1) : i + 2, max(0, j - 1) : j + 2]
                slow[b] += (x[b, 0, i, j] - nb.mean()) ** 2
    torch.testing.assert_close(ood.high_frequency_energy(x), slow)
    assert float(ood.high_frequency_energy(torch.ones(1, 1, 4, 4))[0]) == 0.0
    with pytest.raises(ValueError, match="pixels"):
        ood.high_frequency_energy(torch.rand(1, 1, 4, 4, 2))


def test_the_metrics_share_stats_validator_naming_the_argument():
    """fpr_at_tpr, delong_test and delong_covariance check scores as stats.auroc does."""
    good = [0.1, 0.2, 0.3]
    cases = [
        (lambda bad: ml.ood.fpr_at_tpr(bad, good), "scores_in"),
        (lambda bad: ml.ood.fpr_at_tpr(good, bad), "scores_out"),
        (lambda bad: ml.ood.delong_test(good, good, good, bad), "out_b"),
        (lambda bad: ml.stats.auroc(bad, good), "scores_in"),
    ]
    for call, name in cases:
        for bad, why in (
            ([], "empty"),
            ([[0.1], [0.2]], "one-dimensional"),
            ([0.1, float("nan")], "NaN"),
        ):
            with pytest.raises(ValueError, match=f"{name} .*{why}|{name} is {why}"):
                call(bad)
    with pytest.raises(ValueError, match=r"scores_out must be \(n,\) or \(K, n\)"):
        ml.ood.delong_covariance([good], [[[0.1, 0.2]]])
    with pytest.raises(ValueError, match="scores_in contains NaN"):
        ml.ood.delong_covariance([0.1, float("inf")], good)
