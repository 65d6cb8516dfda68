"""The spread of the key figures over several runs of the benchmark on one machine.

``python -m benchmarks.spread RUN.json [RUN.json ...]`` reads runs written by
``python -m benchmarks`` (the time-stamped copies in ``benchmarks/results/``) and writes
``benchmarks/results/spread-<mode>.json`` and ``.md``: one row per run (its time, load at the
start, SGEMM speed, the horizontal step at B = 32 against the floor, the ratios to the
reference, the ImageNet-size spectrum), then the smallest and largest value of each.

Why: on a shared virtual machine the same code measured minutes apart differs by tens of
percent (the host's other tenants), so one run's absolute figures say little on their own;
ratios within a run move less, and the spread says how much.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.report import _ms

RESULTS = Path(__file__).resolve().parent / "results"


def key_figures(res: dict) -> dict:
    """The figures the targets are about, from one run."""
    fl, h, a, t = res["floor"], res["horizontal"], res["across"], res["trace"]
    b = "32" if "32" in h["ours"] else max(h["ours"], key=int)
    step = _ms(h["ours"][b]["median_rate_wall"])
    sp = (res.get("spectrum") or {}).get("imagenet/lowrank") or {}
    return {
        "date_utc": res["machine"]["date_utc"],
        # the run record's full commit; runs written before it: the harness's short SHA
        "commit": (res.get("run_record") or {}).get("commit") or res["machine"].get("git_commit"),
        "load_start": (res["machine"].get("load_average_start") or [None])[0],
        "sgemm_gflops": fl["sgemm_gflops_wall"],
        "floor_ms": fl["floor_ms_wall"],
        "horizontal_ms": step,
        "horizontal_over_floor": step / fl["floor_ms_wall"],
        "reference_ms": _ms(h["reference"]["median_rate_wall"]),
        "horizontal_ratio": h["ratio"][b]["wall"],
        "across_ratio": a["ratio"][max(a["ours"], key=int)]["wall"],
        "trace_exact_ratio": t["ratio_exact"]["wall"],
        "trace_mc_equal_accuracy_ratio": t["equal_accuracy"]["ratio_mc_vs_reference"],
        "imagenet_spectrum_s": sp.get("wall_s"),
    }


def main(paths: list[str]) -> None:
    """Write the per-run table and the range of each figure."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    mode = runs[0]["mode"]
    rows = [key_figures(r) for r in runs]
    numeric = [k for k, v in rows[0].items() if isinstance(v, float)]
    rng = {k: [min(r[k] for r in rows), max(r[k] for r in rows)] for k in numeric}
    out = {"mode": mode, "runs": rows, "range": rng}
    (RESULTS / f"spread-{mode}.json").write_text(json.dumps(out, indent=1) + "\n")
    cols = ["date_utc", *numeric]
    lines = [
        f"# Spread of the key figures over {len(rows)} `--{mode}` runs on one machine",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    for r in rows:
        cells = [str(r[c]) if not isinstance(r[c], float) else f"{r[c]:.2f}" for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        "| range | | " + " | ".join(f"{rng[k][0]:.2f}-{rng[k][1]:.2f}" for k in numeric) + " |"
    )
    (RESULTS / f"spread-{mode}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1:])
