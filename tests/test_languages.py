"""One site, six languages (issue 18): one build writes every language sharing the data files, a language
switcher on every page, Khmer and Tagalog pages in their own words, registry text translated per field."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from conftest import DEPLOYMENT, make_event, ndjson
from typer.testing import CliRunner

from pipelines import flow
from pipelines.config import PROJECT_DIR, Settings
from pipelines.portal import build_portal
from pipelines.portal.i18n import SHIPPED_LANGS, catalog_path, page_prefix
from pipelines.registry import load_registry, validate_registry

pytestmark = pytest.mark.integration

BASE_URL = "https://data.riverton.example/sensors/"
OTHER = "cctv-city-hall-plaza"  # a second deployment, every field a plain text
KM_NAME = "កាមេរ៉ាសុវត្ថិភាពនៅទីលានតេស្ត"
ES_DESCRIPTION = "Cuatro cámaras fijas cubren la plaza de pruebas."
KM_LEGAL = "បទបញ្ញត្តិក្រុងលេខ ១២"
KM_STORAGE = "ប្រព័ន្ធគ្រប់គ្រងវីដេអូនៅសាលាក្រុង"
KM_ADDRESS = "ទីលានតេស្ត ផ្លូវលេខ ១"
# Data files, at the site root once: never under a language's folder.
DATA_FILES = ("data", "derived", "schemas", "log", "declarations", "data.json", "datapackage.json", "SHA256SUMS",
              "DTPR-ATTRIBUTION.md")


def _translated_record() -> str:
    """The sample plaza cameras as DEPLOYMENT, with name, description and legal basis given per language."""
    doc = yaml.safe_load((PROJECT_DIR / "registry" / f"{OTHER}.yaml").read_text(encoding="utf-8"))
    doc["id"] = DEPLOYMENT
    doc["name"] = {"en": "Test Plaza security cameras", "km": KM_NAME, "es": "Cámaras de la plaza de pruebas"}
    doc["description"] = {"en": doc["description"], "es": ES_DESCRIPTION}  # no Khmer: Khmer pages fall back
    doc["legal_basis"] = {"en": doc["legal_basis"], "km": KM_LEGAL}
    doc["storage"]["location"] = {"en": doc["storage"]["location"], "km": KM_STORAGE}
    doc["location"]["address"] = {"en": doc["location"]["address"], "km": KM_ADDRESS}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Settings:
    root = tmp_path_factory.mktemp("languages")
    registry = root / "registry"
    registry.mkdir()
    (registry / f"{DEPLOYMENT}.yaml").write_text(_translated_record(), encoding="utf-8")
    (registry / f"{OTHER}.yaml").write_text((PROJECT_DIR / "registry" / f"{OTHER}.yaml").read_text())
    (root / "home").mkdir()
    settings = Settings.from_env({
        "SENSORLOG_HOME": str(root / "home"), "SENSORLOG_LANDING": str(root / "landing"),
        "SENSORLOG_REGISTRY": str(registry), "SENSORLOG_NOW": "2026-08-01T00:00:00Z",
    })
    landed = Path(settings.landing) / "cams" / "a.ndjson"
    landed.parent.mkdir(parents=True)
    landed.write_bytes(ndjson([make_event("collection", 0), make_event("collection", 1), make_event("access", 2)]))
    flow.run(settings, workers=1)
    return settings


@pytest.fixture(scope="module")
def site(home, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = build_portal(home, str(out), base_url=BASE_URL)  # no language named: all six
    assert result.languages == list(SHIPPED_LANGS)
    return out


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def _tags(path: Path) -> list[tuple[str, dict[str, str | None]]]:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page.tags


def _lang_of(site: Path, path: Path) -> str:
    first = path.relative_to(site).parts[0]
    return first if first in SHIPPED_LANGS[1:] else SHIPPED_LANGS[0]


def test_one_build_writes_every_language_and_the_data_once(site):
    files = {p.relative_to(site).as_posix() for p in site.rglob("*") if p.is_file()}
    for name in ("data.json", "datapackage.json", "SHA256SUMS", "DTPR-ATTRIBUTION.md", "quality/validation.json"):
        assert [f for f in files if f.endswith(name)] == [name], name  # once, at the root
    for lang in SHIPPED_LANGS:
        prefix = page_prefix(lang, SHIPPED_LANGS)
        for page in ("index.html", f"deployments/{DEPLOYMENT}.html", f"deployments/{OTHER}.html",
                     "quality/index.html", f"signs/{DEPLOYMENT}-a4.svg", f"signs/{DEPLOYMENT}-letter.svg"):
            assert prefix + page in files, prefix + page
        if prefix:
            assert not any(f.startswith(prefix + d) for f in files for d in DATA_FILES), lang
    assert (site / "km" / "index.html").is_file() and not (site / "km" / "data").exists()
    # SHA256SUMS covers every other file of the site, pages of every language included.
    listed = {line.split("  ", 1)[1] for line in (site / "SHA256SUMS").read_text().splitlines()
              if re.fullmatch(r"[0-9a-f]{64}  \S.*", line)}
    assert listed == files - {"SHA256SUMS"}


def test_each_page_is_in_its_language_and_links_to_files_that_exist(site):
    pages = sorted(site.rglob("*.html"))
    first = {p.relative_to(site).as_posix() for p in pages if _lang_of(site, p) == SHIPPED_LANGS[0]}
    for lang in SHIPPED_LANGS[1:]:  # every language has every page the first language has
        assert {p.relative_to(site / lang).as_posix() for p in pages if _lang_of(site, p) == lang} == first
    for path in pages:
        tags = _tags(path)
        lang = _lang_of(site, path)
        assert next(a for t, a in tags if t == "html").get("lang") == lang, path
        for tag, attrs in tags:
            href = attrs.get("href")
            if tag != "a" or not href or href.startswith(("#", "mailto:", "tel:", "http:", "https:")):
                continue
            target = (path.parent / href.split("#")[0]).resolve()
            assert target.is_file() and site.resolve() in target.parents, (path.relative_to(site), href)


def test_every_page_offers_the_same_page_in_each_other_language(site):
    for page in ("index.html", f"deployments/{DEPLOYMENT}.html", "quality/index.html"):
        for lang in SHIPPED_LANGS:
            path = site / (page_prefix(lang, SHIPPED_LANGS) + page)
            links = {a.get("hreflang"): a for t, a in _tags(path) if t == "a" and a.get("hreflang")}
            assert set(links) == set(SHIPPED_LANGS) - {lang}, (path, sorted(links))
            for other, attrs in links.items():
                assert attrs.get("lang") == other
                target = (path.parent / str(attrs["href"])).resolve()
                assert target == (site / (page_prefix(other, SHIPPED_LANGS) + page)).resolve(), (path, attrs)
    km = (site / "km" / "index.html").read_text(encoding="utf-8")
    assert 'aria-current="true">ភាសាខ្មែរ</span>' in km  # the current language is named, not linked


class _OwnText(HTMLParser):
    """The text of a page outside any element marked English (``lang="en"``, inherited by its children),
    scripts, styles and command blocks: what a reader sees in the page's own language."""

    VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"})
    SKIP = frozenset({"script", "style", "pre", "code"})

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []  # (tag, hidden: in English or skipped)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        lang = dict(attrs).get("lang")
        hidden = self.stack[-1][1] if self.stack else False
        self.stack.append((tag, tag in self.SKIP or (lang == "en" if lang else hidden)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass  # <circle/>, <path/>: no text

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data: str) -> None:
        if not (self.stack and self.stack[-1][1]):
            self.parts.append(data)


def _visible_text(markup: str) -> str:
    parser = _OwnText()
    parser.feed(markup)
    return " ".join(parser.parts)


@pytest.mark.parametrize("lang", ["km", "tl"])
def test_khmer_and_tagalog_index_pages_contain_no_english_ui_words(site, lang):
    english = json.loads(catalog_path("en").read_text(encoding="utf-8"))
    own = json.loads(catalog_path(lang).read_text(encoding="utf-8"))
    # Words this language's own catalog uses too (Parquet, CSV, DCAT-US, Table Schema, Wi-Fi, SHA-256) are
    # legitimately the same; a language's own name is shown in that language on every page.
    own_words = " ".join(v for section in own.values() for v in section.values())
    text = _visible_text((site / lang / "index.html").read_text(encoding="utf-8"))
    found = []
    for section in ("strings", "kinds"):
        for key, value in english[section].items():
            if key == "language_name" or own[section][key] == value:
                continue
            # The literal parts of a template; short joining words ("of", "and") say nothing alone.
            for part in re.split(r"\{[^}]*\}", value):
                part = part.strip(" .,:;()…-–")
                if len(part) < 5 or part in own_words:
                    continue
                if re.search(r"(?<![\w-])" + re.escape(part) + r"(?![\w-])", text):
                    found.append(f"{key}: {part!r}")
    assert found == []


def test_registry_text_is_in_the_page_s_language_or_marked_english(site):
    km = (site / "km" / "deployments" / f"{DEPLOYMENT}.html").read_text(encoding="utf-8")
    assert f"<h1>{KM_NAME}</h1>" in km  # translated: in the page's language, unmarked
    assert KM_LEGAL in km and f'<span lang="en">{KM_LEGAL}' not in km
    assert f"<li>{KM_STORAGE}</li>" in km  # the DTPR card's storage line
    assert re.search(rf"<dd>{KM_ADDRESS} · [0-9.-]+, [0-9.-]+ · ថេរ</dd>", km), "location in Khmer, unmarked"
    description = yaml.safe_load(_translated_record())["description"]["en"]
    assert f'<span lang="en">{html.escape(description)}</span>' in km  # no Khmer: English, marked
    es = (site / "es" / "deployments" / f"{DEPLOYMENT}.html").read_text(encoding="utf-8")
    assert ES_DESCRIPTION in es and f'<span lang="en">{ES_DESCRIPTION}' not in es
    assert '<h1>Cámaras de la plaza de pruebas</h1>' in es
    en = (site / "deployments" / f"{DEPLOYMENT}.html").read_text(encoding="utf-8")
    assert "<h1>Test Plaza security cameras</h1>" in en and KM_NAME not in en
    # A record in plain text is English everywhere, marked on the other languages' pages.
    other = (site / "km" / "deployments" / f"{OTHER}.html").read_text(encoding="utf-8")
    assert '<h1><span lang="en">City Hall Plaza security cameras</span></h1>' in other
    km_index = (site / "km" / "index.html").read_text(encoding="utf-8")
    assert f">{KM_NAME}</a>" in km_index and '<span lang="en">City Hall Plaza security cameras</span>' in km_index


def test_the_registry_exports_keep_the_translations(site):
    exported = json.loads((site / "data" / "registry" / "deployments.json").read_text(encoding="utf-8"))
    record = next(d for d in exported["deployments"] if d["id"] == DEPLOYMENT)
    assert record["name"]["km"] == KM_NAME and record["description"]["es"] == ES_DESCRIPTION
    csv = (site / "data" / "registry" / "deployments.csv").read_text(encoding="utf-8")
    assert "Test Plaza security cameras" in csv  # the CSV's one name column holds the English text
    catalog = (site / "data.json").read_text(encoding="utf-8")
    assert KM_NAME not in catalog


def test_each_language_s_sign_points_to_that_language_s_page(site):
    for lang in SHIPPED_LANGS:
        prefix = page_prefix(lang, SHIPPED_LANGS)
        sign = (site / prefix / "signs" / f"{DEPLOYMENT}-a4.svg").read_text(encoding="utf-8")
        assert f"{BASE_URL}{prefix}deployments/{DEPLOYMENT}.html" in sign, lang
        others = [f"{BASE_URL}{page_prefix(o, SHIPPED_LANGS)}deployments/{DEPLOYMENT}.html"
                  for o in SHIPPED_LANGS if o != lang]
        assert not any(url in sign for url in others), lang


def _record(**changes: object) -> dict:
    doc = yaml.safe_load(_translated_record())
    doc.update(changes)
    return doc


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": {"km": KM_NAME}}, "name.en", "required"),
        ({"name": {"en": "Cameras", "de": "Kameras"}}, "name.de", "allowed fields: en, es"),
        ({"description": {"en": "x" * 1001}}, "description.en", "at most 1000"),
        ({"legal_basis": {"en": "Ordinance 12", "km": ""}}, "legal_basis.km", "non-empty"),
        ({"name": ["Cameras"]}, "name", "text or a mapping"),
    ],
)
def test_a_bad_translation_is_refused_naming_the_field(tmp_path, changes, field, words):
    (tmp_path / f"{DEPLOYMENT}.yaml").write_text(yaml.safe_dump(_record(**changes), allow_unicode=True))
    problems = validate_registry(tmp_path)
    assert [p.field for p in problems if not p.warning] == [field], problems
    assert words in problems[0].expected and problems[0].file.endswith(f"{DEPLOYMENT}.yaml")


def test_a_translated_record_loads_with_english_as_its_text(tmp_path):
    (tmp_path / f"{DEPLOYMENT}.yaml").write_text(_translated_record(), encoding="utf-8")
    d = next(iter(load_registry(tmp_path)))
    assert d.name == "Test Plaza security cameras"  # what sorts, and what the CSV and DCAT say
    assert d.text_in("name", "km") == (KM_NAME, "km")
    assert d.text_in("name", "fr") == ("Test Plaza security cameras", "en")  # no French: English
    assert d.text_in("description", "es") == (ES_DESCRIPTION, "es")
    assert d.text_in("legal_basis", "km") == (KM_LEGAL, "km")


def test_the_cli_and_the_dag_build_the_languages_asked_for(home, tmp_path, monkeypatch):
    from pipelines import dag_params
    from pipelines.cli import app

    for name in ("SENSORLOG_HOME", "SENSORLOG_LANDING", "SENSORLOG_REGISTRY", "SENSORLOG_NOW"):
        monkeypatch.setenv(name, {"SENSORLOG_HOME": home.home, "SENSORLOG_LANDING": home.landing,
                                  "SENSORLOG_REGISTRY": home.registry,
                                  "SENSORLOG_NOW": "2026-08-01T00:00:00Z"}[name])
    result = CliRunner().invoke(app, ["portal", "--out", str(tmp_path / "cli"), "--lang", "km,en",
                                      "--base-url", BASE_URL])
    assert result.exit_code == 0, result.output
    assert '<html lang="km">' in (tmp_path / "cli" / "index.html").read_text(encoding="utf-8")
    assert (tmp_path / "cli" / "en" / "index.html").is_file() and not (tmp_path / "cli" / "es").exists()
    built = dag_params.build_portals(home, str(tmp_path / "dag"), ["tl", "fr"])
    assert [(b["lang"], b["out"]) for b in built] == [("tl", str(tmp_path / "dag")),
                                                       ("fr", str(tmp_path / "dag" / "fr"))]
    assert built[0]["files"] == built[1]["files"] and built[0]["pages"] == built[1]["pages"] > 0
    assert len(list((tmp_path / "dag").rglob("data.json"))) == 1
    bad = CliRunner().invoke(app, ["portal", "--out", str(tmp_path / "x"), "--lang", "en,xx"])
    assert bad.exit_code == 2 and "'xx'" in bad.output
