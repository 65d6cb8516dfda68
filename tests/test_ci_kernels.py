"""CI's other-kernel stages cover every chapter, or say why one is left to the default stage."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LIST = ROOT / ".ci" / "kernel-chapters.txt"


def test_every_chapter_is_run_under_other_kernels_or_excluded_with_a_reason():
    chapters = sorted(
        p.relative_to(ROOT).as_posix() for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb")
    )
    included, excluded = [], {}
    for line in LIST.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("- "):
            path, _, reason = line[2:].partition(":")
            assert len(reason.strip()) > 20, f"{path}: say why it is left out"
            excluded[path.strip()] = reason
        else:
            included.append(line.strip())
    assert sorted(included + list(excluded)) == chapters  # each chapter exactly once
    assert len(included) >= len(chapters) // 2  # the exception stays the exception
