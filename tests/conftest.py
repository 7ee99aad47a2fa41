"""Shared fixtures: every test makes its own data under tmp_path."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import hypothesis
import pytest

from pipelines.config import PROJECT_DIR, Settings

DEPLOYMENT = "riv-test-device"

# Airflow reads its configuration at import: never let a test touch a user's ~/airflow.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="sensorlog-test-airflow-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

# Hypothesis fails an example slower than 200 ms by default: on a loaded machine that fails a correct
# program. Properties here decide on behaviour only, never on speed.
hypothesis.settings.register_profile("sensorlog", deadline=None)
hypothesis.settings.load_profile("sensorlog")


TIERS = ("unit", "integration", "system")  # `make test-fast` runs the first two, `make test` all three


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test is in exactly one tier (its module's ``pytestmark``), so no test escapes `make test-fast`'s
    choice by accident: a module without a tier fails collection, naming it."""
    for item in items:
        tiers = [name for name in TIERS if item.get_closest_marker(name)]
        if len(tiers) != 1:
            raise pytest.UsageError(f"{item.nodeid}: needs exactly one tier marker of {TIERS}, has {tiers}")


@pytest.fixture(autouse=True)
def _unit_tests_start_no_process(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit test that starts a process belongs in a higher tier: make that an error, not a slow surprise."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"{request.node.nodeid} is marked unit but starts a process: mark its module integration")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


def make_event(kind: str = "collection", n: int = 0, **data: object) -> dict:
    """One valid CloudEvent of ``kind``; ``data`` overrides payload fields."""
    payloads = {
        "collection": {
            "deployment_id": DEPLOYMENT, "data_class": "video", "window_start": "2026-07-01T00:00:00Z",
            "window_end": "2026-07-01T01:00:00Z", "records": 10 + n, "bytes": 1000, "storage_location": "cloud",
        },
        "deletion": {
            "deployment_id": DEPLOYMENT, "data_class": "video", "window_start": "2026-07-01T00:00:00Z",
            "window_end": "2026-07-02T00:00:00Z", "records": 5, "deleted_at": "2026-07-31T00:15:00Z",
            "method": "automatic_purge",
        },
        "access": {
            "deployment_id": DEPLOYMENT, "data_class": "video", "accessed_at": "2026-07-02T10:00:00Z",
            "organisation": "Riverton Police Department", "role": "investigator", "purpose": "case",
            "case_ref": "RIV-1", "records": 3,
        },
        "lifecycle": {"deployment_id": DEPLOYMENT, "action": "firmware_changed", "at": "2026-07-02T03:00:00Z",
                      "details": "update"},
        "vendor_snapshot": {
            "deployment_id": DEPLOYMENT, "observed_at": "2026-07-02T03:00:00Z", "agency": "Riverton PD",
            "retention_text": "30 days", "retention_days": 30, "devices": 4, "external_organisations_count": 2,
            "external_organisations": "Mecklin County Sheriff; Riverton Transit Police", "hotlists": "Stolen vehicles",
            "public_search_audit": "https://portal.example/audit",
        },
    }
    payload = {**payloads[kind], **data}
    return {
        "specversion": "1.0", "id": f"{kind}-{n}", "source": "https://vendor.example/feed",
        "type": f"org.sensorlog.{kind}", "time": "2026-07-01T01:05:00Z", "datacontenttype": "application/json",
        "data": payload,
    }


def ndjson(events: list[dict]) -> bytes:
    return "".join(json.dumps(e) + "\n" for e in events).encode()


def event_manifests(settings: Settings) -> list[str]:
    """URIs of the manifests of landed files: not the registry's declaration batches, which the
    publisher logs before the events (``pipelines.registry.declarations``)."""
    from pipelines import storage

    uris = storage.list_files(settings.manifests, (".json",))
    return [u for u in uris if json.loads(storage.read_bytes(u)).get("kind") != "declarations"]


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, bytes], str]:
    def write(name: str, data: bytes) -> str:
        path = tmp_path / "landing" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return str(path)

    return write


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / "home"),
        "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": str(PROJECT_DIR / "registry"),
    })


@pytest.fixture
def device_registry(tmp_path: Path) -> Path:
    """A valid registry of one deployment, ``DEPLOYMENT`` (the sample city's plaza cameras renamed)."""
    folder = tmp_path / "registry"
    folder.mkdir()
    source = (PROJECT_DIR / "registry" / "cctv-city-hall-plaza.yaml").read_text()
    (folder / f"{DEPLOYMENT}.yaml").write_text(source.replace("cctv-city-hall-plaza", DEPLOYMENT))
    return folder


@pytest.fixture
def device_home(tmp_path: Path, device_registry: Path) -> Settings:
    """A new home (it exists: commands refuse a missing one) over ``device_registry``, landing in
    ``tmp_path/landing``, its clock fixed after the events ``make_event`` writes."""
    (tmp_path / "home").mkdir()
    return Settings.from_env({
        "SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_LANDING": str(tmp_path / "landing"),
        "SENSORLOG_REGISTRY": str(device_registry), "SENSORLOG_NOW": "2026-08-01T00:00:00Z",
    })


def land(settings: Settings, name: str, data: bytes) -> str:
    """Write ``data`` at ``name`` under the home's landing folder; its path."""
    path = Path(settings.landing) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NEEDS_CHROMIUM = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (make test installs it)")


@pytest.fixture
def gx_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(table, rows) of every GX validate call."""
    from pipelines.ingest import validate  # here, not at the top: most tests never load GX

    calls: list[tuple[str, int]] = []
    original = validate._GX.failures

    @functools.wraps(original)
    def counted(self, table, frame, *run):
        calls.append((table, len(frame)))
        return original(self, table, frame, *run)

    monkeypatch.setattr(validate._GX, "failures", counted)
    return calls


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's), one per test module, for the page tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 + SQS HTTP endpoint on loopback (moto's server mode); clients talk HTTP to it."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(s3_endpoint, monkeypatch):
    """Standard AWS variables pointing at the loopback endpoint, as a deployment would set them."""
    for key, value in {
        "AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    return s3_endpoint


@pytest.fixture
def bucket(s3_env):
    import uuid

    import boto3

    name = f"test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name
