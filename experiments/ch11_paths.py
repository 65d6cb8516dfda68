"""Chapter 11's horizontal paths: four on CIFAR-10 (float64) and four on MNIST, recorded every 20 steps.

Chapter 11 ("CIFAR-10") draws Algorithm 1's horizontal paths between four pairs of CIFAR-10
test images (the slim VGG-11 the chapter trains on the repository's subset, ``data/``; float64
model and images; steps of 0.1, clamped, threshold 1, a path-length budget of 300: 3,000
steps) and, for comparison, between four fixed pairs of MNIST test digits (the ``book``
checkpoint, float32, the same step, budget and threshold). This script runs exactly the
chapter's computation, on one thread, with the chapter's pairs (:func:`chapter_pairs`: the
first eligible source and target of each of four class pairs in a permutation of seed 0; the
rule of ``experiments/pairs.py`` does not cover it) and keeps what the chapter's statistics
and figures read:

- CIFAR-10: per path the steps taken, whether it reached the threshold, its stop reason; per
  record (every 20 steps) the distance to the target, the class probabilities, the alignment
  and straightness (:func:`path_shape`); the end points (float64); and the recorded points at
  the frames the chapter shows (:func:`frame_records`, as 8-bit pixels: for display only);
- MNIST: the same except points and probabilities.

It writes ``experiments/results/ch11_paths.{json,npz}`` (settings, pairs, the fingerprint of
the test images, per-path values, run record; the arrays); under another profile
(``MANIFOLDLIB_PROFILE=paper``: budget 1,000 and the full network, hours on a CPU)
``ch11_paths_<profile>.*``. The chapter prints its statistics from them when it sees the same
data (the fingerprint of its test images equals the run's) and re-runs a slice against them;
on other data (``MANIFOLDLIB_CIFAR10``) it computes the CIFAR-10 paths itself.

Run: ``OMP_NUM_THREADS=1 python -m experiments ch11_paths`` (about 3 CPU-min; the time is in
the JSON).

Introduced in the chapter "CIFAR-10".
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import numpy as np
import torch

import manifoldlib as ml
from experiments.pairs import choose_pairs
from experiments.records import RunRecord, write_json

OUT = Path(__file__).parent / "results"
#: The chapter's settings: class pairs (airplane->frog, automobile->ship, cat->truck,
#: horse->bird), the permutation's seed, the eligibility bound, the path parameters.
CLASS_PAIRS = ((0, 6), (1, 8), (3, 9), (7, 2))
PAIR_SEED, MAX_CONFIDENCE = 0, 0.99
STEP_SIZE, THRESHOLD, RECORD_EVERY = 0.1, 1.0, 20
#: The chapter's MNIST pairs: test digits 0, 1, 4, 6 -> 7, 9, 0, 2.
MNIST_SOURCES, MNIST_TARGETS = (3, 150, 420, 610), (720, 905, 35, 260)
#: The records the chapter shows: 7 evenly spaced (the strips), 6 evenly spaced (the
#: comparison with the interpolation), of 151 records (book profile).
STRIP_FRAMES, INTERP_FRAMES = 7, 6


def output_name(profile: str, ext: str = "json") -> str:
    """``ch11_paths.<ext>`` for the book profile, ``ch11_paths_<profile>.<ext>`` otherwise."""
    return f"ch11_paths.{ext}" if profile == "book" else f"ch11_paths_{profile}.{ext}"


def max_length(profile: ml.Profile) -> float:
    """The chapter's budget of path length: 300 (book), 1,000 (paper)."""
    return profile.pick(book=300.0, paper=1000.0)


def cifar_config(profile: ml.Profile, source: str = "bundled") -> ml.TrainConfig:
    """The chapter's training configuration of the CIFAR-10 network (its cell ``f12065d7``)."""
    return ml.TrainConfig(
        arch="vgg11",
        arch_kwargs=(("width", profile.pick(book=0.125, paper=1.0)),),
        dataset="cifar10",
        source=source,
        epochs=profile.pick(book=10, paper=20),
        batch_size=profile.pick(book=64, paper=128),
        lr=profile.pick(book=0.02, paper=0.05),
        momentum=0.9,
        augment=profile.pick(book=False, paper=True),
        threads=profile.pick(book=1, paper=None),
    )


def pixel_fingerprint(data: ml.data.ImageData) -> str:
    """SHA-256 of the test images as 8-bit pixels and of their labels (what identifies the data).

    The pixels are recovered from the normalised images by rounding, so the fingerprint does
    not depend on the last bits of the normalisation.
    """
    pixels = (data.denormalize(data.test_x) * 255).round().clamp(0, 255).to(torch.uint8)
    digest = hashlib.sha256(pixels.numpy().tobytes())
    digest.update(data.test_y.numpy().astype(np.int64).tobytes())
    return digest.hexdigest()


def chapter_pairs(model: torch.nn.Module, data: ml.data.ImageData) -> tuple:
    """The chapter's endpoints: the first eligible image of each class pair's classes.

    Eligible: correctly classified, no class above probability 0.99 (the paper's rule), in the
    order of a permutation of the test set drawn with seed 0 (the chapter's cell ``587eb9df``).

    Returns:
        ``(src, tgt, n_eligible)``: ``(4,)`` source and target indices, the eligible count.
    """
    with torch.no_grad():
        probs = torch.softmax(model(data.test_x), dim=1)
    top, pred = probs.max(1)
    eligible = (top <= MAX_CONFIDENCE) & (pred == data.test_y)
    src, tgt = choose_pairs(
        data.test_y,
        len(CLASS_PAIRS),
        PAIR_SEED,
        rule="class_pairs",
        class_pairs=CLASS_PAIRS,
        eligible=eligible,
    )
    return src, tgt, int(eligible.sum())


def path_shape(points: torch.Tensor, s: torch.Tensor, d: torch.Tensor) -> dict[str, torch.Tensor]:
    """Alignment and straightness along recorded paths (the chapter's ``path_shape``).

    Args:
        points: ``(R, B, *input_shape)`` recorded points, ``points[0] = s``.
        s: ``(B, *input_shape)`` sources.
        d: ``(B, *input_shape)`` targets.

    Returns:
        ``alignment`` and ``straightness``, each ``(R - 1, B)`` (from the first record on).
    """
    x = points.flatten(2)
    disp = x - s.flatten(1)
    chord = (d - s).flatten(1)
    align = (disp * chord).sum(-1) / (disp.norm(dim=-1) * chord.norm(dim=-1)).clamp_min(1e-12)
    length = (x[1:] - x[:-1]).norm(dim=-1).cumsum(0)
    straight = disp[1:].norm(dim=-1) / length.clamp_min(1e-12)
    return {"alignment": align[1:], "straightness": straight}


def frame_records(n_records: int) -> list[int]:
    """The records the chapter shows: its strips' and its interpolation comparison's frames."""
    strip = ml.images.frame_indices(n_records, STRIP_FRAMES)
    interp = torch.linspace(0, n_records - 1, INTERP_FRAMES).round().long().tolist()
    return sorted(set(strip) | set(interp))


def frame_pixels(data: ml.data.ImageData, points: torch.Tensor) -> torch.Tensor:
    """Recorded points as 8-bit pixels ``(..., 3, 32, 32)`` uint8 (what a figure shows)."""
    return (data.to_pixels(points) * 255).round().to(torch.uint8)


def run_paths(model, x, d, pixel_range, budget: float, max_steps: int | None = None):
    """The chapter's horizontal paths (``max_steps`` defaults to the budget / step size)."""
    return ml.horizontal_path(
        model,
        x,
        d,
        step_size=STEP_SIZE,
        max_steps=round(budget / STEP_SIZE) if max_steps is None else max_steps,
        threshold=THRESHOLD,
        clamp=pixel_range,
        record_every=RECORD_EVERY,
        progress=False,
    )


def main() -> None:
    """Run the chapter's computation and write the JSON and the arrays."""
    torch.set_num_threads(1)  # as the chapter: sums (and long paths' last digits) depend on it
    torch.manual_seed(0)
    record = RunRecord.start()
    P = ml.current_profile()
    budget = max_length(P)
    source = "torchvision" if P.name == "paper" else "bundled"
    data = ml.load_cifar10(source, download=True)
    config = cifar_config(P, source)
    model = record.model("cifar10", config, config.epochs)
    mnist = ml.load_mnist(P.mnist_source)
    mnist_model = record.model("mnist", P.mnist_config(), P.mnist_epoch)
    src, tgt, n_eligible = chapter_pairs(model, data)

    model64 = copy.deepcopy(model).double()
    data64 = data.to(torch.float64)
    s64, d64 = data64.test_x[src], data64.test_x[tgt]
    paths = run_paths(model64, s64, d64, data64.pixel_range, budget)
    shape = path_shape(paths.points, s64, d64)
    frames = frame_records(paths.points.shape[0])

    m_src, m_tgt = torch.tensor(MNIST_SOURCES), torch.tensor(MNIST_TARGETS)
    m_s, m_d = mnist.test_x[m_src], mnist.test_x[m_tgt]
    m_paths = run_paths(mnist_model, m_s, m_d, mnist.pixel_range, budget)
    m_shape = path_shape(m_paths.points, m_s, m_d)

    arrays = {
        "cifar_steps": paths.steps.numpy(),
        "cifar_distances": paths.distances.numpy(),
        "cifar_class_probabilities": paths.class_probabilities.numpy(),
        "cifar_alignment": shape["alignment"].numpy(),
        "cifar_straightness": shape["straightness"].numpy(),
        "cifar_final": paths.final.numpy(),
        "cifar_frame_records": np.asarray(frames),
        "cifar_frames": frame_pixels(data, paths.points[frames]).numpy(),
        "mnist_steps": m_paths.steps.numpy(),
        "mnist_distances": m_paths.distances.numpy(),
        "mnist_alignment": m_shape["alignment"].numpy(),
        "mnist_straightness": m_shape["straightness"].numpy(),
    }
    np.savez_compressed(OUT / output_name(P.name, "npz"), **arrays)
    payload = {
        "profile": P.name,
        "cifar_source": source,
        "cifar_fingerprint": pixel_fingerprint(data),
        "cifar_config": config.key(),
        "class_pairs": [list(p) for p in CLASS_PAIRS],
        "pair_seed": PAIR_SEED,
        "max_confidence": MAX_CONFIDENCE,
        "n_eligible": n_eligible,
        "sources": src.tolist(),
        "targets": tgt.tolist(),
        "mnist_sources": list(MNIST_SOURCES),
        "mnist_targets": list(MNIST_TARGETS),
        "step_size": STEP_SIZE,
        "threshold": THRESHOLD,
        "max_length": budget,
        "max_steps": round(budget / STEP_SIZE),
        "record_every": RECORD_EVERY,
        "cifar_dtype": "float64",
        "mnist_dtype": "float32",
        "cifar": {
            "steps_taken": paths.steps_taken.tolist(),
            "reached": paths.reached.tolist(),
            "stop_reasons": list(paths.stop_reasons),
        },
        "mnist": {
            "steps_taken": m_paths.steps_taken.tolist(),
            "reached": m_paths.reached.tolist(),
            "stop_reasons": list(m_paths.stop_reasons),
        },
        "arrays": {k: list(v.shape) for k, v in arrays.items()},
    }
    write_json(OUT / output_name(P.name), payload, record)
    print({k: payload[k] for k in ("profile", "n_eligible", "max_steps")}, flush=True)


if __name__ == "__main__":
    main()
