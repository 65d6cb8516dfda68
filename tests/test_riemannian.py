"""G-lengths and Fisher-Rao distances against dense float64 references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from oracles import ref_G

import manifoldlib as ml


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
