"""Precompute chapter 17's gallery: a horizontal path for every ordered pair of MNIST classes.

One test image per class is drawn with a seeded generator among the test images the book
model classifies correctly. For each of the 90 ordered pairs (source class i, target class j,
i != j) a horizontal path (Algorithm 1, ``manifoldlib.horizontal_path``: steps of 0.1, each
point clamped into the pixel range, threshold 1.0) runs from image i towards image j, with
the book profile's shared CNN (loaded from the cache; this script never trains: it fails if
the model is not cached). The budget of a path is a path length (``MAX_LENGTH``), i.e.
``MAX_LENGTH / STEP_SIZE`` steps. All 90 paths run as one batch. The diagonal is left empty.

It writes ``data/path_gallery_mnist.npz`` (a few hundred kB):

    pixels         uint8 (R, 90, 28, 28): the recorded points (every 50 steps), as pixels
    steps          int64 (R,): the step of each record (shared by the batch)
    probabilities  float16 (R, 90, 10): class probabilities at each record
    distances      float32 (R, 90): distance to the target (model inputs) at each record
    steps_taken    int64 (90,), reached bool (90,), stop_reasons str (90,)
    pairs          int64 (90, 2): (source class, target class)
    sources, targets  int64 (90,): the test-image indices of each path's ends
    class_images   int64 (10,): the chosen test image of each class
    seconds        float: wall time of the batch; cpu_seconds: its CPU time
    provenance     str (JSON): script, seed, model config key and epoch, settings, torch
                   version and threads

The chapter "An interactive explorer" loads it with
``manifoldlib.widgets.load_path_gallery``, renders the 10 x 10 grid of end points with
``path_gallery_html``, and re-runs one pair to show that the file reproduces.

Cost (measured on the 2-core machine, one thread, under nice): 183 CPU-seconds, about 3
CPU-minutes (3 minutes of wall time on a quiet machine; 17 minutes while five other jobs ran)
for a path length of 30; printed at the end and stored in the
file (``seconds``, ``cpu_seconds``). The file is 266 kB. Two runs (recording every 25 and
every 50 steps) gave bit-identical paths at the common records. Chapter 17 recomputes one
path and checks it against the file.

Usage (from the repository root)::

    nice -n 10 env OMP_NUM_THREADS=1 PYTHONPATH=$PWD python tools/make_path_gallery.py
    # a quick estimate of the cost: --max-length 1 (10 steps), written to /tmp
    PYTHONPATH=$PWD python tools/make_path_gallery.py --max-length 1 --out /tmp/g.npz
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "data" / "path_gallery_mnist.npz"
SEED = 0
STEP_SIZE, MAX_LENGTH, THRESHOLD, RECORD_EVERY = 0.1, 30.0, 1.0, 50


def gallery_images(test_y: torch.Tensor, predicted: torch.Tensor, seed: int = SEED) -> torch.Tensor:
    """One test image per class, drawn with ``seed`` among the correctly classified ones.

    Args:
        test_y: ``(N,)`` test labels.
        predicted: ``(N,)`` the model's predictions on the test images.
        seed: seed of the draw.

    Returns:
        ``(10,)`` test-image indices, one per class.
    """
    g = torch.Generator().manual_seed(seed)
    chosen = []
    for c in range(10):
        ok = ((test_y == c) & (predicted == c)).nonzero().flatten()
        chosen.append(ok[torch.randint(len(ok), (1,), generator=g)].item())
    return torch.tensor(chosen)


def gallery_pairs() -> list[tuple[int, int]]:
    """The 90 ordered pairs of distinct classes, row by row."""
    return [(i, j) for i in range(10) for j in range(10) if i != j]


def main() -> None:
    """Compute the 90 paths and write the file."""
    import manifoldlib as ml

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--max-length", type=float, default=MAX_LENGTH, help="path-length budget")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    P = ml.current_profile()  # run with the book profile (the default)
    data = ml.load_mnist(P.mnist_source)
    config = P.mnist_config()
    from manifoldlib.data import data_home

    cached = data_home() / "models" / f"{config.arch}-{config.key()}"
    if not (cached / f"epoch-{config.epochs:03d}.pt").is_file():
        raise SystemExit(f"the book model is not cached ({cached}): this script never trains")
    model = ml.cached_train(config, epoch=P.mnist_epoch, progress=False).model
    with torch.no_grad():
        predicted = torch.cat([model(b).argmax(1) for b in data.test_x.split(1000)])
    images = gallery_images(data.test_y, predicted)
    pairs = gallery_pairs()
    src = images[[i for i, _ in pairs]]
    tgt = images[[j for _, j in pairs]]
    max_steps = round(args.max_length / STEP_SIZE)
    t0, c0 = time.perf_counter(), time.process_time()
    res = ml.horizontal_path(
        model,
        data.test_x[src],
        data.test_x[tgt],
        step_size=STEP_SIZE,
        max_steps=max_steps,
        threshold=THRESHOLD,
        clamp=data.pixel_range,
        record_every=RECORD_EVERY,
        progress=False,
    )
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    pixels = (data.to_pixels(res.points[:, :, 0]).clamp(0, 1) * 255).round().to(torch.uint8)
    provenance = {
        "script": "tools/make_path_gallery.py",
        "seed": SEED,
        "images": "one correctly classified test image per class, drawn with the seed",
        "model_config_key": config.key(),
        "model_epoch": P.mnist_epoch,
        "profile": P.name,
        "step_size": STEP_SIZE,
        "max_length": args.max_length,
        "max_steps": max_steps,
        "threshold": THRESHOLD,
        "record_every": RECORD_EVERY,
        "clamp": "data.pixel_range",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        pixels=pixels.numpy(),
        steps=res.steps.numpy(),
        probabilities=res.class_probabilities.numpy().astype(np.float16),
        distances=res.distances.float().numpy(),
        steps_taken=res.steps_taken.numpy(),
        reached=res.reached.numpy(),
        stop_reasons=np.asarray(res.stop_reasons),
        pairs=np.asarray(pairs),
        sources=src.numpy(),
        targets=tgt.numpy(),
        class_images=images.numpy(),
        seconds=np.asarray(seconds),
        cpu_seconds=np.asarray(cpu_seconds),
        provenance=np.asarray(json.dumps(provenance)),
    )
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB): 90 paths of at most "
        f"{max_steps} steps in {seconds:.0f} s ({cpu_seconds:.0f} CPU-s); steps taken: median "
        f"{int(res.steps_taken.median())}, max {int(res.steps_taken.max())}; "
        f"reached {int(res.reached.sum())}/90"
    )


if __name__ == "__main__":
    main()
