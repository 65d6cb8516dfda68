"""The committed run of experiments/ch10_paths.py holds what chapter 10 reads from it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import manifoldlib as ml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
sys.path.insert(0, str(ROOT))
from experiments import ch10_paths as script  # noqa: E402
from experiments.ch10_noisy_paths import chapter_pairs  # noqa: E402
from experiments.records import KEYS  # noqa: E402

STEM = script.output_stem("book")
#: What the chapter reads from the NPZ: name -> (shape, dtype), from the script's constants.
K = 6
R = script.MAX_STEPS // script.EVERY + 1
ARRAYS = {
    "noise_steps": ((len(script.NOISE_KEPT),), np.int64),
    "noise_clamped": ((len(script.NOISE_KEPT), K, 1, 28, 28), np.float64),
    "noise_free": ((len(script.NOISE_KEPT), K, 1, 28, 28), np.float64),
    "point_steps": ((len(script.POINTS_KEPT),), np.int64),
    "path_points": ((len(script.POINTS_KEPT), 2 * K, 1, 28, 28), np.float64),
    "steps_taken": ((2 * K,), np.int64),
    "path_steps": ((R,), np.int64),
    "path_distances": ((R, 2 * K), np.float64),
    "kappa": ((R, K), np.float64),
    "strip_paths": ((len(script.STRIP_PATHS),), np.int64),
    "strip_points": ((R, len(script.STRIP_PATHS), 1, 28, 28), np.float32),
}


@pytest.fixture(scope="module")
def run() -> dict:
    return json.loads((RESULTS / f"{STEM}.json").read_text())


@pytest.fixture(scope="module")
def arrays() -> dict:
    with np.load(RESULTS / f"{STEM}.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.fixture(scope="module")
def data():
    return ml.load_mnist("embedded").to(torch.float64)


def test_run_record_of_a_clean_one_thread_book_run(run):
    # Mutation: a run from a dirty checkout, on two threads or under the paper profile fails.
    rec = run["run_record"]
    assert tuple(rec) == KEYS
    assert len(rec["commit"]) == 40 and rec["dirty"] is False
    assert rec["profile"] == run["profile"] == "book" and rec["threads"] == 1
    assert rec["cpu_s"] > 0 and set(run["cpu_s"]) == {"noise", "paths"}


def test_settings_are_the_scripts_constants(run):
    # Mutation: changing a constant of the script (e.g. MAX_STEPS) without re-running fails.
    assert run["dtype"] == "float64"
    assert (run["pair_seed"], run["direction_seed"]) == (script.PAIR_SEED, script.DIRECTION_SEED)
    assert run["noise"] == {
        "steps": script.NOISE_STEPS,
        "step_size": script.STEP_SIZE,
        "record_every": script.NOISE_EVERY,
    }
    p = run["paths"]
    assert (p["projection"], p["rule"], p["clamp"]) == ("exact", "shortened", True)
    assert (p["step_size"], p["threshold"]) == (script.STEP_SIZE, script.THRESHOLD)
    assert (p["max_steps"], p["record_every"]) == (script.MAX_STEPS, script.EVERY)
    assert run["kept"] == {
        "noise_steps": list(script.NOISE_KEPT),
        "point_steps": list(script.POINTS_KEPT),
        "strip_paths": list(script.STRIP_PATHS),
    }


def test_arrays_present_with_their_shapes(arrays):
    assert set(arrays) == set(ARRAYS)
    for name, (shape, dtype) in ARRAYS.items():
        assert arrays[name].shape == shape and arrays[name].dtype == dtype, name
    assert arrays["noise_steps"].tolist() == list(script.NOISE_KEPT)
    assert arrays["point_steps"].tolist() == list(script.POINTS_KEPT)
    assert arrays["path_steps"].tolist() == list(range(0, script.MAX_STEPS + 1, script.EVERY))
    assert arrays["strip_paths"].tolist() == list(script.STRIP_PATHS)
    # every path ran its whole budget (the chapter's paths stop by budget only)
    assert (arrays["steps_taken"] == script.MAX_STEPS).all()


def test_pairs_are_the_chapters(run, data):
    # The chapter draws its pairs with its own generator calls and asserts them against the run.
    src, tgt = chapter_pairs(data.test_y, script.PAIR_SEED)
    assert run["source_index"] == src.tolist() and run["target_index"] == tgt.tolist()
    assert data.test_y[src].tolist() == list(range(K))
    assert data.test_y[tgt].tolist() == [(c + 5) % 10 for c in range(K)]


def test_points_curves_and_summary_agree(run, arrays, data):
    """The curves and the summary are those of the kept points; the strips their float32 copy.

    Mutation: swapping the noisy and clean halves of the batch, the clamped and free noise
    arms, or writing the curves of other points fails this.
    """
    clean = data.test_x[run["source_index"]]
    target = data.test_x[run["target_index"]]
    lo, hi = data.pixel_range
    clamped, free = (
        torch.from_numpy(arrays["noise_clamped"]),
        torch.from_numpy(arrays["noise_free"]),
    )
    assert bool(((clamped >= lo) & (clamped <= hi)).all())
    assert bool(((free < lo) | (free > hi)).any())  # the unclamped arm leaves the pixel range
    noisy = clamped[-1]
    starts = torch.cat([noisy, clean])
    kept = torch.from_numpy(arrays["path_points"])
    points = torch.cat([starts[None], kept])
    steps = [0, *script.POINTS_KEPT]
    at = [arrays["path_steps"].tolist().index(s) for s in steps]
    dist, kappa = script.curves(points, torch.cat([target, target]), clean, noisy)
    torch.testing.assert_close(dist, torch.from_numpy(arrays["path_distances"][at]))
    torch.testing.assert_close(kappa, torch.from_numpy(arrays["kappa"][at]))
    assert torch.allclose(kappa[0], torch.ones(K, dtype=kappa.dtype))
    s = run["summary"]
    assert s["final_distance"] == arrays["path_distances"][-1].tolist()
    assert s["initial_distance"] == arrays["path_distances"][0].tolist()
    assert s["kappa_end"] == arrays["kappa"][-1].tolist()
    norms = (noisy - clean).flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, torch.tensor(s["noise_norm"], dtype=torch.float64))
    strips = arrays["strip_points"][at]
    full = points[:, list(script.STRIP_PATHS)].float().numpy()
    assert np.array_equal(strips, full)
