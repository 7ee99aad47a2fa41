"""The portal and the audit report for a big registry: bounded pages, access summaries that add up,
charts on each deployment's own period, an index with filters and counts per organisation, deployments
without coordinates listed, and the sample city's defaults reported instead of published silently."""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from audit_kit import deployment, hourly, local, publish, settings_for

from pipelines import portal as portal_module
from pipelines.audit import report as audit_report
from pipelines.config import Settings
from pipelines.dev.bigregistry import write_registry
from pipelines.portal import build_portal, glance, pages
from pipelines.portal.activity import CHART_BARS, chart_buckets
from pipelines.portal.svg import CLUSTER_DEGREES, MapPoint, clusters
from pipelines.registry import load_registry
from pipelines.registry.sample import is_sample_registry, sample_ids

pytestmark = pytest.mark.integration

BASE_URL = "https://sensors.example.org/"
# The bound this test holds every page to. Each list a page shows is cut at a fixed size (pages.py), so
# a page's weight does not grow with the registry; 10,000 deployments measured about the same.
PAGE_BOUND = 1_000_000
GENERATED = 220
BIG_GRANTS = 640  # about as many named grants as a record of at most MAX_RECORD_BYTES holds
LOG_FIRST, LOG_LAST = date(2026, 1, 1), date(2026, 6, 30)


def _doc(dep_id: str, commissioned: str, **location: object) -> dict:
    doc = deployment(dep_id, {"video": "P30D"}, commissioned=commissioned)
    doc["name"] = f"Scale test {dep_id}"
    if location:
        doc["location"] = {"mobility": "fixed", **location}
    return doc


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Settings:
    """A generated registry of a few hundred deployments plus four hand-made ones, with a little
    published collection: one deployment reporting over the whole log, one commissioned in its middle,
    one whose vendor reports 30-day totals."""
    root = tmp_path_factory.mktemp("scale")
    registry = root / "registry"
    write_registry(registry, GENERATED, GENERATED * 8, seed=7)
    big = _doc("zz-big-access", "2025-01-01")
    big["access"]["grants"] = [
        {"organisation": f"Agency {i:04d}", "roles": ["analyst" if i % 3 else "detective"],
         "purpose": "Investigations" if i % 5 else "Audits"}
        for i in range(BIG_GRANTS)
    ]
    docs = [big, _doc("zz-whole-log", "2025-06-01"), _doc("zz-late", "2026-03-10"), _doc("zz-monthly", "2026-02-01"),
            {**_doc("zz-nowhere", "2026-01-01"), "location": {"mobility": "fixed", "area": "Somewhere in town"}}]
    for doc in docs:
        (registry / f"{doc['id']}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    settings = Settings.from_env({"SENSORLOG_HOME": str(root / "home"), "SENSORLOG_REGISTRY": str(registry)})
    rows = hourly("zz-whole-log", "video", LOG_FIRST) + hourly("zz-whole-log", "video", LOG_LAST)
    rows += [r for day in range(10) for r in hourly("zz-late", "video", date(2026, 3, 10) + timedelta(days=day))]
    start = local("2026-02-01")
    rows.append({"deployment_id": "zz-monthly", "data_class": "video", "window_start": start,
                 "window_end": start + timedelta(days=30), "records": 30_000, "event_id": "col-monthly",
                 "event_time": start + timedelta(days=30, minutes=5)})
    publish(settings, "collection", rows)
    return settings


def _build(settings: Settings, out: Path, **constants: int):
    """build_portal with signs stubbed (their QR codes are tested elsewhere and cost most of a build)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(portal_module, "render_sign", lambda *args, **kwargs: "<svg xmlns='http://www.w3.org/2000/svg'/>")
        for name, value in constants.items():
            mp.setattr(pages, name, value)
        return build_portal(settings, str(out), base_url=BASE_URL)


@pytest.fixture(scope="module")
def built(home, tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    return _build(home, out), out


class _Tables(HTMLParser):
    """Rows of every table (cell texts), by the table's id or class, and every link."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.links: list[str] = []
        self._stack: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._stack.append(a.get("id") or a.get("class") or f"table-{len(self.tables)}")
            self.tables.setdefault(self._stack[-1], [])
        elif tag == "tr" and self._stack:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "a" and a.get("href"):
            self.links.append(a["href"])

    def handle_endtag(self, tag):
        if tag == "table" and self._stack:
            self._stack.pop()
        elif tag == "tr" and self._row is not None and self._stack:
            self.tables[self._stack[-1]].append(self._row)
            self._row = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse(path: Path) -> _Tables:
    parser = _Tables()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def _number(text: str) -> int:
    return int(text.replace(",", ""))


# -- page weight -----------------------------------------------------------------------------------------


def test_every_page_stays_under_the_bound(built, home):
    _, out = built
    html = sorted(out.rglob("*.html"))
    assert len(html) >= GENERATED
    largest = max(html, key=lambda p: p.stat().st_size)
    assert largest.stat().st_size < PAGE_BOUND, (largest, largest.stat().st_size)
    # The deployment with 640 grants: its page summarises them, it does not list them (the access
    # card's top organisations, and the first screen's first few names).
    page = (out / "deployments" / "zz-big-access.html").read_text(encoding="utf-8")
    assert "Agency 0639" not in page and page.count("Agency 0") <= pages.ACCESS_TOP + glance.NAMED_PARTIES


# -- access summary --------------------------------------------------------------------------------------


def test_the_access_summary_adds_up_to_the_registrys_grants(built, home):
    _, out = built
    registry = load_registry(home.registry)
    summarised = [d for d in registry if len(d.current_policy.access) > pages.ACCESS_INLINE]
    assert any(d.id == "zz-big-access" for d in summarised)
    for d in summarised:
        grants = d.current_policy.access
        page = out / "deployments" / f"{d.id}.html"
        text = page.read_text(encoding="utf-8")
        organisations = len({g.organisation.casefold() for g in grants})
        assert f"{len(grants):,} access grants to {organisations:,} organisations." in text, d.id
        by_purpose = _parse(page).tables["compact"]
        purposes = Counter(g.purpose for g in grants)
        listed = {row[0]: _number(row[1]) for row in by_purpose[1:] if row[0] in purposes}
        assert listed == dict(purposes.most_common(pages.ACCESS_TOP)), d.id
        # The full list, on its own pages, holds every grant once.
        rows = []
        for path in sorted((out / "deployments").glob(f"{d.id}-access*.html")):
            rows += _parse(path).tables["grants"][1:]
        assert sorted((r[1], r[3]) for r in rows) == sorted((g.organisation, g.purpose) for g in grants), d.id
        assert f'href="{d.id}-access.html"' in text
    small = next(d for d in registry if 0 < len(d.current_policy.access) <= pages.ACCESS_INLINE)
    assert not list((out / "deployments").glob(f"{small.id}-access*.html"))
    assert small.current_policy.access[0].organisation in (out / "deployments" / f"{small.id}.html").read_text()


# -- charts ----------------------------------------------------------------------------------------------


def _daily(out: Path, dep_id: str) -> list[list[str]]:
    tables = _parse(out / "deployments" / f"{dep_id}.html").tables
    name = next(k for k, rows in tables.items() if rows and rows[0][0] in ("Date", "Week of", "Month"))
    return tables[name]


def test_a_chart_covers_its_deployments_own_period(built):
    _, out = built
    late = _daily(out, "zz-late")
    assert late[0][0] == "Date" and late[1][0] == "2026-03-10"  # its commissioning, not the log's first day
    assert late[-1][0] == LOG_LAST.isoformat()  # in service to the log's last day
    whole = _daily(out, "zz-whole-log")
    assert whole[1][0] == LOG_FIRST.isoformat()  # commissioned before the log began: from its first day
    assert len(whole) - 1 == (LOG_LAST - LOG_FIRST).days + 1 <= CHART_BARS


def test_a_thirty_day_total_is_a_plateau_not_a_spike(built):
    _, out = built
    rows = _daily(out, "zz-monthly")[1:]
    values = {r[0]: _number(r[-1]) for r in rows}
    window = [(date(2026, 2, 1) + timedelta(days=i)).isoformat() for i in range(30)]
    assert [values[d] for d in window] == [1000] * 30
    assert sum(values.values()) == 30_000
    assert "shared evenly over the days they cover" in (out / "deployments" / "zz-monthly.html").read_text()


def test_chart_buckets_are_days_then_weeks_then_months():
    assert chart_buckets(date(2026, 1, 1), date(2026, 12, 31))[0] == "day"
    bucket, starts = chart_buckets(date(2020, 1, 1), date(2026, 12, 31))
    assert bucket == "week" and starts[0] == date(2020, 1, 1) and len(starts) <= CHART_BARS
    bucket, starts = chart_buckets(date(2011, 5, 17), date(2026, 12, 31))
    assert bucket == "month" and starts[0] == date(2011, 5, 1) and starts[-1] == date(2026, 12, 1)
    bucket, starts = chart_buckets(date(1, 1, 1), date(2026, 12, 31))  # a clock reset to year 1
    assert bucket == "month" and len(starts) == CHART_BARS and starts[-1] == date(2026, 12, 1)


# -- index -----------------------------------------------------------------------------------------------


def test_the_index_has_filters_and_counts_per_organisation(built, home):
    _, out = built
    registry = load_registry(home.registry)
    html = (out / "index.html").read_text(encoding="utf-8")
    for box in ("filter", "filter-kind", "filter-org", "filter-status"):
        assert f'<label for="{box}">' in html and f'id="{box}"' in html
    for d in registry:
        assert f'<option value="{d.kind}">' in html
    counts = Counter(d.accountable_organisation for d in registry)
    table = _parse(out / "index.html").tables["per-org"]
    assert {row[0]: _number(row[1]) for row in table[1:]} == counts
    assert sum(_number(r[1]) for r in table[1:]) == len(registry)
    rows = _parse(out / "index.html").tables["deployments"][1:]
    assert len(rows) == len(registry)


def test_long_lists_are_paged(home, tmp_path):
    """The index beyond LIST_ROWS deployments (one list per organisation too) and the full access list
    beyond ACCESS_PAGE grants, with smaller sizes than a real build's so a small registry shows them."""
    _build(home, tmp_path, LIST_ROWS=60, ACCESS_PAGE=300)
    paths = sorted((tmp_path / "deployments").glob("zz-big-access-access*.html"))
    assert [p.name for p in paths] == ["zz-big-access-access-2.html", "zz-big-access-access-3.html",
                                       "zz-big-access-access.html"]
    assert sorted(len(_parse(p).tables["grants"]) - 1 for p in paths) == [40, 300, 300]
    registry = load_registry(home.registry)
    index_pages = [tmp_path / "index.html", *sorted(tmp_path.glob("index-*.html"))]
    assert len(index_pages) == -(-len(registry) // 60)
    names = [row[0] for p in index_pages for row in _parse(p).tables["deployments"][1:]]
    assert sorted(names) == sorted(d.name for d in registry)  # each deployment once, across the pages
    listed = Counter()
    for path in (tmp_path / "organisations").glob("*.html"):
        # A row links its deployment's page twice (its name, and the first screen's verdict): count the
        # pages each organisation list links, so each deployment is on exactly one list.
        linked = {link.split("#", 1)[0] for link in _parse(path).links if link.startswith("../deployments/")}
        for page in linked:
            assert (path.parent / page).resolve().is_file()
            listed[page] += 1
    assert len(listed) == len(registry) and set(listed.values()) == {1}
    first = _parse(tmp_path / "index.html")
    assert all((tmp_path / link).is_file() for link in first.links if link.startswith("organisations/"))


def test_deployments_without_coordinates_are_listed_under_the_map(built, home):
    _, out = built
    registry = load_registry(home.registry)
    html = (out / "index.html").read_text(encoding="utf-8")
    unmapped = [d for d in registry if d.lat is None or d.lon is None]
    assert any(d.id == "zz-nowhere" for d in unmapped)
    section = html[html.index('id="unmapped-heading"'):]
    assert f"Deployments without coordinates ({len(unmapped)})" in section
    for d in unmapped:
        assert f'href="deployments/{d.id}.html"' in section


def test_clusters_match_single_linkage_by_pairs():
    rng = random.Random(5)
    points = [MapPoint(f"p{i:03d}", "", "k", rng.uniform(30, 36), rng.uniform(-84, -78), None, "")
              for i in range(150)]

    def near(a, b):
        return abs(a.lat - b.lat) <= CLUSTER_DEGREES and abs(a.lon - b.lon) <= CLUSTER_DEGREES

    parent = {p.id: p.id for p in points}

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    for a in points:
        for b in points:
            if near(a, b):
                parent[root(a.id)] = root(b.id)
    expected = sorted(sorted(p.id for p in points if root(p.id) == r) for r in {root(p.id) for p in points})
    assert sorted([p.id for p in g] for g in clusters(points)) == expected


# -- no silent defaults ----------------------------------------------------------------------------------


def test_the_sample_citys_defaults_are_warned_about_and_noted(built):
    result, out = built
    warnings = [w for w in result.warnings if w.startswith("sample-city default")]
    assert any("SENSORLOG_PORTAL_PUBLISHER" in w for w in warnings)
    assert any("SENSORLOG_LOG_ORIGIN" in w for w in warnings)
    for page in (out / "index.html", out / "deployments" / "zz-late.html"):
        html = page.read_text(encoding="utf-8")
        assert 'class="demo-note"' in html and "sample city" in html and "City of Riverton" in html


def test_no_note_when_the_city_configured_its_own(home, tmp_path, monkeypatch):
    for name, value in {"SENSORLOG_PORTAL_PUBLISHER": "City of Elsewhere",
                        "SENSORLOG_PORTAL_CONTACT_NAME": "Elsewhere Privacy Office",
                        "SENSORLOG_PORTAL_CONTACT_EMAIL": "privacy@elsewhere.example.org"}.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env({"SENSORLOG_HOME": home.home, "SENSORLOG_REGISTRY": home.registry,
                                  "SENSORLOG_LOG_ORIGIN": "sensors.elsewhere.example.org/log"})
    result = _build(settings, tmp_path)
    assert not [w for w in result.warnings if w.startswith("sample-city default")], result.warnings
    assert 'class="demo-note"' not in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_the_sample_registry_is_the_sample_city():
    assert is_sample_registry(sorted(sample_ids())[:3]) and not is_sample_registry(["zz-late"])
    assert not is_sample_registry([])


# -- the audit report ------------------------------------------------------------------------------------


def test_a_big_audit_report_is_a_summary_and_a_page_per_deployment(tmp_path):
    n = audit_report.INLINE_DEPLOYMENTS + 5
    docs = [deployment(f"cam-{i:03d}", {"video": "P1D"}) for i in range(n)]
    s = settings_for(tmp_path, docs)
    publish(s, "collection", [r for i in range(n) for r in hourly(f"cam-{i:03d}", "video", "2026-07-01")])
    from pipelines.audit import AuditOptions, parse_as_of, run_audit

    result = run_audit(s, AuditOptions(as_of=parse_as_of("2026-07-10", s.timezone), silence_days=30))
    assert audit_report.is_split(result) and result.findings.num_rows >= n
    uri = audit_report.write_report(s, result)
    summary = Path(uri)
    folder = summary.with_suffix("")
    html = summary.read_text(encoding="utf-8")
    assert html.count("<svg") == 0 and f"{n} deployments were audited" in html
    assert html.count('<tr class="finding"') == min(result.findings.num_rows, audit_report.SUMMARY_FINDINGS)
    pages_written = sorted(p.name for p in folder.glob("cam-*.html"))
    assert pages_written == [f"cam-{i:03d}.html" for i in range(n)]
    for link in _parse(summary).links:
        assert (summary.parent / link).is_file(), link
    one = (folder / "cam-007.html").read_text(encoding="utf-8")
    assert one.count("<svg") == 1 and 'href="../audit_report.html"' in one
    findings = [f for f in result.finding_dicts() if f["deployment_id"] == "cam-007"]
    assert one.count('<tr class="finding"') == len(findings) > 0
    listing = _parse(folder / "deployments-1.html").tables["deployments-table"][1:]
    assert sorted(r[0] for r in listing) == [f"cam-{i:03d}" for i in range(n)]
    assert sum(_number(r[2]) for r in listing) == result.findings.num_rows
