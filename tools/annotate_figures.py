"""Give every output figure of the chapters a caption and alt text; fold plotting cells.

Usage: python tools/annotate_figures.py [--check]

Reads `book/figures.yml` (notebook stem -> cell id -> caption, alt, optional name, fold) and
writes into each listed code cell's metadata, and nowhere else:

- `mystnb.figure.caption` (and `mystnb.figure.name` where given): myst-nb wraps each image
  output in a figure with that caption; Sphinx numbers it per chapter (`numfig`; unnamed
  figures get an id from `book/_ext/figure_ids.py` so that they are numbered too);
- `mystnb.image.alt`: the alt text a screen reader reads (without it the alt text is the
  image's file hash);
- the `hide-input` tag when `fold: true` (the code is folded behind a toggle, its output
  shown), removed when `fold` is false or absent.

Sources, outputs and execution counts are left as they are, so re-applying after a chapter
was re-executed is safe: cells are found by their id, which re-execution keeps. With
`--check` nothing is written; the exit status is 1 if a notebook would change, if a listed
cell is missing, or if a code cell with an image output is not listed (a new figure needs
an entry in the table).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
TABLE = BOOK / "figures.yml"
FOLD = "hide-input"


def image_outputs(cell: dict) -> int:
    """How many outputs of a code cell carry an image."""
    return sum(
        1 for o in cell.get("outputs", []) if any(k.startswith("image/") for k in o.get("data", {}))
    )


def annotate(nb: dict, entries: dict, stem: str) -> list[str]:
    """Write the table's entries for one notebook into ``nb``; return the problems found."""
    problems = []
    cells = {c.get("id"): c for c in nb["cells"] if c["cell_type"] == "code"}
    for cell_id, entry in entries.items():
        cell = cells.get(str(cell_id))
        if cell is None:
            problems.append(f"{stem}: no code cell with id {cell_id}")
            continue
        if not entry.get("caption") or not entry.get("alt"):
            problems.append(f"{stem} {cell_id}: caption and alt are both needed")
            continue
        meta = cell.setdefault("metadata", {})
        figure = {"caption": entry["caption"].strip()}
        if entry.get("name"):
            figure["name"] = entry["name"]
        mystnb = dict(meta.get("mystnb", {}))
        mystnb["figure"] = figure
        mystnb["image"] = {"alt": " ".join(entry["alt"].split())}
        meta["mystnb"] = mystnb
        tags = [t for t in meta.get("tags", []) if t != FOLD]
        if entry.get("fold"):
            tags.append(FOLD)
        if tags:
            meta["tags"] = tags
        else:
            meta.pop("tags", None)
    for cell_id, cell in cells.items():
        if image_outputs(cell) and str(cell_id) not in {str(k) for k in entries}:
            problems.append(f"{stem} {cell_id}: an image output with no entry in {TABLE.name}")
    return problems


def dump(nb: dict) -> str:
    """The notebook as Jupyter writes it (one-space indent, sorted keys, UTF-8)."""
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    """Apply (or with --check, verify) the table; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail on drift")
    args = parser.parse_args(argv)
    table = yaml.safe_load(TABLE.read_text(encoding="utf-8"))
    problems, changed = [], []
    for path in sorted(BOOK.glob("[0-9][0-9]_*.ipynb")):
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
        problems += annotate(nb, table.get(path.stem, {}), path.stem)
        new = dump(nb)
        if new != text:
            changed.append(path.name)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    unknown = set(table) - {p.stem for p in BOOK.glob("[0-9][0-9]_*.ipynb")}
    problems += [f"{TABLE.name}: no notebook {stem}.ipynb" for stem in sorted(unknown)]
    for p in problems:
        print(p)
    verb = "would change" if args.check else "changed"
    print(f"{verb}: {', '.join(changed) or 'nothing'}")
    return 1 if problems or (args.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
