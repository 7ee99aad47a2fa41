"""The portal publishes what the city declared, version by version, and each version is provable.

One small home: two deployments of the sample city (the Harbor Boulevard plate reader and the City
Hall plaza cameras), two days of generated events. The real publisher (``flow.run``) logs the
registry on 2026-07-03; the plate reader's retention is then lengthened from P30D to P90D without a
new policy version (a retroactive change), logged on 2026-07-10; its description is edited, logged on
2026-07-12 (an amendment). Then the folder changes once more without a publish, and a third deployment
is added that was never logged. The site is built once; tamper tests change their own copies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from datetime import date
from html import unescape
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import rfc8785
from outside import run

from pipelines import flow, site_files
from pipelines.config import PROJECT_DIR, Settings
from pipelines.dev import synthetic
from pipelines.log.verify import verify_log
from pipelines.portal import build_portal
from pipelines.portal.datapackage import validate_datapackage
from pipelines.portal.dcat import validate_catalog
from pipelines.portal.i18n import STRINGS
from pipelines.registry import declarations, load_registry
from pipelines.tlog import merkle
from pipelines.tlog.checkpoint import open_checkpoint

pytestmark = pytest.mark.integration

BASE_URL = "https://data.riverton.example/sensors/"

ALPR, CCTV, NEW = "alpr-harbor-boulevard", "cctv-city-hall-plaza", "cctv-central-library-entrance"
DAYS = ("2026-07-03", "2026-07-10", "2026-07-12")


def _publish_at(settings: Settings, day: str) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SENSORLOG_NOW", day)
        totals = flow.run(settings)
    assert not totals["failed"], totals


def _edit(registry: Path, deployment_id: str, old: str, new: str) -> None:
    path = registry / f"{deployment_id}.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("declared")
    registry = root / "registry"
    registry.mkdir()
    for name in (ALPR, CCTV):
        shutil.copy(PROJECT_DIR / "registry" / f"{name}.yaml", registry)
    settings = Settings.from_env({"SENSORLOG_HOME": str(root / "home"), "SENSORLOG_REGISTRY": str(registry)})
    synthetic.write_city(load_registry(registry), settings.landing,
                        synthetic.options_for(start=date(2026, 7, 1), end=date(2026, 7, 3)))
    _publish_at(settings, DAYS[0])
    _edit(registry, ALPR, "period: P30D", "period: P90D")
    _publish_at(settings, DAYS[1])
    _edit(registry, ALPR, "description: A fixed plate reader", "description: A fixed licence-plate reader")
    _publish_at(settings, DAYS[2])
    # Not published: the folder is ahead of the log, and one deployment was never logged at all.
    _edit(registry, CCTV, "period: P30D", "period: P14D")
    shutil.copy(PROJECT_DIR / "registry" / f"{NEW}.yaml", registry)
    return settings


@pytest.fixture(scope="module")
def built(home: Settings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    result = build_portal(home, str(out), base_url=BASE_URL)
    assert result.log_available
    assert not [w for w in result.warnings if "declaration" in w], result.warnings
    return out


@pytest.fixture
def site(built: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(built, tmp_path / "copy"))


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def check_proof(site: Path, proof: Path | str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(["sensorlog", "check-proof", str(proof), "--vkey", "log/log.vkey", *extra], site)


def logged_rows(site: Path, home: Settings) -> list[dict]:
    size = open_checkpoint((site / "log/checkpoint").read_text(), (site / "log/log.vkey").read_text()).size
    return declarations.read_rows(home.published, size)


def rebuilt_leaf(entry: dict) -> bytes:
    """A version's leaf from its history entry alone, as the history file's ``leaf`` text says."""
    obj = {k: entry[k] for k in ("source", "event_id", "deployment_id", "sequence", "policy_version",
                                 "effective_from", "timezone", "record_sha256", "previous_sha256",
                                 "previous_leaf", "change", "batch_id")}
    obj.update({"table": "declaration", "event_time": entry["logged_at"],
                "changed_fields": ",".join(entry["changed_fields"]),
                "record": rfc8785.dumps(entry["record"]).decode("utf-8")})
    return rfc8785.dumps(obj)


# -- the history files ---------------------------------------------------------------------------


def test_the_history_lists_every_version_with_its_leaf_and_change(built: Path, home: Settings) -> None:
    history = _json(built / f"declarations/{ALPR}.json")
    versions = history["versions"]
    assert [v["sequence"] for v in versions] == [1, 2, 3]
    assert [v["change"] for v in versions] == ["first", "retroactive", "amended"]
    assert [v["changed_fields"] for v in versions] == [[], ["retention"], ["description"]]
    assert [v["logged_day"] for v in versions] == list(DAYS)
    assert [v["declared_day"] for v in versions] == list(DAYS)  # the clock only moved forward
    rows = [r for r in logged_rows(built, home) if r["deployment_id"] == ALPR]
    assert [v["leaf_index"] for v in versions] == [r["leaf_index"] for r in rows]
    assert [v["leaf_hash"] for v in versions] == [r["leaf_hash"] for r in rows]
    assert versions[0]["previous_leaf"] is None
    assert [v["previous_leaf"] for v in versions[1:]] == [v["leaf_index"] for v in versions[:-1]]
    assert [v["record"]["retention"][0]["period"] for v in versions] == ["P30D", "P90D", "P90D"]
    assert history["checkpoint"]["size"] == open_checkpoint((built / "log/checkpoint").read_text(),
                                                            (built / "log/log.vkey").read_text()).size
    for v in versions:
        raw = (built / v["record_file"]).read_bytes()  # the record exactly as logged
        assert hashlib.sha256(raw).hexdigest() == v["record_sha256"]
        assert json.loads(raw) == v["record"]
        assert (built / v["proof_file"]).is_file()
    # The unchanged deployment has its one version; the one never logged has no history.
    assert [v["change"] for v in _json(built / f"declarations/{CCTV}.json")["versions"]] == ["first"]
    assert not (built / f"declarations/{NEW}.json").exists()
    assert not (built / "declarations" / NEW).exists()


def test_each_entry_rebuilds_the_leaf_its_proof_carries(built: Path) -> None:
    for entry in _json(built / f"declarations/{ALPR}.json")["versions"]:
        data = rebuilt_leaf(entry)
        assert merkle.leaf_hash(data).hex() == entry["leaf_hash"]
        proof = (built / entry["proof_file"]).read_text()
        assert base64.b64decode(re.search(r"^extra (.*)$", proof, re.M).group(1)) == data
        assert re.search(r"^index (\d+)$", proof, re.M).group(1) == str(entry["leaf_index"])


# -- checking a version from the site alone --------------------------------------------------------


def test_every_proof_checks_with_the_sites_key_in_a_clean_shell(built: Path) -> None:
    proofs = sorted((built / "declarations").rglob("*.tlog-proof"))
    assert len(proofs) == 4
    for proof in proofs:
        done = check_proof(built, proof.relative_to(built))
        assert done.returncode == 0 and "VALID" in done.stdout, done.stdout + done.stderr
        assert "declaration event sensorlog:registry/" in done.stdout


def test_the_command_on_the_page_runs_as_written(site: Path) -> None:
    page = (site / "deployments" / f"{ALPR}.html").read_text()
    blocks = re.findall(r'<code class="declaration-commands">(.*?)</code>', page, re.S)
    assert len(blocks) == 1
    lines = [line for line in unescape(blocks[0]).splitlines() if line.strip()]
    assert lines == [f"sensorlog check-proof declarations/{ALPR}/3.tlog-proof --vkey log/log.vkey"]
    for line in lines:
        done = run(line, site)
        assert done.returncode == 0 and "VALID" in done.stdout, f"{line}\n{done.stdout}\n{done.stderr}"


def test_a_changed_byte_of_the_record_or_of_the_proof_fails(site: Path, tmp_path: Path) -> None:
    entry = _json(site / f"declarations/{ALPR}.json")["versions"][1]
    proof = site / entry["proof_file"]
    good = tmp_path / "good.leaf"
    good.write_bytes(rebuilt_leaf(entry))
    assert check_proof(site, proof, "--leaf-data", str(good)).returncode == 0

    # One byte of the record in the history: the entry no longer rebuilds the proven leaf.
    entry["record"]["retention"][0]["period"] = "P30D"
    bad = tmp_path / "bad.leaf"
    bad.write_bytes(rebuilt_leaf(entry))
    assert len(bad.read_bytes()) == len(good.read_bytes())
    done = check_proof(site, proof, "--leaf-data", str(bad))
    assert done.returncode == 1 and "INVALID" in done.stdout

    # One byte of the record inside the proof's leaf data: the proof itself fails.
    text = proof.read_text()
    extra = re.search(r"^extra (.*)$", text, re.M).group(1)
    changed = base64.b64decode(extra).replace(b"P90D", b"P30D", 1)
    (tmp_path / "changed.tlog-proof").write_text(text.replace(extra, base64.b64encode(changed).decode()))
    done = check_proof(site, tmp_path / "changed.tlog-proof")
    assert done.returncode == 1 and "INVALID" in done.stdout

    # The right leaf claimed at another index fails too.
    index = entry["leaf_index"]
    (tmp_path / "moved.tlog-proof").write_text(text.replace(f"\nindex {index}\n", f"\nindex {index - 1}\n"))
    done = check_proof(site, tmp_path / "moved.tlog-proof")
    assert done.returncode == 1 and "INVALID" in done.stdout


# -- the deployment page ---------------------------------------------------------------------------


def test_the_page_says_declared_since_with_links_that_resolve(built: Path) -> None:
    page = built / "deployments" / f"{ALPR}.html"
    html = page.read_text(encoding="utf-8")
    since = re.search(r'<dd class="declared-since">(.*?)</dd>', html, re.S).group(1)
    assert f'<time datetime="{DAYS[2]}">{DAYS[2]}</time>' in since
    assert "version 3 of this record, policy version 1 in force from 2024-04-08" in since
    links = re.findall(r'href="([^"#]+)"', since)
    assert links == [f"../declarations/{ALPR}/3.json", f"../declarations/{ALPR}/3.tlog-proof"]
    section = html[html.index('id="declared-heading"'):html.index('id="did-heading"')]
    for href in re.findall(r'href="([^"#]+)"', section) + links:
        assert (page.parent / href).resolve().is_file(), href
    assert f'href="../declarations/{ALPR}.json"' in section
    rows = re.findall(r'<tr id="declaration-(\d+)" data-change="(\w+)">(.*?)</tr>', section, re.S)
    assert [(n, change) for n, change, _ in rows] == [("3", "amended"), ("2", "retroactive"), ("1", "first")]
    retroactive = rows[1][2]
    assert '<strong class="bad">⚠ Retroactive</strong>' in retroactive and "<code>retention</code>" in retroactive
    assert "<code>description</code>" in rows[0][2] and "Amended" in rows[0][2]
    leaves = [re.search(r'tlog-proof">(\d+)</a>', body).group(1) for _, _, body in rows]
    versions = _json(built / f"declarations/{ALPR}.json")["versions"]
    assert leaves == [str(v["leaf_index"]) for v in reversed(versions)]
    assert "not in the log yet" not in html  # the plate reader's folder record is the logged one


def test_a_folder_ahead_of_the_log_says_so_and_an_unlogged_deployment_shows_nothing_new(built: Path) -> None:
    cctv = (built / "deployments" / f"{CCTV}.html").read_text(encoding="utf-8")
    assert "Declared in the log since" in cctv and "the change is not in the log yet" in cctv
    assert f'<time datetime="{DAYS[0]}">{DAYS[0]}</time>' in cctv
    never = (built / "deployments" / f"{NEW}.html").read_text(encoding="utf-8")
    for word in ("declared_since", "declarations", "declarations_check_intro"):
        assert STRINGS["en"][word] not in never
    assert "declarations/" not in never


def test_other_languages_translate_the_section(home: Settings, tmp_path: Path) -> None:
    build_portal(home, str(tmp_path / "pt"), lang="pt", base_url=BASE_URL)
    html = (tmp_path / "pt" / "deployments" / f"{ALPR}.html").read_text(encoding="utf-8")
    for word in ("declared_since", "declarations", "col_logged", "change_retroactive", "change_amended",
                 "change_first", "declarations_history"):
        assert STRINGS["pt"][word] in html, word
        assert STRINGS["pt"][word] != STRINGS["en"][word] or word == "declarations"
    assert "versão 3 desta ficha" in html


def test_text_from_the_log_is_escaped(home: Settings) -> None:
    from datetime import UTC, datetime

    from pipelines.portal.activity import Activity
    from pipelines.portal.declared import History, Version
    from pipelines.portal.options import PortalOptions
    from pipelines.portal.pages import Common, render_deployment

    deployment = load_registry(PROJECT_DIR / "registry")[ALPR]
    hostile = Version(1, datetime(2026, 7, 3, tzinfo=UTC), date(2026, 7, 3), date(2026, 7, 3), "<b>odd</b>",
                      ("<script>alert(1)</script>",), 1, "2024-04-08", 0, "0" * 64,
                      f"declarations/{ALPR}/1.json", f'declarations/{ALPR}/1.tlog-proof"onclick="x')
    history = History(ALPR, f"declarations/{ALPR}.json", (hostile,), False)
    common = Common(PortalOptions.from_env(home, "en", BASE_URL), "2026-07-12T00:00:00Z", None, home.timezone,
                    date(2026, 7, 12))
    html = render_deployment(common, deployment, Activity(), None, None, ("a.svg", "b.svg"), history)
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>odd</b>" not in html and "&lt;b&gt;odd&lt;/b&gt;" in html
    assert '"onclick="x' not in html


# -- catalog, data package, signed file list ----------------------------------------------------------


def test_the_catalog_has_the_declaration_dataset(built: Path, home: Settings) -> None:
    catalog = _json(built / "data.json")
    assert validate_catalog(catalog) == []
    dataset = next(d for d in catalog["dataset"] if d["identifier"] == f"{BASE_URL}data.json#declaration")
    assert dataset["title"] == "Sensor deployment declarations"
    assert "retroactive" in dataset["description"] and "declarations/<id>.json" in dataset["description"]
    assert dataset["temporal"] == "2026-07-03T04:00:00Z/2026-07-12T04:00:00Z"
    assert {d["format"] for d in dataset["distribution"]} == {"Apache Parquet", "CSV"}
    for dist in dataset["distribution"]:
        data = (built / dist["downloadURL"][len(BASE_URL):]).read_bytes()
        assert dist["checksum"]["checksumValue"] == hashlib.sha256(data).hexdigest()
    schema = _json(built / dataset["describedBy"][len(BASE_URL):])
    assert [f["name"] for f in schema["fields"]] == declarations.PUBLISHED_SCHEMA.names
    assert all(f.get("description") for f in schema["fields"])
    extract = pq.read_table(built / "data/declaration/declaration.parquet")
    assert extract.to_pylist() == logged_rows(built, home)  # every logged row below the checkpoint, as logged


def test_the_data_package_lists_the_declaration_table_and_validates(built: Path) -> None:
    package = _json(built / "datapackage.json")
    resources = {r["name"]: r for r in package["resources"]}
    for name in ("declaration-parquet", "declaration-csv"):
        fields = [f["name"] for f in resources[name]["schema"]["fields"]]
        assert fields == declarations.PUBLISHED_SCHEMA.names, name
    assert validate_datapackage(str(built / "datapackage.json")) == []


def test_every_new_file_is_in_the_signed_list_and_verify_covers_it(site: Path) -> None:
    listed = site_files.open_list((site / "SHA256SUMS").read_text(), (site / "log/log.vkey").read_text()).files
    new = [str(p.relative_to(site)) for p in (site / "declarations").rglob("*") if p.is_file()]
    new += ["data/declaration/declaration.parquet", "data/declaration/declaration.csv",
            "schemas/declaration.tableschema.json"]
    assert len(new) == 2 + 4 * 2 + 3  # two histories, a record and a proof for each of four versions
    for path in new:
        assert listed[path] == hashlib.sha256((site / path).read_bytes()).hexdigest(), path
    done = run(["sensorlog", "verify", "--log", "log", "--data", "data", "--site", "."], site)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    history = site / f"declarations/{ALPR}.json"
    history.write_text(history.read_text().replace('"P90D"', '"P30D"', 1))
    report = verify_log(site / "log", site / "data", site=site)
    assert not report.ok
    assert any(p.subject.endswith(f"declarations/{ALPR}.json") for p in report.problems), report.problems


def test_a_log_without_declarations_publishes_none(built: Path, tmp_path: Path) -> None:
    """A log from before declarations: nothing to read below the checkpoint, nothing published."""
    from pipelines.portal import declared
    from pipelines.site import Site

    out = Site(str(tmp_path / "site"))
    shutil.copytree(built / "log", tmp_path / "site" / "log")
    empty = Settings.from_env({"SENSORLOG_HOME": str(tmp_path / "home"),
                               "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry")})
    result = declared.publish(empty, out, (built / "log/log.vkey").read_text().strip(),
                              load_registry(PROJECT_DIR / "registry"))
    assert result.histories == {} and result.table is None and out.files == {}
