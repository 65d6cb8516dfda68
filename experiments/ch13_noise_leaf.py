"""Chapter 13's noise leaf: test digits moved across leaves along ker G, clamped and unclamped.

Chapter 13 ("Out-of-distribution detection by distance from leaf pieces") builds its OOD set
"noise leaf" as ``experiments/ood_baselines.py`` does for seed 0 (``build_sets``): 100 test
digits (1,000 in the paper profile) moved by ``ml.leaf.across_leaves_noise`` along a path
across leaves of length 25 in the paper's 250 steps of 0.1, the Gaussian direction
re-projected on ``ker G`` and the image clamped to the pixel range at every step; and, for
its manipulation check, the same Gaussian draws without the clamp for the first 25 images.
These two batches are most of the chapter's run time, so this script computes them, exactly
as the chapter does (the book's checkpoint, one thread, the chapter's generator: seed 13, the
permutation of the test set, then the directions), and the chapter loads them:

- ``noise_leaf``: ``(n_out, 1, 28, 28)`` float32, the clamped noise leaf (as used);
- ``no_clamp``: ``(25, 1, 28, 28)`` float32, the same draws without the clamp;
- ``base_index``: the test images they start from (``perm[n_in : n_in + n_out]``);
- ``state_leaf``, ``state_iso``: the generator's state before the directions and after them
  (the chapter asserts both against its own generator, whose later draws, the isotropic twin,
  uniform and Gaussian noise, continue from ``state_iso``).

It writes ``experiments/results/ch13_noise_leaf.pt`` and ``ch13_noise_leaf.json`` (settings,
shapes, SHA-256 of the ``.pt`` file, run record); under another profile
(``MANIFOLDLIB_PROFILE=paper``) ``ch13_noise_leaf_<profile>.pt/.json``. The chapter re-runs
the first images of both arms through all 250 steps against these, with a tolerance measured
under the three kernel sets CI uses.

Run: ``OMP_NUM_THREADS=1 python -m experiments ch13_noise_leaf`` (about 3 CPU-min on one
thread in the book profile; the time is in the JSON).

Introduced in the chapter "Out-of-distribution detection by distance from leaf pieces".
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

import manifoldlib as ml
from experiments.ood_baselines import LEAF_NOISE_MAX_STEP, model_config
from experiments.records import RunRecord, sha256_file, write_json

OUT = Path(__file__).parent / "results"
#: The chapter's (and ``ood_baselines.build_sets``'s) generator seed, the path length of the
#: noise and the number of images of the unclamped arm.
SEED, DISTANCE, N_NO_CLAMP = 13, 25.0, 25


def output_stem(profile: str) -> str:
    """``ch13_noise_leaf`` for the book profile, ``ch13_noise_leaf_<profile>`` otherwise."""
    return "ch13_noise_leaf" if profile == "book" else f"ch13_noise_leaf_{profile}"


def sizes(profile: ml.Profile | None = None) -> tuple[int, int]:
    """The chapter's ``(n_in, n_out)``: in-distribution test digits, images per OOD set."""
    P = ml.current_profile() if profile is None else profile
    return P.pick(book=200, paper=2000), P.pick(book=100, paper=1000)


def draws(n_test: int, n_in: int, n_out: int) -> tuple[torch.Generator, torch.Tensor]:
    """The chapter's generator after its permutation, and the indices of the noise's bases.

    The same calls as the chapter's cell and ``ood_baselines.build_sets``: seed 13, one
    ``randperm`` of the test set; the bases are ``perm[n_in : n_in + n_out]``.
    """
    gen = torch.Generator().manual_seed(SEED)
    perm = torch.randperm(n_test, generator=gen)
    return gen, perm[n_in : n_in + n_out]


def noise(model, base, pixel_range, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Both arms from ``gen``'s current state, as the chapter, and the generator's states.

    The clamped noise of every base, then the unclamped noise of the first 25 bases from the
    same state (the same Gaussian draws); ``gen`` ends where the clamped noise left it.
    """
    state_leaf = gen.get_state()
    noise_leaf = ml.leaf.across_leaves_noise(
        model, base, DISTANCE, max_step=LEAF_NOISE_MAX_STEP, clamp=pixel_range, generator=gen
    )
    state_iso = gen.get_state()
    g_leaf = torch.Generator()
    g_leaf.set_state(state_leaf)
    no_clamp = ml.leaf.across_leaves_noise(
        model, base[:N_NO_CLAMP], DISTANCE, max_step=LEAF_NOISE_MAX_STEP, generator=g_leaf
    )
    return {
        "noise_leaf": noise_leaf,
        "no_clamp": no_clamp,
        "state_leaf": state_leaf,
        "state_iso": state_iso,
    }


def main() -> None:
    """Run the chapter's two noise batches and write the ``.pt`` and ``.json`` files."""
    torch.set_num_threads(1)  # as the chapter: long paths' last digits depend on it
    torch.manual_seed(0)
    record = RunRecord.start()
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source)
    model = record.model("mnist", model_config(0), P.mnist_epoch)
    n_in, n_out = sizes(P)
    gen, base_index = draws(len(data.test_y), n_in, n_out)
    out = noise(model, data.test_x[base_index], data.pixel_range, gen)
    out["base_index"] = base_index
    # Own storage for each tensor (a path's final point and a slice of the permutation are
    # views of larger tensors, which torch.save would write whole).
    out = {k: v.clone() for k, v in out.items()}
    stem = output_stem(P.name)
    OUT.mkdir(parents=True, exist_ok=True)
    torch.save(out, OUT / f"{stem}.pt")
    steps = max(1, math.ceil(DISTANCE / LEAF_NOISE_MAX_STEP - 1e-9))  # as across_leaves_noise
    payload = {
        "profile": P.name,
        "seed": SEED,
        "n_in": n_in,
        "n_out": n_out,
        "n_no_clamp": N_NO_CLAMP,
        "distance": DISTANCE,
        "max_step": LEAF_NOISE_MAX_STEP,
        "steps": steps,
        "epoch": P.mnist_epoch,
        "shapes": {k: list(v.shape) for k, v in out.items()},
        "pt_file": f"{stem}.pt",
        "pt_sha256": sha256_file(OUT / f"{stem}.pt"),
    }
    write_json(OUT / f"{stem}.json", payload, record)
    print({k: payload[k] for k in ("profile", "n_out", "n_no_clamp", "steps")}, flush=True)


if __name__ == "__main__":
    main()
