"""Figure 6 at the paper's lengths: noisy starts, exact and gels paths, book and paper-like models.

Run: ``OMP_NUM_THREADS=1 python -m experiments ch10_noisy_paths --model book`` and
``--model paper_like`` (the paper-like checkpoint must be cached: epoch 10 of
:meth:`~manifoldlib.Profile.paper_like_config`; this script never trains).

The paper's script for Figure 6 (``mnist_noise_leaf.py`` of :cite:t:`grementieri2021code` at
commit 41042a4) moves a test image 250 steps of 0.1 along a fixed Gaussian direction projected
on ``ker G`` at every step (``constant_direction_kernel``, clamped by ``domain_projection``),
then runs ``path_tangent`` from that noisy image towards another test image for 10,000 steps
(5,000 before commit 16680ad, which regenerated the figure's strips with 10,000): step 0.1
along the normalised least-squares solution (``torch.linalg.lstsq``, the ``gels`` driver of
:mod:`manifoldlib.algorithm1`), clamp, stop when the distance is at most 1.

This script runs chapter 10's six pairs (sources of classes 0-5, targets of class c + 5, drawn
with the chapter's seed; the same pairs on both models), in float32 (the paper's arithmetic):

- the noisy starts as the paper makes them (with the clamp), and the same noise path without
  the clamp, for the manipulation check: the share of the noise displacement in ``D_x`` at the
  clean image and at the noise path's end point;
- from the noisy and from the clean start of each pair: ``gels`` paths at the paper's rule
  (fixed step 0.1, clamp, threshold 1) for 10,000 steps with the 5,000-step point recorded,
  and ``exact`` paths at the same rule until they stall (no new distance minimum by 0.1% for
  1,000 steps, a path length of 100) or reach 10,000 steps.

Writes ``ch10_noisy_paths_<model>.csv`` (one row per path), ``..._<model>.npz`` (distances every
100 steps), ``..._<model>.pt`` (starts and end points) and ``..._<model>.json`` (settings, CPU
seconds per part, run record).

Introduced in the chapter "Noisy leaves".
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import manifoldlib as ml
from experiments.pairs import choose_pairs
from experiments.paper_like import model_config
from experiments.records import RunRecord, write_json
from manifoldlib.algorithm1 import algorithm1_paths

RESULTS = Path(__file__).resolve().parent / "results"
ALPHA = 0.1
NOISE_STEPS = 250
HALF, BUDGET = 5000, 10_000
RECORD = 100
CHUNK = 1000
EXACT_STALL = 1000
FIELDS = [
    "model",
    "pair",
    "start",
    "projection",
    "source_index",
    "target_index",
    "source_label",
    "target_label",
    "reached",
    "reason",
    "steps",
    "path_length",
    "initial_distance",
    "d_5000",
    "final_distance",
    "min_distance",
    "ratio_final",
    "fall_last1000",
    "budget_could_reach",
    "pred_end",
    "prob_end",
    "kappa_5000",
    "kappa_end",
    "noise_kept_end",
    "hf_end_over_target",
    "corr_target",
    "corr_source",
    "corr_target_blur",
    "corr_source_blur",
]


def chapter_pairs(test_y: torch.Tensor, seed: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    """Chapter 10's pairs: a random test image of each class 0-5, a target of class c + 5.

    :func:`experiments.pairs.choose_pairs`, rule ``"in_classes"``.
    """
    classes = tuple((c, (c + 5) % 10) for c in range(6))
    return choose_pairs(test_y, len(classes), seed, rule="in_classes", class_pairs=classes)


def blur(pix: torch.Tensor) -> torch.Tensor:
    """3 x 3 box blur of pixel images ``(B, 1, 28, 28)`` (chapter 10's smoothing)."""
    return F.avg_pool2d(pix, 3, stride=1, padding=1, count_include_pad=False)


def high_freq(pix: torch.Tensor) -> torch.Tensor:
    """Energy of ``pix - blur(pix)`` per image (chapter 10's measure of pixel noise)."""
    return (pix - blur(pix)).flatten(1).pow(2).sum(1)


def corr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each pair of images, ``(B,)``."""
    a = a.flatten(1).double()
    b = b.flatten(1).double()
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def dx_share(model, at: torch.Tensor, v: torch.Tensor) -> list[float]:
    """``||P_D(at) v|| / ||v||`` per image: the share of ``v`` in the distribution at ``at``."""
    p = ml.tangent_projection(model, at, v)
    return (p.flatten(1).norm(dim=1) / v.flatten(1).norm(dim=1)).tolist()


def run(model, starts, targets, projection, *, max_steps, stall, clamp):
    """Algorithm 1 at the paper's rule (fixed step 0.1, clamp, threshold 1); CPU seconds."""
    c0 = time.process_time()
    res = algorithm1_paths(
        model,
        starts,
        targets,
        projection=projection,
        rule="fixed",
        clamp_on=True,
        clamp=clamp,
        step_size=ALPHA,
        max_steps=max_steps,
        threshold=1.0,
        stall_window=stall,
        record_every=RECORD,
    )
    return res, time.process_time() - c0


def main() -> None:
    """Parse the command line and run one model."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="book", choices=("book", "paper_like"))
    ap.add_argument("--steps", type=int, default=BUDGET, help="budget (a smoke test: fewer)")
    ap.add_argument("--tag", default="", help="suffix of the results files")
    args = ap.parse_args()
    budget, half_budget = args.steps, args.steps // 2
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    RESULTS.mkdir(parents=True, exist_ok=True)
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source)
    record = RunRecord.start()
    config = model_config(args.model)  # of the current profile, P
    model = record.model(args.model, config, P.mnist_epoch)
    clamp = data.pixel_range
    src_idx, tgt_idx = chapter_pairs(data.test_y)
    k = len(src_idx)
    clean, target = data.test_x[src_idx], data.test_x[tgt_idx]
    cpu: dict[str, float] = {}
    tag = f"ch10_noisy_paths_{args.model}{args.tag}"

    # The noisy starts (the chapter's direction: seed 0), with and without the clamp.
    c0 = time.process_time()
    direction = torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    noisy = {}
    for name, cl in (("clamped", clamp), ("unclamped", None)):
        noisy[name] = ml.across_leaves_path(
            model, clean, direction, step_size=ALPHA, steps=NOISE_STEPS, clamp=cl
        ).final.detach()
    noise = noisy["clamped"] - clean
    manip = {}
    for name, z in noisy.items():
        n = z - clean
        manip[f"dx_share_at_clean_{name}"] = dx_share(model, clean, n)
        manip[f"dx_share_at_end_{name}"] = dx_share(model, z, n)
        manip[f"noise_norm_{name}"] = n.flatten(1).norm(dim=1).tolist()
    with torch.no_grad():
        test_accuracy = ml.accuracy(model, data.test_x, data.test_y)
        pred_clean = model(clean).argmax(1)
        p_noisy = torch.softmax(model(noisy["clamped"]), 1)
    manip["noisy_prediction_kept"] = (p_noisy.argmax(1) == pred_clean).int().tolist()
    cpu["noise"] = time.process_time() - c0

    # Paths: gels first (the paper's projection), in chunks of CHUNK steps with every file
    # rewritten after each chunk (a run cut short keeps what it finished); then exact, until
    # it stalls. Noisy starts first, then their clean twins, in one batch.
    starts = torch.cat([noisy["clamped"], clean])
    targets = torch.cat([target, target])
    zeros = torch.zeros(2 * k)
    g = {
        "steps": [0],
        "dist": [(targets - starts).flatten(1).norm(dim=1).numpy()],
        "n_steps": zeros.long(),
        "plen": zeros.double(),
        "half": None,
    }
    arms: dict[str, dict] = {}
    cpu["gels"] = 0.0
    x = starts
    chunk = min(CHUNK, half_budget)
    for c in range(budget // chunk):
        res, t = run(model, x, targets, "gels", max_steps=chunk, stall=None, clamp=clamp)
        cpu["gels"] += t
        x = res.final
        g["steps"] += (res.record_steps.numpy()[1:] + c * chunk).tolist()
        g["dist"] += list(res.distances.numpy()[1:])
        g["n_steps"] = g["n_steps"] + res.steps_taken
        g["plen"] = g["plen"] + res.path_length
        g.update(final=x, reached=res.reached, reasons=res.stop_reasons, d_end=res.final_distance)
        if (c + 1) * chunk == half_budget:
            g["half"] = x.clone()
        arms["gels"] = g
        write(arms, budget, half_budget, locals_for_write(locals()))
        print(f"gels: {(c + 1) * chunk} steps, {cpu['gels']:.0f} CPU s", flush=True)
    ex, cpu["exact"] = run(
        model, starts, targets, "exact", max_steps=budget, stall=EXACT_STALL, clamp=clamp
    )
    arms["exact"] = {
        "steps": ex.record_steps.tolist(),
        "dist": list(ex.distances.numpy()),
        "n_steps": ex.steps_taken,
        "plen": ex.path_length,
        "half": None,
        "final": ex.final,
        "reached": ex.reached,
        "reasons": ex.stop_reasons,
        "d_end": ex.final_distance,
    }
    write(arms, budget, half_budget, locals_for_write(locals()), complete=True)
    print(f"{tag}: CPU seconds {cpu}")


def locals_for_write(scope: dict) -> dict:
    """The run's context that :func:`write` needs."""
    names = ("args", "data", "model", "clean", "target", "noisy", "noise", "src_idx", "tgt_idx")
    return (
        {n: scope[n] for n in names}
        | {key: scope[key] for key in ("k", "tag", "manip", "cpu", "record", "config", "P")}
        | {"test_accuracy": scope["test_accuracy"]}
    )


def write(arms: dict, budget: int, half_budget: int, ctx: dict, complete: bool = False) -> None:
    """Summarise the arms run so far and (re)write the CSV, NPZ, PT and JSON files."""
    args, data, model, k = ctx["args"], ctx["data"], ctx["model"], ctx["k"]
    clean, target, noise = ctx["clean"], ctx["target"], ctx["noise"]
    src_idx, tgt_idx, tag = ctx["src_idx"], ctx["tgt_idx"], ctx["tag"]
    rows = []
    traces = {}
    ends = {"clean": clean, "noisy": ctx["noisy"]["clamped"], "target": target}
    pix_t, pix_s = data.to_pixels(target), data.to_pixels(clean)
    nrm = noise.flatten(1).norm(dim=1)
    nhat = noise / nrm.view(-1, 1, 1, 1)
    hf_t = high_freq(pix_t)
    for proj, a in arms.items():
        final, end_half = a["final"], a["half"]
        steps = np.array(a["steps"])
        dist = np.stack(a["dist"])
        traces[f"{proj}_steps"] = steps
        traces[f"{proj}_distances"] = dist
        ends[f"{proj}_end"] = final
        if end_half is not None:
            ends[f"{proj}_5000"] = end_half
        with torch.no_grad():
            p_end = torch.softmax(model(final), 1)
        gap = final[:k] - final[k:]
        kappa = (gap * nhat).flatten(1).sum(1) / nrm
        kept = gap.flatten(1).norm(dim=1) / nrm
        if end_half is not None:
            kappa5 = ((end_half[:k] - end_half[k:]) * nhat).flatten(1).sum(1) / nrm
        pix = data.to_pixels(final)
        hf = high_freq(pix) / torch.cat([hf_t, hf_t])
        c_t, c_s = corr(pix, torch.cat([pix_t, pix_t])), corr(pix, torch.cat([pix_s, pix_s]))
        b_t = corr(blur(pix), blur(torch.cat([pix_t, pix_t])))
        b_s = corr(blur(pix), blur(torch.cat([pix_s, pix_s])))
        for j in range(2 * k):
            i = j % k
            d = dist[:, j]
            ok = ~np.isnan(d)
            last = int(np.flatnonzero(ok)[-1])
            back = np.flatnonzero(steps == steps[last] - 1000)
            at5 = np.flatnonzero(steps == half_budget)
            d0 = float(d[0])
            row = {
                "model": args.model,
                "pair": i,
                "start": "noisy" if j < k else "clean",
                "projection": proj,
                "source_index": int(src_idx[i]),
                "target_index": int(tgt_idx[i]),
                "source_label": int(data.test_y[src_idx[i]]),
                "target_label": int(data.test_y[tgt_idx[i]]),
                "reached": int(a["reached"][j]),
                "reason": a["reasons"][j],
                "steps": int(a["n_steps"][j]),
                "path_length": float(a["plen"][j]),
                "initial_distance": d0,
                "d_5000": float(d[at5[0]]) if at5.size and ok[at5[0]] else float("nan"),
                "final_distance": float(a["d_end"][j]),
                "min_distance": float(np.nanmin(d)),
                "ratio_final": float(a["d_end"][j]) / d0,
                "fall_last1000": float(d[back[0]] - d[last]) if back.size else float("nan"),
                # the budget in path length (budget steps of 0.1) against the initial distance
                "budget_could_reach": int(budget * ALPHA >= d0 - 1.0),
                "pred_end": int(p_end[j].argmax()),
                "prob_end": float(p_end[j].max()),
                "kappa_5000": float(kappa5[i]) if end_half is not None and j < k else "",
                "kappa_end": float(kappa[i]) if j < k else "",
                "noise_kept_end": float(kept[i]) if j < k else "",
                "hf_end_over_target": float(hf[j]),
                "corr_target": float(c_t[j]),
                "corr_source": float(c_s[j]),
                "corr_target_blur": float(b_t[j]),
                "corr_source_blur": float(b_s[j]),
            }
            rows.append(row)

    with (RESULTS / f"{tag}.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, FIELDS)
        w.writeheader()
        for row in rows:
            w.writerow({k_: (f"{v:.6g}" if isinstance(v, float) else v) for k_, v in row.items()})
    np.savez_compressed(RESULTS / f"{tag}.npz", **traces)
    torch.save({k_: v.detach().clone() for k_, v in ends.items()}, RESULTS / f"{tag}.pt")
    meta = {
        "model": args.model,
        "config_key": ctx["config"].key(),
        "epoch": ctx["P"].mnist_epoch,
        "test_accuracy": round(float(ctx["test_accuracy"]), 4),
        "dtype": "float32",
        "complete": complete,
        "steps_done": {proj: int(a["steps"][-1]) for proj, a in arms.items()},
        "source_index": src_idx.tolist(),
        "target_index": tgt_idx.tolist(),
        "noise": {"steps": NOISE_STEPS, "step_size": ALPHA, "direction_seed": 0},
        "paths": {
            "step_size": ALPHA,
            "rule": "fixed",
            "clamp": True,
            "threshold": 1.0,
            "gels_steps": budget,
            "gels_half": half_budget,
            "exact_max_steps": budget,
            "exact_stall_window_steps": EXACT_STALL,
            "record_every": RECORD,
        },
        "manipulation_check": ctx["manip"],
        "cpu_s": {k_: round(v, 1) for k_, v in ctx["cpu"].items()},
    }
    write_json(RESULTS / f"{tag}.json", meta, ctx["record"])


if __name__ == "__main__":
    main()
