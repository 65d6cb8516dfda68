"""The paper profile's code paths on a tiny stand-in of full MNIST (an IDX folder written here).

The paper profile (``MANIFOLDLIB_PROFILE=paper``) reads full MNIST through torchvision from
``data_home()/torchvision/MNIST/raw`` and trains with the paper's settings. CI cannot hold the
real 60,000 images, so this test writes a few hundred synthetic digits in the same IDX format
into a temporary data home and runs the profile's loading, training (SGD batch 60, lr 0.01,
exact trace of G on the reference batch, per-epoch checkpoints) and a few steps of
Algorithm 1 at the paper's step size on the result.
"""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

import manifoldlib as ml
from manifoldlib.algorithm1 import algorithm1_paths

pytest.importorskip("torchvision")


def _write_idx(path: Path, array: np.ndarray) -> None:
    """IDX format: magic (0, 0, type 0x08 = ubyte, ndim), big-endian sizes, then the bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def _digits(n_per_class: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic 28x28 "digits": class c lights a bar at row 2 + 2c, plus noise."""
    images, labels = [], []
    for c in range(10):
        x = rng.integers(0, 40, size=(n_per_class, 28, 28))
        x[:, 2 + 2 * c : 4 + 2 * c, 4:24] = 255
        images.append(x)
        labels.append(np.full(n_per_class, c))
    return np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.uint8)


@pytest.fixture
def paper_home(tmp_path, monkeypatch):
    raw = tmp_path / "torchvision" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 20), ("t10k", 5)):
        x, y = _digits(n, rng)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", x)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", y)
    monkeypatch.setenv("MANIFOLDLIB_DATA", str(tmp_path))
    monkeypatch.setenv("MANIFOLDLIB_PROFILE", "paper")
    return tmp_path


def test_paper_profile_loads_the_idx_stand_in(paper_home):
    P = ml.current_profile()
    assert P.name == "paper" and P.mnist_source == "torchvision"
    assert P.pick(book=1, paper=2) == 2
    data = ml.load_mnist(P.mnist_source)
    assert data.train_x.shape == (200, 1, 28, 28) and data.test_x.shape == (50, 1, 28, 28)
    assert data.train_y.bincount().tolist() == [20] * 10
    # normalised as the paper's code: (pixel / 255 - 0.1307) / 0.3081
    lo, hi = data.pixel_range
    assert float(data.train_x.min()) >= float(lo.min()) - 1e-6
    assert float(data.train_x.max()) == pytest.approx(float(hi.max()), abs=1e-5)


def test_paper_profile_trains_and_runs_algorithm1(paper_home):
    P = ml.current_profile()
    cfg = P.mnist_config()
    assert (cfg.source, cfg.batch_size, cfg.lr, cfg.trace_batch) == ("torchvision", 60, 0.01, 1000)
    assert (cfg.epochs, cfg.trace_every, P.mnist_epoch) == (30, 100, 10)
    # The paper's set-up, shortened: 2 epochs of 4 steps each, trace every 2 steps.
    small = dataclasses.replace(cfg, epochs=2, trace_every=2, threads=1)
    result = ml.cached_train(small, progress=False)
    folder = paper_home / "models" / f"{small.arch}-{small.key()}"
    assert sorted(p.name for p in folder.glob("epoch-*.pt")) == ["epoch-001.pt", "epoch-002.pt"]
    h = result.history
    assert h["step"][0] == 0 and len(h["trace"]) >= 4
    assert all(np.isfinite(h["trace"])) and len(h["epoch_test_accuracy"]) == 2
    model = ml.cached_train(small, epoch=1, progress=False).model  # reload, no training
    data = ml.load_mnist(P.mnist_source)
    src, tgt = data.test_x[[0, 10]], data.test_x[[45, 30]]
    res = algorithm1_paths(
        model, src, tgt, projection=["exact", "gels"], clamp=data.pixel_range, max_steps=3
    )
    assert res.steps_taken.tolist() == [3, 3]
    assert torch.allclose(res.path_length, torch.full((2,), 0.3, dtype=torch.float64), atol=0.05)
    assert bool((res.final_distance < res.initial_distance).all())
