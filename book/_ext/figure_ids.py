"""Number every figure, named or not (loaded through _config.yml's `local_extensions`).

Sphinx's `numfig` numbers only figures that have an id. myst-nb gives a cell's figures an id
only from `mystnb.figure.name`, and a cell that shows several images cannot give each one a
name (the same name twice is an error), so such figures would be captioned but unnumbered.
This transform gives every figure without an id one, before Sphinx collects the numbers.
"""

from __future__ import annotations

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms import SphinxTransform


class FigureIds(SphinxTransform):
    """Give each figure node without an id a document-unique one (`figure-N`)."""

    default_priority = 900

    def apply(self, **kwargs) -> None:
        for node in self.document.findall(nodes.figure):
            if not node["ids"]:
                self.document.set_id(node, suggested_prefix="figure")


def setup(app: Sphinx) -> dict:
    app.add_transform(FigureIds)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
