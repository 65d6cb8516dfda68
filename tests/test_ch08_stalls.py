"""The committed run of experiments/ch08_stalls.py holds what chapter 8's stall exercise reads."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
sys.path.insert(0, str(ROOT))

from experiments import ch08_stalls  # noqa: E402


def load() -> tuple[dict, dict]:
    run = json.loads((RESULTS / "ch08_stalls.json").read_text())
    pts = torch.load(RESULTS / "ch08_stalls.pt", weights_only=True)
    return run, pts


def test_the_run_is_the_scripts_settings_on_the_studys_first_two_pairs():
    """Mutation: a changed constant in the script (window, budget, clamps) or pairs that are
    not the controlled study's first two fail until the run is repeated."""
    run, _ = load()
    pairs = ch08_stalls.study_pairs(RESULTS)
    assert run["sources"] == [q["source_index"] for q in pairs]
    assert run["targets"] == [q["target_index"] for q in pairs]
    assert run["clamp_on"] == ch08_stalls.CLAMP_ON
    assert (run["max_steps"], run["stall_window"], run["record_every"], run["step_size"]) == (
        ch08_stalls.MAX_STEPS,
        ch08_stalls.STALL_WINDOW,
        ch08_stalls.RECORD_EVERY,
        ch08_stalls.STEP_SIZE,
    )
    rec = run["run_record"]
    assert rec["commit"] and rec["dirty"] is False and rec["profile"] == run["profile"] == "book"
    assert rec["checkpoints"]


def test_the_stored_values_agree_with_each_other():
    """Mutation: end points, stop steps or recorded distances from different runs fail."""
    run, pts = load()
    n = len(run["clamp_on"])
    assert pts["final"].shape[0] == n == len(run["stop_reasons"]) == len(run["steps_taken"])
    assert all(r in ("stalled", "max_steps") for r in run["stop_reasons"])
    assert all(0 < s <= run["max_steps"] for s in run["steps_taken"])
    steps = run["record_steps"]
    assert steps == list(range(0, steps[-1] + 1, run["record_every"]))
    for i in range(n):
        col = [row[i] for row in run["distances"]]
        assert math.isclose(col[0], run["initial_distance"][i], rel_tol=1e-6)
        alive = [s for s, d in zip(steps, col, strict=True) if d is not None]
        # recorded while running, None after the stop
        assert alive == [s for s in steps if s <= run["steps_taken"][i]]
        assert run["final_distance"][i] < run["initial_distance"][i]
