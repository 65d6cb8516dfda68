"""book/foliation_explorer/explorer.html is the file its sources generate, byte for byte."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "book" / "foliation_explorer"
SOURCES = ("explorer.css", "explorer.js", "explorer_body.html", "weights.json")


def test_explorer_html_is_generated_from_its_sources(tmp_path, monkeypatch):
    """Fails when explorer.js/.css/_body.html or weights.json changed without regenerating.

    Regenerate with ``PYTHONPATH=$PWD python tools/export_toy_explorer.py --html``.
    """
    spec = importlib.util.spec_from_file_location(
        "export_toy_explorer", ROOT / "tools" / "export_toy_explorer.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    for name in SOURCES:
        shutil.copy(FOLDER / name, tmp_path / name)
    monkeypatch.setattr(tool, "OUT", tmp_path)
    fresh = tool.write_html().read_text()
    committed = (FOLDER / "explorer.html").read_text()
    assert fresh == committed, (
        "explorer.html is stale: run `PYTHONPATH=$PWD python tools/export_toy_explorer.py --html`"
    )
