"""Geometry against slow, obvious float64 references (per-sample autograd, dense matrices)."""

from __future__ import annotations

import pytest
import torch
from oracles import ref_fisher, ref_G, ref_jacobian, ref_tangent_projector
from torch import nn

import manifoldlib as ml

MODELS = ["mlp", "cnn"]


@pytest.fixture(params=MODELS)
def model_x(request):
    model = request.getfixturevalue(request.param)
    x = request.getfixturevalue(f"x_{request.param}")
    return model, x


def test_jacobian_matches_per_sample_reference(model_x):
    model, x = model_x
    ours = ml.logprob_jacobian(model, x)
    assert ours.shape == (x.shape[0], 4 if x.dim() == 2 else 5, *x.shape[1:])
    torch.testing.assert_close(ours, ref_jacobian(model, x), rtol=1e-10, atol=1e-12)


def test_jacobian_single_sample_uses_same_values(model_x):
    model, x = model_x
    torch.testing.assert_close(
        ml.logprob_jacobian(model, x[:1]), ref_jacobian(model, x[:1]), rtol=1e-10, atol=1e-12
    )


def test_model_ending_in_logsoftmax_gives_the_same(mlp, x_mlp):
    wrapped = nn.Sequential(mlp, nn.LogSoftmax(dim=1))
    torch.testing.assert_close(ml.logprob_jacobian(wrapped, x_mlp), ml.logprob_jacobian(mlp, x_mlp))


def test_identity_4_probability_weighted_gradients_sum_to_zero(model_x):
    model, x = model_x
    jac, logp = ml.logprob_jacobian(model, x, return_logp=True)
    s = (logp.exp().unsqueeze(-1) * jac.flatten(2)).sum(1)
    assert s.abs().max() < 1e-12


def test_dense_G_matches_reference_and_prop_2_1(model_x):
    model, x = model_x
    G = ml.local_data_matrix(model, x)
    torch.testing.assert_close(G, ref_G(model, x), rtol=1e-10, atol=1e-12)
    # Symmetric up to round-off: BLAS need not give (A^T A)_ij and (A^T A)_ji bit for bit.
    torch.testing.assert_close(G, G.transpose(1, 2), rtol=1e-12, atol=0)
    eig = torch.linalg.eigvalsh(G)
    assert eig.min() > -1e-12 * eig.max()  # PSD
    num_classes = ml.log_probabilities(model, x).shape[1]
    ranks = torch.linalg.matrix_rank(G, rtol=1e-9)
    assert (ranks <= num_classes - 1).all()
    assert (ranks == num_classes - 1).all()  # generic points: exactly C - 1


def test_kernel_of_G_is_orthogonal_complement_of_gradients(model_x):
    model, x = model_x
    G = ml.local_data_matrix(model, x)
    P = ref_tangent_projector(model, x)
    u = torch.randn(x.shape[0], G.shape[1], 1, dtype=x.dtype)
    k = u - P @ u  # orthogonal to every gradient
    assert (G @ k).abs().max() < 1e-12 * G.abs().max()
    t = P @ u  # in the span: not in the kernel
    assert ((G @ t).flatten(1).norm(dim=1) > 1e-6 * t.flatten(1).norm(dim=1)).all()


def test_lowrank_spectrum_trace_rank_and_products_match_dense(model_x):
    model, x = model_x
    low = ml.local_data_lowrank(model, x)
    G = ref_G(model, x)
    c = low.factor.shape[1] + 1  # the factor has C - 1 rows: Prop. 2.1.3 by construction
    dense_eig = torch.linalg.eigvalsh(G).flip(-1)[:, : c - 1].clamp_min(0)
    lam, vec = low.eigh()
    torch.testing.assert_close(lam, dense_eig, rtol=1e-8, atol=1e-14)
    torch.testing.assert_close(low.eigenvalues(), dense_eig, rtol=1e-8, atol=1e-14)
    torch.testing.assert_close(low.trace(), torch.diagonal(G, dim1=1, dim2=2).sum(1))
    assert (low.rank() == c - 1).all()
    # eigenvectors: orthonormal, G v = lam v
    v = vec.flatten(2)
    eye = torch.eye(c - 1, dtype=x.dtype).expand(x.shape[0], -1, -1)
    torch.testing.assert_close(v @ v.transpose(1, 2), eye, rtol=0, atol=1e-8)
    torch.testing.assert_close(
        (G @ v.transpose(1, 2)), v.transpose(1, 2) * lam[:, None, : c - 1], rtol=1e-7, atol=1e-12
    )
    assert torch.linalg.eigvalsh(G).flip(-1)[:, c - 1 :].abs().max() < 1e-14  # the rest is 0
    w = torch.randn_like(x)
    torch.testing.assert_close(
        low.matvec(w).flatten(1), (G @ w.flatten(1).unsqueeze(-1)).squeeze(-1)
    )
    torch.testing.assert_close(
        low.quadratic(w), torch.einsum("bn,bnm,bm->b", w.flatten(1), G, w.flatten(1))
    )
    torch.testing.assert_close(low.to_dense(), G)


def test_chunked_jacobian_factor_and_gram_match_the_unchunked_reference(model_x, monkeypatch):
    """The memory-saving chunks (single-input class chunks, factor and Gram column chunks)."""
    from manifoldlib import _jacobian

    model, x = model_x
    G = ref_G(model, x)
    ref_jac = ref_jacobian(model, x)
    monkeypatch.setattr(_jacobian, "JAC_CHUNK", 2)  # C = 4 or 5: several chunks, one partial
    monkeypatch.setattr(_jacobian, "GRAM_CHUNK_ELEMENTS", 7 * x.shape[0])  # a few columns each
    torch.testing.assert_close(
        ml.logprob_jacobian(model, x[:1]), ref_jac[:1], rtol=1e-10, atol=1e-12
    )
    for xs, gs in ((x, G), (x[:1], G[:1])):
        low = ml.local_data_lowrank(model, xs)
        torch.testing.assert_close(low.to_dense(), gs)
        torch.testing.assert_close(low.gram(), low.factor @ low.factor.transpose(1, 2))
        c = low.factor.shape[1]
        torch.testing.assert_close(
            low.eigenvalues(),
            torch.linalg.eigvalsh(gs).flip(-1)[:, :c].clamp_min(0),
            rtol=1e-8,
            atol=1e-14,
        )


def test_gram_is_cached_but_follows_changes_of_the_factor(mlp, x_mlp):
    low = ml.local_data_lowrank(mlp, x_mlp)
    g1 = low.gram()
    assert low.gram() is g1  # computed once: trace/rank/eigenvalues share it
    low.factor.mul_(2.0)  # in place: the version counter changes
    torch.testing.assert_close(low.gram(), 4 * g1)
    low.factor = low.factor[:1].clone()  # replaced
    assert low.gram().shape[0] == 1
    torch.testing.assert_close(low.gram(), 4 * g1[:1])


def test_rank_tolerance_near_degeneracy(mlp, x_mlp):
    """Scaling the scores up (a 'fully trained' net) drives G to 0 and the rank down."""
    scores = mlp(x_mlp).detach().sort(1, descending=True).values
    x = x_mlp[(scores[:, 0] - scores[:, 1]) > 0.05]  # points away from decision boundaries
    assert len(x) >= 3
    sharp = nn.Sequential(mlp, nn.Linear(4, 4).double())
    with torch.no_grad():
        sharp[1].weight.copy_(torch.eye(4, dtype=torch.float64) * 2000.0)
        sharp[1].bias.zero_()
    low = ml.local_data_lowrank(sharp, x)
    assert low.trace().max() < 1e-20  # G -> 0
    # The relative tolerance still sees the tiny eigenvalues unless p underflows to 0 ...
    assert (low.rank() <= 3).all()
    # ... an absolute tolerance counts them as zero.
    assert (low.rank(atol=1e-6) == 0).all()
    # And the default tolerance does not count round-off: the exact zero of Prop. 2.1.3.
    assert (ml.local_data_lowrank(mlp, x_mlp).rank() == 3).all()


def test_rank_default_tolerance_is_safe_in_float32(mlp, x_mlp):
    m32, x32 = mlp.float(), x_mlp.float()
    assert (ml.local_data_lowrank(m32, x32).rank() == 3).all()


def test_dense_G_refused_when_too_large_names_lowrank():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 224 * 224, 10))
    x = torch.zeros(1, 3, 224, 224)
    with pytest.raises(ValueError, match="local_data_lowrank"):
        ml.local_data_matrix(model, x)


def test_fisher_matches_reference_and_prop_2_1(mlp, x_mlp):
    x = x_mlp[:3]
    F_ = ml.geometry.local_fisher_matrix(mlp, x)
    torch.testing.assert_close(F_, ref_fisher(mlp, x), rtol=1e-9, atol=1e-12)
    low = ml.geometry.local_fisher_lowrank(mlp, x)
    assert (low.rank() == 3).all()  # C - 1
    torch.testing.assert_close(low.trace(), torch.diagonal(F_, dim1=1, dim2=2).sum(1))
    torch.testing.assert_close(low.eigenvalues(), torch.linalg.eigvalsh(F_).flip(-1)[:, :3])


def test_fisher_on_cnn_with_batchnorm(cnn, x_cnn):
    low = ml.geometry.local_fisher_lowrank(cnn, x_cnn[:2])
    torch.testing.assert_close(low.to_dense(), ref_fisher(cnn, x_cnn[:2]), rtol=1e-9, atol=1e-12)


def test_mc_trace_is_unbiased_within_its_standard_error(model_x):
    model, x = model_x
    exact = ml.local_data_lowrank(model, x).trace()
    gen = torch.Generator().manual_seed(0)
    est = ml.trace_mc(model, x, samples=1500, generator=gen)
    z = (est.values - exact) / est.stderr
    assert z.abs().max() < 4.5, z
    assert abs(est.mean - float(exact.mean())) < 4.5 * est.mean_stderr


def test_mc_trace_single_sample_has_nan_stderr(mlp, x_mlp):
    est = ml.trace_mc(mlp, x_mlp, samples=1, generator=torch.Generator().manual_seed(0))
    assert torch.isnan(est.stderr).all() and est.values.shape == (7,)


def test_projections_idempotent_orthogonal_and_complementary(model_x):
    model, x = model_x
    v = torch.randn_like(x)
    t = ml.tangent_projection(model, x, v)
    k = ml.kernel_projection(model, x, v)
    torch.testing.assert_close(t + k, v)
    assert (t * k).flatten(1).sum(1).abs().max() < 1e-10
    torch.testing.assert_close(ml.tangent_projection(model, x, t), t, rtol=1e-9, atol=1e-11)
    assert ml.tangent_projection(model, x, k).abs().max() < 1e-10
    P = ref_tangent_projector(model, x)
    torch.testing.assert_close(t.flatten(1), (P @ v.flatten(1).unsqueeze(-1)).squeeze(-1))
    G = ml.local_data_matrix(model, x)
    assert (G @ k.flatten(1).unsqueeze(-1)).abs().max() < 1e-12 * G.abs().max()


def test_tangent_basis_is_orthonormal_and_spans_D_x(model_x):
    model, x = model_x
    basis, ranks = ml.tangent_basis(model, x)
    c = basis.shape[1] + 1
    assert (ranks == c - 1).all()
    b = basis.flatten(2)
    eye = torch.eye(c - 1, dtype=x.dtype).expand(x.shape[0], -1, -1)
    torch.testing.assert_close(b @ b.transpose(1, 2), eye, rtol=0, atol=1e-9)
    torch.testing.assert_close(b.transpose(1, 2) @ b, ref_tangent_projector(model, x))


def test_train_mode_model_is_evaluated_in_eval_mode_and_restored(cnn, x_cnn):
    expected = ml.logprob_jacobian(cnn, x_cnn)
    cnn.train()
    got = ml.logprob_jacobian(cnn, x_cnn)
    assert cnn.training
    torch.testing.assert_close(got, expected)


def test_eval_mode_restores_each_submodule_to_its_own_mode(cnn, x_cnn):
    """A model in training mode with a frozen BatchNorm (eval) comes back exactly so."""
    cnn.train()
    cnn.body[1].eval()  # frozen BatchNorm, as in fine-tuning
    before = {name: m.training for name, m in cnn.named_modules()}
    ml.logprob_jacobian(cnn, x_cnn)
    assert {name: m.training for name, m in cnn.named_modules()} == before
    assert cnn.training and not cnn.body[1].training


def test_geometry_runs_in_float32_and_float64(mlp, x_mlp):
    g64 = ml.local_data_lowrank(mlp, x_mlp).trace()
    g32 = ml.local_data_lowrank(mlp.float(), x_mlp.float()).trace()
    assert g32.dtype == torch.float32
    torch.testing.assert_close(g32.double(), g64, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    ("x", "exc", "match"),
    [
        (torch.zeros(6, dtype=torch.float64), ValueError, "at least 2 dimensions"),
        (torch.zeros(0, 6, dtype=torch.float64), ValueError, "empty batch"),
        (torch.full((2, 6), float("nan"), dtype=torch.float64), ValueError, "NaN"),
        (torch.full((2, 6), float("inf"), dtype=torch.float64), ValueError, "NaN or infinite"),
        (torch.zeros(2, 6, dtype=torch.long), TypeError, "floating-point"),
        (torch.zeros(2, 6, dtype=torch.float32), TypeError, "dtype"),
        ([[0.0] * 6], TypeError, "torch.Tensor"),
    ],
)
def test_bad_x_is_refused_with_a_clear_message(mlp, x, exc, match):
    for fn in (ml.logprob_jacobian, ml.local_data_lowrank, ml.local_data_matrix, ml.trace_mc):
        with pytest.raises(exc, match=match):
            fn(mlp, x)


def test_wrong_input_shape_for_model_raises(mlp):
    """The model's own error is chained under a message naming the shape and a batch's form."""
    with pytest.raises(ValueError, match=r"shape \(2, 5\).*batch") as info:
        ml.logprob_jacobian(mlp, torch.zeros(2, 5, dtype=torch.float64))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_image_without_batch_dimension_is_explained():
    cnn = ml.MnistCNN().eval()
    with pytest.raises(ValueError, match=r"shape \(1, 28, 28\).*x\[None\]"):
        ml.local_data_lowrank(cnn, torch.zeros(1, 28, 28))


def test_model_output_contract_is_checked():
    x = torch.zeros(3, 4)
    with pytest.raises(ValueError, match=r"shape \(B, C\)"):
        ml.logprob_jacobian(nn.Identity(), torch.zeros(3, 2, 2))
    with pytest.raises(ValueError, match="C = 2"):
        ml.logprob_jacobian(nn.Linear(4, 1), x)
    with pytest.raises(TypeError, match="nn.Module"):
        ml.logprob_jacobian(lambda z: z, x)


def test_projection_argument_checks(mlp, x_mlp):
    with pytest.raises(ValueError, match="same shape"):
        ml.tangent_projection(mlp, x_mlp, x_mlp[:3])
    bad = x_mlp.clone()
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="v contains"):
        ml.kernel_projection(mlp, x_mlp, bad)


def test_public_score_jacobian_and_projection_from_it():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 4))
    model = model.double()
    x = torch.randn(3, 6, dtype=torch.float64)
    jac, logp = ml.score_jacobian(model, x, return_logp=True)
    assert jac.shape == (3, 4, 6) and logp.shape == (3, 4)
    for b in range(3):
        ref = torch.autograd.functional.jacobian(lambda z: model(z[None])[0], x[b])
        torch.testing.assert_close(jac[b], ref)
    v = torch.randn(3, 6, dtype=torch.float64)
    torch.testing.assert_close(
        ml.tangent_projection_from_jacobian(jac, v), ml.tangent_projection(model, x, v)
    )
    with pytest.raises(ValueError, match="jac"):
        ml.tangent_projection_from_jacobian(jac, v[:, :5])
