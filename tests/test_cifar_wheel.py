"""The bundled CIFAR-10 subset in an installed wheel (Colab): fetched once, checked by hash."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import manifoldlib as ml
from manifoldlib import data as md

ROOT = Path(__file__).resolve().parents[1]


def test_hash_and_url_match_the_clone():
    # The constant the wheel checks a download against is the hash of the file a clone carries,
    # and the URL points into the repository that _config.yml names.
    assert md._sha256(md.BUNDLED_CIFAR10) == md.BUNDLED_CIFAR10_SHA256
    repo = re.search(r"^\s*url:\s*(\S+)", (ROOT / "_config.yml").read_text(), flags=re.M)[1]
    assert md.REPOSITORY_URL == repo.rstrip("/")
    url = md._bundled_cifar10_url()
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
    monkeypatch.setattr(md, "_bundled_cifar10_url", lambda: url)
    path = md._bundled_cifar10_file(True, url)
    assert path == wheel / "home" / "cifar10-subset.npz" and path.is_file()
    data = ml.load_cifar10("bundled", train_per_class=1, test_per_class=1)
    assert data.train_x.shape == (10, 3, 32, 32)
    # a second call uses the copy: it would fail if it tried the (now broken) URL
    assert md._bundled_cifar10_file(True, url + ".missing") == path


def test_wheel_rejects_a_corrupt_download(wheel):
    bad = wheel / "bad.npz"
    bad.write_bytes(b"not the subset")
    with pytest.raises(ValueError, match=r"SHA-256"):
        md._bundled_cifar10_file(True, bad.as_uri())
    assert not (wheel / "home" / "cifar10-subset.npz").exists()  # deleted, not kept
