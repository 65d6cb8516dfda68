"""How sensitive chapter 10's paths are: float32 against float64, and a 1e-7 move of each start.

Run: ``OMP_NUM_THREADS=1 python -m experiments ch10_path_sensitivity``.

Chapter 10 runs its horizontal paths live, in float64: the noisy starts (250 steps of 0.1
across the leaves, clamped) and Algorithm 1 with exact projections and the book's shortened
step from the noisy and the clean start of six pairs, stopped by a budget of 1,000 steps (not
where the direction vanishes). This script repeats exactly that three times on the ``book``
checkpoint:

- ``float64``: the chapter's computation (its values should match the chapter's own run);
- ``float64_moved``: the same, every path start (noisy and clean) moved by a random vector of
  norm 1e-7 (seeded), the noise unchanged;
- ``float32``: the noise and the paths in float32 (the paper's arithmetic).

For each arm and path it writes the final distance, the distance at step 500, the predicted
class at the end, and for the noisy paths the share of the noise kept (``kappa``, as in the
chapter) at steps 500 and 1,000, into ``ch10_path_sensitivity.json`` with the run record.

Introduced in the chapter "Noisy leaves".
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

import manifoldlib as ml
from experiments.ch10_noisy_paths import chapter_pairs
from experiments.records import RunRecord, write_json
from manifoldlib.algorithm1 import algorithm1_paths

RESULTS = Path(__file__).resolve().parent / "results"
STEPS, EVERY = 1000, 500


def budget_paths(model, starts, targets, clamp, *, steps=STEPS, every=EVERY):
    """Chapter 10's paths: exact projection, shortened step 0.1, clamp, stopped by budget.

    Returns the points every ``every`` steps, ``(steps // every + 1, B, *input_shape)``.
    """
    points, x = [starts], starts
    for _ in range(steps // every):
        x = algorithm1_paths(
            model,
            x,
            targets,
            projection="exact",
            rule="shortened",
            clamp=clamp,
            step_size=0.1,
            max_steps=every,
            threshold=1.0,
            record_every=every,
        ).final
        points.append(x)
    return torch.stack(points)


def main() -> None:
    """Run the three arms and write the JSON."""
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    P = ml.current_profile()
    record = RunRecord.start()
    base = ml.load_mnist(P.mnist_source)
    trained = ml.cached_train(P.mnist_config(), epoch=P.mnist_epoch, progress=False).model
    record.checkpoint("book", P.mnist_config(), P.mnist_epoch)
    src_idx, tgt_idx = chapter_pairs(base.test_y)
    k = len(src_idx)
    direction32 = torch.randn((k, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    move = torch.randn((2 * k, 1, 28, 28), generator=torch.Generator().manual_seed(7))
    move = 1e-7 * move / move.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    arms, cpu = {}, {}
    for arm, dtype in (
        ("float64", torch.float64),
        ("float64_moved", torch.float64),
        ("float32", torch.float32),
    ):
        c0 = time.process_time()
        data = base.to(dtype)
        model = trained.to(dtype)
        clean, target = data.test_x[src_idx], data.test_x[tgt_idx]
        noisy = ml.across_leaves_path(
            model,
            clean,
            direction32.to(dtype),
            step_size=0.1,
            steps=250,
            clamp=data.pixel_range,
            record_every=250,
        ).final
        starts = torch.cat([noisy, clean])
        if arm == "float64_moved":
            starts = torch.clamp(starts + move.to(dtype), *data.pixel_range)
        pts = budget_paths(model, starts, torch.cat([target, target]), data.pixel_range)
        noise = noisy - clean
        nrm = noise.flatten(1).norm(dim=1)
        nhat = noise / nrm.view(-1, 1, 1, 1)
        kappa = ((pts[:, :k] - pts[:, k:]) * nhat).flatten(2).sum(-1) / nrm  # (R, k)
        dist = (torch.cat([target, target]) - pts).flatten(2).norm(dim=-1)  # (R, 2k)
        with torch.no_grad():
            pred = model(pts[-1]).argmax(1)
        arms[arm] = {
            "noise_norm": nrm.tolist(),
            "distance_0": dist[0].tolist(),
            "distance_500": dist[1].tolist(),
            "distance_1000": dist[-1].tolist(),
            "kappa_500": kappa[1].tolist(),
            "kappa_1000": kappa[-1].tolist(),
            "pred_end": pred.tolist(),
        }
        cpu[arm] = round(time.process_time() - c0, 1)
        print(f"{arm}: {cpu[arm]} CPU s", flush=True)
    meta = {
        "source_index": src_idx.tolist(),
        "target_index": tgt_idx.tolist(),
        "steps": STEPS,
        "record_every": EVERY,
        "rule": "shortened",
        "projection": "exact",
        "move_norm": 1e-7,
        "arms": arms,
        "cpu_s": cpu,
    }
    write_json(RESULTS / "ch10_path_sensitivity.json", meta, record)


if __name__ == "__main__":
    main()
