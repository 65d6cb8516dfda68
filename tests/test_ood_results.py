"""The committed results of experiments/ood_baselines.py hold what chapter 13 reads from them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results"
FIELDS = ["seed", "set", "score", "auroc", "fpr95", "diff_vs_r1", "se_vs_r1", "p_vs_r1"]


def read(path: Path) -> list[dict]:
    with path.open() as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == FIELDS, f"{path.name}: columns {reader.fieldnames}"
        return list(reader)


def seed_files() -> list[Path]:
    return sorted(RESULTS.glob("ood_baselines-seed*.csv"))


def test_at_least_three_seeds_and_the_merged_file_is_their_union():
    files = seed_files()
    assert len(files) >= 3, "the chapter reports means and spreads over at least 3 seeds"
    merged = read(RESULTS / "ood_baselines.csv")
    assert merged == [row for path in files for row in read(path)]


@pytest.mark.parametrize("path", seed_files(), ids=lambda p: p.name)
def test_each_seed_has_every_pair_once_and_a_json_with_its_run(path):
    rows = read(path)
    seed = int(path.stem.removeprefix("ood_baselines-seed"))
    assert {int(r["seed"]) for r in rows} == {seed}
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["seed"] == seed and meta["seconds"] > 0 and meta["threads"] >= 1
    sets = list(dict.fromkeys(r["set"] for r in rows))
    scores = list(dict.fromkeys(r["score"] for r in rows))
    assert sets == meta["sets"]
    assert sorted((r["set"], r["score"]) for r in rows) == sorted(
        (o, s) for o in sets for s in scores
    )
    for r in rows:
        assert 0.0 <= float(r["auroc"]) <= 1.0 and 0.0 <= float(r["fpr95"]) <= 1.0
        assert 0.0 <= float(r["p_vs_r1"]) <= 1.0 and float(r["se_vs_r1"]) >= 0.0
        if r["score"] == "leaf distance r1":  # DeLong of r1 against itself
            assert float(r["diff_vs_r1"]) == 0.0 and float(r["p_vs_r1"]) == 1.0
