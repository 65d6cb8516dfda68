"""manifoldlib.ood (every OOD score, the controls) against slow, obvious references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from oracles import ref_kernel_residual, ref_trace
from torch import nn

from manifoldlib import ood
from manifoldlib.models import MnistCNN

# ------------------------------------------------------------------ model-based scores


@pytest.fixture(scope="module")
def mnist_cnn():
    torch.manual_seed(0)
    return MnistCNN().double().eval()


def test_penultimate_features_are_the_input_of_the_last_layer(mnist_cnn):
    x = torch.randn(5, 1, 28, 28, dtype=torch.float64)
    feats = ood.penultimate_features(mnist_cnn, x, chunk=2)
    ref = mnist_cnn.classifier[1](mnist_cnn.classifier[0](mnist_cnn.features(x)))
    torch.testing.assert_close(feats, ref)
    assert not mnist_cnn._forward_pre_hooks and not mnist_cnn.classifier[2]._forward_pre_hooks


def test_energy_score(mnist_cnn):
    x = torch.randn(4, 1, 28, 28, dtype=torch.float64)
    logits = mnist_cnn(x).detach()
    torch.testing.assert_close(ood.energy_score(mnist_cnn, x), -torch.logsumexp(logits, 1))
    t = 3.0
    ref = -t * torch.log(torch.exp(logits / t).sum(1))
    torch.testing.assert_close(ood.energy_score(mnist_cnn, x, temperature=t), ref)


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_gradnorm_closed_form_matches_autograd(mnist_cnn, temperature):
    x = torch.randn(3, 1, 28, 28, dtype=torch.float64)
    last = mnist_cnn.classifier[2]
    expected = []
    for xi in x:
        mnist_cnn.zero_grad()
        logp = torch.log_softmax(mnist_cnn(xi[None]) / temperature, dim=1)
        kl = -(logp.mean())  # KL(u || p) up to a constant
        kl.backward()
        expected.append(-last.weight.grad.abs().sum())
    got = ood.gradnorm_score(mnist_cnn, x, temperature=temperature)
    torch.testing.assert_close(got, torch.stack(expected))
    mnist_cnn.zero_grad()


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_tangent_residual_matches_dense_projector(name, request):
    model = request.getfixturevalue(name)
    x = request.getfixturevalue(f"x_{name}")
    a = x.flip(0) * 0.7
    ours = ood.tangent_residual(model, a, x, chunk=2)
    torch.testing.assert_close(ours, ref_kernel_residual(model, a, x), rtol=1e-9, atol=1e-10)


def test_log_trace_and_trace_score(mlp, x_mlp):
    ref = ref_trace(mlp, x_mlp).log()
    torch.testing.assert_close(ood.log_trace(mlp, x_mlp, chunk=3), ref, rtol=1e-10, atol=1e-10)
    reference = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    q1, m, q3 = 1.0, 2.0, 3.0
    expected = (ref - m).abs() / ((q3 - q1) / 1.349)
    torch.testing.assert_close(ood.trace_score(mlp, x_mlp, reference), expected)
    with pytest.raises(ValueError, match="reference"):
        ood.trace_score(mlp, x_mlp, reference[:2])


def test_max_softmax_score(mlp, x_mlp):
    expected = -F.softmax(mlp(x_mlp), 1).max(1).values.detach()
    torch.testing.assert_close(ood.max_softmax_score(mlp, x_mlp, chunk=2), expected)


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
        chunked = ood.knn_feature_score(q, bank, k=k, chunk=3)  # the distance helper's chunks
        torch.testing.assert_close(chunked, ref, atol=1e-5, rtol=1e-5)
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
