"""The book's refutations re-measured on a checkpoint trained like the paper's.

Run: ``OMP_NUM_THREADS=1 python -m experiments.paper_like --part algorithm1 --model paper_like``
(and ``--model book``; ``--part across`` for chapter 7's paths across the leaves).

The ``book`` checkpoint (epoch 10 of :meth:`~manifoldlib.Profile.mnist_config`: 670 SGD
steps on the embedded 4,000 digits, test accuracy 0.92) is not the paper's model, which is the
same CNN after 10,000 SGD steps on 60,000 digits. The ``paper_like`` checkpoint
(:meth:`~manifoldlib.Profile.paper_like_config`, epoch 10) has the paper's 10,000 SGD steps at
its settings on the digits the book has offline. This script runs, on either checkpoint:

- ``algorithm1``: Algorithm 1 at the paper's rule (step 0.1, fixed steps, clamp to the pixel
  range as the code's ``domain_projection``, reach threshold 1) with the ``exact``, ``gels``
  and ``dropcol`` projections (:mod:`manifoldlib.algorithm1`), on the same 16 seeded pairs as
  chapter 8's study (read from its committed ``algorithm1_main.json``: chosen with the
  ``book`` checkpoint by the paper's p <= 0.99 source rule, so both checkpoints see the
  same pairs),
  for 10,000 steps (``path_tangent``'s default in the paper's code) with the 5,000-step point
  (the data-leaf script's budget at the compared commit) read from the recorded distances.
  No stall stop: the paths run their whole budget unless they reach the threshold.
  Writes ``paper_like_a1_<model>.csv`` (one row per path), ``paper_like_a1_<model>.npz``
  (distances every 100 steps) and ``paper_like_a1_<model>.json`` (run record).
- ``across``: chapter 7's paths across the leaves (a fixed seeded Gaussian direction projected
  on the kernel of G, step 0.1, 1,000 steps, clamp) from 30 seeded test images that both
  checkpoints classify correctly (the same starts and directions on both, so the outcomes
  pair): does the predicted class stay the same? Writes ``paper_like_across_<model>.json``.

Introduced in the chapter "Horizontal paths on the data leaf".
"""

from __future__ import annotations

import argparse
import ast
import calendar
import csv
import json
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

import manifoldlib as ml
from experiments.records import RunRecord, load_model, sha256_file, write_json
from manifoldlib.algorithm1 import algorithm1_paths
from manifoldlib.training import model_checkpoint

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = ("exact", "gels", "dropcol")
RECORD = 100


def model_config(name: str) -> ml.TrainConfig:
    """The configuration of checkpoint ``name`` (``"book"`` or ``"paper_like"``)."""
    profile = ml.current_profile()
    if name == "book":
        return profile.mnist_config()
    if name == "paper_like":
        return profile.paper_like_config()
    raise ValueError(f"model must be 'book' or 'paper_like', got {name!r}")


def setup(name: str) -> tuple[ml.ImageData, int, ml.TrainConfig, torch.nn.Module]:
    """The embedded MNIST, the chapters' epoch, and checkpoint ``name``'s config and model.

    The model is loaded, never trained (:func:`experiments.records.load_model`): exits when
    the checkpoint is neither shipped nor cached.
    """
    epoch = ml.current_profile().mnist_epoch
    config = model_config(name)
    model = load_model(config, epoch)
    if model is None:
        raise SystemExit(f"checkpoint epoch {epoch} of {name} not cached: train it first")
    return ml.load_mnist("embedded"), epoch, config, model


def chapter8_pairs(n: int) -> list[dict]:
    """The first ``n`` of chapter 8's 16 pairs, as its committed study recorded them."""
    meta = json.loads((RESULTS / "algorithm1_main.json").read_text())
    pairs = meta["pairs"]
    if isinstance(pairs, str):  # older records stored the list's repr
        pairs = ast.literal_eval(pairs)
    return pairs[:n]


def run_record(name: str, config: ml.TrainConfig, epoch: int) -> dict:
    """Commit, versions, thread count and the checkpoint's key and SHA-256."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "model": name,
        "config_key": config.key(),
        "epoch": epoch,
        "checkpoint_sha256": sha256_file(model_checkpoint(config, epoch)),
        "commit": commit,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "threads": torch.get_num_threads(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def summarise(
    distances: np.ndarray, steps: np.ndarray, initial: np.ndarray, budget: int
) -> list[dict]:
    """Per path: distance ratios at half the budget and at the end, and the late rate of fall.

    ``d_5000``/``ratio_5000`` are at half of ``budget`` (step 5,000 of the default 10,000).

    ``rate_last1000`` is the fall of the distance over the last 1,000 recorded steps (per
    1,000 steps; positive: still falling); ``steps_to_threshold_at_rate`` is how many more
    steps that rate would need to bring the distance to 1.
    """
    rows = []
    for j in range(distances.shape[1]):
        d = distances[:, j]
        ok = ~np.isnan(d)
        last = int(np.flatnonzero(ok)[-1])
        row = {"last_step": int(steps[last]), "d_last": float(d[last])}
        half = budget // 2
        k5 = np.flatnonzero(steps == half)
        row["d_5000"] = float(d[k5[0]]) if k5.size and ok[k5[0]] else float("nan")
        row["ratio_5000"] = row["d_5000"] / float(initial[j])
        row["ratio_last"] = row["d_last"] / float(initial[j])
        back = np.flatnonzero(steps == steps[last] - 1000)
        if back.size and ok[back[0]]:
            rate = float(d[back[0]] - d[last])
            row["rate_last1000"] = rate
            row["steps_to_threshold_at_rate"] = (
                (row["d_last"] - 1.0) / rate * 1000 if rate > 0 else float("inf")
            )
        rows.append(row)
    return rows


def part_algorithm1(args: argparse.Namespace) -> None:
    """Algorithm 1, three projections, 16 pairs, fixed budget; see the module docstring."""
    record = RunRecord.start()
    data, epoch, config, model = setup(args.model)
    record.checkpoint(args.model, config, epoch)
    pairs = chapter8_pairs(args.pairs)
    src_idx = [q["source_index"] for q in pairs]
    with torch.no_grad():
        p = torch.softmax(model(data.test_x[src_idx]), 1)
    meta = run_record(args.model, config, epoch)
    meta.update(
        {
            "pairs": pairs,
            "source_confidence_on_model": [round(float(v), 4) for v in p.max(1).values],
            "source_predicted_on_model": p.argmax(1).tolist(),
            "variants": list(args.variants),
            "alpha": 0.1,
            "rule": "fixed",
            "clamp": True,
            "threshold": 1.0,
            "max_steps": args.steps,
            "record_every": RECORD,
        }
    )
    tag = f"paper_like_a1_{args.model}"
    meta_path = RESULTS / f"{tag}.json"
    cells = [(v, q) for v in args.variants for q in pairs]
    src = data.test_x[[q["source_index"] for _, q in cells]]
    tgt = data.test_x[[q["target_index"] for _, q in cells]]
    rows: dict[int, dict] = {}
    t0 = time.time()

    def on_finish(i: int, row: dict) -> None:
        v, q = cells[i]
        rows[i] = {"pair": q["pair"], "projection": v, **row, "elapsed_s": time.time() - t0}
        rows[i]["reached"] = int(row["reached"])

    def save(steps: torch.Tensor, dists: torch.Tensor) -> None:
        np.savez_compressed(
            RESULTS / f"{tag}.npz",
            steps=steps.numpy(),
            distances=dists.numpy(),
            projection=np.array([v for v, _ in cells]),
            pair=np.array([q["pair"] for _, q in cells]),
        )

    def on_record(steps: torch.Tensor, dists: torch.Tensor) -> None:
        t = int(steps[-1])
        if t == args.time_steps:
            meta["seconds_first_steps"] = round(time.time() - t0, 1)
            write_json(meta_path, meta, record)
        if t % 500 == 0:
            save(steps, dists)

    deadline = (
        None if args.until is None else calendar.timegm(time.strptime(args.until, "%Y-%m-%d %H:%M"))
    )
    res = algorithm1_paths(
        model,
        src,
        tgt,
        projection=[v for v, _ in cells],
        rule="fixed",
        clamp_on=True,
        clamp=data.pixel_range,
        step_size=0.1,
        max_steps=args.steps,
        threshold=1.0,
        stall_window=None,
        record_every=RECORD,
        on_finish=on_finish,
        on_record=on_record,
        deadline=deadline,
    )
    save(res.record_steps, res.distances)
    summary = summarise(
        res.distances.numpy(), res.record_steps.numpy(), res.initial_distance.numpy(), args.steps
    )
    with (RESULTS / f"{tag}.csv").open("w", newline="") as f:
        fields = [
            "pair",
            "projection",
            "reached",
            "reason",
            "steps",
            "initial_distance",
            "d_5000",
            "ratio_5000",
            "final_distance",
            "ratio_last",
            "min_distance",
            "path_length",
            "rate_last1000",
            "steps_to_threshold_at_rate",
        ]
        w = csv.DictWriter(f, fields, extrasaction="ignore")
        w.writeheader()
        for i in range(len(cells)):
            row = {**rows[i], **summary[i]}
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    meta["run_time_s"] = round(time.time() - t0, 1)
    meta["cpu_s"] = round(time.process_time(), 1)
    meta["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    write_json(meta_path, meta, record)
    print(f"{tag}: {meta['run_time_s']} s")


def part_across(args: argparse.Namespace) -> None:
    """Chapter 7's paths across the leaves at the paper's step and length."""
    record = RunRecord.start()
    data, epoch, config, model = setup(args.model)
    record.checkpoint(args.model, config, epoch)
    meta = run_record(args.model, config, epoch)
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        pred = model(data.test_x).argmax(1)
        ok = pred == data.test_y
        for other in ("book", "paper_like"):  # the same starts on both: paired outcomes
            ok &= load_model(model_config(other), epoch)(data.test_x).argmax(1) == data.test_y
    correct = ok.nonzero().flatten()
    starts = correct[torch.randperm(len(correct), generator=gen)[: args.starts]]
    x0 = data.test_x[starts]
    direction = torch.randn(x0.shape, generator=gen)
    t0 = time.time()
    path = ml.across_leaves_path(
        model,
        x0,
        direction,
        step_size=0.1,
        steps=args.across_steps,
        clamp=data.pixel_range,
        record_every=10,
        progress=False,
    )
    kept_every = (path.predictions == pred[starts]).all(0).int().tolist()
    kept_end = (path.predictions[-1] == pred[starts]).int().tolist()
    meta.update(
        {
            "starts": starts.tolist(),
            "seed": args.seed,
            "step_size": 0.1,
            "steps": args.across_steps,
            "record_every": 10,
            "class_kept_every_record": kept_every,
            "class_kept_at_end": kept_end,
            "end_prediction": path.predictions[-1].tolist(),
            "distance_from_start": path.distances[-1].tolist(),
            "run_time_s": round(time.time() - t0, 1),
            "cpu_s": round(time.process_time(), 1),
        }
    )
    write_json(RESULTS / f"paper_like_across_{args.model}.json", meta, record)
    print(f"across {args.model}: kept {sum(kept_every)}/{len(kept_every)}, {meta['run_time_s']} s")


def main() -> None:
    """Parse the command line and run one part."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="algorithm1", choices=("algorithm1", "across"))
    ap.add_argument("--model", default="paper_like", choices=("book", "paper_like"))
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10_000)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--time-steps", type=int, default=100, help="record the time of these")
    ap.add_argument("--until", default=None, help="stop paths at this UTC time 'Y-m-d H:M'")
    ap.add_argument("--starts", type=int, default=30)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--across-steps", type=int, default=1000)
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.part == "algorithm1":
        part_algorithm1(args)
    else:
        part_across(args)


if __name__ == "__main__":
    main()
