"""Geodesics of the leaf against Algorithm 1's paths, on many pairs (chapter 16).

For each pair of test images (different classes): run Algorithm 1 (alpha = 0.1, clamped to
the pixel range, 300 steps: path length at most 30) from the source towards the target and
take the point where it ends; lift the Fisher-Rao great circle from the source's prediction
to that end point's prediction to the leaf through the source
(``manifoldlib.riemannian.leaf_geodesic``, 48 steps), without a clamp ("free") and with one
("clamped"); and lift, without a clamp, the great circle all the way to the target image's
own prediction ("target"). One row per pair in ``experiments/results/leaf_geodesics.csv``:
G-lengths of the path and of the lifts, the Fisher-Rao distance ``2 arccos sum sqrt(p q)``
and the chord ``||2 sqrt(q) - 2 sqrt(p)||``, where each lift stopped and why, how many of its
steps crossed a region boundary, how far it left the pixel range, and how far its end lies
from the path's.

Run: ``python -m experiments.leaf_geodesics [--pairs N]``. The committed run (60 pairs) took
the CPU time stored in ``leaf_geodesics.json`` (about 7 CPU-minutes, one thread, on a shared
2-core machine).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

import manifoldlib as ml
from experiments.pairs import choose_pairs as draw_pairs
from experiments.records import RunRecord, write_csv, write_json
from manifoldlib.riemannian import leaf_geodesic, sphere_embedding

OUT = Path(__file__).parent / "results"


def run(model, data, src, tgt, *, path_steps: int, lift_steps: int) -> list[dict]:
    """Algorithm 1, its G-length, and the three lifts, for the given pairs."""
    x0, d = data.test_x[src], data.test_x[tgt]
    path = ml.horizontal_path(
        model, x0, d, step_size=0.1, max_steps=path_steps, clamp=data.pixel_range, progress=False
    )
    lg_path = ml.metric_lengths(model, path.points).sum(0)
    le_path = ml.riemannian.euclidean_lengths(path.points).sum(0)
    pl_path = ml.riemannian.prediction_path_length(path.class_probabilities)
    p0, pt = path.class_probabilities[0], path.class_probabilities[-1]
    fr = ml.fisher_rao_distance(p0, pt)
    chord = (sphere_embedding(pt) - sphere_embedding(p0)).norm(dim=1)
    free = leaf_geodesic(model, x0, pt, steps=lift_steps)
    held = leaf_geodesic(model, x0, pt, steps=lift_steps, clamp=data.pixel_range)
    # The whole way to the target image's own prediction (floored at 1e-9: a lift cannot
    # reach a vertex), without a clamp: where does such a lift stop?
    pd = ml.log_probabilities(model, d).exp().double().clamp_min(1e-9)
    pd = pd / pd.sum(1, keepdim=True)
    far = leaf_geodesic(model, x0, pd, steps=lift_steps)
    fr_far = ml.fisher_rao_distance(p0.double(), pd)
    lo, hi = data.pixel_range
    span = (path.points[-1] - x0).flatten(1).norm(dim=1)
    rows = []
    for b in range(len(src)):
        row = {
            "source": int(src[b]),
            "target": int(tgt[b]),
            "path_steps": int(path.steps_taken[b]),
            "path_length_euclid": float(le_path[b]),
            "path_G_length": float(lg_path[b]),
            "path_fisher_length": float(pl_path[b]),
            "fisher_rao": float(fr[b]),
            "chord": float(chord[b]),
            "fisher_rao_to_target": float(fr_far[b]),
            "path_end_over_start_distance": float(path.distances[-1, b] / path.distances[0, b]),
        }
        for tag, geo in (("free", free), ("clamped", held), ("target", far)):
            row[f"{tag}_reason"] = geo.stop_reasons[b]
            row[f"{tag}_stopped"] = int(geo.stopped[b])
            row[f"{tag}_G_length"] = float(geo.g_length()[b])
            row[f"{tag}_length_euclid"] = float(geo.step_norms[:, b].sum())
            # How far the lift's points lie outside the pixel range (before any clamp).
            out = torch.maximum(lo - geo.points[:, b], geo.points[:, b] - hi)
            out = torch.maximum(out.clamp_min(0).flatten(1).amax(1)[1:], geo.box_violation[:, b])
            row[f"{tag}_max_box_violation"] = float(out.max())
            row[f"{tag}_first_box_step"] = (
                int((out > 0).float().argmax()) + 1 if bool((out > 0).any()) else -1
            )
            row[f"{tag}_max_off_leaf"] = float(geo.off_leaf[:, b].max())
            row[f"{tag}_max_miss"] = float(geo.miss[:, b].max())
            taken = int(geo.stopped[b])
            # Steps whose first aim missed the circle: they crossed a region boundary
            # (or were clamped); inside one linear region the miss is round-off.
            row[f"{tag}_boundary_steps"] = int((geo.miss[:taken, b] > 1e-6).sum())
            row[f"{tag}_fisher_length"] = float(
                ml.riemannian.prediction_path_length(geo.probabilities[: taken + 1, b : b + 1])[0]
            )
            row[f"{tag}_end_deviation"] = float(geo.deviation[-1, b])
            row[f"{tag}_end_to_path_end"] = float(
                (geo.points[-1, b] - path.points[-1, b]).norm() / span[b]
            )
        rows.append(row)
    return rows


def main(n_pairs: int = 60, path_steps: int = 300, lift_steps: int = 48) -> None:
    """Run the experiment and write the CSV and a JSON of the settings and run time."""
    torch.manual_seed(0)
    t0, c0 = time.time(), time.process_time()
    record = RunRecord.start()
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source)
    model = ml.cached_train(P.mnist_config(), epoch=P.mnist_epoch, progress=False).model
    record.checkpoint("mnist", P.mnist_config(), P.mnist_epoch)
    src, tgt = draw_pairs(data.test_y, n_pairs, seed=16, rule="other_class")
    rows = run(model, data, src, tgt, path_steps=path_steps, lift_steps=lift_steps)
    write_csv(OUT / "leaf_geodesics.csv", rows)
    meta = {
        "profile": P.name,
        "n_pairs": n_pairs,
        "path_steps": path_steps,
        "step_size": 0.1,
        "lift_steps": lift_steps,
        "seconds": round(time.time() - t0),
        "cpu_seconds": round(time.process_time() - c0),
        "threads": torch.get_num_threads(),
    }
    write_json(OUT / "leaf_geodesics.json", meta, record)
    print(meta, flush=True)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=60)
    main(n_pairs=ap.parse_args().pairs)
