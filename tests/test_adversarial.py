"""FGSM direction, leaf split and prediction change against float64 references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from oracles import ref_G, ref_jacobian, ref_tangent_projector

import manifoldlib as ml


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_fgsm_direction_is_minus_sign_of_grad_log_p_y(name, request):
    model, x = request.getfixturevalue(name), request.getfixturevalue(f"x_{name}")
    y = torch.arange(x.shape[0]) % 4
    d = ml.adversarial.fgsm_direction(model, x, y)
    ref = -ref_jacobian(model, x)[torch.arange(x.shape[0]), y].sign()
    assert torch.equal(d, ref)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_leaf_split_matches_dense_projector(name, request):
    model, x = request.getfixturevalue(name), request.getfixturevalue(f"x_{name}")
    g = torch.Generator().manual_seed(5)
    v = torch.randn(x.shape, dtype=x.dtype, generator=g)
    w = torch.randn(x.shape, dtype=x.dtype, generator=g)
    sv, sw = ml.adversarial.leaf_split(model, x, v, w)
    proj = ref_tangent_projector(model, x)
    for s, u in ((sv, v), (sw, w)):
        t = (proj @ u.flatten(1).unsqueeze(2)).reshape(u.shape)
        torch.testing.assert_close(s.tangent, t)
        torch.testing.assert_close(s.tangent + s.kernel, u)
        share = t.flatten(1).pow(2).sum(1) / u.flatten(1).pow(2).sum(1)
        torch.testing.assert_close(s.tangent_share(), share)
        torch.testing.assert_close(s.kernel_share(), 1 - share)
        cos = torch.cos(torch.deg2rad(s.angle_degrees()))
        torch.testing.assert_close(cos, share.sqrt())


def test_prediction_change_is_kl_and_half_quadratic_for_small_steps(mlp, x_mlp):
    g = torch.Generator().manual_seed(6)
    delta = torch.randn(x_mlp.shape, dtype=x_mlp.dtype, generator=g)
    kl, flipped = ml.adversarial.prediction_change(mlp, x_mlp, delta)
    p = F.softmax(mlp(x_mlp), 1)
    q = F.softmax(mlp(x_mlp + delta), 1)
    torch.testing.assert_close(kl, (q * (q.log() - p.log())).sum(1).detach())
    assert torch.equal(flipped, q.argmax(1) != p.argmax(1))
    # Eq. (8), with the 1/2 of a second-order expansion of KL.
    small = 1e-4 * delta
    kl, _ = ml.adversarial.prediction_change(mlp, x_mlp, small)
    quad = torch.einsum("bn,bnm,bm->b", small, ref_G(mlp, x_mlp), small)
    torch.testing.assert_close(kl, 0.5 * quad, rtol=1e-3, atol=1e-15)


def test_bad_input_names_the_argument(mlp, x_mlp):
    with pytest.raises(TypeError, match="y"):
        ml.adversarial.fgsm_direction(mlp, x_mlp, torch.zeros(x_mlp.shape[0]))
    with pytest.raises(ValueError, match="y"):
        ml.adversarial.fgsm_direction(mlp, x_mlp, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="vectors"):
        ml.adversarial.leaf_split(mlp, x_mlp, torch.zeros(2, 6, dtype=torch.float64))
    with pytest.raises(ValueError, match="delta"):
        ml.adversarial.prediction_change(mlp, x_mlp, torch.full_like(x_mlp, math.nan))
