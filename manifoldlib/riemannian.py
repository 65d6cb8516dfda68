"""The leaf as a Riemannian manifold: lengths with the metric G, and its geodesics.

Section 3 of the paper equips each leaf with the metric ``G(x, w)`` restricted to ``D_x``.
``G = J_p^T diag(1/p) J_p`` is the pull-back of the Fisher metric of the categorical
distributions by ``x -> p(.|x, w)``: ``delta^T G delta = sum_i (d p_i)^2 / p_i`` to first
order. So the G-length of a path equals the Fisher-Rao length of the curve its predictions
trace on the simplex, which is at least the Fisher-Rao distance ``2 arccos sum_i sqrt(p_i q_i)``
between its endpoints' predictions (at most pi).

``p -> 2 sqrt(p)`` maps the simplex with that metric isometrically onto a piece of the sphere
of radius 2 in ``R^C``. Where the leaf has dimension ``C - 1`` the map ``x -> p`` is a local
diffeomorphism of the leaf onto the simplex, so the leaf with the metric ``G`` is locally
isometric to that sphere: its geodesics are the curves whose predictions run along great
circles, and their G-length is the Fisher-Rao distance.

- lengths: :func:`euclidean_lengths`, :func:`metric_lengths` (``sqrt(delta^T G delta)`` per
  segment, one forward-mode pass per segment), :func:`prediction_path_length`,
  :func:`fisher_rao_distance`;
- the sphere: :func:`sphere_embedding`, :func:`great_circle`;
- geodesics: :func:`leaf_geodesic` lifts a great circle to the leaf, a
  :class:`GeodesicResult`. At each step it moves ``x`` inside ``D_x`` so that the prediction
  lands on the next point of the circle. Inside one linear region of a ReLU network the score
  differences are affine in ``x``, so the condition ``p(x + delta) = q_t`` is a linear system
  of ``C - 1`` equations in ``delta``; with ``delta = R^T c`` (``R``: the ``C - 1`` rows
  ``grad s_i - grad s_C``, a basis of ``D_x``) it is one ``(C-1) x (C-1)`` solve, and ``delta``
  is the shortest step that achieves it. A step that crosses a region boundary misses its
  planned point by a little; the next step aims at the circle again from where it landed.

Introduced in the chapter "Leaf pieces as Riemannian manifolds" (book/16).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import _jacobian as _jac
from ._checks import (
    CHUNK,
    check_finite,
    check_input,
    check_positive,
    check_same_shape,
    check_tensor,
    eval_mode,
)
from .geometry import log_probabilities

__all__ = [
    "GeodesicResult",
    "euclidean_lengths",
    "fisher_rao_distance",
    "great_circle",
    "leaf_geodesic",
    "metric_lengths",
    "prediction_path_length",
    "sphere_embedding",
]


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
    converges to the G-length of the path as the steps shrink. Each segment costs one
    forward-mode pass (``torch.func.jvp``) at its base point, not a Jacobian.

    Args:
        model: classifier returning scores ``(B, C)``.
        points: ``(R, B, *input_shape)`` recorded points of B paths.
        rule: ``"left"`` evaluates G at ``x_t``, ``"right"`` at ``x_{t+1}``, ``"mean"`` averages
            the two lengths (trapezoid rule; twice the cost).
        chunk: segments per batched forward-mode pass.

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
        with eval_mode(model):
            q = [
                _jac.metric_quadratic(model, b, d)
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


def sphere_embedding(p: torch.Tensor) -> torch.Tensor:
    """The isometry ``p -> 2 sqrt(p)`` of the Fisher-Rao simplex onto the sphere of radius 2.

    Args:
        p: ``(..., C)`` probabilities.

    Returns:
        ``(..., C)`` points of the sphere of radius 2 (float64).

    Introduced in the chapter "Leaf pieces as Riemannian manifolds".
    """
    check_tensor(p, "p")
    return 2.0 * p.double().clamp_min(0).sqrt()


def great_circle(p: torch.Tensor, q: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points of the Fisher-Rao geodesic from ``p`` to ``q``, as probabilities.

    On the sphere ``u = sqrt(p)``, ``v = sqrt(q)`` (unit vectors), ``cos theta = u . v``, the
    great circle is ``(sin((1 - t) theta) u + sin(t theta) v) / sin theta``; squaring it gives
    the probabilities. ``t`` runs from 0 (``p``) to 1 (``q``) at constant speed.

    Args:
        p: ``(B, C)`` probabilities at the start.
        q: ``(B, C)`` probabilities at the end.
        t: ``(T,)`` parameters in ``[0, 1]``.

    Returns:
        ``(T, B, C)`` probabilities (float64), each row summing to 1.

    Introduced in the chapter "Leaf pieces as Riemannian manifolds".
    """
    check_tensor(p, "p", min_dim=2)
    check_tensor(q, "q", min_dim=2)
    check_tensor(t, "t", min_dim=1)
    if p.shape != q.shape:
        raise ValueError(
            f"p and q must have the same shape, got {tuple(p.shape)}, {tuple(q.shape)}"
        )
    u, v = p.double().clamp_min(0).sqrt(), q.double().clamp_min(0).sqrt()
    u = u / u.norm(dim=-1, keepdim=True)
    v = v / v.norm(dim=-1, keepdim=True)
    theta = torch.arccos((u * v).sum(-1).clamp(-1.0, 1.0))  # (B,)
    t = t.double().view(-1, 1, 1)
    th = theta.view(1, -1, 1)
    small = th < 1e-9
    sin_th = torch.where(small, torch.ones_like(th), th.sin())
    a = torch.where(small, 1 - t, ((1 - t) * th).sin() / sin_th)
    b = torch.where(small, t, (t * th).sin() / sin_th)
    w = a * u.unsqueeze(0) + b * v.unsqueeze(0)
    probs = w.pow(2)
    return probs / probs.sum(-1, keepdim=True)


@dataclass
class GeodesicResult:
    """Lifts of great circles to the leaf, batched over B pairs.

    Attributes:
        points: ``(T + 1, B, *input_shape)`` the points of each lift.
        probabilities: ``(T + 1, B, C)`` the model's probabilities at the points.
        planned: ``(T + 1, B, C)`` the probabilities of the great circle at the same ``t``.
        deviation: ``(T + 1, B)`` ``||2 sqrt(p) - 2 sqrt(planned)||``: how far the prediction
            is from the great circle (radius-2 sphere units).
        miss: ``(T, B)`` the same distance just after each step, before the next one aims
            again: round-off inside a linear region, larger where the step crossed a region
            boundary (or was clamped).
        segment_lengths: ``(T, B)`` G-length of each net step ``delta = x_{t+1} - x_t``, ``sqrt(delta^T G(x_t) delta)``
            (left-point rule, as ``ml.metric_lengths``), float64.
        step_norms: ``(T, B)`` Euclidean length of each step.
        box_violation: ``(T, B)`` how far the unclamped step took a pixel outside the clamp
            range (0 without a clamp or inside it).
        off_leaf: ``(T, B)`` relative size ``||(I - P) delta|| / ||delta||`` of the part of each
            step outside ``D_x`` (0 up to round-off unless clamped).
        stopped: ``(B,)`` the step after which the lift was stopped (``T`` if never).
        stop_reasons: one string per pair: ``"arrived"``, ``"left the circle"``,
            ``"degenerate D_x"`` or ``"non-finite"`` (see :data:`manifoldlib.paths.STOP_REASONS`).

    Introduced in the chapter "Leaf pieces as Riemannian manifolds".
    """

    points: torch.Tensor
    probabilities: torch.Tensor
    planned: torch.Tensor
    deviation: torch.Tensor
    miss: torch.Tensor
    segment_lengths: torch.Tensor
    step_norms: torch.Tensor
    box_violation: torch.Tensor
    off_leaf: torch.Tensor
    stopped: torch.Tensor
    stop_reasons: list[str]

    @property
    def steps_taken(self) -> torch.Tensor:
        """``(B,)`` steps each lift made before it stopped (``stopped``: one vocabulary with paths)."""
        return self.stopped

    def g_length(self) -> torch.Tensor:
        """``(B,)`` G-length of each lift (sum of its segment lengths), float64."""
        return self.segment_lengths.sum(0)

    def __repr__(self) -> str:
        arrived = sum(r == "arrived" for r in self.stop_reasons)
        return (
            f"GeodesicResult(pairs={self.points.shape[1]}, steps={self.points.shape[0] - 1}, "
            f"arrived={arrived}/{len(self.stop_reasons)})"
        )


def _difference_rows(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``grad s_i - grad s_C``, ``i < C`` ``(B, C-1, n)`` float64 (a basis of D_x), log p.

    From the ``C - 1`` backward passes of :func:`~manifoldlib._jacobian.difference_jacobian`:
    its rows are ``H^T S``, and ``e_i - e_C = H H^T (e_i - e_C)`` (the difference sums to
    zero), so ``grad s_i - grad s_C = (H_i - H_C) H^T S``.
    """
    with eval_mode(model):
        rows, logp = _jac.difference_jacobian(model, x)
    h = _jac.helmert(logp.shape[1], torch.float64, rows.device)  # (C, C-1)
    return (h[:-1] - h[-1:]) @ rows.flatten(2).double(), logp


def _aim(
    model: nn.Module,
    cur: torch.Tensor,
    log_target: torch.Tensor,
    clamp: tuple[float | torch.Tensor, float | torch.Tensor] | None,
) -> tuple[torch.Tensor, ...]:
    """One step from ``cur`` towards the probabilities ``exp(log_target)`` ``(B, C)``."""
    b = cur.shape[0]
    shape = (-1,) + (1,) * (cur.dim() - 1)
    rows, logp = _difference_rows(model, cur)  # (B, C-1, n)
    lp = logp.double()
    need = (log_target[:, :-1] - log_target[:, -1:]) - (lp[:, :-1] - lp[:, -1:])
    gram = rows @ rows.transpose(1, 2)
    coef, info = torch.linalg.solve_ex(gram, need.unsqueeze(-1))
    delta = (rows.transpose(1, 2) @ coef).reshape(cur.shape)
    bad = (info != 0) | ~torch.isfinite(delta.flatten(1)).all(1)
    delta = torch.where(bad.view(shape), 0.0, delta)
    new = cur.double() + delta
    if clamp is not None:
        lo, hi = clamp
        viol = torch.maximum(lo - new, new - hi).clamp_min(0).flatten(1).amax(1)
        new = new.clamp(lo, hi)
    else:
        viol = torch.zeros(b, dtype=torch.float64)
    moved = (new - cur.double()).flatten(1)
    # The part of the realised step outside D_x (the clamp's doing).
    c2, _ = torch.linalg.solve_ex(gram, rows @ moved.unsqueeze(-1))
    inside = (rows.transpose(1, 2) @ c2).squeeze(-1)
    off = (moved - inside).norm(dim=1)
    return new.to(cur.dtype), moved.norm(dim=1), viol, off, bad, info != 0


def leaf_geodesic(
    model: nn.Module,
    x: torch.Tensor,
    q: torch.Tensor,
    *,
    steps: int = 64,
    clamp: tuple[float | torch.Tensor, float | torch.Tensor] | None = None,
    tolerance: float = 0.05,
    corrections: int = 2,
) -> GeodesicResult:
    """Lift the Fisher-Rao geodesic from ``p(.|x)`` to ``q`` to the leaf through ``x``.

    Step ``k`` aims at ``q_k``, the great-circle point at ``t = k / steps``: with ``S`` the
    score Jacobian at the current point, ``R`` its rows ``grad s_i - grad s_C`` and
    ``r_i = (log q_{k,i} - log q_{k,C}) - (s_i - s_C)`` the change of score differences that
    ``q_k`` needs, solve ``(R R^T) c = r`` and move by ``delta = R^T c`` (in ``D_x``, the
    shortest such step). Exact inside a linear region of a piecewise-linear model. Where a
    step crosses a region boundary and lands off the circle, up to ``corrections`` further
    steps aim at the same ``q_k`` again (Newton's method; one Jacobian each). A pair is
    stopped when its prediction is still farther than ``tolerance`` from the circle
    (radius-2 sphere units), when ``R R^T`` is singular, or when a value is not finite.

    Args:
        model: classifier returning scores ``(B, C)``, piecewise linear for exactness.
        x: starting points ``(B, *input_shape)``.
        q: target probabilities ``(B, C)``, all entries positive.
        steps: number of steps along the circle (equal angles).
        clamp: ``(low, high)``: clamp each point into this range after every step (the
            clamped part of a step leaves D_x and is recorded in ``off_leaf``); ``None``
            lets the lift leave the pixel range, and ``box_violation`` reports where it would.
        tolerance: largest deviation from the circle before a pair is stopped.
        corrections: most extra aiming steps per step, where a step missed by more than
            ``1e-6`` of the sphere's radius.

    Returns:
        A :class:`GeodesicResult`.

    Introduced in the chapter "Leaf pieces as Riemannian manifolds".
    """
    check_input(model, x)
    check_tensor(q, "q", min_dim=2)
    check_finite(q, "q")
    check_positive(steps, "steps", integer=True)
    check_positive(tolerance, "tolerance")
    if not isinstance(corrections, int) or corrections < 0:
        raise ValueError(f"corrections must be a non-negative integer, got {corrections!r}")
    if q.shape[0] != x.shape[0]:
        raise ValueError(f"x and q must hold the same batch, got {x.shape[0]} and {q.shape[0]}")
    if bool((q <= 0).any()):
        raise ValueError("q must have positive entries (a lift cannot reach a vertex)")
    b = x.shape[0]
    p0 = log_probabilities(model, x).exp()
    t = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    planned = great_circle(p0, q.to(p0.dtype), t)  # (T+1, B, C)
    log_plan = planned.clamp_min(torch.finfo(torch.float64).tiny).log()

    cur = x.detach().clone()
    points, probs = [cur.clone()], [p0.double()]
    z = torch.zeros(steps, b, dtype=torch.float64)
    seg, norms, viol, off, miss = z.clone(), z.clone(), z.clone(), z.clone(), z.clone()
    active = torch.ones(b, dtype=torch.bool)
    stopped = torch.full((b,), steps, dtype=torch.long)
    reasons = ["arrived"] * b
    for k in range(1, steps + 1):
        idx = active.nonzero().flatten()
        xa = cur[idx]
        mn = torch.zeros(len(idx), dtype=torch.float64)
        vi, of = mn.clone(), mn.clone()
        bad = torch.zeros(len(idx), dtype=torch.bool)
        singular = bad.clone()
        first_miss = None
        start = xa.clone()
        for _attempt in range(corrections + 1):
            new, m_, v_, o_, bad_, sing_ = _aim(model, xa, log_plan[k, idx], clamp)
            bad |= bad_
            singular |= sing_
            mn, of = mn + m_, of + o_
            vi = torch.maximum(vi, v_)
            xa = new
            pk = log_probabilities(model, xa).exp().double()
            dev = (sphere_embedding(pk) - sphere_embedding(planned[k, idx])).norm(dim=1)
            if first_miss is None:
                first_miss = dev
            if bool((dev[~bad] <= 2e-6).all()):
                break
        cur[idx] = xa
        # G-length of the net step x_{k+1} - x_k at x_k (the rule of ml.metric_lengths):
        # corrections that bounce across a region boundary do not add length to the curve.
        net = (xa.double() - start.double()).flatten(1)
        with eval_mode(model):
            gl = _jac.metric_quadratic(model, start, net.view_as(start)).clamp_min(0).sqrt()
        seg[k - 1, idx], norms[k - 1, idx], viol[k - 1, idx] = gl, net.norm(dim=1), vi
        off[k - 1, idx] = of / mn.clamp_min(1e-300)
        miss[k - 1, idx] = first_miss
        left = ~bad & ((dev > tolerance) | ~torch.isfinite(dev))
        for j in torch.nonzero(bad).flatten().tolist():
            reasons[int(idx[j])] = "degenerate D_x" if bool(singular[j]) else "non-finite"
        for j in torch.nonzero(left).flatten().tolist():
            reasons[int(idx[j])] = "left the circle"
        stopped[idx[bad]] = k - 1
        stopped[idx[left]] = k
        active[idx[bad | left]] = False
        pall = probs[-1].clone()
        pall[idx] = pk
        points.append(cur.clone())
        probs.append(pall)
        if not bool(active.any()):
            for _ in range(k + 1, steps + 1):
                points.append(cur.clone())
                probs.append(pall)
            break
    probabilities = torch.stack(probs)
    deviation = (sphere_embedding(probabilities) - sphere_embedding(planned)).norm(dim=-1)
    return GeodesicResult(
        points=torch.stack(points),
        probabilities=probabilities,
        planned=planned,
        deviation=deviation,
        miss=miss,
        segment_lengths=seg,
        step_norms=norms,
        box_violation=viol,
        off_leaf=off,
        stopped=stopped,
        stop_reasons=reasons,
    )
