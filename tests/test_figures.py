"""Every output figure of the chapters has a caption and alt text (book/figures.yml).

`tools/annotate_figures.py --check` fails when a chapter's cell metadata differs from the
table (re-apply it after re-executing a chapter) or when a code cell shows an image that has
no entry in the table. The browser test checks the same on the built pages.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import annotate_figures as af  # noqa: E402


def test_table_is_applied_to_every_figure():
    assert af.main(["--check"]) == 0, "run `python tools/annotate_figures.py` (see its output)"


def test_an_image_without_an_entry_is_reported():
    nb = json.loads((ROOT / "book" / "13_ood_detection.ipynb").read_text())
    table = af.yaml.safe_load(af.TABLE.read_text())
    entries = copy.deepcopy(table["13_ood_detection"])
    entries.pop(next(iter(entries)))
    problems = af.annotate(nb, entries, "13_ood_detection")
    assert any("no entry" in p for p in problems), problems
