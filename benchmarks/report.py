"""The report: targets, the Markdown tables written to ``benchmarks/results/`` and a summary.

Per-step times come first (milliseconds per image-step, the unit the floor is in), then the
fraction of the floor each method reaches, then the ratios ours / reference. Every figure is
given with the load average of the run: on a shared machine the absolute times are not the
quiet-machine ones, and only ratios within one interleaved run carry over.
"""

from __future__ import annotations

import math

TARGETS = {
    "horizontal_floor_factor": 1.5,
    "horizontal_batched": 5.0,
    "across_leaves": 8.0,
    "trace_exact": 8.0,
    "trace_mc": 30.0,
    "imagenet_spectrum_s": 5.0,
    "imagenet_spectrum_gb": 2.0,
}


def _fmt(v: float | None, nd: int = 1) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:,.{nd}f}"


def _ms(rate: float) -> float:
    return 1000.0 / rate if rate and rate > 0 else float("nan")


def step_rows(res: dict) -> list[dict]:
    """One row per path method: ms per image-step (wall, CPU), fraction of both floors, ratio."""
    fl = res["floor"]
    rows = []
    for part, label in (("horizontal", "horizontal path"), ("across", "across leaves")):
        p = res.get(part)
        if not p:
            continue
        ref = p["reference"]
        entries = [("reference, B = 1", ref, None)]
        entries += [(f"manifoldlib, B = {b}", s, p["ratio"][b]) for b, s in p["ours"].items()]
        for name, s, rr in entries:
            ms = _ms(s["median_rate_wall"])
            b = name.rsplit("= ", 1)[-1]
            shape_ms = fl.get("shape_floor_ms", {}).get(b, fl.get("shape_floor_ms", {}).get("32"))
            rows.append(
                {
                    "part": label,
                    "method": name,
                    "ms_wall": ms,
                    "ms_cpu": _ms(s["median_rate_cpu"]),
                    "of_peak_floor": fl["floor_ms_wall"] / ms,
                    "of_peak_floor_cpu": fl["floor_ms_cpu"] / _ms(s["median_rate_cpu"]),
                    "of_shape_floor": (shape_ms / ms) if shape_ms else float("nan"),
                    "ratio_wall": rr["wall"] if rr else 1.0,
                    "ratio_cpu": rr["cpu"] if rr else 1.0,
                }
            )
    return rows


def _ceiling(reference_ms: float, floor_ms: float) -> str:
    """What a method running exactly at the peak floor would reach against the reference.

    A ratio target above this cannot be met on the machine: the reference is already faster
    than ``1 / target`` of the floor.
    """
    return f"a method at the peak floor would reach {reference_ms / floor_ms:.1f}x"


def _ratio_row(key: str, what: str, rr: dict, digits: int, ceiling: str) -> dict:
    """A target row "ours >= k x the reference" from a ratio ``{"wall": ., "cpu": .}``."""
    return {
        "target": f">= {TARGETS[key]}x the reference, {what}",
        "measured": f"{rr['wall']:.{digits}f}x wall ({rr['cpu']:.{digits}f}x CPU); {ceiling}",
        "met": rr["wall"] >= TARGETS[key],
    }


def check_targets(res: dict) -> list[dict]:
    """The issue's targets, measured or not, with the figure that decides them."""
    rows = []
    fl = res["floor"]
    h = res.get("horizontal")
    if h:
        b = "32" if "32" in h["ours"] else max(h["ours"], key=int)
        ms = _ms(h["ours"][b]["median_rate_wall"])
        factor = ms / res["floor"]["floor_ms_wall"]
        cpu_factor = _ms(h["ours"][b]["median_rate_cpu"]) / res["floor"]["floor_ms_cpu"]
        rows.append(
            {
                "target": f"horizontal step, B = {b}, within {TARGETS['horizontal_floor_factor']}x "
                "of the peak floor",
                "measured": f"{factor:.2f}x the floor by wall time ({ms:.2f} ms vs "
                f"{res['floor']['floor_ms_wall']:.2f} ms), {cpu_factor:.2f}x by CPU time",
                "met": factor <= TARGETS["horizontal_floor_factor"],
            }
        )
        ceiling = _ceiling(_ms(h["reference"]["median_rate_wall"]), fl["floor_ms_wall"])
        rows.append(
            _ratio_row("horizontal_batched", f"horizontal, B = {b}", h["ratio"][b], 2, ceiling)
        )
    a = res.get("across")
    if a:
        b = max(a["ours"], key=int)
        ceiling = _ceiling(_ms(a["reference"]["median_rate_wall"]), fl["floor_ms_wall"])
        rows.append(
            _ratio_row("across_leaves", f"across leaves, B = {b}", a["ratio"][b], 1, ceiling)
        )
    t = res.get("trace")
    if t:
        rr = t["ratio_exact"]
        # The exact trace needs one Jacobian per image: the floor of a path step.
        ceiling = _ceiling(_ms(t["reference"]["median_rate_wall"]), fl["floor_ms_wall"])
        rows.append(
            {
                "target": f">= {TARGETS['trace_exact']}x the reference, exact mean trace",
                "measured": f"{rr['wall']:.1f}x wall ({rr['cpu']:.1f}x CPU); "
                f"{t['ratio_exact_vs_no_svd']['wall']:.1f}x against the reference without its SVD; "
                f"{ceiling}",
                "met": rr["wall"] >= TARGETS["trace_exact"],
            }
        )
        eq = t["equal_accuracy"]
        cpu_mc = eq["mc_images_for_equal_stderr"] / t["mc"]["median_rate_cpu"]
        cpu_ref = t["batch"] / t["reference"]["median_rate_cpu"]
        # One MC draw costs a forward pass and one input gradient; the reference loop's
        # images at the same standard error need mc_images of them.
        classes = res.get("sizes", {}).get("classes", 10)
        mc_mflop = fl["forward_mflop"] + fl["input_gradients_mflop"] / classes
        mc_floor_ms = fl["floor_ms_wall"] * mc_mflop / fl["total_mflop"]
        ref_total_ms = t["batch"] * _ms(t["reference"]["median_rate_wall"])
        best = ref_total_ms / (eq["mc_images_for_equal_stderr"] * mc_floor_ms)
        rows.append(
            {
                "target": f">= {TARGETS['trace_mc']}x the reference, MC trace at equal accuracy",
                "measured": f"{eq['ratio_mc_vs_reference']:.1f}x wall, {cpu_ref / cpu_mc:.1f}x CPU "
                f"(standard error {eq['relative_stderr_exact_on_batch']:.1%} of the mean for both; "
                f"MC needs {eq['mc_images_for_equal_stderr']:.0f} images for it); MC draws at the "
                f"peak floor ({mc_mflop:.0f} MFLOP each) would reach {best:.1f}x",
                "met": eq["ratio_mc_vs_reference"] >= TARGETS["trace_mc"],
            }
        )
    sp = (res.get("spectrum") or {}).get("imagenet/lowrank")
    if sp and sp.get("ok"):
        rows.append(
            {
                "target": f"ImageNet-size spectrum < {TARGETS['imagenet_spectrum_s']} s",
                "measured": f"{sp['wall_s']:.2f} s wall ({sp['cpu_s']:.2f} CPU-s)",
                "met": sp["wall_s"] < TARGETS["imagenet_spectrum_s"],
            }
        )
        rows.append(
            {
                "target": f"ImageNet-size spectrum < {TARGETS['imagenet_spectrum_gb']} GB",
                "measured": f"{sp['peak_rss_mb'] / 1024:.2f} GB peak RSS "
                f"({sp['peak_above_base_mb'] / 1024:.2f} GB above the process's base)",
                "met": sp["peak_rss_mb"] / 1024 < TARGETS["imagenet_spectrum_gb"],
            }
        )
    return rows


def load_line(res: dict) -> str:
    m = res["machine"]
    return (
        f"load average (1, 5, 15 min) at start {m.get('load_average_start')}, at end "
        f"{m.get('load_average_end')}, on {m['logical_cpus']} logical CPUs"
    )


def quiet_note(res: dict) -> str:
    """Whether the machine was quiet: judged by the load average at the start only.

    The run's own threads raise the 1-minute load average towards the thread count while it
    runs, so the load at the end measures the benchmark itself as much as anything else.
    """
    m = res["machine"]
    start = (m.get("load_average_start") or [0])[0]
    cpus = m.get("logical_cpus") or 1
    if start > 0.5 * cpus:
        return (
            "NOT a quiet machine: the load average at the start exceeded half the CPUs. Absolute "
            "times are not the quiet-machine figures and must be re-measured; ratios within this "
            "run (interleaved repeats) are indicative only."
        )
    return (
        "Quiet machine at the start (load average below half the CPUs; the load at the end "
        "includes this run's own threads)."
    )


def markdown(res: dict) -> str:
    """The whole report as Markdown."""
    m, fl = res["machine"], res["floor"]
    lines = [
        "# manifoldlib benchmarks",
        "",
        f"- machine: {m['cpu_model']}, {m['logical_cpus']} logical CPUs, torch {m['torch']} "
        f"({m['torch_threads']} threads), Python {m['python']}"
        + (f", GPU {m['gpu']}" if "gpu" in m else ""),
        f"- date (UTC): {m['date_utc']}; commit {m.get('git_commit', '?')}",
        f"- {load_line(res)}",
        f"- **{quiet_note(res)}**",
        f"- mode: {res['mode']}; device {res['device']}; model weights: {res['weights']}",
        f"- repeats: {res['sizes']['repeats']}, reference and manifoldlib interleaved; medians",
        "",
        "## Floor",
        "",
        f"One path step on the MNIST CNN = forward ({_fmt(fl['forward_mflop'])} MFLOP) + C "
        f"input gradients ({_fmt(fl['input_gradients_mflop'])} MFLOP) = "
        f"{_fmt(fl['total_mflop'])} MFLOP per image. Square SGEMM (2048^3, float32): "
        f"{_fmt(fl['sgemm_gflops_wall'])} GFLOP/s, so the **peak floor** is "
        f"{_fmt(fl['floor_ms_wall'], 3)} ms per image-step. The **shape floor** (the step's "
        "GEMMs timed alone at their own shapes, no elementwise work): "
        + ", ".join(f"B = {b}: {v:.3f} ms" for b, v in fl.get("shape_floor_ms", {}).items())
        + ".",
        "",
    ]
    for b, sf in fl.get("shape_floor", {}).items():
        lines += [
            f"GEMMs of one step at B = {b}:",
            "",
            "| GEMM | M x K x N | ms | GFLOP/s |",
            "|---|---|---|---|",
        ]
        for g in sf["gemms"]:
            lines.append(
                f"| {g['gemm']} | {g['m']} x {g['k']} x {g['n']} | {g['ms']:.3f} | {g['gflops']:.0f} |"
            )
        lines.append("")
    lines += [
        "## Per-step times (ms per image-step)",
        "",
        "| part | method | ms (wall) | ms (CPU) | of peak floor (wall) | of peak floor (CPU) "
        "| of shape floor | ratio (wall) | ratio (CPU) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in step_rows(res):
        lines.append(
            f"| {r['part']} | {r['method']} | {r['ms_wall']:.2f} | {r['ms_cpu']:.2f} | "
            f"{r['of_peak_floor']:.0%} | {r['of_peak_floor_cpu']:.0%} | {r['of_shape_floor']:.0%} | "
            f"{r['ratio_wall']:.2f}x | "
            f"{r['ratio_cpu']:.2f}x |"
        )
    for part in ("horizontal", "across"):
        p = res.get(part)
        if p:
            lines.append(
                f"\n{part}: first {p['first_steps_compared']} steps, largest distance between the "
                f"reference's and manifoldlib's points {p['first_steps_max_point_distance']:.2e}."
            )
    t = res.get("trace")
    if t:
        eq = t["equal_accuracy"]
        lines += [
            "",
            f"## Mean trace of G over {t['batch']} images",
            "",
            "| method | ms per image (wall) | ms per image (CPU) | ratio (wall) |",
            "|---|---|---|---|",
        ]
        for key, rk in (
            ("reference", None),
            ("reference_no_svd", None),
            ("exact", "ratio_exact"),
            ("mc", "ratio_mc_per_image"),
        ):
            s = t[key]
            rr = (
                t[rk]["wall"]
                if rk
                else t["reference"]["median_rate_wall"]
                and (s["median_rate_wall"] / t["reference"]["median_rate_wall"])
            )
            lines.append(
                f"| {s['name']} | {_ms(s['median_rate_wall']):.2f} | {_ms(s['median_rate_cpu']):.2f} | {rr:.2f}x |"
            )
        lines += [
            "",
            f"Exact mean trace {t['mean_trace_exact']:.4g} (rank {t['rank_min']}..{t['rank_max']}); "
            f"MC with one draw per image {t['mean_trace_mc']:.4g} ± {t['mean_trace_mc_stderr']:.2g} "
            f"(|MC - exact| / stderr over the repeats: {t['mc_z_scores']}).",
            "",
            f"**At equal accuracy** (both as estimates of the data-mean trace): the exact trace of "
            f"{t['batch']} images has standard error {eq['stderr_exact_on_batch']:.3g} "
            f"({eq['relative_stderr_exact_on_batch']:.1%} of the mean; spread of per-image traces "
            f"{eq['sigma_between_images']:.3g}); one MC draw spreads by {eq['sigma_single_draw']:.3g}, "
            f"so MC needs {eq['mc_images_for_equal_stderr']:.0f} images (one draw each) for the same "
            f"standard error: {eq['seconds_mc_equal_stderr']:.2f} s, against "
            f"{eq['seconds_exact_batch']:.2f} s exact (manifoldlib) and "
            f"{eq['seconds_reference_batch']:.1f} s for the reference loop "
            f"({eq['seconds_reference_no_svd_batch']:.1f} s without its SVD): MC is "
            f"{eq['ratio_mc_vs_reference']:.1f}x the reference, {eq['ratio_mc_vs_exact']:.2f}x the exact "
            "trace.",
            "",
            f"Reference against manifoldlib on the reference's images: largest relative trace "
            f"difference {t['reference_vs_ours_max_rel_trace_diff']:.1e}, ranks equal: "
            f"{t['reference_vs_ours_ranks_equal']}.",
        ]
    sp = res.get("spectrum")
    if sp:
        lines += [
            "",
            "## Non-zero spectrum of G for one input (each case in a fresh process)",
            "",
            "| case | n | C | route | result | wall s | CPU s | peak RSS MB | above base MB |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for key, v in sp.items():
            if "/agreement" in key:
                continue
            case, route = key.split("/")
            what = (
                (f"rank {v['rank']}" if "rank" in v else "eigvalsh of n x n")
                if v.get("ok")
                else v.get("error", "failed")
            )
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
                    f"\n{case}: low-rank against dense eigenvalues, largest difference / largest "
                    f"eigenvalue = {ag['max_abs_eig_diff_over_max_eig']:.1e}."
                )
    p = res.get("pipeline")
    if p:
        lines += [
            "",
            f"## Figure 2 pipeline ({p['epochs']} of {p['full_epochs']} epochs)",
            "",
            "| run | wall s | CPU s | records | tracking overhead s |",
            "|---|---|---|---|---|",
        ]
        for name, v in p["runs"].items():
            over = p["tracking_overhead_s"].get(name)
            lines.append(
                f"| {name} | {_fmt(v['wall_s'])} | {_fmt(v.get('cpu_s'))} | {v.get('records', '')} | "
                f"{_fmt(over) if over is not None else ''} |"
            )
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for row in res["targets"]:
        lines.append(f"| {row['target']} | {row['measured']} | {row['met']} |")
    lines.append("")
    return "\n".join(lines)


def summary(res: dict) -> str:
    """A one-screen summary for the terminal."""
    fl = res["floor"]
    out = [
        f"{res['machine']['cpu_model']}, {res['machine']['torch_threads']} threads; {load_line(res)}",
        quiet_note(res),
        f"floor: {fl['total_mflop']:.0f} MFLOP per step; peak {fl['floor_ms_wall']:.3f} ms "
        f"(SGEMM {fl['sgemm_gflops_wall']:.0f} GFLOP/s), {fl['floor_ms_cpu']:.3f} CPU-ms; shape floor "
        + ", ".join(f"B={b} {v:.3f} ms" for b, v in fl.get("shape_floor_ms", {}).items()),
        "",
        "per image-step: wall ms, fraction of the floor, ratio to the reference; then the same "
        "by process CPU time (with one thread on a loaded machine, CPU time is the best proxy "
        "for quiet wall time)",
        f"{'part':16s} {'method':22s} {'ms':>7s} {'floor':>6s} {'ratio':>7s} | "
        f"{'CPU-ms':>7s} {'floor':>6s} {'ratio':>7s}",
    ]
    for r in step_rows(res):
        out.append(
            f"{r['part']:16s} {r['method']:22s} {r['ms_wall']:7.2f} {r['of_peak_floor']:6.0%} "
            f"{r['ratio_wall']:6.2f}x | {r['ms_cpu']:7.2f} {r['of_peak_floor_cpu']:6.0%} "
            f"{r['ratio_cpu']:6.2f}x"
        )
    t = res.get("trace")
    if t:
        eq = t["equal_accuracy"]
        out.append(
            f"trace ms/image: reference {_ms(t['reference']['median_rate_wall']):.1f} "
            f"(no SVD {_ms(t['reference_no_svd']['median_rate_wall']):.1f}), exact "
            f"{_ms(t['exact']['median_rate_wall']):.2f}, MC {_ms(t['mc']['median_rate_wall']):.2f}; "
            f"equal stderr ({eq['relative_stderr_exact_on_batch']:.1%}): MC "
            f"{eq['ratio_mc_vs_reference']:.1f}x reference, {eq['ratio_mc_vs_exact']:.2f}x exact"
        )
    out.append("")
    for row in res["targets"]:
        out.append(f"[{'met' if row['met'] else 'MISSED'}] {row['target']}: {row['measured']}")
    return "\n".join(out)
