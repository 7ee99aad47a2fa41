"""The published HTML in a real headless Chromium (Debian's, driven by Playwright): the portal's index
filters and sorts, pages make no network requests, read on a phone without sideways scrolling, and the
auditor's report renders its findings."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from conftest import NEEDS_CHROMIUM

from pipelines import flow, layout, storage
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import synthetic
from pipelines.portal.dtpr_card import dtpr_card
from pipelines.registry import load_registry

pytestmark = [
    pytest.mark.system,
    NEEDS_CHROMIUM,
]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from pipelines.audit import publish as audit_publish
    from pipelines.portal import build_portal

    root = tmp_path_factory.mktemp("browser")
    settings = Settings.from_env({"SENSORLOG_HOME": str(root / "home"),
                                  "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry")})
    options = synthetic.options_for(start=date(2026, 7, 1), end=date(2026, 7, 22), cadence="monthly")
    synthetic.write_city(load_registry(settings.registry), settings.landing, options)
    flow.run(settings)
    audit_publish(settings, now=datetime(2026, 7, 22, 12, tzinfo=UTC))  # "today" is the city's last day
    build_portal(settings)
    return settings, Path(layout.site_dir(settings))


def open_page(browser, path: Path, width: int = 1280):
    page = browser.new_page(viewport={"width": width, "height": 900})
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, requests, errors


def test_index_filters_and_sorts_without_a_server(site, browser):
    settings, root = site
    page, requests, errors = open_page(browser, root / "index.html")
    assert errors == []
    assert all(u.startswith(("file://", "data:")) for u in requests), [u for u in requests if "file://" not in u]
    rows = page.locator("#deployments tbody tr")
    total = rows.count()
    assert total == len(load_registry(settings.registry))
    assert page.locator("#search").is_visible()  # JS revealed the filter
    page.fill("#filter", "alpr")
    visible = [r for r in rows.all() if r.is_visible()]
    assert 0 < len(visible) < total
    assert all("alpr" in (r.get_attribute("data-search") or "").lower() for r in visible)
    page.fill("#filter", "")
    header = page.locator("#deployments thead th").nth(0)
    header.locator("button").click()
    first_names = [r.locator("th").inner_text().strip().lower() for r in rows.all()]
    assert header.get_attribute("aria-sort") == "ascending"
    assert first_names == sorted(first_names)
    header.locator("button").click()
    again = [r.locator("th").inner_text().strip().lower() for r in rows.all()]
    assert again == list(reversed(first_names))


def test_every_page_is_offline_and_fits_a_phone(site, browser):
    _, root = site
    pages = sorted(root.rglob("*.html"))
    assert len(pages) > 10
    for path in pages:
        page, requests, errors = open_page(browser, path, width=390)
        assert errors == [], f"{path.name}: {errors}"
        outside = [u for u in requests if not u.startswith(("file://", "data:"))]
        assert outside == [], f"{path.name} requested {outside}"
        assert page.evaluate("document.documentElement.lang")
        overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{path.relative_to(root)} scrolls sideways by {overflow}px on a phone"
        missing_alt = page.evaluate("[...document.images].filter(i => !i.hasAttribute('alt')).length")
        assert missing_alt == 0, f"{path.name}: images without alt text"
        page.close()


def test_deployment_page_shows_the_dtpr_card_in_order(site, browser):
    settings, root = site
    registry = load_registry(settings.registry)
    dep = registry["alpr-river-road-bridge"]
    # The English page (the build's first language, at the root); the other languages are in <lang>/.
    candidates = [p for p in (root / "deployments").glob("*.html") if dep.id in p.name]
    assert candidates, "no page for the deployment"
    page, _, errors = open_page(browser, candidates[0])
    assert errors == []
    assert dep.name in page.inner_text("body")
    # the card's category headings, as the browser lays them out, between the card and "what it did"
    headings = page.evaluate("""() => {
        const start = document.getElementById('card-heading'), end = document.getElementById('did-heading');
        return [...document.querySelectorAll('h3')].filter(h =>
            start.compareDocumentPosition(h) & Node.DOCUMENT_POSITION_FOLLOWING &&
            h.compareDocumentPosition(end) & Node.DOCUMENT_POSITION_FOLLOWING).map(h => h.innerText.trim());
    }""")
    assert headings == [section.category_name for section in dtpr_card(dep)]
    assert len(headings) == 8
    shot = page.screenshot(full_page=True)
    assert len(shot) > 10_000


def test_auditors_report_renders_its_findings(site, browser):
    settings, _ = site
    report = Path(layout.reports_dir(settings)) / "audit_report.html"
    page, requests, errors = open_page(browser, report)
    assert errors == [] and all(u.startswith(("file://", "data:")) for u in requests)
    findings = json.loads(storage.read_bytes(storage.join(layout.derived_dir(settings, "findings"),
                                                          "findings.json")))["findings"]
    body = page.inner_text("body")
    for finding in findings:
        assert finding["deployment_id"] in body
    assert page.locator("svg").count() >= 1  # the retained-over-time charts are inline SVG


def test_deployment_page_shows_its_declared_versions(site, browser):
    _, root = site
    path = root / "deployments" / "alpr-river-road-bridge.html"
    page, _, errors = open_page(browser, path, width=390)
    assert errors == []
    assert page.locator("#declared-heading").is_visible()
    assert "Declared in the log since" in page.inner_text("dl.facts")
    rows = page.locator("table.declarations tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-change") == "first"
    for link in page.locator("dd.declared-since a").all():
        href = link.get_attribute("href")
        assert href.startswith("#") or (path.parent / href).resolve().is_file(), href
