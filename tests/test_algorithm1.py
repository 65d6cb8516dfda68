"""Algorithm 1's variants (manifoldlib.algorithm1) against float64 references."""

from __future__ import annotations

import pytest
import torch
from oracles import ref_tangent_projector
from torch import nn

from manifoldlib.algorithm1 import (
    PROJECTIONS,
    algorithm1_paths,
    logprob_columns,
    project,
    step_lengths,
)
from manifoldlib.paths import StallDetector


def _problem(
    seed: int, b: int = 3, c: int = 10, n: int = 64, dtype=torch.float64, confident: bool = True
):
    """A score Jacobian, log-probabilities (one class nearly certain) and a vector."""
    g = torch.Generator().manual_seed(seed)
    jac = torch.randn(b, c, 1, 8, n // 8, generator=g, dtype=dtype)
    scores = torch.randn(b, c, generator=g, dtype=dtype)
    scores[:, 0] += (
        8.0 if confident else 0.0
    )  # a confident prediction, as at the points where paths stall
    logp = torch.log_softmax(scores, dim=1)
    v = torch.randn(b, 1, 8, n // 8, generator=g, dtype=dtype)
    return jac, logp, v


def _exact_reference(jac: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Projection on D_x = span{grad s_i - grad s_j} with a float64 pseudo-inverse."""
    b, c = jac.shape[:2]
    s = jac.reshape(b, c, -1).double()
    rows = s[:, 1:] - s[:, :1]  # C - 1 independent differences span D_x
    pinv = torch.linalg.pinv(rows)
    return (pinv @ (rows @ v.reshape(b, -1, 1).double())).reshape(v.shape)


def _off_share(jac, v, w):
    off = w - _exact_reference(jac, w)
    return (off.flatten(1).norm(dim=1) / w.flatten(1).norm(dim=1)).max().item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_exact_gelsy_dropcol_agree_with_the_float64_reference(seed):
    # No class near certainty: the round-off of the dependent column stays below gelsy's
    # rcond = eps * max(n, C). (At p_top = 1 - 3e-4 the cancellation in grad log p_top lifts
    # it above rcond even in float64, and gelsy leaks too: measured 7.6% here.)
    jac, logp, v = _problem(seed, confident=False)
    ref = _exact_reference(jac, v)
    for method in ("exact", "gelsy", "dropcol"):
        out = project(jac, logp, v, method)
        err = ((out - ref).flatten(1).norm(dim=1) / ref.flatten(1).norm(dim=1)).max().item()
        assert err < 1e-9, (method, err)


@pytest.mark.parametrize("method", ["exact", "gelsy", "dropcol", "rowspace"])
def test_projections_are_idempotent(method):
    jac, logp, v = _problem(3, confident=False)
    once = project(jac, logp, v, method)
    twice = project(jac, logp, once, method)
    assert torch.allclose(once, twice, atol=1e-10 * once.abs().max().item())


def test_rowspace_contains_d_x_and_one_more_direction():
    jac, logp, v = _problem(4)
    exact = project(jac, logp, v, "exact")
    row = project(jac, logp, v, "rowspace")
    # D_x is inside the row space: projecting the row-space result on D_x gives the exact one
    assert torch.allclose(project(jac, logp, row, "exact"), exact, atol=1e-10)
    b, c = jac.shape[:2]
    rank = torch.linalg.matrix_rank(jac.reshape(b, c, -1))
    assert rank.tolist() == [c] * b


def test_the_paper_columns_are_dependent_and_normalised():
    jac, logp, _ = _problem(5)
    a = logprob_columns(jac, logp)  # (B, n, C)
    assert torch.allclose(a.norm(dim=1), torch.ones(a.shape[0], a.shape[2], dtype=a.dtype))
    assert torch.linalg.matrix_rank(a).tolist() == [jac.shape[1] - 1] * jac.shape[0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gels_leaks_outside_d_x_on_dependent_columns(dtype):
    # Near a stall point d - x is almost orthogonal to D_x: the leak then dominates the step.
    jac, logp, v = _problem(6, dtype=dtype)
    v = v - _exact_reference(jac, v).to(dtype) + 1e-3 * _exact_reference(jac, v).to(dtype)
    gels = project(jac, logp, v, "gels")
    drop = project(jac, logp, v, "dropcol")
    leak, clean = _off_share(jac, v, gels), _off_share(jac, v, drop)
    tol = 1e-3 if dtype == torch.float32 else 1e-8
    assert clean < tol
    assert leak > 0.5, leak


def test_step_lengths():
    vnorm = torch.tensor([0.05, 0.3])
    assert step_lengths(vnorm, 0.1, "fixed").tolist() == pytest.approx([0.1, 0.1])
    assert step_lengths(vnorm, 0.1, "shortened").tolist() == pytest.approx([0.05, 0.1])
    assert step_lengths(vnorm, 0.1, ["shortened", "fixed"]).tolist() == pytest.approx([0.05, 0.1])
    with pytest.raises(ValueError):
        step_lengths(vnorm, 0.1, "long")


def test_stall_detector_reports_the_step_of_the_last_minimum():
    det = StallDetector(2, window=3)
    seq = [[5.0, 5.0], [4.0, 4.0], [3.9, 4.5], [3.95, 3.0], [3.99, 2.0], [3.98, 1.0]]
    stalled = [det.update(torch.arange(2), torch.tensor(d), t).tolist() for t, d in enumerate(seq)]
    assert stalled[-1] == [True, False]
    assert det.best_step.tolist() == [2, 5]


def test_unknown_projection_is_refused():
    jac, logp, v = _problem(7)
    with pytest.raises(ValueError, match="method"):
        project(jac, logp, v, "svd")
    assert set(PROJECTIONS) == {"exact", "gels", "gelsy", "dropcol", "rowspace"}


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).double()


def test_paths_attribute_the_fall_and_exact_steps_stay_in_d_x():
    model = _mlp()
    g = torch.Generator().manual_seed(1)
    src = torch.rand(4, 1, 4, 4, generator=g, dtype=torch.float64)
    tgt = torch.rand(4, 1, 4, 4, generator=g, dtype=torch.float64)
    res = algorithm1_paths(
        model,
        src,
        tgt,
        projection=["exact", "gels", "exact", "gelsy"],
        rule=["fixed", "fixed", "shortened", "fixed"],
        clamp_on=[True, False, False, True],
        clamp=(0.0, 1.0),
        step_size=0.05,
        max_steps=40,
        threshold=0.05,
        stall_window=10,
    )
    # The three parts add up to the whole fall by construction (a telescoping sum); what can
    # fail is each part, checked below after one step against the dense float64 projector.
    assert res.fall_off[[0, 2, 3]].abs().max() < 1e-9  # exact and gelsy steps lie in D_x
    assert res.fall_clamp[[1, 2]].abs().max() == 0  # no clamp, no clamp part
    assert set(res.stop_reasons) <= {"reached", "stalled", "max_steps"}
    assert bool((res.min_distance <= res.initial_distance).all())
    assert float(res.final[[0, 3]].min()) >= 0 and float(res.final[[0, 3]].max()) <= 1
    assert float(res.path_length[1]) == pytest.approx(int(res.steps_taken[1]) * 0.05, rel=1e-6)
    assert bool((res.path_length[[0, 3]] <= res.steps_taken[[0, 3]] * 0.05 * (1 + 1e-5)).all())


def test_rtol_reaches_the_exact_projection():
    # rtol decides the rank of D_x: near 1 it keeps only the largest direction of the score
    # Jacobian's row space, so the exact projection (and the path) changes; None is the default.
    torch.manual_seed(0)
    from manifoldlib import MLP, score_jacobian

    model = MLP(6, hidden=(8,), num_classes=4).double().eval()
    x = torch.randn(3, 6, dtype=torch.float64)
    d = torch.randn(3, 6, dtype=torch.float64)
    jac, logp = score_jacobian(model, x, return_logp=True)
    default = project(jac, logp, d - x, "exact")
    oracle = torch.einsum("bij,bj->bi", ref_tangent_projector(model, x), d - x)
    torch.testing.assert_close(default, oracle)  # the default rtol is the exact projection
    narrow = project(jac, logp, d - x, "exact", rtol=0.999)
    assert (narrow - default).norm() > 1e-3 * default.norm()
    paths = [
        algorithm1_paths(model, x, d, clamp_on=False, max_steps=3, rtol=r).final
        for r in (None, 0.999)
    ]
    assert (paths[0] - paths[1]).norm() > 1e-6


def test_one_step_attribution_against_the_dense_projector():
    """After one step each part of the fall equals its float64 oracle (dense projector P).

    ``s`` is the step before the clamp: ``fall_in = f(x) - f(x + P s)``, ``fall_off = f(x + P s)
    - f(x + s)``, ``fall_clamp = f(x + s) - f(clamp(x + s))`` with ``f(z) = ||d - z||^2``.
    """
    model = _mlp()
    g = torch.Generator().manual_seed(2)
    src = 0.02 * torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64)  # near the bound 0
    tgt = 1.5 * torch.rand(3, 1, 4, 4, generator=g, dtype=torch.float64) - 0.25
    res = algorithm1_paths(
        model,
        src,
        tgt,
        projection=["exact", "gels", "exact"],
        rule="fixed",
        clamp_on=[True, False, False],
        clamp=(0.0, 1.0),
        step_size=0.3,
        max_steps=1,
        threshold=1e-3,
    )
    proj = ref_tangent_projector(model, src)  # (3, 16, 16)
    x, d = src.flatten(1), tgt.flatten(1)
    exact = torch.einsum("bij,bj->bi", proj, d - x)
    s = 0.3 * exact / exact.norm(dim=1, keepdim=True)  # the exact, fixed-length step
    s[1] = res.final[1].flatten() - x[1]  # gels: no clamp, so the step is what moved
    ps = torch.einsum("bij,bj->bi", proj, s)
    moved = x + s
    new = moved.clamp(0.0, 1.0)
    new[1:] = moved[1:]
    torch.testing.assert_close(res.final.flatten(1), new)

    def f(z):
        return (d - z).pow(2).sum(1)

    torch.testing.assert_close(res.fall_in, f(x) - f(x + ps))
    torch.testing.assert_close(res.fall_off, f(x + ps) - f(moved))
    torch.testing.assert_close(res.fall_clamp, f(moved) - f(new))
    assert float(res.fall_clamp[0]) > 1e-3  # the clamp did bite on the first path
    assert float(res.fall_off[1].abs()) > 1e-9  # and gels left D_x a little
