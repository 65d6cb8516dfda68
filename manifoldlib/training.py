"""Deterministic training with trace-of-G tracking, checkpoints and a model cache.

The paper trains with plain SGD (batch 60, learning rate 0.01) and records the mean trace of
G(x, w) on a fixed batch of training images ten times per epoch (Figure 2). :func:`train`
does exactly that, writes a checkpoint after every epoch (atomically, so an interrupted run
resumes from the last complete epoch), and :func:`cached_train` keeps trained models in a
cache folder keyed by the full configuration, so chapters share models without depending on
each other's execution order.

Reproducibility: the same configuration (seed and thread count included) gives bit-identical
weights on the same CPU type. Shuffling uses a generator seeded per epoch, so a resumed run
is identical to an uninterrupted one. GPUs (cuDNN kernels) and other CPU instruction sets can
give slightly different weights.

Introduced in the chapter "Training and the trace of G" (book/05).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ._checks import CHUNK, check_input, check_positive, eval_mode
from ._jacobian import forward_scores
from .data import DATA_DIR, ImageData, bundled_file, data_home, load_cifar10, load_mnist
from .geometry import mean_trace
from .models import build_model
from .toy import ToyData, load_toy

__all__ = [
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "cached_train",
    "load_checkpoint",
    "load_data",
    "model_checkpoint",
    "shipped_checkpoint",
    "train",
]

#: Bump when a change to the training code changes the weights it produces.
TRAINING_VERSION = 1
#: Checkpoints the repository ships, ``data/models/<arch>-<key>/epoch-NNN.pt``: the weights
#: every chapter uses, trained once (``tools/ship_models.py``), so that a reader's CPU, whose
#: kernels round differently and so train different weights, computes on the same model.
SHIPPED_MODELS = DATA_DIR / "models"
#: Their table: folder -> configuration, epochs and SHA-256 of each file (ships in the wheel).
SHIPPED_TABLE = Path(__file__).resolve().parent / "shipped_models.json"


#: Settings added after the first trained models, with the defaults that leave them out of
#: :meth:`TrainConfig.to_dict` (and so out of the cache key).
_LATER_DEFAULTS: dict[str, object] = {"shift": 0, "epoch_steps": None, "trace_stride": 1}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a trained model (and so its cache key).

    Attributes:
        arch: ``"mnist_cnn"``, ``"vgg11"`` or ``"mlp"``.
        arch_kwargs: constructor arguments, as a tuple of ``(name, value)`` pairs.
        dataset: ``"mnist"``, ``"cifar10"`` or ``"toy"`` (:mod:`manifoldlib.toy`).
        source: data source passed to the loader (``"embedded"``, ``"torchvision"``, a folder,
            or ``"env"`` for ``$MANIFOLDLIB_CIFAR10``; for ``"toy"`` the toy data set's name,
            e.g. ``"moons"``).
        train_per_class: keep the first k training images of each class (None: all; for toy
            data, the number of training points per class, default 250).
        epochs: number of epochs.
        batch_size: SGD batch size (the paper: 60).
        lr: learning rate (the paper: 0.01).
        momentum: SGD momentum (the paper: 0).
        seed: seed of initialisation and shuffling.
        threads: torch threads during training (weights depend on it); None leaves the default.
        trace_every: measure the mean trace of G every this many steps (None: never).
        trace_batch: number of training images in the fixed reference batch.
        trace_method: ``"exact"`` (C - 1 backward passes per chunk of images) or ``"mc"`` (one, eq. 11).
        augment: random crops and flips (CIFAR-10 only).
        shift: random shifts of each training image by up to this many pixels in each
            direction, the freed border filled with the background (MNIST; 0: none). Drawn
            from the epoch's seeded generator, so training stays deterministic.
        epoch_steps: SGD steps per epoch (None: one pass over the training set). When set,
            an epoch walks through as many seeded permutations of the training set as it needs
            (the paper-like checkpoint: 1,000 steps of 60, as one epoch of full MNIST).
        trace_stride: the trace's reference batch is every ``trace_stride``-th training image
            (the first ``trace_batch`` of them); 1: the first ``trace_batch`` images.

    The last three settings enter the cache key only when they differ from their defaults, so
    the keys (and weights) of every configuration that does not use them are unchanged.
    """

    arch: str = "mnist_cnn"
    arch_kwargs: tuple[tuple[str, object], ...] = ()
    dataset: str = "mnist"
    source: str = "embedded"
    train_per_class: int | None = None
    epochs: int = 10
    batch_size: int = 60
    lr: float = 0.01
    momentum: float = 0.0
    seed: int = 0
    threads: int | None = 2
    trace_every: int | None = None
    trace_batch: int = 1000
    trace_method: str = "exact"
    augment: bool = False
    shift: int = 0
    epoch_steps: int | None = None
    trace_stride: int = 1

    def __post_init__(self) -> None:
        check_positive(self.epochs, "epochs", integer=True)
        check_positive(self.batch_size, "batch_size", integer=True)
        check_positive(self.lr, "lr")
        check_positive(self.trace_batch, "trace_batch", integer=True)
        if self.trace_every is not None:
            check_positive(self.trace_every, "trace_every", integer=True)
        if not isinstance(self.shift, int) or self.shift < 0:
            raise ValueError(f"shift must be a non-negative integer, got {self.shift!r}")
        if self.shift and self.dataset != "mnist":
            raise ValueError(f"shift is for MNIST only, got dataset {self.dataset!r}")
        if self.epoch_steps is not None:
            check_positive(self.epoch_steps, "epoch_steps", integer=True)
        check_positive(self.trace_stride, "trace_stride", integer=True)
        if self.trace_method not in ("exact", "mc"):
            raise ValueError(f"trace_method must be 'exact' or 'mc', got {self.trace_method!r}")
        if self.dataset not in ("mnist", "cifar10", "toy"):
            raise ValueError(f"dataset must be 'mnist', 'cifar10' or 'toy', got {self.dataset!r}")

    def to_dict(self) -> dict:
        """A JSON-able dictionary of the configuration."""
        d = dataclasses.asdict(self)
        d["arch_kwargs"] = [list(kv) for kv in self.arch_kwargs]
        # Settings added later enter only when used, so that older keys stay valid.
        for name, default in _LATER_DEFAULTS.items():
            if d[name] == default:
                del d[name]
        return d

    def key(self) -> str:
        """A hash of every setting that changes the trained weights (and of the code version)."""
        payload = json.dumps({"v": TRAINING_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def build(self) -> nn.Module:
        """The untrained model, initialised from ``seed``."""
        torch.manual_seed(self.seed)
        return build_model(self.arch, **dict(self.arch_kwargs))


@dataclass
class TrainResult:
    """A trained model and what was recorded during training.

    Attributes:
        model: the trained model (in eval mode).
        config: its configuration.
        history: ``step``, ``epoch`` (fractional), ``trace`` (mean Tr G on the reference batch),
            ``trace_stderr`` (MC only), ``rank_min``/``rank_max`` (exact only), ``loss``
            (mean over the last interval), and per-epoch ``epoch_test_accuracy``.
        checkpoints: paths of the per-epoch checkpoints.
        source: where the weights came from: ``"shipped"`` (the repository's checkpoint, the
            same on every machine), ``"cache"`` (trained earlier on this machine) or
            ``"trained"`` (just now).
    """

    model: nn.Module
    config: TrainConfig
    history: dict[str, list] = field(default_factory=dict)
    checkpoints: list[Path] = field(default_factory=list)
    source: str = "trained"


def load_data(config: TrainConfig) -> ImageData | ToyData:
    """Load the data set a configuration names.

    Args:
        config: the configuration.

    Returns:
        The data (with the training split reduced to ``train_per_class`` if set).
    """
    if config.dataset == "toy":
        per_class = config.train_per_class or 250
        return load_toy(config.source, n_train_per_class=per_class)
    if config.dataset == "mnist":
        data = load_mnist(config.source)
        if config.train_per_class:
            keep = (
                torch.cat(
                    [
                        (data.train_y == c).nonzero().flatten()[: config.train_per_class]
                        for c in range(10)
                    ]
                )
                .sort()
                .values
            )
            data.train_x, data.train_y = data.train_x[keep], data.train_y[keep]
        return data
    source = None if config.source == "env" else config.source
    return load_cifar10(source, train_per_class=config.train_per_class)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = CHUNK) -> float:
    """Fraction of ``x`` classified as ``y``.

    Like every function that takes a model, it refuses inputs on another device than the
    model's parameters (move them with ``x.to(device)``) instead of copying them silently.

    Args:
        model: classifier returning scores ``(B, C)``.
        x: inputs ``(N, *input_shape)``, on the model's device.
        y: labels ``(N,)``, on the same device.
        chunk: images per forward pass.

    Returns:
        The accuracy in [0, 1].

    Introduced in the chapter "The pipeline end to end".
    """
    check_input(model, x)
    check_positive(chunk, "chunk", integer=True)
    if not isinstance(y, torch.Tensor) or y.shape != (x.shape[0],) or y.is_floating_point():
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"y must be (N,) = ({x.shape[0]},) integer labels, got {shape}")
    if y.device != x.device:
        raise ValueError(f"y is on {y.device} but x is on {x.device}; move them to one device")
    correct = 0
    with torch.no_grad(), eval_mode(model):
        for xc, yc in zip(x.split(chunk), y.split(chunk), strict=True):
            correct += int((forward_scores(model, xc).argmax(1) == yc).sum())
    return correct / len(y)


def _atomic_save(obj: object, path: Path) -> None:
    """Write to a temporary file in the same folder, then rename: never a half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def checkpoint_path(
    config: TrainConfig, epoch: int | None = None, *, cache_dir: str | os.PathLike | None = None
) -> Path:
    """Where :func:`cached_train` keeps the checkpoint of ``config`` at ``epoch``.

    The one way for scripts to find a cached checkpoint (to check that it exists without
    training, or to hash it): never build the path by hand.

    Args:
        config: the training configuration.
        epoch: the epoch (default: the last, ``config.epochs``).
        cache_dir: the cache root (default ``data_home()/models``, as :func:`cached_train`).

    Returns:
        The path of ``epoch-NNN.pt`` (it may not exist yet).

    Introduced in the chapter "The pipeline end to end".
    """
    root = Path(cache_dir) if cache_dir is not None else data_home() / "models"
    want = config.epochs if epoch is None else epoch
    return root / f"{config.arch}-{config.key()}" / f"epoch-{want:03d}.pt"


def load_checkpoint(path: str | os.PathLike, config: TrainConfig | None = None) -> dict:
    """Load a checkpoint written by :func:`train`, checking that it fits ``config``.

    Args:
        path: the checkpoint file.
        config: if given, the checkpoint must have been written for this configuration.

    Returns:
        The checkpoint dictionary (``config``, ``epoch``, ``model``, ``optimizer``,
        ``history``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a manifoldlib checkpoint, is corrupt, or belongs to another
            configuration or architecture.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure means a bad file
        raise ValueError(f"cannot read checkpoint {path}: {err} (corrupt or truncated?)") from err
    if not isinstance(ckpt, dict) or "config" not in ckpt or "model" not in ckpt:
        raise ValueError(f"{path} is not a manifoldlib checkpoint")
    if config is not None and ckpt["config"] != config.to_dict():
        theirs, ours = ckpt["config"], config.to_dict()
        diff = {k: (theirs.get(k), ours[k]) for k in ours if theirs.get(k) != ours[k]}
        raise ValueError(
            f"checkpoint {path} was written for another configuration; differing settings "
            f"(checkpoint, requested): {diff}"
        )
    return ckpt


def _load_state(model: nn.Module, state: dict, path: Path) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise ValueError(
            f"checkpoint {path} does not fit this model's architecture: {err}"
        ) from err


def train(
    config: TrainConfig,
    *,
    data: ImageData | ToyData | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> TrainResult:
    """Train a model with SGD as in the paper, tracking the mean trace of G.

    Args:
        config: what to train.
        data: the data (loaded from ``config`` if None).
        checkpoint_dir: write ``epoch-NNN.pt`` there after every epoch and resume from the last
            one found (None: no checkpoints).
        device: where to train.
        progress: show a tqdm bar (off by default).

    Returns:
        A :class:`TrainResult` with the model in eval mode on ``device``.

    Introduced in the chapter "Training and the trace of G".
    """
    data = data if data is not None else load_data(config)
    device = torch.device(device)
    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    with _threads(config.threads):
        model = config.build().to(device)
        opt = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
        history: dict[str, list] = {
            k: []
            for k in (
                "step",
                "epoch",
                "trace",
                "trace_stderr",
                "rank_min",
                "rank_max",
                "loss",
                "epoch_test_accuracy",
            )
        }
        start_epoch, checkpoints = 0, []
        if ckdir is not None and ckdir.is_dir():
            found = sorted(ckdir.glob("epoch-*.pt"))
            if found:
                ckpt = load_checkpoint(found[-1], config)
                _load_state(model, ckpt["model"], found[-1])
                opt.load_state_dict(ckpt["optimizer"])
                history, start_epoch, checkpoints = ckpt["history"], ckpt["epoch"], found

        ref = data.train_x[:: config.trace_stride][: config.trace_batch].to(device)
        trace_gen = torch.Generator().manual_seed(config.seed + 1)
        n = len(data.train_y)
        steps_per_epoch = config.epoch_steps or math.ceil(n / config.batch_size)
        step = start_epoch * steps_per_epoch
        losses: list[float] = []

        def record() -> None:
            m = mean_trace(model, ref, method=config.trace_method, generator=trace_gen)
            history["step"].append(step)
            history["epoch"].append(step / steps_per_epoch)
            history["trace"].append(m.mean)
            history["trace_stderr"].append(m.mean_stderr)
            history["rank_min"].append(m.rank_min)
            history["rank_max"].append(m.rank_max)
            history["loss"].append(sum(losses) / len(losses) if losses else None)
            losses.clear()

        if config.trace_every and step == 0:
            record()
        total = (config.epochs - start_epoch) * steps_per_epoch
        with tqdm(total=total, disable=not progress, desc="training") as bar:
            for epoch in range(start_epoch, config.epochs):
                gen = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
                if config.epoch_steps is None:
                    order = torch.randperm(n, generator=gen)
                    starts = range(0, n, config.batch_size)
                else:
                    passes = math.ceil(config.epoch_steps * config.batch_size / n)
                    order = torch.cat([torch.randperm(n, generator=gen) for _ in range(passes)])
                    starts = range(0, config.epoch_steps * config.batch_size, config.batch_size)
                model.train()
                for i in starts:
                    idx = order[i : i + config.batch_size]
                    xb, yb = data.train_x[idx], data.train_y[idx]
                    if config.augment:
                        xb = _augment(xb, gen)
                    if config.shift:
                        xb = _shift(xb, config.shift, gen)
                    xb, yb = xb.to(device), yb.to(device)
                    opt.zero_grad(set_to_none=True)
                    loss = F.cross_entropy(model(xb), yb)
                    if not torch.isfinite(loss):
                        raise FloatingPointError(
                            f"training diverged at step {step} (loss {float(loss)}); lower lr"
                        )
                    loss.backward()
                    opt.step()
                    step += 1
                    losses.append(loss.item())
                    bar.update(1)
                    if config.trace_every and step % config.trace_every == 0:
                        model.eval()
                        record()
                        model.train()
                model.eval()
                history["epoch_test_accuracy"].append(accuracy(model, data.test_x, data.test_y))
                if ckdir is not None:
                    path = ckdir / f"epoch-{epoch + 1:03d}.pt"
                    _atomic_save(
                        {
                            "config": config.to_dict(),
                            "epoch": epoch + 1,
                            "model": {k: v.cpu() for k, v in model.state_dict().items()},
                            "optimizer": opt.state_dict(),
                            "history": history,
                        },
                        path,
                    )
                    checkpoints.append(path)
    model.eval()
    return TrainResult(model, config, history, list(checkpoints), "trained")


def _augment(xb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random 4-pixel-padded crops and horizontal flips (standard CIFAR-10 augmentation)."""
    b = xb.shape[0]
    flip = torch.rand(b, generator=gen) < 0.5
    xb = torch.where(flip.view(-1, 1, 1, 1), xb.flip(-1), xb)
    padded = F.pad(xb, (4, 4, 4, 4), mode="reflect")
    dx, dy = torch.randint(0, 9, (2, b), generator=gen)
    h, w = xb.shape[-2:]
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


def _shift(xb: torch.Tensor, shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``shift`` pixels in x and y, filling with the background.

    The background is the batch's smallest pixel value (MNIST's normalised 0).
    """
    b = xb.shape[0]
    fill = float(xb.amin())
    padded = F.pad(xb, (shift, shift, shift, shift), mode="constant", value=fill)
    dx, dy = torch.randint(0, 2 * shift + 1, (2, b), generator=gen)
    h, w = xb.shape[-2:]
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])


def _shipped_table() -> dict:
    if not SHIPPED_TABLE.is_file():
        return {}
    return json.loads(SHIPPED_TABLE.read_text())["models"]


def shipped_checkpoint(config: TrainConfig, epoch: int, *, download: bool = False) -> Path | None:
    """The repository's checkpoint of ``config`` at ``epoch``, if it ships one.

    A clone has the file in ``data/models``; an installed wheel fetches it with
    ``download=True`` (or ``$MANIFOLDLIB_DOWNLOAD=1``) once into ``data_home()``, checked
    against its SHA-256 in ``manifoldlib/shipped_models.json``.

    Args:
        config: the configuration.
        epoch: the epoch wanted.
        download: fetch the file when it is neither beside the package nor in the cache.

    Returns:
        The checkpoint's path, or None when the repository ships no such checkpoint or it is
        not available without a download that was not allowed.

    Introduced in the chapter "The pipeline end to end".
    """
    name = f"{config.arch}-{config.key()}"
    entry = _shipped_table().get(name)
    if entry is None or str(epoch) not in entry["epochs"]:
        return None
    download = download or os.environ.get("MANIFOLDLIB_DOWNLOAD") == "1"
    path = SHIPPED_MODELS / name / f"epoch-{epoch:03d}.pt"
    try:
        key = f"models/{name}/{path.name}"
        return bundled_file(path, download, sha256=entry["epochs"][str(epoch)], key=key)
    except FileNotFoundError:
        return None


def _epoch(config: TrainConfig, epoch: int | None) -> int:
    """``epoch`` checked against ``config`` (None: the last)."""
    want = config.epochs if epoch is None else epoch
    if isinstance(want, bool) or not isinstance(want, int) or not 1 <= want <= config.epochs:
        raise ValueError(f"epoch must be between 1 and {config.epochs}, got {epoch!r}")
    return want


def _shipped_pair(config: TrainConfig, epoch: int) -> tuple[Path | None, Path | None]:
    """The shipped checkpoints of ``epoch`` and of the last epoch (None where not shipped).

    :func:`cached_train` takes the shipped weights only when both are there (the last one
    holds the training history).
    """
    return shipped_checkpoint(config, epoch), shipped_checkpoint(config, config.epochs)


def model_checkpoint(
    config: TrainConfig,
    epoch: int | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    shipped: bool = True,
) -> Path:
    """The checkpoint file whose weights :func:`cached_train` returns for ``config`` at ``epoch``.

    The one way for scripts to find the weights the chapters compute on (to load them without
    training, or to hash them in a run record): the repository's shipped file
    (:func:`shipped_checkpoint`) when it ships this configuration at ``epoch`` and at its
    last epoch, as :func:`cached_train` requires, else the cache's file
    (:func:`checkpoint_path`, which may not exist yet). Never build either path by hand.

    Args:
        config: the training configuration.
        epoch: the epoch (default: the last, ``config.epochs``).
        cache_dir: the cache root (default ``data_home()/models``, as :func:`cached_train`).
        shipped: consider the shipped checkpoints (as ``cached_train(shipped=...)``).

    Returns:
        The path of ``epoch-NNN.pt``: in ``data/models`` (shipped) or in the cache.

    Raises:
        ValueError: ``epoch`` is not between 1 and ``config.epochs``.

    Introduced in the chapter "The pipeline end to end".
    """
    want = _epoch(config, epoch)
    if shipped:
        path, last_path = _shipped_pair(config, want)
        if path is not None and last_path is not None:
            return path
    return checkpoint_path(config, want, cache_dir=cache_dir)


def cached_train(
    config: TrainConfig,
    *,
    cache_dir: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    epoch: int | None = None,
    shipped: bool = True,
) -> TrainResult:
    """Train once, then reload: models are cached under a key of the full configuration.

    The repository ships the checkpoints its chapters use (:func:`shipped_checkpoint`); those
    are taken first, so that every reader computes on the same weights whatever their CPU
    (training on another CPU gives other weights: its kernels round differently).

    The cache folder is ``cache_dir/<arch>-<key>/`` (default ``data_home()/models``) and holds
    one checkpoint per epoch, so an interrupted training resumes, and any epoch's weights can
    be reloaded (the paper uses the checkpoint of epoch 10).

    Args:
        config: what to train.
        cache_dir: the cache root.
        device: where to train and put the model.
        progress: show a tqdm bar while training (off by default; the environment variable
            ``MANIFOLDLIB_PROGRESS=1``, which the chapters' set-up cell sets on Colab and
            Binder, turns it on where a first use trains for minutes).
        epoch: return the model of this epoch (default: the last).
        shipped: take the repository's checkpoint when it ships this configuration and epoch
            (False: the cache, or train on this machine).

    Returns:
        A :class:`TrainResult`; ``history`` always covers the whole training, and ``source``
        says where the weights came from.

    Introduced in the chapter "The pipeline end to end".
    """
    want = _epoch(config, epoch)
    if shipped:
        path, last_path = _shipped_pair(config, want)
        if path is not None and last_path is not None:
            history = load_checkpoint(last_path, config)["history"]
            model = config.build()
            _load_state(model, load_checkpoint(path, config)["model"], path)
            model.to(device).eval()
            return TrainResult(model, config, history, sorted({path, last_path}), "shipped")
    root = Path(cache_dir) if cache_dir is not None else data_home() / "models"
    folder = root / f"{config.arch}-{config.key()}"
    last = folder / f"epoch-{config.epochs:03d}.pt"
    source = "cache"
    if last.is_file():
        ckpt = load_checkpoint(last, config)
        history = ckpt["history"]
        checkpoints = sorted(folder.glob("epoch-*.pt"))
    else:
        progress = progress or os.environ.get("MANIFOLDLIB_PROGRESS") == "1"
        result = train(config, checkpoint_dir=folder, device=device, progress=progress)
        if epoch is None:
            return result
        history, checkpoints, source = result.history, result.checkpoints, "trained"
    path = folder / f"epoch-{want:03d}.pt"
    ckpt = load_checkpoint(path, config)
    model = config.build()
    _load_state(model, ckpt["model"], path)
    model.to(device).eval()
    return TrainResult(model, config, history, list(checkpoints), source)
