"""tools/chapter_times.py: per-chapter totals from a durations report and a balanced split."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
import chapter_times as ct  # noqa: E402

sys.path.pop(0)

REPORT = """\
============================= slowest durations ==============================
71.20s call     book/00_pipeline.ipynb::Cell 12
40.00s call     book/18_computing_fast.ipynb::Cell 9
30.00s call     book/16_riemannian_length.ipynb::Cell 3
3.10s call     book/08_horizontal_paths.ipynb::Cell 4
0.50s setup    book/18_computing_fast.ipynb::Cell 0
12 passed in 150.0s
"""


def test_durations_report_and_split():
    cells = ct.from_log(REPORT)
    assert len(cells) == 5 and cells[0] == ("book/00_pipeline.ipynb", "Cell 12", 71.2)
    totals = {}
    for chapter, _, sec in cells:
        totals[chapter] = totals.get(chapter, 0.0) + sec
    groups = ct.split(totals, 2)
    assert groups == [
        ["book/00_pipeline.ipynb"],
        ["book/08_horizontal_paths.ipynb", "book/16_riemannian_length.ipynb",
         "book/18_computing_fast.ipynb"],
    ]  # fmt: skip
    assert sorted(c for g in ct.split(totals, 3) for c in g) == sorted(totals)


def test_notebook_time_stamps_cover_every_chapter():
    chapters = {c for c, _, _ in ct.from_notebooks()}
    book = Path(__file__).resolve().parents[1] / "book"
    assert chapters == {f"book/{p.name}" for p in book.glob("*.ipynb")}
