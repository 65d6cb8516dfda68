"""Execute chapters top to bottom, in place, as committed: counts 1..n, widget state saved.

Usage: python tools/execute_notebooks.py book/05_training_trace.ipynb [more.ipynb ...]

Runs each notebook in a fresh kernel with the working directory set to its folder (as nbval
does), stores the widget state in the metadata (for the static book), and fails loudly on an
error. Then `ruff format` and `pytest book/NN_x.ipynb` check it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(path: Path, timeout: int = 1800) -> float:
    """Execute one notebook in place; return the seconds it took."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        store_widget_state=True,
    )
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, path)
    return seconds


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        s = execute(Path(arg))
        print(f"{arg}: executed in {s:.0f} s")
