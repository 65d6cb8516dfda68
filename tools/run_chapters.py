"""CI's chapter stages: every chapter, strict nbval, from fresh clones, under three kernel sets.

A *stage* is one kernel set: ``default`` (this machine's kernels, torch's default thread
count), ``sse4`` and ``avx2`` (other instruction sets and summation orders, one thread each;
the chapters listed in ``.ci/kernel-chapters.txt``). Each stage gets a fresh clone of this
repository in a folder with nothing beside it (no ``../shared``) and an empty model cache,
as a new reader has; the chapters load the checkpoints the repository ships.

The stages used to run one after the other (the default stage, then the other two side by
side); the chapters' times differ by two orders of magnitude, so one core idled for minutes
at the end of each stage. Here every (stage, chapter) pair is a job, and ``--workers``
processes take the jobs longest first (an estimate per chapter from ``.ci/chapter-seconds.json``,
scaled per stage), which keeps both cores busy to the end. Each job is the README's own
command on one notebook: ``pytest book/NN_x.ipynb`` (strict nbval, ``pyproject.toml``'s
options), with ``PYTHONPATH`` set to the clone so that the clone's ``manifoldlib`` is imported.

Prints one line per finished job and, at the end, the failed jobs' logs, the per-stage
totals and the slowest jobs; writes the measured seconds to ``LOG_DIR/chapter-seconds.json``
(copy it over ``.ci/chapter-seconds.json`` to refresh the estimates). Exit status 1 if any
job failed.

Usage (from the repository root)::

    python tools/run_chapters.py --workers 2 --log-dir .ci-chapters
    python tools/run_chapters.py --stages default --chapters book/02_frobenius.ipynb
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: The README's own command, as a reader types it (not ``python -m pytest``).
PYTEST = shutil.which("pytest") or "pytest"
#: The kernel sets (README, "On your machine"); ``threads`` None keeps torch's default.
STAGES: dict[str, dict[str, str]] = {
    # Torch's default thread count (2 here), but idle OpenMP threads sleep instead of spinning:
    # a 2-thread chapter next to another job spun so hard that chapter 7 took 900 s, not 80.
    "default": {"OMP_WAIT_POLICY": "PASSIVE"},
    "sse4": {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "OMP_NUM_THREADS": "1",
    },
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "OMP_NUM_THREADS": "1",
    },
}
#: How much slower a chapter runs under each set than with this machine's kernels (measured:
#: the two other-kernel stages against the default stage of the same CI run). Only orders jobs.
SLOWDOWN = {"default": 1.0, "sse4": 2.4, "avx2": 1.6}
#: The pytest jobs running now, by PID (only those this process started).
RUNNING: dict[int, subprocess.Popen] = {}


def _stop(signum: int, frame: object) -> None:
    """On SIGTERM, end the pytest jobs this process started, then exit."""
    for proc in list(RUNNING.values()):
        proc.terminate()
    raise SystemExit(128 + signum)


@dataclass
class Job:
    """One chapter under one kernel set."""

    stage: str
    chapter: str
    estimate: float
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    returncode: int | None = None
    log: Path = field(default=Path())


def kernel_chapters(root: Path = ROOT) -> list[str]:
    """The chapters ``.ci/kernel-chapters.txt`` lists for the other kernel sets."""
    lines = (root / ".ci" / "kernel-chapters.txt").read_text().splitlines()
    return [s.strip() for s in lines if s.strip() and not s.startswith(("#", "-"))]


def all_chapters(root: Path = ROOT) -> list[str]:
    """Every chapter notebook of the book, ``book/NN_x.ipynb``."""
    return sorted(str(p.relative_to(root)) for p in (root / "book").glob("[0-9][0-9]_*.ipynb"))


def estimates(root: Path = ROOT) -> dict[str, dict[str, float]]:
    """Seconds per chapter and stage, from ``.ci/chapter-seconds.json`` (may be empty)."""
    path = root / ".ci" / "chapter-seconds.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    return {s: v for s, v in data.items() if s in STAGES and isinstance(v, dict)}


def fresh_clone(parent: Path) -> Path:
    """A clone of this repository's HEAD in ``parent/clone``, nothing beside it but a cache."""
    clone = parent / "clone"
    subprocess.run(
        ["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True, cwd=parent
    )
    if (parent / "shared").exists():
        raise RuntimeError(f"{parent}/shared must not exist: a reader's clone has no shared data")
    return clone


def run_job(job: Job, clone: Path, cache: Path, log_dir: Path) -> Job:
    """Run one chapter with its stage's kernel set.

    Fills ``seconds``, ``cpu_seconds``, ``returncode`` and ``log`` (which ends with pytest's
    slowest cells, ``--durations``).
    """
    env = {k: v for k, v in os.environ.items() if k not in ("MANIFOLDLIB_CIFAR10",)}
    env.update(STAGES[job.stage])
    env.update({"MANIFOLDLIB_DATA": str(cache), "PYTHONPATH": str(clone)})
    job.log = log_dir / f"{job.stage}-{Path(job.chapter).stem}.log"
    start = time.perf_counter()
    with job.log.open("w") as out:
        proc = subprocess.Popen(
            [PYTEST, job.chapter, "-q", "-p", "no:cacheprovider", "--durations=6"],
            cwd=clone,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        RUNNING[proc.pid] = proc
        # wait4, not wait: the job's own CPU seconds (user + system, its kernel's included),
        # which tell work from waiting when two jobs share the cores.
        _, status, usage = os.wait4(proc.pid, 0)
        RUNNING.pop(proc.pid, None)
    job.seconds = time.perf_counter() - start
    job.cpu_seconds = usage.ru_utime + usage.ru_stime
    job.returncode = os.waitstatus_to_exitcode(status)
    return job


def plan(stages: list[str], chapters: list[str] | None, root: Path = ROOT) -> list[Job]:
    """Every (stage, chapter) job, longest estimate first.

    A job's estimate is its stage's measured seconds where ``.ci/chapter-seconds.json`` has
    them, else the default stage's times ``SLOWDOWN``, else the mean.
    """
    est = estimates(root)
    base = est.get("default", {})
    mean = sum(base.values()) / len(base) if base else 60.0
    jobs = []
    for stage in stages:
        names = all_chapters(root) if stage == "default" else kernel_chapters(root)
        if chapters:
            names = [c for c in names if c in chapters]
        own = est.get(stage, {})
        jobs += [Job(stage, c, own.get(c, base.get(c, mean) * SLOWDOWN[stage])) for c in names]
    return sorted(jobs, key=lambda j: -j.estimate)


def main(argv: list[str] | None = None) -> int:
    """Run the planned jobs over ``--workers`` processes; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--stages", nargs="+", default=list(STAGES), choices=list(STAGES))
    ap.add_argument("--chapters", nargs="*", help="only these chapters (book/NN_x.ipynb)")
    ap.add_argument("--log-dir", type=Path, default=ROOT / ".ci-chapters")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    if args.workers < 1:
        ap.error(f"--workers must be at least 1, got {args.workers}")
    log_dir = args.log_dir.resolve()
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    jobs = plan(args.stages, args.chapters)
    tmp = Path(tempfile.mkdtemp(prefix="chapters-"))
    places = {}
    for stage in args.stages:
        (tmp / stage).mkdir()
        places[stage] = (fresh_clone(tmp / stage), tmp / stage / "cache")
    print(
        f"{len(jobs)} jobs over {args.workers} workers: "
        + ", ".join(f"{s} {sum(j.stage == s for j in jobs)}" for s in args.stages),
        flush=True,
    )
    t0 = time.perf_counter()
    done: list[Job] = []
    try:
        # The pool starts jobs in submission order (longest first), two at a time.
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(run_job, job, *places[job.stage], log_dir) for job in jobs]
            for fut in as_completed(futures):
                job = fut.result()
                done.append(job)
                status = "passed" if job.returncode == 0 else f"FAILED ({job.returncode})"
                print(
                    f"[{time.perf_counter() - t0:6.0f}s] {job.stage:7s} {job.chapter:45s}"
                    f" {job.seconds:6.1f}s ({job.cpu_seconds:6.1f} CPU-s) {status}",
                    flush=True,
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    failed = [j for j in done if j.returncode != 0]
    for job in failed:
        print(f"\n===== {job.stage} {job.chapter}: log\n{job.log.read_text()}")
    for stage in args.stages:
        sec = sum(j.seconds for j in done if j.stage == stage)
        cpu = sum(j.cpu_seconds for j in done if j.stage == stage)
        n = sum(j.stage == stage for j in done)
        print(f"stage {stage}: {n} chapters, {sec:.0f} s of chapter time, {cpu:.0f} CPU-s")
    print(
        "slowest jobs: "
        + ", ".join(
            f"{j.stage}/{Path(j.chapter).stem[:2]} {j.seconds:.0f}s"
            for j in sorted(done, key=lambda j: -j.seconds)[:8]
        )
    )
    print(f"all chapter stages: {time.perf_counter() - t0:.0f} s wall, {len(failed)} failed")
    measured = {
        s: {j.chapter: round(j.seconds, 1) for j in done if j.stage == s} for s in args.stages
    }
    measured["cpu_seconds"] = {
        s: {j.chapter: round(j.cpu_seconds, 1) for j in done if j.stage == s} for s in args.stages
    }
    (log_dir / "chapter-seconds.json").write_text(json.dumps(measured, indent=1) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
