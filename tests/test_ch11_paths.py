"""The committed results of ``experiments/ch11_paths.py`` (read by chapter 11).

They must carry the run record, hold the arrays the chapter reads with the shapes the script's
constants imply, and belong to the chapter's data, model and pairs (else the chapter would
silently compute its paths itself, or print statistics of other paths).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import manifoldlib as ml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments import ch11_paths as C  # noqa: E402
from experiments import records  # noqa: E402

P = ml.current_profile()
JSON = ROOT / "experiments" / "results" / C.output_name(P.name)
NPZ = ROOT / "experiments" / "results" / C.output_name(P.name, "npz")
pytestmark = pytest.mark.skipif(
    not JSON.is_file(), reason=f"no committed ch11_paths run for the {P.name} profile"
)
STOPS = {"reached", "max_steps", "vanishing direction"}


@pytest.fixture(scope="module")
def run():
    return json.loads(JSON.read_text())


@pytest.fixture(scope="module")
def arrays():
    with np.load(NPZ) as z:
        return {k: z[k] for k in z.files}


def test_run_record_is_present_and_clean(run):
    # Mutation: a run from a dirty checkout, on two threads, or without the record fails.
    rec = run["run_record"]
    assert tuple(rec) == records.KEYS and rec["schema"] == records.SCHEMA
    assert len(rec["commit"]) == 40 and rec["dirty"] is False
    assert rec["threads"] == 1 and rec["profile"] == P.name == run["profile"]
    assert rec["cpu_s"] > 0 and set(rec["checkpoints"]) == {"cifar10", "mnist"}


def test_settings_are_the_scripts_constants(run):
    # Mutation: changing any of the script's constants (pairs, seed, step, threshold,
    # recording, budget, MNIST pairs) without re-running fails here.
    assert run["class_pairs"] == [list(p) for p in C.CLASS_PAIRS]
    assert (run["pair_seed"], run["max_confidence"]) == (C.PAIR_SEED, C.MAX_CONFIDENCE)
    assert (run["step_size"], run["threshold"]) == (C.STEP_SIZE, C.THRESHOLD)
    assert run["record_every"] == C.RECORD_EVERY
    assert run["max_length"] == C.max_length(P)
    assert run["max_steps"] == round(C.max_length(P) / C.STEP_SIZE)
    assert run["mnist_sources"] == list(C.MNIST_SOURCES)
    assert run["mnist_targets"] == list(C.MNIST_TARGETS)
    assert run["cifar_config"] == C.cifar_config(P, run["cifar_source"]).key()
    assert len(run["sources"]) == len(run["targets"]) == len(C.CLASS_PAIRS)


def test_arrays_have_the_shapes_the_chapter_reads(run, arrays):
    k = len(C.CLASS_PAIRS)
    n_rec = run["max_steps"] // C.RECORD_EVERY + 1  # the CIFAR-10 paths use their budget
    assert {n: list(a.shape) for n, a in arrays.items()} == run["arrays"]
    assert arrays["cifar_steps"].tolist() == list(range(0, run["max_steps"] + 1, C.RECORD_EVERY))
    assert arrays["cifar_distances"].shape == (n_rec, k)
    assert arrays["cifar_class_probabilities"].shape == (n_rec, k, 10)
    np.testing.assert_allclose(arrays["cifar_class_probabilities"].sum(-1), 1, atol=1e-12)
    for q in ("alignment", "straightness"):
        assert arrays[f"cifar_{q}"].shape == (n_rec - 1, k)
        assert arrays[f"mnist_{q}"].shape == (len(arrays["mnist_steps"]) - 1, k)
    assert arrays["cifar_final"].shape == (k, 3, 32, 32)
    assert arrays["cifar_final"].dtype == np.float64  # the shares at the ends are float64
    assert arrays["cifar_frame_records"].tolist() == C.frame_records(n_rec)
    frames = arrays["cifar_frames"]
    assert frames.dtype == np.uint8 and frames.shape == (len(C.frame_records(n_rec)), k, 3, 32, 32)
    assert arrays["mnist_distances"].shape == (len(arrays["mnist_steps"]), k)


def test_per_path_values_are_consistent(run, arrays):
    # The distances of the records end where each path stopped; stop reasons are the
    # vocabulary of horizontal_path; no CIFAR-10 path reaches its target (the chapter's claim).
    for part in ("cifar", "mnist"):
        v = run[part]
        assert set(v["stop_reasons"]) <= STOPS
        assert all(0 < s <= run["max_steps"] for s in v["steps_taken"])
        # The last record is the step where the last path stopped (a path whose direction
        # vanished is recorded at the step it tried: one more than it took).
        assert 0 <= arrays[f"{part}_steps"][-1] - max(v["steps_taken"]) <= 1
    assert run["cifar"]["steps_taken"] == [run["max_steps"]] * len(C.CLASS_PAIRS)
    assert not any(run["cifar"]["reached"])
    d = arrays["cifar_distances"]
    assert (d[-1] < d[0]).all()


def test_the_run_belongs_to_the_bundled_data_model_and_pairs(run):
    # Mutation: another subset (or its decoding), another model, or another pair rule in the
    # script: the fingerprint, the checkpoint hash or the pairs differ.
    if run["cifar_source"] != "bundled":
        pytest.skip("the paper profile's run uses torchvision's full copy")
    data = ml.load_cifar10("bundled")
    assert C.pixel_fingerprint(data) == run["cifar_fingerprint"]
    config = C.cifar_config(P)
    path = ml.training.model_checkpoint(config, config.epochs)
    assert records.sha256_file(path) == run["run_record"]["checkpoints"]["cifar10"]
    model = records.load_model(config, config.epochs)
    torch.set_num_threads(1)
    src, tgt, n_eligible = C.chapter_pairs(model, data)
    assert src.tolist() == run["sources"] and tgt.tolist() == run["targets"]
    assert n_eligible == run["n_eligible"]
    assert [int(data.test_y[i]) for i in src] == [a for a, _ in C.CLASS_PAIRS]
    assert [int(data.test_y[i]) for i in tgt] == [b for _, b in C.CLASS_PAIRS]
