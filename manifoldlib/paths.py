"""Paths on and across the leaves of the foliation (paper, sections 4.2 and 4.3).

Both path routines are batched: B paths advance together, one forward pass and C - 1 backward
passes per step for the whole batch (Algorithm 1's study loop takes C: its paper variants use
every score gradient), and a pair that has stopped drops out of the batch.
Nothing about the geometry can be cached between steps: the ReLU activation pattern, hence
the Jacobian, changes as the point moves.

One loop, :func:`walk`, runs every path of the library: these two, Algorithm 1's variants
(:func:`manifoldlib.algorithm1.algorithm1_paths`) and the leaf projections built on them. A
configuration chooses the step direction, the step length, the :class:`StopRules`
(:data:`HORIZONTAL`, :data:`ACROSS`, :data:`manifoldlib.algorithm1.ALGORITHM1`) and the
observers that record what it needs; every path reports ``steps_taken`` and one of the
:data:`STOP_REASONS` per path.

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

import dataclasses
import time
from collections.abc import Callable, Sequence
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
    "ACROSS",
    "HORIZONTAL",
    "STOP_REASONS",
    "Observer",
    "PathResult",
    "StallDetector",
    "Step",
    "StopRules",
    "Walk",
    "across_leaves_path",
    "horizontal_path",
    "linear_interpolation",
    "off_leaf_fraction",
    "walk",
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


#: The argument names of the two path functions' start, second tensor and step count.
_PATH_ARGS = {
    "horizontal_path": ("source", "target", "max_steps"),
    "across_leaves_path": ("start", "direction", "steps"),
}


def _check_path_args(
    model: nn.Module,
    what: str,
    start: torch.Tensor,
    other: torch.Tensor,
    step_size: float,
    steps: int,
    record_every: int,
    clamp: Clamp,
) -> None:
    """The argument checks :func:`horizontal_path` and :func:`across_leaves_path` share."""
    first, second, count = _PATH_ARGS[what]
    check_input(model, start, first)
    check_like(start, other, first, second)
    check_positive(step_size, "step_size")
    check_positive(steps, count, integer=True)
    check_positive(record_every, "record_every", integer=True)
    _check_clamp(clamp, start, first)
    warn_if_smooth(model, what)


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


class StallDetector:
    """Detect that a batch of descending distances has stopped falling.

    A path has *stalled* when its distance has not reached a new minimum, lower than the
    previous one by a relative margin ``rel``, for ``window`` steps. The stall step is the
    step of that last minimum: where the distance stopped falling.

    Args:
        batch: number of paths ``B``.
        window: steps without a new minimum that make a stall.
        rel: relative improvement that counts as a new minimum.

    Introduced in the chapter "Horizontal paths between test images".
    """

    def __init__(
        self, batch: int, window: int, rel: float = 1e-3, device: torch.device | str = "cpu"
    ) -> None:
        check_positive(window, "window", integer=True)
        self.window, self.rel = window, rel
        self.best = torch.full((batch,), float("inf"), dtype=torch.float64, device=device)
        self.best_step = torch.zeros(batch, dtype=torch.long, device=device)

    def update(self, idx: torch.Tensor, dist: torch.Tensor, step: int) -> torch.Tensor:
        """Record ``dist`` ``(k,)`` of paths ``idx`` at ``step``; ``(k,)`` True where stalled."""
        d = dist.detach().double().to(self.best.device)
        better = d < self.best[idx] * (1 - self.rel)
        self.best[idx] = torch.where(better, d, self.best[idx])
        self.best_step[idx] = torch.where(better, step, self.best_step[idx])
        return (step - self.best_step[idx]) >= self.window


#: Why a path stopped: one vocabulary for every path routine (``stop_reasons``). Paths and
#: leaf projections use the first five, geodesic lifts (:func:`manifoldlib.leaf_geodesic`) the
#: last four.
STOP_REASONS = {
    "reached": "came within the threshold of its target",
    "max_steps": "ran out of steps",
    "vanishing direction": "its step direction vanished (a local minimum of the distance)",
    "stalled": "its distance stopped falling (see StallDetector)",
    "budget": "a wall-clock deadline stopped it",
    "arrived": "a geodesic lift that reached the end of its great circle",
    "left the circle": "a geodesic lift whose prediction left its great circle",
    "degenerate D_x": "a geodesic lift at a point where the rows spanning D_x are dependent",
    "non-finite": "a geodesic lift that met a value that is not finite",
}


@dataclass
class Walk:
    """The state of a batch of paths inside :func:`walk` (what observers read).

    Attributes:
        x: ``(B, *input_shape)`` the current points.
        dist: ``(B,)`` the distance each path reports (to its target, or from its start).
        active: ``(B,)`` which paths still move.
        steps_taken: ``(B,)`` steps made by each path (a vanished direction is no step).
        stop_reasons: one of :data:`STOP_REASONS` per path (``"max_steps"`` while moving).
        stall_step: ``(B,)`` the step of the last new distance minimum of a stalled path, -1
            otherwise.
        detector: the :class:`StallDetector` of the stall rule, or None.
    """

    x: torch.Tensor
    dist: torch.Tensor
    active: torch.Tensor
    steps_taken: torch.Tensor
    stop_reasons: list[str]
    stall_step: torch.Tensor
    detector: StallDetector | None = None

    @property
    def reached(self) -> torch.Tensor:
        """``(B,)`` bool: which paths stopped with reason ``"reached"``."""
        return torch.tensor(
            [r == "reached" for r in self.stop_reasons], dtype=torch.bool, device=self.x.device
        )


@dataclass
class Step:
    """One step of the active paths, as observers see it.

    Attributes:
        t: the step number (1 for the first step).
        idx: ``(k,)`` the active paths that made it.
        before: ``(k, *input_shape)`` their points before the step.
        direction: ``(k, *input_shape)`` the step directions ``v`` (not normalised).
        step: ``(k, *input_shape)`` the steps ``s`` before clamping.
        moved: ``(k, *input_shape)`` ``before + step``.
        after: ``(k, *input_shape)`` the new points (``moved`` clamped).
        context: what the direction computed on the way (e.g. ``jac`` and ``logp``).
    """

    t: int
    idx: torch.Tensor
    before: torch.Tensor
    direction: torch.Tensor
    step: torch.Tensor
    moved: torch.Tensor
    after: torch.Tensor
    context: dict


class Observer:
    """Watches a :func:`walk`; every hook does nothing unless overridden."""

    def stepped(self, walk: Walk, step: Step) -> None:
        """After every step (points, steps and distances already updated)."""

    def stopped(self, walk: Walk, i: int) -> None:
        """When path ``i`` stops (its reason set), in path order within a step."""

    def recorded(self, walk: Walk, t: int) -> None:
        """At the end of step ``t`` (after the stop rules)."""


@dataclass(frozen=True)
class StopRules:
    """When a path of :func:`walk` stops.

    Attributes:
        max_steps: most steps per path (reason ``"max_steps"``).
        threshold: stop when the distance falls below it (``"reached"``); None: never.
        inclusive: ``dist <= threshold`` (the paper's loop runs while the distance is above
            it) instead of ``dist < threshold``.
        vanishing: stop when the direction is shorter than this fraction of its reference
            (``"vanishing direction"``); None: never (the step is then taken, however short).
        stall_window: steps without a new distance minimum that stop a path (``"stalled"``,
            see :class:`StallDetector`); None: never.
        stall_rel: relative fall that counts as a new minimum.
        deadline: a ``time.time()`` after which the remaining paths stop (``"budget"``).
    """

    max_steps: int
    threshold: float | None = None
    inclusive: bool = False
    vanishing: float | None = None
    stall_window: int | None = None
    stall_rel: float = 1e-3
    deadline: float | None = None


#: :func:`horizontal_path`'s stop rules: ``dist < threshold``, vanishing direction, max_steps.
HORIZONTAL = StopRules(max_steps=1000, threshold=1.0, vanishing=VANISHING)
#: :func:`across_leaves_path`'s stop rules: a fixed number of steps, or a vanishing direction.
ACROSS = StopRules(max_steps=1000, vanishing=VANISHING)


#: ``(idx, x[idx]) -> (v, reference, context)``: the step directions of the active paths
#: ``idx`` (not normalised), the norms their length is compared with by the vanishing rule,
#: and what was computed on the way (handed to the observers).
Direction = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, dict]]
#: ``(x[idx], idx) -> (len(idx),)``: the distance recorded for the active paths.
Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``(||v||, idx) -> length``: the length of each step (a float or ``(len(idx),)``).
StepLength = Callable[[torch.Tensor, torch.Tensor], float | torch.Tensor]


def walk(
    model: nn.Module,
    start: torch.Tensor,
    direction: Direction,
    distance: Distance,
    step_length: StepLength,
    stops: StopRules,
    *,
    clamp: Clamp = None,
    clamp_mask: torch.Tensor | None = None,
    observers: Sequence[Observer] = (),
    progress: bool = False,
    desc: str = "path",
) -> Walk:
    """The one loop of Algorithm 1 and its relatives: direction, step, clamp, stop, observe.

    Every public path routine is a configuration of this loop (:func:`horizontal_path`,
    :func:`across_leaves_path`, :func:`manifoldlib.algorithm1.algorithm1_paths` and through them
    the leaf projections). At each step every active path asks ``direction`` for ``v``,
    moves by ``step_length(||v||) * v / ||v||`` (nothing where the direction vanished), is
    clamped into ``clamp`` (only the paths of ``clamp_mask`` when given), and its distance is
    updated; then the stop rules run in this order of precedence: reached, stalled,
    vanishing direction (``max_steps`` and ``budget`` end the loop).

    Args:
        model: classifier returning scores ``(B, C)``.
        start: ``(B, *input_shape)`` first points.
        direction: see :data:`Direction`.
        distance: see :data:`Distance`.
        step_length: see :data:`StepLength`.
        stops: the :class:`StopRules`.
        clamp: ``(low, high)`` range to clamp into after every step, or None.
        clamp_mask: ``(B,)`` bool, the paths to clamp; None: all (where ``clamp`` is given).
        observers: :class:`Observer` s, called in order.
        progress: show a tqdm bar.
        desc: the bar's label.

    Returns:
        The final :class:`Walk`.

    Introduced in the chapter "Horizontal paths between test images".
    """
    b = start.shape[0]
    x = start.detach().clone()
    dev = x.device  # every bookkeeping tensor lives on the data's device
    dist = distance(x, torch.arange(b, device=dev))
    if stops.threshold is None:
        active = torch.ones(b, dtype=torch.bool, device=dev)
    elif stops.inclusive:
        active = ~(dist <= stops.threshold)
    else:
        active = dist >= stops.threshold
    w = Walk(
        x=x,
        dist=dist,
        active=active,
        steps_taken=torch.zeros(b, dtype=torch.long, device=dev),
        stop_reasons=["max_steps" if a else "reached" for a in active.tolist()],
        stall_step=torch.full((b,), -1, dtype=torch.long, device=dev),
    )
    if stops.stall_window:
        w.detector = StallDetector(b, stops.stall_window, stops.stall_rel, dev)
        w.detector.update(torch.arange(b, device=dev), dist, 0)
    for i in torch.nonzero(~active).flatten().tolist():
        for ob in observers:
            ob.stopped(w, i)
    shape = (-1,) + (1,) * (x.dim() - 1)
    with eval_mode(model), tqdm(total=stops.max_steps, disable=not progress, desc=desc) as bar:
        for t in range(1, stops.max_steps + 1):
            idx = active.nonzero().flatten()
            if idx.numel() == 0:
                break
            if stops.deadline is not None and time.time() > stops.deadline:
                for i in idx.tolist():
                    w.stop_reasons[i] = "budget"
                break
            xa = x[idx]
            v, reference, context = direction(idx, xa)
            vnorm = v.flatten(1).norm(dim=1)
            length = step_length(vnorm, idx)
            scale = length / vnorm.clamp_min(1e-30)
            if stops.vanishing is not None:
                vanished = vnorm <= stops.vanishing * reference
                scale = torch.where(vanished, 0.0, scale)
            else:
                vanished = torch.zeros(idx.shape, dtype=torch.bool, device=dev)
            s = scale.view(shape) * v
            moved = xa + s
            if clamp is None:
                new = moved
            elif clamp_mask is None:
                new = _apply_clamp(moved, clamp)
            else:
                new = moved.clone()
                cm = clamp_mask[idx]
                if bool(cm.any()):
                    new[cm] = _apply_clamp(moved[cm], clamp)
            x[idx] = new
            w.steps_taken[idx[~vanished]] += 1
            dist[idx] = distance(new, idx)
            step = Step(t, idx, xa, v, s, moved, new, context)
            for ob in observers:
                ob.stepped(w, step)
            if stops.threshold is None:
                arrived = torch.zeros_like(vanished)
            elif stops.inclusive:
                arrived = dist[idx] <= stops.threshold
            else:
                arrived = dist[idx] < stops.threshold
            stalled = (
                w.detector.update(idx, dist[idx], t)
                if w.detector is not None
                else torch.zeros_like(vanished)
            )
            for k, i in enumerate(idx.tolist()):
                if bool(arrived[k]):
                    w.stop_reasons[i] = "reached"
                elif bool(stalled[k]):
                    w.stop_reasons[i] = "stalled"
                    w.stall_step[i] = w.detector.best_step[i]
                elif bool(vanished[k]):
                    w.stop_reasons[i] = "vanishing direction"
                else:
                    continue
                active[i] = False
                for ob in observers:
                    ob.stopped(w, i)
            for ob in observers:
                ob.recorded(w, t)
            bar.update(1)
    for i in active.nonzero().flatten().tolist():
        for ob in observers:
            ob.stopped(w, i)
    return w


class _PointRecorder(Observer):
    """Keeps every ``every``-th point, the last step and the step where all paths stopped."""

    def __init__(self, w_x: torch.Tensor, dist: torch.Tensor, every: int, max_steps: int):
        self.every, self.max_steps = every, max_steps
        self.points, self.steps, self.dist = [w_x.clone()], [0], [dist.clone()]

    def recorded(self, walk: Walk, t: int) -> None:
        if t % self.every == 0 or not bool(walk.active.any()) or t == self.max_steps:
            self.points.append(walk.x.clone())
            self.steps.append(t)
            self.dist.append(walk.dist.clone())


def _path(
    model: nn.Module,
    start: torch.Tensor,
    direction: Direction,
    distance: Distance,
    step_length: StepLength,
    stops: StopRules,
    *,
    clamp: Clamp,
    record_every: int,
    progress: bool,
    desc: str,
) -> PathResult:
    """:func:`walk` with every ``record_every``-th point kept, as a :class:`PathResult`."""
    first = start.detach()
    recorder = _PointRecorder(
        first,
        distance(first, torch.arange(first.shape[0], device=first.device)),
        record_every,
        stops.max_steps,
    )
    w = walk(
        model,
        start,
        direction,
        distance,
        step_length,
        stops,
        clamp=clamp,
        observers=(recorder,),
        progress=progress,
        desc=desc,
    )
    return _finish(
        model,
        recorder.points,
        recorder.steps,
        recorder.dist,
        w.steps_taken,
        w.reached,
        w.stop_reasons,
    )


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
    check_positive(threshold, "threshold")
    _check_path_args(
        model, "horizontal_path", source, target, step_size, max_steps, record_every, clamp
    )

    target = target.detach().to(source.dtype)

    def toward_target(idx: torch.Tensor, xa: torch.Tensor) -> tuple:
        # The C - 1 rows H^T S span D_x: one backward pass fewer than the score Jacobian.
        rows, _ = _jac.difference_jacobian(model, xa)
        delta = target[idx] - xa
        v = _jac.project(rows, delta, rtol, differences=True)
        return v, delta.flatten(1).norm(dim=1), {"rows": rows}

    return _path(
        model,
        source,
        toward_target,
        lambda x, idx: (target[idx] - x).flatten(1).norm(dim=1),
        lambda vnorm, idx: torch.clamp(vnorm, max=step_size),
        dataclasses.replace(HORIZONTAL, max_steps=max_steps, threshold=threshold),
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
    _check_path_args(
        model, "across_leaves_path", start, direction, step_size, steps, record_every, clamp
    )
    if bool((direction.flatten(1).norm(dim=1) == 0).any()):
        raise ValueError("direction must be non-zero for every path")

    direction = direction.detach().to(start.dtype)
    origin = start.detach()

    def across_leaves(idx: torch.Tensor, xa: torch.Tensor) -> tuple:
        rows, _ = _jac.difference_jacobian(model, xa)
        d = direction[idx]
        v = d - _jac.project(rows, d, rtol, differences=True)
        return v, d.flatten(1).norm(dim=1), {"rows": rows}

    return _path(
        model,
        start,
        across_leaves,
        lambda x, idx: (x - origin[idx]).flatten(1).norm(dim=1),
        lambda vnorm, idx: step_size,
        dataclasses.replace(ACROSS, max_steps=steps),
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
