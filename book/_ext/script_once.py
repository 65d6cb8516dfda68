"""Emit each inline script of a page once (loaded through _config.yml's `local_extensions`).

Jupyter Book 1.0.4 sets sphinx-thebe (and sphinx-togglebutton's configuration) up twice, so
every page carried `const THEBE_JS_URL = ...` twice and the browser logged "Identifier
'THEBE_JS_URL' has already been declared". This drops exact repeats of a script from the
page's list before the page is written; tests/test_browser.py fails on that error again.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def _once(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    seen, kept = set(), []
    for js in context.get("script_files", []):
        key = (
            str(
                getattr(js, "filename", js) or ""
            ),  # inline: None from one setup, "" from the other
            repr(sorted(getattr(js, "attributes", {}).items())),
        )
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    if "script_files" in context:
        # in place: handlers that run later (MathJax, the widget manager) add their scripts
        # to this same list, the builder's own
        context["script_files"][:] = kept


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", _once, priority=100)  # before any handler that returns
    return {"parallel_read_safe": True, "parallel_write_safe": True}
