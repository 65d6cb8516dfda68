"""Paths: batched Algorithm 1 and paths across leaves, on small float64 ReLU networks."""

from __future__ import annotations

import pytest
import torch
from oracles import ref_tangent_projector

import manifoldlib as ml


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def test_horizontal_path_decreases_distance_and_steps_lie_in_D_x(mlp):
    src = torch.randn(4, 6, dtype=torch.float64, generator=_gen(10))
    tgt = torch.randn(4, 6, dtype=torch.float64, generator=_gen(11))
    res = ml.horizontal_path(
        mlp, src, tgt, step_size=0.05, max_steps=60, threshold=1e-3, progress=False
    )
    assert res.points.shape == (61, 4, 6)
    assert res.distances.shape == res.probabilities.shape == res.predictions.shape == (61, 4)
    assert res.class_probabilities.shape == (61, 4, 4)
    d = res.distances
    # The distance never increases by more than the second-order term of one step.
    assert (d[1:] - d[:-1]).max() < 0.05**2
    assert (d[-1] < d[0]).all()
    # Each step is the projection of (target - x) on D_x at its start (dense float64 oracle),
    # scaled to length min(step_size, its own length).
    for t in range(0, 60, 7):
        step = res.points[t + 1] - res.points[t]
        p = ref_tangent_projector(mlp, res.points[t])
        proj = torch.einsum("bij,bj->bi", p, tgt - res.points[t])
        moved = step.norm(dim=1) > 0
        assert bool(moved.any())
        expected = proj * (
            proj.norm(dim=1, keepdim=True).clamp(max=0.05) / proj.norm(dim=1, keepdim=True)
        )
        torch.testing.assert_close(step[moved], expected[moved], rtol=1e-7, atol=1e-12)


def test_batched_paths_equal_paths_run_one_at_a_time(cnn, x_cnn):
    tgt = x_cnn.roll(1, 0)
    together = ml.horizontal_path(cnn, x_cnn, tgt, max_steps=25, threshold=0.5, progress=False)
    for i in range(x_cnn.shape[0]):
        alone = ml.horizontal_path(
            cnn, x_cnn[i : i + 1], tgt[i : i + 1], max_steps=25, threshold=0.5, progress=False
        )
        torch.testing.assert_close(together.points[:, i], alone.points[:, 0])
        torch.testing.assert_close(together.distances[:, i], alone.distances[:, 0])


def test_path_reaches_target_in_the_tangent_plane_and_stops(mlp):
    """A target reachable along D_x: the path stops as soon as it is within the threshold."""
    x = torch.randn(1, 6, dtype=torch.float64, generator=_gen(3))
    basis, _ = ml.tangent_basis(mlp, x)
    tgt = x + 0.05 * basis[:, 0]  # close enough to stay in x's linear region: a flat leaf
    res = ml.horizontal_path(
        mlp, x, tgt, step_size=0.05 / 30, max_steps=500, threshold=0.05 / 15, progress=False
    )
    assert bool(res.reached[0]) and res.stop_reasons == ["reached"]
    assert 25 <= int(res.steps_taken[0]) <= 30
    assert float(res.distances[-1, 0]) < 0.05 / 15
    assert res.points.shape[0] == int(res.steps_taken[0]) + 1  # no records after stopping


def test_source_equal_to_target_takes_no_step(mlp, x_mlp):
    res = ml.horizontal_path(mlp, x_mlp, x_mlp.clone(), progress=False)
    assert res.reached.all() and (res.steps_taken == 0).all()
    assert res.points.shape[0] == 1


def test_step_never_overshoots(mlp):
    x = torch.randn(1, 6, dtype=torch.float64, generator=_gen(4))
    basis, _ = ml.tangent_basis(mlp, x)
    tgt = x + 0.05 * basis[:, 0]
    res = ml.horizontal_path(
        mlp, x, tgt, step_size=10.0, max_steps=5, threshold=1e-6, progress=False
    )
    assert float(res.distances[1, 0]) < 0.05 * 0.5


def test_record_every_keeps_every_kth_point_and_the_last(mlp, x_mlp):
    res = ml.horizontal_path(
        mlp, x_mlp, x_mlp.roll(1, 0), max_steps=23, threshold=1e-9, record_every=5, progress=False
    )
    assert res.steps.tolist() == [0, 5, 10, 15, 20, 23]
    assert res.points.shape[0] == 6


def test_clamp_keeps_points_in_range(cnn, x_cnn):
    lo, hi = -1.0, 1.0
    src = x_cnn.clamp(lo, hi)
    res = ml.horizontal_path(cnn, src, src.roll(1, 0), max_steps=30, clamp=(lo, hi), progress=False)
    assert res.points.min() >= lo and res.points.max() <= hi
    with pytest.raises(ValueError, match="outside the clamp range"):
        ml.horizontal_path(cnn, x_cnn * 10, src, clamp=(lo, hi), progress=False)
    with pytest.raises(ValueError, match="low <= high"):
        ml.horizontal_path(cnn, src, src, clamp=(1.0, -1.0), progress=False)


def test_across_leaves_keeps_prediction_and_moves_in_ker_G(mlp):
    x = torch.randn(3, 6, dtype=torch.float64, generator=_gen(5))
    direction = torch.randn(3, 6, dtype=torch.float64, generator=_gen(6))
    res = ml.across_leaves_path(mlp, x, direction, step_size=1e-3, steps=20, progress=False)
    p0, p1 = res.class_probabilities[0], res.class_probabilities[-1]
    kl = (p0 * (p0.log() - p1.log())).sum(1)
    assert kl.max() < 1e-8  # second order in the displacement (eq. 8): (0.02)^2 scale, tiny
    step = res.points[1] - res.points[0]
    assert ml.tangent_projection(mlp, x, step).abs().max() < 1e-12
    assert torch.allclose(res.distances[-1], torch.full((3,), 0.02, dtype=torch.float64), rtol=0.05)
    assert not res.reached.any()


def test_across_leaves_is_flatter_than_a_random_direction(cnn, x_cnn):
    direction = torch.randn(x_cnn.shape, dtype=torch.float64, generator=_gen(7))
    res = ml.across_leaves_path(cnn, x_cnn, direction, step_size=0.01, steps=10, progress=False)
    moved_rand = x_cnn + direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * 0.1
    p0 = res.class_probabilities[0]
    p_leaf = res.class_probabilities[-1]
    p_rand = torch.softmax(cnn(moved_rand), 1).detach()
    kl_leaf = (p0 * (p0.log() - p_leaf.log())).sum(1)
    kl_rand = (p0 * (p0.log() - p_rand.log())).sum(1)
    assert (kl_leaf < kl_rand).all()


def test_vanishing_direction_stops_cleanly(mlp):
    x = torch.randn(2, 6, dtype=torch.float64, generator=_gen(8))
    basis, _ = ml.tangent_basis(mlp, x)
    res = ml.across_leaves_path(mlp, x, basis[:, 0], steps=10, progress=False)
    assert res.stop_reasons == ["vanishing direction"] * 2
    assert (res.steps_taken == 0).all()
    torch.testing.assert_close(res.final, x)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"step_size": 0.0}, "step_size"),
        ({"step_size": -1.0}, "step_size"),
        ({"step_size": float("nan")}, "step_size"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_steps": 2.5}, "max_steps"),
        ({"threshold": 0}, "threshold"),
        ({"record_every": 0}, "record_every"),
    ],
)
def test_bad_path_arguments(mlp, x_mlp, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ml.horizontal_path(mlp, x_mlp, x_mlp, progress=False, **kwargs)


def test_bad_path_inputs(mlp, x_mlp):
    with pytest.raises(ValueError, match="same shape"):
        ml.horizontal_path(mlp, x_mlp, x_mlp[:2], progress=False)
    bad = x_mlp.clone()
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match="target contains"):
        ml.horizontal_path(mlp, x_mlp, bad, progress=False)
    with pytest.raises(ValueError, match="source contains"):
        ml.horizontal_path(mlp, bad, x_mlp, progress=False)
    with pytest.raises(ValueError, match="non-zero"):
        ml.across_leaves_path(mlp, x_mlp, torch.zeros_like(x_mlp), progress=False)
    with pytest.raises(ValueError, match="steps"):
        ml.across_leaves_path(mlp, x_mlp, x_mlp, steps=-3, progress=False)


def test_smooth_model_warns_that_theorem_3_1_does_not_apply(x_mlp):
    gelu = ml.MLP(6, hidden=(8,), num_classes=3, activation="gelu").double()
    with pytest.warns(UserWarning, match="Theorem 3.1"):
        ml.horizontal_path(gelu, x_mlp, x_mlp.roll(1, 0), max_steps=2, progress=False)


def test_linear_interpolation():
    a, b = torch.zeros(2, 3), torch.ones(2, 3)
    pts = ml.linear_interpolation(a, b, 5)
    assert pts.shape == (5, 2, 3)
    torch.testing.assert_close(pts[2], torch.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="num"):
        ml.linear_interpolation(a, b, 1)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_off_leaf_fraction_matches_dense_float64_reference(name, request):
    model, x = request.getfixturevalue(name), request.getfixturevalue(f"x_{name}")
    v = torch.randn(x.shape, dtype=torch.float64, generator=_gen(20))
    frac = ml.off_leaf_fraction(model, x, v, chunk=3)
    # Slow, obvious reference: the kernel of the dense G from its eigenvectors.
    g = ml.local_data_matrix(model, x)
    for i in range(x.shape[0]):
        lam, vec = torch.linalg.eigh(g[i])
        ker = vec[:, lam <= 1e-10 * lam.max()]
        flat = v[i].flatten()
        off = ker @ (ker.T @ flat)
        assert abs(float(frac[i]) - float(off.norm() / flat.norm())) < 1e-8
    # A step in D_x is 0 outside it, a step in ker G is all outside, a zero step is NaN.
    tangent = ml.tangent_projection(model, x, v)
    assert float(ml.off_leaf_fraction(model, x, tangent).max()) < 1e-8
    ones = torch.ones(x.shape[0], dtype=torch.float64)
    assert torch.allclose(ml.off_leaf_fraction(model, x, v - tangent), ones)
    assert torch.isnan(ml.off_leaf_fraction(model, x, torch.zeros_like(x))).all()


def test_off_leaf_fraction_argument_checks(mlp, x_mlp):
    with pytest.raises(ValueError, match="step"):
        ml.off_leaf_fraction(mlp, x_mlp, x_mlp[:2])
    with pytest.raises(ValueError, match="chunk"):
        ml.off_leaf_fraction(mlp, x_mlp, x_mlp, chunk=0)


# --- one loop: the public path functions are configurations of paths.walk --------------------


def test_public_path_functions_are_configurations_of_the_one_loop(mlp):
    """horizontal_path and algorithm1_paths (exact, shortened, no clamp) are the same walk.

    Their directions come from two Jacobian routes (C - 1 difference rows against the score
    Jacobian), so the points agree to round-off; their bookkeeping agrees exactly once
    algorithm1_paths stops on a vanishing direction too. With the paper's loop (the default,
    no vanishing rule) the same paths run on with zero-length steps to max_steps and end at
    the same points. Mutations that fail it: a vanishing rule in ALGORITHM1, another step
    length or precedence in walk, steps counted for vanished directions.
    """
    from manifoldlib.algorithm1 import ALGORITHM1, algorithm1_paths
    from manifoldlib.paths import ACROSS, HORIZONTAL, STOP_REASONS, VANISHING

    assert (HORIZONTAL.vanishing, HORIZONTAL.inclusive, HORIZONTAL.stall_window) == (
        VANISHING,
        False,
        None,
    )
    assert (ACROSS.threshold, ACROSS.vanishing) == (None, VANISHING)
    assert (ALGORITHM1.vanishing, ALGORITHM1.inclusive) == (None, True)
    src = torch.randn(6, 6, dtype=torch.float64, generator=_gen(40))
    tgt = torch.randn(6, 6, dtype=torch.float64, generator=_gen(41))
    thr = float((tgt - src).norm(dim=1).median()) * 0.5  # 3 reach, 3 vanish
    kw = {"step_size": 0.1, "max_steps": 60, "threshold": thr}
    hp = ml.horizontal_path(mlp, src, tgt, **kw)
    a1 = algorithm1_paths(
        mlp, src, tgt, projection="exact", rule="shortened", clamp_on=False,
        stop_on_vanishing=True, record_every=1, **kw,
    )  # fmt: skip
    reasons = set(hp.stop_reasons)
    assert {"reached", "vanishing direction"} <= reasons <= set(STOP_REASONS)
    assert a1.stop_reasons == hp.stop_reasons
    assert torch.equal(a1.steps_taken, hp.steps_taken)
    assert torch.equal(a1.reached, hp.reached)
    torch.testing.assert_close(a1.final, hp.final, rtol=0, atol=1e-12)
    torch.testing.assert_close(a1.final_distance, hp.distances[-1], rtol=0, atol=1e-12)
    # the paper's loop: vanished paths run on to max_steps without moving
    paper = algorithm1_paths(
        mlp, src, tgt, projection="exact", rule="shortened", clamp_on=False, **kw
    )
    vanished = [r == "vanishing direction" for r in hp.stop_reasons]
    for i, v in enumerate(vanished):
        if v:
            assert paper.stop_reasons[i] == "max_steps" and int(paper.steps_taken[i]) == 60
        else:
            assert paper.stop_reasons[i] == hp.stop_reasons[i]
            assert int(paper.steps_taken[i]) == int(hp.steps_taken[i])
    torch.testing.assert_close(paper.final, hp.final, rtol=0, atol=1e-9)
    # a leaf projection is a horizontal path: same end, same bookkeeping
    lp = ml.leaf_projection(mlp, src, tgt, step_size=0.1, max_steps=60, threshold=thr)
    assert torch.equal(lp.points, hp.final) and lp.stop_reasons == hp.stop_reasons
    assert torch.equal(lp.steps_taken, hp.steps_taken)


def _line_walk(stops, start=0.0, target=3.0, length=1.0, **kw):
    """Walk a 1-D point towards ``target`` by steps of ``length``: exact arithmetic."""
    from manifoldlib.paths import walk

    x = torch.tensor([[start], [start]], dtype=torch.float64)
    d = torch.tensor([[target], [target]], dtype=torch.float64)
    return walk(
        torch.nn.Linear(1, 2).double(),
        x,
        lambda idx, xa: (d[idx] - xa, (d[idx] - xa).flatten(1).norm(dim=1), {}),
        lambda z, idx: (d[idx] - z).flatten(1).norm(dim=1),
        lambda vnorm, idx: length,
        stops,
        **kw,
    )


def test_walk_threshold_is_strict_or_inclusive():
    """At distance exactly the threshold: the paper's loop stops, horizontal_path walks on."""
    from manifoldlib.paths import StopRules

    strict = _line_walk(StopRules(max_steps=10, threshold=2.0))
    inclusive = _line_walk(StopRules(max_steps=10, threshold=2.0, inclusive=True))
    assert strict.steps_taken.tolist() == [2, 2] and strict.stop_reasons == ["reached"] * 2
    assert inclusive.steps_taken.tolist() == [1, 1] and inclusive.reached.all()
    assert float(inclusive.dist[0]) == 2.0 and float(strict.dist[0]) == 1.0


def test_walk_vanishing_budget_clamp_and_observers():
    import time

    from manifoldlib.paths import Observer, StopRules

    # Overshooting steps of 2 towards 3: 2, 4, 2, 4, ...; the direction never vanishes.
    looping = _line_walk(
        StopRules(max_steps=6, threshold=0.5, stall_window=2, stall_rel=0.0), length=2.0
    )
    assert looping.stop_reasons == ["stalled"] * 2 and looping.stall_step.tolist() == [1, 1]
    assert looping.steps_taken.tolist() == [3, 3]
    # a point on its target: the direction vanishes at once, no step is counted
    still = _line_walk(StopRules(max_steps=5, vanishing=1e-6), start=3.0)
    assert still.stop_reasons == ["vanishing direction"] * 2
    assert still.steps_taken.tolist() == [0, 0]
    # without the vanishing rule the zero-length steps are taken and counted
    runs = _line_walk(StopRules(max_steps=5), start=3.0)
    assert runs.stop_reasons == ["max_steps"] * 2 and runs.steps_taken.tolist() == [5, 5]
    late = _line_walk(StopRules(max_steps=5, deadline=time.time() - 1))
    assert late.stop_reasons == ["budget"] * 2 and late.steps_taken.tolist() == [0, 0]
    # the clamp applies to the paths of clamp_mask only
    mask = torch.tensor([True, False])
    clamped = _line_walk(StopRules(max_steps=2), clamp=(0.0, 1.5), clamp_mask=mask)
    assert clamped.x.flatten().tolist() == [1.5, 2.0]

    class Log(Observer):
        def __init__(self):
            self.events = []

        def stepped(self, walk, step):
            self.events.append(("step", step.t, step.idx.tolist()))

        def stopped(self, walk, i):
            self.events.append(("stop", i, walk.stop_reasons[i]))

        def recorded(self, walk, t):
            self.events.append(("end", t))

    log = Log()
    _line_walk(StopRules(max_steps=5, threshold=1.5), observers=(log,))
    assert log.events == [
        ("step", 1, [0, 1]),
        ("end", 1),
        ("step", 2, [0, 1]),
        ("stop", 0, "reached"),
        ("stop", 1, "reached"),
        ("end", 2),
    ]
