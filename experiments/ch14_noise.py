"""Chapter 14's ker G noise of its live digits: clamped (as used) and unclamped (manipulation check).

Chapter 14 ("Denoising along horizontal paths") adds noise along ``ker G`` to its 24 live
test digits (book profile; 200 under ``paper``): a path across leaves of length 32 in the
paper's steps of 0.1 (320 of them), one Gaussian direction per image re-projected on
``ker G`` at every step (``manifoldlib.leaf.across_leaves_noise``), the image clamped to the
pixel range at every step (the noise the chapter uses), and the same directions again without
the clamp (its manipulation check). This script runs exactly the chapter's computation: the
chapter's float32 model, one thread, the chapter's generator (seed 14) and its calls in the
chapter's order -- the permutation that picks the digits, the Gaussian vector of the
chapter's ``D_x`` check, then the noise's directions -- so it starts from the chapter's
generator state and leaves it where the chapter continues (the isotropic noise and every
later draw).

It writes ``experiments/results/ch14_noise.npz`` (the digits' indices, the generator's state
before and after the noise's directions, the clamped and the unclamped noisy images) and
``ch14_noise.json`` (settings, CPU seconds per arm, the SHA-256 of the npz, run record);
under another profile (``MANIFOLDLIB_PROFILE=paper``) ``ch14_noise_<profile>.*``. The
chapter asserts that its digits and generator state equal the run's, loads the images,
restores the generator state the run saved after the noise, and re-runs the first digit
through all 320 steps of both arms against them, with a tolerance measured across kernel
sets.

Run: ``OMP_NUM_THREADS=1 python -m experiments ch14_noise`` (about 1.5 CPU-min on one
thread; the time is in the JSON).

Introduced in the chapter "Denoising along horizontal paths".
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

import manifoldlib as ml
from experiments.records import RunRecord, sha256_file, write_json

OUT = Path(__file__).parent / "results"
#: The chapter's generator seed, noise level (path length, normalised units) and step.
SEED, LEVEL, MAX_STEP = 14, 32.0, 0.1
#: The arrays of the npz, in the order written.
ARRAYS = ("digits", "state_before", "state_after", "ker_clamped", "ker_unclamped")


def results_name(profile: str) -> str:
    """``ch14_noise`` for the book profile, ``ch14_noise_<profile>`` otherwise."""
    return "ch14_noise" if profile == "book" else f"ch14_noise_{profile}"


def chapter_digits(data, n_live: int) -> tuple[torch.Generator, torch.Tensor]:
    """The chapter's generator and its live digits' test indices, drawn as the chapter draws.

    Returns the generator at the state the chapter's noise starts from: after the
    permutation and after the Gaussian vector of the chapter's ``D_x`` check.
    """
    gen = torch.Generator().manual_seed(SEED)
    perm = torch.randperm(len(data.test_y), generator=gen)
    digits = perm[:n_live]
    torch.randn(data.test_x[digits].shape, generator=gen)  # the chapter's share-in-D_x vector
    return gen, digits


def main() -> None:
    """Run the chapter's noise (both arms) and write the npz and the JSON."""
    torch.set_num_threads(1)  # as the chapter: the paths' last digits depend on it
    torch.manual_seed(0)
    record = RunRecord.start()
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source)
    model = record.model("mnist", P.mnist_config(), P.mnist_epoch)
    n_live = P.pick(book=24, paper=200)
    gen, digits = chapter_digits(data, n_live)
    clean = data.test_x[digits]
    state_before = gen.get_state()
    cpu = {}
    t0 = time.process_time()
    ker = ml.leaf.across_leaves_noise(
        model, clean, LEVEL, max_step=MAX_STEP, clamp=data.pixel_range, generator=gen
    )
    cpu["clamped"] = round(time.process_time() - t0, 1)
    state_after = gen.get_state()
    again = torch.Generator()
    again.set_state(state_before)  # the same directions, no clamp
    t0 = time.process_time()
    free = ml.leaf.across_leaves_noise(model, clean, LEVEL, max_step=MAX_STEP, generator=again)
    cpu["unclamped"] = round(time.process_time() - t0, 1)
    if not torch.equal(again.get_state(), state_after):
        raise RuntimeError("the two arms drew different directions")
    arrays = {
        "digits": digits.numpy(),
        "state_before": state_before.numpy(),
        "state_after": state_after.numpy(),
        "ker_clamped": ker.detach().numpy(),
        "ker_unclamped": free.detach().numpy(),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    npz = OUT / f"{results_name(P.name)}.npz"
    np.savez_compressed(npz, **arrays)
    meta = {
        "profile": P.name,
        "n_live": n_live,
        "seed": SEED,
        "level": LEVEL,
        "max_step": MAX_STEP,
        "steps": max(1, math.ceil(LEVEL / MAX_STEP - 1e-9)),  # as across_leaves_noise
        "dtype": str(ker.dtype).removeprefix("torch."),
        "noise": "ml.leaf.across_leaves_noise: clamped to the pixel range (as used) and unclamped",
        "median_norm": {
            "clamped": float((ker - clean).flatten(1).norm(dim=1).median()),
            "unclamped": float((free - clean).flatten(1).norm(dim=1).median()),
        },
        "cpu_s": cpu,
        "arrays": list(ARRAYS),
        "npz_sha256": sha256_file(npz),
    }
    write_json(OUT / f"{results_name(P.name)}.json", meta, record)
    print({k: meta[k] for k in ("profile", "n_live", "cpu_s", "median_norm")}, flush=True)


if __name__ == "__main__":
    main()
