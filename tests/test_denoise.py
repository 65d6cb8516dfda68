"""manifoldlib.denoise against obvious references (sorting, scipy, lstsq)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from manifoldlib import denoise


def test_knn_denoise_against_sorting():
    gen = torch.Generator().manual_seed(0)
    bank, q = torch.rand(40, 1, 4, 4, generator=gen), torch.rand(5, 1, 4, 4, generator=gen)
    for k in (1, 3):
        got = denoise.knn_denoise(q, bank, k=k)
        for i in range(5):
            order = (bank - q[i]).flatten(1).norm(dim=1).argsort()
            torch.testing.assert_close(got[i], bank[order[:k]].mean(0))
    # A bank image is its own nearest neighbour.
    torch.testing.assert_close(denoise.knn_denoise(bank[:3], bank), bank[:3])
    with pytest.raises(ValueError, match="k = 41"):
        denoise.knn_denoise(q, bank, k=41)


def test_pca_denoise_is_the_least_squares_projection():
    gen = torch.Generator().manual_seed(1)
    bank = torch.randn(50, 1, 3, 4, generator=gen, dtype=torch.float64)
    basis = denoise.fit_pca(bank, 3)
    c = basis.components
    torch.testing.assert_close(c.T @ c, torch.eye(3, dtype=torch.float64))
    q = torch.randn(4, 1, 3, 4, generator=gen, dtype=torch.float64)
    d = q.flatten(1) - basis.mean
    ref = (c @ torch.linalg.lstsq(c, d.T).solution).T + basis.mean
    torch.testing.assert_close(denoise.pca_denoise(q, basis).flatten(1), ref)
    # Full rank: the identity on centred data's span; the top component maximises variance.
    centred = bank.flatten(1) - bank.flatten(1).mean(0)
    top = torch.linalg.eigh(centred.T @ centred).eigenvectors[:, -1]
    assert abs(float(top @ c[:, 0])) == pytest.approx(1.0, abs=1e-9)


def test_median_filter_matches_scipy():
    rng = np.random.default_rng(2)
    img = rng.random((2, 1, 7, 9)).astype(np.float32)
    for size in (1, 3, 5):
        ref = np.stack(
            [ndimage.median_filter(img[b, 0], size=size, mode="nearest") for b in range(2)]
        )
        got = denoise.median_filter(torch.from_numpy(img), size)
        np.testing.assert_allclose(got[:, 0].numpy(), ref)
    with pytest.raises(ValueError, match="odd"):
        denoise.median_filter(torch.from_numpy(img), 2)


def test_autoencoder_training_is_deterministic_and_learns():
    gen = torch.Generator().manual_seed(3)
    clean = torch.zeros(64, 1, 8, 8)
    clean[:, :, 2:6, 3:5] = torch.rand(64, 1, 1, 1, generator=gen)  # simple bars
    kwargs = dict(max_norm=2.0, epochs=3, batch_size=16, seed=5)
    a = denoise.train_denoising_autoencoder(clean, **kwargs)
    b = denoise.train_denoising_autoencoder(clean, **kwargs)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert not a.training
    out = a(clean)
    assert out.shape == clean.shape and out.min() >= 0 and out.max() <= 1


def test_autoencoder_validation_history_leaves_training_unchanged():
    gen = torch.Generator().manual_seed(4)
    clean = torch.zeros(64, 1, 8, 8)
    clean[:, :, 2:6, 3:5] = torch.rand(64, 1, 1, 1, generator=gen)
    kwargs = dict(max_norm=2.0, epochs=4, batch_size=16, seed=5, hidden=32, bottleneck=8)
    plain = denoise.train_denoising_autoencoder(clean, **kwargs)
    val = (clean[:8] + 0.1 * torch.rand(8, 1, 8, 8, generator=gen)).clamp(0, 1), clean[:8]
    history: list[float] = []
    watched = denoise.train_denoising_autoencoder(clean, validation=val, history=history, **kwargs)
    assert plain.net[0].out_features == 32 and plain.net[2].out_features == 8
    for pa, pb in zip(plain.parameters(), watched.parameters(), strict=True):
        assert torch.equal(pa, pb)  # recording the validation loss draws no random numbers
    assert len(history) == 4
    with torch.no_grad():
        last = float((watched(val[0]) - val[1]).pow(2).mean())
    assert history[-1] == pytest.approx(last, rel=1e-6)
    with pytest.raises(ValueError, match="history"):
        denoise.train_denoising_autoencoder(clean, validation=val, **kwargs)


def test_paired_difference():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    b = torch.tensor([0.0, 1.5, 2.0, 4.5])
    mean, se = denoise.paired_difference(a, b)
    d = np.array([1.0, 0.5, 1.0, -0.5])
    assert mean == pytest.approx(d.mean())
    assert se == pytest.approx(d.std(ddof=1) / math.sqrt(4))
    with pytest.raises(ValueError, match="same n"):
        denoise.paired_difference(a, b[:3])


def test_autoencoder_in_float64_starts_from_the_same_weights_and_stays_float64():
    gen = torch.Generator().manual_seed(6)
    clean = torch.zeros(32, 1, 8, 8)
    clean[:, :, 2:6, 3:5] = torch.rand(32, 1, 1, 1, generator=gen)
    kwargs = dict(max_norm=2.0, epochs=1, batch_size=16, seed=5, hidden=16, bottleneck=4, lr=1e-9)
    f32 = denoise.train_denoising_autoencoder(clean, **kwargs)
    f64 = denoise.train_denoising_autoencoder(clean, dtype=torch.float64, **kwargs)
    for p32, p64 in zip(f32.parameters(), f64.parameters(), strict=True):
        assert p64.dtype == torch.float64
        # lr 1e-9: both are their common initialisation to within Adam's first steps
        assert torch.allclose(p64, p32.double(), atol=1e-8)
    assert f64(clean.double()).dtype == torch.float64
    with pytest.raises(ValueError, match="dtype"):
        denoise.train_denoising_autoencoder(clean, dtype=torch.float16, **kwargs)
