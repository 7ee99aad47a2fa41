"""The portal's message catalogs (pipelines/portal/locales/<lang>.json): complete, consistent, stably formatted."""

from __future__ import annotations

import json
import string
from collections import Counter
from pathlib import Path

import pytest

from pipelines.portal.i18n import (
    LOCALE_DIR,
    SHIPPED_LANGS,
    SOURCE_LANG,
    Translator,
    catalog_langs,
    catalog_path,
    load_catalog,
    page_prefix,
)
from pipelines.registry.taxonomy import SUPPORTED_LANGS

pytestmark = pytest.mark.unit

SECTIONS = ("strings", "kinds")


def _doc(path: Path) -> dict[str, dict[str, str]]:
    return json.loads(path.read_bytes().decode("utf-8"))


def _placeholders(template: str) -> Counter[tuple[str, str, str | None]]:
    """The ``str.format`` fields of a template: (name, format spec, conversion), with repeats."""
    return Counter(
        (name, spec or "", conversion) for _, name, spec, conversion in string.Formatter().parse(template)
        if name is not None
    )


def test_the_catalogs_are_the_portals_languages() -> None:
    langs = catalog_langs()
    # Every shipped language has its catalog: a missing file would make its pages English.
    assert SOURCE_LANG in langs and set(SHIPPED_LANGS) <= set(langs), set(SHIPPED_LANGS) - set(langs)
    assert set(langs) <= set(SUPPORTED_LANGS)
    assert sorted(p.name for p in LOCALE_DIR.iterdir()) == [f"{lang}.json" for lang in langs]


@pytest.mark.parametrize("lang", sorted(set(catalog_langs()) | set(SHIPPED_LANGS)))
def test_a_catalog_has_exactly_the_english_keys(lang: str) -> None:
    assert catalog_path(lang).is_file(), f"{lang}: no catalog {catalog_path(lang).name}"
    english, doc = _doc(catalog_path(SOURCE_LANG)), _doc(catalog_path(lang))
    assert tuple(doc) == SECTIONS
    for section in SECTIONS:
        missing = sorted(set(english[section]) - set(doc[section]))
        assert not missing, f"{lang}.json {section} lacks {', '.join(missing)}"
        assert sorted(doc[section]) == sorted(english[section]), section
        for key, text in doc[section].items():
            assert isinstance(text, str) and text.strip(), f"{section}.{key} is empty"


@pytest.mark.parametrize("lang", sorted(set(catalog_langs()) | set(SHIPPED_LANGS)))
def test_a_translation_has_the_english_placeholders(lang: str) -> None:
    english, doc = _doc(catalog_path(SOURCE_LANG))["strings"], _doc(catalog_path(lang))["strings"]
    for key, text in doc.items():
        assert _placeholders(text) == _placeholders(english[key]), key
        # Formatting with the English names works, so no translation can raise KeyError on a page.
        names = {name: "x" for name, _, _ in _placeholders(english[key])}
        if names:
            assert "x" in Translator(lang).text(key, **names)
    kinds = _doc(catalog_path(lang))["kinds"]
    assert all(not _placeholders(text) for text in kinds.values())


@pytest.mark.parametrize("lang", sorted(set(catalog_langs()) | set(SHIPPED_LANGS)))
def test_a_catalog_file_is_in_its_stable_format(lang: str) -> None:
    # One form per catalog (UTF-8 characters as written, two-space indent, final newline), so an edit
    # shows in a diff as the lines it changed.
    raw = catalog_path(lang).read_bytes()
    assert raw.decode("utf-8") == json.dumps(_doc(catalog_path(lang)), ensure_ascii=False, indent=2) + "\n"


def test_the_translator_reads_the_catalog_files() -> None:
    spanish = _doc(catalog_path("es"))["strings"]
    assert Translator("es").text("site_title") == spanish["site_title"]
    assert load_catalog("es") is load_catalog("es")  # read once
    # Every shipped language has its own words, Khmer and Tagalog included.
    for lang in SHIPPED_LANGS:
        assert not Translator(lang).is_fallback("site_title")
    assert Translator("km").text("site_title") != _doc(catalog_path(SOURCE_LANG))["strings"]["site_title"]
    # A language without a catalog gets English, marked as such.
    assert Translator("xx").text("site_title") == _doc(catalog_path(SOURCE_LANG))["strings"]["site_title"]
    assert Translator("xx").is_fallback("site_title")
    assert str(Translator("xx").markup("site_title")).startswith('<span lang="en">')


def test_a_language_s_pages_are_at_the_root_or_under_its_code() -> None:
    assert page_prefix("en", SHIPPED_LANGS) == ""
    assert page_prefix("km", SHIPPED_LANGS) == "km/"
    assert page_prefix("es", ("es", "en")) == "" and page_prefix("en", ("es", "en")) == "en/"
    with pytest.raises(ValueError, match="not one of"):
        page_prefix("de", SHIPPED_LANGS)


def test_the_dataset_words_in_english_are_the_tables_own():
    # The open-data list's titles and descriptions are catalog keys so they can be translated; their
    # English is the tables' own (DCAT and the data package use those), so the two never drift apart.
    from pipelines.portal import declared
    from pipelines.tables import DESCRIPTIONS, TITLES

    english = _doc(catalog_path(SOURCE_LANG))["strings"]
    def keyed(prefix: str) -> dict[str, str]:
        return {k.removeprefix(prefix): v for k, v in english.items() if k.startswith(prefix)}

    assert keyed("dataset_title_") == {**TITLES, "declaration": declared.TITLE}
    assert keyed("dataset_desc_") == {**DESCRIPTIONS, "declaration": declared.DESCRIPTION}


@pytest.mark.parametrize("lang", sorted(set(catalog_langs()) | set(SHIPPED_LANGS)))
def test_a_catalog_writes_numbers_in_the_digits_the_pages_print(lang: str) -> None:
    # Pages format counts and days with ASCII digits in every language; a number written in the catalog in
    # another script (Khmer ៣០) would sit next to "70" on the same first screen.
    for section in _doc(catalog_path(lang)).values():
        for key, text in section.items():
            assert not [c for c in text if c.isdecimal() and not c.isascii()], f"{lang} {key}: {text}"
