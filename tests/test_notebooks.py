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


# --- Cross-references and citations (issue 14): every target resolves -------------------

_ROLE = r"(?<!`)\{%s\}`([^`\n]+)`"


def book_sources() -> dict[str, str]:
    """The markdown text of every page of the book: .md files and notebooks' markdown cells."""
    sources = {}
    for path in sorted((ROOT / "book").glob("*.md")):
        sources[path.name] = path.read_text()
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        cells = [c for c in nb["cells"] if c["cell_type"] == "markdown"]
        sources[path.name] = "\n\n".join("".join(c["source"]) for c in cells)
    return sources


def _without_code(text: str) -> str:
    """Drop fenced code blocks (``` only; directive fences hold prose) and inline code."""
    text = re.sub(r"^(`{3,})(?!\{).*?^\1\s*$", "", text, flags=re.M | re.S)
    return re.sub(r"``[^`\n]*``", "", text)


def _targets(role: str, text: str) -> list[str]:
    """The targets of a MyST role, `{role}`target`` or `{role}`text <target>``."""
    found = []
    for body in re.findall(_ROLE % role, _without_code(text)):
        m = re.search(r"<([^<>]+)>\s*$", body)
        found.append((m.group(1) if m else body).strip())
    return found


def defined_labels(sources: dict[str, str]) -> tuple[set[str], set[str]]:
    """(labels of prf directives, every label: prf, exercises, `(label)=` targets, equations)."""
    prf, every = set(), set()
    for text in sources.values():
        for m in re.finditer(
            r"^(`{3,}|:{3,})\{([\w:-]+)\}[^\n]*\n(.*?)^\1\s*$", text, flags=re.M | re.S
        ):
            label = re.search(r"^:label:\s*(\S+)", m.group(3), flags=re.M)
            if label:
                every.add(label.group(1))
                if m.group(2).startswith("prf:"):
                    prf.add(label.group(1))
        every.update(re.findall(r"^\(([\w:.-]+)\)=\s*$", text, flags=re.M))
        every.update(re.findall(r"\$\$\s*\(([\w:.-]+)\)", text))
    return prf, every


def test_every_cross_reference_and_citation_resolves():
    sources = book_sources()
    prf, every = defined_labels(sources)
    bib = set(
        re.findall(r"^@\w+\{([^,\s]+),", (ROOT / "book" / "references.bib").read_text(), flags=re.M)
    )
    pages = {p.stem for p in (ROOT / "book").iterdir() if p.suffix in (".md", ".ipynb")}
    broken = []
    for name, text in sources.items():
        broken += [f"{name}: {{prf:ref}} {t}" for t in _targets("prf:ref", text) if t not in prf]
        broken += [f"{name}: {{ref}} {t}" for t in _targets("ref", text) if t not in every]
        broken += [f"{name}: {{eq}} {t}" for t in _targets("eq", text) if t not in every]
        for role in ("cite", "cite:t", "cite:p", "cite:ps", "cite:ts", "cite:alp"):
            for keys in _targets(role, text):
                broken += [
                    f"{name}: {{cite}} {k}" for k in re.split(r"[,;]\s*", keys) if k not in bib
                ]
        for t in re.findall(r"^(?:`{3,}|:{3,})\{solution(?:-start)?\}\s*(\S+)", text, flags=re.M):
            if t not in every:
                broken.append(f"{name}: {{solution}} of an unknown exercise {t}")
        for t in _targets("doc", text):
            page = (
                t.removeprefix("/book/")
                .removeprefix("/")
                .removesuffix(".md")
                .removesuffix(".ipynb")
            )
            if page not in pages:
                broken.append(f"{name}: {{doc}} {t}")
    assert not broken, "unresolved references:\n" + "\n".join(broken)


def test_reference_checker_sees_what_it_should():
    text = (
        "(sec-a)=\n# A\n:::{prf:definition} G\n:label: def-g\n\nText.\n:::\n"
        "$$ x $$ (eq-x)\n"
        "See {prf:ref}`def-g`, {prf:ref}`the matrix <def-g>`, {cite:t}`k1,k2`, {doc}`ch <01_x>`, "
        "not `{cite}`nope`` in code.\n```python\n{cite}`nope`\n```\n"
    )
    prf, every = defined_labels({"x": text})
    assert prf == {"def-g"} and every == {"def-g", "sec-a", "eq-x"}
    assert _targets("prf:ref", text) == ["def-g", "def-g"]
    assert _targets("cite:t", text) == ["k1,k2"] and _targets("cite", text) == []
    assert _targets("doc", text) == ["01_x"]


def test_readme_shows_the_two_commands():
    readme = (ROOT / "README.md").read_text()
    assert "pytest" in readme and "pip install" in readme


def test_readme_python_examples_run():
    """Every ```python block of the README runs, on a small model and batch bound to its names.

    The README's examples use ``model``, ``x``, ``v``, ``source``, ``target``, ``lo``, ``hi``,
    ``start`` and ``direction`` as placeholders for the reader's own; they are bound here to a
    small float64 ReLU network and random inputs, and each block is executed as written.
    """
    import torch

    import manifoldlib as ml

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert blocks, "the README has no Python example"
    torch.manual_seed(0)
    model = ml.MLP(6, hidden=(8,), num_classes=3).double().eval()
    gen = torch.Generator().manual_seed(0)

    def batch():
        return torch.rand(2, 6, generator=gen, dtype=torch.float64)

    for code in blocks:
        names = {
            "model": model,
            "x": batch(),
            "v": batch(),
            "source": batch(),
            "target": batch(),
            "lo": 0.0,
            "hi": 1.0,
            "start": batch(),
            "direction": batch(),
        }
        exec(compile(code, "README.md", "exec"), names)  # noqa: S102 - the README's own code
