"""The reference (paper-style) projection against manifoldlib's exact one."""

from __future__ import annotations

import pytest
import torch

import manifoldlib as ml
from manifoldlib.reference import reference_projection


def test_reference_projection_is_not_the_orthogonal_projection_on_D_x(mlp, x_mlp):
    """Least squares on all C gradients, which are linearly dependent (eq. 4): in float64
    too the result differs from the exact projection and has a component outside D_x."""
    v = torch.randn(x_mlp.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    exact = ml.tangent_projection(mlp, x_mlp, v)
    ref = torch.stack([reference_projection(mlp, x_mlp[i], v[i]) for i in range(len(v))])
    assert ref.shape == v.shape and torch.isfinite(ref).all()
    frac = ml.off_leaf_fraction(mlp, x_mlp, ref)
    assert float(frac.max()) > 0.1
    assert float((ref - exact).norm(dim=1).max()) > 0.1 * float(v.norm(dim=1).min())


def test_reference_projection_on_C_minus_1_independent_gradients_is_exact(mlp, x_mlp):
    """Sanity check of the reference's least squares itself: with the dependent column
    removed, the same solver gives the exact projection."""
    v = torch.randn(x_mlp.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    exact = ml.tangent_projection(mlp, x_mlp, v)
    jac = ml.logprob_jacobian(mlp, x_mlp)  # (B, C, n)
    for i in range(len(v)):
        a = torch.nn.functional.normalize(jac[i, :-1].T, dim=0)
        coeff = torch.linalg.lstsq(a, v[i].unsqueeze(1), driver="gels").solution
        torch.testing.assert_close((a @ coeff).squeeze(1), exact[i], rtol=1e-8, atol=1e-10)


def test_reference_projection_checks_its_arguments(mlp, x_mlp):
    with pytest.raises(ValueError, match="same shape"):
        reference_projection(mlp, x_mlp[0], x_mlp[0, :3])
    with pytest.raises(TypeError):
        reference_projection(mlp, x_mlp[0], [1.0])
