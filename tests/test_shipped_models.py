"""The checkpoints the repository ships (data/models): complete, hashed, loaded first."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

import manifoldlib as ml
from manifoldlib import training

ROOT = Path(__file__).resolve().parent.parent
TABLE = json.loads(training.SHIPPED_TABLE.read_text())["models"]


def _config(entry: dict) -> ml.TrainConfig:
    cfg = dict(entry["config"])
    cfg["arch_kwargs"] = tuple(tuple(kv) for kv in cfg["arch_kwargs"])
    return ml.TrainConfig(**cfg)


def test_every_shipped_file_is_in_the_table_with_its_hash():
    on_disk = sorted(
        p.relative_to(training.SHIPPED_MODELS).as_posix()
        for p in training.SHIPPED_MODELS.rglob("*.pt")
    )
    listed = sorted(
        f"{name}/epoch-{int(e):03d}.pt" for name, entry in TABLE.items() for e in entry["epochs"]
    )
    assert on_disk == listed
    for name, entry in TABLE.items():
        for e, want in entry["epochs"].items():
            blob = (training.SHIPPED_MODELS / name / f"epoch-{int(e):03d}.pt").read_bytes()
            assert hashlib.sha256(blob).hexdigest() == want, (name, e)


def test_folder_names_are_the_config_keys_and_files_load_weights_only():
    for name, entry in TABLE.items():
        config = _config(entry)
        assert name == f"{config.arch}-{config.key()}"
        last = max(int(e) for e in entry["epochs"])
        assert last == config.epochs, name  # the last epoch holds the whole history
        ckpt = torch.load(
            training.SHIPPED_MODELS / name / f"epoch-{last:03d}.pt", weights_only=True
        )
        assert set(ckpt) == {"config", "epoch", "model", "history"}
        assert json.loads(json.dumps(ckpt["config"])) == entry["config"]
        assert ckpt["epoch"] == last
        model = config.build()
        model.load_state_dict(ckpt["model"])  # strict: every parameter and buffer is there


def test_the_book_model_ships_with_every_epoch_the_chapters_load():
    config = ml.current_profile().mnist_config()
    entry = TABLE[f"{config.arch}-{config.key()}"]
    # chapter 5 loads epochs 1, 3, 10 (the checkpoint), 20, 34 and 40
    assert {1, 3, 10, 20, 34, 40} <= {int(e) for e in entry["epochs"]}


def test_cached_train_takes_the_shipped_checkpoint_without_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("cached_train trained although the checkpoint ships")

    monkeypatch.setattr(training, "train", refuse)
    config = ml.current_profile().mnist_config()
    result = ml.cached_train(config, epoch=10)
    assert result.source == "shipped"
    want = torch.load(training.shipped_checkpoint(config, 10), weights_only=True)["model"]
    for k, v in result.model.state_dict().items():
        assert torch.equal(v, want[k]), k
    assert len(result.history["trace"]) > 10  # the whole training's history (from epoch 40)
    # the cache stays empty: nothing machine-dependent was written
    assert not (ml.data.data_home() / "models").exists()


def test_shipped_false_ignores_the_shipped_checkpoint(monkeypatch):
    called = []
    monkeypatch.setattr(training, "train", lambda *a, **k: called.append(1) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        ml.cached_train(ml.current_profile().mnist_config(), epoch=10, shipped=False)
    assert called


def test_a_wheel_fetches_a_shipped_checkpoint_and_checks_its_hash(monkeypatch, tmp_path):
    config = ml.current_profile().mnist_config()
    name = f"{config.arch}-{config.key()}"
    real = training.SHIPPED_MODELS / name / "epoch-010.pt"
    # an installed wheel: no data/ folder beside the package
    monkeypatch.setattr(training, "SHIPPED_MODELS", tmp_path / "nowhere")
    assert training.shipped_checkpoint(config, 10) is None  # no download unless asked
    monkeypatch.setattr(ml.data, "_bundled_url", lambda key: real.as_uri())
    got = training.shipped_checkpoint(config, 10, download=True)
    assert got is not None and got.read_bytes() == real.read_bytes()
    assert got.is_relative_to(ml.data.data_home())
    # a corrupt download is refused and deleted
    got.unlink()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(real.read_bytes()[:-1] + b"x")
    monkeypatch.setattr(ml.data, "_bundled_url", lambda key: bad.as_uri())
    with pytest.raises(ValueError, match="SHA-256"):
        training.shipped_checkpoint(config, 10, download=True)
    assert not got.exists()


def test_model_checkpoint_is_the_file_cached_train_loads(tmp_path):
    config = ml.current_profile().mnist_config()
    folder = f"{config.arch}-{config.key()}"
    # shipped at epoch 10 (and at its last epoch): the file in data/models, whose weights
    # cached_train returns (dropping the shipped branch of model_checkpoint fails here)
    path = training.model_checkpoint(config, 10, cache_dir=tmp_path)
    assert path == training.SHIPPED_MODELS / folder / "epoch-010.pt"
    want = torch.load(path, weights_only=True)["model"]
    got = ml.cached_train(config, epoch=10).model.state_dict()
    assert set(got) == set(want) and all(torch.equal(got[k], want[k]) for k in want)
    # not shipped (epoch 2 of the book model; shipped=False): the cache's file
    assert training.model_checkpoint(config, 2, cache_dir=tmp_path) == (
        tmp_path / folder / "epoch-002.pt"
    )
    assert training.model_checkpoint(config, 10, cache_dir=tmp_path, shipped=False) == (
        training.checkpoint_path(config, 10, cache_dir=tmp_path)
    )
    for bad in (0, config.epochs + 1, True, 2.0):
        with pytest.raises(ValueError, match="epoch"):
            training.model_checkpoint(config, bad)


def test_every_torch_load_of_the_code_is_weights_only():
    """No script unpickles arbitrary objects: every ``torch.load`` passes ``weights_only=True``."""
    import ast

    loose = []
    for folder in ("manifoldlib", "experiments", "benchmarks", "tools", "tests"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "load"
                    and isinstance(node.func.value, ast.Name)
                    and node.func.value.id == "torch"
                ):
                    ok = any(
                        k.arg == "weights_only"
                        and isinstance(k.value, ast.Constant)
                        and k.value.value is True
                        for k in node.keywords
                    )
                    if not ok:
                        loose.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not loose, loose
