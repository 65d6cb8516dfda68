"""The committed results of experiments/ood_baselines.py hold what chapter 13 reads from them."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "experiments" / "results"
sys.path.insert(0, str(ROOT))

#: The columns of every run's file and of the merged file: the script's own.
from experiments.ood_baselines import FIELDS  # noqa: E402


def read(path: Path) -> list[dict]:
    with path.open() as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == FIELDS, f"{path.name}: columns {reader.fieldnames}"
        return list(reader)


def seed_files() -> list[Path]:
    return sorted(RESULTS.glob("ood_baselines-seed*.csv"))


def run_files() -> list[Path]:
    """Every run's own file: the seeds and the last epoch of the book's model."""
    return [*seed_files(), *sorted(RESULTS.glob("ood_baselines-epoch*.csv"))]


def test_at_least_three_seeds_and_the_merged_file_is_their_union():
    files = seed_files()
    assert len(files) >= 3, "the chapter reports means and spreads over at least 3 seeds"
    merged = read(RESULTS / "ood_baselines.csv")
    assert merged == [row for path in files for row in read(path)]


def test_every_run_comes_from_one_clean_commit_and_profile():
    """The chapter compares seeds and epochs: one commit, a clean checkout, one profile.
    Mutation: a seed file re-run on another commit (or a stale one) fails."""
    records = [json.loads(p.with_suffix(".json").read_text())["run_record"] for p in run_files()]
    assert len({(r["commit"], r["profile"]) for r in records}) == 1
    assert all(r["commit"] and r["dirty"] is False for r in records)
    rows = [row for path in run_files() for row in read(path)]
    assert {row["profile"] for row in rows} == {records[0]["profile"]}


@pytest.mark.parametrize("path", run_files(), ids=lambda p: p.name)
def test_each_run_has_every_pair_once_and_a_json_with_its_run(path):
    rows = read(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    seed = meta["seed"]
    if "seed" in path.stem:
        assert seed == int(path.stem.removeprefix("ood_baselines-seed"))
    else:
        assert meta["epoch"] == int(path.stem.removeprefix("ood_baselines-epoch"))
    assert {int(r["seed"]) for r in rows} == {seed}
    assert meta["seconds"] > 0 and meta["threads"] >= 1
    # the manipulation check of the two noise sets, at the clean image and at the end point
    for arm in ("noise leaf", "isotropic, same norm"):
        assert 0.0 < meta["manipulation_check"][arm]["at_clean"] < 1.0
        assert 0.0 < meta["manipulation_check"][arm]["at_noisy"] < 1.0
    sets = list(dict.fromkeys(r["set"] for r in rows))
    scores = list(dict.fromkeys(r["score"] for r in rows))
    assert sets == meta["sets"]
    assert sorted((r["set"], r["score"]) for r in rows) == sorted(
        (o, s) for o in sets for s in scores
    )
    for r in rows:
        assert 0.0 <= float(r["auroc"]) <= 1.0 and 0.0 <= float(r["fpr95"]) <= 1.0
        assert 0.0 <= float(r["p_vs_r1"]) <= 1.0 and float(r["se_vs_r1"]) >= 0.0
        # the DeLong interval holds the AUROC
        assert float(r["auroc_low"]) <= float(r["auroc"]) <= float(r["auroc_high"])
        if r["score"] == "leaf distance r1":  # DeLong of r1 against itself
            assert float(r["diff_vs_r1"]) == 0.0 and float(r["p_vs_r1"]) == 1.0
