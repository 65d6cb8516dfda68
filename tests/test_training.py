"""Training: determinism, checkpoints, resume, the cache, and the trace tracking."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import manifoldlib as ml
from manifoldlib.training import TrainConfig, load_checkpoint, train

SMALL = dict(
    arch="mlp",
    arch_kwargs=(("in_features", 784), ("hidden", (16,)), ("num_classes", 10)),
    train_per_class=12,
    epochs=2,
    batch_size=20,
    trace_every=3,
    trace_batch=16,
    threads=1,
)


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_same_seed_same_weights_and_history():
    a = train(TrainConfig(**SMALL), progress=False)
    b = train(TrainConfig(**SMALL), progress=False)
    assert torch.equal(weights(a.model), weights(b.model))
    assert a.history["trace"] == b.history["trace"]
    c = train(TrainConfig(**{**SMALL, "seed": 1}), progress=False)
    assert not torch.equal(weights(a.model), weights(c.model))


def test_history_tracks_trace_and_rank():
    res = train(TrainConfig(**SMALL), progress=False)
    h = res.history
    assert h["step"][0] == 0 and h["step"][1] == 3  # one record before training
    # rank C - 1 = 9 (Prop. 2.1 for a ReLU network at generic points): a rank bug shows up
    assert len(h["trace"]) == len(h["step"]) == 1 + (2 * 6) // 3
    assert all(t > 0 for t in h["trace"]) and all(r == 9 for r in h["rank_max"])
    assert len(h["epoch_test_accuracy"]) == 2
    mc = train(TrainConfig(**{**SMALL, "trace_method": "mc"}), progress=False)
    assert all(s > 0 for s in mc.history["trace_stderr"][1:])


def test_interrupted_training_resumes_to_identical_weights(tmp_path):
    cfg = TrainConfig(**SMALL)
    full = train(cfg, checkpoint_dir=tmp_path / "a", progress=False)
    assert [p.name for p in full.checkpoints] == ["epoch-001.pt", "epoch-002.pt"]
    # Simulate an interruption after epoch 1: the last checkpoint never got written.
    (tmp_path / "a" / "epoch-002.pt").unlink()
    resumed = train(cfg, checkpoint_dir=tmp_path / "a", progress=False)
    assert torch.equal(weights(full.model), weights(resumed.model))
    assert full.history == resumed.history


def test_checkpoint_of_another_configuration_is_refused(tmp_path):
    train(TrainConfig(**SMALL), checkpoint_dir=tmp_path / "a", progress=False)
    other = TrainConfig(**{**SMALL, "lr": 0.1})
    with pytest.raises(ValueError, match="another configuration.*lr"):
        train(other, checkpoint_dir=tmp_path / "a", progress=False)
    with pytest.raises(ValueError, match="not a manifoldlib checkpoint"):
        torch.save({"weights": 1}, tmp_path / "x.pt")
        load_checkpoint(tmp_path / "x.pt")
    (tmp_path / "bad.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")


def test_cache_key_covers_every_setting():
    base = TrainConfig(**SMALL)
    keys = {base.key()}
    for change in (
        {"lr": 0.02},
        {"seed": 3},
        {"threads": 2},
        {"epochs": 3},
        {"batch_size": 10},
        {"train_per_class": 11},
        {"trace_every": 4},
        {"arch_kwargs": (("in_features", 784), ("hidden", (8,)), ("num_classes", 10))},
    ):
        keys.add(TrainConfig(**{**SMALL, **change}).key())
    assert len(keys) == 9


def test_cached_train_trains_once_then_reloads(tmp_path, monkeypatch):
    cfg = TrainConfig(**SMALL)
    first = ml.cached_train(cfg, cache_dir=tmp_path, progress=False)

    def boom(*args, **kwargs):
        raise AssertionError("should have been loaded from the cache")

    monkeypatch.setattr(ml.training, "train", boom)
    again = ml.cached_train(cfg, cache_dir=tmp_path, progress=False)
    assert torch.equal(weights(first.model), weights(again.model))
    assert not again.model.training
    epoch1 = ml.cached_train(cfg, cache_dir=tmp_path, epoch=1, progress=False)
    assert not torch.equal(weights(epoch1.model), weights(again.model))
    assert epoch1.history == first.history
    with pytest.raises(ValueError, match="epoch"):
        ml.cached_train(cfg, cache_dir=tmp_path, epoch=5, progress=False)
    assert not list(tmp_path.rglob("*.tmp"))  # no half-written file left


def test_bad_configuration():
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="lr"):
        TrainConfig(lr=-1.0)
    with pytest.raises(ValueError, match="trace_method"):
        TrainConfig(trace_method="approx")
    with pytest.raises(ValueError, match="arch"):
        TrainConfig(arch="resnet").build()


def test_models_return_scores_of_the_right_shape():
    assert ml.MnistCNN()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    vgg = ml.VGG(width=1 / 8)
    assert vgg(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in ml.VGG(width=1.0).parameters()) > 9_000_000
    for act in ("relu", "gelu", "tanh", "sigmoid"):
        assert ml.MLP(2, (4,), 3, act)(torch.zeros(5, 2)).shape == (5, 3)
    with pytest.raises(ValueError, match="activation"):
        ml.MLP(2, (4,), 3, "swish")


#: Cache keys of chapter 3's MLPs on the book profile: the shipped checkpoints, the live digit
#: page and the orbit study load these; a change of the configuration would orphan them.
CH3_MLP_KEYS = {
    "relu": "53999af314fb0895",
    "gelu": "95f13cc66cdf2375",
    "tanh": "03ac29af2ceaf26f",
    "sigmoid": "11eb7ff7b7f44ab8",
}


def test_mnist_mlp_config_keeps_the_shipped_keys():
    """Mutation: any change of a setting in ``Profile.mnist_mlp_config`` changes a key."""
    import json
    import sys

    book = ml.Profile(name="book", mnist_source="embedded", threads=2, device="cpu")
    shipped = (Path(ml.__file__).parent / "shipped_models.json").read_text()
    for act, key in CH3_MLP_KEYS.items():
        cfg = book.mnist_mlp_config(act)
        assert cfg.key() == key, act
        assert dict(cfg.arch_kwargs)["activation"] == act
        assert f'"mlp-{key}"' in shipped, f"mlp-{key} is not shipped"
    paper = ml.Profile(name="paper", mnist_source="torchvision", threads=None, device="cpu")
    assert paper.mnist_mlp_config().source == "torchvision"
    assert paper.mnist_mlp_config().key() != CH3_MLP_KEYS["relu"]
    with pytest.raises(ValueError, match="activation"):
        book.mnist_mlp_config("swish")
    # the live digit page exports this very configuration
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    try:
        import export_live_digit
    finally:
        sys.path.pop(0)
    assert export_live_digit.config() == book.mnist_mlp_config("relu")
    payload = json.loads(
        (Path(__file__).resolve().parents[1] / "book/live_digit/weights.json").read_text()
    )
    assert payload["checkpoint"]["config_key"] == f"mlp-{CH3_MLP_KEYS['relu']}"


def test_profiles(monkeypatch):
    monkeypatch.delenv("MANIFOLDLIB_PROFILE", raising=False)
    p = ml.current_profile()
    assert p.name == "book" and p.pick(book=1, paper=2) == 1
    assert p.mnist_config().source == "embedded"
    monkeypatch.setenv("MANIFOLDLIB_PROFILE", "paper")
    q = ml.current_profile()
    assert q.pick(book=1, paper=2) == 2 and q.mnist_epoch == 10
    assert q.mnist_config().source == "torchvision"
    monkeypatch.setenv("MANIFOLDLIB_PROFILE", "huge")
    with pytest.raises(ValueError, match="MANIFOLDLIB_PROFILE"):
        ml.current_profile()
