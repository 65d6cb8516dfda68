"""Lengths of paths measured with the local data matrix: the leaf as a Riemannian manifold.

Section 3 of the paper equips each leaf with the metric ``G(x, w)`` restricted to ``D_x``.
``G`` is the pull-back of the Fisher metric of the categorical distributions by
``x -> p(.|x, w)``: ``delta^T G delta = sum_i (d p_i)^2 / p_i`` to first order. So the G-length of
a path equals the Fisher-Rao length of the curve its predictions trace on the simplex, which
is at least the Fisher-Rao distance ``2 arccos sum_i sqrt(p_i q_i)`` between its endpoints'
predictions (at most pi).

Introduced in the chapter "Leaf pieces as Riemannian manifolds" (book/16).
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import (
    CHUNK,
    check_finite,
    check_input,
    check_positive,
    check_same_shape,
    check_tensor,
)
from .geometry import local_data_lowrank

__all__ = ["euclidean_lengths", "fisher_rao_distance", "metric_lengths", "prediction_path_length"]


def _check_points(points: torch.Tensor) -> None:
    check_tensor(points, "points", min_dim=3)
    check_finite(points, "points")
    if points.shape[0] < 2:
        raise ValueError(f"points must hold at least 2 records (R, B, ...), got {points.shape[0]}")


def euclidean_lengths(points: torch.Tensor) -> torch.Tensor:
    """Euclidean length of each segment of a batch of polygonal paths.

    Args:
        points: ``(R, B, *input_shape)`` the recorded points (e.g. ``PathResult.points``).

    Returns:
        ``(R - 1, B)`` segment lengths ``||x_{t+1} - x_t||``.

    Introduced in the chapter "Leaf pieces as Riemannian manifolds".
    """
    _check_points(points)
    return (points[1:] - points[:-1]).flatten(2).norm(dim=2)


def metric_lengths(
    model: nn.Module, points: torch.Tensor, *, rule: str = "left", chunk: int = CHUNK
) -> torch.Tensor:
    """G-length of each segment: ``sqrt(delta^T G(x_t, w) delta)``, ``delta = x_{t+1} - x_t``.

    Summed over the segments this is a Riemann sum of ``int sqrt(x'^T G(x) x') dt``; it
    converges to the G-length of the path as the steps shrink.

    Args:
        model: classifier returning scores ``(B, C)``.
        points: ``(R, B, *input_shape)`` recorded points of B paths.
        rule: ``"left"`` evaluates G at ``x_t``, ``"right"`` at ``x_{t+1}``, ``"mean"`` averages
            the two lengths (trapezoid rule; twice the cost).
        chunk: points per batched Jacobian.

    Returns:
        ``(R - 1, B)`` segment lengths (float64).

    Introduced in the chapter "Leaf pieces as Riemannian manifolds".
    """
    check_tensor(points, "points", min_dim=3)
    check_input(model, points[0], "points")  # model, dtype and device before the values
    _check_points(points)
    if rule not in ("left", "right", "mean"):
        raise ValueError(f"rule must be 'left', 'right' or 'mean', got {rule!r}")
    check_positive(chunk, "chunk", integer=True)
    shape = points.shape[2:]
    delta = (points[1:] - points[:-1]).reshape(-1, *shape)

    def at(base: torch.Tensor) -> torch.Tensor:
        base = base.reshape(-1, *shape)
        q = [
            local_data_lowrank(model, b).quadratic(d).double()
            for b, d in zip(base.split(chunk), delta.split(chunk), strict=True)
        ]
        return torch.cat(q).clamp_min(0).sqrt().reshape(points.shape[0] - 1, points.shape[1])

    if rule == "left":
        return at(points[:-1])
    if rule == "right":
        return at(points[1:])
    return 0.5 * (at(points[:-1]) + at(points[1:]))


def fisher_rao_distance(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Fisher-Rao distance ``2 arccos sum_i sqrt(p_i q_i)`` between categorical distributions.

    The geodesic distance of the Fisher metric on the probability simplex (the simplex maps
    isometrically onto a sphere of radius 2 by ``p -> 2 sqrt(p)``); it lies in ``[0, pi]``.

    Args:
        p: ``(..., C)`` probabilities.
        q: ``(..., C)`` probabilities, same shape.

    Returns:
        ``(...)`` distances, float64.

    Introduced in the chapter "Leaf pieces as Riemannian manifolds".
    """
    check_tensor(p, "p")
    check_tensor(q, "q")
    check_same_shape(p, q, "p", "q")
    if bool((p < 0).any()) or bool((q < 0).any()):
        raise ValueError("p and q must be probabilities (non-negative)")
    bc = (p.double() * q.double()).sqrt().sum(-1).clamp(0.0, 1.0)
    return 2 * torch.arccos(bc)


def prediction_path_length(probabilities: torch.Tensor) -> torch.Tensor:
    """Fisher-Rao length of the polygon of predictions along each path.

    ``sum_t d_FR(p_t, p_{t+1})``: needs only the model's probabilities at the recorded points
    (``PathResult.class_probabilities``), no Jacobian. For small steps it agrees with the sum of
    :func:`metric_lengths`, because G is the pull-back of the Fisher metric.

    Args:
        probabilities: ``(R, B, C)`` probabilities at the recorded points.

    Returns:
        ``(B,)`` lengths, float64.

    Introduced in the chapter "Leaf pieces as Riemannian manifolds".
    """
    check_tensor(probabilities, "probabilities", min_dim=3)
    if probabilities.shape[0] < 2:
        raise ValueError("probabilities must hold at least 2 records (R, B, C)")
    return fisher_rao_distance(probabilities[1:], probabilities[:-1]).sum(0)
