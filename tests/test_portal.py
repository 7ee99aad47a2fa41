"""The open-data portal, built on a small generated city: catalog, data package, extracts, pages, signs, S3."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import date, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pipelines import flow, site_files, storage
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import synthetic
from pipelines.portal import build_portal
from pipelines.portal.datapackage import validate_datapackage
from pipelines.portal.dcat import validate_catalog
from pipelines.portal.extracts import table_folder
from pipelines.portal.i18n import SHIPPED_LANGS, STRINGS
from pipelines.portal.signs import qr_matrix
from pipelines.registry import load_registry
from pipelines.registry.taxonomy import CATEGORY_ORDER, load_taxonomy

pytestmark = pytest.mark.integration

BASE_URL = "https://data.riverton.example/sensors/"
# Spans a month boundary, so the small CSV threshold below splits tables into monthly files.
START, END = date(2026, 6, 24), date(2026, 7, 8)
CSV_MONTH_ROWS = 3000
TABLES = (
    "collection", "deletion", "access", "lifecycle", "vendor_snapshot", "retention_ledger", "findings", "declaration",
)
ISO_WITH_OFFSET = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{6})?\+00:00")
LICENCE_LINKS = {"https://creativecommons.org/publicdomain/zero/1.0/", "https://creativecommons.org/licenses/by/4.0/"}


# -- fixtures --------------------------------------------------------------------------------------


def _settings(home: Path, **extra: str) -> Settings:
    return Settings.from_env({
        "SENSORLOG_HOME": str(home),
        "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry"),
        **extra,
    })


@pytest.fixture(scope="module")
def city(tmp_path_factory) -> Settings:
    """Two weeks of the sample city, ingested, logged and audited."""
    settings = _settings(tmp_path_factory.mktemp("city") / "home")
    registry = load_registry(settings.registry)
    synthetic.write_city(registry, settings.landing, synthetic.options_for(start=START, end=END))
    flow.run(settings)
    from pipelines.audit import AuditOptions, parse_as_of
    from pipelines.audit.run import run_audit, write_outputs

    # As of the generated city's last day, not today (the audit's default would find every feed silent).
    write_outputs(settings, run_audit(settings, AuditOptions(as_of=parse_as_of(END, settings.timezone))))
    return settings


@pytest.fixture(scope="module")
def site(city, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = build_portal(city, str(out), base_url=BASE_URL, csv_month_rows=CSV_MONTH_ROWS)
    assert result.missing == [] and result.log_available and result.warnings == []
    return out


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _local(site: Path, url: str) -> Path:
    assert url.startswith(BASE_URL), url
    return site / url[len(BASE_URL):].split("#")[0]


# -- data.json -------------------------------------------------------------------------------------


def test_data_json_is_valid_dcat_us_for_a_non_federal_publisher(site):
    catalog = _json(site / "data.json")
    assert validate_catalog(catalog) == []
    assert catalog["conformsTo"] == "https://project-open-data.cio.gov/v1.1/schema"
    names = [d["identifier"].rsplit("#", 1)[1] for d in catalog["dataset"]]
    assert sorted(names) == sorted([*TABLES, "registry"])
    registry = load_registry(PROJECT_DIR / "registry")
    bbox = ",".join(f"{v:.6f}".rstrip("0").rstrip(".") for v in registry.bbox())
    for dataset in catalog["dataset"]:
        assert dataset["accessLevel"] == "public"
        assert dataset["spatial"] == bbox
        assert "bureauCode" not in dataset and "programCode" not in dataset
        assert _local(site, dataset["describedBy"]).is_file()
        formats = {d["format"] for d in dataset["distribution"]}
        assert formats == ({"CSV", "JSON"} if dataset["title"].endswith("registry") else {"Apache Parquet", "CSV"})
        for dist in dataset["distribution"]:
            assert dist["downloadURL"].startswith(BASE_URL) and dist["mediaType"]
    temporal = next(d for d in catalog["dataset"] if d["identifier"].endswith("#collection"))["temporal"]
    assert temporal.startswith("2026-06-2") and "/2026-07-0" in temporal


def test_the_data_json_check_fails_on_a_broken_catalog(site):
    catalog = _json(site / "data.json")
    broken = json.loads(json.dumps(catalog))
    del broken["dataset"][0]["title"]
    assert any("'title' is a required property" in e for e in validate_catalog(broken))
    broken = json.loads(json.dumps(catalog))
    del broken["dataset"][1]["distribution"][0]["mediaType"]  # a downloadURL needs its media type
    assert validate_catalog(broken)
    broken = json.loads(json.dumps(catalog))
    broken["dataset"][2]["contactPoint"]["hasEmail"] = "privacy at riverton"
    assert validate_catalog(broken)
    broken = json.loads(json.dumps(catalog))
    broken["dataset"][3]["distribution"][0]["downloadURL"] = "data/collection/collection.csv"  # not absolute
    assert validate_catalog(broken)


def test_checksums_in_data_json_match_the_files(site):
    catalog = _json(site / "data.json")
    checked = 0
    for dataset in catalog["dataset"]:
        for dist in dataset["distribution"]:
            data = _local(site, dist["downloadURL"]).read_bytes()
            assert dist["checksum"] == {
                "@type": "Checksum", "algorithm": "SHA-256", "checksumValue": hashlib.sha256(data).hexdigest()
            }
            assert dist["byteSize"] == str(len(data))
            checked += 1
    assert checked >= 15
    # And every file of the site is in the signed SHA256SUMS with its real digest.
    listed = site_files.open_list((site / "SHA256SUMS").read_text(), (site / "log" / "log.vkey").read_text())
    files = {p for p in site.rglob("*") if p.is_file() and p.name != "SHA256SUMS"}
    assert {str(p.relative_to(site)) for p in files} == set(listed.files)
    for path, digest in listed.files.items():
        assert hashlib.sha256((site / path).read_bytes()).hexdigest() == digest


# -- datapackage.json ------------------------------------------------------------------------------


def test_datapackage_is_valid_with_explicit_schemas(site):
    assert validate_datapackage(str(site / "datapackage.json")) == []
    package = _json(site / "datapackage.json")
    names = {r["name"] for r in package["resources"]}
    assert {"collection-parquet", "findings-parquet", "registry-csv", "registry-json"} <= names
    for resource in package["resources"]:
        assert resource["hash"].startswith("sha256:")
        if resource["type"] == "table":
            assert resource["schema"]["fields"], resource["name"]  # written out, never inferred
    assert any("DTPR" in s["title"] for s in package["sources"])
    assert {lic["name"] for lic in package["licenses"]} == {"CC0-1.0", "CC-BY-4.0"}


def test_the_frictionless_cli_reports_the_package_valid(site):
    cli = Path(sys.executable).with_name("frictionless")
    done = subprocess.run([str(cli), "validate", "--json", "datapackage.json"], cwd=site, capture_output=True,
                          text=True, timeout=1800)  # a ceiling for a hang, not a speed limit
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads(done.stdout)["valid"] is True


def _one_resource_package(site: Path, tmp_path: Path, name: str) -> tuple[dict, Path]:
    package = _json(site / "datapackage.json")
    resource = next(r for r in package["resources"] if r["name"] == name)
    target = tmp_path / resource["path"]
    target.parent.mkdir(parents=True)
    shutil.copy(site / resource["path"], target)
    return {**package, "resources": [resource]}, target


def test_the_datapackage_check_fails_on_a_wrong_type_or_tampered_file(site, tmp_path):
    package, _ = _one_resource_package(site, tmp_path, "lifecycle-csv")
    (tmp_path / "datapackage.json").write_text(json.dumps(package))
    assert validate_datapackage(str(tmp_path / "datapackage.json")) == []

    wrong = json.loads(json.dumps(package))
    field = next(f for f in wrong["resources"][0]["schema"]["fields"] if f["name"] == "at")
    field["type"] = "integer"
    (tmp_path / "datapackage.json").write_text(json.dumps(wrong))
    assert any("type" in p for p in validate_datapackage(str(tmp_path / "datapackage.json")))

    (tmp_path / "datapackage.json").write_text(json.dumps(package))
    path = tmp_path / package["resources"][0]["path"]
    path.write_bytes(path.read_bytes().replace(b"firmware_changed", b"firmware_chang3d", 1))
    problems = validate_datapackage(str(tmp_path / "datapackage.json"))
    assert any("hash" in p for p in problems), problems


# -- CSV extracts ----------------------------------------------------------------------------------


def test_csv_extracts_are_rfc_4180_and_round_trip(site):
    package = _json(site / "datapackage.json")
    for table in TABLES:
        parquet_rows = pq.read_metadata(site / table_folder(table) / f"{table}.parquet").num_rows
        parts = [r for r in package["resources"] if r["name"].startswith(f"{table}-csv")]
        total = 0
        for resource in parts:
            raw = (site / resource["path"]).read_bytes()
            assert not raw.startswith(b"\xef\xbb\xbf")  # UTF-8 without a byte-order mark
            text = raw.decode("utf-8")
            assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")  # CRLF, no stray LF
            rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
            fields = resource["schema"]["fields"]
            assert rows[0] == [f["name"] for f in fields]
            assert all(len(r) == len(fields) for r in rows)
            for i, f in enumerate(fields):
                if f["type"] == "datetime":
                    values = [r[i] for r in rows[1:] if r[i]]
                    assert all(ISO_WITH_OFFSET.fullmatch(v) for v in values), (table, f["name"], values[:3])
                    assert all(datetime.fromisoformat(v).utcoffset() is not None for v in values)
            total += len(rows) - 1
        assert total == parquet_rows, table
    monthly = sorted(p.name for p in (site / "data/collection").glob("collection-*.csv"))
    assert monthly == ["collection-2026-06.csv", "collection-2026-07.csv"]
    for name in monthly:
        month = name[len("collection-"):-len(".csv")]
        with open(site / "data/collection" / name, newline="", encoding="utf-8") as fh:
            assert {row["window_start"][:7] for row in csv.DictReader(fh)} == {month}


def test_the_derived_extracts_are_outside_the_sites_data_root(site):
    """A reader of the site's data/ (``verify --data``, a glob over its partitions) never meets the audit's
    tables: they are under derived/, as a home keeps them beside published/."""
    for table in ("retention_ledger", "findings"):
        assert (site / "derived" / table / f"{table}.parquet").is_file()
        assert not (site / "data" / table).exists()
    package = _json(site / "datapackage.json")
    derived = {r["path"] for r in package["resources"] if r["name"].startswith(("findings", "retention_ledger"))}
    assert derived and all(path.startswith("derived/") for path in derived)


# -- HTML ------------------------------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _registry_links() -> set[str]:
    links = set(LICENCE_LINKS)
    for d in load_registry(PROJECT_DIR / "registry"):
        links |= set(d.policy_links)
        if "form" in d.feedback:
            links.add(d.feedback["form"])
    return links


def test_pages_load_nothing_from_the_network_and_links_are_relative(site):
    allowed = _registry_links()
    pages = sorted(site.rglob("*.html"))
    # In each of the six languages (one build): the index, the data-quality page (quality/index.html) and
    # one page per deployment.
    assert len(pages) == len(SHIPPED_LANGS) * (2 + len(load_registry(PROJECT_DIR / "registry")))
    for path in pages:
        html = path.read_text(encoding="utf-8")
        assert "@import" not in html and not re.search(r"url\(\s*['\"]?(https?:)?//", html)
        page = _parse(path)
        for tag, attrs in page.tags:
            for name in ("src", "srcset", "data", "poster", "action", "formaction"):
                assert not attrs.get(name), (path.name, tag, attrs)  # nothing is loaded or submitted
            href = attrs.get("href")
            if tag == "link":
                raise AssertionError(f"{path.name}: <link> loads a resource: {attrs}")
            if not href or href.startswith(("#", "mailto:", "tel:")):
                continue
            if urlparse(href).scheme or href.startswith("//"):
                # Navigation to the registry's own documents and forms, and the licences; never loaded.
                assert tag == "a" and href in allowed, (path.name, href)
                continue
            target = (path.parent / href.split("#")[0]).resolve()
            assert target.is_file() and site.resolve() in target.parents, (path.name, href)


def test_pages_are_accessible_and_readable_on_a_phone(site):
    for path in sorted(site.rglob("*.html")):
        page = _parse(path)
        html_tag = next(attrs for tag, attrs in page.tags if tag == "html")
        folder = path.relative_to(site).parts[0]  # the first language at the root, the others in <lang>/
        assert html_tag.get("lang") == (folder if folder in SHIPPED_LANGS else "en")
        assert any(t == "meta" and a.get("name") == "viewport" and "width=device-width" in (a.get("content") or "")
                   for t, a in page.tags)
        assert sum(1 for t, _ in page.tags if t == "h1") == 1
        assert sum(1 for t, _ in page.tags if t == "table") == sum(1 for t, _ in page.tags if t == "caption")
        assert all(a.get("scope") in ("col", "row") for t, a in page.tags if t == "th")
        assert all(a.get("alt") for t, a in page.tags if t == "img")
        text = path.read_text(encoding="utf-8")
        for svg in re.findall(r"<svg[^>]*role=\"img\"[^>]*>.*?</svg>", text, re.S):
            assert "<title" in svg  # every informative graphic is named
        assert "@media (max-width" in text  # responsive layout


def test_deployment_page_shows_the_dtpr_card_in_order_and_what_it_did(site, city):
    registry = load_registry(city.registry)
    page = site / "deployments" / "alpr-harbor-boulevard.html"
    html = page.read_text(encoding="utf-8")
    assert re.findall(r'data-category="([a-z]+)"', html) == list(CATEGORY_ORDER)
    d = registry["alpr-harbor-boulevard"]
    taxonomy = load_taxonomy()
    for element in (*d.purposes, *d.technologies, *d.data_types):
        assert taxonomy.element(element).name("en").replace("&", "&amp;") in html
    assert "Retained 30 days" in html  # rendered from the machine-readable P30D
    for needle in ("Records collected per day", "Who accessed the data", "Retention status", "Audit findings",
                   d.feedback["email"], "sensorlog verify", "Latest signed checkpoint", "Public key of the log"):
        assert needle in html, needle
    checkpoint = (site / "log" / "checkpoint").read_text()
    assert checkpoint.splitlines()[0] in html  # the log's origin line, from the signed checkpoint


def test_the_index_lists_every_deployment_with_a_filter_and_a_map(site, city):
    html = (site / "index.html").read_text(encoding="utf-8")
    for d in load_registry(city.registry):
        assert f'href="deployments/{d.id}.html"' in html
    assert 'id="filter"' in html and "<script>" in html and 'class="map"' in html
    assert html.count("<svg class=\"map\"") == 2  # Riverton and the Boston pilots are far apart


def test_other_languages_render_localised_dtpr_names(city, tmp_path):
    build_portal(city, str(tmp_path / "es"), lang="es", base_url=BASE_URL)
    html = (tmp_path / "es" / "deployments" / "alpr-harbor-boulevard.html").read_text(encoding="utf-8")
    taxonomy = load_taxonomy()
    assert '<html lang="es">' in html
    for category in CATEGORY_ORDER:
        assert f"<h3>{taxonomy.category(category).name('es')}</h3>" in html
    assert taxonomy.element("purpose__enforcement").name("es") in html
    assert "Qué es" in html and "Preguntas y comentarios" in html
    assert '<span lang="en">' in html  # registry prose that exists only in English is marked so

    build_portal(city, str(tmp_path / "km"), lang="km", base_url=BASE_URL)
    km = (tmp_path / "km" / "deployments" / "alpr-harbor-boulevard.html").read_text(encoding="utf-8")
    assert '<html lang="km">' in km and taxonomy.category("purpose").name("km") in km


def test_translations_cover_every_word():
    for lang, words in STRINGS.items():
        assert set(words) == set(STRINGS["en"]), lang


# -- signs -----------------------------------------------------------------------------------------


def _qr_image(svg_path: Path):
    """Rasterise the sign's QR group (one rect per run of dark modules) with Pillow."""
    from PIL import Image, ImageDraw

    root = ET.parse(svg_path).getroot()
    ns = {"svg": "http://www.w3.org/2000/svg"}
    group = root.find(".//svg:g[@id='qr']", ns)
    n = int(group.get("data-modules"))
    scale = 8
    image = Image.new("L", (n * scale, n * scale), 255)
    draw = ImageDraw.Draw(image)
    for rect in group.find("svg:g", ns).findall("svg:rect", ns):
        x, y, w = (int(rect.get(k)) for k in ("x", "y", "width"))
        draw.rectangle([x * scale, y * scale, (x + w) * scale - 1, (y + 1) * scale - 1], fill=0)
    return image


def test_each_sign_has_a_qr_code_that_decodes_to_its_page(site):
    zxingcpp = pytest.importorskip("zxingcpp")
    for paper in ("letter", "a4"):
        svg = site / "signs" / f"alpr-harbor-boulevard-{paper}.svg"
        root = ET.parse(svg).getroot()
        assert root.get("width") == ("8.5in" if paper == "letter" else "210mm")
        decoded = [r.text for r in zxingcpp.read_barcodes(_qr_image(svg))]
        assert decoded == [f"{BASE_URL}deployments/alpr-harbor-boulevard.html"]
    text = (site / "signs" / "alpr-harbor-boulevard-letter.svg").read_text(encoding="utf-8")
    for needle in ("Riverton Police Department", "Plate reads are kept for 30 days", "Enforcement"):
        assert needle in text


def test_a_whole_rendered_sign_scans(site, tmp_path):
    zxingcpp = pytest.importorskip("zxingcpp")
    renderer = shutil.which("rsvg-convert")
    if renderer is None:
        pytest.skip("rsvg-convert (Debian librsvg2-bin) renders the full sign; not installed")
    from PIL import Image

    png = tmp_path / "sign.png"
    subprocess.run([renderer, "-w", "900", str(site / "signs" / "gunshot-eastside-array-a4.svg"), "-o", str(png)],
                   check=True, timeout=900)  # a ceiling for a hang, not a speed limit
    decoded = [r.text for r in zxingcpp.read_barcodes(Image.open(png))]
    assert decoded == [f"{BASE_URL}deployments/gunshot-eastside-array.html"]


def test_qr_matrix_has_the_quiet_zone():
    matrix = qr_matrix("https://example.org/x")
    assert not any(matrix[0]) and not any(row[0] for row in matrix) and any(matrix[4])


# -- degraded builds, rebuilds, CLI, DAG -------------------------------------------------------------


def test_without_audit_or_log_the_site_says_so(city, tmp_path):
    home = tmp_path / "home"
    for table in ("collection", "deletion", "access", "lifecycle"):
        shutil.copytree(Path(city.published) / f"event_type={table}", home / "published" / f"event_type={table}")
    settings = _settings(home, SENSORLOG_LOG=str(tmp_path / "no-log"))
    result = build_portal(settings, str(tmp_path / "site"), base_url=BASE_URL)
    assert result.missing == ["retention_ledger", "findings"] and not result.log_available
    page = (tmp_path / "site" / "deployments" / "alpr-harbor-boulevard.html").read_text(encoding="utf-8")
    assert "The audit has not run yet." in page and "The transparency log has not been published yet." in page
    assert validate_catalog(_json(tmp_path / "site" / "data.json")) == []
    assert not (tmp_path / "site" / "log").exists()


def test_a_rebuild_removes_files_it_no_longer_publishes(city, tmp_path):
    out = tmp_path / "site"
    build_portal(city, str(out), base_url=BASE_URL, csv_month_rows=CSV_MONTH_ROWS)
    assert (out / "data/collection/collection-2026-06.csv").exists()
    (out / "keep-me.txt").write_text("not the portal's")
    build_portal(city, str(out), base_url=BASE_URL)  # default threshold: one CSV per table
    assert (out / "data/collection/collection.csv").exists()
    assert not (out / "data/collection/collection-2026-06.csv").exists()
    assert (out / "keep-me.txt").exists()


def test_a_foreign_checksum_list_never_deletes_anything(tmp_path):
    from pipelines.portal import _previous_files

    (tmp_path / "precious.txt").write_text("x")
    (tmp_path / "SHA256SUMS").write_text(f"{'0' * 64}  precious.txt\n")
    assert _previous_files(str(tmp_path)) == []  # no datapackage.json of ours: not our folder
    (tmp_path / "datapackage.json").write_text(json.dumps({"name": "someone-else"}))
    assert _previous_files(str(tmp_path)) == []


def test_the_cli_builds_the_site(city, tmp_path, monkeypatch):
    from pipelines.cli import app

    for name, value in (("SENSORLOG_HOME", city.home), ("SENSORLOG_REGISTRY", city.registry)):
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["portal", "--out", str(tmp_path / "cli"), "--lang", "fr",
                                      "--base-url", BASE_URL])
    assert result.exit_code == 0, result.output
    assert '<html lang="fr">' in (tmp_path / "cli" / "index.html").read_text(encoding="utf-8")
    bad = CliRunner().invoke(app, ["portal", "--out", str(tmp_path / "x"), "--lang", "xx"])
    assert bad.exit_code == 2


def test_the_portal_dag_imports_and_is_scheduled_on_findings_and_the_log():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["sensorlog_portal"]
    assert [t.task_id for t in dag.tasks] == ["build"]
    names = {a.name for a in dag.timetable.asset_condition.objects}
    assert names == {"sensorlog.findings", "sensorlog.log"}


# -- S3 --------------------------------------------------------------------------------------------


@pytest.fixture
def s3_endpoint(monkeypatch):
    """A real S3 HTTP endpoint on loopback (moto's server), configured the way boto3/pyarrow read it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name, value in {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def test_publishing_to_s3_sets_content_types(city, s3_endpoint):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket="portal")
    result = build_portal(city, "s3://portal/riverton", base_url=BASE_URL)
    keys = {o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket="portal", Prefix="riverton/")
            for o in page.get("Contents", [])}
    assert len(keys) == result.files
    expected = {
        "riverton/index.html": "text/html; charset=utf-8",
        "riverton/data.json": "application/json",
        "riverton/datapackage.json": "application/json",
        "riverton/data/collection/collection.parquet": "application/vnd.apache.parquet",
        "riverton/data/collection/collection.csv": "text/csv; charset=utf-8; header=present",
        "riverton/signs/alpr-harbor-boulevard-a4.svg": "image/svg+xml",
        "riverton/log/checkpoint": "text/plain; charset=utf-8",
    }
    for key, content_type in expected.items():
        assert client.head_object(Bucket="portal", Key=key)["ContentType"] == content_type, key
    catalog = json.loads(storage.read_bytes("s3://portal/riverton/data.json"))
    assert validate_catalog(catalog) == []
    for dataset in catalog["dataset"]:
        for dist in dataset["distribution"]:
            key = "riverton/" + dist["downloadURL"][len(BASE_URL):]
            body = client.get_object(Bucket="portal", Key=key)["Body"].read()
            assert hashlib.sha256(body).hexdigest() == dist["checksum"]["checksumValue"]
