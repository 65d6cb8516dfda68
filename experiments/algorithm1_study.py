"""Does Algorithm 1 reach its targets? A controlled study at the paper's settings.

Run: ``OMP_NUM_THREADS=1 python -m experiments.algorithm1_study [--part main] [--pairs 16]``.

Parts (each writes its own files under ``experiments/results/``, one CSV row per path, written
as soon as the path stops so that a killed run keeps what it finished):

- ``main``: the factorial design on seeded pairs of test images of different classes, all
  cells in ONE batch (one Jacobian per step for every active path): projection {exact, gels,
  rowspace} x step rule {fixed, shortened} x clamp {on, off}, plus gelsy and dropcol at the
  paper's rule and clamp only (in exact arithmetic both project on the same subspace D_x as
  ``exact``: gelsy's rank-revealing QR drops the one dependent direction, dropcol removes one
  of C dependent columns that span a (C-1)-dimensional space; so they need no factorial).
  Rows: ``algorithm1_main.csv``; distance traces: ``algorithm1_main_traces.npz``.
- ``waypoints``: a non-greedy method, exact projections, on the same pairs: horizontal paths
  towards waypoints on the straight segment from source to target, then to the target.
- ``leak``: the structure of the gels leak at points along gels paths (float32 and float64).
- ``sweep``: step sizes 0.2, 0.1, 0.05, 0.02 (exact and gels, fixed rule, clamp), each path
  capped at a nominal path length (``--exact-length``, ``--gels-length``) so that the cost
  does not grow as the step shrinks; distance traces in ``algorithm1_<tag>_traces.npz``.
- ``sweep-stall``: the same step sizes for the exact projection with the book's shortened
  rule and the clamp, run until the paths STALL (window as in ``main``; cap ``--exact-length``
  as a safety net): do the stall distances converge as the step shrinks? (The shortened rule
  stalls soonest in ``main``, at path lengths 16-82; the fixed rule would cost 3x more.)
- ``checkpoints``: exact and gels (capped the same way) on the book model's epoch 10 (the
  chapters' checkpoint), its last epoch, and seed 1's last epoch (10): shipped or cached
  checkpoints only, read by :func:`experiments.records.load_model`, which never trains.
- ``attribution``: gels at the paper's rule and clamp to a fixed path length
  (``--gels-length``), for the split of the fall into D_x, off-D_x and clamp parts.
- ``noisy``: Figure 6's setting: noisy starts made by 250 steps of 0.1 across the leaves
  (a fixed Gaussian direction projected on ``ker G``, clamp), then exact and gels paths to
  the target from the noisy and from the clean start (capped as above).

Settings (the paper's): step alpha = 0.1, at most 5,000 steps (Figure 4's budget), reach
threshold 1.0 (the paper's loop runs while ``||d - x|| > 1``), images clamped to the valid
pixel range after each step. A path also stops when it has stalled: no new distance minimum
(by 0.1% relative) for a path length of 50 (500 steps of 0.1), longer than the initial distance
of any pair; such a path is recorded with the step of its last minimum.

Introduced in the chapter "Horizontal paths on the data leaf".
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import os
import time
from pathlib import Path

import numpy as np
import torch

import manifoldlib as ml
from experiments.pairs import choose_pairs as draw_pairs
from experiments.records import RunRecord, load_model, write_csv, write_json
from manifoldlib.algorithm1 import algorithm1_paths, logprob_columns

RESULTS = Path(__file__).resolve().parent / "results"
MAIN_CELLS = [
    (p, r, c) for p in ("exact", "gels", "rowspace") for r in ("fixed", "shortened") for c in (1, 0)
] + [("gelsy", "fixed", 1), ("dropcol", "fixed", 1)]
#: A reduced design for a loaded machine: every projection at the paper's rule and clamp,
#: plus one change of step rule and one of clamp for the two projections that matter most.
CORE_CELLS = [
    ("exact", "fixed", 1),
    ("gels", "fixed", 1),
    ("rowspace", "fixed", 1),
    ("gelsy", "fixed", 1),
    ("dropcol", "fixed", 1),
    ("exact", "shortened", 1),
    ("gels", "fixed", 0),
]
FIELDS = [
    "part",
    "pair",
    "seed",
    "source_index",
    "target_index",
    "source_label",
    "target_label",
    "source_confidence",
    "projection",
    "rule",
    "clamp",
    "alpha",
    "checkpoint",
    "reached",
    "initial_distance",
    "final_distance",
    "min_distance",
    "ratio_final",
    "ratio_min",
    "stall_step",
    "steps",
    "path_length",
    "reason",
    "fall_in",
    "fall_off",
    "fall_clamp",
    "off_share_late",
    "elapsed_s",
]


def choose_pairs(model, data, n: int, seed: int = 13) -> list[dict]:
    """``n`` seeded pairs (source, target) of test images of different classes.

    Sources follow the paper's code: a random test image on which no class has probability
    above 0.99; the target is a random test image of another class
    (:func:`experiments.pairs.choose_pairs`, rule ``"unsure_source"``).
    """
    with torch.no_grad():
        p = torch.softmax(model(data.test_x), 1)
    conf = p.max(1).values
    src, tgt = draw_pairs(data.test_y, n, seed, rule="unsure_source", confidence=conf)
    return [
        {
            "pair": k,
            "seed": seed,
            "source_index": s,
            "target_index": t,
            "source_label": int(data.test_y[s]),
            "target_label": int(data.test_y[t]),
            "source_confidence": round(float(conf[s]), 4),
        }
        for k, (s, t) in enumerate(zip(src.tolist(), tgt.tolist(), strict=True))
    ]


class RowWriter:
    """Append rows to a CSV, flushing each one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        new = not path.exists()
        self.f = path.open("a", newline="")
        self.w = csv.DictWriter(self.f, FIELDS)
        if new:
            self.w.writeheader()
        self.t0 = time.time()

    def write(self, row: dict) -> None:
        """Write one row (missing fields empty, floats to 6 digits) and flush."""
        row = {k: row.get(k, "") for k in FIELDS}
        for k, v in row.items():
            if isinstance(v, float):
                row[k] = f"{v:.6g}"
        row["elapsed_s"] = f"{time.time() - self.t0:.0f}"
        self.w.writerow(row)
        self.f.flush()


def run_design(
    model,
    data,
    pairs,
    cells,
    *,
    part,
    writer,
    alpha=0.1,
    max_steps=5000,
    checkpoint="book",
    traces=None,
    source=None,
    window_length=50.0,
    deadline=None,
):
    """Run every (pair, cell) in one batch; write one row per path as it stops."""
    meta = [(q, c) for c in cells for q in pairs]
    src = source if source is not None else data.test_x[[q["source_index"] for q, _ in meta]]
    tgt = data.test_x[[q["target_index"] for q, _ in meta]]
    window = None if window_length is None else int(round(window_length / alpha))

    def on_finish(i, row):
        q, (proj, rule, clamp) = meta[i]
        row = {**q, **row, "part": part, "alpha": alpha, "checkpoint": checkpoint}
        row["clamp"] = int(row["clamp"])
        row["reached"] = int(row["reached"])
        row["ratio_final"] = row["final_distance"] / row["initial_distance"]
        row["ratio_min"] = row["min_distance"] / row["initial_distance"]
        writer.write(row)

    def on_record(steps, dists):
        if traces is not None and int(steps[-1]) % 100 == 0:
            np.savez_compressed(traces, steps=steps.numpy(), distances=dists.numpy())

    res = algorithm1_paths(
        model,
        src,
        tgt,
        projection=[c[0] for _, c in meta],
        rule=[c[1] for _, c in meta],
        clamp_on=[bool(c[2]) for _, c in meta],
        clamp=data.pixel_range,
        step_size=alpha,
        max_steps=max_steps,
        threshold=1.0,
        stall_window=window,
        record_every=10,
        on_finish=on_finish,
        on_record=on_record,
        deadline=deadline,
    )
    if traces is not None:
        np.savez_compressed(
            traces,
            steps=res.record_steps.numpy(),
            distances=res.distances.numpy(),
            projection=np.array([c[0] for _, c in meta]),
            rule=np.array([c[1] for _, c in meta]),
            clamp=np.array([c[2] for _, c in meta]),
            pair=np.array([q["pair"] for q, _ in meta]),
        )
    return res, meta


def leak_structure(model, data, pairs, points, out: Path) -> None:
    """Cosines of the off-D_x part of a gels step with two candidate directions."""
    rows = []
    tgt = data.test_x[[q["target_index"] for q in pairs]]
    for dtype in (torch.float32, torch.float64):
        with ml.geometry.precision(model, dtype):
            x = points.to(dtype)
            d = tgt.to(dtype)
            jac, logp = ml.score_jacobian(model, x, return_logp=True)
            delta = d - x
            b, c = jac.shape[:2]
            a = logprob_columns(jac, logp).to(dtype)
            v = (
                a @ torch.linalg.lstsq(a, delta.reshape(b, -1, 1), driver="gels").solution
            ).reshape(delta.shape)
            off_v = v - ml.tangent_projection_from_jacobian(jac, v)
            top = logp.argmax(1)
            g = jac[torch.arange(b), top]
            off_g = g - ml.tangent_projection_from_jacobian(jac, g)
            q, _ = torch.linalg.qr(jac.reshape(b, c, -1).transpose(1, 2).double())
            r = (q @ (q.transpose(1, 2) @ delta.reshape(b, -1, 1).double())).reshape(delta.shape)
            off_r = r.to(dtype) - ml.tangent_projection_from_jacobian(jac, r.to(dtype))

            def cos(u, w):
                u, w = u.flatten(1).double(), w.flatten(1).double()
                return (u * w).sum(1) / (u.norm(dim=1) * w.norm(dim=1))

            share = off_v.flatten(1).norm(dim=1) / v.flatten(1).norm(dim=1)
            for i, qq in enumerate(pairs):
                rows.append(
                    {
                        "pair": qq["pair"],
                        "dtype": str(dtype).replace("torch.", ""),
                        "off_share": float(share[i]),
                        "cos_off_grad_top": float(cos(off_v, off_g)[i]),
                        "cos_off_rowspace": float(cos(off_v, off_r)[i]),
                        "top_probability": float(logp[i].exp().max()),
                    }
                )
            torch.save(
                {
                    "off_v": off_v[:4].float(),
                    "off_g": off_g[:4].float(),
                    "off_r": off_r[:4].float(),
                },
                out.with_name(f"leak_images_{str(dtype).replace('torch.', '')}.pt"),
            )
    write_csv(out, rows)


def waypoints(model, data, pairs, writer, *, stages: int, steps: int) -> None:
    """Non-greedy: exact horizontal paths through waypoints on the straight segment.

    Stage k (1..K) runs Algorithm 1 with the exact projection towards the waypoint
    ``s + (k / K)(d - s)`` (the last one is the target itself) from where stage k - 1 ended,
    for at most ``steps`` steps (stall window: path length 20). Every step lies in D_x up to
    round-off; the clamp is the only other move. One row per pair and stage.
    """
    src = data.test_x[[q["source_index"] for q in pairs]]
    tgt = data.test_x[[q["target_index"] for q in pairs]]
    d0 = (tgt - src).flatten(1).norm(dim=1)
    x = src.clone()
    best = d0.clone()
    for k in range(1, stages + 1):
        way = src + (k / stages) * (tgt - src)
        res = algorithm1_paths(
            model,
            x,
            way,
            projection="exact",
            rule="fixed",
            clamp_on=True,
            clamp=data.pixel_range,
            max_steps=steps,
            threshold=1.0,
            stall_window=200,
        )
        x = res.final
        dist = (tgt - x).flatten(1).norm(dim=1)
        best = torch.minimum(best, dist)
        for i, q in enumerate(pairs):
            writer.write(
                {
                    **q,
                    "part": f"waypoint{k}of{stages}",
                    "projection": "exact",
                    "rule": "fixed",
                    "clamp": 1,
                    "alpha": 0.1,
                    "checkpoint": "book",
                    "reached": int(dist[i] <= 1.0),
                    "initial_distance": float(d0[i]),
                    "final_distance": float(dist[i]),
                    "min_distance": float(best[i]),
                    "ratio_final": float(dist[i] / d0[i]),
                    "ratio_min": float(best[i] / d0[i]),
                    "stall_step": int(res.stall_step[i]),
                    "steps": int(res.steps_taken[i]),
                    "path_length": float(res.path_length[i]),
                    "reason": res.stop_reasons[i],
                    "fall_in": float(res.fall_in[i]),
                    "fall_off": float(res.fall_off[i]),
                    "fall_clamp": float(res.fall_clamp[i]),
                    "off_share_late": float(res.off_share_late[i]),
                }
            )


SWEEP_ALPHAS = (0.2, 0.1, 0.05, 0.02)


def sweep_meta(args) -> dict:
    """The caps of the extra parts, recorded in their JSON."""
    return {
        "exact_length": args.exact_length,
        "gels_length": args.gels_length,
        "window_length": args.window_length,
        "note": "every path stops at the nominal path length exact_length (exact) or "
        "gels_length (gels), or when it stalls (no new minimum by 0.1% for window_length; "
        "None: never)",
    }


def noisy_starts(model, data, src: torch.Tensor, *, steps: int, seed: int = 6) -> torch.Tensor:
    """Figure 6's noisy images: ``steps`` steps of 0.1 across the leaves (section 4.2).

    A fixed Gaussian direction per image (seeded), projected on ``ker G`` at every step,
    normalised, with the clamp: :func:`manifoldlib.across_leaves_path`.
    """
    gen = torch.Generator().manual_seed(seed)
    direction = torch.randn(src.shape, generator=gen)
    res = ml.across_leaves_path(
        model,
        src,
        direction,
        step_size=0.1,
        steps=steps,
        clamp=data.pixel_range,
        record_every=steps,
    )
    return res.final.detach()


def main() -> None:
    """Parse the command line and run one part of the study."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", default="main")
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5000)
    ap.add_argument("--tag", default="")
    ap.add_argument("--stages", type=int, default=5)
    ap.add_argument("--budget-min", type=float, default=None, help="stop paths after this")
    ap.add_argument("--cells", default="full", choices=("full", "core"))
    ap.add_argument("--window-length", type=float, default=50.0)
    ap.add_argument("--no-stall", action="store_true", help="no stall stop (fixed lengths)")
    ap.add_argument("--exact-length", type=float, default=40.0, help="extra parts: cap")
    ap.add_argument("--gels-length", type=float, default=20.0, help="extra parts: cap")
    ap.add_argument("--noise-steps", type=int, default=250)
    args = ap.parse_args()
    if args.no_stall:
        args.window_length = None
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    RESULTS.mkdir(parents=True, exist_ok=True)
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source)
    record = RunRecord.start()
    model = load_model(P.mnist_config(), P.mnist_epoch)
    record.checkpoint("mnist", P.mnist_config(), P.mnist_epoch)
    pairs = choose_pairs(model, data, args.pairs)
    tag = args.tag or args.part
    t0 = time.time()
    meta = {
        "part": args.part,
        "pairs": pairs,
        "profile": P.name,
        "steps": args.steps,
        "threads": torch.get_num_threads(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    if args.part == "main":
        writer = RowWriter(RESULTS / f"algorithm1_{tag}.csv")
        cells = MAIN_CELLS if args.cells == "full" else CORE_CELLS
        meta["cells"] = cells
        meta["window_length"] = args.window_length
        write_json(RESULTS / f"algorithm1_{tag}.json", meta, record)
        run_design(
            model,
            data,
            pairs,
            cells,
            part="main",
            writer=writer,
            max_steps=args.steps,
            traces=RESULTS / f"algorithm1_{tag}_traces.npz",
            window_length=args.window_length,
            deadline=None if args.budget_min is None else t0 + 60 * args.budget_min,
        )
    elif args.part == "waypoints":
        writer = RowWriter(RESULTS / f"algorithm1_{tag}.csv")
        waypoints(model, data, pairs, writer, stages=args.stages, steps=args.steps)
    elif args.part == "leak":
        src = data.test_x[[q["source_index"] for q in pairs]]
        tgt = data.test_x[[q["target_index"] for q in pairs]]
        leak_structure(model, data, pairs, src, RESULTS / f"leak_{tag}_start.csv")
        res = algorithm1_paths(
            model,
            src,
            tgt,
            projection="gels",
            rule="fixed",
            clamp_on=True,
            clamp=data.pixel_range,
            max_steps=args.steps,
        )
        meta["leak_steps"] = res.steps_taken.tolist()
        leak_structure(model, data, pairs, res.final, RESULTS / f"leak_{tag}_late.csv")
    elif args.part == "sweep":
        writer = RowWriter(RESULTS / f"algorithm1_{tag}.csv")
        meta.update(sweep_meta(args))
        traces = {}
        for alpha in SWEEP_ALPHAS:
            for proj, length in (("exact", args.exact_length), ("gels", args.gels_length)):
                res, _ = run_design(
                    model,
                    data,
                    pairs,
                    [(proj, "fixed", 1)],
                    part="sweep",
                    writer=writer,
                    alpha=alpha,
                    max_steps=int(round(length / alpha)),
                    window_length=args.window_length,
                )
                traces[f"{proj}_a{alpha}_steps"] = res.record_steps.numpy()
                traces[f"{proj}_a{alpha}_distances"] = res.distances.numpy()
                meta[f"run_time_s_{proj}_a{alpha}"] = round(time.time() - t0, 1)
        np.savez_compressed(RESULTS / f"algorithm1_{tag}_traces.npz", **traces)
    elif args.part == "sweep-stall":
        writer = RowWriter(RESULTS / f"algorithm1_{tag}.csv")
        meta["window_length"] = args.window_length
        meta["cap_length"] = args.exact_length
        for alpha in SWEEP_ALPHAS:
            run_design(
                model,
                data,
                pairs,
                [("exact", "shortened", 1)],
                part="sweep-stall",
                writer=writer,
                alpha=alpha,
                max_steps=int(round(args.exact_length / alpha)),
                window_length=args.window_length,
            )
            meta[f"run_time_s_a{alpha}"] = round(time.time() - t0, 1)
    elif args.part == "checkpoints":
        writer = RowWriter(RESULTS / f"algorithm1_{tag}.csv")
        meta.update(sweep_meta(args))
        config = P.mnist_config()
        models = [
            ("epoch10", config, P.mnist_epoch),
            (f"epoch{config.epochs}", config, config.epochs),
            ("seed1", dataclasses.replace(config, seed=1, epochs=10), 10),
        ]
        meta["checkpoints"] = {name: [cfg.key(), ep] for name, cfg, ep in models}
        for name, cfg, ep in models:
            m = load_model(cfg, ep)  # never trains
            record.checkpoint(name, cfg, ep)
            if m is None:
                print(f"{name}: checkpoint epoch {ep} of {cfg.key()} not cached; skipped")
                meta[f"missing_{name}"] = True
                continue
            for proj, length in (("exact", args.exact_length), ("gels", args.gels_length)):
                run_design(
                    m,
                    data,
                    pairs,
                    [(proj, "fixed", 1)],
                    part="checkpoints",
                    writer=writer,
                    checkpoint=name,
                    max_steps=int(round(length / 0.1)),
                    window_length=args.window_length,
                )
            meta[f"run_time_s_{name}"] = round(time.time() - t0, 1)
    elif args.part == "attribution":
        writer = RowWriter(RESULTS / f"algorithm1_{tag}.csv")
        meta.update(sweep_meta(args))
        run_design(
            model,
            data,
            pairs,
            [("gels", "fixed", 1)],
            part="attribution",
            writer=writer,
            max_steps=int(round(args.gels_length / 0.1)),
            window_length=args.window_length,
        )
    elif args.part == "noisy":
        writer = RowWriter(RESULTS / f"algorithm1_{tag}.csv")
        meta.update(sweep_meta(args))
        src = data.test_x[[q["source_index"] for q in pairs]]
        noisy = noisy_starts(model, data, src, steps=args.noise_steps)
        meta["noise_steps"] = args.noise_steps
        meta["noise_distance"] = (noisy - src).flatten(1).norm(dim=1).tolist()
        with torch.no_grad():
            meta["noisy_prediction_kept"] = (
                (model(noisy).argmax(1) == model(src).argmax(1)).int().tolist()
            )
        meta["run_time_s_noise"] = round(time.time() - t0, 1)
        ends = {}
        for start_name, start in (("clean", src), ("noisy", noisy)):
            for proj, length in (("exact", args.exact_length), ("gels", args.gels_length)):
                ends[start_name, proj], _ = run_design(
                    model,
                    data,
                    pairs,
                    [(proj, "fixed", 1)],
                    part=start_name,
                    writer=writer,
                    source=start,
                    max_steps=int(round(length / 0.1)),
                    window_length=args.window_length,
                )
            meta[f"run_time_s_{start_name}"] = round(time.time() - t0, 1)
        noise = (noisy - src).flatten(1).norm(dim=1)
        for proj in ("exact", "gels"):
            gap = ends["noisy", proj].final - ends["clean", proj].final
            # how much of the start's noise the end still carries (1: all of it)
            meta[f"noise_kept_{proj}"] = (gap.flatten(1).norm(dim=1) / noise).tolist()
        torch.save(
            {"source": src[:4], "noisy": noisy[:4]},
            RESULTS / f"algorithm1_{tag}_starts.pt",
        )

    meta["run_time_s"] = round(time.time() - t0, 1)
    write_json(RESULTS / f"algorithm1_{tag}.json", meta, record)
    print(f"{args.part}: {meta['run_time_s']} s")


if __name__ == "__main__":
    main()
