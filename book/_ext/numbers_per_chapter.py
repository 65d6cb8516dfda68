"""Number figures, theorem boxes and exercises per chapter (`local_extensions` of _config.yml).

Without numbered section titles Sphinx counts each kind of numbered box across the whole
book, so chapter 2 opened with "Exercise 8" and its first figure was "Fig. 7". After Sphinx
has assigned its numbers, this renumbers them from 1 in each page, in the same order.
A number in a box's title that belongs to the paper ("Theorem 3.1") is the chapters' text.

Since numbers restart in each chapter, a reference to a box of another chapter names that
chapter: "Definition 1 of chapter 2" (a reader of chapter 4 would otherwise look for its own
Definition 1).
"""

from __future__ import annotations

import posixpath
import re

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

#: The text Sphinx writes for a numbered reference ("Definition 1", "Fig. 3", "Exercise 2").
NUMBERED = re.compile(r"^[A-Z][a-z]+\.? \d+$")
#: A chapter's document name, e.g. book/02_frobenius -> 2.
CHAPTER = re.compile(r"(?:^|/)(\d\d)_[^/]+$")


def per_chapter(app: Sphinx, env: BuildEnvironment) -> list[str]:
    for kinds in env.toc_fignumbers.values():
        for numbers in kinds.values():
            for k, node_id in enumerate(sorted(numbers, key=numbers.get), start=1):
                numbers[node_id] = (k,)
    return []


def name_other_chapters(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Append "of chapter N" to a numbered reference whose target is another chapter."""
    for ref in doctree.findall(nodes.reference):
        uri = ref.get("refuri", "")
        if not ref.get("internal") or "#" not in uri or uri.startswith("#"):
            continue
        page = uri.split("#", 1)[0]
        target = posixpath.normpath(posixpath.join(posixpath.dirname(docname), page))
        target = re.sub(r"(/index)?\.html$", "", target)
        chapter = CHAPTER.search(target)
        text = ref.astext()
        if target == docname or not chapter or not NUMBERED.match(text):
            continue
        label = f"{text} of chapter {int(chapter.group(1))}"
        ref.children = [nodes.Text(label)]


def setup(app: Sphinx) -> dict:
    # after Sphinx's own env-get-updated handler (the toctree collector, priority 500)
    app.connect("env-get-updated", per_chapter, priority=900)
    app.connect("doctree-resolved", name_other_chapters)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
