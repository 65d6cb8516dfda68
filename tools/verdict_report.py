"""Count the bare verdicts each chapter prints (issue 14: "Numbers, not verdicts").

A *printed line* is a non-blank line of a code cell's stdout, or the text of an execute
result. A *bare verdict* is a printed line that ends in ``True`` or ``False`` without a
measured value next to a bound, e.g. ``test accuracy >= 0.88: True``. A line passes when it
shows the value, e.g. ``test accuracy: 0.912  (claim: >= 0.88)`` (it does not end in a
verdict) or ``test accuracy = 0.912 (claim >= 0.88): True`` (a value and its bound).

Usage::

    python tools/verdict_report.py [book/NN_x.ipynb ...]   # default: every chapter in _toc.yml

Chapters may print at most ``LIMIT`` (15%) bare verdicts; ``tests/test_verdicts.py`` checks it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 0.15

# A line that ends in a verdict (True/False, maybe followed by punctuation or a tick).
_ENDS_IN_VERDICT = re.compile(r"\b(True|False)\W*$")
# The before-stop hook's exemption: a number after ':' or '=', then text, then ',', ';' or '('.
_HOOK_VALUE = re.compile(r"[=:]\s*-?\d[\d.,e+-]*\s*[^<>=\d]*[,;(]")
# A number that stands alone (not the digit inside a name such as `x1` or `fc2`).
_NUMBER = re.compile(r"(?<![\w.])[-+−]?\d+(?:[.,]\d+)*(?:[eE][-+]?\d+)?")


def is_bare_verdict(line: str) -> bool:
    """Whether a printed line is a verdict without its measured value.

    At least as strict as the repository's before-stop hook: every line the hook counts is
    counted, and so is any verdict line that shows fewer than two numbers (a value and its
    bound), such as ``median step between 8 and 18: True``'s cousin ``accuracy >= 0.88: True``.
    """
    if not _ENDS_IN_VERDICT.search(line):
        return False
    if not _HOOK_VALUE.search(line):
        return True
    return len(_NUMBER.findall(line)) < 2


def printed_lines(nb: dict) -> list[str]:
    """The non-blank lines a notebook's code cells print (stdout and execute results)."""
    lines: list[str] = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                text = "".join(out.get("text", ""))
            elif out.get("output_type") in ("execute_result", "display_data"):
                plain = "".join(out.get("data", {}).get("text/plain", ""))
                # A displayed object's repr is not a printed sentence; a displayed bool is.
                text = plain if plain.strip() in ("True", "False") else ""
            else:
                continue
            lines += [line for line in text.splitlines() if line.strip()]
    return lines


def verdict_share(path: Path) -> tuple[int, int, float]:
    """(printed lines, bare verdicts, share) of one notebook."""
    lines = printed_lines(json.loads(Path(path).read_text()))
    bare = sum(is_bare_verdict(line) for line in lines)
    return len(lines), bare, (bare / len(lines) if lines else 0.0)


def toc_notebooks() -> list[Path]:
    """The chapters listed in _toc.yml that are notebooks, in book order."""
    toc = (ROOT / "_toc.yml").read_text()
    files = re.findall(r"file:\s*([^\s#]+)", toc)
    return [ROOT / f"{f}.ipynb" for f in files if (ROOT / f"{f}.ipynb").exists()]


def main(argv: list[str]) -> int:
    """Print printed lines, bare verdicts and their share per chapter (all in _toc.yml by default)."""
    paths = [Path(a) for a in argv] or toc_notebooks()
    total_lines = total_bare = 0
    print(f"{'chapter':34s} {'printed':>7s} {'bare':>5s} {'share':>6s}")
    for path in paths:
        n, bare, share = verdict_share(path)
        total_lines += n
        total_bare += bare
        flag = "  > 15%" if share > LIMIT else ""
        print(f"{path.name:34s} {n:7d} {bare:5d} {share:6.0%}{flag}")
    share = total_bare / total_lines if total_lines else 0.0
    print(f"{'all':34s} {total_lines:7d} {total_bare:5d} {share:6.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
