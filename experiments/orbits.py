"""Orbits of the distribution D on the book's MNIST networks (chapter 19).

Three parts, all in float64, one thread:

- ``walks``: random horizontal walks (each step ``alpha`` times a random unit vector of
  ``D_x``, no clamp) from test images, on the shared CNN and on chapter 3's ReLU MLP
  (784-64-64-10). After each step, the rank of the span of every ``D_x`` met so far (the
  dimension of the affine hull of what the walk can reach with steps in those subspaces, an
  upper bound on the orbit's dimension) and the number of activation-pattern changes (ReLU
  signs and max-pool switches). Written to ``orbits_walks.csv``.
- ``planner``: a trajectory optimiser over horizontal controls. A path of ``K`` steps
  ``x_{k+1} = x_k + t_k c_k P_k v_k`` (``P_k`` the orthogonal projection on ``D_{x_k}``,
  ``c_k`` the factor that caps the step at ``alpha``, ``t_k`` the factor that keeps the point
  in the pixel box: both shorten the step along itself, so the step stays in ``D_{x_k}``).
  Its end point is piecewise smooth in the controls ``v_k``, with derivative ``t_k c_k (P_k -
  [capped] s_k s_k^T)`` off the faces; Levenberg-Marquardt iterations on the distance to the
  target, starting from greedy descent (Algorithm 1 with the box handled by shortening). The
  budget of horizontal length is ``K alpha``. Per pair: distances, length, crossings, the
  largest off-``D_x`` share of a step (recomputed with ``ml.tangent_projection``), the
  largest excursion out of the pixel box, and the rank of the end-point map's derivative.
  Also the book's Algorithm 1 (``ml.horizontal_path``, alpha 0.1, clamp) on the same pairs.
  Written to ``orbits_planner.csv``.
- ``openness``: the same planner aimed at ``x0 + delta v`` for random unit directions ``v``
  from one test image. Written to ``orbits_openness.csv``.
- ``lmscan``: why the LM planner accepted no update: its first update scaled by ``t`` from 1
  to 1e-5, the rollout's end-point change against the linear prediction; the distance to the
  first pattern change along the first greedy step; tied max-pool windows at the sources.
  Written to ``orbits_lmscan.csv`` and ``orbits_lmscan.json`` (run record).
- ``crossings``: the crossing planner (``crossing_planner``: 12 candidate steps in ``D_x``
  around the greedy step, each scored by a two-step lookahead with ``D`` where it lands),
  greedy descent (no box) and Algorithm 1 (clamp), step 0.1, 200 steps, on the same 16 pairs,
  read at lengths 2.5, 5, 10, 20; per-step traces with the alignment ``|P_x r| / |r|``.
  Written to ``orbits_crossings.csv``, ``orbits_crossings_trace.csv`` and
  ``orbits_crossings.json`` (run record: 8.5 CPU-min, 53 min wall on the shared machine).

``orbits.json`` holds the settings, the commit, versions and the run times of each part.

Run: ``python -m experiments.orbits`` (all parts) or
``--part walks|planner|openness|lmscan|crossings``. The
committed run took the CPU and wall times stored in ``orbits.json`` (a few CPU-minutes on one
thread; the wall times are those of a 2-core machine shared with several other jobs). The
planner part was re-run alone with one budget (50 steps of 0.2) and 3 iterations to fit the
time budget.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import manifoldlib as ml
from experiments.pairs import choose_pairs
from experiments.records import RunRecord, write_csv, write_json

OUT = Path(__file__).parent / "results"
SPAN_TOL = 1e-8  # a new direction counts when its part outside the span exceeds this


def mlp_config() -> ml.TrainConfig:
    """Chapter 3's ReLU MLP, 784-64-64-10: the profile's config (key ``mlp-53999af314fb0895``)."""
    return ml.current_profile().mnist_mlp_config("relu")


def load_models() -> tuple[nn.Module, nn.Module, ml.ImageData]:
    """The shared CNN and chapter 3's MLP in float64, and the MNIST data."""
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source)
    cnn = ml.cached_train(P.mnist_config(), epoch=P.mnist_epoch, progress=False).model
    mlp = ml.cached_train(mlp_config(), progress=False).model
    return copy.deepcopy(cnn).double().eval(), copy.deepcopy(mlp).double().eval(), data


def pattern(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Activation pattern ``(B, units)``: ReLU signs, and max-pool winners for the CNN.

    Args:
        model: an ``ml.MnistCNN`` or an ``ml.MLP``.
        x: inputs ``(B, 1, 28, 28)``.

    Returns:
        ``(B, units)`` integer codes; two inputs share an activation region when equal.
    """
    with torch.no_grad():
        if isinstance(model, ml.MnistCNN):
            f = model.features
            z1 = f[0](x)
            z2 = f[2](torch.relu(z1))
            _, win = F.max_pool2d(torch.relu(z2), 2, return_indices=True)
            pooled = F.max_pool2d(torch.relu(z2), 2).flatten(1)
            h = model.classifier[0](pooled)
            parts = [z1.flatten(1) > 0, z2.flatten(1) > 0, h > 0]
            return torch.cat([p.long() for p in parts] + [win.flatten(1)], 1)
        out, h = [], x.flatten(1)
        layers = list(model.net)[1:]
        for layer, nxt in zip(layers[:-1], layers[1:], strict=True):
            h = layer(h)
            if isinstance(layer, nn.Linear) and not isinstance(nxt, nn.Linear):
                out.append((h > 0).long())
        return torch.cat(out, 1)


def basis(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Orthonormal rows of ``D_x``, ``(B, C-1, n)``, float64."""
    return ml.tangent_basis(model, x)[0].flatten(2)


def grow_span(span: list[torch.Tensor], q: torch.Tensor) -> None:
    """Add to the orthonormal rows ``span[b]`` the directions of ``q[b]`` outside them."""
    for b in range(len(span)):
        u = span[b]
        r = q[b] - (q[b] @ u.T) @ u
        r = r - (r @ u.T) @ u  # twice is enough (Kahan)
        uu, s, vh = torch.linalg.svd(r, full_matrices=False)
        new = vh[s > SPAN_TOL]
        if len(new):
            span[b] = torch.cat([u, new])


def walks(model: nn.Module, x0: torch.Tensor, steps: int, alpha: float, seed: int) -> list[dict]:
    """Random horizontal walks; one row per (start, step) with span rank and crossings."""
    g = torch.Generator().manual_seed(seed)
    n = x0[0].numel()
    x = x0.clone()
    q = basis(model, x)
    span = [q[b] for b in range(len(x))]
    pat = pattern(model, x)
    rows, crossings, switches = [], torch.zeros(len(x), dtype=torch.long), torch.zeros(len(x))
    for k in range(1, steps + 1):
        z = torch.randn(len(x), n, generator=g, dtype=torch.float64)
        v = torch.einsum("bcn,bc->bn", q, torch.einsum("bcn,bn->bc", q, z))
        x = x + alpha * (v / v.norm(dim=1, keepdim=True)).reshape(x.shape)
        q = basis(model, x)
        grow_span(span, q)
        new = pattern(model, x)
        changed = (new != pat).sum(1)
        crossings += (changed > 0).long()
        switches += changed
        pat = new
        for b in range(len(x)):
            rows.append(
                {
                    "start": b,
                    "step": k,
                    "length": round(k * alpha, 10),
                    "span_rank": len(span[b]),
                    "crossings": int(crossings[b]),
                    "unit_switches": int(switches[b]),
                }
            )
    return rows


class Rollout:
    """One rollout of the horizontal control system, with what its linearisation needs."""

    def __init__(self, end, pts, qs, shat, gain, capped, length, off, excursion, crossings):
        self.end, self.pts, self.qs, self.shat = end, pts, qs, shat
        self.gain, self.capped, self.length, self.off = gain, capped, length, off
        self.excursion, self.crossings = excursion, crossings


def rollout(
    model: nn.Module,
    x0: torch.Tensor,
    controls: torch.Tensor | Callable[[int, torch.Tensor], torch.Tensor],
    alpha: float,
    steps: int,
    box: tuple[torch.Tensor, torch.Tensor],
    shorten: bool,
) -> tuple[Rollout, torch.Tensor]:
    """Run ``steps`` horizontal steps; return the rollout and the controls used ``(B, K, n)``.

    With ``shorten`` each step is shortened along itself to keep the point in ``box``;
    otherwise the box is only measured (``excursion``: the largest distance outside it).
    """
    lo, hi = (b.flatten().double() for b in box)
    x = x0.flatten(1).clone()
    shape = x0.shape
    B, n = x.shape
    pts, qs, shat, gain, capped, used = [], [], [], [], [], []
    length = torch.zeros(B, dtype=torch.float64)
    pat = pattern(model, x.reshape(shape))
    crossings = torch.zeros(B, dtype=torch.long)
    for k in range(steps):
        q = basis(model, x.reshape(shape))
        v = controls(k, x) if callable(controls) else controls[:, k]
        s = torch.einsum("bcn,bc->bn", q, torch.einsum("bcn,bn->bc", q, v))
        norm = s.norm(dim=1).clamp_min(1e-300)
        c = torch.clamp(alpha / norm, max=1.0)
        s = s * c[:, None]
        # box: the largest t <= 1 keeping x + t s inside [lo, hi] (shortening, not clamping)
        up = torch.where(s > 0, (hi - x) / s, torch.inf)
        dn = torch.where(s < 0, (lo - x) / s, torch.inf)
        t = torch.clamp(torch.minimum(up, dn).amin(1) * (1 - 1e-12), min=0.0, max=1.0)
        t = t if shorten else torch.ones_like(t)
        s = s * t[:, None]
        pts.append(x)
        qs.append(q)
        shat.append(s / s.norm(dim=1, keepdim=True).clamp_min(1e-300))
        gain.append(c * t)
        capped.append(norm >= alpha * (1 - 1e-9))  # at the cap: only rotations act
        used.append(v)
        length += s.norm(dim=1)
        x = x + s
        new = pattern(model, x.reshape(shape))
        crossings += (new != pat).any(1).long()
        pat = new
    pts.append(x)
    P = torch.stack(pts)  # (K+1, B, n)
    off = torch.zeros(B, dtype=torch.float64)  # filled by off_share for the final paths
    excursion = torch.maximum((lo - P).amax((0, 2)), (P - hi).amax((0, 2))).clamp_min(0)
    r = Rollout(
        x, P, torch.stack(qs, 1), torch.stack(shat, 1), torch.stack(gain, 1),
        torch.stack(capped, 1), length, off, excursion, crossings,
    )  # fmt: skip
    return r, torch.stack(used, 1)


def off_share(model: nn.Module, r: Rollout, shape: torch.Size) -> torch.Tensor:
    """Largest ``||s - P_x s|| / ||s||`` over the steps, with the library's projection."""
    P = r.pts
    off = torch.zeros(P.shape[1], dtype=torch.float64)
    for k in range(len(P) - 1):
        sk = P[k + 1] - P[k]
        nk = sk.norm(dim=1)
        proj = ml.tangent_projection(model, P[k].reshape(shape), sk.reshape(shape)).flatten(1)
        share = torch.where(nk > 0, (sk - proj).norm(dim=1) / nk.clamp_min(1e-300), 0.0)
        off = torch.maximum(off, share)
    return off


def metric(r: Rollout) -> torch.Tensor:
    """``M_b = sum_k J_k J_k^T`` with ``J_k`` the derivative of the end point in ``v_k``."""
    g2 = r.gain**2  # (B, K)
    M = torch.einsum("bk,bkcn,bkcm->bnm", g2, r.qs, r.qs)
    cap = g2 * r.capped.double()
    return M - torch.einsum("bk,bkn,bkm->bnm", cap, r.shat, r.shat)


def lm_update(r: Rollout, target: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """Levenberg-Marquardt change of the controls, ``(B, K, n)``."""
    M = metric(r)
    res = target - r.end
    n = M.shape[-1]
    z = torch.linalg.solve(M + lam[:, None, None] * torch.eye(n, dtype=M.dtype), res)
    pz = torch.einsum("bkcn,bkc->bkn", r.qs, torch.einsum("bkcn,bn->bkc", r.qs, z))
    capped = r.capped.double()[..., None]
    pz = pz - capped * r.shat * torch.einsum("bkn,bn->bk", r.shat, z)[..., None]
    return r.gain[..., None] * pz


def derivative_rank(r: Rollout, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank of the end-point map's derivative, and the share of the residual in its range.

    The rank counts eigenvalues of ``M`` above ``1e-10`` of the largest; the share is
    ``||Proj_range(M) (target - end)|| / ||target - end||``: how much of what is left to do
    the controls can change to first order.
    """
    ev, u = torch.linalg.eigh(metric(r))
    keep = ev > 1e-10 * ev[:, -1:]
    res = target - r.end
    coef = torch.einsum("bnm,bn->bm", u, res) * keep
    return keep.sum(1), coef.norm(dim=1) / res.norm(dim=1)


def plan(model, x0, target, *, alpha, steps, iters, box, shorten, log=print) -> dict:
    """Greedy descent, then LM iterations over the controls; per-pair results."""
    tflat = target.flatten(1)

    def greedy_control(k: int, x: torch.Tensor) -> torch.Tensor:
        # d - x scaled so that its projection has length alpha: the step is not capped
        q = basis(model, x.reshape(x0.shape))
        v = tflat - x
        pv = torch.einsum("bcn,bc->bn", q, torch.einsum("bcn,bn->bc", q, v))
        return v * (alpha / pv.norm(dim=1, keepdim=True).clamp_min(1e-300))

    greedy, V = rollout(model, x0, greedy_control, alpha, steps, box, shorten)
    d0 = (tflat - x0.flatten(1)).norm(dim=1)
    best, dist = copy.copy(greedy), (tflat - greedy.end).norm(dim=1)  # greedy stays as it was
    accepted = torch.zeros(len(x0), dtype=torch.long)
    lam = torch.ones(len(x0), dtype=torch.float64)
    history = [dist.clone()]
    for it in range(iters):
        cand_V = V + lm_update(best, tflat, lam)
        cand, _ = rollout(model, x0, cand_V, alpha, steps, box, shorten)
        cd = (tflat - cand.end).norm(dim=1)
        ok = cd < dist
        for name in vars(best):
            old, new = getattr(best, name), getattr(cand, name)
            idx = 1 if name == "pts" else 0
            m = ok.reshape([-1 if i == idx else 1 for i in range(old.dim())])
            setattr(best, name, torch.where(m, new, old))
        V = torch.where(ok[:, None, None], cand_V, V)
        dist = torch.where(ok, cd, dist)
        accepted += ok.long()
        lam = torch.where(ok, lam / 3, lam * 10)
        history.append(dist.clone())
        log(f"  iter {it + 1}: median final/initial {float((dist / d0).median()):.3f}")
    greedy.off = off_share(model, greedy, x0.shape)
    best.off = off_share(model, best, x0.shape)
    return {
        "d0": d0,
        "greedy": greedy,
        "best": best,
        "dist": dist,
        "rank": derivative_rank(best, tflat)[0],
        "share": derivative_rank(best, tflat)[1],
        "history": torch.stack(history),
        "accepted": accepted,
    }


def pairs(labels: torch.Tensor, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` seeded (source, target) index pairs of test images of different classes."""
    return choose_pairs(labels, n, seed, rule="other_class")


def run_walks(cnn, mlp, data, *, starts=8, steps=300, alpha=0.1, seed=23) -> list[dict]:
    """Random-walk part for both networks."""
    idx = torch.arange(starts) * (len(data.test_x) // starts)
    rows = []
    for name, model in (("cnn", cnn), ("mlp", mlp)):
        for r in walks(model, data.test_x[idx].double(), steps, alpha, seed):
            rows.append({"model": name, "image": int(idx[r["start"]]), **r})
    return rows


def run_planner(
    cnn,
    data,
    *,
    n_pairs=16,
    alpha=0.2,
    budgets=(50,),
    iters=3,
    a1_lengths=(2.5, 5, 10, 20),
    log=print,
):
    """Planner and greedy descent at each budget, and the book's Algorithm 1."""
    src, tgt = pairs(data.test_y, n_pairs, seed=23)
    x0, d = data.test_x[src].double(), data.test_x[tgt].double()
    box = tuple(b.double() for b in data.pixel_range)
    rows = []
    for steps in budgets:
        log(f"budget {steps} steps of {alpha} (length {steps * alpha:.0f})")
        res = plan(
            cnn, x0, d, alpha=alpha, steps=steps, iters=iters, box=box, shorten=False, log=log
        )
        for which, r in (("greedy", res["greedy"]), ("planner", res["best"])):
            fin = (d.flatten(1) - r.end).norm(dim=1)
            for b in range(n_pairs):
                rows.append(
                    {
                        "method": which,
                        "budget_length": round(steps * alpha, 10),
                        "alpha": alpha,
                        "steps": steps,
                        "pair": b,
                        "source": int(src[b]),
                        "target": int(tgt[b]),
                        "initial_distance": float(res["d0"][b]),
                        "final_distance": float(fin[b]),
                        "ratio": float(fin[b] / res["d0"][b]),
                        "reached": int(fin[b] < 1.0),
                        "length": float(r.length[b]),
                        "crossings": int(r.crossings[b]),
                        "off_D_share_max": float(r.off[b]),
                        "box_excursion_max": float(r.excursion[b]),
                        "derivative_rank": int(res["rank"][b]) if which == "planner" else -1,
                        "accepted_updates": int(res["accepted"][b]) if which == "planner" else -1,
                        "residual_share_in_range": float(res["share"][b])
                        if which == "planner"
                        else float("nan"),
                    }
                )
    # The book's Algorithm 1 at the paper's settings (alpha 0.1, clamp), read at several
    # lengths (the approach per unit of horizontal length).
    path = ml.horizontal_path(
        cnn, x0, d, step_size=0.1, max_steps=round(max(a1_lengths) / 0.1), clamp=data.pixel_range
    )
    for top in a1_lengths:
        k = min(round(top / 0.1), len(path.distances) - 1)
        for b in range(n_pairs):
            dist = float(path.distances[k, b])
            rows.append(
                {
                    "method": "algorithm1",
                    "budget_length": top,
                    "alpha": 0.1,
                    "steps": k,
                    "pair": b,
                    "source": int(src[b]),
                    "target": int(tgt[b]),
                    "initial_distance": float(path.distances[0, b]),
                    "final_distance": dist,
                    "ratio": dist / float(path.distances[0, b]),
                    "reached": int(dist < 1.0),
                    "length": float(
                        ml.riemannian.euclidean_lengths(path.points[: k + 1, b : b + 1]).sum()
                    ),
                    "crossings": -1,
                    "off_D_share_max": float("nan"),
                    "box_excursion_max": 0.0,
                    "derivative_rank": -1,
                    "accepted_updates": -1,
                    "residual_share_in_range": float("nan"),
                }
            )
    return rows


def run_openness(cnn, data, *, image=0, n_dirs=8, delta=2.0, alpha=0.1, steps=60, iters=4,
                 seed=29, log=print):  # fmt: skip
    """Planner aimed at ``x0 + delta v`` for random unit ``v`` (the orbit in R^n, box measured)."""
    g = torch.Generator().manual_seed(seed)
    x0 = data.test_x[[image] * n_dirs].double()
    v = torch.randn(n_dirs, x0[0].numel(), generator=g, dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True)
    target = x0 + delta * v.reshape(x0.shape)
    box = tuple(b.double() for b in data.pixel_range)
    res = plan(
        cnn, x0, target, alpha=alpha, steps=steps, iters=iters, box=box, shorten=False, log=log
    )
    fin = res["dist"]
    q0 = basis(cnn, x0[:1])[0]
    rows = []
    for b in range(n_dirs):
        rows.append(
            {
                "image": image,
                "direction": b,
                "delta": delta,
                "share_of_v_in_D_x0": float((q0 @ v[b]).norm()),
                "greedy_final": float((target[b].flatten() - res["greedy"].end[b]).norm()),
                "planner_final": float(fin[b]),
                "ratio": float(fin[b] / delta),
                "length": float(res["best"].length[b]),
                "budget_length": steps * alpha,
                "crossings": int(res["best"].crossings[b]),
                "off_D_share_max": float(res["best"].off[b]),
                "derivative_rank": int(res["rank"][b]),
                "accepted_updates": int(res["accepted"][b]),
                "residual_share_in_range": float(res["share"][b]),
            }
        )
    return rows


# --- Part "crossings": a planner that chooses its region crossings ---------------------------


def project(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``P v`` for orthonormal rows ``q`` ``(..., C-1, n)`` and vectors ``v`` ``(..., n)``."""
    return torch.einsum("...cn,...c->...n", q, torch.einsum("...cn,...n->...c", q, v))


def unit(v: torch.Tensor) -> torch.Tensor:
    """``v`` normalised along its last axis."""
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-300)


def crossing_planner(
    model: nn.Module,
    x0: torch.Tensor,
    target: torch.Tensor,
    *,
    alpha: float,
    steps: int,
    sigmas: tuple[float, ...],
    seed: int,
    log: Callable[[str], None] = print,
) -> dict:
    """Greedy descent that chooses which activation region to cross into (no box, float64).

    At each point ``x`` with residual ``r = target - x`` it builds ``M = len(sigmas)``
    candidate steps of length ``alpha`` in ``D_x``: ``alpha * unit(g + sigma_j w_j)`` with
    ``g`` the unit greedy direction (the projection of ``r`` on ``D_x``) and ``w_j`` a random
    unit vector of ``D_x`` (``sigma = 0``: the greedy step itself). Every candidate lands in a
    different activation region (on the CNN a step of 0.1 crosses thousands of faces); the
    planner computes ``D`` there and scores the candidate by the distance left after it and
    one greedy step of length ``alpha`` from where it lands (a two-step lookahead), and takes
    the best candidate's step. With ``sigmas == (0,)`` it is greedy descent (Algorithm 1
    without the clamp). Each step is ``alpha`` times a combination of the rows of the
    orthonormal basis of ``D_x`` at its start, so it is horizontal up to round-off.

    Args:
        model: the float64 classifier.
        x0: sources ``(B, 1, 28, 28)``.
        target: targets ``(B, 1, 28, 28)``.
        alpha: the length of every step.
        steps: the number of steps (the budget of horizontal length is ``steps * alpha``).
        sigmas: the spread of each candidate around the greedy direction.
        seed: seed of the random directions ``w_j``.
        log: progress printer.

    Returns:
        ``points`` ``(K+1, B, n)``, ``distances`` ``(K+1, B)``, ``alignment`` ``(K+1, B)``
        (``|P_x r| / |r|``: no horizontal path approaches the target faster than this per unit
        length at ``x``), ``cross`` ``(K, B)`` (whether step ``k`` changed the activation
        pattern), ``switches`` ``(K, B)`` (how many units changed), ``chosen`` ``(K, B)``
        (the index of the chosen candidate).
    """
    g = torch.Generator().manual_seed(seed)
    shape, tf = x0.shape, target.flatten(1)
    B, n = tf.shape
    M = len(sigmas)
    sig = torch.tensor(sigmas, dtype=torch.float64)[None, :, None]
    x = x0.flatten(1).clone()
    q = basis(model, x0)
    pat = pattern(model, x0)
    pts, dist, align, cross, sw, chosen = [x], [], [], [], [], []
    for k in range(steps):
        r = tf - x
        pr = project(q, r)
        dist.append(r.norm(dim=1))
        align.append(pr.norm(dim=1) / r.norm(dim=1))
        z = torch.randn(B, M, q.shape[1], generator=g, dtype=torch.float64)
        w = unit(torch.einsum("bcn,bmc->bmn", q, z))
        u = unit(unit(pr)[:, None] + sig * w)  # (B, M, n), in D_x
        u = project(q[:, None], u)  # round-off back onto D_x (changes u by ~1e-16)
        u = u * (alpha / u.norm(dim=-1, keepdim=True))
        cand = x[:, None] + u
        qc = basis(model, cand.reshape(B * M, *shape[1:])).reshape(B, M, -1, n)
        rc = tf[:, None] - cand
        a = project(qc, rc).norm(dim=-1)
        t = torch.clamp(a, max=alpha)
        score = (rc.norm(dim=-1) ** 2 - 2 * t * a + t**2).clamp_min(0).sqrt()
        j = score.argmin(1)
        ar = torch.arange(B)
        x, q = cand[ar, j], qc[ar, j]
        new = pattern(model, x.reshape(shape))
        changed = (new != pat).sum(1)
        cross.append(changed > 0)
        sw.append(changed)
        chosen.append(j)
        pat = new
        pts.append(x)
        if (k + 1) % 50 == 0:
            d0 = dist[0]
            left = (tf - x).norm(dim=1)
            log(f"  step {k + 1}: median final/initial {float((left / d0).median()):.4f}")
    r = tf - x
    dist.append(r.norm(dim=1))
    align.append(project(q, r).norm(dim=1) / r.norm(dim=1))
    return {
        "points": torch.stack(pts),
        "distances": torch.stack(dist),
        "alignment": torch.stack(align),
        "cross": torch.stack(cross),
        "switches": torch.stack(sw),
        "chosen": torch.stack(chosen),
    }


def step_off_shares(model: nn.Module, points: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``(K, B)`` off-``D_x`` share ``||s - P_x s|| / ||s||`` of each step (library projection)."""
    out = []
    for k in range(len(points) - 1):
        s = points[k + 1] - points[k]
        ns = s.norm(dim=1)
        proj = ml.tangent_projection(model, points[k].reshape(shape), s.reshape(shape))
        share = (s - proj.flatten(1)).norm(dim=1) / ns.clamp_min(1e-300)
        out.append(torch.where(ns > 0, share, 0.0))
    return torch.stack(out)


def box_excursion(points: torch.Tensor, box: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``(K+1, B)`` how far each point lies outside the pixel box (largest coordinate)."""
    lo, hi = (b.flatten().double() for b in box)
    return torch.maximum((lo - points).amax(2), (points - hi).amax(2)).clamp_min(0)


CROSSING_SETTINGS = {
    "pairs": 16,
    "pair_seed": 23,
    "alpha": 0.1,
    "steps": 200,
    "reads": [2.5, 5, 10, 20],
    "sigmas": [0, 0.05, 0.05, 0.1, 0.1, 0.2, 0.2, 0.4, 0.4, 0.8, 0.8, 1.6],
    "seed": 31,
}


def run_crossings(cnn, data, settings=CROSSING_SETTINGS, log=print) -> tuple[list, list]:
    """The crossing planner, greedy descent (no box) and Algorithm 1 (clamp) on the pairs.

    Returns per-pair rows at each read length and per-step trace rows.
    """
    S = settings
    src, tgt = pairs(data.test_y, S["pairs"], seed=S["pair_seed"])
    x0, d = data.test_x[src].double(), data.test_x[tgt].double()
    box = tuple(b.double() for b in data.pixel_range)
    alpha, K = S["alpha"], S["steps"]
    runs = {}
    for method, sigmas in (("greedy", (0.0,)), ("crossing", tuple(S["sigmas"]))):
        log(f"{method}: {K} steps of {alpha}, {len(sigmas)} candidates per step")
        c0 = time.process_time()
        res = crossing_planner(
            cnn, x0, d, alpha=alpha, steps=K, sigmas=sigmas, seed=S["seed"], log=log
        )
        res["cpu_s"] = time.process_time() - c0
        res["off"] = step_off_shares(cnn, res["points"], x0.shape)
        res["excursion"] = box_excursion(res["points"], box)
        res["lengths"] = torch.cat(
            [torch.zeros(1, len(x0)), (res["points"][1:] - res["points"][:-1]).norm(dim=2)]
        ).cumsum(0)
        runs[method] = res
    log("algorithm1: step 0.1, clamp")
    c0 = time.process_time()
    path = ml.horizontal_path(cnn, x0, d, step_size=alpha, max_steps=K, clamp=data.pixel_range)
    pts = path.points.flatten(2)
    a1 = {
        "points": pts,
        "distances": path.distances,
        "alignment": torch.full(path.distances.shape, float("nan"), dtype=torch.float64),
        "cross": (pattern_changes(cnn, pts, x0.shape) > 0),
        "switches": pattern_changes(cnn, pts, x0.shape),
        "chosen": torch.zeros(len(pts) - 1, len(x0), dtype=torch.long),
        "off": step_off_shares(cnn, pts, x0.shape),
        "excursion": box_excursion(pts, box),
        "lengths": torch.cat([torch.zeros(1, len(x0)), (pts[1:] - pts[:-1]).norm(dim=2)]).cumsum(0),
    }
    a1["cpu_s"] = time.process_time() - c0
    runs["algorithm1"] = a1
    rows, trace = [], []
    for method, res in runs.items():
        D = res["distances"]
        for read in S["reads"]:
            k = min(round(read / alpha), len(D) - 1)
            for b in range(len(x0)):
                rows.append(
                    {
                        "method": method,
                        "budget_length": read,
                        "alpha": alpha,
                        "steps": k,
                        "pair": b,
                        "source": int(src[b]),
                        "target": int(tgt[b]),
                        "initial_distance": float(D[0, b]),
                        "final_distance": float(D[k, b]),
                        "ratio": float(D[k, b] / D[0, b]),
                        "reached": int(D[k, b] < 1.0),
                        "length": float(res["lengths"][k, b]),
                        "crossings": int(res["cross"][:k, b].sum()),
                        "unit_switches": int(res["switches"][:k, b].sum()),
                        "off_D_share_max": float(res["off"][:k, b].max()),
                        "box_excursion_max": float(res["excursion"][: k + 1, b].max()),
                        "non_greedy_steps": int((res["chosen"][:k, b] > 0).sum()),
                        "cpu_s_all_pairs": round(res["cpu_s"], 1),
                    }
                )
        for k in range(len(D)):
            for b in range(len(x0)):
                trace.append(
                    {
                        "method": method,
                        "pair": b,
                        "step": k,
                        "length": float(res["lengths"][k, b]),
                        "distance": float(D[k, b]),
                        "alignment": float(res["alignment"][k, b]),
                    }
                )
    return rows, trace


def pattern_changes(model: nn.Module, points: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``(K, B)`` number of units whose state changed between consecutive points."""
    pats = [pattern(model, p.reshape(shape)) for p in points]
    return torch.stack([(b != a).sum(1) for a, b in zip(pats[:-1], pats[1:], strict=True)])


def pool_ties(model: ml.MnistCNN, x: torch.Tensor) -> torch.Tensor:
    """``(B,)`` max-pool windows whose two largest (post-ReLU) inputs are equal and positive.

    At such an input the max-pool winner, hence ``D_x``, changes under arbitrarily small
    perturbations: the input lies on a face.
    """
    with torch.no_grad():
        f = model.features
        a = torch.relu(f[2](torch.relu(f[0](x))))  # (B, 64, 24, 24)
        win = a.unfold(2, 2, 2).unfold(3, 2, 2).flatten(-2)  # (B, 64, 12, 12, 4)
        top = win.topk(2, dim=-1).values
        return ((top[..., 0] == top[..., 1]) & (top[..., 0] > 0)).flatten(1).sum(1)


def run_lmscan(cnn, data, *, n_pairs=4, alpha=0.2, steps=50, lam=1.0, log=print) -> list[dict]:
    """Why Levenberg-Marquardt accepted nothing: its linear model against the rollout.

    From greedy descent's controls ``V`` (the LM planner's start), the LM change ``dV`` (damping
    ``lam``) is scaled by ``t``; the rollout's end-point change is compared with the linear
    prediction ``t J dV``. Also per pair: the distance to the first activation-pattern change
    along the first greedy step (bisection on the pattern, 40 halvings of ``alpha``) and the
    number of tied max-pool windows at the source image.
    """
    src, tgt = pairs(data.test_y, 16, seed=23)
    x0, d = data.test_x[src[:n_pairs]].double(), data.test_x[tgt[:n_pairs]].double()
    tf = d.flatten(1)
    box = tuple(b.double() for b in data.pixel_range)

    def greedy_control(k: int, x: torch.Tensor) -> torch.Tensor:
        q = basis(cnn, x.reshape(x0.shape))
        v = tf - x
        return v * (alpha / project(q, v).norm(dim=1, keepdim=True))

    r, V = rollout(cnn, x0, greedy_control, alpha, steps, box, False)
    dist0 = (tf - r.end).norm(dim=1)
    M = metric(r)
    res = tf - r.end
    lamt = torch.full((n_pairs,), lam, dtype=torch.float64)
    dV = lm_update(r, tf, lamt)
    z = torch.linalg.solve(M + lam * torch.eye(M.shape[-1], dtype=M.dtype), res)
    pred = torch.einsum("bnm,bm->bn", M, z)
    # first face along the first greedy step, from the source image
    x = x0.flatten(1)
    u = unit(project(basis(cnn, x0), tf - x))
    p0 = pattern(cnn, x0)
    lo = torch.zeros(n_pairs, dtype=torch.float64)
    hi = torch.full((n_pairs,), alpha, dtype=torch.float64)
    for _ in range(40):
        mid = (lo + hi) / 2
        same = (pattern(cnn, (x + mid[:, None] * u).reshape(x0.shape)) == p0).all(1)
        lo, hi = torch.where(same, mid, lo), torch.where(same, hi, mid)
    ties = pool_ties(cnn, x0)
    rows = []
    for t in (1.0, 0.3, 0.1, 0.03, 0.01, 1e-3, 1e-4, 1e-5):
        c, _ = rollout(cnn, x0, V + t * dV, alpha, steps, box, False)
        act = c.end - r.end
        dd = (tf - c.end).norm(dim=1)
        pd = (res - t * pred).norm(dim=1)
        log(f"  t={t:g}: distance change {(dd - dist0).numpy().round(4)}")
        for b in range(n_pairs):
            rows.append(
                {
                    "pair": b,
                    "t": t,
                    "lam": lam,
                    "greedy_final": float(dist0[b]),
                    "distance_change": float(dd[b] - dist0[b]),
                    "predicted_change": float(pd[b] - dist0[b]),
                    "end_change": float(act[b].norm()),
                    "predicted_end_change": float(t * pred[b].norm()),
                    "linear_model_rel_error": float((act[b] - t * pred[b]).norm())
                    / float(t * pred[b].norm()),
                    "first_face_along_greedy_step": float(hi[b]),
                    "tied_pool_windows_at_source": int(ties[b]),
                }
            )
    return rows


def git_commit() -> str:
    """The repository's HEAD commit, or ``unknown``."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).parent,
        )  # fmt: skip
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_record_part(part: str, cnn: nn.Module, data: ml.ImageData) -> None:
    """Run part ``crossings`` or ``lmscan``; CSVs plus ``orbits_<part>.json`` with a run record."""
    record = RunRecord.start()
    P = ml.current_profile()
    record.checkpoint("mnist_cnn", P.mnist_config(), P.mnist_epoch)
    log = lambda s: print(s, flush=True)  # noqa: E731
    if part == "crossings":
        rows, trace = run_crossings(cnn, data, log=log)
        write_csv(OUT / "orbits_crossings.csv", rows)
        write_csv(OUT / "orbits_crossings_trace.csv", trace)
        settings = dict(CROSSING_SETTINGS)
        settings["cpu_s_per_method"] = {
            m: rows_[0]["cpu_s_all_pairs"]
            for m in ("greedy", "crossing", "algorithm1")
            for rows_ in [[r for r in rows if r["method"] == m]]
        }
    else:
        rows = run_lmscan(cnn, data, log=log)
        write_csv(OUT / "orbits_lmscan.csv", rows)
        settings = {"pairs": 4, "alpha": 0.2, "steps": 50, "lam": 1.0}
    out = write_json(OUT / f"orbits_{part}.json", {"part": part, "settings": settings}, record)
    print(out["run_record"], flush=True)


def main(parts: list[str]) -> None:
    """Run the chosen parts and update ``orbits.json``."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cnn, mlp, data = load_models()
    meta_path = OUT / "orbits.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {"parts": {}}
    meta.update(
        {
            "commit": git_commit(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(),
            "profile": ml.current_profile().name,
        }
    )
    for part in parts:
        t0, c0 = time.time(), time.process_time()
        print(f"part {part}", flush=True)
        if part == "walks":
            rows, settings = run_walks(cnn, mlp, data), {"starts": 8, "steps": 300, "alpha": 0.1}
            write_csv(OUT / "orbits_walks.csv", rows)
        elif part in ("crossings", "lmscan"):
            run_record_part(part, cnn, data)
            continue
        elif part == "planner":
            rows = run_planner(cnn, data, log=lambda s: print(s, flush=True))
            settings = {"pairs": 16, "alpha": 0.2, "budget_steps": [50], "iters": 3}
            write_csv(OUT / "orbits_planner.csv", rows)
        else:
            rows = run_openness(cnn, data, log=lambda s: print(s, flush=True))
            settings = {"image": 0, "directions": 8, "delta": 2.0, "alpha": 0.1, "steps": 60}
            write_csv(OUT / "orbits_openness.csv", rows)
        meta["parts"][part] = {
            **settings,
            "seconds": round(time.time() - t0),
            "cpu_seconds": round(time.process_time() - c0),
        }
        meta_path.write_text(json.dumps(meta, indent=1) + "\n")
        print(meta["parts"][part], flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--part",
        choices=["walks", "planner", "openness", "crossings", "lmscan", "all"],
        default="all",
    )
    args = ap.parse_args()
    everything = ["walks", "openness", "planner", "lmscan", "crossings"]
    main(everything if args.part == "all" else [args.part])
