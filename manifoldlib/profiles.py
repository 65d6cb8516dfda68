"""Profiles: one switch between the book's sizes (CPU, minutes) and the paper's (GPU, hours).

Set ``MANIFOLDLIB_PROFILE=paper`` before starting Jupyter (or pytest) to run every chapter at
the paper's sizes; the default ``book`` uses the embedded MNIST and sizes that run on a
2-core CPU in minutes. Chapters read their sizes with :meth:`Profile.pick`.

Introduced in the chapter "The pipeline end to end" (book/00).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TypeVar

import torch

from .training import TrainConfig

__all__ = ["PROFILES", "Profile", "current_profile", "default_device"]

T = TypeVar("T")
PROFILES = ("book", "paper")
#: Epochs of the book profile's MNIST CNN.
BOOK_MNIST_EPOCHS = 40
#: The checkpoint the MNIST chapters use, on both profiles (the paper's epoch 10).
MNIST_EPOCH = 10
#: Maximum random shift (pixels, each direction) of the paper-like checkpoint's training images.
PAPER_LIKE_SHIFT = 2
#: Activations of chapter 3's MNIST MLPs (:meth:`Profile.mnist_mlp_config`).
MLP_ACTIVATIONS = ("relu", "gelu", "tanh", "sigmoid")


@dataclass(frozen=True)
class Profile:
    """The sizes shared by the chapters.

    Attributes:
        name: ``"book"`` or ``"paper"``.
        mnist_source: argument for :func:`manifoldlib.load_mnist`.
        threads: torch threads used for training (fixed so that weights are reproducible on a
            given CPU), or None to leave torch's default.
        device: where chapters compute (CUDA when present on the paper profile).
    """

    name: str
    mnist_source: str
    threads: int | None
    device: str

    def pick(self, *, book: T, paper: T) -> T:
        """Return ``book`` or ``paper`` according to the profile.

        Args:
            book: the value for the book profile.
            paper: the value for the paper profile.

        Returns:
            One of the two.
        """
        return book if self.name == "book" else paper

    def mnist_config(self) -> TrainConfig:
        """The MNIST CNN that every MNIST chapter shares (trained once, then cached).

        Book: the embedded 4,000 training digits, SGD batch 60, lr 0.01 (the paper's
        settings), 40 epochs (2,680 steps), with the exact mean trace of G tracked on the first
        256 training images every 34 steps (about twice per epoch). Paper: full MNIST, 30 epochs, trace on 1,000 images ten times per
        epoch (1,000 steps), as the paper's code.

        Returns:
            The :class:`~manifoldlib.training.TrainConfig`.
        """
        if self.name == "book":
            return TrainConfig(
                arch="mnist_cnn",
                source="embedded",
                epochs=BOOK_MNIST_EPOCHS,
                trace_every=34,
                trace_batch=256,
                threads=self.threads,
            )
        return TrainConfig(
            arch="mnist_cnn",
            source="torchvision",
            epochs=30,
            trace_every=100,
            trace_batch=1000,
            threads=self.threads,
        )

    def mnist_mlp_config(self, activation: str = "relu") -> TrainConfig:
        """Chapter 3's MNIST MLP 784-64-64-10 with the given activation (trained once, cached).

        SGD batch 60, lr 0.05, momentum 0.9, 10 epochs, one torch thread, on the profile's
        MNIST source. The ReLU one is also the model of the live digit page and of the orbit
        study; every caller builds it here so that they share one cache key (the ReLU key on
        the book profile is ``mlp-53999af314fb0895``).

        Introduced in the chapter "Why ReLU networks foliate, region by region" (book/03).

        Args:
            activation: ``"relu"``, ``"gelu"``, ``"tanh"`` or ``"sigmoid"``.

        Returns:
            The :class:`~manifoldlib.training.TrainConfig`; load its epoch 10.

        Raises:
            ValueError: ``activation`` is not one of the four.
        """
        if activation not in MLP_ACTIVATIONS:
            raise ValueError(f"activation must be one of {MLP_ACTIVATIONS}, got {activation!r}")
        return TrainConfig(
            arch="mlp",
            arch_kwargs=(
                ("in_features", 784),
                ("hidden", (64, 64)),
                ("num_classes", 10),
                ("activation", activation),
            ),
            dataset="mnist",
            source=self.mnist_source,
            epochs=10,
            batch_size=60,
            lr=0.05,
            momentum=0.9,
            threads=1,
        )

    def paper_like_config(self) -> TrainConfig:
        """The MNIST CNN trained like the paper's checkpoint, on the data the book has offline.

        The paper's code (``mnist_training.py`` of :cite:t:`grementieri2021code`) trains the
        same CNN with SGD, lr 0.01, batch 60, no momentum, on the 60,000 MNIST training digits,
        and its figures use ``medium_cnn_10``: 10 epochs of 1,000 steps, so 10,000 SGD steps,
        recording the mean trace of G every 100 steps on the first 1,000 training images.

        Book profile: the same settings and the same 10,000 steps (10 epochs of 1,000 steps,
        each epoch walking through 15 seeded permutations of the embedded 4,000 training
        digits), every image shifted at random by up to 2 pixels in each direction
        (:data:`PAPER_LIKE_SHIFT`, 25 positions: about 100,000 distinct inputs, so that each
        input is seen about as often as a digit in the paper's 10 epochs instead of 150 times),
        one torch thread, and the trace every 100 steps on 1,000 training images, every 4th
        of the class-sorted embedded set (100 per class), estimated with one backward pass per
        image (eq. 11, with its standard error) instead of the code's exact C passes: exact
        traces at that interval would cost more CPU time than the 10,000 steps themselves. The paper's own checkpoint file is not
        available: its repository keeps it in Git LFS. Paper profile: :meth:`mnist_config`,
        whose epoch 10 is step 10,000 of the paper's run.

        Introduced in the chapter "Training and the trace of G" (book/05).

        Returns:
            The :class:`~manifoldlib.training.TrainConfig`; load its epoch 10
            (:attr:`mnist_epoch`).
        """
        if self.name != "book":
            return self.mnist_config()
        return TrainConfig(
            arch="mnist_cnn",
            source="embedded",
            epochs=MNIST_EPOCH,
            epoch_steps=1000,
            shift=PAPER_LIKE_SHIFT,
            trace_every=100,
            trace_batch=1000,
            trace_stride=4,
            trace_method="mc",
            threads=1,
        )

    @property
    def mnist_epoch(self) -> int:
        """The checkpoint the MNIST chapters use (the paper: epoch 10, step 10,000).

        Chosen by the paper's criterion: an epoch at which the smoothed mean trace of G is
        still on its plateau, before it falls at the end of training. On the book profile the
        criterion admits epochs 8-18 (measured in the chapter "Training and the trace of G");
        epoch 10 is inside that window, like the paper's step 10,000 (epoch 10 of 30).
        """
        return MNIST_EPOCH


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def current_profile() -> Profile:
    """The profile named by ``$MANIFOLDLIB_PROFILE`` (default ``book``).

    Returns:
        The :class:`Profile`.

    Raises:
        ValueError: the variable names an unknown profile.
    """
    name = os.environ.get("MANIFOLDLIB_PROFILE", "book").strip().lower() or "book"
    if name not in PROFILES:
        raise ValueError(f"MANIFOLDLIB_PROFILE must be one of {PROFILES}, got {name!r}")
    if name == "book":
        # The book runs on CPUs: fixed thread count for bit-reproducible training there.
        return Profile(name="book", mnist_source="embedded", threads=2, device="cpu")
    return Profile(name="paper", mnist_source="torchvision", threads=None, device=default_device())
