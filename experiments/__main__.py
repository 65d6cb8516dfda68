"""Run any study: ``python -m experiments NAME [ARGS...]``; list them: ``python -m experiments --list``.

A study is a module of this folder with a ``main`` function (``records`` and this file are
helpers). ``NAME ARGS`` runs ``python -m experiments.NAME ARGS`` in this process. Which
results file each study writes, its command line, run time and the chapter that reads it:
``experiments/README.md``.
"""

from __future__ import annotations

import ast
import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
HELPERS = {"__init__", "__main__", "pairs", "records"}


def studies() -> dict[str, str]:
    """Every study: its module name and the first line of its docstring (read, not imported)."""
    out = {}
    for path in sorted(HERE.glob("*.py")):
        if path.stem in HELPERS:
            continue
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body):
            doc = ast.get_docstring(tree) or ""
            out[path.stem] = doc.strip().splitlines()[0] if doc.strip() else ""
    return out


def main(argv: list[str]) -> int:
    """List the studies or run one; returns the exit status."""
    found = studies()
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    if argv[0] == "--list":
        width = max(map(len, found))
        for name, line in found.items():
            print(f"{name:<{width}}  {line}")
        return 0
    name = argv[0]
    if name not in found:
        print(f"no study {name!r}; studies: {', '.join(found)}", file=sys.stderr)
        return 2
    sys.argv = [f"experiments.{name}", *argv[1:]]
    runpy.run_module(f"experiments.{name}", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
