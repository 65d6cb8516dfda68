"""Notebook hygiene: what nbval cannot see (a cleared notebook passes nbval silently)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def toc_files() -> list[str]:
    toc = (ROOT / "_toc.yml").read_text()
    return re.findall(r"file:\s*([^\s#]+)", toc) + [re.search(r"root:\s*(\S+)", toc).group(1)]


def toc_notebooks() -> list[Path]:
    return [ROOT / f"{f}.ipynb" for f in toc_files() if (ROOT / f"{f}.ipynb").exists()]


def test_every_toc_entry_exists():
    for f in toc_files():
        assert any((ROOT / f"{f}{ext}").exists() for ext in (".ipynb", ".md")), f


def test_every_notebook_in_book_is_in_the_toc():
    listed = {p.resolve() for p in toc_notebooks()}
    for nb in (ROOT / "book").glob("*.ipynb"):
        assert nb.resolve() in listed, f"{nb.name} is not in _toc.yml"


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.name)
def test_notebook_was_run_top_to_bottom_without_errors(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), f"execution counts {counts}: Restart & Run All"
    uses_widgets = False
    for c in code:
        for out in c.get("outputs", []):
            assert out.get("output_type") != "error", f"stored error: {out.get('ename')}"
            if out.get("name") == "stderr":
                text = "".join(out.get("text", ""))
                assert not re.search(r"Warning|Traceback", text), f"stderr warning: {text[:200]}"
            if WIDGET_VIEW in out.get("data", {}):
                uses_widgets = True
    if uses_widgets:
        state = nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE, {})
        assert state.get("state"), "widgets shown but no widget state saved in the metadata"
    assert path.stat().st_size < 3_000_000, "keep chapters light (smaller figures)"


@pytest.mark.parametrize("path", toc_notebooks(), ids=lambda p: p.name)
def test_chapter_follows_the_template(path):
    nb = json.loads(path.read_text())
    text = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    heads = [h.strip().lower() for h in re.findall(r"^#{2}\s+(.+)$", text, flags=re.M)]
    for required in ("overview", "prerequisites", "summary", "exercises"):
        assert required in heads, f"{path.name}: missing section '## {required.title()}'"
    assert heads.index("overview") < heads.index("prerequisites") < heads.index("summary")
    assert heads.index("summary") < heads.index("exercises")
    assert re.match(r"^# ", text), "a chapter starts with its '# Title'"


def test_readme_shows_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "pytest" in readme and "pip install" in readme
