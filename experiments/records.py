"""The run record every results JSON of ``experiments/`` and ``benchmarks/`` carries.

One schema (``SCHEMA``), written under the key ``"run_record"``::

    {"schema": "manifoldlib-run-record/1", "command": [...], "commit": "<sha>", "dirty": bool,
     "torch": "2.x", "manifoldlib": "0.x", "python": "3.x", "profile": "book",
     "checkpoints": {"<name>": "<sha256>"}, "threads": int,
     "started_utc": "...", "finished_utc": "...", "wall_s": float, "cpu_s": float}

Usage::

    record = RunRecord.start()
    record.checkpoint("mnist", config, epoch)       # the SHA-256 of the weights it used
    ...
    write_json(path, payload, record)                # payload + {"run_record": record.finish()}

Results files written before this record existed name the commit that produced them in
``experiments/README.md``.
"""

from __future__ import annotations

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
    """The commit of the checkout (full SHA) and whether tracked files differ from it."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _utc() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class RunRecord:
    """How one run was made: started with :meth:`start`, closed by :meth:`finish`."""

    started_utc: str
    wall0: float
    cpu0: float
    checkpoints: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(cls) -> RunRecord:
        """Start the clocks (wall and this process's CPU time)."""
        return cls(started_utc=_utc(), wall0=time.perf_counter(), cpu0=time.process_time())

    def checkpoint(self, name: str, config: ml.TrainConfig, epoch: int) -> None:
        """Record the SHA-256 of the checkpoint file of ``config`` at ``epoch`` (if present)."""
        path = ml.training.checkpoint_path(config, epoch)
        self.checkpoints[name] = sha256_file(path) if path.is_file() else "missing"

    def finish(self) -> dict:
        """The record, with the end time and the wall and CPU seconds so far."""
        commit, dirty = git_state()
        return {
            "schema": SCHEMA,
            "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
            "commit": commit,
            "dirty": dirty,
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


def write_json(path: str | os.PathLike, payload: dict, record: RunRecord) -> dict:
    """Write ``payload`` with ``"run_record"`` (finished now) as indented JSON; return it."""
    out = {**payload, "run_record": record.finish()}
    Path(path).write_text(json.dumps(out, indent=1, default=str) + "\n")
    return out
