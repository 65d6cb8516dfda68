"""The paper's reference algorithms, re-implemented one image at a time, for comparison.

The paper's public code (github.com/lucagrementieri/model-manifold, compared at commit
41042a4c4f7cf702ca6c57fdd20d698c7ed46a52; the book's bibliography entry
``grementieri2021code``) computes each path step for one image with
``torch.autograd.functional.jacobian`` of the log-probabilities, normalises the C gradients
and projects by least squares on all C of them, builds a complete ``n x n`` QR factorisation
for the kernel projection, and measures the trace and rank of G with a Python loop over
samples. This module re-implements those methods (written anew, not copied) so that the book
and the benchmarks can compare them with manifoldlib side by side, on the same model and
inputs. What it re-implements, from ``model_manifold/inspect.py`` and
``model_manifold/data_matrix.py`` at that commit:

- ``path`` with ``project_tangent`` (``path_tangent``, Algorithm 1): :func:`reference_horizontal_path`
  and, for one step's projection, :func:`reference_projection`;
- ``constant_direction`` with ``project_kernel`` (``constant_direction_kernel``, section 4.2):
  :func:`reference_across_leaves_path`;
- ``local_data_matrix_trace_rank``: :func:`reference_trace_rank`.

Where it differs: the least-squares driver is fixed to ``gels`` (what the code's old
``torch.lstsq`` ran on CPU and CUDA until commit a93906d, and what ``torch.linalg.lstsq`` runs
on CUDA; at the compared commit its CPU default is ``gelsy``); the defaults are smaller
(``max_steps=1000`` where ``path_tangent`` has 10,000, ``steps=100`` where ``mnist_kernel.py``
passes 1,000); the clamp takes a ``(low, high)`` range (the code's ``domain_projection``
clamps to the normalised image of [0, 1], which ``ImageData.pixel_range`` gives); the loop
stops when the distance is below the threshold where the code's runs while it is above (the
two differ only at equality); and the scores pass through ``log_softmax`` here where the
code's network ends with a ``LogSoftmax`` layer. Not re-implemented: ``path_kernel`` and
``constant_direction_tangent`` (no figure of the paper uses them), ``local_data_matrix`` (the
full G: :mod:`manifoldlib.geometry` builds it), the training script ``mnist_training.py``
(:func:`manifoldlib.train` trains with its SGD settings), the CIFAR-10 VGG and its endpoint
rule (probability at most 0.99), and the plotting.

One difference between the code and the exact projection matters for the results, not only
for speed: the C gradients of
``log p`` are linearly dependent (eq. 4), but the gradient of the most probable class is
small and computed by cancellation, so in float32 it carries a round-off direction. After
normalisation that direction becomes a full column, and least squares on all C columns
projects on a C-dimensional space: D_x plus one spurious direction, mostly in ker G. The
float32 round-off is not the root cause: the C columns are dependent in any precision, and a
solver that assumes full column rank turns the round-off of float64 into a spurious column
too (measured near a stall point of Algorithm 1: 79% of the step outside D_x in float64,
82% in float32). The chapter "Horizontal paths between test images" measures the leak.

Introduced in the chapter "Horizontal paths between test images" (book/08) and used by
``benchmarks/``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.functional import jacobian

from ._checks import eval_mode

__all__ = [
    "reference_across_leaves_path",
    "reference_projection",
    "reference_horizontal_path",
    "reference_jacobian",
    "reference_trace_rank",
]


def reference_jacobian(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``(C, n)`` Jacobian of ``log_softmax(model(x))`` for one input ``x`` ``(*input_shape)``."""
    with eval_mode(model):
        j = jacobian(lambda z: F.log_softmax(model(z.unsqueeze(0)), dim=1)[0], x)
    return j.reshape(j.shape[0], -1)


def _reference_tangent(j: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    a = F.normalize(j.T, dim=0)  # (n, C): normalised gradients as columns
    coeff = torch.linalg.lstsq(a, d.unsqueeze(1), driver="gels").solution
    return (a @ coeff).squeeze(1)


def reference_projection(model: nn.Module, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The reference "projection" of ``v`` on D_x at one point, as Algorithm 1's code does it.

    Least squares of ``v`` on the C *normalised* gradients ``grad_x log p_i`` (all C columns).
    In exact arithmetic this is the orthogonal projection on D_x; in float32, at a point where
    one class is nearly certain, the normalised gradient of that class is mostly round-off and
    the result has a component outside D_x (compare with :func:`manifoldlib.tangent_projection`
    through :func:`manifoldlib.paths.off_leaf_fraction`).

    Args:
        model: classifier returning scores ``(1, C)``.
        x: one input ``(*input_shape)``.
        v: one vector ``(*input_shape)``.

    Returns:
        ``(*input_shape)`` the reference projection of ``v``.

    Introduced in the chapter "Horizontal paths between test images".
    """
    if not isinstance(x, torch.Tensor) or not isinstance(v, torch.Tensor):
        raise TypeError("x and v must be tensors")
    if x.shape != v.shape:
        raise ValueError(
            f"x and v must have the same shape, got {tuple(x.shape)} and {tuple(v.shape)}"
        )
    j = reference_jacobian(model, x)
    return _reference_tangent(j, v.flatten().to(j.dtype)).reshape(v.shape)


def _reference_kernel(j: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    a = F.normalize(j.T, dim=0)
    q, _ = torch.linalg.qr(a, mode="complete")  # n x n: the expensive part
    basis = q[:, j.shape[0] - 1 :]
    return basis @ (basis.T @ d)


def reference_horizontal_path(
    model: nn.Module,
    source: torch.Tensor,
    target: torch.Tensor,
    *,
    step_size: float = 0.1,
    max_steps: int = 1000,
    threshold: float = 1.0,
    clamp: tuple[float | torch.Tensor, float | torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Algorithm 1 the reference way: one image, per-step Jacobian and least squares.

    Args:
        model: classifier returning scores ``(1, C)``.
        source: one image ``(*input_shape)``.
        target: one image ``(*input_shape)``.
        step_size: step length.
        max_steps: most steps.
        threshold: stop when the distance to the target is below it.
        clamp: ``(low, high)`` range to clamp into after every step.

    Returns:
        ``points`` ``(T+1, *input_shape)``, ``probabilities`` and ``predictions`` ``(T+1,)``.
    """
    x = source.detach().clone()
    points = [x]
    with eval_mode(model):
        for _ in range(max_steps):
            if float((target - x).norm()) < threshold:
                break
            j = reference_jacobian(model, x)
            v = _reference_tangent(j, (target - x).flatten())
            x = x + step_size * F.normalize(v, dim=0).reshape(x.shape)
            if clamp is not None:
                x = torch.clamp(x, *clamp)
            points.append(x)
        pts = torch.stack(points)
        with torch.no_grad():
            probs = F.softmax(model(pts), dim=1)
    top, pred = probs.max(1)
    return pts, top, pred


def reference_across_leaves_path(
    model: nn.Module,
    start: torch.Tensor,
    direction: torch.Tensor,
    *,
    step_size: float = 0.1,
    steps: int = 100,
    clamp: tuple[float | torch.Tensor, float | torch.Tensor] | None = None,
) -> torch.Tensor:
    """Section 4.2 the reference way: a complete ``n x n`` QR per step for the kernel basis.

    Args:
        model: classifier returning scores ``(1, C)``.
        start: one image ``(*input_shape)``.
        direction: fixed direction ``(*input_shape)``.
        step_size: step length.
        steps: number of steps.
        clamp: ``(low, high)`` range to clamp into after every step.

    Returns:
        ``points`` ``(steps+1, *input_shape)``.
    """
    x = start.detach().clone()
    d = direction.flatten()
    points = [x]
    with eval_mode(model):
        for _ in range(steps):
            j = reference_jacobian(model, x)
            u = _reference_kernel(j, d)
            x = x + step_size * F.normalize(u, dim=0).reshape(x.shape)
            if clamp is not None:
                x = torch.clamp(x, *clamp)
            points.append(x)
    return torch.stack(points)


def reference_trace_rank(
    model: nn.Module, batch: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Trace and rank of G the reference way: a Python loop, one Jacobian and SVD per image.

    The rank is that of the ``C x n`` Jacobian, clamped to ``C - 1`` (the clamp hides the
    spurious direction described in the module docstring).

    Args:
        model: classifier returning scores ``(1, C)``.
        batch: images ``(B, *input_shape)``.

    Returns:
        ``traces`` ``(B,)`` and ``ranks`` ``(B,)``.
    """
    traces, ranks = [], []
    with eval_mode(model):
        for x in batch:
            j = reference_jacobian(model, x)
            with torch.no_grad():
                p = F.softmax(model(x.unsqueeze(0)), dim=1)[0]
            traces.append(float((p * j.pow(2).sum(1)).sum()))
            ranks.append(min(int(torch.linalg.matrix_rank(j)), j.shape[0] - 1))
    return torch.tensor(traces), torch.tensor(ranks)
