"""An author-year bibliography (loaded through _config.yml's `local_extensions`).

The chapters cite author-year ("Grementieri and Fioresi (2022)"), but pybtex's `plain` style
labels the bibliography [1], [2], ...: a reader followed an author-year link to a number.
This registers the pybtex style `authoryear`: `plain`'s entries, sorted by author and year,
labelled "Grementieri and Fioresi 2022" (a letter is added to repeated labels).
"""

from __future__ import annotations

from pybtex.plugin import register_plugin
from pybtex.style.formatting.plain import Style as Plain
from pybtex.style.labels import BaseLabelStyle
from sphinx.application import Sphinx


def _surname(person) -> str:
    return " ".join(person.prelast_names + person.last_names).replace("{", "").replace("}", "")


class AuthorYearLabels(BaseLabelStyle):
    """Labels "A 2020", "A and B 2020", "A et al. 2020"."""

    def format_labels(self, sorted_entries):
        used: dict[str, int] = {}
        for entry in sorted_entries:
            people = entry.persons.get("author") or entry.persons.get("editor") or []
            names = [_surname(p) for p in people]
            if not names:
                who = entry.fields.get("organization", entry.key)
            elif len(names) == 1:
                who = names[0]
            elif len(names) == 2:
                who = f"{names[0]} and {names[1]}"
            else:
                who = f"{names[0]} et al."
            label = f"{who} {entry.fields.get('year', '')}".strip()
            used[label] = used.get(label, 0) + 1
            yield label if used[label] == 1 else f"{label}{'abcdefghij'[used[label] - 1]}"


class AuthorYear(Plain):
    """`plain` entries with author-year labels, sorted by author, year, title."""

    default_label_style = "authoryear"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabels)
register_plugin("pybtex.style.formatting", "authoryear", AuthorYear)


def setup(app: Sphinx) -> dict:
    return {"parallel_read_safe": True, "parallel_write_safe": True}
