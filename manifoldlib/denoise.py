"""Denoising baselines for the leaf-returning denoiser, and paired comparisons.

The chapter on denoising measures the paper's proposal (return a noisy image to the data leaf,
:func:`manifoldlib.leaf_projection`) against what a reviewer would try first, all fitted on the
same training digits and none using the model:

- retrieval: :func:`knn_denoise` (the nearest training image, or the mean of the ``k``
  nearest);
- linear: :func:`fit_pca` and :func:`pca_denoise` (projection on the top principal
  components of the training images);
- local filters: :func:`median_filter` (beside :func:`manifoldlib.gaussian_blur`);
- learnt: :class:`DenoisingAutoencoder` and :func:`train_denoising_autoencoder` (Vincent et
  al., 2008), a small fully connected network trained, seeded and deterministic, on
  isotropic noise of random norms;
- statistics: :func:`paired_difference`, the mean per-image difference of two methods' PSNR
  with its standard error.

All functions work on pixel images in ``[0, 1]`` of shape ``(B, 1, H, W)`` unless stated.

Introduced in the chapter "Denoising along horizontal paths".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ._checks import check_finite, check_positive, check_same_shape, check_tensor
from .leaf import _squared_distances

__all__ = [
    "DenoisingAutoencoder",
    "PCABasis",
    "fit_pca",
    "knn_denoise",
    "median_filter",
    "paired_difference",
    "pca_denoise",
    "train_denoising_autoencoder",
]


def knn_denoise(
    noisy: torch.Tensor, bank: torch.Tensor, *, k: int = 1, chunk: int = 256
) -> torch.Tensor:
    """Replace each image by the mean of its ``k`` nearest bank images (Euclidean).

    ``k = 1`` is pure retrieval: the output is a training image. Computed in float64.

    Args:
        noisy: ``(B, *shape)`` images.
        bank: ``(N, *shape)`` training images (same units), ``N >= k``.
        k: number of neighbours averaged.
        chunk: queries per distance matrix.

    Returns:
        ``(B, *shape)`` estimates, dtype of ``noisy``.

    Introduced in the chapter "Denoising along horizontal paths".
    """
    check_tensor(noisy, "noisy", min_dim=2)
    check_tensor(bank, "bank", min_dim=2)
    check_positive(k, "k", integer=True)
    if noisy.shape[1:] != bank.shape[1:]:
        raise ValueError(f"noisy and bank shapes differ: {noisy.shape[1:]} vs {bank.shape[1:]}")
    if k > bank.shape[0]:
        raise ValueError(f"k = {k} exceeds the bank size {bank.shape[0]}")
    b = bank.flatten(1).double()
    out = []
    for d2, _ in _squared_distances(noisy, bank, chunk):
        idx = d2.topk(k, dim=1, largest=False).indices
        out.append(b[idx].mean(1))
    return torch.cat(out).view_as(noisy).to(noisy.dtype)


@dataclass
class PCABasis:
    """Mean and principal directions of a set of images.

    Attributes:
        mean: ``(n,)`` mean image, flattened.
        components: ``(n, d)`` orthonormal principal directions, by decreasing variance.
    """

    mean: torch.Tensor
    components: torch.Tensor


def fit_pca(bank: torch.Tensor, dim: int) -> PCABasis:
    """Principal component analysis of images (SVD of the centred data, float64).

    Args:
        bank: ``(N, *shape)`` training images.
        dim: number of components kept, ``<= min(N, n)``.

    Returns:
        A :class:`PCABasis`.

    Introduced in the chapter "Denoising along horizontal paths".
    """
    check_tensor(bank, "bank", min_dim=2)
    check_positive(dim, "dim", integer=True)
    flat = bank.flatten(1).double()
    if dim > min(flat.shape):
        raise ValueError(f"dim = {dim} exceeds min(N, n) = {min(flat.shape)}")
    mean = flat.mean(0)
    _, _, vh = torch.linalg.svd(flat - mean, full_matrices=False)
    return PCABasis(mean=mean, components=vh[:dim].T.contiguous())


def pca_denoise(noisy: torch.Tensor, basis: PCABasis) -> torch.Tensor:
    """Project each image on the affine PCA subspace ``mean + span(components)``.

    Args:
        noisy: ``(B, *shape)`` images, ``n`` pixels each.
        basis: from :func:`fit_pca` on images of the same shape.

    Returns:
        ``(B, *shape)`` projections, dtype of ``noisy`` (not clipped).

    Introduced in the chapter "Denoising along horizontal paths".
    """
    check_tensor(noisy, "noisy", min_dim=2)
    flat = noisy.flatten(1).double() - basis.mean
    if flat.shape[1] != basis.components.shape[0]:
        raise ValueError(
            f"images have {flat.shape[1]} pixels, the basis {basis.components.shape[0]}"
        )
    proj = flat @ basis.components @ basis.components.T + basis.mean
    return proj.view_as(noisy).to(noisy.dtype)


def median_filter(images: torch.Tensor, size: int = 3) -> torch.Tensor:
    """Median of each ``size x size`` neighbourhood, edges padded by repeating the border.

    The same as ``scipy.ndimage.median_filter(..., size=size, mode="nearest")`` per channel
    (the tests check it).

    Args:
        images: ``(B, C, H, W)`` images.
        size: odd window side.

    Returns:
        ``(B, C, H, W)`` filtered images.

    Introduced in the chapter "Denoising along horizontal paths".
    """
    check_tensor(images, "images", min_dim=4)
    check_positive(size, "size", integer=True)
    if images.dim() != 4 or size % 2 == 0:
        raise ValueError("images must be (B, C, H, W) and size odd")
    r = size // 2
    padded = torch.nn.functional.pad(images, (r, r, r, r), mode="replicate")
    windows = padded.unfold(2, size, 1).unfold(3, size, 1)  # (B, C, H, W, size, size)
    return windows.flatten(-2).median(dim=-1).values


class DenoisingAutoencoder(nn.Module):
    """A small fully connected denoising autoencoder (Vincent et al., 2008).

    ``n -> hidden -> bottleneck -> hidden -> n`` with ReLU and a sigmoid output (pixels in
    ``[0, 1]``).

    Args:
        n: pixels per image.
        hidden: width of the hidden layers.
        bottleneck: width of the code.
    """

    def __init__(self, n: int = 784, hidden: int = 256, bottleneck: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n, hidden),
            nn.ReLU(),
            nn.Linear(hidden, bottleneck),
            nn.ReLU(),
            nn.Linear(bottleneck, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoised pixels ``(B, *shape)`` for noisy pixels ``x`` ``(B, *shape)``."""
        return self.net(x.flatten(1)).view_as(x)


def _isotropic(x: torch.Tensor, norms: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    e = torch.randn(x.shape, generator=gen, dtype=x.dtype)
    e = e / e.flatten(1).norm(dim=1).view(-1, *([1] * (x.dim() - 1)))
    return (x + norms.view(-1, *([1] * (x.dim() - 1))) * e).clamp(0, 1)


def train_denoising_autoencoder(
    clean: torch.Tensor,
    *,
    max_norm: float,
    epochs: int = 30,
    batch_size: int = 100,
    lr: float = 1e-3,
    seed: int = 0,
    hidden: int = 256,
    bottleneck: int = 64,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    history: list[float] | None = None,
    dtype: torch.dtype = torch.float32,
) -> DenoisingAutoencoder:
    """Train a :class:`DenoisingAutoencoder` on clean pixel images, seeded and deterministic.

    Each time an image is drawn it gets fresh isotropic Gaussian noise whose norm (before
    clipping to ``[0, 1]``) is uniform in ``[0, max_norm]``, so the network also sees clean
    inputs; loss: mean squared error to the clean image; Adam. Initialisation, batches and
    noise all come from ``seed`` (bit-identical on one machine with one thread count).

    Args:
        clean: ``(N, 1, H, W)`` pixel images in ``[0, 1]``.
        max_norm: largest noise norm, in pixel units.
        epochs: passes over the images.
        batch_size: images per step.
        lr: Adam's learning rate.
        seed: seed of everything random.
        hidden: width of the hidden layers (see :class:`DenoisingAutoencoder`).
        bottleneck: width of the code.
        validation: optional ``(noisy, clean)`` pixel images ``(M, 1, H, W)`` each, held out
            from ``clean``: after every epoch the network's mean squared error on them is
            appended to ``history`` (it consumes no random numbers, so the weights are the
            same with or without it).
        history: list that receives one validation loss per epoch; required with
            ``validation``.
        dtype: the precision of the weights and of training, ``torch.float32`` or
            ``torch.float64``. In float64 the weights no longer depend on the CPU's kernels at
            any printed precision (float32 training amplifies their round-off: the short run
            of chapter 14 moved a mean PSNR by 0.1 dB under other kernels); the network then
            takes and returns float64 images. Same initial weights in both.

    Returns:
        The trained network, in eval mode.

    Introduced in the chapter "Denoising along horizontal paths".
    """
    check_tensor(clean, "clean", min_dim=2)
    check_finite(clean, "clean")
    check_positive(max_norm, "max_norm")
    check_positive(epochs, "epochs", integer=True)
    check_positive(batch_size, "batch_size", integer=True)
    if validation is not None:
        if history is None:
            raise ValueError("validation needs a history list to record its losses in")
        check_same_shape(validation[0], validation[1], "noisy", "clean")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DenoisingAutoencoder(n=clean[0].numel(), hidden=hidden, bottleneck=bottleneck)
    net = net.to(dtype)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    x_all = clean.to(dtype)
    for _ in range(epochs):
        order = torch.randperm(len(x_all), generator=gen)
        for idx in order.split(batch_size):
            x = x_all[idx]
            norms = max_norm * torch.rand(len(x), generator=gen)
            loss = (net(_isotropic(x, norms, gen)) - x).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if validation is not None:
            with torch.no_grad():
                err = net(validation[0].to(dtype)) - validation[1].to(dtype)
            history.append(float(err.pow(2).mean()))
    return net.eval()


def paired_difference(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Mean of ``a - b`` over paired measurements, and its standard error.

    For two methods measured on the same images (e.g. PSNR per image), the standard error of
    the mean difference is ``std(a_i - b_i) / sqrt(n)`` (sample std, ``n - 1``): smaller than
    that of either mean when the methods err on the same images.

    Args:
        a: ``(n,)`` measurements of the first method, ``n >= 2``.
        b: ``(n,)`` measurements of the second, same items.

    Returns:
        ``(mean difference, standard error)``.

    Introduced in the chapter "Denoising along horizontal paths".
    """
    check_tensor(a, "a")
    check_tensor(b, "b")
    if a.shape != b.shape or a.dim() != 1 or a.numel() < 2:
        raise ValueError("a and b must be (n,) with the same n >= 2")
    d = a.double() - b.double()
    check_finite(d, "a - b")
    return float(d.mean()), float(d.std() / math.sqrt(d.numel()))
