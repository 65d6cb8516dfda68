"""Brackets and involutivity against slow float64 references (full Hessians, finite differences),
and the toy data sets."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from oracles import ref_jacobian, ref_parameter_jacobian, ref_parameter_log_prob_fn, row_basis
from torch.autograd.functional import hessian, jacobian

import manifoldlib as ml
from manifoldlib import foliation as fo
from manifoldlib.toy import load_toy, make_blobs, make_moons


def smooth_mlp(activation: str = "tanh"):
    torch.manual_seed(0)
    return ml.MLP(6, hidden=(16, 16), num_classes=4, activation=activation).double().eval()


def logp_one(model, k):
    return lambda z: F.log_softmax(model(z.unsqueeze(0)), 1)[0, k]


def ref_brackets(model, x, pairs):
    """[X_i, X_j] = H_j X_i - H_i X_j with full per-sample Hessians (eq. 17)."""
    out = []
    for xi in x:
        grads = {k: jacobian(logp_one(model, k), xi) for k in {k for p in pairs for k in p}}
        hess = {k: hessian(logp_one(model, k), xi) for k in grads}
        out.append(torch.stack([hess[j] @ grads[i] - hess[i] @ grads[j] for i, j in pairs]))
    return torch.stack(out)


def fd_brackets(model, x, pairs, h=1e-5):
    """[X, Y] = DY X - DX Y with central finite differences of the gradient fields."""

    def field(z, k):
        return ml.logprob_jacobian(model, z)[:, k]

    out = []
    for i, j in pairs:
        xi, xj = field(x, i), field(x, j)
        dxj_xi = (field(x + h * xi, j) - field(x - h * xi, j)) / (2 * h)
        dxi_xj = (field(x + h * xj, i) - field(x - h * xj, i)) / (2 * h)
        out.append(dxj_xi - dxi_xj)
    return torch.stack(out, 1)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "sigmoid"])
def test_brackets_match_full_hessians(activation, x_mlp):
    model = smooth_mlp(activation)
    pairs = [(0, 1), (2, 3), (3, 1)]
    ours = fo.logprob_brackets(model, x_mlp, pairs)
    assert ours.shape == (x_mlp.shape[0], 3, 6)
    torch.testing.assert_close(ours, ref_brackets(model, x_mlp, pairs), rtol=1e-9, atol=1e-12)


def test_brackets_match_finite_differences(x_mlp):
    model = smooth_mlp("tanh")
    pairs = [(0, 1), (1, 2)]
    ours = fo.logprob_brackets(model, x_mlp, pairs)
    torch.testing.assert_close(ours, fd_brackets(model, x_mlp, pairs), rtol=1e-5, atol=1e-7)


def test_brackets_are_antisymmetric_and_default_to_all_pairs(mlp, x_mlp):
    b = fo.logprob_brackets(mlp, x_mlp)
    assert b.shape == (x_mlp.shape[0], 6, 6)  # C = 4: six pairs i < j
    swapped = fo.logprob_brackets(mlp, x_mlp, [(1, 0)])
    torch.testing.assert_close(swapped[:, 0], -b[:, 0], rtol=0, atol=1e-14)
    assert fo.logprob_brackets(mlp, x_mlp, [(2, 2)]).abs().max() == 0


def ref_residual(model, x, pairs):
    """Dense reference: projector from the SVD of the per-sample Jacobian of log p."""
    br = ref_brackets(model, x, pairs)
    res = []
    for xi, bi in zip(x, br, strict=True):
        v = row_basis(ref_jacobian(model, xi[None])[0])
        out = bi - (bi @ v.T) @ v
        res.append(out.norm(dim=1) / bi.norm(dim=1))
    return torch.stack(res)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_residual_matches_dense_reference(activation, x_mlp):
    model = smooth_mlp(activation)
    pairs = [(0, 1), (2, 3)]
    ours = fo.involutivity_residual(model, x_mlp, pairs)
    ref = ref_residual(model, x_mlp, pairs)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-12)


def test_relu_is_involutive_and_smooth_is_not(mlp, x_mlp, cnn, x_cnn):
    # Theorem 3.1 / B.2: round-off level for piecewise-linear networks (float64) ...
    assert fo.involutivity_residual(mlp, x_mlp).max() < 1e-10
    assert fo.involutivity_residual(cnn, x_cnn).max() < 1e-10  # conv, max-pool, BatchNorm
    # ... and of order one with smooth activations.
    for act in ("tanh", "gelu", "sigmoid"):
        assert fo.involutivity_residual(smooth_mlp(act), x_mlp).median() > 1e-3


def test_two_classes_are_always_involutive(x_mlp):
    # A line field is always integrable: for C = 2 the bracket is parallel to the field.
    torch.manual_seed(0)
    model = ml.MLP(6, hidden=(8,), num_classes=2, activation="tanh").double().eval()
    assert fo.involutivity_residual(model, x_mlp).max() < 1e-10


def test_bad_pairs_raise(mlp, x_mlp):
    with pytest.raises(ValueError, match="pairs"):
        fo.logprob_brackets(mlp, x_mlp, [(0, 4)])
    with pytest.raises(ValueError, match="pairs"):
        fo.logprob_brackets(mlp, x_mlp, [(0, 1, 2)])
    with pytest.raises(ValueError, match="pairs"):
        fo.involutivity_residual(mlp, x_mlp, [])
    with pytest.raises(TypeError, match="x"):
        fo.logprob_brackets(mlp, x_mlp.float())


# --- parameter space -------------------------------------------------------------------------


@pytest.fixture
def tiny():
    torch.manual_seed(3)
    model = ml.MLP(2, hidden=(4,), num_classes=3).double().eval()
    x = torch.randn(3, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    return model, x


def test_parameter_fields_match_reference(tiny):
    model, x = tiny
    ref = ref_parameter_jacobian(model, x)  # (B, C, d), one sample and class at a time
    fn, w0 = ref_parameter_log_prob_fn(model, x)
    torch.testing.assert_close(jacobian(fn, w0), ref)  # the two oracles agree
    ours = ml.foliation.parameter_gradient_fields(model, x)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    d = sum(p.numel() for p in model.parameters())
    assert ours.shape == (3, 3, d)


def test_parameter_brackets_match_full_hessians(tiny):
    model, x = tiny
    fn, w0 = ref_parameter_log_prob_fn(model, x)
    pairs = [((0, 0), (1, 2)), ((2, 1), (2, 0))]
    ours, listed = ml.foliation.parameter_brackets(model, x, pairs)
    assert listed == pairs
    ref = []
    for (a, i), (b, j) in pairs:
        ga = jacobian(lambda w, a=a, i=i: fn(w)[a, i], w0)
        gb = jacobian(lambda w, b=b, j=j: fn(w)[b, j], w0)
        ha = hessian(lambda w, a=a, i=i: fn(w)[a, i], w0)
        hb = hessian(lambda w, b=b, j=j: fn(w)[b, j], w0)
        ref.append(hb @ ga - ha @ gb)
    torch.testing.assert_close(ours, torch.stack(ref), rtol=1e-9, atol=1e-12)


def test_parameter_distribution_is_not_involutive(tiny):
    model, x = tiny
    res, rank = ml.foliation.parameter_involutivity_residual(model, x)
    assert rank == x.shape[0] * (3 - 1)  # B (C - 1) < d = 27
    assert res.shape == (36,)  # 9 fields, 36 pairs
    assert res.nanmedian() > 1e-3


def test_parameter_pairs_validated(tiny):
    model, x = tiny
    with pytest.raises(ValueError, match="pairs"):
        ml.foliation.parameter_brackets(model, x, [((0, 0), (3, 0))])
    with pytest.raises(ValueError, match="pairs"):
        ml.foliation.parameter_brackets(model, x, [((0, 0),)])


# --- toy data --------------------------------------------------------------------------------


def test_toy_data_are_deterministic_and_balanced():
    a, b = load_toy("moons"), load_toy("moons")
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, load_toy("moons", seed=1).train_x)
    for name, (n, c) in ml.toy.TOY_DATASETS.items():
        d = load_toy(name, n_train_per_class=20, n_test_per_class=5)
        assert d.train_x.shape == (20 * c, n) and d.test_x.shape == (5 * c, n)
        assert torch.bincount(d.train_y).tolist() == [20] * c
        assert torch.bincount(d.test_y).tolist() == [5] * c
        assert d.train_x.dtype == torch.float32 and d.input_shape == (n,)


def test_toy_generators_validate():
    with pytest.raises(ValueError, match="name"):
        load_toy("spirals")
    with pytest.raises(ValueError, match="n_per_class"):
        make_moons(0)
    with pytest.raises(ValueError, match="centers"):
        make_blobs([[0.0, 1.0]], 5)
    x, y = make_blobs([[0.0, 0.0], [5.0, 5.0]], 200, std=0.1)
    assert (x[y == 1].mean(0) - torch.tensor([5.0, 5.0])).abs().max() < 0.05


def test_toy_data_train_through_the_cache():
    cfg = ml.TrainConfig(
        arch="mlp",
        arch_kwargs=(("in_features", 2), ("hidden", (8,)), ("num_classes", 2)),
        dataset="toy",
        source="moons",
        train_per_class=50,
        epochs=2,
        batch_size=20,
        lr=0.1,
        threads=1,
    )
    first = ml.cached_train(cfg, progress=False)
    again = ml.cached_train(cfg, progress=False)
    w1 = torch.cat([p.flatten() for p in first.model.parameters()])
    w2 = torch.cat([p.flatten() for p in again.model.parameters()])
    assert torch.equal(w1, w2)
    assert len(first.history["epoch_test_accuracy"]) == 2
    with pytest.raises(ValueError, match="dataset"):
        ml.TrainConfig(dataset="spirals")
