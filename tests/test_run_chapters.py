"""CI's chapter scheduler (tools/run_chapters.py): every chapter under every kernel set it owes.

Mutations that fail here: the default stage leaving out a chapter; a kernel stage running a
chapter `.ci/kernel-chapters.txt` excludes (or missing one it lists); jobs not ordered longest
first; a kernel set losing its one-thread setting.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("run_chapters", ROOT / "tools" / "run_chapters.py")
run_chapters = importlib.util.module_from_spec(spec)
sys.modules["run_chapters"] = run_chapters  # dataclasses look their module up there
spec.loader.exec_module(run_chapters)


def test_plan_covers_every_chapter_and_the_kernel_list():
    jobs = run_chapters.plan(["default", "sse4", "avx2"], None)
    chapters = sorted(
        p.relative_to(ROOT).as_posix() for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb")
    )
    listed = [
        s.strip()
        for s in (ROOT / ".ci" / "kernel-chapters.txt").read_text().splitlines()
        if s.strip() and not s.startswith(("#", "-"))
    ]
    assert sorted(j.chapter for j in jobs if j.stage == "default") == chapters
    for stage in ("sse4", "avx2"):
        assert sorted(j.chapter for j in jobs if j.stage == stage) == sorted(listed)
    est = [j.estimate for j in jobs]
    assert est == sorted(est, reverse=True)  # longest first


def test_kernel_sets_differ_from_the_default_and_use_one_thread():
    for stage in ("sse4", "avx2"):
        env = run_chapters.STAGES[stage]
        assert env["OMP_NUM_THREADS"] == "1"
        assert {"ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS"} <= set(env)
    assert set(run_chapters.STAGES["default"]) == {"OMP_WAIT_POLICY"}  # kernels untouched


def test_bad_worker_count_is_refused():
    with pytest.raises(SystemExit):
        run_chapters.main(["--workers", "0", "--log-dir", "/tmp/run-chapters-test"])
