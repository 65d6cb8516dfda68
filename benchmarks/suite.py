"""Side-by-side benchmarks: the paper's reference algorithms against manifoldlib.

Everything runs in one process (the spectrum cases in one subprocess each, for their peak
memory), with the reference and manifoldlib measurements interleaved repeat by repeat, so
that both see the same load: on a shared machine absolute timings drift, and the ratio of
two measurements taken seconds apart is what can be trusted. Each measurement records wall
time and process CPU time (user + sys of all threads). Reported: medians over the repeats
and the ratios ours / reference of those medians.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

import manifoldlib as ml
from manifoldlib.reference import (
    reference_across_leaves_path,
    reference_horizontal_path,
    reference_trace_rank,
)

RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {
    "horizontal_batched": 4.0,
    "across_leaves": 8.0,
    "trace_exact": 8.0,
    "trace_mc": 30.0,
    "imagenet_spectrum_s": 5.0,
    "imagenet_spectrum_gb": 2.0,
}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much each part measures (``--quick`` for a smoke run, ``--paper`` for a GPU)."""

    repeats: int = 5
    ref_path_steps: int = 6
    our_path_steps: dict = dataclasses.field(default_factory=lambda: {1: 6, 32: 3, 128: 2})
    across_batches: tuple = (1, 32)
    ref_across_steps: int = 4
    our_across_steps: int = 4
    trace_batch: int = 1000
    ref_trace_images: int = 30
    pipeline_epochs: int = 2
    spectrum: bool = True


QUICK = Sizes(
    repeats=3,
    ref_path_steps=4,
    our_path_steps={1: 4, 32: 2, 128: 1},
    ref_across_steps=2,
    our_across_steps=2,
    ref_trace_images=10,
    pipeline_epochs=1,
)
PAPER = Sizes(
    repeats=5,
    ref_path_steps=50,
    our_path_steps={1: 50, 32: 50, 128: 50, 1024: 20},
    across_batches=(1, 128),
    ref_across_steps=20,
    our_across_steps=50,
    ref_trace_images=1000,
    pipeline_epochs=30,
)


# ---------------------------------------------------------------------------------------------
# measurement helpers


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(fn: Callable[[], object], device: str = "cpu") -> tuple[float, float, object]:
    """Run ``fn`` once; return (wall seconds, process CPU seconds, its result)."""
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    _sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


class Series:
    """Repeated measurements of one thing: work units per second, by wall and CPU time."""

    def __init__(self, name: str, unit: str) -> None:
        self.name, self.unit = name, unit
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.rate_wall: list[float] = []
        self.rate_cpu: list[float] = []

    def add(self, wall: float, cpu: float, work: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.rate_wall.append(work / wall)
        self.rate_cpu.append(work / cpu if cpu > 0 else float("nan"))

    def summary(self) -> dict:
        return {
            "name": self.name,
            "unit": self.unit,
            "repeats": len(self.wall),
            "median_rate_wall": median(self.rate_wall),
            "median_rate_cpu": median(self.rate_cpu),
            "rates_wall": [round(r, 4) for r in self.rate_wall],
            "median_wall_s": median(self.wall),
            "median_cpu_s": median(self.cpu),
        }


def ratio(ours: Series, ref: Series) -> dict:
    """Ratios ours / reference of the median rates (wall and CPU)."""
    return {
        "wall": median(ours.rate_wall) / median(ref.rate_wall),
        "cpu": median(ours.rate_cpu) / median(ref.rate_cpu),
    }


# ---------------------------------------------------------------------------------------------
# machine, model, data


def machine_info() -> dict:
    """CPU model, cores, torch version and threads, load."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu_model": cpu,
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "manifoldlib": ml.__version__,
    }
    if hasattr(os, "getloadavg"):
        info["load_average_start"] = [round(v, 2) for v in os.getloadavg()]
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def load_mnist_model(weights: str = "auto") -> tuple[torch.nn.Module, str]:
    """The paper's MNIST CNN: the shared cached checkpoint if present, else random but seeded.

    Args:
        weights: ``"auto"`` (cached if present), ``"cached"`` (train it if missing) or
            ``"random"``.

    Returns:
        The model in eval mode and a description of its weights.
    """
    P = ml.current_profile()
    cfg = P.mnist_config()
    last = ml.data_home() / "models" / f"{cfg.arch}-{cfg.key()}" / f"epoch-{cfg.epochs:03d}.pt"
    if weights == "cached" or (weights == "auto" and last.is_file()):
        model = ml.cached_train(cfg, epoch=P.mnist_epoch, progress=False).model
        return model.eval(), f"shared cached model, epoch {P.mnist_epoch} (profile {P.name})"
    torch.manual_seed(0)
    return ml.MnistCNN().eval(), "random, seeded (torch.manual_seed(0))"


def sgemm_rate(device: str, size: int = 2048, repeats: int = 5) -> dict:
    """Float32 matmul rate (GFLOP/s), median over repeats, wall and CPU."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b  # warm-up
    s = Series("sgemm", "GFLOP")
    for _ in range(repeats):
        w, c, _ = measure(lambda: a @ b, device)
        s.add(w, c, 2 * size**3 / 1e9)
    return s.summary()


def path_step_flops(model: torch.nn.Module, x: torch.Tensor) -> dict:
    """FLOPs of one forward pass plus C input-gradients, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    xg = x[:1].detach().clone().requires_grad_(True)
    with FlopCounterMode(display=False) as fwd:
        scores = model(xg)
    with FlopCounterMode(display=False) as bwd:
        for i in range(scores.shape[1]):
            torch.autograd.grad(scores[0, i], xg, retain_graph=i < scores.shape[1] - 1)
    return {
        "forward_mflop": fwd.get_total_flops() / 1e6,
        "input_gradients_mflop": bwd.get_total_flops() / 1e6,
        "total_mflop": (fwd.get_total_flops() + bwd.get_total_flops()) / 1e6,
    }


# ---------------------------------------------------------------------------------------------
# the benchmarks


def bench_horizontal(model, data, sizes: Sizes, device: str, log) -> dict:
    """Algorithm 1, steps per second: reference (one image) against manifoldlib batched."""
    batches = sorted(sizes.our_path_steps)
    nmax = max(batches)
    idx = torch.arange(nmax) % len(data.test_x)
    src = data.test_x[idx].to(device)
    tgt = data.test_x[(idx + len(data.test_x) // 2) % len(data.test_x)].to(device)
    clamp = tuple(c.to(device) if torch.is_tensor(c) else c for c in data.pixel_range)
    ref = Series("reference, one image", "image-steps")
    ours = {b: Series(f"manifoldlib, B = {b}", "image-steps") for b in batches}

    def run_ref():
        return reference_horizontal_path(
            model,
            src[0],
            tgt[0],
            max_steps=sizes.ref_path_steps,
            threshold=0.0,
            clamp=clamp,
        )

    def run_ours(b):
        res = ml.horizontal_path(
            model,
            src[:b],
            tgt[:b],
            max_steps=sizes.our_path_steps[b],
            threshold=1e-6,
            clamp=clamp,
            progress=False,
        )
        return res

    run_ref()
    for b in batches:  # warm-up: oneDNN builds its kernels for each new shape
        ml.horizontal_path(model, src[:b], tgt[:b], max_steps=1, clamp=clamp, progress=False)
    for r in range(sizes.repeats):
        w, c, pts = measure(run_ref, device)
        ref.add(w, c, pts[0].shape[0] - 1)
        for b in batches:
            w, c, res = measure(lambda b=b: run_ours(b), device)
            ours[b].add(w, c, int(res.steps_taken.sum()))
        log(
            f"  horizontal repeat {r + 1}/{sizes.repeats}: ref {ref.rate_wall[-1]:.1f}/s, "
            + ", ".join(f"B={b} {ours[b].rate_wall[-1]:.1f}/s" for b in batches)
        )
    # Equality: the first steps of both agree (before the float32 leak of the reference
    # grows; see manifoldlib.reference): distance of the points after k steps, one pair.
    k = min(5, sizes.ref_path_steps)
    ref_pts = reference_horizontal_path(
        model, src[0], tgt[0], max_steps=k, threshold=0.0, clamp=clamp
    )[0]
    our_pts = ml.horizontal_path(
        model, src[:1], tgt[:1], max_steps=k, threshold=1e-6, clamp=clamp, progress=False
    ).points[:, 0]
    dev = float((ref_pts - our_pts).flatten(1).norm(dim=1).max())
    return {
        "reference": ref.summary(),
        "ours": {str(b): s.summary() for b, s in ours.items()},
        "ratio": {str(b): ratio(s, ref) for b, s in ours.items()},
        "first_steps_max_point_distance": dev,
        "first_steps_compared": k,
        "step_size": 0.1,
    }


def bench_across(model, data, sizes: Sizes, device: str, log) -> dict:
    """Section 4.2, steps per second: full n x n QR per step against the Gram solve."""
    batches = sizes.across_batches
    nmax = max(batches)
    gen = torch.Generator().manual_seed(1)
    start = data.test_x[torch.arange(nmax) % len(data.test_x)].to(device)
    direction = torch.randn(start.shape, generator=gen).to(device)
    ref = Series("reference, one image, complete QR", "image-steps")
    ours = {b: Series(f"manifoldlib, B = {b}", "image-steps") for b in batches}

    def run_ref():
        return reference_across_leaves_path(
            model, start[0], direction[0], steps=sizes.ref_across_steps
        )

    def run_ours(b):
        return ml.across_leaves_path(
            model, start[:b], direction[:b], steps=sizes.our_across_steps, progress=False
        )

    run_ref()
    for r in range(sizes.repeats):
        w, c, pts = measure(run_ref, device)
        ref.add(w, c, pts.shape[0] - 1)
        for b in batches:
            w, c, res = measure(lambda b=b: run_ours(b), device)
            ours[b].add(w, c, int(res.steps_taken.sum()))
        log(
            f"  across repeat {r + 1}/{sizes.repeats}: ref {ref.rate_wall[-1]:.2f}/s, "
            + ", ".join(f"B={b} {ours[b].rate_wall[-1]:.1f}/s" for b in batches)
        )
    k = min(3, sizes.ref_across_steps)
    ref_pts = reference_across_leaves_path(model, start[0], direction[0], steps=k)
    our_pts = ml.across_leaves_path(
        model, start[:1], direction[:1], steps=k, progress=False
    ).points[:, 0]
    dev = float((ref_pts - our_pts).flatten(1).norm(dim=1).max())
    return {
        "reference": ref.summary(),
        "ours": {str(b): s.summary() for b, s in ours.items()},
        "ratio": {str(b): ratio(s, ref) for b, s in ours.items()},
        "first_steps_max_point_distance": dev,
        "first_steps_compared": k,
    }


def bench_trace(model, data, sizes: Sizes, device: str, log) -> dict:
    """Mean trace of G over the reference batch: per-sample loop, batched exact, MC."""
    batch = data.train_x[: sizes.trace_batch].to(device)
    nref = min(sizes.ref_trace_images, len(batch))
    ref = Series(f"reference loop (timed on {nref} images)", "images")
    exact = Series("manifoldlib exact (mean_trace)", "images")
    mc = Series("manifoldlib MC, 1 draw per image (trace_mc)", "images")
    mc_values = []
    reference_trace_rank(model, batch[:2])
    for r in range(sizes.repeats):
        w, c, (ref_tr, ref_rank) = measure(lambda: reference_trace_rank(model, batch[:nref]))
        ref.add(w, c, nref)
        w, c, ex = measure(lambda: ml.mean_trace(model, batch, method="exact"), device)
        exact.add(w, c, len(batch))
        gen = torch.Generator(device=device).manual_seed(100 + r)
        w, c, est = measure(
            lambda gen=gen: ml.mean_trace(model, batch, method="mc", generator=gen), device
        )
        mc.add(w, c, len(batch))
        mc_values.append(est)
        log(
            f"  trace repeat {r + 1}/{sizes.repeats}: ref {ref.rate_wall[-1]:.1f} img/s, "
            f"exact {exact.rate_wall[-1]:.1f} img/s, MC {mc.rate_wall[-1]:.1f} img/s"
        )
    # Equality on the images the reference measured.
    g = ml.local_data_lowrank(model, batch[:nref])
    ours_tr, ours_rank = g.trace().cpu(), g.rank().cpu()
    rel = float(((ours_tr - ref_tr).abs() / ref_tr.abs().clamp_min(1e-30)).max())
    last = mc_values[-1]
    z = [abs(m["trace"] - ex["trace"]) / m["trace_stderr"] for m in mc_values]
    return {
        "batch": len(batch),
        "reference": ref.summary(),
        "exact": exact.summary(),
        "mc": mc.summary(),
        "ratio_exact": ratio(exact, ref),
        "ratio_mc": ratio(mc, ref),
        "mean_trace_exact": ex["trace"],
        "rank_min": ex["rank_min"],
        "rank_max": ex["rank_max"],
        "mean_trace_mc": last["trace"],
        "mean_trace_mc_stderr": last["trace_stderr"],
        "mc_z_scores": [round(v, 2) for v in z],
        "reference_vs_ours_max_rel_trace_diff": rel,
        "reference_vs_ours_ranks_equal": bool((ours_rank == ref_rank).all()),
    }


def bench_spectrum(threads: int, log) -> dict:
    """G's non-zero spectrum for one input at three sizes, each case in its own process."""
    out = {}
    for case in ("mnist", "cifar10", "imagenet"):
        for route in ("lowrank", "dense"):
            cmd = [sys.executable, "-m", "benchmarks.spectrum", case, route, str(threads)]
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                cwd=Path(__file__).resolve().parent.parent,
                env={**os.environ},
                check=False,
            )
            try:
                res = json.loads(proc.stdout.strip().splitlines()[-1])
            except (IndexError, json.JSONDecodeError):
                res = {"ok": False, "error": f"exit {proc.returncode}: {proc.stderr[-400:]}"}
            eig = res.pop("eigenvalues", None)
            if eig:
                res["top_eigenvalues"] = eig[:3]
                res["_eig"] = eig
            out[f"{case}/{route}"] = res
            log(
                f"  spectrum {case}/{route}: ok={res.get('ok')} wall {res.get('wall_s', 0):.2f} s, "
                f"cpu {res.get('cpu_s', 0):.2f} s, peak {res.get('peak_rss_mb', 0):.0f} MB"
            )
    for case in ("mnist", "cifar10"):
        a, b = out[f"{case}/lowrank"].get("_eig"), out[f"{case}/dense"].get("_eig")
        if a and b:
            top = max(max(a), 1e-300)
            out[f"{case}/agreement"] = {
                "max_abs_eig_diff_over_max_eig": max(abs(u - v) for u, v in zip(a, b, strict=True))
                / top
            }
    for v in out.values():
        v.pop("_eig", None)
    return out


def bench_pipeline(sizes: Sizes, ref_seconds_per_image: float, device: str, log) -> dict:
    """Figure 2: SGD training with the mean trace tracked, end to end (shortened)."""
    P = ml.current_profile()
    base = P.mnist_config()
    data = ml.load_mnist(P.mnist_source)
    epochs = min(sizes.pipeline_epochs, base.epochs)
    runs = {}
    for name, cfg in (
        ("training only", dataclasses.replace(base, epochs=epochs, trace_every=None)),
        ("exact trace tracking", dataclasses.replace(base, epochs=epochs)),
        ("MC trace tracking", dataclasses.replace(base, epochs=epochs, trace_method="mc")),
    ):
        w, c, res = measure(lambda cfg=cfg: ml.train(cfg, data=data, device=device, progress=False))
        runs[name] = {
            "wall_s": w,
            "cpu_s": c,
            "records": len(res.history["trace"]),
            "steps": res.history["step"][-1] if res.history["step"] else None,
            "final_test_accuracy": res.history["epoch_test_accuracy"][-1],
        }
        log(f"  pipeline {name}: {w:.1f} s wall, {c:.1f} s CPU")
    records = runs["exact trace tracking"]["records"]
    ref_tracking = records * base.trace_batch * ref_seconds_per_image
    runs["reference trace tracking (estimated)"] = {
        "wall_s": runs["training only"]["wall_s"] + ref_tracking,
        "records": records,
        "note": "training-only time + records x trace_batch x the reference loop's measured "
        "seconds per image",
    }
    train_only = runs["training only"]["wall_s"]
    return {
        "epochs": epochs,
        "full_epochs": base.epochs,
        "trace_every": base.trace_every,
        "trace_batch": base.trace_batch,
        "runs": runs,
        "tracking_overhead_s": {
            k: runs[k]["wall_s"] - train_only
            for k in (
                "exact trace tracking",
                "MC trace tracking",
                "reference trace tracking (estimated)",
            )
        },
    }


# ---------------------------------------------------------------------------------------------
# report


def _fmt(v: float, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:,.{nd}f}"


def markdown(res: dict) -> str:
    """The results as a Markdown report."""
    m = res["machine"]
    lines = [
        "# manifoldlib benchmarks",
        "",
        f"- machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, torch {m['torch']} "
        f"({m['torch_threads']} threads), Python {m['python']}"
        + (f", GPU {m['gpu']}" if "gpu" in m else ""),
        f"- date (UTC): {m['date_utc']}; commit {m.get('git_commit', '?')}; load average at "
        f"start {m.get('load_average_start')}, at end {m.get('load_average_end')}",
        f"- mode: {res['mode']}; device {res['device']}; model weights: {res['weights']}",
        f"- repeats: {res['sizes']['repeats']}, reference and manifoldlib interleaved; medians; "
        "rates by wall time (and by process CPU time, user+sys, which is less sensitive to "
        "other users of a shared machine)",
        "",
    ]
    f = res["floor"]
    sg = res["sgemm"]
    lines += [
        "## Floor",
        "",
        f"SGEMM (2048^3, float32): {_fmt(sg['median_rate_wall'])} GFLOP/s by wall time, "
        f"{_fmt(sg['median_rate_cpu'])} GFLOP/s per CPU-second. One path step on the MNIST CNN "
        f"= one forward ({_fmt(f['forward_mflop'])} MFLOP) + C input-gradients "
        f"({_fmt(f['input_gradients_mflop'])} MFLOP) = {_fmt(f['total_mflop'])} MFLOP: at "
        f"the SGEMM rate at least {_fmt(f['floor_ms_wall'], 2)} ms wall "
        f"({_fmt(f['floor_ms_cpu'], 2)} CPU-ms), i.e. at most "
        f"{_fmt(f['floor_steps_per_s_wall'])} image-steps/s.",
        "",
    ]
    h = res["horizontal"]
    lines += [
        "## Horizontal paths (Algorithm 1), image-steps per second",
        "",
        "| method | wall: steps/s | CPU: steps/CPU-s | ratio (wall) | ratio (CPU) | of floor (wall) |",
        "|---|---|---|---|---|---|",
    ]
    floor_rate = f["floor_steps_per_s_wall"]
    r0 = h["reference"]
    lines.append(
        f"| {r0['name']} | {_fmt(r0['median_rate_wall'])} | {_fmt(r0['median_rate_cpu'])} | 1 | 1 "
        f"| {r0['median_rate_wall'] / floor_rate:.0%} |"
    )
    for b, s in h["ours"].items():
        rr = h["ratio"][b]
        lines.append(
            f"| {s['name']} | {_fmt(s['median_rate_wall'])} | {_fmt(s['median_rate_cpu'])} | "
            f"{rr['wall']:.2f}x | {rr['cpu']:.2f}x | {s['median_rate_wall'] / floor_rate:.0%} |"
        )
    lines += [
        "",
        f"First {h['first_steps_compared']} steps, one pair: largest distance between the "
        f"reference's and manifoldlib's points {h['first_steps_max_point_distance']:.2e} "
        "(step length 0.1).",
        "",
    ]
    a = res["across"]
    lines += [
        "## Across leaves (section 4.2), image-steps per second",
        "",
        "| method | wall: steps/s | CPU: steps/CPU-s | ratio (wall) | ratio (CPU) |",
        "|---|---|---|---|---|",
    ]
    r0 = a["reference"]
    lines.append(
        f"| {r0['name']} | {_fmt(r0['median_rate_wall'], 2)} | {_fmt(r0['median_rate_cpu'], 2)} | 1 | 1 |"
    )
    for b, s in a["ours"].items():
        rr = a["ratio"][b]
        lines.append(
            f"| {s['name']} | {_fmt(s['median_rate_wall'])} | {_fmt(s['median_rate_cpu'])} | "
            f"{rr['wall']:.1f}x | {rr['cpu']:.1f}x |"
        )
    lines += [
        "",
        f"First {a['first_steps_compared']} steps: largest distance between the points "
        f"{a['first_steps_max_point_distance']:.2e}.",
        "",
    ]
    t = res["trace"]
    lines += [
        f"## Mean trace of G over {t['batch']} images",
        "",
        "| method | wall: images/s | CPU: images/CPU-s | ratio (wall) | ratio (CPU) | time for the batch (wall) |",
        "|---|---|---|---|---|---|",
    ]
    for key, rk in (("reference", None), ("exact", "ratio_exact"), ("mc", "ratio_mc")):
        s = t[key]
        rr = t[rk] if rk else {"wall": 1.0, "cpu": 1.0}
        lines.append(
            f"| {s['name']} | {_fmt(s['median_rate_wall'])} | {_fmt(s['median_rate_cpu'])} | "
            f"{rr['wall']:.1f}x | {rr['cpu']:.1f}x | {t['batch'] / s['median_rate_wall']:.1f} s |"
        )
    lines += [
        "",
        f"Exact mean trace {t['mean_trace_exact']:.4g} (rank {t['rank_min']}..{t['rank_max']}); "
        f"MC {t['mean_trace_mc']:.4g} ± {t['mean_trace_mc_stderr']:.2g} (standard error, one "
        f"draw per image; |MC - exact| / stderr over the repeats: {t['mc_z_scores']}). "
        f"Reference against manifoldlib on the reference's images: largest relative trace "
        f"difference {t['reference_vs_ours_max_rel_trace_diff']:.1e}, ranks equal: "
        f"{t['reference_vs_ours_ranks_equal']}.",
        "",
    ]
    if res.get("spectrum"):
        sp = res["spectrum"]
        lines += [
            "## Non-zero spectrum of G for one input (each case in a fresh process)",
            "",
            "| case | n | C | route | result | wall s | CPU s | peak RSS MB | above base MB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for key, v in sp.items():
            if "/agreement" in key:
                continue
            case, route = key.split("/")
            if v.get("ok"):
                what = f"rank {v['rank']}" if "rank" in v else "eigvalsh of n x n"
            else:
                what = v.get("error", "failed")
            if route == "dense" and str(v.get("library_dense", "")).startswith("refused"):
                what = "library refuses (ValueError); " + what
            lines.append(
                f"| {case} | {v.get('n', '?')} | {v.get('C', '?')} | {route} | {what} | "
                f"{_fmt(v.get('wall_s'), 2)} | {_fmt(v.get('cpu_s'), 2)} | "
                f"{_fmt(v.get('peak_rss_mb'), 0)} | {_fmt(v.get('peak_above_base_mb'), 0)} |"
            )
        for case in ("mnist", "cifar10"):
            ag = sp.get(f"{case}/agreement")
            if ag:
                lines.append(
                    f"\n{case}: low-rank against dense eigenvalues, largest difference / "
                    f"largest eigenvalue = {ag['max_abs_eig_diff_over_max_eig']:.1e}."
                )
        lines.append("")
    if res.get("pipeline"):
        p = res["pipeline"]
        lines += [
            f"## Figure 2 pipeline: training with trace tracking ({p['epochs']} of "
            f"{p['full_epochs']} epochs, trace every {p['trace_every']} steps on "
            f"{p['trace_batch']} images)",
            "",
            "| run | wall s | CPU s | records | tracking overhead s |",
            "|---|---|---|---|---|",
        ]
        for name, v in p["runs"].items():
            over = p["tracking_overhead_s"].get(name)
            lines.append(
                f"| {name} | {_fmt(v['wall_s'])} | {_fmt(v.get('cpu_s'))} | "
                f"{v.get('records', '')} | {_fmt(over) if over is not None else ''} |"
            )
        lines.append("")
    lines += [
        "## Targets",
        "",
        "| target | measured (wall) | measured (CPU) | met |",
        "|---|---|---|---|",
    ]
    for row in res["targets"]:
        lines.append(f"| {row['target']} | {row['wall']} | {row['cpu']} | {row['met']} |")
    lines.append("")
    return "\n".join(lines)


def check_targets(res: dict) -> list[dict]:
    rows = []
    h = res["horizontal"]["ratio"]
    big = max(int(b) for b in h)
    rows.append(
        {
            "target": f">= {TARGETS['horizontal_batched']}x path-steps/s, batched (B = {big})",
            "wall": f"{h[str(big)]['wall']:.2f}x",
            "cpu": f"{h[str(big)]['cpu']:.2f}x",
            "met": h[str(big)]["wall"] >= TARGETS["horizontal_batched"],
        }
    )
    a = res["across"]["ratio"]
    big = max(int(b) for b in a)
    rows.append(
        {
            "target": f">= {TARGETS['across_leaves']}x across-leaves steps/s (B = {big})",
            "wall": f"{a[str(big)]['wall']:.1f}x",
            "cpu": f"{a[str(big)]['cpu']:.1f}x",
            "met": a[str(big)]["wall"] >= TARGETS["across_leaves"],
        }
    )
    t = res["trace"]
    for key, tk in (("ratio_exact", "trace_exact"), ("ratio_mc", "trace_mc")):
        rows.append(
            {
                "target": f">= {TARGETS[tk]}x trace monitoring ({tk.split('_')[1]})",
                "wall": f"{t[key]['wall']:.1f}x",
                "cpu": f"{t[key]['cpu']:.1f}x",
                "met": t[key]["wall"] >= TARGETS[tk],
            }
        )
    sp = res.get("spectrum") or {}
    v = sp.get("imagenet/lowrank")
    if v and v.get("ok"):
        rows.append(
            {
                "target": f"ImageNet-size spectrum < {TARGETS['imagenet_spectrum_s']} s",
                "wall": f"{v['wall_s']:.2f} s",
                "cpu": f"{v['cpu_s']:.2f} CPU-s",
                "met": v["wall_s"] < TARGETS["imagenet_spectrum_s"],
            }
        )
        rows.append(
            {
                "target": f"ImageNet-size spectrum < {TARGETS['imagenet_spectrum_gb']} GB",
                "wall": f"{v['peak_rss_mb'] / 1024:.2f} GB peak RSS",
                "cpu": f"{v['peak_above_base_mb'] / 1024:.2f} GB above base",
                "met": v["peak_rss_mb"] / 1024 < TARGETS["imagenet_spectrum_gb"],
            }
        )
    return rows


def save_partial(res: dict, out: Path, mode: str) -> None:
    """Write what has been measured so far (a long run on a busy machine may be cut short)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"partial-{mode}.json").write_text(json.dumps(res, indent=1, default=str))


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmarks and write ``benchmarks/results/<stamp>.{json,md}`` (and ``latest``)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    ap.add_argument("--quick", action="store_true", help="a smoke run (about a minute of CPU)")
    ap.add_argument("--paper", action="store_true", help="paper sizes on a GPU (see README)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--weights", choices=("auto", "cached", "random"), default="auto")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument(
        "--skip", nargs="*", default=[], choices=["spectrum", "pipeline"], help="parts to skip"
    )
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)

    if args.paper:
        os.environ.setdefault("MANIFOLDLIB_PROFILE", "paper")
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = PAPER if args.paper else QUICK if args.quick else Sizes()
    if args.repeats:
        sizes = dataclasses.replace(sizes, repeats=args.repeats)
    device = ml.default_device() if args.paper else "cpu"
    mode = "paper" if args.paper else "quick" if args.quick else "default"

    def log(msg: str) -> None:
        print(msg, flush=True)

    torch.manual_seed(0)
    res: dict = {"mode": mode, "device": device, "sizes": dataclasses.asdict(sizes)}
    res["machine"] = machine_info()
    model, weights = load_mnist_model(args.weights)
    model = model.to(device)
    res["weights"] = weights
    data = ml.load_mnist(ml.current_profile().mnist_source)
    log(f"machine: {res['machine']['cpu_model']}, threads {torch.get_num_threads()}; {weights}")

    res["sgemm"] = sgemm_rate(device)
    flops = path_step_flops(model, data.test_x[:1].to(device))
    log(
        f"sgemm {res['sgemm']['median_rate_wall']:.1f} GFLOP/s; step {flops['total_mflop']:.0f} MFLOP"
    )
    log("horizontal paths")
    res["horizontal"] = bench_horizontal(model, data, sizes, device, log)
    save_partial(res, args.out, mode)
    log("across leaves")
    res["across"] = bench_across(model, data, sizes, device, log)
    save_partial(res, args.out, mode)
    log("trace")
    res["trace"] = bench_trace(model, data, sizes, device, log)
    save_partial(res, args.out, mode)
    sg2 = sgemm_rate(device)  # again at the end: the floor uses both (load drifts)
    res["sgemm_end"] = sg2
    rate_w = median([res["sgemm"]["median_rate_wall"], sg2["median_rate_wall"]])
    rate_c = median([res["sgemm"]["median_rate_cpu"], sg2["median_rate_cpu"]])
    flops["floor_ms_wall"] = flops["total_mflop"] / rate_w
    flops["floor_ms_cpu"] = flops["total_mflop"] / rate_c
    flops["floor_steps_per_s_wall"] = 1000 / flops["floor_ms_wall"]
    res["floor"] = flops
    if sizes.spectrum and "spectrum" not in args.skip:
        log("spectrum")
        res["spectrum"] = bench_spectrum(torch.get_num_threads(), log)
        save_partial(res, args.out, mode)
    if "pipeline" not in args.skip:
        log("Figure 2 pipeline")
        ref_spi = 1.0 / res["trace"]["reference"]["median_rate_wall"]
        res["pipeline"] = bench_pipeline(sizes, ref_spi, device, log)
    if hasattr(os, "getloadavg"):
        res["machine"]["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    res["targets"] = check_targets(res)

    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    save_partial(res, args.out, mode)
    text = markdown(res)
    for name in (f"{mode}-{stamp}", f"latest-{mode}"):
        (args.out / f"{name}.json").write_text(json.dumps(res, indent=1, default=str))
        (args.out / f"{name}.md").write_text(text)
    log("")
    log(text)
    log(f"written: {args.out / f'latest-{mode}.md'} and .json")
    return res
