"""DTPR device taxonomy: the vocabulary deployments are described with.

The data file ``pipelines/data/dtpr_device_taxonomy.json`` is a subset of the DTPR v1 taxonomy
(CC BY 4.0, see ``pipelines/data/DTPR-ATTRIBUTION.md``). It ships with the package so that nothing
outside the project is read at run time.

Element ids: upstream DTPR ids such as ``mobility`` are only unique within a category, so the project
always uses the qualified form ``<category>__<dtpr id>`` (for example ``purpose__mobility``,
``tech__li_dar``, ``retention__data_retained``). This is the upstream file id, so it round-trips to
dtpr.io. Category ids are the short device category names (``purpose``, not ``device__purpose``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

SUPPORTED_LANGS: tuple[str, ...] = ("en", "es", "fr", "pt", "km", "tl")
DEFAULT_LANG = "en"
# DTPR's app hard-codes this display order for the device datachain; the data file has no order field.
CATEGORY_ORDER: tuple[str, ...] = (
    "accountable",
    "purpose",
    "tech",
    "data",
    "process",
    "access",
    "retention",
    "storage",
)
ID_SEPARATOR = "__"

# pipelines/data/, beside the attribution the portal ships with it
DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "dtpr_device_taxonomy.json"


def _localised(texts: Mapping[str, str], lang: str) -> str:
    # Every shipped text has all six locales; the fallback is for unknown language codes.
    return texts.get(lang) or texts[DEFAULT_LANG]


@dataclass(frozen=True)
class Category:
    id: str
    dtpr_id: str
    names: Mapping[str, str] = field(repr=False)
    descriptions: Mapping[str, str] = field(repr=False)

    def name(self, lang: str = DEFAULT_LANG) -> str:
        return _localised(self.names, lang)

    def description(self, lang: str = DEFAULT_LANG) -> str:
        return _localised(self.descriptions, lang)


@dataclass(frozen=True)
class Element:
    id: str
    category: str
    dtpr_id: str
    names: Mapping[str, str] = field(repr=False)
    descriptions: Mapping[str, str] = field(repr=False)
    icon: str = field(default="", repr=False)

    def name(self, lang: str = DEFAULT_LANG) -> str:
        """Localised name; unknown languages fall back to English.

        ``retention__data_retained`` keeps DTPR's ``{{duration}}`` placeholder: use
        ``pipelines.portal.dtpr_card.render_retention_text`` for retention, which fills it from the
        machine-readable policy.
        """
        return _localised(self.names, lang)

    def description(self, lang: str = DEFAULT_LANG) -> str:
        return _localised(self.descriptions, lang)


class Taxonomy:
    """Read-only lookup over the shipped DTPR device taxonomy."""

    def __init__(self, categories: list[Category], elements: list[Element], attribution: Mapping[str, Any]):
        self._categories = {c.id: c for c in categories}
        self._elements = {e.id: e for e in elements}
        self.attribution: Mapping[str, Any] = MappingProxyType(dict(attribution))

    def element(self, element_id: str) -> Element:
        """The element with this qualified id (``purpose__mobility``); KeyError if unknown."""
        try:
            return self._elements[element_id]
        except KeyError:
            raise KeyError(f"unknown DTPR element id {element_id!r}") from None

    def has(self, element_id: str) -> bool:
        return element_id in self._elements

    def category_of(self, element_id: str) -> str:
        return self.element(element_id).category

    def category(self, category_id: str) -> Category:
        try:
            return self._categories[category_id]
        except KeyError:
            raise KeyError(f"unknown DTPR device category {category_id!r}") from None

    def categories_in_order(self) -> tuple[Category, ...]:
        return tuple(self._categories[c] for c in CATEGORY_ORDER)

    def elements_in(self, category_id: str) -> tuple[Element, ...]:
        self.category(category_id)
        return tuple(e for e in self._elements.values() if e.category == category_id)

    def element_ids(self) -> frozenset[str]:
        return frozenset(self._elements)

    def __iter__(self) -> Iterator[Element]:
        return iter(self._elements.values())

    def __len__(self) -> int:
        return len(self._elements)


def parse_taxonomy(doc: Mapping[str, Any]) -> Taxonomy:
    """Build a Taxonomy from the data file's JSON structure (checked, since the file is hand-derived)."""
    categories = [
        Category(
            id=c["id"],
            dtpr_id=c["dtpr_id"],
            names=MappingProxyType(dict(c["name"])),
            descriptions=MappingProxyType(dict(c["description"])),
        )
        for c in doc["categories"]
    ]
    if sorted(c.id for c in categories) != sorted(CATEGORY_ORDER):
        raise ValueError(f"taxonomy file must hold exactly the categories {CATEGORY_ORDER}")
    elements = []
    for e in doc["elements"]:
        if e["id"] != f"{e['category']}{ID_SEPARATOR}{e['dtpr_id']}" or e["category"] not in CATEGORY_ORDER:
            raise ValueError(f"taxonomy element {e['id']!r} does not match its category {e['category']!r}")
        missing = [lang for lang in SUPPORTED_LANGS if not e["name"].get(lang)]
        if missing:
            raise ValueError(f"taxonomy element {e['id']!r} has no name in {missing}")
        elements.append(
            Element(
                id=e["id"],
                category=e["category"],
                dtpr_id=e["dtpr_id"],
                names=MappingProxyType(dict(e["name"])),
                descriptions=MappingProxyType(dict(e["description"])),
                icon=e.get("icon", ""),
            )
        )
    return Taxonomy(categories, elements, doc.get("attribution", {}))


@cache
def load_taxonomy() -> Taxonomy:
    """The shipped taxonomy, parsed once per process."""
    with DATA_FILE.open(encoding="utf-8") as fh:
        return parse_taxonomy(json.load(fh))
