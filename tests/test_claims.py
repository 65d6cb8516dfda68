"""Every printed "(claim: ...)" in the committed chapters is a claim or a guard, marked as such.

A *claim* is a hypothesis whose threshold was fixed before looking; it prints
``(claim: ...)`` (``manifoldlib.stats.claim``). A *regression guard* is a band around today's
value that only detects change; it prints ``(guard: ...)`` (``manifoldlib.stats.guard``).
Chapters listed in ``REVIEWED`` have had every marked line read and classified. The other
chapters still print legacy ``(claim: ...)`` lines of both kinds: each is listed, visibly, in
``tests/claims_legacy.txt`` (chapter, then the marker text), and a new unlisted claim in such
a chapter fails this test. Converting a chapter: mark its guards with ``(guard: ...)``, add it
to ``REVIEWED`` and delete its lines from the legacy file (the list only shrinks).
Mutation: a new unreviewed ``(claim: ...)`` in a legacy chapter, or an unmarked file entry for a
reviewed chapter, fails.
"""

from __future__ import annotations

import json
from pathlib import Path

BOOK = Path(__file__).resolve().parent.parent / "book"
LEGACY = Path(__file__).resolve().parent / "claims_legacy.txt"
#: Chapters whose marked lines have been classified into claims and guards (issue 25).
REVIEWED = set("00 01 03 04 05 06 07 08 09 10 11 12 13 14 15 16 17 18 19".split())  # 02: none
MARKS = ("(claim: ", "(guard: ")


def markers(line: str) -> list[str]:
    """The ``(claim: ...)`` and ``(guard: ...)`` parts of a printed line, parentheses balanced."""
    found = []
    for mark in MARKS:
        start = line.find(mark)
        while start >= 0:
            depth, end = 0, start
            for end in range(start, len(line)):
                depth += {"(": 1, ")": -1}.get(line[end], 0)
                if depth == 0:
                    break
            found.append(line[start : end + 1])
            start = line.find(mark, end + 1)
    return found


def printed_markers() -> list[tuple[str, str]]:
    """(chapter number, marker) for every marker printed in a committed chapter's outputs."""
    out = []
    for path in sorted(BOOK.glob("[0-9][0-9]_*.ipynb")):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            for o in cell.get("outputs", []):
                text = o.get("text") or o.get("data", {}).get("text/plain", "")
                text = "".join(text) if isinstance(text, list) else text
                for line in text.splitlines():
                    out.extend((path.name[:2], m) for m in markers(line))
    return out


def legacy_entries() -> set[tuple[str, str]]:
    entries = set()
    for raw in LEGACY.read_text().splitlines():
        if raw.strip() and not raw.startswith("#"):
            chapter, marker = raw.split("\t", 1)
            entries.add((chapter, marker))
    return entries


def test_markers_are_found_with_balanced_parentheses():
    line = "rank: [9, 9]  (claim: 9, lambda_9 > 0 (float64)), median 0.5 (guard: 0.4-0.6)"
    assert markers(line) == ["(claim: 9, lambda_9 > 0 (float64))", "(guard: 0.4-0.6)"]


def test_every_printed_claim_is_reviewed_or_listed_as_legacy():
    legacy = legacy_entries()
    assert not any(ch in REVIEWED for ch, _ in legacy), "a reviewed chapter is still listed"
    unlisted = [
        (ch, m)
        for ch, m in printed_markers()
        if ch not in REVIEWED and m.startswith("(claim: ") and (ch, m) not in legacy
    ]
    assert not unlisted, f"unreviewed claims not in {LEGACY.name}: {unlisted}"


def test_reviewed_chapters_mark_both_kinds():
    printed = printed_markers()
    for chapter in REVIEWED:
        kinds = {m.split(":")[0] for ch, m in printed if ch == chapter}
        assert kinds <= {"(claim", "(guard"}, chapter
        assert "(claim" in kinds, f"chapter {chapter} prints no claim"


if __name__ == "__main__":  # print the unreviewed markers, in the legacy file's format
    for chapter, marker in sorted(set(printed_markers())):
        if chapter not in REVIEWED and marker.startswith("(claim: "):
            print(f"{chapter}\t{marker}")
