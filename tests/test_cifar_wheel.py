"""The repository's data/ files in an installed wheel (Colab): fetched once, checked by hash."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import manifoldlib as ml
from manifoldlib import data as md

ROOT = Path(__file__).resolve().parents[1]


def test_hash_and_url_match_the_clone():
    # The constants the wheel checks a download against are the hashes of the files a clone
    # carries (every .npz in data/), and the URL points into the repository _config.yml names.
    files = sorted(p.name for p in (ROOT / "data").glob("*.npz"))
    assert sorted(md.BUNDLED_SHA256) == files
    for name in files:
        assert md._sha256(ROOT / "data" / name) == md.BUNDLED_SHA256[name], name
    repo = re.search(r"^\s*url:\s*(\S+)", (ROOT / "_config.yml").read_text(), flags=re.M)[1]
    assert md.REPOSITORY_URL == repo.rstrip("/")
    url = md._bundled_url("cifar10-subset.npz")
    assert re.fullmatch(re.escape(repo) + r"/raw/(v[0-9][^/]*|main)/data/cifar10-subset\.npz", url)


@pytest.fixture
def wheel(monkeypatch, tmp_path):
    """As in an installed wheel: no data/ folder beside the package, an empty data home."""
    monkeypatch.setattr(md, "BUNDLED_CIFAR10", tmp_path / "absent" / "cifar10-subset.npz")
    monkeypatch.setenv("MANIFOLDLIB_DATA", str(tmp_path / "home"))
    monkeypatch.delenv("MANIFOLDLIB_CIFAR10", raising=False)
    return tmp_path


def test_wheel_without_download_says_how(wheel):
    with pytest.raises(FileNotFoundError, match=r"download=True"):
        ml.load_cifar10("bundled")


def test_wheel_fetches_once_and_checks_the_hash(wheel, monkeypatch):
    url = (ROOT / "data" / "cifar10-subset.npz").as_uri()  # a local "server": no network
    path = ml.data.bundled_file(md.BUNDLED_CIFAR10, True, url)
    assert path == wheel / "home" / "cifar10-subset.npz" and path.is_file()
    data = ml.load_cifar10("bundled", train_per_class=1, test_per_class=1)  # finds the copy
    assert data.train_x.shape == (10, 3, 32, 32)
    # a second call uses the copy: it would fail if it tried the (now broken) URL
    assert ml.data.bundled_file(md.BUNDLED_CIFAR10, True, url + ".missing") == path


def test_wheel_rejects_a_corrupt_download(wheel):
    bad = wheel / "bad.npz"
    bad.write_bytes(b"not the subset")
    with pytest.raises(ValueError, match=r"SHA-256"):
        ml.data.bundled_file(md.BUNDLED_CIFAR10, True, bad.as_uri())
    assert not (wheel / "home" / "cifar10-subset.npz").exists()  # deleted, not kept


def test_gallery_in_a_wheel(monkeypatch, tmp_path):
    pytest.importorskip("ipywidgets")
    from manifoldlib import widgets as mw

    monkeypatch.setattr(mw, "GALLERY_MNIST", tmp_path / "absent" / "path_gallery_mnist.npz")
    monkeypatch.setenv("MANIFOLDLIB_DATA", str(tmp_path / "home"))
    with pytest.raises(FileNotFoundError, match=r"download=True"):
        mw.load_path_gallery(mw.GALLERY_MNIST)
    url = (ROOT / "data" / "path_gallery_mnist.npz").as_uri()
    monkeypatch.setattr(md, "_bundled_url", lambda name: url)
    gallery = mw.load_path_gallery(mw.GALLERY_MNIST, download=True)
    assert len(gallery.pairs) == 90 and gallery.result.points.shape[1] == 90
