"""axe-core, run in headless Chromium inside the published pages: no serious or critical violation on the
index, a deployment page in every language the site was built in, and the auditor's report, on a phone
(390x844) and a desktop (1280x800). axe comes from the npm registry, pinned in package-lock.json and
installed by ``make test`` (``npm ci``) into node_modules/; it is injected from that file, so nothing is
fetched from the network."""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from conftest import NEEDS_CHROMIUM

from pipelines import flow, layout
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import synthetic
from pipelines.registry import load_registry
from pipelines.registry.taxonomy import SUPPORTED_LANGS

AXE = PROJECT_DIR / "node_modules" / "axe-core" / "axe.min.js"
VIEWPORTS = {"phone": (390, 844), "desktop": (1280, 800)}
BLOCKING = ("serious", "critical")
DEPLOYMENT = "alpr-river-road-bridge"  # has a chart, commands, a DTPR card and declared versions
# A few of the sample registry's deployments, enough for every kind of page element: charts, findings of
# several severities (indefinite retention, an undeclared data class), two map panels (Riverton, Boston).
SUBSET = ("alpr-river-road-bridge", "cctv-city-hall-plaza", "aq-northside-elementary", "cctv-riverside-park-pavilion",
          "boston-kenmore-soofa-sign", "boston-numina-seaport", "counter-main-street-loop", "alpr-patrol-mobile")

pytestmark = [
    pytest.mark.system,
    NEEDS_CHROMIUM,
]


def find_axe(path: Path = AXE) -> Path:
    # Not a skip: a missing axe would let every page pass unchecked.
    if not path.is_file():
        pytest.fail(f"axe-core not found at {path}: run `make test` (or `npm ci`) at the project root first")
    return path


@pytest.fixture(scope="module")
def axe_source() -> Path:
    return find_axe()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The small city of tests/test_browser.py, a week of eight of its deployments (the pages' shape does
    not depend on how many or how long): audited, the portal built in every language."""
    from pipelines.audit import publish as audit_publish
    from pipelines.portal import build_portal

    root = tmp_path_factory.mktemp("a11y")
    registry = root / "registry"
    registry.mkdir()
    for name in SUBSET:
        shutil.copy(PROJECT_DIR / "registry" / f"{name}.yaml", registry)
    settings = Settings.from_env({"SENSORLOG_HOME": str(root / "home"), "SENSORLOG_REGISTRY": str(registry)})
    options = synthetic.options_for(start=date(2026, 7, 1), end=date(2026, 7, 8), cadence="monthly")
    synthetic.write_city(load_registry(settings.registry), settings.landing, options)
    flow.run(settings)
    audit_publish(settings, now=datetime(2026, 7, 8, 12, tzinfo=UTC))
    build_portal(settings)
    return settings, Path(layout.site_dir(settings))


def languages(root: Path) -> list[tuple[str, Path]]:
    """(language, folder of its pages): the first language at the root, each other one under ``<lang>/``,
    whichever the build wrote."""
    found = [(lang, root / lang) for lang in SUPPORTED_LANGS if (root / lang / "index.html").is_file()]
    first = next(lang for lang in SUPPORTED_LANGS if lang not in {f for f, _ in found})
    return [(first, root), *found]


def axe_violations(browser, path: Path, viewport: tuple[int, int], axe: Path) -> list[dict]:
    page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        page.add_script_tag(path=str(axe))
        result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    finally:
        page.close()
    assert [u for u in requests if not u.startswith(("file://", "data:"))] == []
    return result["violations"]


def blocking(violations: list[dict]) -> list[str]:
    """One line per serious or critical rule broken: the rule, its impact, how many nodes, the first node."""
    return [f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes, e.g. {v['nodes'][0]['target']}): {v['help']}"
            for v in violations if v["impact"] in BLOCKING]


def pages_to_check(settings: Settings, root: Path) -> dict[str, Path]:
    pages = {"index": root / "index.html"}
    for lang, folder in languages(root):
        pages[f"deployment [{lang}]"] = folder / "deployments" / f"{DEPLOYMENT}.html"
    pages["audit report"] = Path(layout.reports_dir(settings)) / "audit_report.html"
    return pages


@pytest.mark.parametrize("viewport", sorted(VIEWPORTS))
def test_axe_finds_no_serious_or_critical_violation(site, browser, axe_source, viewport):
    settings, root = site
    pages = pages_to_check(settings, root)
    for path in pages.values():
        assert path.is_file(), path
    found = {name: blocking(axe_violations(browser, path, VIEWPORTS[viewport], axe_source))
             for name, path in pages.items()}
    assert {name: lines for name, lines in found.items() if lines} == {}


def test_every_language_built_is_checked(site):
    _, root = site
    langs = languages(root)
    assert langs[0][1] == root
    # a language folder holds its own deployment pages, which the axe test opens
    for _lang, folder in langs:
        assert (folder / "deployments" / f"{DEPLOYMENT}.html").is_file()


def test_missing_axe_fails_with_a_clear_message(tmp_path):
    with pytest.raises(pytest.fail.Exception, match="axe-core not found at .*nowhere.*npm ci"):
        find_axe(tmp_path / "nowhere" / "axe.min.js")


def test_the_reports_filters_narrow_the_findings(site, browser):
    settings, _ = site
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto((Path(layout.reports_dir(settings)) / "audit_report.html").as_uri())
    rows = page.locator("#findings-table tr.finding")
    total = rows.count()
    assert total > 1 and page.locator("#filters").is_visible()  # the script revealed the filters
    severities = {r.get_attribute("data-severity") for r in rows.all()}
    chosen = sorted(severities)[0]
    page.select_option("#filter-severity", chosen)
    visible = [r for r in rows.all() if r.is_visible()]
    assert 0 < len(visible) <= total and all(r.get_attribute("data-severity") == chosen for r in visible)
    assert page.inner_text("#findings-shown").startswith(f"{len(visible)} of {total}")
    page.select_option("#filter-severity", "")
    assert all(r.is_visible() for r in rows.all())
    assert page.locator("code.prove").count() >= total  # every finding's evidence names its proof command
    page.close()


def test_the_index_map_has_a_basemap_and_a_key(site, browser):
    _, root = site
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto((root / "index.html").as_uri())
    assert page.locator("svg.map g.basemap path").count() >= 10
    keys = page.locator("ol.map-key li a")
    markers = page.locator("svg.map text.marker-label")
    assert keys.count() == markers.count() > 0
    assert page.locator("#unmapped-heading").count() <= 1  # the list of deployments without coordinates stays
    page.close()


def test_every_scrolling_table_frame_is_a_named_region(site):
    """A frame that takes the keyboard focus to scroll its table is announced as a region with the
    table's name, not as an unnamed group a screen reader can only call "clickable"."""
    from html.parser import HTMLParser

    frames: list[tuple[str, dict[str, str | None]]] = []

    class Frames(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if dict(attrs).get("tabindex") == "0":
                frames.append((self.page, dict(attrs)))

    _, root = site
    for path in sorted(root.rglob("*.html")):
        parser = Frames()
        parser.page = str(path.relative_to(root))
        parser.feed(path.read_text(encoding="utf-8"))
    assert frames, "no scrolling table frame found: the test no longer sees the pages"
    unnamed = [(page, attrs) for page, attrs in frames
               if attrs.get("role") != "region" or not (attrs.get("aria-label") or attrs.get("aria-labelledby"))]
    assert unnamed == []
