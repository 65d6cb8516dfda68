"""The public API around the geometry: traces, accuracy, path records, figures, references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from oracles import ref_jacobian, ref_trace

import manifoldlib as ml
from manifoldlib.reference import (
    reference_across_leaves_path,
    reference_horizontal_path,
    reference_jacobian,
    reference_trace_rank,
)

# --- mean_trace --------------------------------------------------------------------------


def test_mean_trace_exact_matches_eq_11(mlp, x_mlp):
    m = ml.mean_trace(mlp, x_mlp, chunk=3)
    ref = ref_trace(mlp, x_mlp)
    assert isinstance(m, ml.geometry.MeanTrace) and m.method == "exact"
    assert m.mean == pytest.approx(float(ref.mean()), rel=1e-10)
    assert m.mean_stderr == 0.0
    ranks = ml.local_data_lowrank(mlp, x_mlp).rank()
    assert (m.rank_min, m.rank_max) == (int(ranks.min()), int(ranks.max()))
    assert float(m) == m.mean
    with pytest.raises(TypeError):  # the 0.1.0 dictionary reading is gone
        m["trace"]


def test_mean_trace_mc_is_unbiased_and_validates_its_method(mlp, x_mlp):
    x = x_mlp.repeat(40, 1)  # 280 inputs, several chunks
    exact = ml.mean_trace(mlp, x).mean
    mc = ml.mean_trace(mlp, x, method="mc", chunk=64, generator=torch.Generator().manual_seed(0))
    assert mc.method == "mc" and mc.rank_min is None and mc.rank_max is None
    assert abs(mc.mean - exact) < 5 * mc.mean_stderr
    with pytest.raises(ValueError, match="method"):
        ml.mean_trace(mlp, x_mlp, method="dense")
    with pytest.raises(ValueError, match="chunk"):
        ml.mean_trace(mlp, x_mlp, chunk=0)


# --- accuracy ----------------------------------------------------------------------------


def test_accuracy_counts_argmax_hits_in_chunks(mlp, x_mlp):
    pred = mlp(x_mlp).argmax(1)
    y = pred.clone()
    y[:3] = (y[:3] + 1) % 4
    assert ml.accuracy(mlp, x_mlp, y, chunk=2) == pytest.approx(4 / 7)
    assert ml.accuracy(mlp, x_mlp, pred) == 1.0


def test_accuracy_refuses_bad_inputs_like_the_geometry(mlp, x_mlp):
    y = torch.zeros(7, dtype=torch.long)
    with pytest.raises(ValueError, match="device"):
        ml.accuracy(mlp, x_mlp.to("meta"), y)
    with pytest.raises(ValueError, match="device"):
        ml.accuracy(mlp, x_mlp, y.to("meta"))
    with pytest.raises(ValueError, match=r"\(N,\)"):
        ml.accuracy(mlp, x_mlp, y[:3])
    with pytest.raises(ValueError, match=r"\(N,\)"):
        ml.accuracy(mlp, x_mlp, y.double())
    with pytest.raises(TypeError, match="dtype"):
        ml.accuracy(mlp, x_mlp.float(), y)


# --- paths -------------------------------------------------------------------------------


def test_path_result_select_is_one_path_of_the_batch(mlp, x_mlp):
    res = ml.horizontal_path(mlp, x_mlp[:3], x_mlp[3:6], max_steps=4, threshold=1e-3)
    one = res.select(1)
    assert one.points.shape == (res.points.shape[0], 1, 6)
    torch.testing.assert_close(one.points[:, 0], res.points[:, 1])
    torch.testing.assert_close(one.class_probabilities[:, 0], res.class_probabilities[:, 1])
    assert one.stop_reasons == res.stop_reasons[1:2]
    assert one.steps_taken.tolist() == res.steps_taken[1:2].tolist()
    for bad in (3, -1, 1.0, True):
        with pytest.raises(ValueError, match="index"):
            res.select(bad)


def test_both_paths_share_one_loop_and_its_stopping_rules(mlp, x_mlp):
    """A horizontal path at its target stops at once; a path across leaves never 'reaches'."""
    res = ml.horizontal_path(mlp, x_mlp[:2], x_mlp[:2] + 1e-3, max_steps=5, threshold=0.1)
    assert res.stop_reasons == ["reached", "reached"] and res.points.shape[0] == 1
    across = ml.across_leaves_path(mlp, x_mlp[:2], torch.ones_like(x_mlp[:2]), steps=3)
    assert across.stop_reasons == ["max_steps"] * 2 and not across.reached.any()
    lengths = ml.riemannian.euclidean_lengths(across.points)
    torch.testing.assert_close(lengths, torch.full_like(lengths, 0.1))
    torch.testing.assert_close(across.distances[0], torch.zeros(2, dtype=torch.float64))


# --- the model itself fails on x ---------------------------------------------------------


def test_a_model_failing_on_x_is_explained_with_the_shape_and_a_batch(cnn):
    with pytest.raises(ValueError, match=r"shape \(1, 8, 8\).*batch") as info:
        ml.tangent_projection(cnn, torch.zeros(1, 8, 8).double(), torch.zeros(1, 8, 8).double())
    assert "expected 4D input" in str(info.value.__cause__)  # batch-norm's own error, chained


# --- plot (smoke) ------------------------------------------------------------------------


def test_plot_functions_draw_without_error(mlp, x_mlp, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = torch.rand(3, 1, 4, 4)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)).double().eval()
    res = ml.horizontal_path(model, images.double(), images.flip(0).double(), max_steps=3)
    fig = ml.plot.path_strip(res, 1, frames=3, classes=["a", "b", "c"], target=images[0])
    assert res.points.shape[0] >= 3  # enough records for three frames
    assert len(fig.axes) == 3 + 1  # three frames and the target
    fig2 = ml.plot.show_images(images, ["x", "y", "z"], ncols=2, title="t")
    assert len(fig2.axes) == 4
    ax = ml.plot.trace_curve({"step": [0, 1, 2], "trace": [1.0, 2.0, 1.5]})
    assert len(ax.lines) == 2
    ml.plot.save_gif(res, tmp_path / "p.gif", index=2, frames=2, scale=2)
    assert (tmp_path / "p.gif").read_bytes()[:3] == b"GIF"
    assert ml.plot.ema([1.0, 3.0], alpha=0.5).tolist() == [1.0, 2.0]
    plt.close("all")


# --- reference -----------------------------------------------------------------------------


def test_reference_jacobian_and_trace_rank_match_the_oracles(mlp, x_mlp):
    torch.testing.assert_close(reference_jacobian(mlp, x_mlp[0]), ref_jacobian(mlp, x_mlp[:1])[0])
    traces, ranks = reference_trace_rank(mlp, x_mlp)
    # float32: the reference collects the traces with torch.tensor(list of floats)
    torch.testing.assert_close(traces.double(), ref_trace(mlp, x_mlp), rtol=1e-6, atol=0)
    assert (ranks <= 3).all()
    torch.testing.assert_close(ranks, ml.local_data_lowrank(mlp, x_mlp).rank())


def test_reference_paths_take_steps_of_the_given_length(mlp, x_mlp):
    pts, top, pred = reference_horizontal_path(
        mlp, x_mlp[0], x_mlp[1], step_size=0.05, max_steps=4, threshold=1e-6
    )
    assert pts.shape == (5, 6) and top.shape == pred.shape == (5,)
    steps = (pts[1:] - pts[:-1]).norm(dim=1)
    torch.testing.assert_close(steps, torch.full_like(steps, 0.05))
    torch.testing.assert_close(top, F.softmax(mlp(pts), 1).max(1).values)
    direction = torch.ones(6, dtype=torch.float64)
    pts = reference_across_leaves_path(mlp, x_mlp[0], direction, step_size=0.05, steps=3)
    assert pts.shape == (4, 6)
    off = ml.off_leaf_fraction(mlp, pts[:-1], pts[1:] - pts[:-1])
    assert (off > 1 - 1e-8).all()  # a complete QR gives a basis of ker G: all across the leaf
