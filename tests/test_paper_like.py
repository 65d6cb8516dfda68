"""The paper-like checkpoint's training settings: shifts, fixed-length epochs, reference batch."""

from __future__ import annotations

import pytest
import torch

import manifoldlib as ml
from manifoldlib.training import TrainConfig, _shift, train

# The shipped book checkpoint's key: adding settings must not change it (mutation: drop the
# loop in ``TrainConfig.to_dict`` that leaves unused later settings out).
BOOK_KEY = "d3bdaf8e53119581"


def test_later_settings_leave_older_keys_unchanged():
    book = ml.Profile(name="book", mnist_source="embedded", threads=2, device="cpu")
    assert book.mnist_config().key() == BOOK_KEY
    assert "shift" not in book.mnist_config().to_dict()
    like = book.paper_like_config()
    assert like.key() != BOOK_KEY
    assert like.to_dict()["shift"] == 2 and like.to_dict()["epoch_steps"] == 1000
    # 10 epochs of 1,000 steps of 60: the paper's 10,000 SGD steps at its settings
    assert (like.epochs * like.epoch_steps, like.batch_size, like.lr, like.momentum) == (
        10_000,
        60,
        0.01,
        0.0,
    )


def test_shift_moves_each_image_by_at_most_k_and_keeps_its_pixels():
    x = torch.full((40, 1, 28, 28), -0.5)
    x[:, 0, 14, 14] = 3.0
    out = _shift(x, 2, torch.Generator().manual_seed(0))
    again = _shift(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # seeded: deterministic
    pos = (out[:, 0] == 3.0).flatten(1).float().argmax(1)
    dy, dx = pos // 28 - 14, pos % 28 - 14
    assert int(dy.abs().max()) <= 2 and int(dx.abs().max()) <= 2
    assert len({(int(a), int(b)) for a, b in zip(dy, dx, strict=True)}) > 5  # really shifts
    assert torch.equal((out == 3.0).sum((1, 2, 3)), torch.ones(40, dtype=torch.long))
    assert float(out.min()) == -0.5  # the border is filled with the background


def test_fixed_length_epochs_and_strided_reference_batch():
    cfg = TrainConfig(
        arch="mnist_cnn",
        epochs=1,
        epoch_steps=3,
        shift=2,
        trace_every=1,
        trace_batch=8,
        trace_stride=4,
        trace_method="mc",
        threads=1,
    )
    a = train(cfg)
    assert a.history["step"] == [0, 1, 2, 3]  # 3 steps, not one pass over 4,000 images
    b = train(cfg)
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    ("field", "value"), [("shift", -1), ("epoch_steps", 0), ("trace_stride", 0)]
)
def test_bad_settings_name_the_argument(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})
