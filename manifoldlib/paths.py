"""Paths on and across the leaves of the foliation (paper, sections 4.2 and 4.3).

Both path routines are batched: B paths advance together, one forward pass and C backward
passes per step for the whole batch, and a pair that has stopped drops out of the batch.
Nothing about the geometry can be cached between steps: the ReLU activation pattern, hence
the Jacobian, changes as the point moves. Both run the same loop (stepping, clamping,
recording, stopping); they differ only in the direction of a step and in when a path stops.

Naming rule for the arguments. A path that heads for a target names its ends ``source`` and
``target`` and its step budget ``max_steps`` (it stops early at the target):
``horizontal_path(model, source, target, max_steps=...)``. A path steered by a fixed direction
names its first point ``start`` and its step count ``steps`` (it always takes them, unless the
direction vanishes): ``across_leaves_path(model, start, direction, steps=...)``. Both take
``step_size``, ``clamp``, ``record_every``, ``rtol`` and ``progress`` (a tqdm bar, off by
default: library code called from chapters prints nothing unasked).

Introduced in the chapters "Moving across leaves" and "Horizontal paths between test images".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm import tqdm

from . import _jacobian as _jac
from ._checks import (
    CHUNK,
    check_input,
    check_like,
    check_positive,
    check_same_shape,
    check_tensor,
    eval_mode,
    warn_if_smooth,
)

__all__ = [
    "PathResult",
    "across_leaves_path",
    "horizontal_path",
    "linear_interpolation",
    "off_leaf_fraction",
]

#: A projected direction shorter than this fraction of the vector it came from has vanished.
VANISHING = 1e-6

Clamp = tuple[float | torch.Tensor, float | torch.Tensor] | None


@dataclass
class PathResult:
    """A batch of paths, recorded every ``record_every`` steps.

    Attributes:
        points: ``(R, B, *input_shape)`` recorded points; ``points[0]`` is the start.
        steps: ``(R,)`` the step number of each record (``0, k, 2k, ...`` and the last step).
        class_probabilities: ``(R, B, C)`` the model's probabilities at each point.
        probabilities: ``(R, B)`` probability of the predicted class.
        predictions: ``(R, B)`` the predicted class.
        distances: ``(R, B)`` distance to the target (horizontal paths) or from the start
            (paths across leaves).
        steps_taken: ``(B,)`` number of steps each path made before it stopped.
        reached: ``(B,)`` whether each horizontal path came within ``threshold`` of its target
            (all False for paths across leaves).
        stop_reasons: why each path stopped: ``"reached"``, ``"max_steps"`` or
            ``"vanishing direction"``.
    """

    points: torch.Tensor
    steps: torch.Tensor
    class_probabilities: torch.Tensor
    probabilities: torch.Tensor
    predictions: torch.Tensor
    distances: torch.Tensor
    steps_taken: torch.Tensor
    reached: torch.Tensor
    stop_reasons: list[str] = field(default_factory=list)

    @property
    def final(self) -> torch.Tensor:
        """``(B, *input_shape)`` the last point of each path."""
        return self.points[-1]

    def select(self, index: int) -> PathResult:
        """One path of the batch, as a :class:`PathResult` with ``B = 1``.

        Args:
            index: which path, ``0 <= index < B``.

        Returns:
            The records of that path (views into this result's tensors).
        """
        b = self.points.shape[1]
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < b:
            raise ValueError(f"index must be an integer in [0, {b}), got {index!r}")
        sl = slice(index, index + 1)
        return PathResult(
            points=self.points[:, sl],
            steps=self.steps,
            class_probabilities=self.class_probabilities[:, sl],
            probabilities=self.probabilities[:, sl],
            predictions=self.predictions[:, sl],
            distances=self.distances[:, sl],
            steps_taken=self.steps_taken[sl],
            reached=self.reached[sl],
            stop_reasons=self.stop_reasons[index : index + 1],
        )

    def __repr__(self) -> str:
        r, b = self.points.shape[:2]
        return (
            f"PathResult(paths={b}, records={r}, last_step={int(self.steps[-1])}, "
            f"reached={int(self.reached.sum())}/{b})"
        )


def _apply_clamp(x: torch.Tensor, clamp: Clamp) -> torch.Tensor:
    if clamp is None:
        return x
    lo, hi = clamp
    return torch.clamp(x, min=lo, max=hi)


def _check_clamp(clamp: Clamp, x: torch.Tensor, name: str) -> None:
    if clamp is None:
        return
    if not (isinstance(clamp, (tuple, list)) and len(clamp) == 2):
        raise ValueError(f"clamp must be None or a pair (low, high), got {clamp!r}")
    lo, hi = (torch.as_tensor(c, dtype=x.dtype, device=x.device) for c in clamp)
    if bool((lo > hi).any()):
        raise ValueError(f"clamp must have low <= high, got {clamp!r}")
    if bool(((x < lo - 1e-5) | (x > hi + 1e-5)).any()):
        raise ValueError(
            f"{name} lies outside the clamp range {tuple(float(c.min()) for c in (lo, hi))}; "
            "clamping would move it before the first step"
        )


def _finish(
    model: nn.Module,
    records: list[torch.Tensor],
    steps: list[int],
    distances: list[torch.Tensor],
    steps_taken: torch.Tensor,
    reached: torch.Tensor,
    reasons: list[str],
    chunk: int = CHUNK,
) -> PathResult:
    """Stack the records and evaluate the model on every recorded point (forward only)."""
    points = torch.stack(records)
    flat = points.reshape(-1, *points.shape[2:])
    with torch.no_grad(), eval_mode(model):
        probs = torch.cat([_jac.forward_log_probs(model, c).exp() for c in flat.split(chunk)])
    probs = probs.reshape(points.shape[0], points.shape[1], -1)
    top, pred = probs.max(-1)
    return PathResult(
        points=points,
        steps=torch.tensor(steps),
        class_probabilities=probs,
        probabilities=top,
        predictions=pred,
        distances=torch.stack(distances),
        steps_taken=steps_taken,
        reached=reached,
        stop_reasons=reasons,
    )


#: ``(idx, x[idx], rows) -> (v, reference)``: the step direction of the active paths ``idx``,
#: and the norms its length is compared with to decide that it vanished.
StepDirection = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple]
#: ``(x[idx], idx) -> (len(idx),)``: the distance recorded for the active paths.
Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _walk(
    model: nn.Module,
    start: torch.Tensor,
    step_direction: StepDirection,
    distance: Distance,
    *,
    threshold: float | None,
    shorten: bool,
    step_size: float,
    max_steps: int,
    clamp: Clamp,
    record_every: int,
    progress: bool,
    desc: str,
) -> PathResult:
    """The loop both paths share: step, clamp, record, stop.

    At each step every active path moves by ``step_size`` along its normalised direction (by
    at most the direction's own length when ``shorten``). A path stops when its direction
    vanishes (shorter than ``VANISHING`` times its reference), when its distance falls below
    ``threshold`` (``"reached"``; never when ``threshold`` is None), or after ``max_steps``.
    """
    b = start.shape[0]
    x = start.detach().clone()
    every = torch.arange(b, device=x.device)
    dist = distance(x, every)
    active = (
        dist >= threshold
        if threshold is not None
        else torch.ones(b, dtype=torch.bool, device=x.device)
    )
    reasons = ["max_steps" if a else "reached" for a in active.tolist()]
    steps_taken = torch.zeros(b, dtype=torch.long, device=x.device)
    records, rec_steps, rec_dist = [x.clone()], [0], [dist.clone()]
    shape = (-1,) + (1,) * (x.dim() - 1)
    with eval_mode(model), tqdm(total=max_steps, disable=not progress, desc=desc) as bar:
        for t in range(1, max_steps + 1):
            idx = active.nonzero().flatten()
            if idx.numel() == 0:
                break
            xa = x[idx]
            # The C - 1 rows H^T S span D_x: one backward pass fewer than the score Jacobian.
            rows, _ = _jac.difference_jacobian(model, xa)
            v, reference = step_direction(idx, xa, rows)
            vnorm = v.flatten(1).norm(dim=1)
            vanished = vnorm <= VANISHING * reference
            length = torch.clamp(vnorm, max=step_size) if shorten else step_size
            scale = torch.where(vanished, 0.0, length / vnorm.clamp_min(1e-30))
            x[idx] = _apply_clamp(xa + scale.view(shape) * v, clamp)
            steps_taken[idx[~vanished]] += 1
            dist[idx] = distance(x[idx], idx)
            for i in idx[vanished].tolist():
                reasons[i] = "vanishing direction"
            done = vanished.clone()
            if threshold is not None:
                arrived = dist[idx] < threshold
                for i in idx[arrived].tolist():
                    reasons[i] = "reached"
                done |= arrived
            active[idx[done]] = False
            if t % record_every == 0 or not bool(active.any()) or t == max_steps:
                records.append(x.clone())
                rec_steps.append(t)
                rec_dist.append(dist.clone())
            bar.update(1)
    reached = torch.tensor([r == "reached" for r in reasons], device=x.device)
    return _finish(model, records, rec_steps, rec_dist, steps_taken, reached, reasons)


def horizontal_path(
    model: nn.Module,
    source: torch.Tensor,
    target: torch.Tensor,
    *,
    step_size: float = 0.1,
    max_steps: int = 1000,
    threshold: float = 1.0,
    clamp: Clamp = None,
    record_every: int = 1,
    rtol: float | None = None,
    progress: bool = False,
) -> PathResult:
    """Algorithm 1: horizontal paths from ``source`` towards ``target``, batched over pairs.

    At each step the direction ``target - x`` is projected orthogonally on the distribution
    ``D_x = (ker G(x, w))^perp`` and the point moves by ``step_size`` along the normalised
    projection (Riemannian gradient descent on ``||target - x||^2`` without retraction). The
    step is shortened to the projection's length ``||v||`` when that is smaller, so a path
    never overshoots the closest point along its direction. A pair stops when its distance to
    the target falls below ``threshold``, when the projected direction vanishes, or after
    ``max_steps``.

    Args:
        model: classifier returning scores ``(B, C)`` (piecewise linear for Theorem 3.1).
        source: starting points ``(B, *input_shape)``.
        target: destinations ``(B, *input_shape)``.
        step_size: Euclidean length of each step (the paper's alpha = 0.1).
        max_steps: most steps per path (the paper: 10000, or 5000 for Figures 4-5).
        threshold: stop when ``||target - x|| < threshold`` (the paper: 1.0).
        clamp: ``(low, high)``, scalars or tensors broadcastable to the input: clamp each point
            into the valid pixel range after every step, as the paper's experiments do.
        record_every: keep every k-th point (and the last); 1 keeps all.
        rtol: relative tolerance for degenerate gradients (see ``LowRankPSD.rank``).
        progress: show a tqdm bar (off by default).

    Returns:
        A :class:`PathResult`; ``distances`` are distances to the target.

    Introduced in the chapter "Horizontal paths between test images".
    """
    check_input(model, source, "source")
    check_like(source, target, "source", "target")
    check_positive(step_size, "step_size")
    check_positive(max_steps, "max_steps", integer=True)
    check_positive(threshold, "threshold")
    check_positive(record_every, "record_every", integer=True)
    _check_clamp(clamp, source, "source")
    warn_if_smooth(model, "horizontal_path")

    target = target.detach().to(source.dtype)

    def toward_target(idx: torch.Tensor, xa: torch.Tensor, rows: torch.Tensor) -> tuple:
        delta = target[idx] - xa
        return _jac.project(rows, delta, rtol, differences=True), delta.flatten(1).norm(dim=1)

    return _walk(
        model,
        source,
        toward_target,
        lambda x, idx: (target[idx] - x).flatten(1).norm(dim=1),
        threshold=threshold,
        shorten=True,
        step_size=step_size,
        max_steps=max_steps,
        clamp=clamp,
        record_every=record_every,
        progress=progress,
        desc="horizontal",
    )


def across_leaves_path(
    model: nn.Module,
    start: torch.Tensor,
    direction: torch.Tensor,
    *,
    step_size: float = 0.1,
    steps: int = 1000,
    clamp: Clamp = None,
    record_every: int = 1,
    rtol: float | None = None,
    progress: bool = False,
) -> PathResult:
    """Section 4.2: move orthogonally to the leaves along a fixed direction projected on ker G.

    At every step the fixed ``direction`` is projected on ``ker G(x_t, w)`` (the orthogonal
    complement of the current leaf's tangent space) and the point moves by ``step_size`` along
    the normalised projection. By eq. (8) the model's prediction changes only to second order.

    Args:
        model: classifier returning scores ``(B, C)``.
        start: starting points ``(B, *input_shape)``.
        direction: fixed directions ``(B, *input_shape)`` (the paper: Gaussian).
        step_size: Euclidean length of each step.
        steps: number of steps.
        clamp: ``(low, high)`` range to clamp each point into after every step, or None.
        record_every: keep every k-th point (and the last); 1 keeps all.
        rtol: relative tolerance for degenerate gradients.
        progress: show a tqdm bar (off by default).

    Returns:
        A :class:`PathResult`; ``distances`` are distances from the start, ``reached`` is all
        False.

    Introduced in the chapter "Moving across leaves".
    """
    check_input(model, start, "start")
    check_like(start, direction, "start", "direction")
    check_positive(step_size, "step_size")
    check_positive(steps, "steps", integer=True)
    check_positive(record_every, "record_every", integer=True)
    _check_clamp(clamp, start, "start")
    warn_if_smooth(model, "across_leaves_path")
    if bool((direction.flatten(1).norm(dim=1) == 0).any()):
        raise ValueError("direction must be non-zero for every path")

    direction = direction.detach().to(start.dtype)
    origin = start.detach()

    def across_leaves(idx: torch.Tensor, xa: torch.Tensor, rows: torch.Tensor) -> tuple:
        d = direction[idx]
        return d - _jac.project(rows, d, rtol, differences=True), d.flatten(1).norm(dim=1)

    return _walk(
        model,
        start,
        across_leaves,
        lambda x, idx: (x - origin[idx]).flatten(1).norm(dim=1),
        threshold=None,
        shorten=False,
        step_size=step_size,
        max_steps=steps,
        clamp=clamp,
        record_every=record_every,
        progress=progress,
        desc="across leaves",
    )


def linear_interpolation(source: torch.Tensor, target: torch.Tensor, num: int = 11) -> torch.Tensor:
    """Straight-line interpolation, the baseline that horizontal paths are compared with.

    Args:
        source: ``(B, *input_shape)``.
        target: ``(B, *input_shape)``.
        num: number of points, endpoints included.

    Returns:
        ``(num, B, *input_shape)`` points ``(1 - t) source + t target``.

    Introduced in the chapter "Horizontal paths between test images".
    """
    check_tensor(source, "source", min_dim=1)
    check_tensor(target, "target", min_dim=1)
    check_same_shape(source, target, "source", "target")
    if isinstance(num, bool) or not isinstance(num, int) or num < 2:
        raise ValueError(f"num must be an integer >= 2, got {num!r}")
    t = torch.linspace(0, 1, num, dtype=source.dtype, device=source.device)
    t = t.view(-1, *([1] * source.dim()))
    return (1 - t) * source.unsqueeze(0) + t * target.unsqueeze(0)


def off_leaf_fraction(
    model: nn.Module,
    x: torch.Tensor,
    step: torch.Tensor,
    *,
    rtol: float | None = None,
    chunk: int = CHUNK,
) -> torch.Tensor:
    """Share of each step that lies outside the leaf's tangent space: ``||s - P s|| / ||s||``.

    ``P`` is the exact orthogonal projection on ``D_x = (ker G(x, w))^perp`` at the step's
    base point. A horizontal step gives 0, a step in ``ker G`` gives 1; a path whose steps
    have a large share outside ``D_x`` is not horizontal, whatever its algorithm intended.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: base points of the steps ``(B, *input_shape)`` (e.g. ``points[:-1]`` of a path).
        step: the steps ``(B, *input_shape)`` (e.g. ``points[1:] - points[:-1]``).
        rtol: relative tolerance for degenerate gradients (see ``LowRankPSD.rank``).
        chunk: how many base points share one batched Jacobian.

    Returns:
        ``(B,)`` fractions in ``[0, 1]``; NaN for a zero step.

    Introduced in the chapter "Horizontal paths between test images".
    """
    check_input(model, x, "x")
    check_like(x, step, "x", "step")
    check_positive(chunk, "chunk", integer=True)
    with eval_mode(model):
        off = _jac.kernel_norms(model, x, step, rtol, chunk)
    norm = step.flatten(1).norm(dim=1)
    return off / torch.where(norm > 0, norm, torch.nan)
