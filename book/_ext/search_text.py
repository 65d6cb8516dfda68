"""Index formulas by what they say, not by their TeX (`local_extensions` of _config.yml).

Sphinx indexes a formula's TeX source word by word, so "mathcal", "frac" or "mathbb" were
search terms that found every page with maths. Here a formula contributes its letters and
named functions ("D_x", "ker", "rank") and none of its TeX commands; book/theme/book.js does
the same for the snippets that the search page shows.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.search import IndexBuilder

#: TeX commands whose name is a word of the formula (the rest are markup or symbols).
NAMED = {"ker", "log", "exp", "det", "dim", "min", "max", "sin", "cos", "arccos", "tr", "sup"}
NAMED |= {"inf", "lim", "arg"}


def tex_words(tex: str) -> str:
    """Plain text of a TeX formula: its letters and named functions, no commands."""
    text = re.sub(r"\\(begin|end)\{[^}]*\}", " ", tex)
    text = re.sub(
        r"\\([a-zA-Z]+)", lambda m: f" {m.group(1)} " if m.group(1) in NAMED else " ", text
    )
    return re.sub(r"[{}\\^_&$]", " ", text)


def _plain_maths(doctree: nodes.document) -> nodes.document:
    """A copy of ``doctree`` whose formulas are replaced by their words (the page keeps its TeX)."""
    tree = doctree.deepcopy()
    for node in list(tree.findall(lambda n: isinstance(n, (nodes.math, nodes.math_block)))):
        node.replace_self(nodes.Text(f" {tex_words(node.astext())} "))
    return tree


def setup(app: Sphinx) -> dict:
    collect = IndexBuilder._word_collector  # Sphinx 7.3+: one pass over the doctree per page
    if not getattr(collect, "book_tex_words", False):

        def _word_collector(self: IndexBuilder, doctree: nodes.document):
            return collect(self, _plain_maths(doctree))

        _word_collector.book_tex_words = True  # type: ignore[attr-defined]
        IndexBuilder._word_collector = _word_collector  # type: ignore[method-assign]
    return {"parallel_read_safe": True, "parallel_write_safe": True}
