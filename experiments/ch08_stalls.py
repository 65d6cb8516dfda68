"""Chapter 8's two exact paths run on to their stall, with the clamp on and off.

Chapter 8 ("Horizontal paths between test images") re-runs the first two pairs of the
controlled study of Algorithm 1 (``experiments/algorithm1_study.py``, file
``algorithm1_main.json``) for 200 steps, then runs the two exact paths on to where they stall
(the study's stall rule over a window of ``STALL_WINDOW`` steps, ``algorithm1_paths``'s
default ``stall_rel``), once with the clamp to the pixel range and once without, to show
where they stop: at about 0.7-0.8 of the initial distance, with almost nothing of ``d - x``
left in ``D_x``. This script runs exactly that computation (the chapter's model, pairs,
settings, one thread) and writes ``experiments/results/ch08_stalls.json`` (stop reasons,
steps, distances, run record) and ``ch08_stalls.pt`` (the end points, float32);
under another profile ``ch08_stalls_<profile>.*``. The chapter prints the stalls from them,
computes the share of ``d - x`` in ``D_x`` at the committed end points, and re-runs the four
paths' first steps against the committed distances (recorded every ``RECORD_EVERY`` steps).

Run: ``python -m experiments ch08_stalls`` (about half a CPU-minute on one thread; the time is
in the JSON).

Introduced in the chapter "Horizontal paths between test images".
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

import manifoldlib as ml
from experiments.records import RunRecord, write_json
from manifoldlib.algorithm1 import algorithm1_paths

OUT = Path(__file__).parent / "results"
MAX_STEPS, STALL_WINDOW, RECORD_EVERY, STEP_SIZE = 4000, 500, 100, 0.1
#: The clamp of each of the four paths: pairs 0 and 1 with the clamp, then without.
CLAMP_ON = [True, True, False, False]


def output_stem(profile: str) -> str:
    """``ch08_stalls`` for the book profile, ``ch08_stalls_<profile>`` otherwise."""
    return "ch08_stalls" if profile == "book" else f"ch08_stalls_{profile}"


def study_pairs(results: Path = OUT) -> list[dict]:
    """The controlled study's first two pairs (``algorithm1_main.json``), as the chapter's."""
    return json.loads((results / "algorithm1_main.json").read_text())["pairs"][:2]


def stall_paths(model, data, pairs: list[dict]) -> ml.PathResult:
    """The chapter's four exact paths (two pairs, clamp on then off) until they stall."""
    src = data.test_x[[q["source_index"] for q in pairs]]
    tgt = data.test_x[[q["target_index"] for q in pairs]]
    return algorithm1_paths(
        model,
        torch.cat([src, src]),
        torch.cat([tgt, tgt]),
        projection="exact",
        clamp_on=CLAMP_ON,
        clamp=data.pixel_range,
        step_size=STEP_SIZE,
        max_steps=MAX_STEPS,
        stall_window=STALL_WINDOW,
        record_every=RECORD_EVERY,
    )


def main() -> None:
    """Run the chapter's computation and write the JSON and the points."""
    torch.set_num_threads(1)  # as the chapter: sums (and long paths' last digits) depend on it
    torch.manual_seed(0)
    record = RunRecord.start()
    P = ml.current_profile()
    data = ml.load_mnist(P.mnist_source)
    model = record.model("mnist", P.mnist_config(), P.mnist_epoch)
    pairs = study_pairs()
    run = stall_paths(model, data, pairs)
    stem = output_stem(P.name)
    torch.save({"final": run.final.float().clone()}, OUT / f"{stem}.pt")
    dist = run.distances.tolist()
    payload = {
        "profile": P.name,
        "pairs": [q["pair"] for q in pairs],
        "sources": [q["source_index"] for q in pairs],
        "targets": [q["target_index"] for q in pairs],
        "clamp_on": CLAMP_ON,
        "projection": "exact",
        "step_size": STEP_SIZE,
        "max_steps": MAX_STEPS,
        "stall_window": STALL_WINDOW,
        "record_every": RECORD_EVERY,
        "stop_reasons": list(run.stop_reasons),
        "steps_taken": run.steps_taken.tolist(),
        "initial_distance": run.initial_distance.tolist(),
        "final_distance": run.final_distance.tolist(),
        "record_steps": run.record_steps.tolist(),
        # (R, 4) distances every RECORD_EVERY steps; None once a path stopped
        "distances": [[None if v != v else v for v in row] for row in dist],
    }
    write_json(OUT / f"{stem}.json", payload, record)
    print(json.dumps({k: payload[k] for k in ("stop_reasons", "steps_taken")}))


if __name__ == "__main__":
    main()
