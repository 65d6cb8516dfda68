"""Adversarial directions seen through the leaf (paper, section 5, "Adversarial Attacks").

The Fast Gradient Sign Method (Goodfellow et al., 2015) perturbs an image by
``eps * sign(grad_x loss)``. The paper remarks that ``sign(grad_x log p_y)`` does not lie in
``D_x = (ker G)^perp``: part of an FGSM step moves *across* the leaves, where by eq. (8) the
prediction does not change to second order. These helpers measure how large that part is
and what each part of a step does to the prediction.

Introduced in the chapter "Adversarial directions along and across leaf pieces" (book/15).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from . import _jacobian as _jac
from ._checks import (
    check_input,
    check_like,
    eval_mode,
)
from .geometry import LowRankPSD

__all__ = ["LeafSplit", "fgsm_direction", "leaf_split", "ossa_direction", "prediction_change"]


def _check_labels(y: torch.Tensor, x: torch.Tensor, num_classes: int | None = None) -> None:
    if not isinstance(y, torch.Tensor) or y.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"y must be an integer tensor of class labels, got {type(y).__name__}")
    if y.shape != (x.shape[0],):
        raise ValueError(f"y must have shape (B,) = ({x.shape[0]},), got {tuple(y.shape)}")
    if num_classes is not None and bool(((y < 0) | (y >= num_classes)).any()):
        raise ValueError(f"y must hold labels in [0, {num_classes}), got {y.tolist()[:8]}...")


def fgsm_direction(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The untargeted FGSM direction ``sign(grad_x loss) = -sign(grad_x log p_y(y|x, w))``.

    Moving along it lowers the log-probability of class ``y`` fastest under an L-infinity
    budget (the cross-entropy loss is ``-log p_y``).

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        y: ``(B,)`` the classes to attack (the labels, or the model's predictions).

    Returns:
        ``(B, *input_shape)`` entries in ``{-1, 0, 1}``.

    Introduced in the chapter "Adversarial directions along and across leaf pieces".
    """
    check_input(model, x)

    def onehot(logp: torch.Tensor) -> torch.Tensor:  # (1, B, C)
        _check_labels(y, x, logp.shape[1])
        return F.one_hot(y.long(), logp.shape[1]).unsqueeze(0)

    with eval_mode(model):
        grad = _jac.logprob_vjp(model, x, onehot)[0][0]
    return -grad.sign()


@dataclass
class LeafSplit:
    """A batch of vectors split into their parts along the leaf and across it.

    Attributes:
        tangent: ``(B, *input_shape)`` the orthogonal projection on ``D_x``.
        kernel: ``(B, *input_shape)`` the projection on ``ker G(x, w)``.

    Introduced in the chapter "Adversarial directions along and across leaf pieces".
    """

    tangent: torch.Tensor
    kernel: torch.Tensor

    def tangent_share(self) -> torch.Tensor:
        """``(B,)`` share of the squared norm in ``D_x``: ``||P v||^2 / ||v||^2``."""
        t = self.tangent.flatten(1).pow(2).sum(1)
        return t / (t + self.kernel.flatten(1).pow(2).sum(1)).clamp_min(1e-300)

    def kernel_share(self) -> torch.Tensor:
        """``(B,)`` share of the squared norm in ``ker G``."""
        return 1 - self.tangent_share()

    def angle_degrees(self) -> torch.Tensor:
        """``(B,)`` angle between each vector and ``D_x``, in degrees (0: inside D_x)."""
        return torch.rad2deg(torch.arccos(self.tangent_share().clamp(0, 1).sqrt()))


def leaf_split(
    model: nn.Module, x: torch.Tensor, *vectors: torch.Tensor, rtol: float | None = None
) -> list[LeafSplit]:
    """Split one or more batches of vectors into ``D_x`` and ``ker G`` parts (one Jacobian).

    Args:
        model: classifier returning scores ``(B, C)``.
        x: base points ``(B, *input_shape)``.
        *vectors: batches ``(B, *input_shape)`` to split, all at the same points.
        rtol: relative tolerance for degenerate gradients (see ``LowRankPSD.rank``).

    Returns:
        One :class:`LeafSplit` per batch of vectors.

    Introduced in the chapter "Adversarial directions along and across leaf pieces".
    """
    check_input(model, x)
    if not vectors:
        raise ValueError("leaf_split needs at least one batch of vectors")
    for k, v in enumerate(vectors):
        check_like(x, v, "x", f"vectors[{k}]")
    with eval_mode(model):
        rows, _ = _jac.difference_jacobian(model, x)  # C - 1 backward passes for every batch
    out = []
    for v in vectors:
        t = _jac.project(rows, v, rtol, differences=True)
        out.append(LeafSplit(t, v - t))
    return out


def prediction_change(
    model: nn.Module, x: torch.Tensor, delta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """How much a step changes the prediction: ``KL(p(.|x + delta) || p(.|x))`` and flips.

    Eq. (8) predicts ``KL = 1/2 delta^T G(x, w) delta + O(|delta|^3)`` (the paper prints it
    without the 1/2; the factor is that of every second-order expansion of KL).

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        delta: steps ``(B, *input_shape)``.

    Returns:
        ``kl`` ``(B,)`` (float64) and ``flipped`` ``(B,)`` bool: the predicted class changed.

    Introduced in the chapter "Adversarial directions along and across leaf pieces".
    """
    check_input(model, x)
    check_like(x, delta, "x", "delta")
    with torch.no_grad(), eval_mode(model):
        lp = _jac.forward_log_probs(model, x).double()
        lq = _jac.forward_log_probs(model, x + delta).double()
    kl = F.kl_div(lp, lq, log_target=True, reduction="none").sum(1).clamp_min(0)
    return kl, lq.argmax(1) != lp.argmax(1)


def ossa_direction(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The one-step spectral attack (OSSA) of Zhao et al. (2019): top eigenvector of G.

    Zhao et al. attack along the eigenvector of the Fisher information matrix of the input,
    ``G(x, w) = sum_i p_i grad log p_i grad log p_i^T`` (the local data matrix of eq. 6), with
    the largest eigenvalue: the unit direction of the largest second-order KL divergence
    ``1/2 delta^T G delta``. The eigenvector's sign is free; it is chosen so that the step
    raises the loss ``-log p_y`` to first order (``<v, -grad log p_y> >= 0``). The direction lies
    in ``D_x`` by construction.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(B, *input_shape)``.
        y: ``(B,)`` the classes to attack (the labels, or the model's predictions).

    Returns:
        ``(B, *input_shape)`` unit vectors (Euclidean norm 1).

    Introduced in the chapter "Adversarial directions along and across leaf pieces".
    """
    check_input(model, x)
    _check_labels(y, x)
    # One set of C - 1 difference rows R = H^T S gives both G's factor and grad log p_y:
    # grad log p_y = (e_y - p)^T S = ((e_y - p)^T H) R, since e_y - p sums to zero and H's
    # columns span the vectors that do.
    with eval_mode(model):
        rows, logp = _jac.difference_jacobian(model, x)
    classes = logp.shape[1]
    _check_labels(y, x, classes)
    h = _jac.helmert(classes, rows.dtype, rows.device)
    coef = (F.one_hot(y.long(), classes).to(rows.dtype) - logp.exp().to(rows.dtype)) @ h
    grad = torch.einsum("bk,bk...->b...", coef, rows)  # grad log p_y, (B, *input_shape)
    factor = _jac.metric_factor(rows, logp, differences=True)  # overwrites rows
    _, vecs = LowRankPSD(factor=factor, shape=tuple(x.shape[1:])).eigh()
    top = vecs[:, 0]  # (B, *input_shape), unit norm
    slope = -(top.flatten(1) * grad.flatten(1)).sum(1)  # d(-log p_y) along top
    sign = torch.where(slope >= 0, 1.0, -1.0).to(top.dtype)
    return top * sign.view(-1, *[1] * (x.dim() - 1))
