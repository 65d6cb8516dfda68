"""Image utilities: PSNR, Gaussian blur, PNG frames, and the frames shown along a path.

The conversions from model inputs to displayable pixels (:func:`to_pixel_array`,
:func:`image_png`) and the choice of evenly spaced frames along a path (:func:`frame_indices`)
are shared by :mod:`manifoldlib.plot` and :mod:`manifoldlib.widgets`.

Introduced in the chapters "The pipeline end to end" (book/00) and "Denoising along
horizontal paths" (book/14).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ._checks import check_positive, check_same_shape, check_tensor

__all__ = [
    "ToPixels",
    "best_blur",
    "frame_indices",
    "gaussian_blur",
    "image_png",
    "psnr",
    "to_pixel_array",
]

#: A map from model inputs to pixel values in [0, 1] (e.g. ``ImageData.to_pixels``).
ToPixels = Callable[[torch.Tensor], torch.Tensor]


def to_pixel_array(x: torch.Tensor, to_pixels: ToPixels | None = None) -> np.ndarray:
    """One model input as a displayable array of pixels in [0, 1].

    Args:
        x: ``(C, H, W)`` a model input (C = 1 or 3).
        to_pixels: map to pixel values in [0, 1]; default: min-max scaling of ``x``.

    Returns:
        ``(H, W)`` for one channel, ``(H, W, C)`` otherwise.

    Introduced in the chapter "The pipeline end to end".
    """
    x = x.detach().cpu()
    x = to_pixels(x) if to_pixels is not None else (x - x.min()) / (x.max() - x.min() + 1e-12)
    x = x.clamp(0, 1)
    return x[0].numpy() if x.shape[0] == 1 else x.permute(1, 2, 0).numpy()


def image_png(x: torch.Tensor, to_pixels: ToPixels | None = None, scale: int = 4) -> bytes:
    """One image as PNG bytes, upscaled by an integer factor (nearest neighbour).

    Args:
        x: ``(C, H, W)`` a model input (C = 1 or 3).
        to_pixels: map to pixel values in [0, 1] (e.g. ``data.to_pixels``); default: min-max.
        scale: integer upscaling factor.

    Returns:
        The PNG file's bytes.

    Introduced in the chapter "An interactive explorer".
    """
    from PIL import Image

    check_tensor(x, "x", min_dim=3)
    check_positive(scale, "scale", integer=True)
    x = x.detach().cpu().float()
    x = to_pixels(x) if to_pixels is not None else (x - x.min()) / (x.max() - x.min() + 1e-12)
    a = (x.clamp(0, 1) * 255).round().to(torch.uint8)
    arr = a[0].numpy() if a.shape[0] == 1 else a.permute(1, 2, 0).numpy()
    im = Image.fromarray(np.ascontiguousarray(arr))
    im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    im.save(buf, format="png", optimize=True)
    return buf.getvalue()


def frame_indices(n_records: int, frames: int | Sequence[int]) -> list[int]:
    """Which records of a path to show: ``frames`` evenly spaced ones, ends included.

    Args:
        n_records: number of records of the path (``PathResult.points.shape[0]``).
        frames: how many frames (at most ``n_records``), or the record indices themselves.

    Returns:
        Sorted distinct record indices (or ``frames`` itself as a list).

    Introduced in the chapter "The pipeline end to end".
    """
    if isinstance(frames, int):
        return sorted({round(i) for i in np.linspace(0, n_records - 1, min(frames, n_records))})
    return list(frames)


def psnr(estimate: torch.Tensor, clean: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image, ``10 log10(range^2 / MSE)`` in dB.

    Args:
        estimate: ``(B, *image_shape)`` images in pixel units (e.g. ``data.to_pixels(x)``).
        clean: ``(B, *image_shape)`` the clean images, same units.
        data_range: the span of pixel values (1 for pixels in ``[0, 1]``).

    Returns:
        ``(B,)`` PSNR values (infinite for a perfect estimate).

    Introduced in the chapter "Denoising along horizontal paths".
    """
    check_tensor(estimate, "estimate", min_dim=2)
    check_tensor(clean, "clean", min_dim=2)
    check_same_shape(clean, estimate, "clean", "estimate")
    check_positive(data_range, "data_range")
    mse = (estimate.double() - clean.double()).flatten(1).pow(2).mean(1)
    return (10 * torch.log10(data_range**2 / mse)).to(estimate.dtype)


def _gaussian_kernel(sigma: float, dtype: torch.dtype) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(dtype)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur each channel with a Gaussian of standard deviation ``sigma`` pixels.

    Separable (rows, then columns), truncated at ``3 sigma`` and renormalised, with zero
    padding: the background of MNIST is 0 in pixel units, so pass pixel images, not normalised
    ones.

    Args:
        images: ``(B, C, H, W)`` images.
        sigma: standard deviation in pixels; ``sigma = 0`` returns the images unchanged.

    Returns:
        ``(B, C, H, W)`` blurred images.

    Introduced in the chapter "Denoising along horizontal paths".
    """
    check_tensor(images, "images", min_dim=4)
    if images.dim() != 4:
        raise ValueError(f"images must have shape (B, C, H, W), got {tuple(images.shape)}")
    if isinstance(sigma, bool) or not isinstance(sigma, (int, float)):
        raise TypeError(f"sigma must be a number, got {type(sigma).__name__}")
    if not (sigma >= 0 and math.isfinite(sigma)):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma!r}")
    if sigma == 0:
        return images.clone()
    k = _gaussian_kernel(float(sigma), images.dtype).to(images.device)
    c, r = images.shape[1], k.numel() // 2
    rows = k.view(1, 1, 1, -1).expand(c, 1, 1, -1)
    cols = k.view(1, 1, -1, 1).expand(c, 1, -1, 1)
    out = torch.nn.functional.conv2d(images, rows, padding=(0, r), groups=c)
    return torch.nn.functional.conv2d(out, cols, padding=(r, 0), groups=c)


def best_blur(noisy: torch.Tensor, clean: torch.Tensor, sigmas: Sequence[float]) -> float:
    """The blur width with the highest mean PSNR on a tuning batch (an oracle-tuned baseline).

    Args:
        noisy: ``(B, C, H, W)`` noisy pixel images.
        clean: ``(B, C, H, W)`` their clean versions (tuning data, not the test images).
        sigmas: candidate widths.

    Returns:
        The best ``sigma``.

    Introduced in the chapter "Denoising along horizontal paths".
    """
    if len(sigmas) == 0:
        raise ValueError("sigmas must hold at least one width")
    scores = [float(psnr(gaussian_blur(noisy, s).clamp(0, 1), clean).mean()) for s in sigmas]
    return float(sigmas[int(np.argmax(scores))])
