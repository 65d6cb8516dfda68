"""The committed results of experiments/ch14_noise.py hold what chapter 14 reads from them."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
sys.path.insert(0, str(ROOT))

import manifoldlib as ml  # noqa: E402
from experiments import ch14_noise, records  # noqa: E402


@pytest.fixture(scope="module")
def run() -> dict:
    return json.loads((RESULTS / f"{ch14_noise.results_name('book')}.json").read_text())


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    with np.load(RESULTS / f"{ch14_noise.results_name('book')}.npz") as f:
        return {k: f[k] for k in f.files}


def test_file_names_per_profile():
    assert ch14_noise.results_name("book") == "ch14_noise"
    assert ch14_noise.results_name("paper") == "ch14_noise_paper"


def test_settings_are_the_scripts_constants(run):
    # Mutation: changing SEED, LEVEL or MAX_STEP in the script (without a re-run) fails this.
    assert run["profile"] == "book" and run["n_live"] == 24
    assert (run["seed"], run["level"], run["max_step"]) == (
        ch14_noise.SEED,
        ch14_noise.LEVEL,
        ch14_noise.MAX_STEP,
    )
    assert run["steps"] == math.ceil(ch14_noise.LEVEL / ch14_noise.MAX_STEP - 1e-9) == 320
    assert run["arrays"] == list(ch14_noise.ARRAYS)
    assert run["dtype"] == "float32"
    assert set(run["cpu_s"]) == {"clamped", "unclamped"} and min(run["cpu_s"].values()) > 0


def test_run_record_names_a_clean_commit_and_the_shipped_checkpoint(run):
    rec = run["run_record"]
    assert tuple(rec) == records.KEYS and rec["schema"] == records.SCHEMA
    assert re.fullmatch(r"[0-9a-f]{40}", rec["commit"]) and rec["dirty"] is False
    assert rec["threads"] == 1 and rec["profile"] == "book"
    config = ml.current_profile().mnist_config()
    shipped = ml.training.shipped_checkpoint(config, ml.current_profile().mnist_epoch)
    assert rec["checkpoints"]["mnist"] == records.sha256_file(shipped)


def test_npz_is_the_one_the_json_describes(run, arrays):
    # Mutation: rewriting the npz without its JSON (or the reverse) fails this.
    path = RESULTS / f"{ch14_noise.results_name('book')}.npz"
    assert records.sha256_file(path) == run["npz_sha256"]
    assert list(arrays) == list(ch14_noise.ARRAYS)


def test_digits_and_generator_states_are_the_chapters(run, arrays):
    # The chapter's draws: the permutation, its D_x check's Gaussian vector, then the
    # directions (one draw of the images' shape). Mutation: another seed, or a draw fewer or
    # more before the noise in chapter_digits, fails this.
    data = ml.load_mnist(ml.current_profile().mnist_source)
    gen, digits = ch14_noise.chapter_digits(data, run["n_live"])
    assert arrays["digits"].tolist() == digits.tolist()
    before = gen.get_state()
    assert np.array_equal(arrays["state_before"], before.numpy())
    torch.randn(data.test_x[digits].shape, generator=gen)
    assert np.array_equal(arrays["state_after"], gen.get_state().numpy())
    assert not np.array_equal(arrays["state_before"], arrays["state_after"])


def test_images_are_the_two_arms_of_the_noise(run, arrays):
    data = ml.load_mnist(ml.current_profile().mnist_source)
    clean = data.test_x[torch.from_numpy(arrays["digits"])].numpy()
    ker, free = arrays["ker_clamped"], arrays["ker_unclamped"]
    assert ker.shape == free.shape == clean.shape and ker.dtype == free.dtype == np.float32
    lo, hi = (float(v) for v in data.pixel_range)
    assert ker.min() >= lo and ker.max() <= hi  # clamped at every step
    assert free.min() < lo or free.max() > hi  # the unclamped arm leaves the range
    norms = {
        "clamped": np.linalg.norm((ker - clean).reshape(len(clean), -1), axis=1),
        "unclamped": np.linalg.norm((free - clean).reshape(len(clean), -1), axis=1),
    }
    for arm, n in norms.items():
        # np.median of 24 averages the middle two, torch.median takes the lower: compare to
        # the lower middle value
        assert np.sort(n)[(len(n) - 1) // 2] == pytest.approx(run["median_norm"][arm], rel=1e-6)
    # a path of length 32 moves each image by at most 32 (less where clamping bites)
    assert norms["unclamped"].max() <= run["level"] * (1 + 1e-5)
    assert (norms["clamped"] < norms["unclamped"]).all()
