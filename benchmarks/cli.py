"""Entry point: ``python -m benchmarks [--quick | --paper] [--threads N] [--skip ...]``.

Runs the cases of :mod:`benchmarks.cases`, measures the floor (:mod:`benchmarks.floor`),
writes ``benchmarks/results/latest-<mode>.json`` and ``.md`` (and a time-stamped copy) with
the machine's description, and prints a one-screen summary (:mod:`benchmarks.report`).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import os
from pathlib import Path

import torch

import manifoldlib as ml
from benchmarks import cases, floor, report
from benchmarks.harness import load_average, machine_info, median
from experiments.records import RunRecord

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("horizontal", "across", "trace", "spectrum", "pipeline")


def save(res: dict, out: Path, name: str, record: RunRecord | None = None) -> None:
    """Write ``res`` as ``name.json``, with the run record (finished now) when given."""
    if record is not None:
        res["run_record"] = record.finish()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(res, indent=1, default=str))


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmarks; return the results dictionary."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a few minutes on 2 cores")
    ap.add_argument("--paper", action="store_true", help="the paper's sizes on a GPU")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: 2 on CPU)")
    ap.add_argument("--weights", choices=("auto", "cached", "random"), default="auto")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--skip", nargs="*", default=[], choices=PARTS, help="parts to skip")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--render", action="store_true", help="only re-write the report of the last run"
    )
    args = ap.parse_args(argv)
    if args.render:
        mode = "paper" if args.paper else "quick" if args.quick else "default"
        res = json.loads((args.out / f"latest-{mode}.json").read_text())
        res["targets"] = report.check_targets(res)
        (args.out / f"latest-{mode}.json").write_text(json.dumps(res, indent=1, default=str))
        (args.out / f"latest-{mode}.md").write_text(report.markdown(res))
        print(report.summary(res))
        return res

    if args.paper:
        os.environ.setdefault("MANIFOLDLIB_PROFILE", "paper")
    device = ml.profiles.default_device() if args.paper else "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)
    elif device == "cpu":
        torch.set_num_threads(min(2, os.cpu_count() or 1))
    sizes = cases.PAPER if args.paper else cases.QUICK if args.quick else cases.DEFAULT
    if args.repeats:
        sizes = dataclasses.replace(sizes, repeats=args.repeats)
    skip = set(args.skip)
    if not sizes.spectrum:
        skip.add("spectrum")
    if not sizes.pipeline:
        skip.add("pipeline")
    mode = "paper" if args.paper else "quick" if args.quick else "default"

    def log(msg: str) -> None:
        print(msg, flush=True)

    torch.manual_seed(0)
    record = RunRecord.start()
    res: dict = {"mode": mode, "device": device, "sizes": dataclasses.asdict(sizes)}
    res["machine"] = machine_info()
    model, weights = cases.load_mnist_model(args.weights)
    model = model.to(device)
    res["weights"] = weights
    if not weights.startswith("random"):
        P = ml.current_profile()
        record.checkpoint("mnist", P.mnist_config(), P.mnist_epoch)
    data = ml.load_mnist(ml.current_profile().mnist_source)
    log(
        f"machine: {res['machine']['cpu_model']}, threads {torch.get_num_threads()}, "
        f"load {load_average()}; {weights}"
    )

    x1 = data.test_x[:1].to(device)
    fl = floor.path_step_flops(model, x1)
    sg = floor.sgemm_rate(device)
    fl["shape_floor"] = {}
    for b in sorted({1, *(int(k) for k in sizes.our_path_steps)}):
        fl["shape_floor"][str(b)] = floor.shape_floor(model, x1, b, device)
    log(f"sgemm {sg['median_rate_wall']:.1f} GFLOP/s; step {fl['total_mflop']:.0f} MFLOP")
    parts = {
        "horizontal": lambda: cases.bench_horizontal(model, data, sizes, device, log),
        "across": lambda: cases.bench_across(model, data, sizes, device, log),
        "trace": lambda: cases.bench_trace(model, data, sizes, device, log),
    }
    for name, fn in parts.items():
        if name in skip:
            continue
        log(name)
        res[name] = fn()
        res[name]["load_average_after"] = load_average()
        save(res, args.out, f"partial-{mode}", record)
    sg2 = floor.sgemm_rate(device)  # again at the end: the floor uses both (load drifts)
    rate = median([sg["median_rate_wall"], sg2["median_rate_wall"]])
    rate_cpu = median([sg["median_rate_cpu"], sg2["median_rate_cpu"]])
    fl.update(
        sgemm_start=sg,
        sgemm_end=sg2,
        sgemm_gflops_wall=rate,
        floor_ms_wall=fl["total_mflop"] / rate,
        floor_ms_cpu=fl["total_mflop"] / rate_cpu,
        shape_floor_ms={b: v["ms_per_image_step"] for b, v in fl["shape_floor"].items()},
    )
    res["floor"] = fl
    if "spectrum" not in skip:
        log("spectrum")
        res["spectrum"] = cases.bench_spectrum(torch.get_num_threads(), log, quick=args.quick)
        save(res, args.out, f"partial-{mode}", record)
    if "pipeline" not in skip and "trace" in res:
        log("Figure 2 pipeline")
        ref_spi = 1.0 / res["trace"]["reference"]["median_rate_wall"]
        res["pipeline"] = cases.bench_pipeline(sizes, ref_spi, device, log)
    res["machine"]["load_average_end"] = load_average()
    res["targets"] = report.check_targets(res)

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    text = report.markdown(res)
    for name in (f"{mode}-{stamp}", f"latest-{mode}"):
        save(res, args.out, name, record)
        (args.out / f"{name}.md").write_text(text)
    (args.out / f"partial-{mode}.json").unlink(missing_ok=True)
    log("")
    log(report.summary(res))
    log(f"\nwritten: {args.out / f'latest-{mode}.md'} and .json")
    return res
