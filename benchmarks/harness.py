"""Timing harness: measure a callable by wall and process CPU time, repeat, summarise.

Used by every benchmark case (:mod:`benchmarks.cases`). Measurements of the reference and of
manifoldlib are interleaved repeat by repeat by the cases, so that both see the same load;
this module only measures and summarises. The machine description (CPU, threads, load
average) lives here too, since every figure is reported with it.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(fn: Callable[[], object], device: str = "cpu") -> tuple[float, float, object]:
    """Run ``fn`` once; return (wall seconds, process CPU seconds, its result)."""
    _sync(device)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    _sync(device)
    return time.perf_counter() - wall, time.process_time() - cpu, out


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


class Series:
    """Repeated measurements of one thing: work units per second, by wall and CPU time."""

    def __init__(self, name: str, unit: str) -> None:
        self.name, self.unit = name, unit
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.rate_wall: list[float] = []
        self.rate_cpu: list[float] = []

    def add(self, wall: float, cpu: float, work: float) -> None:
        self.wall.append(wall)
        self.cpu.append(cpu)
        self.rate_wall.append(work / wall)
        self.rate_cpu.append(work / cpu if cpu > 0 else float("nan"))

    def summary(self) -> dict:
        return {
            "name": self.name,
            "unit": self.unit,
            "repeats": len(self.wall),
            "median_rate_wall": median(self.rate_wall),
            "median_rate_cpu": median(self.rate_cpu),
            "rates_wall": [round(r, 4) for r in self.rate_wall],
            "median_wall_s": median(self.wall),
            "median_cpu_s": median(self.cpu),
        }


def ratio(ours: Series, ref: Series) -> dict:
    """Ratios ours / reference of the median rates (wall and CPU)."""
    return {
        "wall": median(ours.rate_wall) / median(ref.rate_wall),
        "cpu": median(ours.rate_cpu) / median(ref.rate_cpu),
    }


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (None where the OS has none)."""
    if hasattr(os, "getloadavg"):
        return [round(v, 2) for v in os.getloadavg()]
    return None


def machine_info() -> dict:
    """CPU model, cores, torch version and threads, load."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu_model": cpu,
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "manifoldlib": _ml_version(),
    }
    info["load_average_start"] = load_average()
    info["sched_affinity_cpus"] = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    )
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=False,
        ).stdout.strip()
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _ml_version() -> str:
    import manifoldlib as ml

    return getattr(ml, "__version__", "?")
