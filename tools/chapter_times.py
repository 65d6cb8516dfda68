"""Where a chapter run's time goes, and a balanced split of the chapters for parallel stages.

Reads the per-cell times of a strict nbval run, from its ``pytest --durations=0`` report
(``12.3s call book/00_pipeline.ipynb::Cell 5``), or, without a log, from the execution
time stamps the committed notebooks carry (``iopub.execute_input`` to
``shell.execute_reply``: measured whenever each chapter was last executed, on a machine
possibly shared with other jobs, so only a rough guide). Prints each chapter's total, the
slowest cells and ``--groups`` lists of chapters of about equal total time (largest first,
each to the lightest group), one line each, ready for ``pytest`` arguments.

Usage (from the repository root)::

    python tools/chapter_times.py .ci-chapters-default.log --groups 2
    python tools/chapter_times.py --groups 2            # from the notebooks' time stamps
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_DURATION = re.compile(r"^\s*([\d.]+)s\s+(?:call|setup|teardown)\s+(book/[\w.-]+\.ipynb)::(.+)$")


def from_log(text: str) -> list[tuple[str, str, float]]:
    """``(chapter, cell, seconds)`` from a ``pytest --durations=0`` report."""
    out = []
    for line in text.splitlines():
        m = _DURATION.match(line)
        if m:
            out.append((m.group(2), m.group(3).strip(), float(m.group(1))))
    return out


def from_notebooks(folder: Path = ROOT / "book") -> list[tuple[str, str, float]]:
    """``(chapter, cell id, seconds)`` from the committed notebooks' execution time stamps."""
    out = []
    for nb_path in sorted(folder.glob("*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            ex = cell.get("metadata", {}).get("execution", {})
            if "iopub.execute_input" in ex and "shell.execute_reply" in ex:
                t0 = datetime.fromisoformat(ex["iopub.execute_input"].replace("Z", "+00:00"))
                t1 = datetime.fromisoformat(ex["shell.execute_reply"].replace("Z", "+00:00"))
                rel = nb_path.relative_to(folder.parent).as_posix()
                out.append((rel, cell.get("id", "?"), (t1 - t0).total_seconds()))
    return out


def split(totals: dict[str, float], groups: int) -> list[list[str]]:
    """Chapters in ``groups`` lists of about equal total (largest first, to the lightest)."""
    bins: list[tuple[float, list[str]]] = [(0.0, []) for _ in range(groups)]
    for chapter, sec in sorted(totals.items(), key=lambda kv: -kv[1]):
        k = min(range(groups), key=lambda i: bins[i][0])
        bins[k] = (bins[k][0] + sec, [*bins[k][1], chapter])
    return [sorted(b[1]) for b in bins]


def main(argv: list[str] | None = None) -> None:
    """Print the chapters' totals, the slowest cells and a balanced split."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("log", nargs="?", help="a pytest --durations=0 report (default: notebooks)")
    ap.add_argument("--groups", type=int, default=2)
    ap.add_argument("--cells", type=int, default=10, help="how many of the slowest cells")
    args = ap.parse_args(argv)
    cells = from_log(Path(args.log).read_text()) if args.log else from_notebooks()
    if not cells:
        raise SystemExit("no cell times found (run pytest with --durations=0)")
    totals: dict[str, float] = defaultdict(float)
    for chapter, _, sec in cells:
        totals[chapter] += sec
    print(f"{sum(totals.values()):.0f} s in {len(totals)} chapters")
    for chapter, sec in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{sec:8.1f} s  {chapter}")
    print("slowest cells:")
    for chapter, cell, sec in sorted(cells, key=lambda c: -c[2])[: args.cells]:
        print(f"{sec:8.1f} s  {chapter} {cell}")
    for k, group in enumerate(split(totals, args.groups)):
        print(f"group {k} ({sum(totals[c] for c in group):.0f} s): {' '.join(group)}")


if __name__ == "__main__":
    main()
