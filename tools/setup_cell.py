"""The hidden first cell of every chapter: set-up for Colab and Binder.

Usage:
    python tools/setup_cell.py            # insert or refresh the cell in every chapter
    python tools/setup_cell.py --check    # exit 1 if a chapter lacks the current cell

The cell installs manifoldlib, pinned to the book's version (``pyproject.toml``) from the
repository named once in ``_config.yml``, only when it is missing (Colab); it lists the
packages an incomplete image lacks (Binder); and on Colab or Binder it asks the library to
show a progress bar while the shared model trains on first use. Where everything is
installed (a local run, nbval in CI) it prints nothing, so stored outputs are unchanged. It is
tagged ``remove-cell``: the HTML book does not show it.

Inserting the cell shifts every execution count by one; the stored outputs stay valid
because the cell defines nothing the chapter uses and prints nothing here.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TAG = "remove-cell"
MARKER = "# manifoldlib set-up cell"
#: Import names the chapters need (checked on Binder, where nothing is installed on demand).
NEEDED = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "matplotlib",
    "mlxtend",
    "sympy",
    "ipywidgets",
    "PIL",
    "tqdm",
)


def book_version() -> str:
    """The version in pyproject.toml (the one the cell pins)."""
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^version\s*=\s*"([^"]+)"', text, flags=re.M).group(1)


def repository_url() -> str:
    """The repository URL, set once in _config.yml."""
    text = (ROOT / "_config.yml").read_text()
    return re.search(r"^\s*url:\s*(\S+)", text, flags=re.M).group(1)


def cell_source() -> str:
    """The source of the set-up cell for the current version and repository."""
    spec = f"manifoldlib @ git+{repository_url()}@v{book_version()}"
    needed = " ".join(NEEDED)
    return f'''{MARKER} (hidden in the book): Colab and Binder only; silent elsewhere.
import importlib.util
import os
import subprocess
import sys

SPEC = "{spec}"
NEEDED = "{needed}".split()
if importlib.util.find_spec("manifoldlib") is None:  # Colab: install the book's version
    print("Installing manifoldlib {book_version()} for this chapter (about a minute) ...")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", SPEC], check=True)
missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
if missing:
    print("This environment lacks:", ", ".join(missing), "- pip install them, then rerun.")
if "google.colab" in sys.modules or "BINDER_SERVICE_HOST" in os.environ:
    # The shared model trains on first use here (minutes): show its progress bar.
    os.environ.setdefault("MANIFOLDLIB_PROGRESS", "1")'''


def toc_notebooks() -> list[Path]:
    """The chapters listed in _toc.yml."""
    toc = (ROOT / "_toc.yml").read_text()
    files = re.findall(r"file:\s*([^\s#]+)", toc)
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def has_current_cell(nb: dict) -> bool:
    """Whether the notebook's first cell is the current set-up cell."""
    first = nb["cells"][0] if nb["cells"] else {}
    return (
        first.get("cell_type") == "code"
        and "".join(first.get("source", "")) == cell_source()
        and TAG in first.get("metadata", {}).get("tags", [])
        and not first.get("outputs")
    )


def apply(path: Path) -> bool:
    """Insert or refresh the cell in one notebook; return whether the file changed."""
    nb = json.loads(path.read_text())
    if has_current_cell(nb):
        return False
    cells = nb["cells"]
    present = cells and "".join(cells[0].get("source", "")).startswith(MARKER)
    if present:
        cells.pop(0)
    else:
        for c in cells:
            if c["cell_type"] == "code" and c.get("execution_count") is not None:
                c["execution_count"] += 1
                for out in c.get("outputs", []):
                    if out.get("execution_count") is not None:
                        out["execution_count"] += 1
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "id": "manifoldlib-setup",
        "metadata": {"tags": [TAG]},
        "outputs": [],
        "source": cell_source().splitlines(keepends=True),
    }
    cells.insert(0, cell)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return True


def main(argv: list[str]) -> int:
    """Insert the cell everywhere, or with ``--check`` report the chapters that lack it."""
    check = "--check" in argv
    stale = []
    for path in toc_notebooks():
        if check:
            if not has_current_cell(json.loads(path.read_text())):
                stale.append(path.name)
        elif apply(path):
            print(f"set-up cell written: {path.relative_to(ROOT)}")
    if stale:
        print("chapters without the current set-up cell:", ", ".join(stale))
        print("run: python tools/setup_cell.py")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
