"""Geodesics of the leaf: the sphere embedding, great circles, and their lifts."""

from __future__ import annotations

import math

import pytest
import torch
from oracles import ref_activation_pattern, ref_G, ref_tangent_projector

import manifoldlib as ml
from manifoldlib.geodesics import great_circle, leaf_geodesic, sphere_embedding


def test_sphere_embedding_lands_on_radius_two():
    p = torch.softmax(torch.randn(5, 4, generator=torch.Generator().manual_seed(0)), 1)
    u = sphere_embedding(p)
    torch.testing.assert_close(u.norm(dim=1), torch.full((5,), 2.0, dtype=torch.float64))


def test_great_circle_endpoints_speed_and_length():
    g = torch.Generator().manual_seed(1)
    p = torch.softmax(torch.randn(3, 5, generator=g, dtype=torch.float64), 1)
    q = torch.softmax(2 * torch.randn(3, 5, generator=g, dtype=torch.float64), 1)
    t = torch.linspace(0, 1, 201, dtype=torch.float64)
    c = great_circle(p, q, t)
    torch.testing.assert_close(c[0], p)
    torch.testing.assert_close(c[-1], q)
    torch.testing.assert_close(c.sum(-1), torch.ones(201, 3, dtype=torch.float64))
    steps = ml.fisher_rao_distance(c[1:], c[:-1])  # (200, 3): constant speed
    d = ml.fisher_rao_distance(p, q)
    torch.testing.assert_close(steps, (d / 200).expand(200, 3))
    torch.testing.assert_close(steps.sum(0), d)


def test_G_is_pullback_of_fisher_rao(mlp, x_mlp):
    """The library's G is ``(d 2sqrt(p))^T (d 2sqrt(p))``, the pull-back of the sphere's metric.

    The Jacobian of ``x -> 2 sqrt(softmax(model(x)))`` is taken by autograd on that map itself,
    one sample at a time: nothing shared with the log-softmax route of ``ref_G`` or the library.
    """
    pull = []
    for xi in x_mlp:
        emb = torch.autograd.functional.jacobian(
            lambda z: 2 * torch.softmax(mlp(z.unsqueeze(0)), 1)[0].sqrt(), xi
        )  # (C, n)
        pull.append(emb.T @ emb)
    pull = torch.stack(pull)
    torch.testing.assert_close(ml.local_data_matrix(mlp, x_mlp), pull)
    torch.testing.assert_close(ref_G(mlp, x_mlp), pull)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_lift_follows_great_circle_with_length_fr(name, request):
    model, x = request.getfixturevalue(name), request.getfixturevalue(f"x_{name}")
    p = torch.softmax(model(x), 1).detach()
    g = torch.Generator().manual_seed(3)
    q = torch.softmax(torch.log(p) + 0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype), 1)
    geo = leaf_geodesic(model, x, q, steps=200)
    arrived = torch.tensor([r == "arrived" for r in geo.stop_reasons])
    assert bool(arrived.all()), geo.stop_reasons
    torch.testing.assert_close(geo.probabilities[-1][arrived], q[arrived], atol=1e-3, rtol=0)
    fr = ml.fisher_rao_distance(p, q)
    ratio = geo.g_length() / fr
    assert float(ratio.min()) > 0.98  # no curve is shorter than the great circle
    # The recorded lengths are those of ml.metric_lengths on the recorded points.
    torch.testing.assert_close(ml.metric_lengths(model, geo.points), geo.segment_lengths)
    # Without corrections a step is one solve at its base point: it lies in D_x there.
    geo0 = leaf_geodesic(model, x[:1], q[:1], steps=200, corrections=0)
    proj = ref_tangent_projector(model, x[:1])[0]
    d0 = (geo0.points[1, 0] - geo0.points[0, 0]).flatten()
    torch.testing.assert_close(proj @ d0, d0)
    assert float(geo.off_leaf.max()) < 1e-6
    # The recorded G-length of the first step matches the dense G.
    gl = (d0 @ ref_G(model, x[:1])[0] @ d0).sqrt()
    assert math.isclose(float(geo0.segment_lengths[0, 0]), float(gl), rel_tol=1e-6)


def test_lift_inside_one_linear_region_has_the_fisher_rao_length(mlp, x_mlp):
    """Where the whole lift stays in one linear region, its G-length is the FR distance.

    Regions are decided by the oracle's activation patterns (every point of the lift has the
    start's pattern), not by the library's own ``miss``. Small targets (noise 0.005 on the
    log-probabilities) keep 3 of the 7 lifts in their start's region (measured).
    """
    p = torch.softmax(mlp(x_mlp), 1).detach()
    noise = torch.randn(p.shape, generator=torch.Generator().manual_seed(3), dtype=p.dtype)
    q = torch.softmax(torch.log(p) + 0.005 * noise, 1)
    geo = leaf_geodesic(mlp, x_mlp, q, steps=200)
    steps, b = geo.points.shape[:2]
    pattern = ref_activation_pattern(mlp, geo.points.flatten(0, 1)).view(steps, b, -1)
    inside = (pattern == pattern[0]).all(0).all(-1)
    assert int(inside.sum()) >= 2, inside  # the fixture has lifts inside one region
    ratio = geo.g_length() / ml.fisher_rao_distance(p, q)
    assert float((ratio[inside] - 1).abs().max()) < 1e-3
    assert bool((geo.miss.amax(0)[inside] < 1e-6).all())  # and no step missed its point there


def test_lift_reports_clamp_and_rejects_vertex(mlp, x_mlp):
    p = torch.softmax(mlp(x_mlp), 1).detach()
    q = torch.roll(p, 1, dims=1)
    geo = leaf_geodesic(mlp, x_mlp, q, steps=20, clamp=(-0.1, 0.1))
    assert float(geo.box_violation.max()) > 0
    assert float(geo.off_leaf.max()) > 1e-3
    with pytest.raises(ValueError, match="positive"):
        leaf_geodesic(
            mlp, x_mlp, torch.nn.functional.one_hot(torch.zeros(7, dtype=torch.long), 4).double()
        )
