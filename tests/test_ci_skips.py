"""Under CI=true a skipped browser or ci_required test fails (tests/conftest.py); else it skips.

Runs pytest in a subprocess on a throw-away folder holding a copy of this folder's
``conftest.py`` and three skipping tests. Fails if the hook is removed (the two marked tests
skip under CI too) or if it turns every skip into a failure (the unmarked one fails).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

TESTS = """
import pytest


@pytest.mark.ci_required
def test_needs_shared():
    pytest.skip("no ../shared")


@pytest.mark.browser
def test_needs_chromium():
    pytest.skip("no Chromium")


def test_optional():
    pytest.skip("optional")
"""


def _run(folder: Path, ci: bool) -> dict[str, int]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    tail = out.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (failed|passed|skipped)", tail)}


def test_ci_turns_the_skips_of_required_tests_into_failures(tmp_path):
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_skips.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    browser: a browser test\n")
    assert _run(tmp_path, ci=False) == {"skipped": 3}
    assert _run(tmp_path, ci=True) == {"failed": 2, "skipped": 1}
