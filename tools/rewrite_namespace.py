"""Rewrite ``ml.<name>`` spellings to ``ml.<module>.<name>`` for names outside the core.

``import manifoldlib as ml`` exports only the core that the README teaches at the top level
(``manifoldlib.CORE``, under 40 names); every other public name lives in its module
(``ml.ood.energy_score``, ``ml.stats.auroc``). This tool rewrites code written for the old,
flat namespace:

- ``ml.<name>`` -> ``ml.<module>.<name>`` where ``name`` is public but not core;
- ``ml.<module>.<name>`` -> ``ml.<home>.<name>`` where ``module`` only re-exported ``name``
  (the removed aliases, e.g. ``ml.leaf.wilson_interval`` -> ``ml.stats.wilson_interval``);
- ``from manifoldlib import a, b`` and ``from manifoldlib.<module> import a, b`` (one line)
  -> one import per home module, where a name is not core (resp. not defined in that module);
- a few targeted spellings of removed aliases (:data:`TARGETED`: ``MeanTrace["trace"]``).

It edits the code cells of notebooks (``source`` only: outputs, ids and metadata are left as
they are; the JSON is written back the way Jupyter writes it), ``.py`` files and the
````python`` blocks of Markdown files, and is idempotent (a second run changes nothing).
With ``--prose`` it also rewrites the text (Markdown cells, whole ``.md`` files): the names
the chapters' prose mentions (``ml.leaf_split`` in chapter 15's text).
Changed ``.py`` files and notebooks are then formatted with ``ruff format`` (``--no-format``:
not), as the project's rules ask after code-cell edits; multi-line ``from manifoldlib import (``
blocks are reported, not rewritten.

Usage (from the repository root)::

    PYTHONPATH=$PWD python tools/rewrite_namespace.py manifoldlib tests      # rewrite in place
    PYTHONPATH=$PWD python tools/rewrite_namespace.py --check book experiments  # list, exit 1

Arguments are files or folders (folders: every ``.py``, ``.ipynb`` and ``.md`` below them,
``_build``, ``vendor`` and hidden folders skipped; a file holding the line
``# rewrite_namespace: skip`` is left as it is).
"""

# rewrite_namespace: skip
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import manifoldlib as ml

#: Every public name and the module that defines it (from the modules' ``__all__``).
HOME: dict[str, str] = {n: m for m in ml.MODULES for n in getattr(ml, m).__all__}
#: The names that stay at the top level.
CORE = frozenset(ml.__all__)
MODULES = frozenset(ml.MODULES)
#: ``(file suffix, pattern, replacement)``: spellings of removed aliases that no general rule
#: can see (``MeanTrace.__getitem__``: ``m["trace"]`` is ``m.mean``), scoped to one file.
TARGETED: list[tuple[str, re.Pattern[str], str]] = [
    ("book/18_computing_fast.ipynb", re.compile(r"\bexact\[([\"'])trace\1\]"), "exact.mean"),
]

_QUALIFIED = re.compile(r"(?<![\w.])ml\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)")
_TOP = re.compile(r"(?<![\w.])ml\.([A-Za-z_]\w*)(?![\w])")
_FROM = re.compile(
    r"^(?P<indent>[ \t]*)from manifoldlib(?:\.(?P<mod>\w+))? import (?P<names>[^()\n#]+?)"
    r"(?P<comment>[ \t]*#.*)?$",
    re.M,
)


def _qualified(m: re.Match[str]) -> str:
    module, name = m.group(1), m.group(2)
    if module in MODULES and name in HOME and HOME[name] != module:
        return f"ml.{HOME[name]}.{name}"
    return m.group(0)


def _top(m: re.Match[str]) -> str:
    name = m.group(1)
    if name in HOME and name not in CORE:
        return f"ml.{HOME[name]}.{name}"
    return m.group(0)


def _from(m: re.Match[str]) -> str:
    module = m.group("mod")
    if module is not None and module not in MODULES:
        return m.group(0)  # a private module: its names are its own
    groups: dict[str | None, list[str]] = {}
    for part in m.group("names").split(","):
        part = part.strip()
        if not part:
            continue
        name = part.split(" as ")[0].strip()
        if module is None:
            where = HOME[name] if name in HOME and name not in CORE else None
        else:
            where = HOME[name] if name in HOME and HOME[name] != module else module
        groups.setdefault(where, []).append(part)
    if list(groups) == [module]:
        return m.group(0)
    indent, comment = m.group("indent"), m.group("comment") or ""
    lines = []
    for where, parts in groups.items():
        head = "from manifoldlib" + ("" if where is None else f".{where}")
        lines.append(f"{indent}{head} import {', '.join(parts)}")
    lines[0] += comment
    return "\n".join(lines)


def rewrite_code(text: str, path: str = "") -> str:
    """The code ``text`` with the new spellings (idempotent).

    Args:
        text: Python source (a file or one notebook cell).
        path: the file's path relative to the repository root (for :data:`TARGETED`).

    Returns:
        The rewritten source.
    """
    text = _QUALIFIED.sub(_qualified, text)
    text = _TOP.sub(_top, text)
    text = _FROM.sub(_from, text)
    for suffix, pattern, repl in TARGETED:
        if path.endswith(suffix):
            text = pattern.sub(repl, text)
    return text


_FENCE = re.compile(r"(^```(?:python|py|pycon)[^\n]*\n)(.*?)(^```)", re.M | re.S)


def rewrite_markdown(text: str, path: str = "", prose: bool = False) -> str:
    """``text`` with :func:`rewrite_code` applied inside its ````python`` blocks.

    With ``prose``: everywhere, the names in the text too.
    """
    if prose:
        return rewrite_code(text, path)
    return _FENCE.sub(lambda m: m.group(1) + rewrite_code(m.group(2), path) + m.group(3), text)


def rewrite_notebook(text: str, path: str = "", prose: bool = False) -> str:
    """A notebook's JSON with :func:`rewrite_code` applied to its code cells' sources only.

    With ``prose``: to its Markdown cells' sources too.
    """
    nb = json.loads(text)
    changed = False
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code" and not (prose and cell.get("cell_type") == "markdown"):
            continue
        src = "".join(cell["source"])
        new = rewrite_code(src, path)
        if new != src:
            cell["source"] = new.splitlines(keepends=True)
            changed = True
    if not changed:
        return text
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


#: A file that holds this line is left as it is (this tool, its test: old spellings on purpose).
SKIP_MARK = "# rewrite_namespace: " + "skip"
_SKIP = {"_build", "vendor", "node_modules", "__pycache__"}


def files(paths: list[str]) -> list[Path]:
    """The ``.py``, ``.ipynb`` and ``.md`` files named or below the folders named."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            out.append(p)
            continue
        for f in sorted(p.rglob("*")):
            parts = f.relative_to(p).parts
            if any(s in _SKIP or s.startswith(".") for s in parts):
                continue
            if f.is_file() and f.suffix in {".py", ".ipynb", ".md"}:
                out.append(f)
    return out


_BLOCK = re.compile(r"from manifoldlib(?:\.(\w+))? import \(([^)]*)\)")


def misplaced_block_imports(text: str) -> list[str]:
    """Names of multi-line ``from manifoldlib... import (...)`` blocks that are not at home."""
    out = []
    for m in _BLOCK.finditer(text.replace("\\n", "\n").replace('\\"', '"')):
        module = m.group(1)
        if module is not None and module not in MODULES:
            continue
        for part in m.group(2).replace('"', " ").replace(",", " ").split():
            name = part.strip()
            if name not in HOME:
                continue
            if (module is None and name not in CORE) or (module and HOME[name] != module):
                out.append(f"{name} is ml.{HOME[name]}.{name}")
    return out


def rewrite_file(path: Path, prose: bool = False) -> str | None:
    """The rewritten text of ``path``, or None where nothing changes."""
    text = path.read_text(encoding="utf-8")
    if SKIP_MARK in text:
        return None
    rel = path.resolve().as_posix()
    if path.suffix == ".ipynb":
        new = rewrite_notebook(text, rel, prose)
    elif path.suffix == ".md":
        new = rewrite_markdown(text, rel, prose)
    else:
        new = rewrite_code(text, rel)
    return None if new == text else new


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` list) the files; return 1 where ``--check`` found some."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="files or folders")
    ap.add_argument("--check", action="store_true", help="list the files, change nothing")
    ap.add_argument("--no-format", action="store_true", help="skip ruff format afterwards")
    ap.add_argument(
        "--prose", action="store_true", help="also the text: Markdown cells and whole .md files"
    )
    args = ap.parse_args(argv)
    changed = []
    for f in files(args.paths):
        new = rewrite_file(f, args.prose)
        if new is None:
            continue
        changed.append(f)
        if not args.check:
            f.write_text(new, encoding="utf-8")
    for f in files(args.paths):
        for bad in misplaced_block_imports(f.read_text(encoding="utf-8")):
            print(f"by hand: {f}: {bad}")
    verb = "would change" if args.check else "changed"
    for f in changed:
        print(f"{verb}: {f}")
    print(f"{len(changed)} file(s) {verb}")
    code = [str(f) for f in changed if f.suffix in {".py", ".ipynb"}]
    if code and not args.check and not args.no_format:
        subprocess.run([sys.executable, "-m", "ruff", "format", "-q", *code], check=False)
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
