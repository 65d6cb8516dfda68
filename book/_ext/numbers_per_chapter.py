"""Number figures, theorem boxes and exercises per chapter (`local_extensions` of _config.yml).

Without numbered section titles Sphinx counts each kind of numbered box across the whole
book, so chapter 2 opened with "Exercise 8" and its first figure was "Fig. 7". After Sphinx
has assigned its numbers, this renumbers them from 1 in each page, in the same order.
A number in a box's title that belongs to the paper ("Theorem 3.1") is the chapters' text.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment


def per_chapter(app: Sphinx, env: BuildEnvironment) -> list[str]:
    for kinds in env.toc_fignumbers.values():
        for numbers in kinds.values():
            for k, node_id in enumerate(sorted(numbers, key=numbers.get), start=1):
                numbers[node_id] = (k,)
    return []


def setup(app: Sphinx) -> dict:
    # after Sphinx's own env-get-updated handler (the toctree collector, priority 500)
    app.connect("env-get-updated", per_chapter, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
