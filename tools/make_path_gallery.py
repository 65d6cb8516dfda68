"""Precompute chapter 17's gallery: a horizontal path for every pair of MNIST classes.

For each of the 10 x 10 pairs (source class i, target class j) the path runs from the first
test image of class i to the first test image of class j (for i = j: to the second), with
the book profile's shared CNN, Algorithm 1 as ``manifoldlib.horizontal_path`` (steps of 0.1,
clamped into the pixel range, threshold 1.0), for at most a path length of 30 (300 steps).
The 100 paths run as one batch. It writes ``data/path_gallery_mnist.npz``:

    pixels         uint8 (R, 100, 28, 28): the recorded points, as pixels
    steps          int64 (R,): the step of each record
    probabilities  float32 (R, 100, 10): class probabilities at each record
    distances      float32 (R, 100): distance to the target at each record
    steps_taken    int64 (100,), reached bool (100,), stop_reasons str (100,)
    pairs          int64 (100, 2), sources / targets int64 (100,): test image indices

The chapter "An interactive explorer" loads it, renders the gallery, and re-runs one pair
to show that the file reproduces. Run time: about 10 CPU-minutes on a quiet 2-core machine
(much longer on a loaded one).

Usage (from the repository root): ``PYTHONPATH=$PWD python tools/make_path_gallery.py``
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "path_gallery_mnist.npz"
STEP_SIZE, MAX_LENGTH, RECORD_EVERY = 0.1, 30.0, 25


def gallery_pairs(test_y: torch.Tensor) -> tuple[list[tuple[int, int]], torch.Tensor, torch.Tensor]:
    """The 100 class pairs and their source and target test-image indices."""
    first = [(test_y == c).nonzero().flatten()[:2] for c in range(10)]
    pairs = [(i, j) for i in range(10) for j in range(10)]
    src = torch.stack([first[i][0] for i, _ in pairs])
    tgt = torch.stack([first[j][1 if i == j else 0] for i, j in pairs])
    return pairs, src, tgt


def main() -> None:
    """Compute the 100 paths and write the file."""
    import manifoldlib as ml

    P = ml.current_profile()  # run with the book profile (the default)
    data = ml.load_mnist(P.mnist_source)
    model = ml.cached_train(P.mnist_config(), epoch=P.mnist_epoch, progress=False).model
    pairs, src, tgt = gallery_pairs(data.test_y)
    t0 = time.perf_counter()
    res = ml.horizontal_path(
        model,
        data.test_x[src],
        data.test_x[tgt],
        step_size=STEP_SIZE,
        max_steps=round(MAX_LENGTH / STEP_SIZE),
        clamp=data.pixel_range,
        record_every=RECORD_EVERY,
        progress=True,
    )
    seconds = time.perf_counter() - t0
    pixels = (data.to_pixels(res.points[:, :, 0]).clamp(0, 1) * 255).round().to(torch.uint8)
    np.savez_compressed(
        OUT,
        pixels=pixels.numpy(),
        steps=res.steps.numpy(),
        probabilities=res.class_probabilities.float().numpy(),
        distances=res.distances.float().numpy(),
        steps_taken=res.steps_taken.numpy(),
        reached=res.reached.numpy(),
        stop_reasons=np.asarray(res.stop_reasons),
        pairs=np.asarray(pairs),
        sources=src.numpy(),
        targets=tgt.numpy(),
        seconds=np.asarray(seconds),
    )
    print(f"wrote {OUT.relative_to(ROOT)} ({OUT.stat().st_size / 1e3:.0f} kB) in {seconds:.0f} s")


if __name__ == "__main__":
    main()
