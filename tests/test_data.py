"""Loaders on small IDX and ImageFolder data written by the tests, and the embedded MNIST."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

import manifoldlib as ml
from manifoldlib.data import CIFAR10_CLASSES


def write_idx(path, array, compress=False):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.tobytes()
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)


def make_mnist_folder(folder, n_train=30, n_test=10, compress=False):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if compress else ""
    write_idx(
        folder / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_train, 28, 28)), compress
    )
    write_idx(folder / f"train-labels-idx1-ubyte{sfx}", np.arange(n_train) % 10, compress)
    write_idx(
        folder / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 28, 28)), compress
    )
    write_idx(folder / f"t10k-labels-idx1-ubyte{sfx}", np.arange(n_test) % 10, compress)
    return folder


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_from_idx_folder(tmp_path, compress):
    folder = make_mnist_folder(tmp_path / "mnist", compress=compress)
    data = ml.load_mnist(folder)
    assert data.train_x.shape == (30, 1, 28, 28) and data.test_x.shape == (10, 1, 28, 28)
    assert data.train_y.tolist() == [i % 10 for i in range(30)]
    raw = ml.data.read_idx(folder / ("train-images-idx3-ubyte" + (".gz" if compress else "")))
    torch.testing.assert_close(data.to_pixels(data.train_x)[:, 0], torch.tensor(raw) / 255.0)


def test_mnist_in_torchvision_raw_layout(tmp_path):
    make_mnist_folder(tmp_path / "MNIST" / "raw")
    assert len(ml.load_mnist(tmp_path).train_y) == 30


def test_truncated_idx_names_the_file(tmp_path):
    folder = make_mnist_folder(tmp_path / "m")
    f = folder / "t10k-images-idx3-ubyte"
    f.write_bytes(f.read_bytes()[:-100])
    with pytest.raises(ValueError, match="t10k-images-idx3-ubyte.*truncated"):
        ml.load_mnist(folder)


def test_corrupt_gzip_names_the_file(tmp_path):
    folder = make_mnist_folder(tmp_path / "m", compress=True)
    f = folder / "train-labels-idx1-ubyte.gz"
    f.write_bytes(f.read_bytes()[:20])
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz"):
        ml.load_mnist(folder)


def test_bad_magic_and_wrong_label_count(tmp_path):
    folder = make_mnist_folder(tmp_path / "m")
    (folder / "train-labels-idx1-ubyte").write_bytes(b"\x01\x02\x03\x04garbage")
    with pytest.raises(ValueError, match="not an IDX file"):
        ml.load_mnist(folder)
    folder = make_mnist_folder(tmp_path / "m2")
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(29) % 10)
    with pytest.raises(ValueError, match="29 labels for 30 images"):
        ml.load_mnist(folder)


def test_missing_mnist_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="embedded"):
        ml.load_mnist(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        ml.load_mnist(tmp_path / "empty")


def test_torchvision_mnist_is_not_downloaded_unless_asked(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        ml.load_mnist("torchvision")


def test_bad_source_type():
    with pytest.raises(TypeError, match="source"):
        ml.load_mnist(42)


def test_embedded_mnist_split_is_stratified_and_normalised():
    data = ml.load_mnist()
    assert len(data.train_y) == 4000 and len(data.test_y) == 1000
    assert torch.bincount(data.train_y).tolist() == [400] * 10
    assert torch.bincount(data.test_y).tolist() == [100] * 10
    pixels = data.denormalize(data.train_x)
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6
    lo, hi = data.pixel_range
    assert torch.allclose(lo, torch.tensor(-0.1307 / 0.3081)) and (data.train_x >= lo - 1e-6).all()
    assert (data.train_x <= hi + 1e-6).all()
    # Deterministic: the same split twice.
    assert torch.equal(ml.load_mnist().test_x, data.test_x)


def make_cifar_folder(root, per_class=2, bad=None):
    rng = np.random.default_rng(1)
    for split in ("train", "test"):
        for cls in CIFAR10_CLASSES:
            d = root / split / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                arr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
                Image.fromarray(arr).save(d / f"{i:04d}.png")
    return root


def test_cifar_from_image_folder_and_env_var(tmp_path, monkeypatch):
    root = make_cifar_folder(tmp_path / "cifar")
    data = ml.load_cifar10(root)
    assert data.train_x.shape == (20, 3, 32, 32) and data.test_y.tolist() == [
        c for c in range(10) for _ in range(2)
    ]
    first = np.asarray(Image.open(root / "train" / "airplane" / "0000.png"))
    torch.testing.assert_close(
        data.to_pixels(data.train_x[0]), torch.tensor(first).permute(2, 0, 1) / 255.0
    )
    monkeypatch.setenv("MANIFOLDLIB_CIFAR10", str(root))
    assert len(ml.load_cifar10(train_per_class=1).train_y) == 10


def test_cifar_faults(tmp_path):
    with pytest.raises(FileNotFoundError, match="MANIFOLDLIB_CIFAR10"):
        ml.load_cifar10(tmp_path / "missing")
    root = make_cifar_folder(tmp_path / "c1")
    (root / "test" / "frog" / "0001.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="0001.png"):
        ml.load_cifar10(root)
    root = make_cifar_folder(tmp_path / "c2")
    for f in (root / "train" / "ship").iterdir():
        f.unlink()
    (root / "train" / "ship").rmdir()
    with pytest.raises(ValueError, match="one folder per CIFAR-10 class"):
        ml.load_cifar10(root)
    root = make_cifar_folder(tmp_path / "c3")
    Image.fromarray(np.zeros((16, 16, 3), dtype=np.uint8)).save(root / "test" / "cat" / "0000.png")
    with pytest.raises(ValueError, match="32x32"):
        ml.load_cifar10(root)


def test_data_home_honours_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MANIFOLDLIB_DATA", str(tmp_path / "here"))
    assert ml.data.data_home() == tmp_path / "here" and (tmp_path / "here").is_dir()


def test_image_data_to_float64_carries_the_pixel_range():
    data = ml.load_mnist()
    d64 = data.to(torch.float64)
    assert d64.test_x.dtype == d64.train_x.dtype == torch.float64
    assert torch.equal(d64.test_x, data.test_x.double())
    lo, hi = d64.pixel_range
    assert lo.dtype == torch.float64 and torch.allclose(lo.float(), data.pixel_range[0])
    assert data.test_x.dtype == torch.float32  # a copy: the original is unchanged
    with pytest.raises(ValueError, match="dtype"):
        data.to(torch.int64)
