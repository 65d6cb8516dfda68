"""The committed results of experiments/ood_baselines.py hold what chapter 13 reads from them."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[1] / "experiments" / "results"
#: Columns of a run made before the AUROC intervals were recorded (2026-12-02: seeds 1 and 2).
LEGACY = ["seed", "set", "score", "auroc", "fpr95", "diff_vs_r1", "se_vs_r1", "p_vs_r1"]
FIELDS = LEGACY[:4] + ["auroc_low", "auroc_high"] + LEGACY[4:]


def read(path: Path) -> list[dict]:
    with path.open() as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames in (FIELDS, LEGACY), f"{path.name}: columns {reader.fieldnames}"
        return list(reader)


def common(rows: list[dict]) -> list[dict]:
    """The columns every run has (the merged file leaves the newer ones empty for old runs)."""
    return [{k: r[k] for k in LEGACY} for r in rows]


def seed_files() -> list[Path]:
    return sorted(RESULTS.glob("ood_baselines-seed*.csv"))


def run_files() -> list[Path]:
    """Every run's own file: the seeds and the last epoch of the book's model."""
    return [*seed_files(), *sorted(RESULTS.glob("ood_baselines-epoch*.csv"))]


def test_at_least_three_seeds_and_the_merged_file_is_their_union():
    files = seed_files()
    assert len(files) >= 3, "the chapter reports means and spreads over at least 3 seeds"
    merged = read(RESULTS / "ood_baselines.csv")
    assert common(merged) == [row for path in files for row in common(read(path))]


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
    sets = list(dict.fromkeys(r["set"] for r in rows))
    scores = list(dict.fromkeys(r["score"] for r in rows))
    assert sets == meta["sets"]
    assert sorted((r["set"], r["score"]) for r in rows) == sorted(
        (o, s) for o in sets for s in scores
    )
    for r in rows:
        assert 0.0 <= float(r["auroc"]) <= 1.0 and 0.0 <= float(r["fpr95"]) <= 1.0
        assert 0.0 <= float(r["p_vs_r1"]) <= 1.0 and float(r["se_vs_r1"]) >= 0.0
        if "auroc_low" in r:  # the DeLong interval holds the AUROC
            assert float(r["auroc_low"]) <= float(r["auroc"]) <= float(r["auroc_high"])
        if r["score"] == "leaf distance r1":  # DeLong of r1 against itself
            assert float(r["diff_vs_r1"]) == 0.0 and float(r["p_vs_r1"]) == 1.0
