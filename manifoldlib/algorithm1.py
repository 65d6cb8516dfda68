"""Algorithm 1's variants, batched: projection drivers, step rules, clamp and stall detection.

Algorithm 1 of the paper moves a point ``x`` towards a target ``d`` by steps of length
``alpha`` along the projection of ``d - x`` on the distribution ``D_x``. How that projection
is computed decides where the path goes. This module puts every variant that the book
compares behind one batched loop, so that many design cells (projection x step rule x clamp)
share one Jacobian evaluation per step:

- ``"exact"``: the orthogonal projection on ``D_x`` (:func:`manifoldlib.tangent_projection_from_jacobian`).
- ``"gels"``: the paper's code: least squares of ``d - x`` on the ``C`` *normalised* gradients
  ``grad_x log p_i`` as columns, with LAPACK's ``gels`` (QR, assumes full column rank: what
  ``torch.lstsq`` and every CUDA run did). The ``C`` columns are linearly dependent (they
  satisfy ``sum_i p_i grad log p_i = 0``), so the solver works on a matrix of numerical rank
  ``C - 1`` and its answer has a component outside ``D_x``.
- ``"gelsy"``: the same least squares with the CPU default ``gelsy`` (rank-revealing QR with
  ``rcond = eps * max(n, C)``): it detects the dependency and projects on ``D_x``.
- ``"dropcol"``: the paper's least squares with ``gels`` on ``C - 1`` columns (the most probable
  class's column dropped): ``C - 1`` independent columns spanning ``D_x``.
- ``"rowspace"``: the orthogonal projection on the ``C``-dimensional row space of the *score*
  Jacobian (``D_x`` plus one direction): what ``gels`` would compute if its spurious column
  were a genuine one.

Step rules: ``"fixed"`` moves by ``alpha * v / ||v||`` (the paper's code), ``"shortened"`` by
``min(alpha, ||v||) * v / ||v||`` (never overshoots along its own direction).

Introduced in the chapter "Horizontal paths between test images".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    check_finite,
    check_input,
    check_positive,
    check_same_shape,
    check_tensor,
)
from .geometry import score_jacobian, tangent_projection_from_jacobian
from .paths import VANISHING, Observer, Step, StopRules, Walk, walk

__all__ = [
    "ALGORITHM1",
    "PROJECTIONS",
    "STEP_RULES",
    "Algorithm1Result",
    "algorithm1_paths",
    "logprob_columns",
    "project",
    "step_lengths",
]

#: The projections Algorithm 1 can use (see the module docstring).
PROJECTIONS = ("exact", "gels", "gelsy", "dropcol", "rowspace")
#: The step rules: the paper's fixed length, or shortened to the projection's length.
STEP_RULES = ("fixed", "shortened")

Clamp = tuple[float | torch.Tensor, float | torch.Tensor] | None
#: Algorithm 1's stop rules as the paper's loop: it runs while ``||d - x|| > threshold`` and
#: takes every step, however short (no vanishing rule: a path whose direction vanished runs
#: to ``max_steps`` with zero-length steps, unless ``stop_on_vanishing``).
ALGORITHM1 = StopRules(max_steps=5000, threshold=1.0, inclusive=True)


def logprob_columns(jac: torch.Tensor, logp: torch.Tensor) -> torch.Tensor:
    """The paper's least-squares matrix: normalised gradients of ``log p_i`` as columns.

    Args:
        jac: score Jacobian ``(B, C, *input_shape)`` (from :func:`manifoldlib.score_jacobian`).
        logp: log-probabilities ``(B, C)``.

    Returns:
        ``(B, n, C)`` with ``n`` the number of input entries; column ``i`` is
        ``grad log p_i / ||grad log p_i||`` (``grad log p_i = grad s_i - sum_k p_k grad s_k``).

    Introduced in the chapter "Horizontal paths between test images".
    """
    check_tensor(jac, "jac", min_dim=3)
    b, c = jac.shape[:2]
    s = jac.reshape(b, c, -1)
    mean = torch.einsum("bk,bkn->bn", logp.exp().to(s.dtype), s)
    rows = s - mean.unsqueeze(1)
    return F.normalize(rows, dim=2).transpose(1, 2)


def project(
    jac: torch.Tensor,
    logp: torch.Tensor,
    v: torch.Tensor,
    method: str = "exact",
    rtol: float | None = None,
) -> torch.Tensor:
    """Project ``v`` the way one variant of Algorithm 1 does.

    Args:
        jac: score Jacobian ``(B, C, *input_shape)``.
        logp: log-probabilities ``(B, C)``.
        v: vectors ``(B, *input_shape)``.
        method: one of :data:`PROJECTIONS`.
        rtol: relative tolerance of the rank decision of the exact projection (None: the
            library's default); the paper's least-squares variants take none.

    Returns:
        ``(B, *input_shape)`` the projected vectors, in ``v``'s dtype.

    Raises:
        ValueError: unknown ``method`` or mismatched shapes.

    Introduced in the chapter "Horizontal paths between test images".
    """
    if method not in PROJECTIONS:
        raise ValueError(f"method must be one of {PROJECTIONS}, got {method!r}")
    check_tensor(v, "v", min_dim=2)
    if jac.shape[0] != v.shape[0] or jac.shape[2:] != v.shape[1:]:
        raise ValueError(
            f"jac (B, C, *input_shape) must match v (B, *input_shape); "
            f"got {tuple(jac.shape)} and {tuple(v.shape)}"
        )
    if method == "exact":
        return tangent_projection_from_jacobian(jac, v, rtol=rtol)
    b, c = jac.shape[:2]
    flat = v.reshape(b, -1, 1)
    if method == "rowspace":
        q, _ = torch.linalg.qr(jac.reshape(b, c, -1).transpose(1, 2).double())
        out = q @ (q.transpose(1, 2) @ flat.double())
        return out.reshape(v.shape).to(v.dtype)
    a = logprob_columns(jac, logp).to(v.dtype)
    driver = "gels"
    if method == "gelsy":
        driver = "gelsy"
    elif method == "dropcol":
        top = logp.argmax(1)
        keep = torch.ones(b, c, dtype=torch.bool, device=jac.device)
        keep[torch.arange(b), top] = False
        a = a.transpose(1, 2)[keep].reshape(b, c - 1, -1).transpose(1, 2)
    if a.device.type != "cpu" and driver != "gels":
        raise ValueError(f"driver {driver!r} exists only on CPU")
    coeff = torch.linalg.lstsq(a, flat, driver=driver).solution
    return (a @ coeff).reshape(v.shape)


def step_lengths(vnorm: torch.Tensor, step_size: float, rule: str | Sequence[str]) -> torch.Tensor:
    """Length of each step under a step rule.

    Args:
        vnorm: ``(B,)`` norms of the projected directions.
        step_size: ``alpha``.
        rule: one of :data:`STEP_RULES`, or one per path.

    Returns:
        ``(B,)`` step lengths: ``alpha`` (``"fixed"``) or ``min(alpha, ||v||)``
        (``"shortened"``).

    Introduced in the chapter "Horizontal paths between test images".
    """
    rules = [rule] * vnorm.shape[0] if isinstance(rule, str) else list(rule)
    if any(r not in STEP_RULES for r in rules) or len(rules) != vnorm.shape[0]:
        raise ValueError(f"rule must be in {STEP_RULES} (one or one per path), got {rule!r}")
    short = torch.tensor([r == "shortened" for r in rules], device=vnorm.device)
    full = torch.full_like(vnorm, step_size)
    return torch.where(short, torch.minimum(full, vnorm), full)


@dataclass
class Algorithm1Result:
    """What a batch of Algorithm 1 paths did.

    Attributes:
        final: ``(B, *input_shape)`` last points.
        initial_distance: ``(B,)`` ``||d - x_0||``.
        final_distance: ``(B,)`` distance at the last point.
        min_distance: ``(B,)`` smallest distance along the path.
        reached: ``(B,)`` whether the distance fell below the threshold.
        stall_step: ``(B,)`` step of the last new minimum for stalled paths, -1 otherwise.
        steps_taken: ``(B,)`` steps run.
        path_length: ``(B,)`` Euclidean length travelled (clamp included).
        stop_reasons: ``"reached"``, ``"stalled"``, ``"max_steps"``, ``"budget"`` or (with
            ``stop_on_vanishing``) ``"vanishing direction"`` per path (see
            :data:`manifoldlib.paths.STOP_REASONS`).
        fall_in: ``(B,)`` summed fall of ``||d - x||^2`` due to the steps' components in D_x.
        fall_off: ``(B,)`` the same for the components outside D_x.
        fall_clamp: ``(B,)`` the same for the clamp.
        off_share_late: ``(B,)`` median of ``||s - P s|| / ||s||`` over the last 100 steps.
        record_steps: ``(R,)`` steps at which distances were recorded.
        distances: ``(R, B)`` recorded distances (NaN after a path stopped).
    """

    final: torch.Tensor
    initial_distance: torch.Tensor
    final_distance: torch.Tensor
    min_distance: torch.Tensor
    reached: torch.Tensor
    stall_step: torch.Tensor
    steps_taken: torch.Tensor
    path_length: torch.Tensor
    stop_reasons: list[str]
    fall_in: torch.Tensor
    fall_off: torch.Tensor
    fall_clamp: torch.Tensor
    off_share_late: torch.Tensor
    record_steps: torch.Tensor
    distances: torch.Tensor


def _per_path(value: object, b: int, name: str) -> list:
    if isinstance(value, (list, tuple)) and not (name == "clamp" and len(value) == 2 and b != 2):
        if len(value) != b:
            raise ValueError(f"{name} must be one value or one per path ({b}), got {len(value)}")
        return list(value)
    return [value] * b


def algorithm1_paths(
    model: nn.Module,
    source: torch.Tensor,
    target: torch.Tensor,
    *,
    projection: str | Sequence[str] = "exact",
    rule: str | Sequence[str] = "fixed",
    clamp_on: bool | Sequence[bool] = True,
    clamp: Clamp = None,
    step_size: float = 0.1,
    max_steps: int = 5000,
    threshold: float = 1.0,
    stall_window: int | None = None,
    stall_rel: float = 1e-3,
    record_every: int = 50,
    on_finish: Callable[[int, dict], None] | None = None,
    on_record: Callable[[torch.Tensor, torch.Tensor], None] | None = None,
    deadline: float | None = None,
    rtol: float | None = None,
    stop_on_vanishing: bool = False,
) -> Algorithm1Result:
    """Run Algorithm 1 for ``B`` paths that may each use another variant, in one batch.

    A configuration of the one path loop, :func:`manifoldlib.paths.walk` (stop rules
    :data:`ALGORITHM1`), with an observer that splits each step's fall of the distance.

    Each step computes one score Jacobian for all active paths, projects ``d - x`` with each
    path's projection, steps by its step rule, clamps (where asked), and measures how the step
    changed ``||d - x||^2``: its component in ``D_x`` (exact projection at the same point),
    its component outside ``D_x``, and the clamp (the three parts sum to the whole change). A
    path stops when ``||d - x|| <= threshold`` (the paper's loop runs while the distance is
    above it), when it stalls (:class:`StallDetector`), or after ``max_steps``.

    Args:
        model: classifier returning scores ``(B, C)``.
        source: ``(B, *input_shape)`` starting points.
        target: ``(B, *input_shape)`` targets ``d``.
        projection: one of :data:`PROJECTIONS`, or one per path.
        rule: one of :data:`STEP_RULES`, or one per path.
        clamp_on: whether to clamp after each step, or one per path.
        clamp: ``(low, high)`` valid range (e.g. ``ImageData.pixel_range``); needed where
            ``clamp_on``.
        step_size: ``alpha`` (the paper: 0.1).
        max_steps: most steps per path (the paper: 5000 for Figure 4, 10000 otherwise).
        threshold: reach distance (the paper: 1.0).
        stall_window: steps without a new distance minimum that stop a path; None: never.
        stall_rel: relative fall that counts as a new minimum (see :class:`StallDetector`).
        record_every: record the distances every k steps.
        on_finish: called as ``on_finish(i, row)`` when path ``i`` stops (for incremental
            writing); ``row`` holds the per-path fields of :class:`Algorithm1Result`.
        on_record: called as ``on_record(record_steps, distances)`` after each record.
        deadline: a ``time.time()`` after which the remaining paths stop (reason
            ``"budget"``), for runs on a shared machine.
        rtol: relative tolerance of the rank decision in the exact projections (the
            ``"exact"`` variant and the attribution's split of each step); None: the default.
        stop_on_vanishing: stop a path whose direction vanished (``"vanishing direction"``,
            as :func:`manifoldlib.horizontal_path`) instead of running it to ``max_steps``
            with zero-length steps (the paper's loop; the default).

    Returns:
        An :class:`Algorithm1Result`.

    Introduced in the chapter "Horizontal paths between test images".
    """
    check_input(model, source, "source")
    check_same_shape(source, target, "source", "target")
    check_finite(target, "target")
    check_positive(step_size, "step_size")
    check_positive(max_steps, "max_steps", integer=True)
    b = source.shape[0]
    projs = _per_path(projection, b, "projection")
    rules = _per_path(rule, b, "rule")
    clamps = [bool(c) for c in _per_path(clamp_on, b, "clamp_on")]
    if any(p not in PROJECTIONS for p in projs):
        raise ValueError(f"projection must be in {PROJECTIONS}, got {projection!r}")
    if any(r not in STEP_RULES for r in rules):
        raise ValueError(f"rule must be in {STEP_RULES}, got {rule!r}")
    if any(clamps) and clamp is None:
        raise ValueError("clamp=(low, high) is needed for paths with clamp_on")
    target = target.detach().to(source.dtype)
    dev = source.device  # every bookkeeping tensor lives on the data's device

    def direction(idx: torch.Tensor, xa: torch.Tensor) -> tuple:
        jac, logp = score_jacobian(model, xa, return_logp=True)
        delta = target[idx] - xa
        v = torch.empty_like(delta)
        for method in set(projs[i] for i in idx.tolist()):
            sel = torch.tensor([projs[i] == method for i in idx.tolist()], device=dev)
            v[sel] = project(jac[sel], logp[sel], delta[sel], method, rtol=rtol)
        return v, delta.flatten(1).norm(dim=1), {"jac": jac, "logp": logp}

    def distance(z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return (target[idx] - z).flatten(1).norm(dim=1)

    d0 = distance(source.detach(), torch.arange(b, device=dev))
    attribution = _Attribution(
        target, d0, record_every, rtol, on_finish, on_record, projs, rules, clamps
    )
    stops = dataclasses.replace(
        ALGORITHM1,
        max_steps=max_steps,
        threshold=threshold,
        vanishing=VANISHING if stop_on_vanishing else None,
        stall_window=stall_window,
        stall_rel=stall_rel,
        deadline=deadline,
    )
    w = walk(
        model,
        source,
        direction,
        distance,
        lambda vnorm, idx: step_lengths(vnorm, step_size, [rules[i] for i in idx.tolist()]),
        stops,
        clamp=clamp if any(clamps) else None,
        clamp_mask=torch.tensor(clamps, device=dev),
        observers=(attribution,),
    )
    return Algorithm1Result(
        final=w.x,
        initial_distance=d0,
        final_distance=w.dist,
        min_distance=attribution.dmin,
        reached=w.reached,
        stall_step=w.stall_step,
        steps_taken=w.steps_taken,
        path_length=attribution.plen,
        stop_reasons=w.stop_reasons,
        fall_in=attribution.falls[0],
        fall_off=attribution.falls[1],
        fall_clamp=attribution.falls[2],
        off_share_late=torch.tensor([_median(a) for a in attribution.late]),
        record_steps=torch.tensor(attribution.rec_steps),
        distances=torch.stack(attribution.rec),
    )


class _Attribution(Observer):
    """Algorithm 1's observer: the fall of ``||d - x||^2`` split in three, lengths, traces.

    Each step's change of ``||d - x||^2`` is split into its step's component in ``D_x`` (the
    exact projection at the same point), its component outside ``D_x`` and the clamp; it
    also keeps the path length, the smallest distance, the last 100 off-``D_x`` shares, the
    distances every ``record_every`` steps (NaN once a path stopped) and calls ``on_finish``
    and ``on_record``.
    """

    def __init__(self, target, d0, record_every, rtol, on_finish, on_record, projs, rules, clamps):
        b, dev = d0.shape[0], d0.device
        self.target, self.d0, self.every, self.rtol = target, d0, record_every, rtol
        self.on_finish, self.on_record = on_finish, on_record
        self.projs, self.rules, self.clamps = projs, rules, clamps
        self.dmin = d0.clone()
        self.plen = torch.zeros(b, dtype=torch.float64, device=dev)
        self.falls = torch.zeros(3, b, dtype=torch.float64, device=dev)
        self.late: list[list[float]] = [[] for _ in range(b)]
        self.rec_steps, self.rec = [0], [d0.clone()]

    def stepped(self, walk: Walk, step: Step) -> None:
        idx, xa, s, moved, new = step.idx, step.before, step.step, step.moved, step.after
        s_in = tangent_projection_from_jacobian(step.context["jac"], s, rtol=self.rtol)
        d = self.target[idx]

        def f(z: torch.Tensor) -> torch.Tensor:
            return (d - z).flatten(1).double().pow(2).sum(1)

        f0, f_in, f_s, f_new = f(xa), f(xa + s_in), f(moved), f(new)
        self.falls[0, idx] += f0 - f_in
        self.falls[1, idx] += f_in - f_s
        self.falls[2, idx] += f_s - f_new
        share = ((s - s_in).flatten(1).norm(dim=1) / s.flatten(1).norm(dim=1)).tolist()
        self.plen[idx] += (new - xa).flatten(1).norm(dim=1).double()
        self.dmin[idx] = torch.minimum(self.dmin[idx], walk.dist[idx])
        for k, i in enumerate(idx.tolist()):
            self.late[i].append(share[k])
            if len(self.late[i]) > 100:
                self.late[i].pop(0)

    def stopped(self, walk: Walk, i: int) -> None:
        if self.on_finish is None:
            return
        self.on_finish(
            i,
            {
                "projection": self.projs[i],
                "rule": self.rules[i],
                "clamp": self.clamps[i],
                "reached": walk.stop_reasons[i] == "reached",
                "initial_distance": float(self.d0[i]),
                "final_distance": float(walk.dist[i]),
                "min_distance": float(self.dmin[i]),
                "stall_step": int(walk.stall_step[i]),
                "steps": int(walk.steps_taken[i]),
                "path_length": float(self.plen[i]),
                "reason": walk.stop_reasons[i],
                "fall_in": float(self.falls[0, i]),
                "fall_off": float(self.falls[1, i]),
                "fall_clamp": float(self.falls[2, i]),
                "off_share_late": _median(self.late[i]),
            },
        )

    def recorded(self, walk: Walk, t: int) -> None:
        if t % self.every != 0:
            return
        self.rec_steps.append(t)
        self.rec.append(torch.where(walk.active | (walk.steps_taken == t), walk.dist, torch.nan))
        if self.on_record is not None:
            self.on_record(torch.tensor(self.rec_steps), torch.stack(self.rec))


def _median(values: list[float]) -> float:
    if not values:
        return float("nan")
    return float(torch.tensor(values).median())
