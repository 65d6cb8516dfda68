"""Chapter 10's live paths in float64: the noisy starts, and Algorithm 1 from noisy and clean starts.

Chapter 10 ("Noisy leaves") repeats Figure 6 of the paper on six pairs of test images (sources
of classes 0-5, targets of class c + 5: ``experiments.ch10_noisy_paths.chapter_pairs``, the
chapter's own generator calls, seed 6). This script runs exactly the chapter's computation of
its paths, on the ``book`` checkpoint in float64 on one thread:

1. the noisy starts: each source moves 250 steps of 0.1 along a fixed Gaussian direction
   (seed 0, drawn in float32 as in the chapter, then float64) projected on ``ker G`` at every
   step and clamped into the pixel range (``manifoldlib.across_leaves_path``), and the same
   path without the clamp (the manipulation check's second arm);
2. Algorithm 1 from the six noisy starts and their six clean versions, towards the same
   targets, in one batch of twelve: exact projection on ``D_x``, step 0.1 shortened to the
   projection's length, clamp, threshold 1, the whole budget of 500 steps run in chunks of 50
   (the chapter's ``budget_paths``), every 50th point recorded.

It writes ``experiments/results/ch10_paths.npz`` and ``ch10_paths.json`` (settings, the
pairs, a summary of values the chapter prints, CPU seconds per part, run record); under
another profile ``ch10_paths_<profile>.*``. The NPZ keeps, compactly, what the chapter reads:

- ``noise_clamped`` and ``noise_free`` ``(2, 6, 1, 28, 28)``, float64: the two noise paths at
  steps ``noise_steps`` = 25 and 250 (the end of the clamped one is the noisy start);
- ``path_points`` ``(3, 12, 1, 28, 28)``, float64: the twelve paths at steps ``point_steps`` =
  50, 250 and 500 (their starts are the noisy and the clean images); ``steps_taken`` ``(12,)``;
- ``path_distances`` ``(11, 12)`` and ``kappa`` ``(11, 6)``, float64: the distance to the
  target and the noise component kappa at steps ``path_steps`` = 0, 50, ..., 500 (the
  chapter's curves);
- ``strip_points`` ``(11, 6, 1, 28, 28)``, float32: paths ``strip_paths`` (the first three
  noisy paths and their clean twins) at every recorded step, for the chapter's strips.

The chapter computes every statistic it prints from these float64 points and re-runs a slice
(the first 25 steps of both noise paths and the first 50 steps of all twelve paths) against
them, with a tolerance measured under three kernel sets.

Run: ``OMP_NUM_THREADS=1 python -m experiments ch10_paths`` (about 5 CPU-min on one thread
under this machine's kernels; the time is in the JSON).

Introduced in the chapter "Noisy leaves".
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

import manifoldlib as ml
from experiments.ch10_noisy_paths import chapter_pairs
from experiments.records import RunRecord, write_json
from manifoldlib.algorithm1 import algorithm1_paths

OUT = Path(__file__).resolve().parent / "results"
#: The chapter's seeds: pairs (``chapter_pairs``), the noise direction.
PAIR_SEED, DIRECTION_SEED = 6, 0
STEP_SIZE, THRESHOLD = 0.1, 1.0
NOISE_STEPS, NOISE_EVERY = 250, 25
MAX_STEPS, EVERY = 500, 50
#: What the NPZ keeps: noise-path steps and path steps in float64, the paths of the strips.
NOISE_KEPT, POINTS_KEPT, STRIP_PATHS = (25, 250), (50, 250, 500), (0, 1, 2, 6, 7, 8)


def output_stem(profile: str) -> str:
    """``ch10_paths`` for the book profile, ``ch10_paths_<profile>`` otherwise."""
    return "ch10_paths" if profile == "book" else f"ch10_paths_{profile}"


def noise_direction(shape: torch.Size) -> torch.Tensor:
    """The chapter's fixed noise direction: drawn in float32 (seed 0), used in float64."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(DIRECTION_SEED)).double()


def noise_paths(model64, clean: torch.Tensor, pixel_range) -> tuple[ml.PathResult, ml.PathResult]:
    """The clamped noise path (the noisy starts) and the same path without the clamp."""
    direction = noise_direction(clean.shape)
    common = dict(step_size=STEP_SIZE, steps=NOISE_STEPS, record_every=NOISE_EVERY)
    across = ml.across_leaves_path(model64, clean, direction, clamp=pixel_range, **common)
    free = ml.across_leaves_path(model64, clean, direction, **common)
    return across, free


def budget_paths(model64, starts, targets, pixel_range, max_steps: int = MAX_STEPS):
    """The chapter's ``budget_paths``: Algorithm 1 stopped by its budget, recorded every 50.

    Exact projection, step 0.1 shortened to the projection's length, clamp, threshold 1, run
    in chunks of ``EVERY`` steps. Returns the recorded points ``(R, B, ...)`` and the steps
    each path took ``(B,)``.
    """
    points, x = [starts], starts
    taken = torch.zeros(len(starts), dtype=torch.long)
    for _ in range(max_steps // EVERY):
        res = algorithm1_paths(
            model64,
            x,
            targets,
            projection="exact",
            rule="shortened",
            clamp=pixel_range,
            step_size=STEP_SIZE,
            max_steps=EVERY,
            threshold=THRESHOLD,
            record_every=EVERY,
        )
        x, taken = res.final, taken + res.steps_taken
        points.append(x)
    return torch.stack(points), taken


def curves(points, targets, clean, noisy) -> tuple[torch.Tensor, torch.Tensor]:
    """The distance to the target ``(R, 2k)`` and the noise component kappa ``(R, k)``.

    ``kappa_t = <x_t(noisy) - x_t(clean), n / ||n||> / ||n||`` with ``n = noisy - clean``, as in
    the chapter.
    """
    k = len(clean)
    dist = (targets - points).flatten(2).norm(dim=-1)
    noise = noisy - clean
    nrm = noise.flatten(1).norm(dim=1)
    nhat = noise / nrm.view(-1, 1, 1, 1)
    kappa = ((points[:, :k] - points[:, k:]) * nhat).flatten(2).sum(-1) / nrm
    return dist, kappa


def main() -> None:
    """Run the chapter's paths and write the NPZ and the JSON."""
    torch.set_num_threads(1)  # as the chapter: sums (and long paths' last digits) depend on it
    torch.manual_seed(0)
    record = RunRecord.start()
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source).to(torch.float64)
    model = record.model("mnist", P.mnist_config(), P.mnist_epoch)
    model64 = model.double()
    src, tgt = chapter_pairs(data.test_y, PAIR_SEED)
    clean, target = data.test_x[src], data.test_x[tgt]
    cpu = {}

    c0 = time.process_time()
    across, free = noise_paths(model64, clean, data.pixel_range)
    cpu["noise"] = round(time.process_time() - c0, 1)
    noisy = across.final
    print(f"noise paths: {cpu['noise']} CPU s", flush=True)

    c0 = time.process_time()
    targets = torch.cat([target, target])
    points, taken = budget_paths(model64, torch.cat([noisy, clean]), targets, data.pixel_range)
    cpu["paths"] = round(time.process_time() - c0, 1)
    print(f"paths: {cpu['paths']} CPU s", flush=True)

    stem = output_stem(P.name)
    OUT.mkdir(parents=True, exist_ok=True)
    dist, kappa = curves(points, targets, clean, noisy)
    path_steps = torch.arange(len(points)) * EVERY
    noise_at = [int((across.steps == s).nonzero()) for s in NOISE_KEPT]
    points_at = [int((path_steps == s).nonzero()) for s in POINTS_KEPT]
    np.savez_compressed(
        OUT / f"{stem}.npz",
        noise_steps=np.array(NOISE_KEPT),
        noise_clamped=across.points[noise_at].numpy(),
        noise_free=free.points[noise_at].numpy(),
        point_steps=np.array(POINTS_KEPT),
        path_points=points[points_at].numpy(),
        steps_taken=taken.numpy(),
        path_steps=path_steps.numpy(),
        path_distances=dist.numpy(),
        kappa=kappa.numpy(),
        strip_paths=np.array(STRIP_PATHS),
        strip_points=points[:, list(STRIP_PATHS)].float().numpy(),
    )
    payload = {
        "profile": P.name,
        "dtype": "float64",
        "pair_seed": PAIR_SEED,
        "direction_seed": DIRECTION_SEED,
        "source_index": src.tolist(),
        "target_index": tgt.tolist(),
        "noise": {"steps": NOISE_STEPS, "step_size": STEP_SIZE, "record_every": NOISE_EVERY},
        "paths": {
            "projection": "exact",
            "rule": "shortened",
            "clamp": True,
            "step_size": STEP_SIZE,
            "threshold": THRESHOLD,
            "max_steps": MAX_STEPS,
            "record_every": EVERY,
            "order": "the six noisy starts, then their six clean versions",
        },
        "kept": {
            "noise_steps": list(NOISE_KEPT),
            "point_steps": list(POINTS_KEPT),
            "strip_paths": list(STRIP_PATHS),
        },
        "summary": {
            "noise_norm": (noisy - clean).flatten(1).norm(dim=1).tolist(),
            "initial_distance": dist[0].tolist(),
            "final_distance": dist[-1].tolist(),
            "kappa_end": kappa[-1].tolist(),
        },
        "cpu_s": cpu,
    }
    write_json(OUT / f"{stem}.json", payload, record)
    print({k: payload[k] for k in ("profile", "source_index", "cpu_s")}, flush=True)


if __name__ == "__main__":
    main()
