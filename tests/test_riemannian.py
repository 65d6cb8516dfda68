"""The leaf as a Riemannian manifold: G-lengths, Fisher-Rao distances, the sphere embedding,
great circles and their lifts, against dense float64 references (``tests/oracles.py``)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from oracles import (
    ref_activation_pattern,
    ref_G,
    ref_metric_quadratic,
    ref_tangent_projector,
)

import manifoldlib as ml
from manifoldlib import _jacobian as _jac
from manifoldlib.riemannian import great_circle, leaf_geodesic, sphere_embedding


@pytest.mark.parametrize("rule", ["left", "right", "mean"])
def test_metric_lengths_match_dense_G(mlp, x_mlp, rule):
    pts = ml.linear_interpolation(x_mlp[:3], x_mlp[3:6], 5)  # (5, 3, 6)
    got = ml.metric_lengths(mlp, pts, rule=rule, chunk=4)
    delta = pts[1:] - pts[:-1]

    def ref_at(base):
        out = torch.empty(4, 3, dtype=torch.float64)
        for t in range(4):
            G = ref_G(mlp, base[t])
            out[t] = torch.einsum("bn,bnm,bm->b", delta[t], G, delta[t]).clamp_min(0).sqrt()
        return out

    ref = {"left": lambda: ref_at(pts[:-1]), "right": lambda: ref_at(pts[1:])}
    ref["mean"] = lambda: 0.5 * (ref_at(pts[:-1]) + ref_at(pts[1:]))
    torch.testing.assert_close(got, ref[rule]())
    torch.testing.assert_close(ml.riemannian.euclidean_lengths(pts), delta.norm(dim=2))


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_metric_quadratic_matches_the_dense_pull_back(name, request):
    """The one ``jvp`` behind every G-length against ``v^T J_p^T diag(1/p) J_p v``.

    Fails if the centring ``- p . (S v)`` is dropped (then it is ``sum_i p_i (S v)_i^2``, off
    by ``(p . S v)^2``), if the weights ``p_i`` become ``1 / p_i``, or if the weighted sum is
    squared instead of the terms (measured: each mutation fails both fixtures).
    """
    model, x = request.getfixturevalue(name), request.getfixturevalue(f"x_{name}")
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=x.dtype)
    got = _jac.metric_quadratic(model, x, v)
    ref = ref_metric_quadratic(model, x, v)
    assert got.dtype == torch.float64 and got.shape == (x.shape[0],)
    assert bool((ref > 1e-6).all())  # the fixture's forms are not trivially zero
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=0)
    # A direction in ker G (v minus its projection on D_x) has length zero.
    proj = ref_tangent_projector(model, x)  # (B, n, n)
    w = v.flatten(1) - torch.einsum("bnm,bm->bn", proj, v.flatten(1))
    across = _jac.metric_quadratic(model, x, w.view_as(x))
    assert float(across.abs().max()) < 1e-12 * float(ref.max())


def test_fisher_rao_distance_known_values():
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.2, 0.8]], dtype=torch.float64)
    q = torch.tensor([[0.0, 1.0], [0.5, 0.5], [0.8, 0.2]], dtype=torch.float64)
    d = ml.fisher_rao_distance(p, q)
    expected = [math.pi, 0.0, 2 * math.acos(2 * math.sqrt(0.16))]
    torch.testing.assert_close(d, torch.tensor(expected, dtype=torch.float64), atol=1e-7, rtol=0)


def test_g_length_is_the_fisher_rao_length_of_the_predictions(mlp, x_mlp):
    """G is the pull-back of the Fisher metric: fine polygons give the same length."""
    pts = ml.linear_interpolation(x_mlp[:2], x_mlp[2:4], 2001)
    g_len = ml.metric_lengths(mlp, pts).sum(0)
    probs = F.softmax(mlp(pts.reshape(-1, 6)), 1).reshape(2001, 2, -1).detach()
    fr_len = ml.riemannian.prediction_path_length(probs)
    torch.testing.assert_close(g_len, fr_len, rtol=2e-3, atol=0)
    # and both are at least the distance between the endpoints' predictions
    assert bool((fr_len >= ml.fisher_rao_distance(probs[0], probs[-1]) - 1e-9).all())


def test_bad_input_names_the_argument(mlp, x_mlp):
    with pytest.raises(ValueError, match="points"):
        ml.metric_lengths(mlp, x_mlp.unsqueeze(0))
    with pytest.raises(ValueError, match="rule"):
        ml.metric_lengths(mlp, torch.stack([x_mlp, x_mlp]), rule="mid")
    with pytest.raises(ValueError, match="q"):
        ml.fisher_rao_distance(torch.ones(2, 3), torch.ones(2, 4))


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
