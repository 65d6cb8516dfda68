"""Chapter 16's eight horizontal paths in float64: their G-lengths, straight chords and lifts.

Chapter 16 ("Leaf pieces as Riemannian manifolds") measures, on eight pairs of test images of
different classes, Algorithm 1's horizontal paths (float64 model, 400 steps of 0.1, clamped,
each from a generic point next to its source: the image plus Gaussian noise of standard
deviation 0.01, reflected into the pixel range) against the Fisher-Rao geometry of their
predictions, and lifts the great circle from each source's prediction to the path's end
prediction to the leaf (``manifoldlib.riemannian.leaf_geodesic``, 48 steps; two of them
also with 12 and 192 steps). This script runs exactly the chapter's computation, in float64
on one thread, with the chapter's pairs (``experiments/pairs.py``, rule ``"other_class"``,
seed 16: the chapter's own generator calls):

- per path: steps, the end's distance to the target over the start's, the G-length
  (left-point and midpoint rules), the Euclidean length, the Fisher length of its
  predictions, ``d_FR`` of its endpoints' predictions, the share of its G-length in its 20%
  longest steps, and the G-length and Euclidean length of the straight segment (41 points)
  between its endpoints;
- per lift: stop reason, G-length, Fisher length of its predictions, Euclidean length, the
  largest part of a step outside ``D_x``, the largest excess over the pixel range, the recorded
  G-length against ``ml.metric_lengths`` on its points, and the share of steps whose first aim
  missed the circle; the refinement (12, 48, 192 steps) of the first two lifts that arrived.

It writes ``experiments/results/ch16_paths.json`` (settings, per-pair values, run record);
under another profile (``MANIFOLDLIB_PROFILE=paper``: 32 pairs, 3000 steps)
``ch16_paths_<profile>.json``. The chapter prints its statistics from it and re-runs the
first two paths, their lifts and the 12-step refinement against it, with a tolerance
measured across kernel sets.

Run: ``python -m experiments ch16_paths`` (about 2 CPU-min on one thread; the time is in the
JSON).

Introduced in the chapter "Leaf pieces as Riemannian manifolds".
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

import manifoldlib as ml
from experiments.pairs import choose_pairs
from experiments.records import RunRecord, write_json
from manifoldlib.riemannian import leaf_geodesic

OUT = Path(__file__).parent / "results"
#: The chapter's seeds: pairs, the noise that makes the sources generic.
PAIR_SEED, NOISE_SEED, NOISE_STD = 16, 161, 0.01
LIFT_STEPS, REFINE_STEPS, CHORD_POINTS = 48, (12, 48, 192), 41


def generic(z: torch.Tensor, pixel_range, seed: int = NOISE_SEED) -> torch.Tensor:
    """``z`` plus Gaussian noise (standard deviation 0.01), reflected into the pixel range.

    The chapter's ``generic``: the same generator call, so the same points.
    """
    lo, hi = (v.to(z.dtype) for v in pixel_range)
    x = z + NOISE_STD * torch.randn(z.shape, generator=torch.Generator().manual_seed(seed))
    x = torch.where(x < lo, 2 * lo - x, x)
    return torch.where(x > hi, 2 * hi - x, x)


def output_name(profile: str) -> str:
    """``ch16_paths.json`` for the book profile, ``ch16_paths_<profile>.json`` otherwise."""
    return "ch16_paths.json" if profile == "book" else f"ch16_paths_{profile}.json"


def paths(model64, data, src, tgt, max_steps: int) -> ml.PathResult:
    """The chapter's float64 horizontal paths from generic points next to the sources."""
    lo, hi = (v.double() for v in data.pixel_range)
    return ml.horizontal_path(
        model64,
        generic(data.test_x[src], data.pixel_range).double(),
        data.test_x[tgt].double(),
        max_steps=max_steps,
        clamp=(lo, hi),
        progress=False,
    )


def path_values(model64, path: ml.PathResult) -> dict[str, list]:
    """Per-path values of the chapter's cells on the horizontal paths and their chords."""
    seg = ml.metric_lengths(model64, path.points)  # (steps, pairs)
    h_lg = seg.sum(0)
    top = seg.sort(0, descending=True).values
    k20 = max(1, seg.shape[0] // 5)
    chord = ml.linear_interpolation(path.points[0], path.points[-1], CHORD_POINTS)
    mean = ml.metric_lengths(model64, path.points, rule="mean").sum(0)
    probs = path.class_probabilities
    out = {
        "steps_taken": path.steps_taken,
        "end_over_start_distance": path.distances[-1] / path.distances[0],
        "G_length": h_lg,
        "G_length_mean_rule": mean,
        "euclid_length": ml.riemannian.euclidean_lengths(path.points).sum(0),
        "fisher_length": ml.riemannian.prediction_path_length(probs),
        "fisher_rao": ml.fisher_rao_distance(probs[0], probs[-1]),
        "top_fifth_share": top[:k20].sum(0) / h_lg,
        "chord_G_length": ml.metric_lengths(model64, chord).sum(0),
        "chord_euclid_length": ml.riemannian.euclidean_lengths(chord).sum(0),
    }
    return {k: v.tolist() for k, v in out.items()}


def lift_values(model64, geo, pixel_range) -> dict[str, list]:
    """Per-lift values of the chapter's cells on the lifts."""
    lo, hi = pixel_range
    excess = torch.maximum(lo - geo.points, geo.points - hi).clamp_min(0).flatten(2).amax(2)
    g_len = geo.g_length()
    check = ml.metric_lengths(model64, geo.points).sum(0)
    return {
        "reason": list(geo.stop_reasons),
        "G_length": g_len.tolist(),
        "fisher_length": ml.riemannian.prediction_path_length(geo.probabilities).tolist(),
        "euclid_length": geo.step_norms.sum(0).tolist(),
        "boundary_steps": (geo.miss > 1e-6).sum(0).tolist(),
        "max_off_leaf": geo.off_leaf.amax(0).tolist(),
        "max_excess": excess.amax(0).tolist(),
        "recorded_vs_metric_lengths": ((check - g_len).abs() / g_len).tolist(),
    }


def main() -> None:
    """Run the chapter's computation and write the JSON."""
    torch.set_num_threads(1)  # as the chapter: sums (and long paths' last digits) depend on it
    torch.manual_seed(0)
    record = RunRecord.start()
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source)
    model = record.model("mnist", P.mnist_config(), P.mnist_epoch)
    model64 = copy.deepcopy(model).double()
    n_pairs, max_steps = P.pick(book=8, paper=32), P.pick(book=400, paper=3000)
    src, tgt = choose_pairs(data.test_y, n_pairs, PAIR_SEED, rule="other_class")
    path = paths(model64, data, src, tgt, max_steps)
    q_end = path.class_probabilities[-1]
    geo = leaf_geodesic(model64, path.points[0], q_end, steps=LIFT_STEPS)
    lift = lift_values(model64, geo, data.pixel_range)
    arrived = [b for b, r in enumerate(geo.stop_reasons) if r == "arrived"][:2]
    refine = {}
    for k in REFINE_STEPS:
        gk = leaf_geodesic(model64, path.points[0][arrived], q_end[arrived], steps=k)
        refine[str(k)] = {"reason": list(gk.stop_reasons), "G_length": gk.g_length().tolist()}
    payload = {
        "profile": P.name,
        "n_pairs": n_pairs,
        "path_steps": max_steps,
        "step_size": 0.1,
        "dtype": "float64",
        "pair_seed": PAIR_SEED,
        "noise_seed": NOISE_SEED,
        "noise_std": NOISE_STD,
        "lift_steps": LIFT_STEPS,
        "chord_points": CHORD_POINTS,
        "sources": src.tolist(),
        "targets": tgt.tolist(),
        "path": path_values(model64, path),
        "lift": lift,
        "refinement_pairs": arrived,
        "refinement": refine,
    }
    write_json(OUT / output_name(P.name), payload, record)
    print({k: payload[k] for k in ("profile", "n_pairs", "path_steps")}, flush=True)


if __name__ == "__main__":
    main()
