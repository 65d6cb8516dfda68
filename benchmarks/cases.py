"""The benchmark cases: the paper's reference algorithms against manifoldlib, side by side.

Each case interleaves the reference and manifoldlib repeat by repeat (so that both see the
same load) and checks that their results agree. Sizes: :data:`DEFAULT`, :data:`QUICK` (the
``--quick`` run, a few minutes on 2 cores) and :data:`PAPER` (``--paper``, a GPU).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

import manifoldlib as ml
from benchmarks.harness import Series, load_average, measure, median, ratio
from manifoldlib.reference import (
    reference_across_leaves_path,
    reference_horizontal_path,
    reference_jacobian,
    reference_trace_rank,
)


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much each case measures."""

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
    pipeline: bool = True


DEFAULT = Sizes()
QUICK = Sizes(
    repeats=3,
    ref_path_steps=3,
    our_path_steps={1: 3, 32: 2},
    across_batches=(32,),
    ref_across_steps=2,
    our_across_steps=2,
    ref_trace_images=8,
    pipeline=False,
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


def load_mnist_model(weights: str = "auto") -> tuple[torch.nn.Module, str]:
    """The paper's MNIST CNN: the checkpoint the chapters load if present, else random but seeded.

    Loads the book's epoch from ``ml.training.model_checkpoint`` (the shipped file, else the
    cache's) without training anything, as ``experiments.records.load_model`` does;
    ``"cached"`` trains it if it is missing.

    Args:
        weights: ``"auto"`` (shipped or cached if present), ``"cached"`` (train it if missing)
            or ``"random"``.

    Returns:
        The model in eval mode and a description of its weights.
    """
    from experiments.records import load_model

    P = ml.current_profile()
    cfg = P.mnist_config()
    desc = f"the chapters' model (shipped, else cached), epoch {P.mnist_epoch} (profile {P.name})"
    if weights != "random":
        model = load_model(cfg, P.mnist_epoch)
        if model is not None:
            return model, desc
    if weights == "cached":
        return ml.cached_train(cfg, epoch=P.mnist_epoch, progress=False).model.eval(), desc
    torch.manual_seed(0)
    return ml.MnistCNN().eval(), "random, seeded (torch.manual_seed(0))"


def reference_trace_only(model: torch.nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The reference trace loop without its per-image ``matrix_rank`` (an SVD)."""
    traces = []
    for x in batch:
        j = reference_jacobian(model, x)
        with torch.no_grad():
            p = F.softmax(model(x.unsqueeze(0)), dim=1)[0]
        traces.append(float((p * j.pow(2).sum(1)).sum()))
    return torch.tensor(traces)


def _interleave(run_ref, ref_steps, run_ours, ref, ours, sizes, device, log, name, digits):
    """Interleaved repeats: the reference once, then ours at each batch size, per repeat.

    Interleaving spreads any drift of the machine (another job, the CPU's clock) evenly
    over both sides of a ratio.
    """
    for r in range(sizes.repeats):
        w, c, pts = measure(run_ref, device)
        ref.add(w, c, ref_steps(pts))
        for b in ours:
            w, c, res = measure(lambda b=b: run_ours(b), device)
            ours[b].add(w, c, int(res.steps_taken.sum()))
        log(
            f"  {name} repeat {r + 1}/{sizes.repeats}: ref {ref.rate_wall[-1]:.{digits}f}/s, "
            + ", ".join(f"B={b} {ours[b].rate_wall[-1]:.1f}/s" for b in ours)
        )


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
    _interleave(
        run_ref,
        lambda pts: pts[0].shape[0] - 1,
        run_ours,
        ref,
        ours,
        sizes,
        device,
        log,
        "horizontal",
        1,
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
    return {**_path_summary(ref, ours, ref_pts, our_pts, k), "step_size": 0.1}


def _path_summary(ref, ours: dict, ref_pts, our_pts, k: int) -> dict:
    """Timings of a path benchmark and the largest point distance over its first ``k`` steps."""
    return {
        "reference": ref.summary(),
        "ours": {str(b): s.summary() for b, s in ours.items()},
        "ratio": {str(b): ratio(s, ref) for b, s in ours.items()},
        "first_steps_max_point_distance": float((ref_pts - our_pts).flatten(1).norm(dim=1).max()),
        "first_steps_compared": k,
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
    _interleave(
        run_ref, lambda pts: pts.shape[0] - 1, run_ours, ref, ours, sizes, device, log, "across", 2
    )
    k = min(3, sizes.ref_across_steps)
    ref_pts = reference_across_leaves_path(model, start[0], direction[0], steps=k)
    our_pts = ml.across_leaves_path(
        model, start[:1], direction[:1], steps=k, progress=False
    ).points[:, 0]
    return _path_summary(ref, ours, ref_pts, our_pts, k)


def bench_trace(model, data, sizes: Sizes, device: str, log) -> dict:
    """Mean trace of G over the reference batch: per-sample loop, batched exact, MC.

    The MC estimate is compared with the exact methods at equal accuracy, not as a ratio of
    an estimate to an exact value. All three estimate the mean trace over the data
    distribution from a sample of images; the exact trace of N images has the standard error
    ``sigma_between / sqrt(N)`` (the spread of the per-image traces), one MC draw per image on
    M images has ``sigma_draw / sqrt(M)`` (the spread of single draws, which adds the spread
    over y). Equal standard error needs ``M = N sigma_draw^2 / sigma_between^2`` images for MC,
    and the fair time ratio is the exact time of N images against the MC time of M images.
    """
    batch = data.train_x[: sizes.trace_batch].to(device)
    nref = min(sizes.ref_trace_images, len(batch))
    ref = Series(f"reference loop (timed on {nref} images)", "images")
    ref_fixed = Series(f"reference loop, rank by SVD skipped (timed on {nref} images)", "images")
    exact = Series("manifoldlib exact (mean_trace)", "images")
    mc = Series("manifoldlib MC, 1 draw per image (trace_mc)", "images")
    mc_values = []
    reference_trace_rank(model, batch[:2])
    for r in range(sizes.repeats):
        w, c, (ref_tr, ref_rank) = measure(lambda: reference_trace_rank(model, batch[:nref]))
        ref.add(w, c, nref)
        w, c, _ = measure(lambda: reference_trace_only(model, batch[:nref]))
        ref_fixed.add(w, c, nref)
        w, c, ex = measure(lambda: ml.mean_trace(model, batch, method="exact"), device)
        exact.add(w, c, len(batch))
        gen = torch.Generator(device=device).manual_seed(100 + r)
        w, c, est = measure(
            lambda gen=gen: ml.trace_mc(model, batch, samples=1, generator=gen), device
        )
        mc.add(w, c, len(batch))
        mc_values.append(est)
        log(
            f"  trace repeat {r + 1}/{sizes.repeats}: ref {ref.rate_wall[-1]:.1f} img/s "
            f"(no SVD {ref_fixed.rate_wall[-1]:.1f}), exact {exact.rate_wall[-1]:.1f} img/s, "
            f"MC {mc.rate_wall[-1]:.1f} img/s  [load {load_average()}]"
        )
    # Equality on the images the reference measured.
    g = ml.local_data_lowrank(model, batch[:nref])
    ours_tr, ours_rank = g.trace().cpu(), g.rank().cpu()
    rel = float(((ours_tr - ref_tr).abs() / ref_tr.abs().clamp_min(1e-30)).max())
    # Spread of the exact per-image traces and of single MC draws, for equal accuracy.
    per_image = torch.cat([ml.local_data_lowrank(model, xc).trace() for xc in batch.split(250)])
    draws = torch.cat([m.values for m in mc_values])
    sigma_between = float(per_image.std())
    sigma_draw = float(draws.std())
    mean_exact = float(per_image.mean())
    n = len(batch)
    m_equal = n * sigma_draw**2 / sigma_between**2
    t_exact_n = n / median(exact.rate_wall)
    t_ref_n = n / median(ref.rate_wall)
    t_ref_fixed_n = n / median(ref_fixed.rate_wall)
    t_mc_m = m_equal / median(mc.rate_wall)
    z = [abs(m.mean - mean_exact) / m.mean_stderr for m in mc_values]
    last = mc_values[-1]
    return {
        "batch": n,
        "reference": ref.summary(),
        "reference_no_svd": ref_fixed.summary(),
        "exact": exact.summary(),
        "mc": mc.summary(),
        "ratio_exact": ratio(exact, ref),
        "ratio_exact_vs_no_svd": ratio(exact, ref_fixed),
        "ratio_mc_per_image": ratio(mc, ref),
        "mean_trace_exact": mean_exact,
        "rank_min": ex["rank_min"],
        "rank_max": ex["rank_max"],
        "mean_trace_mc": last.mean,
        "mean_trace_mc_stderr": last.mean_stderr,
        "mc_z_scores": [round(v, 2) for v in z],
        "equal_accuracy": {
            "estimand": "mean trace over the data distribution",
            "sigma_between_images": sigma_between,
            "sigma_single_draw": sigma_draw,
            "stderr_exact_on_batch": sigma_between / math.sqrt(n),
            "relative_stderr_exact_on_batch": sigma_between / math.sqrt(n) / mean_exact,
            "mc_images_for_equal_stderr": m_equal,
            "seconds_exact_batch": t_exact_n,
            "seconds_reference_batch": t_ref_n,
            "seconds_reference_no_svd_batch": t_ref_fixed_n,
            "seconds_mc_equal_stderr": t_mc_m,
            "ratio_mc_vs_reference": t_ref_n / t_mc_m,
            "ratio_mc_vs_reference_no_svd": t_ref_fixed_n / t_mc_m,
            "ratio_mc_vs_exact": t_exact_n / t_mc_m,
        },
        "reference_vs_ours_max_rel_trace_diff": rel,
        "reference_vs_ours_ranks_equal": bool((ours_rank == ref_rank).all()),
    }


def bench_spectrum(threads: int, log, quick: bool = False) -> dict:
    """G's non-zero spectrum for one input at three sizes, each case in its own process."""
    out = {}
    todo = [(c, r) for c in ("mnist", "cifar10", "imagenet") for r in ("lowrank", "dense")]
    if quick:  # the dense CIFAR-10 eigvalsh (n = 3072) and the refused ImageNet one are slow
        todo = [("mnist", "lowrank"), ("mnist", "dense"), ("imagenet", "lowrank")]
    for case, route in todo:
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
        a = out.get(f"{case}/lowrank", {}).get("_eig")
        b = out.get(f"{case}/dense", {}).get("_eig")
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
