"""manifoldlib.leaf against slow, obvious references (pair counts, dense sums, float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from oracles import ref_tangent_projector
from torch import nn

import manifoldlib as ml
from manifoldlib import leaf

# ------------------------------------------------------------------ statistics


def binom_tail_ge(k, n, p):
    return sum(math.comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(k, n + 1))


def bisect(f, lo=0.0, hi=1.0, iters=200):
    """Root of an increasing function f on [lo, hi] by bisection."""
    for _ in range(iters):
        mid = (lo + hi) / 2
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@pytest.mark.parametrize(("k", "n"), [(0, 20), (3, 20), (10, 20), (20, 20), (1, 200)])
def test_clopper_pearson_matches_binomial_tails(k, n):
    lo, hi = ml.stats.clopper_pearson_interval(k, n, confidence=0.95)
    # Lower bound: P(X >= k; p) = 0.025; upper: P(X <= k; p) = 0.025.
    ref_lo = 0.0 if k == 0 else bisect(lambda p: binom_tail_ge(k, n, p) - 0.025)
    ref_hi = 1.0 if k == n else bisect(lambda p: 0.025 - (1 - binom_tail_ge(k + 1, n, p)))
    assert lo == pytest.approx(ref_lo, abs=1e-9)
    assert hi == pytest.approx(ref_hi, abs=1e-9)


@pytest.mark.parametrize(("k", "n"), [(0, 200), (7, 50), (50, 50), (13, 37)])
def test_wilson_matches_inverted_score_test(k, n):
    """The Wilson bounds are the p where |p_hat - p| = z sqrt(p (1 - p) / n)."""
    lo, hi = ml.stats.wilson_interval(k, n)
    z, ph = 1.959963984540054, k / n
    for p in (lo, hi):
        if 0 < p < 1:
            assert abs(ph - p) == pytest.approx(z * math.sqrt(p * (1 - p) / n), abs=1e-12)
    assert lo <= ph <= hi
    assert (lo == 0.0) == (k == 0) and (hi == 1.0) == (k == n)


def test_intervals_reject_bad_counts():
    for f in (ml.stats.wilson_interval, ml.stats.clopper_pearson_interval):
        with pytest.raises(ValueError, match="trials"):
            f(0, 0)
        with pytest.raises(ValueError, match="successes"):
            f(5, 4)
        with pytest.raises(TypeError, match="successes"):
            f(1.5, 4)
        with pytest.raises(ValueError, match="confidence"):
            f(1, 4, confidence=1.0)


# ------------------------------------------------------------------ images


def slow_blur(img, sigma):
    """Direct 2-D sum over a truncated, renormalised Gaussian, zero outside the image."""
    r = max(1, math.ceil(3 * sigma))
    t = np.arange(-r, r + 1)
    k1 = np.exp(-0.5 * (t / sigma) ** 2)
    k1 /= k1.sum()
    k2 = np.outer(k1, k1)
    h, w = img.shape
    out = np.zeros_like(img)
    for i in range(h):
        for j in range(w):
            for a in range(-r, r + 1):
                for b in range(-r, r + 1):
                    if 0 <= i + a < h and 0 <= j + b < w:
                        out[i, j] += k2[a + r, b + r] * img[i + a, j + b]
    return out


def test_gaussian_blur_matches_direct_sum():
    img = torch.rand(2, 3, 9, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    ours = ml.images.gaussian_blur(img, 0.8)
    for b in range(2):
        for c in range(3):
            ref = slow_blur(img[b, c].numpy(), 0.8)
            np.testing.assert_allclose(ours[b, c].numpy(), ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ml.images.gaussian_blur(img, 0.0), img)
    with pytest.raises(ValueError, match="sigma"):
        ml.images.gaussian_blur(img, -1.0)
    with pytest.raises(ValueError, match="images"):
        ml.images.gaussian_blur(img[0], 1.0)


def test_psnr_and_best_blur():
    clean = torch.zeros(2, 1, 4, 4, dtype=torch.float64)
    noisy = clean + 0.1
    torch.testing.assert_close(
        ml.images.psnr(noisy, clean), torch.full((2,), 20.0, dtype=torch.float64)
    )
    with pytest.raises(ValueError, match="estimate"):
        ml.images.psnr(noisy[:1], clean)
    # best_blur is the argmax of the mean PSNR over the candidates; blurring noise helps.
    g = torch.Generator().manual_seed(1)
    img = ml.images.gaussian_blur(torch.rand(4, 1, 16, 16, dtype=torch.float64, generator=g), 2.0)
    noisy = img + 0.2 * torch.randn(img.shape, generator=g, dtype=torch.float64)
    sigmas = [0.0, 0.5, 1.0, 2.0]
    means = [
        float(ml.images.psnr(ml.images.gaussian_blur(noisy, s).clamp(0, 1), img).mean())
        for s in sigmas
    ]
    assert ml.images.best_blur(noisy, img, sigmas) == sigmas[int(np.argmax(means))] > 0


# ------------------------------------------------------------------ the leaf


def test_nearest_neighbours_matches_brute_force():
    g = torch.Generator().manual_seed(2)
    bank = torch.randn(30, 1, 3, 3, generator=g)
    query = torch.cat([bank[:3], torch.randn(5, 1, 3, 3, generator=g)])
    d = torch.cdist(query.flatten(1).double(), bank.flatten(1).double())
    idx, dist = leaf.nearest_neighbours(query, bank, chunk=3)
    torch.testing.assert_close(idx, d.argmin(1))
    torch.testing.assert_close(dist.double(), d.min(1).values, rtol=1e-5, atol=1e-5)
    idx2, _ = leaf.nearest_neighbours(query, bank, exclude_self=True)
    d[torch.arange(3), torch.arange(3)] = torch.inf
    torch.testing.assert_close(idx2, d.argmin(1))
    with pytest.raises(ValueError, match="same shape"):
        leaf.nearest_neighbours(query, bank.flatten(1))


class Linear(nn.Module):
    """A linear classifier: its leaves are the parallel affine planes a + row space."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.fc = nn.Linear(6, 4).double()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


def test_leaf_projection_reaches_the_plane_projection_for_a_linear_model():
    model = Linear().eval()
    g = torch.Generator().manual_seed(5)
    a = torch.randn(3, 6, dtype=torch.float64, generator=g)
    x = torch.randn(3, 6, dtype=torch.float64, generator=g)
    w = model.fc.weight.detach()
    h = w - w.mean(0, keepdim=True)  # rows grad s_i - mean: they span D (constant here)
    v = torch.linalg.svd(h, full_matrices=False)[2][:3]
    expected = a + (x - a) @ v.T @ v
    proj = leaf.leaf_projection(model, a, x, step_size=0.5, max_steps=200)
    torch.testing.assert_close(proj.points, expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(proj.residual, (x - expected).norm(dim=1), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(proj.initial, (x - a).norm(dim=1))
    assert (proj.relative_residual <= 1).all()
    # The first-order distance is exact for a linear model.
    torch.testing.assert_close(
        ml.ood.tangent_residual(model, a, x), proj.residual, rtol=1e-6, atol=1e-6
    )


def test_across_leaves_noise_keeps_a_linear_models_prediction():
    model = Linear().eval()
    x = torch.randn(4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    noisy = leaf.across_leaves_noise(model, x, 3.0, max_step=1.0, generator=torch.Generator())
    moved = (noisy - x).norm(dim=1)
    torch.testing.assert_close(moved, torch.full_like(moved, 3.0))  # a straight path in ker G
    torch.testing.assert_close(F.softmax(model(noisy), 1), F.softmax(model(x), 1))
    with pytest.raises(ValueError, match="distance"):
        leaf.across_leaves_noise(model, x, -1.0)


def slow_noise(model, x, direction, distance, steps, clamp):
    """``steps`` equal steps, each along the direction re-projected on ker G (dense, float64)."""
    z = x.clone()
    for _ in range(steps):
        eye = torch.eye(x[0].numel(), dtype=x.dtype)
        k = torch.einsum("bnm,bm->bn", eye - ref_tangent_projector(model, z), direction)
        z = (z + distance / steps * k / k.norm(dim=1, keepdim=True)).clamp(*clamp)
    return z


def test_across_leaves_noise_takes_short_reprojected_steps(mlp, x_mlp):
    gen = torch.Generator().manual_seed(9)
    direction = torch.randn(x_mlp.shape, generator=gen, dtype=x_mlp.dtype)
    box = (float(x_mlp.min()), float(x_mlp.max()) + 0.05)  # contains the start, bites later
    ours = leaf.across_leaves_noise(
        mlp, x_mlp, 1.0, max_step=0.3, clamp=box, generator=gen.manual_seed(9)
    )
    # ceil(1.0 / 0.3) = 4 steps of 0.25, re-projected at every step
    expected = slow_noise(mlp, x_mlp, direction, 1.0, 4, box)
    torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-9)
    # The mutation this detects: one long step (the old default's spirit) is another noise.
    one_step = slow_noise(mlp, x_mlp, direction, 1.0, 1, box)
    assert float((one_step - expected).abs().max()) > 1e-3
    # The default step is 0.1: 10 steps for a distance of 1.
    default = leaf.across_leaves_noise(mlp, x_mlp, 1.0, generator=gen.manual_seed(9))
    torch.testing.assert_close(
        default, slow_noise(mlp, x_mlp, direction, 1.0, 10, (-1e9, 1e9)), rtol=1e-9, atol=1e-9
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_step": 0.0}, "max_step"),
        ({"max_step": -0.1}, "max_step"),
        ({"max_step": float("nan")}, "max_step"),
        ({"distance": float("inf")}, "distance"),
        ({"distance": 0.0}, "distance"),
    ],
)
def test_across_leaves_noise_rejects_bad_arguments(mlp, x_mlp, kwargs, match):
    args = {"distance": 1.0, **kwargs}
    distance = args.pop("distance")
    with pytest.raises(ValueError, match=match):
        leaf.across_leaves_noise(mlp, x_mlp, distance, **args)
    with pytest.raises(TypeError, match="max_step"):
        leaf.across_leaves_noise(mlp, x_mlp, 1.0, max_step="0.1")


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_noise_dx_share_matches_dense_projector(name, request):
    model = request.getfixturevalue(name)
    x = request.getfixturevalue(f"x_{name}")
    z = x + 0.8 * torch.randn(x.shape, generator=torch.Generator().manual_seed(4), dtype=x.dtype)
    share = leaf.noise_dx_share(model, x, z, chunk=2)
    delta = (z - x).flatten(1)
    for base, got in ((x, share.at_clean), (z, share.at_noisy)):
        proj = torch.einsum("bnm,bm->bn", ref_tangent_projector(model, base), delta)
        torch.testing.assert_close(got, proj.norm(dim=1) / delta.norm(dim=1), rtol=1e-9, atol=1e-10)
    # the two base points give different shares here (a mutation using one for both fails)
    assert float((share.at_clean - share.at_noisy).abs().max()) > 1e-3
    # noise in ker G at x has no share there
    kernel = delta - torch.einsum("bnm,bm->bn", ref_tangent_projector(model, x), delta)
    in_ker = leaf.noise_dx_share(model, x, x + kernel.view(x.shape))
    assert float(in_ker.at_clean.max()) < 1e-10
    with pytest.raises(ValueError, match="noisy"):
        leaf.noise_dx_share(model, x, x.clone())
    with pytest.raises(ValueError, match="noisy"):
        leaf.noise_dx_share(model, x, z[:1])


def test_rendered_characters_are_deterministic_images():
    a = ml.data.rendered_characters(6, seed=3)
    assert a.shape == (6, 1, 28, 28) and a.dtype == torch.float32
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert (a.flatten(1).sum(1) > 10).all()  # every image holds a visible glyph
    torch.testing.assert_close(a, ml.data.rendered_characters(6, seed=3))
    with pytest.raises(ValueError, match="count"):
        ml.data.rendered_characters(0)


def test_names_live_in_one_module():
    """The core is at the top level; the statistics are no longer re-exported by leaf."""
    assert ml.leaf_projection is leaf.leaf_projection
    for name, home in (("auroc", ml.stats), ("wilson_interval", ml.stats), ("psnr", ml.images)):
        assert not hasattr(leaf, name) and callable(getattr(home, name))
        with pytest.raises(AttributeError, match=f"manifoldlib.{home.__name__.split('.')[-1]}"):
            getattr(ml, name)
