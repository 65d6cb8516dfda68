"""The run record every results JSON of ``experiments/`` and ``benchmarks/`` carries.

One schema (``SCHEMA``), written under the key ``"run_record"``::

    {"schema": "manifoldlib-run-record/1", "command": [...], "commit": "<sha>", "dirty": bool,
     "torch": "2.x", "manifoldlib": "0.x", "python": "3.x", "profile": "book",
     "checkpoints": {"<name>": "<sha256>"}, "threads": int,
     "started_utc": "...", "finished_utc": "...", "wall_s": float, "cpu_s": float}

Usage::

    record = RunRecord.start()
    model = load_model(config, epoch)                # shipped, else cached; never trains
    record.checkpoint("mnist", config, epoch)       # the SHA-256 of that same file
    ...
    write_json(path, payload, record)                # payload + {"run_record": record.finish()}

Results files written before this record existed name the commit that produced them in
``experiments/README.md``.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

import manifoldlib as ml

SCHEMA = "manifoldlib-run-record/1"
ROOT = Path(__file__).resolve().parents[1]
#: The keys of a finished record, in order (tests/test_records.py checks them).
KEYS = (
    "schema",
    "command",
    "commit",
    "dirty",
    "torch",
    "manifoldlib",
    "python",
    "profile",
    "checkpoints",
    "threads",
    "started_utc",
    "finished_utc",
    "wall_s",
    "cpu_s",
)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], capture_output=True, text=True, cwd=ROOT, check=False, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_state() -> tuple[str | None, bool | None]:
    """The commit of the checkout (full SHA) and whether tracked files differ from it.

    Files under ``experiments/results/`` do not count: a run rewrites its own (tracked)
    results files while it runs, and runs beside each other rewrite theirs.
    """
    commit = _git("rev-parse", "HEAD")
    status = _git(
        "status", "--porcelain", "--untracked-files=no", "--", ".", ":!experiments/results"
    )
    return commit, (None if status is None else bool(status))


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(config: ml.TrainConfig, epoch: int) -> torch.nn.Module | None:
    """The model of ``config`` at ``epoch``, never trained here: None if its file is missing.

    Reads :func:`manifoldlib.training.model_checkpoint` (the shipped checkpoint the chapters
    load, else the cache's), the file :meth:`RunRecord.checkpoint` hashes. ``cached_train``
    would train when the last epoch is neither shipped nor cached; a study must never train.
    """
    path = ml.training.model_checkpoint(config, epoch)
    if not path.is_file():
        return None
    model = config.build()
    model.load_state_dict(ml.training.load_checkpoint(path, config)["model"])
    return model.eval()


def _utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunRecord:
    """How one run was made: started with :meth:`start`, closed by :meth:`finish`."""

    started_utc: str
    wall0: float
    cpu0: float
    commit: str | None = None
    dirty: bool | None = None
    checkpoints: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls) -> RunRecord:
        """Start the clocks (wall and this process's CPU time) and read the checkout's state.

        The commit and dirty flag are those at the start: the code a run imports is the code of
        that moment, and a long run may outlive several commits of the checkout it runs in.
        """
        commit, dirty = git_state()
        return cls(
            started_utc=_utc(),
            wall0=time.perf_counter(),
            cpu0=time.process_time(),
            commit=commit,
            dirty=dirty,
        )

    def checkpoint(self, name: str, config: ml.TrainConfig, epoch: int) -> None:
        """Record the SHA-256 of the weights of ``config`` at ``epoch`` (if present).

        The file is :func:`manifoldlib.training.model_checkpoint`'s: the shipped one the
        chapters load where the repository ships it, else the cache's (what
        :func:`load_model` loads).
        """
        path = ml.training.model_checkpoint(config, epoch)
        self.checkpoints[name] = sha256_file(path) if path.is_file() else "missing"

    def model(self, name: str, config: ml.TrainConfig, epoch: int) -> torch.nn.Module:
        """The study's checkpoint ``name``: loaded (:func:`load_model`, never trained), hashed.

        Raises:
            SystemExit: the checkpoint is neither shipped nor cached.
        """
        model = load_model(config, epoch)
        if model is None:
            raise SystemExit(f"checkpoint {name!r} is neither shipped nor cached")
        self.checkpoint(name, config, epoch)
        return model

    def finish(self) -> dict:
        """The record, with the end time and the wall and CPU seconds so far."""
        return {
            "schema": SCHEMA,
            "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
            "commit": self.commit,
            "dirty": self.dirty,
            "torch": torch.__version__,
            "manifoldlib": ml.__version__,
            "python": platform.python_version(),
            "profile": ml.current_profile().name,
            "checkpoints": dict(self.checkpoints),
            "threads": torch.get_num_threads(),
            "started_utc": self.started_utc,
            "finished_utc": _utc(),
            "wall_s": round(time.perf_counter() - self.wall0, 2),
            "cpu_s": round(time.process_time() - self.cpu0, 2),
        }


def write_csv(path: str | os.PathLike, rows: list[dict]) -> None:
    """Write ``rows`` (dicts with the same keys) as CSV, the first row's keys the header.

    Creates the folder when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def write_json(path: str | os.PathLike, payload: dict, record: RunRecord) -> dict:
    """Write ``payload`` with ``"run_record"`` (finished now) as indented JSON; return it."""
    out = {**payload, "run_record": record.finish()}
    Path(path).write_text(json.dumps(out, indent=1, default=str) + "\n")
    return out
