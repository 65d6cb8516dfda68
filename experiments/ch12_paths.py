"""Chapter 12's 400 paths: the two noises, their manipulation check, the paths and their ends.

Chapter 12 ("How far horizontal paths get between test images") asks how far Algorithm 1
gets between 200 random pairs of test images, and whether starting from a noisy copy of the
source changes that: 100 of the sources again after noise along ``ker G`` (the paper's §4.2
noise: 250 re-projected steps of 0.1, clamped to the pixel range) and 100 after isotropic
Gaussian noise of the same norm (clipped to the pixel range). This script runs exactly the
chapter's computation, in float64 on one thread:

1. the pairs (the chapter's generator, seed 12), the ``ker G`` noise and its unclamped twin
   (same directions), the isotropic noise, and the manipulation check: the share of each
   noise's displacement in ``D`` at the clean image and at the noisy one
   (``manifoldlib.leaf.noise_dx_share``);
2. the 400 paths: ``manifoldlib.horizontal_path``, step 2 shortened to ``||v||``, 25 steps,
   threshold 1, clamp, every step recorded (book profile; :func:`sizes`);
3. at each path's end: ``||P_D(d - x)|| / ||d - x||``, the pixels at a bound, the binding
   pixels and the share of ``P_D(d - x)`` on them, the largest increase of the distance when
   the next (trial) step is clamped, the predictions; and the "kick" of the first 8 clean
   ends (a random step of 5 inside ``D``, then 25 more steps).

It writes ``experiments/results/ch12_paths.npz`` (every array the chapter's statistics
read) and ``ch12_paths.json`` (settings, run record); under another profile
(``MANIFOLDLIB_PROFILE=paper``: the chapter's paper sizes, hours on a CPU)
``ch12_paths_<profile>.*``. The chapter loads them, prints its
statistics from them and re-runs a slice (the noise of 4 images and 16 of the paths) against
them with a tolerance measured across kernel sets: the statistics of 400 paths that start
at raw MNIST images move under other CPUs' kernels (max-pool ties, chapter "Computing it
fast"), a committed run does not.

Run: ``python -m experiments ch12_paths`` (about 10 CPU-min; the time is in the JSON).

Introduced in the chapter "How far horizontal paths get between test images".
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

import manifoldlib as ml
from experiments.ch12_step_size import end_diagnostics
from experiments.pairs import choose_pairs
from experiments.records import RunRecord, write_json

OUT = Path(__file__).parent / "results"
NOISE_LENGTH = 25.0
ISO_SEED, KICK_SEED, N_KICK, KICK = 1212, 5, 8, 5.0
#: How many of the noisy images the results keep whole (the chapter's slice compares them).
KEEP_IMAGES = 8


def clipped_noise(
    x: torch.Tensor, direction: torch.Tensor, norms: torch.Tensor, pixel_range, iters: int = 60
) -> torch.Tensor:
    """``x + t u`` clipped to the pixel range, ``t`` per image so that the clipped move has ``norms``.

    Args:
        x: clean images ``(B, 1, 28, 28)``.
        direction: a direction per image, same shape.
        norms: ``(B,)`` the wanted norms of the clipped displacement.
        pixel_range: ``(low, high)``.
        iters: bisection steps on ``t`` in ``[0, 100]``.

    Returns:
        ``(B, 1, 28, 28)`` the clipped noisy images.
    """
    lo, hi = pixel_range
    t_lo = torch.zeros(len(x), dtype=x.dtype)
    t_hi = torch.full((len(x),), 100.0, dtype=x.dtype)
    for _ in range(iters):
        t = (t_lo + t_hi) / 2
        moved = torch.clamp(x + t.view(-1, 1, 1, 1) * direction, min=lo, max=hi)
        big = (moved - x).flatten(1).norm(dim=1) > norms
        t_hi, t_lo = torch.where(big, t, t_hi), torch.where(big, t_lo, t)
    return torch.clamp(x + t_hi.view(-1, 1, 1, 1) * direction, min=lo, max=hi)


def noises(model, data, x_clean: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """The chapter's noises of ``x_clean`` ``(N, 1, 28, 28)``, drawn from ``gen``'s state.

    Returns:
        ``ker_clamped``, ``ker_free`` (the same directions without the clamp), ``iso``
        (clipped to the pixel range, the norms of ``ker_clamped``), ``iso_free`` (not
        clipped), each ``(N, 1, 28, 28)``.
    """
    state = gen.get_state()
    ker = ml.leaf.across_leaves_noise(
        model, x_clean, NOISE_LENGTH, clamp=data.pixel_range, generator=gen
    )
    g_free = torch.Generator()
    g_free.set_state(state)
    ker_free = ml.leaf.across_leaves_noise(model, x_clean, NOISE_LENGTH, generator=g_free)
    size = (ker - x_clean).flatten(1).norm(dim=1)
    u_iso = torch.randn(x_clean.shape, generator=torch.Generator().manual_seed(ISO_SEED)).double()
    iso = clipped_noise(x_clean, u_iso, size, data.pixel_range)
    unit = u_iso / u_iso.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    return {
        "ker_clamped": ker,
        "ker_free": ker_free,
        "iso": iso,
        "iso_free": x_clean + size.view(-1, 1, 1, 1) * unit,
    }


def sizes(P: ml.Profile) -> dict:
    """The chapter's sizes on profile ``P`` (its first code cells' ``P.pick`` calls)."""
    return {
        "pairs": P.pick(book=200, paper=2000),
        "noisy": P.pick(book=100, paper=1000),
        "alpha": P.pick(book=2.0, paper=0.1),
        "max_steps": P.pick(book=25, paper=10000),
        "record_every": P.pick(book=1, paper=50),
    }


def results_name(P: ml.Profile) -> str:
    """``ch12_paths`` for the book profile, ``ch12_paths_<profile>`` otherwise."""
    return "ch12_paths" if P.name == "book" else f"ch12_paths_{P.name}"


def run_paths(model, data, starts: torch.Tensor, ends: torch.Tensor, size: dict) -> ml.PathResult:
    """The chapter's paths: step ``alpha`` shortened, threshold 1, clamp."""
    return ml.horizontal_path(
        model,
        starts,
        ends,
        step_size=size["alpha"],
        max_steps=size["max_steps"],
        threshold=1.0,
        clamp=data.pixel_range,
        record_every=size["record_every"],
        progress=False,
    )


def trial_step_increase(model, x_end, ends, pixel_range, alpha: float) -> torch.Tensor:
    """``(B,)`` how much clamping the next step raises the distance to the target (>= 0 is bad)."""
    lo, hi = pixel_range
    v = ml.tangent_projection(model, x_end, ends - x_end)
    vn = v.flatten(1).norm(dim=1)
    step = (torch.clamp(vn, max=alpha) / vn).view(-1, 1, 1, 1) * v
    free, held = x_end + step, torch.clamp(x_end + step, min=lo, max=hi)
    return (ends - held).flatten(1).norm(dim=1) - (ends - free).flatten(1).norm(dim=1)


def main() -> None:
    """Run the chapter's computation and write the NPZ of arrays and the JSON."""
    torch.set_num_threads(1)  # as the chapter: sums (and long paths' last digits) depend on it
    torch.manual_seed(0)
    record = RunRecord.start()
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source).to(torch.float64)
    model = record.model("mnist", P.mnist_config(), P.mnist_epoch).double()
    t0 = time.process_time()
    size = sizes(P)
    n_noisy = size["noisy"]

    src_idx, tgt_idx, gen = choose_pairs(
        data.test_y, size["pairs"], 12, rule="shifted", return_generator=True
    )
    sources, targets = data.test_x[src_idx], data.test_x[tgt_idx]
    x_clean = sources[:n_noisy]
    arms = noises(model, data, x_clean, gen)
    shares = {k: ml.leaf.noise_dx_share(model, x_clean, z) for k, z in arms.items()}
    t_noise = time.process_time() - t0
    print(f"noise and its manipulation check: {t_noise:.0f} CPU-s", flush=True)

    starts = torch.cat([sources, arms["ker_clamped"], arms["iso"]])
    ends = torch.cat([targets, targets[:n_noisy], targets[:n_noisy]])
    path = run_paths(model, data, starts, ends, size)
    t_paths = time.process_time() - t0 - t_noise
    print(f"400 paths: {t_paths:.0f} CPU-s", flush=True)

    x_end = path.final
    diag = end_diagnostics(model, x_end, ends, data.pixel_range)
    lo, hi = data.pixel_range
    d0 = (ends - starts).flatten(1).norm(dim=1)
    ratio_0 = ml.tangent_projection(model, starts, ends - starts).flatten(1).norm(dim=1) / d0
    with torch.no_grad():
        pred = {
            "clean_of_noisy": model(x_clean).argmax(1),
            "start": model(starts).argmax(1),
            "target": model(ends).argmax(1),
        }
        pred["ker_clamped"] = model(arms["ker_clamped"]).argmax(1)
        pred["iso"] = model(arms["iso"]).argmax(1)

    # The kick: a random step of length KICK inside D from the first N_KICK clean ends, then
    # the same budget again; against the same budget without the kick.
    idx = torch.arange(N_KICK)
    draw = torch.randn(x_end[idx].shape, generator=torch.Generator().manual_seed(KICK_SEED))
    kick = ml.tangent_projection(model, x_end[idx], draw.double())
    kicked = torch.clamp(
        x_end[idx] + KICK * kick / kick.flatten(1).norm(dim=1).view(-1, 1, 1, 1), min=lo, max=hi
    )
    again = ml.horizontal_path(
        model,
        kicked,
        ends[idx],
        step_size=size["alpha"],
        max_steps=size["max_steps"],
        clamp=data.pixel_range,
        record_every=size["max_steps"],
    )
    plain = ml.horizontal_path(
        model,
        x_end[idx],
        ends[idx],
        step_size=size["alpha"],
        max_steps=size["max_steps"],
        clamp=data.pixel_range,
        record_every=size["max_steps"],
    )
    cpu = time.process_time() - t0

    arrays = {
        "source_index": src_idx.numpy(),
        "target_index": tgt_idx.numpy(),
        "path_steps": path.steps.numpy(),
        "distances": path.distances.numpy(),  # (26, 400): clean 0-199, ker G 200-299, iso 300-399
        "end_prediction": path.predictions[-1].numpy(),
        "reached": path.reached.numpy(),
        "start_prediction": pred["start"].numpy(),
        "target_prediction": pred["target"].numpy(),
        "clean_prediction": pred["clean_of_noisy"].numpy(),
        "ker_prediction": pred["ker_clamped"].numpy(),
        "iso_prediction": pred["iso"].numpy(),
        "noise_norm": (arms["ker_clamped"] - x_clean).flatten(1).norm(dim=1).numpy(),
        "iso_norm": (arms["iso"] - x_clean).flatten(1).norm(dim=1).numpy(),
        "ratio_start": ratio_0.numpy(),
        "ratio_end": diag["ratio"].numpy(),
        "at_bounds_start": ((sources <= lo) | (sources >= hi)).flatten(1).sum(1).numpy(),
        "at_bounds_end": diag["at_bounds"].numpy(),
        "binding_end": diag["binding"].numpy(),
        "blocked_end": diag["blocked"].numpy(),
        "trial_step_increase": trial_step_increase(
            model, x_end, ends, data.pixel_range, size["alpha"]
        ).numpy(),
        "kick_reached": again.reached.numpy(),
        "kick_distance": again.distances[-1].numpy(),
        "nokick_distance": plain.distances[-1].numpy(),
        "ker_noisy_first": arms["ker_clamped"][:KEEP_IMAGES].numpy(),
        "iso_noisy_first": arms["iso"][:KEEP_IMAGES].numpy(),
    }
    for arm, s in shares.items():
        arrays[f"share_{arm}_at_clean"] = s.at_clean.numpy()
        arrays[f"share_{arm}_at_noisy"] = s.at_noisy.numpy()
    np.savez_compressed(OUT / f"{results_name(P)}.npz", **arrays)
    meta = {
        "profile": P.name,
        **size,
        "rule": "shortened (horizontal_path: min(alpha, ||v||))",
        "threshold": 1.0,
        "noise": {
            "ker_g": f"across_leaves_noise, path length {NOISE_LENGTH}, steps of 0.1, clamp",
            "isotropic_seed": ISO_SEED,
        },
        "kick": {"paths": N_KICK, "length": KICK, "seed": KICK_SEED},
        "dtype": "float64",
        "threads": torch.get_num_threads(),
        "cpu_s": {"noise": round(t_noise), "paths": round(t_paths), "all": round(cpu)},
        "arrays": sorted(arrays),
    }
    write_json(OUT / f"{results_name(P)}.json", meta, record)
    print({k: meta[k] for k in ("cpu_s", "threads", "dtype")})


if __name__ == "__main__":
    main()
