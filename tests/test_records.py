"""Run records of experiments and benchmarks, the study runner, the per-seed merge."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import manifoldlib as ml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments import records  # noqa: E402
from experiments.__main__ import studies  # noqa: E402


def test_record_has_the_one_schema_and_real_values(tmp_path):
    rec = records.RunRecord.start()
    sum(i * i for i in range(3_000_000))  # some CPU time (0.1 s or more)
    out = records.write_json(tmp_path / "r.json", {"x": 1}, rec)
    back = json.loads((tmp_path / "r.json").read_text())
    assert back == out and back["x"] == 1
    r = back["run_record"]
    assert tuple(r) == records.KEYS
    assert r["schema"] == records.SCHEMA
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert r["commit"] == head.stdout.strip() and isinstance(r["dirty"], bool)
    assert r["wall_s"] >= 0 and r["cpu_s"] > 0 and r["threads"] >= 1
    assert r["started_utc"] <= r["finished_utc"]


def test_record_keeps_the_checkout_state_of_its_start(tmp_path, monkeypatch):
    # A long run outlives commits of its checkout: its record names the code it imported,
    # i.e. the state at the start. Mutation: reading git_state() in finish() fails this.
    states = iter([("a" * 40, False), ("b" * 40, True)])
    monkeypatch.setattr(records, "git_state", lambda: next(states))
    rec = records.RunRecord.start()
    r = rec.finish()
    assert (r["commit"], r["dirty"]) == ("a" * 40, False)


def test_dirty_flag_ignores_the_runs_own_results_files(monkeypatch):
    # A run rewrites its tracked results files while it runs (and runs beside it theirs): they
    # must not make the checkout "dirty". Mutation: dropping the pathspec fails this.
    seen = []

    def fake_git(*args):
        seen.append(args)
        return "" if args[0] == "status" else "c" * 40

    monkeypatch.setattr(records, "_git", fake_git)
    assert records.git_state() == ("c" * 40, False)
    status = next(a for a in seen if a[0] == "status")
    assert ":!experiments/results" in status


def test_checkpoint_hash_is_the_files_sha256(tmp_path):
    import hashlib

    f = tmp_path / "w.pt"
    f.write_bytes(b"weights")
    assert records.sha256_file(f) == hashlib.sha256(b"weights").hexdigest()


def test_records_hash_and_load_the_checkpoint_the_chapters_load():
    import dataclasses

    import torch

    import manifoldlib as ml

    config = ml.current_profile().mnist_config()
    shipped = ml.training.shipped_checkpoint(config, 10)
    rec = records.RunRecord.start()
    rec.checkpoint("book", config, 10)
    # the shipped file, not the cache's (whose bytes differ: it holds the optimizer state)
    assert rec.checkpoints["book"] == records.sha256_file(shipped)
    want = torch.load(shipped, weights_only=True)["model"]
    got = records.load_model(config, 10).state_dict()
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    # neither shipped nor cached (each test has an empty cache): None, and never trained
    other = dataclasses.replace(config, seed=987_654)
    assert records.load_model(other, 1) is None
    rec.checkpoint("other", other, 1)
    assert rec.checkpoints["other"] == "missing"


def test_write_csv_makes_the_folder_and_takes_the_header_from_the_first_row(tmp_path):
    out = tmp_path / "new" / "rows.csv"
    records.write_csv(out, [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])
    assert list(csv.DictReader(out.open())) == [{"a": "1", "b": "x"}, {"a": "2", "b": "y"}]


def test_every_study_is_listed():
    found = studies()
    on_disk = {
        p.stem
        for p in (ROOT / "experiments").glob("*.py")
        if "def main(" in p.read_text() and p.stem not in ("__main__", "records")
    }
    assert set(found) == on_disk and "ood_baselines" in found
    out = subprocess.run(
        [sys.executable, "-m", "experiments", "--list"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(name in out for name in found)


def _seed_files(folder, seed, profile, commit):
    meta = {"seed": seed, "profile": profile}
    if commit is not None:
        meta["run_record"] = {"profile": profile, "commit": commit}
    (folder / f"ood_baselines-seed{seed}.json").write_text(json.dumps(meta))
    with (folder / f"ood_baselines-seed{seed}.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["seed", "set", "score", "auroc"])
        w.writeheader()
        w.writerow({"seed": seed, "set": "a", "score": "s", "auroc": "0.5"})


def test_merge_refuses_seeds_from_different_runs(tmp_path):
    from experiments.ood_baselines import merge_seed_files

    _seed_files(tmp_path, 0, "book", "c1")
    _seed_files(tmp_path, 1, "book", "c1")
    rows = merge_seed_files(tmp_path)
    assert [r["seed"] for r in rows] == ["0", "1"] and {r["profile"] for r in rows} == {"book"}
    _seed_files(tmp_path, 2, "book", "c2")  # a stale seed from another commit
    with pytest.raises(ValueError, match="different runs"):
        merge_seed_files(tmp_path)
    _seed_files(tmp_path, 2, "paper", "c1")  # another profile
    with pytest.raises(ValueError, match="different runs"):
        merge_seed_files(tmp_path)


def test_record_model_loads_hashes_and_never_trains(monkeypatch):
    """``RunRecord.model``: the shipped checkpoint, its hash recorded; a missing one exits.
    Mutation: training or returning None instead of exiting fails."""
    P = ml.current_profile()
    rec = records.RunRecord.start()
    model = rec.model("mnist", P.mnist_config(), P.mnist_epoch)
    assert isinstance(model, torch.nn.Module) and not model.training
    path = ml.training.model_checkpoint(P.mnist_config(), P.mnist_epoch)
    assert rec.checkpoints["mnist"] == records.sha256_file(path)
    with pytest.raises(SystemExit, match="'nowhere'"):
        rec.model("nowhere", dataclasses.replace(P.mnist_config(), seed=987), P.mnist_epoch)
