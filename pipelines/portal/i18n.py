"""The portal's own words (headings, labels) in the six shipped languages: en, es, fr, pt, km, tl.

The words are data, one catalog per language in ``locales/<lang>.json`` (UTF-8): ``strings``, the
portal's words by key (``str.format`` placeholders such as ``{count}``), and ``kinds``, the label of
each registry ``kind``. A translator edits a file, never this module; ``tests/test_locales.py`` fails
when a shipped language has no catalog, or its catalog lacks an English key or changes its placeholders.

Every shipped language has every key, so a page never falls back to English for the site's own words.
The Khmer and Tagalog catalogs were written without a native speaker and need review by one (see
docs/languages.md). DTPR names and descriptions come localised from the taxonomy. Text that does fall
back to English (registry fields without a translation, a key a future catalog lacks) is marked
``lang="en"`` so screen readers switch voice.

One build writes every language (``page_prefix``): the first at the site root, each other under
``<lang>/``, all sharing the data files at the root.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from markupsafe import Markup, escape

from pipelines.registry.model import Deployment
from pipelines.registry.taxonomy import SUPPORTED_LANGS

LOCALE_DIR = Path(__file__).resolve().parent / "locales"
SOURCE_LANG = "en"  # every key exists in English; the other catalogs translate it
# The languages a build writes unless told otherwise: the DTPR taxonomy's six; each has a catalog.
SHIPPED_LANGS: tuple[str, ...] = SUPPORTED_LANGS


@dataclass(frozen=True)
class Catalog:
    """One language's words: ``strings`` by key, ``kinds`` by registry kind slug."""

    strings: dict[str, str]
    kinds: dict[str, str]


def catalog_path(lang: str) -> Path:
    return LOCALE_DIR / f"{lang}.json"


def catalog_langs() -> tuple[str, ...]:
    """The languages that have a catalog, in name order."""
    return tuple(sorted(p.stem for p in LOCALE_DIR.glob("*.json")))


@cache
def load_catalog(lang: str) -> Catalog:
    """The catalog of ``lang``, read once; a language without a file has an empty one."""
    path = catalog_path(lang)
    if not path.is_file():
        return Catalog({}, {})
    doc = json.loads(path.read_text(encoding="utf-8"))
    return Catalog(dict(doc["strings"]), dict(doc["kinds"]))


STRINGS: dict[str, dict[str, str]] = {lang: load_catalog(lang).strings for lang in catalog_langs()}
EN = STRINGS[SOURCE_LANG]


class Translator:
    """Portal words in one language, with English where that language has no translation yet."""

    def __init__(self, lang: str):
        self.lang = lang
        self._own = load_catalog(lang).strings

    def text(self, key: str, **values: object) -> str:
        """Plain text (for attributes and SVG): the translation, or English."""
        template = self._own.get(key) or EN[key]
        return template.format(**values) if values else template

    def is_fallback(self, key: str) -> bool:
        return self.lang != SOURCE_LANG and key not in self._own

    def markup(self, key: str, **values: object) -> Markup:
        """Escaped text for element content; English fallback is marked ``lang="en"``."""
        text = escape(self.text(key, **values))
        return Markup(f'<span lang="en">{text}</span>') if self.is_fallback(key) else Markup(text)

    def markup_or(self, key: str, english: str) -> Markup:
        """``markup(key)`` when the catalogs have ``key``, else ``english`` (text from elsewhere in the
        code, e.g. a table's title), marked ``lang="en"`` on a page in another language."""
        if key in EN:
            return self.markup(key)
        if self.lang == SOURCE_LANG:
            return Markup(escape(english))
        return Markup(f'<span lang="en">{escape(english)}</span>')


def kind_label(kind: str, lang: str) -> tuple[str, str]:
    """(label, language of the label) for a registry ``kind`` slug; unknown kinds are their slug in words."""
    own = load_catalog(lang).kinds.get(kind)
    if own:
        return own, lang
    return load_catalog(SOURCE_LANG).kinds.get(kind) or kind.replace("_", " ").capitalize(), "en"


def page_prefix(lang: str, languages: Sequence[str]) -> str:
    """Where ``lang``'s pages are, relative to the site root: "" for the build's first language, else
    ``"<lang>/"``. ``languages`` is the build's list, first language first."""
    if lang not in languages:
        raise ValueError(f"language {lang!r} is not one of this build's ({', '.join(languages)})")
    return "" if lang == languages[0] else f"{lang}/"


def build_languages(requested: str | Iterable[str] | None) -> tuple[str, ...]:
    """The languages one build writes, first language first: ``requested`` as a list or one string of
    codes separated by commas or spaces (``SENSORLOG_PORTAL_LANG="en,km"``), repeats dropped; empty or
    None: every shipped language. ValueError names any code that is not shipped."""
    if isinstance(requested, str):
        requested = requested.replace(",", " ").split()
    langs = tuple(dict.fromkeys(code.strip() for code in requested or () if code.strip()))
    unknown = [code for code in langs if code not in SHIPPED_LANGS]
    if unknown:
        raise ValueError(f"languages: {', '.join(map(repr, unknown))} not one of {', '.join(SHIPPED_LANGS)}")
    return langs or SHIPPED_LANGS


def language_name(lang: str) -> str:
    """A language's own name for itself (its catalog's ``language_name``), as a language switcher shows it."""
    return load_catalog(lang).strings.get("language_name") or lang


def language_links(lang: str, languages: Sequence[str], site_root: str) -> list[dict[str, object]]:
    """A language switcher's entries, in the build's order: each language's code, own name, and the prefix
    from the current page (whose relative path to the site root is ``site_root``) to that language's
    pages; the page appends its own path within a language. Empty for a one-language build."""
    if len(languages) < 2:
        return []
    return [{"code": code, "name": language_name(code), "prefix": site_root + page_prefix(code, languages),
             "current": code == lang} for code in languages]


class Localised(str):
    """Registry text for a page, with the language it is in (``lang``): the page's when the registry
    translates the field, else English. A ``str`` (it sorts, formats and compares as its text); the
    templates' ``en()`` marks it ``lang="en"`` only when it fell back."""

    lang: str

    def __new__(cls, text: str, lang: str) -> Localised:
        self = super().__new__(cls, text)
        self.lang = lang
        return self

    @property
    def text(self) -> str:
        return str.__str__(self)


def registry_text(deployment: Deployment, attribute: str, lang: str) -> Localised | None:
    """A translatable registry field (``registry.model.TRANSLATABLE``) for a page in ``lang``."""
    text, text_lang = deployment.text_in(attribute, lang)
    return None if text is None else Localised(text, text_lang)
