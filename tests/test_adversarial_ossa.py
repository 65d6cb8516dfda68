"""OSSA (Zhao et al., 2019): the top eigenvector of G, signed to raise the loss."""

from __future__ import annotations

import pytest
import torch
from oracles import ref_G, ref_jacobian

from manifoldlib.adversarial import ossa_direction


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_ossa_is_signed_top_eigenvector(name, request):
    model, x = request.getfixturevalue(name), request.getfixturevalue(f"x_{name}")
    y = torch.arange(x.shape[0]) % 4
    v = ossa_direction(model, x, y).flatten(1)
    lam, vec = torch.linalg.eigh(ref_G(model, x))
    top = vec[..., -1]  # (B, n)
    torch.testing.assert_close(v.norm(dim=1), torch.ones(x.shape[0], dtype=x.dtype))
    torch.testing.assert_close((v * top).sum(1).abs(), torch.ones(x.shape[0], dtype=x.dtype))
    grad = ref_jacobian(model, x)[torch.arange(x.shape[0]), y].flatten(1)
    assert bool(((v * grad).sum(1) <= 1e-12).all())  # raises -log p_y to first order
