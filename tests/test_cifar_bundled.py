"""The compact CIFAR-10 subset the repository carries (data/cifar10-subset.npz)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import manifoldlib as ml

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "data" / "cifar10-subset.npz"
# ../shared beside the checkout (CI), or two levels up (a worktree under /work/wt/<name>)
SHARED = next(
    (
        p / "shared" / "data" / "cifar10-jpeg-subset"
        for p in (ROOT.parent, ROOT.parent.parent)
        if (p / "shared" / "data" / "cifar10-jpeg-subset").is_dir()
    ),
    ROOT.parent / "shared" / "data" / "cifar10-jpeg-subset",
)


def test_bundled_is_the_default_without_environment(monkeypatch):
    monkeypatch.delenv("MANIFOLDLIB_CIFAR10", raising=False)
    data = ml.load_cifar10(train_per_class=3, test_per_class=2)
    assert data.source.startswith("bundled")
    assert data.train_x.shape == (30, 3, 32, 32) and data.test_x.shape == (20, 3, 32, 32)
    assert torch.equal(torch.bincount(data.train_y), torch.full((10,), 3))
    assert data.classes == ml.data.CIFAR10_CLASSES
    # normalised with the paper's statistics: pixels in [0, 1] map inside pixel_range
    lo, hi = data.pixel_range
    assert bool((data.train_x >= lo - 1e-5).all() and (data.train_x <= hi + 1e-5).all())


def test_bundled_size_and_counts():
    assert BUNDLED.stat().st_size < 6.5e6  # "a few MB"
    full = ml.load_cifar10("bundled")
    assert torch.equal(torch.bincount(full.train_y), torch.full((10,), 500))
    assert torch.equal(torch.bincount(full.test_y), torch.full((10,), 100))


def test_environment_variable_still_wins(tmp_path, monkeypatch):
    from test_data import make_cifar_folder

    monkeypatch.setenv("MANIFOLDLIB_CIFAR10", str(make_cifar_folder(tmp_path / "c")))
    assert ml.load_cifar10().source == str(tmp_path / "c")


@pytest.mark.ci_required
@pytest.mark.skipif(not SHARED.is_dir(), reason="no ../shared CIFAR-10 folder beside the clone")
def test_bundled_decodes_to_the_source_pixels_and_the_packer_reproduces_it(tmp_path):
    a = ml.load_cifar10("bundled", train_per_class=40, test_per_class=20)
    b = ml.load_cifar10(SHARED, train_per_class=40, test_per_class=20)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_x, b.test_x)
    assert torch.equal(a.train_y, b.train_y) and torch.equal(a.test_y, b.test_y)
    out = tmp_path / "again.npz"
    subprocess.run(
        [sys.executable, str(ROOT / "tools" / "pack_cifar10_subset.py"), str(SHARED), str(out)],
        check=True,
        capture_output=True,
    )
    digest = hashlib.sha256
    assert digest(out.read_bytes()).digest() == digest(BUNDLED.read_bytes()).digest()
