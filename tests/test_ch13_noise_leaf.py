"""The committed run of experiments/ch13_noise_leaf.py holds what chapter 13 loads from it.

Each test names the mutation that makes it fail.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

import manifoldlib as ml

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
sys.path.insert(0, str(ROOT))

from experiments import ch13_noise_leaf as script  # noqa: E402
from experiments.ood_baselines import LEAF_NOISE_MAX_STEP, model_config  # noqa: E402
from experiments.records import KEYS, SCHEMA, sha256_file  # noqa: E402

STEM = script.output_stem("book")


@pytest.fixture(scope="module")
def run() -> dict:
    return json.loads((RESULTS / f"{STEM}.json").read_text())


@pytest.fixture(scope="module")
def saved() -> dict:
    return torch.load(RESULTS / f"{STEM}.pt", weights_only=True)


def test_file_names_per_profile():
    """Mutation: one name for every profile (a paper run would overwrite the book's)."""
    assert script.output_stem("book") == "ch13_noise_leaf"
    assert script.output_stem("paper") == "ch13_noise_leaf_paper"


def test_run_record_is_complete_clean_and_of_the_shipped_checkpoint(run):
    """Mutation: a run from a dirty tree, without the record, or of another checkpoint."""
    rec = run["run_record"]
    assert list(rec) == list(KEYS) and rec["schema"] == SCHEMA
    assert rec["commit"] and rec["dirty"] is False and rec["threads"] == 1
    assert rec["profile"] == run["profile"] == "book"
    assert rec["cpu_s"] > 0 and rec["wall_s"] > 0
    path = ml.training.model_checkpoint(model_config(0), run["epoch"])
    assert rec["checkpoints"]["mnist"] == sha256_file(path)


def test_settings_are_the_scripts_constants(run):
    """Mutation: a change of the script's seed, length, step or sizes without a re-run."""
    assert run["seed"] == script.SEED == 13
    assert run["distance"] == script.DISTANCE and run["max_step"] == LEAF_NOISE_MAX_STEP
    assert run["steps"] == 250  # the paper's 250 steps of 0.1
    assert run["n_no_clamp"] == script.N_NO_CLAMP
    assert (run["n_in"], run["n_out"]) == (200, 100)


def test_pt_file_is_the_one_the_json_describes(run, saved):
    """Mutation: the .pt file rewritten (or another run's) without its JSON."""
    assert sha256_file(RESULTS / run["pt_file"]) == run["pt_sha256"]
    assert {k: list(v.shape) for k, v in saved.items()} == run["shapes"]
    assert saved["noise_leaf"].shape == (run["n_out"], 1, 28, 28)
    assert saved["no_clamp"].shape == (run["n_no_clamp"], 1, 28, 28)


def test_bases_and_generator_states_are_the_chapters_draws(run, saved):
    """The chapter's generator calls give the saved bases and states, and the state after the
    noise is that of one Gaussian draw of the bases' shape (what the chapter reproduces).
    Mutation: another seed, another slice of the permutation, a state saved at another time."""
    data = ml.load_mnist("embedded")
    gen, base_index = script.draws(len(data.test_y), run["n_in"], run["n_out"])
    assert torch.equal(saved["base_index"], base_index)
    assert torch.equal(saved["state_leaf"], gen.get_state())
    torch.randn((run["n_out"], 1, 28, 28), generator=gen)
    assert torch.equal(saved["state_iso"], gen.get_state())


def test_the_images_are_the_two_arms(run, saved):
    """Clamped noise inside the pixel range, unclamped outside it; displacements at most the
    path length, and the two arms alike where the clamp does not bite much.
    Mutation: the arms swapped, the clamp dropped, a different path length."""
    data = ml.load_mnist("embedded")
    lo, hi = data.pixel_range
    base = data.test_x[saved["base_index"]]
    clamped, free = saved["noise_leaf"], saved["no_clamp"]
    assert float(clamped.min()) >= float(lo) - 1e-6 and float(clamped.max()) <= float(hi) + 1e-6
    assert float(free.min()) < float(lo) - 0.1 or float(free.max()) > float(hi) + 0.1
    for z, x in ((clamped, base), (free, base[: len(free)])):
        size = (z - x).flatten(1).norm(dim=1)
        assert float(size.max()) <= run["distance"] + 1e-3
        assert float(size.min()) > 0.2 * run["distance"]
