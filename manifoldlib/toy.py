"""Deterministic toy data sets in 2-D and 3-D, where leaves can be drawn.

Three named data sets, each generated from a seed (no file, no download):

- ``"moons"``: two interleaving half-circles in the plane (C = 2, n = 2). With two classes
  ``D_x = span{grad(s_1 - s_2)}`` is a line field, so the leaves are curves.
- ``"blobs2d"``: three Gaussian blobs in the plane (C = 3, n = 2). Here ``rank G = 2 = n``: D_x
  is the whole plane and there is a single leaf.
- ``"blobs3d"``: three Gaussian blobs in space (C = 3, n = 3). ``D_x`` is a plane field and
  the leaves (when they exist) are surfaces; ``ker G`` is a line field.

:func:`load_toy` returns a :class:`ToyData` with the attributes that
:func:`manifoldlib.training.train` uses (``train_x``, ``train_y``, ``test_x``, ``test_y``),
so ``TrainConfig(dataset="toy", source="moons", arch="mlp", ...)`` trains and caches a toy
classifier with :func:`manifoldlib.cached_train`.

Introduced in the chapter "Foliations you can see" (book/04).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .data import _LabelledSplits

__all__ = ["TOY_DATASETS", "ToyData", "load_toy", "make_blobs", "make_moons"]

#: Names accepted by :func:`load_toy`, with (input dimension, number of classes).
TOY_DATASETS: dict[str, tuple[int, int]] = {"moons": (2, 2), "blobs2d": (2, 3), "blobs3d": (3, 3)}

#: Centres of the named blob data sets (well separated, but with some overlap at std 0.6).
_BLOB_CENTERS = {
    "blobs2d": ((1.5, 0.0), (-0.75, 1.3), (-0.75, -1.3)),
    "blobs3d": ((1.5, 0.0, 0.6), (-0.75, 1.3, -0.6), (-0.75, -1.3, 0.0)),
}


@dataclass
class ToyData(_LabelledSplits):
    """A labelled toy data set of points in ``R^n``, split into train and test.

    Attributes:
        name: one of :data:`TOY_DATASETS`.
        train_x: ``(N, n)`` float32 points.
        train_y: ``(N,)`` int64 labels in ``0 .. C-1``.
        test_x: ``(M, n)`` float32 points.
        test_y: ``(M,)`` int64 labels.
        classes: class names in label order.
        source: how the data were made (name and seed).
    """

    source: str

    @property
    def num_classes(self) -> int:
        """Number of classes ``C``."""
        return len(self.classes)

    def __repr__(self) -> str:
        return (
            f"ToyData({self.name!r}, train={len(self.train_y)}, test={len(self.test_y)}, "
            f"n={self.input_shape[0]}, C={self.num_classes})"
        )


def _check_count(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_noise(value: float, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not (0 <= value < float("inf")):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


def make_moons(
    n_per_class: int, *, noise: float = 0.15, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half-circles in the plane, centred near the origin.

    Class 0 is the upper arc ``(cos t, sin t)``, class 1 the lower arc
    ``(1 - cos t, 0.5 - sin t)``, ``t`` uniform in ``[0, pi]``, both shifted by
    ``(-0.5, -0.25)`` and scaled by 1.5, plus isotropic Gaussian noise.

    Args:
        n_per_class: points per class.
        noise: standard deviation of the Gaussian noise (before scaling).
        seed: seed of the generator (same seed, same points).

    Returns:
        ``x`` ``(2 n_per_class, 2)`` float32 and ``y`` ``(2 n_per_class,)`` int64, classes
        interleaved (0, 1, 0, 1, ...).

    Introduced in the chapter "Foliations you can see".
    """
    _check_count(n_per_class, "n_per_class")
    _check_noise(noise, "noise")
    gen = torch.Generator().manual_seed(seed)
    t = torch.rand(2, n_per_class, generator=gen, dtype=torch.float64) * math.pi
    upper = torch.stack([t[0].cos(), t[0].sin()], 1)
    lower = torch.stack([1 - t[1].cos(), 0.5 - t[1].sin()], 1)
    x = torch.stack([upper, lower], 1).reshape(-1, 2)  # interleave the classes
    x = x + noise * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    x = 1.5 * (x - torch.tensor([0.5, 0.25], dtype=torch.float64))
    y = torch.arange(2).repeat(n_per_class)
    return x.float(), y


def make_blobs(
    centers: torch.Tensor | tuple[tuple[float, ...], ...],
    n_per_class: int,
    *,
    std: float = 0.6,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Isotropic Gaussian blobs, one class per centre.

    Args:
        centers: ``(C, n)`` class centres.
        n_per_class: points per class.
        std: standard deviation of every blob.
        seed: seed of the generator.

    Returns:
        ``x`` ``(C n_per_class, n)`` float32 and ``y`` ``(C n_per_class,)`` int64, classes
        interleaved (0, 1, ..., C-1, 0, 1, ...).

    Introduced in the chapter "Foliations you can see".
    """
    _check_count(n_per_class, "n_per_class")
    _check_noise(std, "std")
    c = torch.as_tensor(centers, dtype=torch.float64)
    if c.dim() != 2 or c.shape[0] < 2:
        raise ValueError(f"centers must have shape (C, n) with C >= 2, got {tuple(c.shape)}")
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(n_per_class, *c.shape, generator=gen, dtype=torch.float64)
    x = (c.unsqueeze(0) + std * noise).reshape(-1, c.shape[1])
    y = torch.arange(c.shape[0]).repeat(n_per_class)
    return x.float(), y


def load_toy(
    name: str, *, n_train_per_class: int = 250, n_test_per_class: int = 100, seed: int = 0
) -> ToyData:
    """One of the named toy data sets, train and test drawn from the same seed.

    Args:
        name: ``"moons"``, ``"blobs2d"`` or ``"blobs3d"`` (see :data:`TOY_DATASETS`).
        n_train_per_class: training points per class.
        n_test_per_class: test points per class.
        seed: seed of the generator.

    Returns:
        A :class:`ToyData`.

    Introduced in the chapter "Foliations you can see".
    """
    if name not in TOY_DATASETS:
        raise ValueError(f"name must be one of {sorted(TOY_DATASETS)}, got {name!r}")
    _check_count(n_train_per_class, "n_train_per_class")
    _check_count(n_test_per_class, "n_test_per_class")
    total = n_train_per_class + n_test_per_class
    if name == "moons":
        x, y = make_moons(total, seed=seed)
    else:
        x, y = make_blobs(_BLOB_CENTERS[name], total, seed=seed)
    c = TOY_DATASETS[name][1]
    split = n_train_per_class * c  # classes are interleaved, so both splits are balanced
    return ToyData(
        name=name,
        train_x=x[:split],
        train_y=y[:split],
        test_x=x[split:],
        test_y=y[split:],
        classes=tuple(str(k) for k in range(c)),
        source=f"{name}(seed={seed})",
    )
