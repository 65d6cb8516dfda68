"""The README's promise: C - 1 backward passes per Jacobian for a whole batch.

D_x, G's factor and every projection on D_x or ker G need only the differences of the score
gradients, whose ``C - 1`` orthonormal combinations ``H^T S`` are one backward pass each
(``_jacobian.difference_jacobian``). A counting layer in front of the model records every
forward pass that builds a graph and every backward pass through it; each function below must
take exactly ``C - 1`` backward passes per such forward pass, however many Jacobians it needs.

Mutation that fails it: any of these functions going back to the full score Jacobian
(``_jacobian.jacobian_of_scores``, ``C`` passes), e.g. ``tangent_basis`` or ``log_trace`` as
they were. ``score_jacobian``, which returns all ``C`` rows, is the positive control: the
counter sees ``C`` there, so it can tell the two apart.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

import manifoldlib as ml
from manifoldlib import adversarial, ood, riemannian


class _Count(torch.autograd.Function):
    """Identity whose backward pass increments a counter."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, counter: dict) -> torch.Tensor:
        ctx.counter = counter
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        ctx.counter["backward"] += 1
        return grad, None


class Counting(nn.Module):
    """``model`` behind a layer counting graph-building forward passes and backward passes."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.counter = {"forward": 0, "backward": 0}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            self.counter["forward"] += 1
            x = _Count.apply(x, self.counter)
        return self.model(x)


def _calls(x: torch.Tensor, c: int) -> dict[str, Callable[[nn.Module], object]]:
    b = x.shape[0]
    g = torch.Generator().manual_seed(5)
    v = torch.randn(x.shape, dtype=x.dtype, generator=g)
    w = torch.randn(x.shape, dtype=x.dtype, generator=g)
    y = torch.arange(b) % c

    def geodesic(m: nn.Module) -> object:
        # A target near p(.|x): every lift arrives together, so no batch shrinks to one
        # input (whose vectorised backward passes the counter cannot count one by one).
        logp = ml.log_probabilities(m, x)
        noise = torch.randn(b, c, dtype=x.dtype, generator=torch.Generator().manual_seed(6))
        q = torch.softmax(logp + 0.05 * noise, 1)
        geo = riemannian.leaf_geodesic(m, x, q, steps=3)
        assert geo.stop_reasons == ["arrived"] * b, geo.stop_reasons
        return geo

    return {
        "tangent_basis": lambda m: ml.tangent_basis(m, x),
        "tangent_projection": lambda m: ml.tangent_projection(m, x, v),
        "kernel_projection": lambda m: ml.kernel_projection(m, x, v),
        "local_data_lowrank": lambda m: ml.local_data_lowrank(m, x),
        "mean_trace": lambda m: ml.mean_trace(m, x, chunk=3),
        "leaf_split": lambda m: adversarial.leaf_split(m, x, v, w),
        "ossa_direction": lambda m: adversarial.ossa_direction(m, x, y),
        "log_trace": lambda m: ood.log_trace(m, x, chunk=3),
        "tangent_residual": lambda m: ood.tangent_residual(m, x, x + v, chunk=3),
        "off_leaf_fraction": lambda m: ml.off_leaf_fraction(m, x, v, chunk=3),
        "horizontal_path": lambda m: ml.horizontal_path(m, x, x + 10 * v, max_steps=4),
        "across_leaves_path": lambda m: ml.across_leaves_path(m, x, v, steps=4),
        "leaf_geodesic": geodesic,
    }


NAMES = list(_calls(torch.zeros(2, 6), 4))


@pytest.mark.parametrize("name", NAMES)
def test_c_minus_one_backward_passes(name, mlp, x_mlp):
    """Every forward pass with a graph is followed by exactly C - 1 backward passes."""
    model = Counting(mlp).eval()
    # B = 3 and chunks of 3: the batched route throughout (one input takes vectorised chunks
    # of cotangents, one backward call for several passes).
    x = x_mlp[:3]
    _calls(x, 4)[name](model)
    n = model.counter
    assert n["forward"] >= 1, f"{name} built no graph through the model"
    assert n["backward"] == 3 * n["forward"], (name, n)  # C - 1 = 3 per Jacobian


def test_counter_sees_the_full_jacobian(mlp, x_mlp):
    """Positive control: ``score_jacobian`` returns all C rows, C backward passes."""
    model = Counting(mlp).eval()
    ml.score_jacobian(model, x_mlp[:3])
    assert model.counter == {"forward": 1, "backward": 4}
