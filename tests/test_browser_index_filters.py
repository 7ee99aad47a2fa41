"""The index's filters by kind, organisation and status in a real headless Chromium (Debian's, driven by
Playwright), on the sample registry with no events (the build takes seconds)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.config import PROJECT_DIR, Settings
from pipelines.registry import load_registry

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.system,
    pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)"),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory) -> Path:
    from pipelines.portal import build_portal

    root = tmp_path_factory.mktemp("filters")
    settings = Settings.from_env({"SENSORLOG_HOME": str(root / "home"),
                                  "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry")})
    build_portal(settings, str(root / "site"), base_url="https://data.riverton.example/")
    return root / "site" / "index.html"


@pytest.fixture(scope="module")
def page(index):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        tab.on("pageerror", lambda e: errors.append(str(e)))
        tab.goto(index.as_uri())
        tab.wait_for_load_state("load")
        assert errors == []
        yield tab
        browser.close()


def _visible(page) -> list:
    return [r for r in page.locator("#deployments tbody tr").all() if r.is_visible()]


def test_filters_by_kind_organisation_and_status(page):
    registry = load_registry(PROJECT_DIR / "registry")
    assert len(_visible(page)) == len(registry)
    page.select_option("#filter-kind", "alpr")
    kinds = {r.get_attribute("data-kind") for r in _visible(page)}
    assert kinds == {"alpr"}
    assert len(_visible(page)) == sum(d.kind == "alpr" for d in registry)
    organisation = next(d.accountable_organisation for d in registry if d.kind == "alpr")
    page.select_option("#filter-org", organisation)
    rows = _visible(page)
    assert rows and all(r.locator("td").nth(1).inner_text().strip() == organisation for r in rows)
    assert len(rows) == sum(d.kind == "alpr" and d.accountable_organisation == organisation for d in registry)
    assert page.locator("#shown").inner_text().startswith(f"{len(rows)} of {len(registry)}")
    page.select_option("#filter-kind", "")
    page.select_option("#filter-org", "")
    page.select_option("#filter-status", "active")
    assert {r.get_attribute("data-status") for r in _visible(page)} == {"active"}
    page.select_option("#filter-status", "")
    assert len(_visible(page)) == len(registry)


def test_the_filters_are_labelled_and_reached_by_keyboard(page):
    for box in ("filter", "filter-kind", "filter-org", "filter-status"):
        assert page.locator(f'label[for="{box}"]').count() == 1
    page.focus("#filter")
    reached = []
    for _ in range(3):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.id"))
    assert reached == ["filter-kind", "filter-org", "filter-status"]
    page.focus("#filter-kind")
    page.keyboard.press("ArrowDown")  # a select changes with the keyboard alone
    assert page.evaluate("document.getElementById('filter-kind').value") != ""
    assert {r.get_attribute("data-kind") for r in _visible(page)} == {
        page.evaluate("document.getElementById('filter-kind').value")}
    page.select_option("#filter-kind", "")
