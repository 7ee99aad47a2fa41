"""One configuration reader: only ``pipelines/config.py`` reads the environment, every ``SENSORLOG_*``
variable it reads is in the README's Configuration table (and nothing else is), and each variable
still takes effect where it is used."""

from __future__ import annotations

import ast
import io
import os
import re
from pathlib import Path

import pytest
from rich.console import Console

from pipelines import clock, config, flow, storage
from pipelines.config import PROJECT_DIR, PortalSettings, S3Settings, Settings, SqsSettings
from pipelines.dev import airflow_runner, demo, synthetic
from pipelines.errors import UsageError
from pipelines.portal.options import PortalOptions

pytestmark = pytest.mark.integration

SCANNED = ("pipelines", "dags", "sensorlog_airflow")
READER = Path("pipelines/config.py")
# What reads or writes the process environment: ``os.environ`` (``.get``, ``[...]``, ``.setdefault``...),
# ``os.getenv``, ``os.putenv``..., however ``os`` was imported.
ENVIRONMENT_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
# Uses of the environment allowed outside config.py, {(file, code): reason}. None: the one write a
# library needs (GX_ANALYTICS_ENABLED) is config.apply_library_defaults(), and the environment of a
# child process (airflow_runner.airflow_env) starts from config.environment().
ALLOWED: dict[tuple[str, str], str] = {}
VARIABLE = re.compile(r"SENSORLOG_[A-Z0-9_]+")


def environment_uses(source: str) -> list[tuple[int, str]]:
    """(line, code) of every use of the process environment in a module's source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ENVIRONMENT_NAMES:
            found.append((node.lineno, ast.unparse(node)))
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "posix", "nt"):
            for alias in node.names:
                if alias.name in ENVIRONMENT_NAMES or alias.name == "*":
                    found.append((node.lineno, f"from {node.module} import {alias.name}"))
    return found


def test_the_scan_sees_every_way_of_reading_the_environment():
    source = (
        "import os\nimport os as o\nfrom os import environ, getenv\n"
        "a = os.environ.get('X')\nb = os.getenv('X')\nc = o.environ['X']\nos.environ.setdefault('X', '1')\n"
    )
    assert sorted(line for line, _ in environment_uses(source)) == [3, 3, 4, 5, 6, 7]


def test_only_config_reads_the_environment():
    offenders = []
    for folder in SCANNED:
        for path in sorted((PROJECT_DIR / folder).rglob("*.py")):
            relative = path.relative_to(PROJECT_DIR)
            if relative == READER:
                continue
            for line, code in environment_uses(path.read_text(encoding="utf-8")):
                if (relative.as_posix(), code) not in ALLOWED:
                    offenders.append(f"{relative}:{line}: {code}")
    assert offenders == [], "read settings through pipelines.config instead:\n" + "\n".join(offenders)


def config_variables() -> set[str]:
    tree = ast.parse((PROJECT_DIR / READER).read_text(encoding="utf-8"))
    return {
        node.value for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and VARIABLE.fullmatch(node.value)
    }


def readme_table() -> dict[str, list[str]]:
    """The README's Configuration table: variable name → its other cells (default, meaning)."""
    text = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if line.startswith("| `") and (name := re.fullmatch(r"`(\w+)`", cells[0])):
            rows[name.group(1)] = cells[1:]
    return rows


def test_every_variable_config_reads_is_in_the_readme_and_nothing_else():
    read, documented = config_variables(), readme_table()
    assert len(read) > 30  # the scan found the reads
    assert sorted(read - documented.keys()) == [], "read by config.py but not in the README's table"
    assert sorted(documented.keys() - read) == [], "in the README's table but not read by config.py"
    for name, cells in documented.items():
        assert len(cells) == 2 and all(cells), f"{name}: a default and a meaning"


# -- each moved variable still takes effect ---------------------------------------------------------


def test_workers_come_from_sensorlog_workers_else_one_per_core(monkeypatch):
    assert flow.default_workers({"SENSORLOG_WORKERS": "3"}) == 3
    assert flow.default_workers({"SENSORLOG_WORKERS": "0"}) == 1
    assert flow.default_workers({}) == flow.default_workers({"SENSORLOG_WORKERS": ""}) == max(1, os.cpu_count() or 1)
    monkeypatch.setenv("SENSORLOG_WORKERS", "5")
    assert flow.default_workers() == 5
    assert config.workers() == 5


def test_sensorlog_now_takes_effect_at_call_time(monkeypatch, tmp_path):
    monkeypatch.setenv(clock.NOW_ENV, "2026-08-03T14:00:00Z")
    assert clock.current_time("UTC").isoformat() == "2026-08-03T14:00:00+00:00"
    monkeypatch.setenv(clock.NOW_ENV, "2026-08-04")  # a date: local midnight at its start
    assert clock.current_time("America/New_York").isoformat() == "2026-08-04T04:00:00+00:00"
    assert clock.current_time("UTC", {}) != clock.current_time("UTC")  # an explicit env: the system clock
    assert clock.current_time("UTC", {clock.NOW_ENV: "2030-01-01"}).year == 2030
    # the demo audits as of the sample city's end date, unless the operator set a clock
    settings = Settings.from_env({"SENSORLOG_HOME": str(tmp_path)})
    (tmp_path / synthetic.GROUND_TRUTH_NAME).write_text('{"end": "2026-07-15"}')
    console = Console(file=io.StringIO())
    assert demo.sample_city_clock(settings, console) == {}
    monkeypatch.delenv(clock.NOW_ENV)
    assert demo.sample_city_clock(settings, console) == {clock.NOW_ENV: "2026-07-15"}


def test_an_explicit_env_is_all_settings_read(monkeypatch, tmp_path):
    monkeypatch.setenv("SENSORLOG_LOG_ORIGIN", "elsewhere.example/log")
    monkeypatch.setenv("SENSORLOG_PORTAL_PUBLISHER", "Somewhere Else")
    monkeypatch.setenv("SENSORLOG_WORKERS", "7")
    env = {"SENSORLOG_HOME": str(tmp_path)}
    settings = Settings.from_env(env)
    assert settings.log_origin == "sensorlog.example/riverton"
    assert PortalSettings.from_env(env) == PortalSettings()
    assert config.workers(env) is None
    child = airflow_runner.airflow_env(settings, {"PATH": "/bin", "KEEP": "1"})
    assert child["KEEP"] == "1" and "SENSORLOG_WORKERS" not in child and child["SENSORLOG_HOME"] == str(tmp_path)
    assert Settings.from_env().log_origin == "elsewhere.example/log"  # and without one, the process's


def test_s3_variables_make_the_same_client_options(monkeypatch):
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("SENSORLOG_S3_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("SENSORLOG_S3_CONNECT_TIMEOUT", "1.5")
    monkeypatch.setenv("SENSORLOG_S3_REQUEST_TIMEOUT", "7")
    attempts = []
    real = storage.pafs.AwsStandardS3RetryStrategy
    monkeypatch.setattr(storage.pafs, "AwsStandardS3RetryStrategy",
                        lambda max_attempts: attempts.append(max_attempts) or real(max_attempts=max_attempts))
    storage._s3.cache_clear()
    try:
        fs, path = storage.filesystem("s3://bucket/key.json")
        options = fs.__reduce__()[1][0]
        assert path == "bucket/key.json" and attempts == [3]
        where = (options["endpoint_override"], options["scheme"], options["region"])
        assert where == ("127.0.0.1:9", "http", "eu-west-1")
        assert (options["connect_timeout"], options["request_timeout"]) == (1.5, 7.0)
        # read at every call: the S3-specific endpoint wins, and no cache has to be cleared for it
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "https://s3.example:8443")
        options = storage.filesystem("s3://bucket/key.json")[0].__reduce__()[1][0]
        assert (options["endpoint_override"], options["scheme"]) == ("s3.example:8443", "https")
    finally:
        storage._s3.cache_clear()
    assert S3Settings.from_env({}) == S3Settings(None, None, 6, 5.0, 30.0)
    assert S3Settings.from_env({"AWS_ENDPOINT_URL": "", "AWS_REGION": "ca-central-1"}).region == "ca-central-1"


def test_portal_variables_reach_the_portal_options(tmp_path):
    settings = Settings.from_env({"SENSORLOG_HOME": str(tmp_path), "SENSORLOG_LOG_ORIGIN": "logs.example/city"})
    default = PortalOptions.from_env(settings, env={})
    assert (default.base_url, default.publisher, default.csv_month_rows) == (
        "https://logs.example/city/", "City of Riverton", 100_000)
    env = {
        "SENSORLOG_PORTAL_BASE_URL": "https://open.example/sensors", "SENSORLOG_PORTAL_PUBLISHER": "Town",
        "SENSORLOG_PORTAL_CONTACT_NAME": "Clerk", "SENSORLOG_PORTAL_CONTACT_EMAIL": "mailto:clerk@town.example",
        "SENSORLOG_PORTAL_LICENSE": "https://creativecommons.org/licenses/by/4.0/",
        "SENSORLOG_PORTAL_CSV_MONTH_ROWS": "10", "SENSORLOG_PORTAL_OUT": "/srv/site", "SENSORLOG_PORTAL_LANG": "fr",
    }
    options = PortalOptions.from_env(settings, "es", env=env)
    assert (options.base_url, options.lang, options.publisher, options.contact_name, options.contact_email) == (
        "https://open.example/sensors/", "es", "Town", "Clerk", "clerk@town.example")
    assert (options.license_id, options.csv_month_rows) == ("CC-BY-4.0", 10)
    assert PortalOptions.from_env(settings, env=env, base_url="https://x.example", csv_month_rows=3).csv_month_rows == 3
    portal = PortalSettings.from_env(env)  # what the sensorlog_portal DAG passes to build_portal
    assert (portal.out, portal.lang) == ("/srv/site", "fr")
    assert (PortalSettings().out, PortalSettings().lang) == (None, "")  # every shipped language


def test_dag_and_watcher_variables():
    assert config.sweep_minutes({}) == 30 and config.sweep_minutes({"SENSORLOG_SWEEP_MINUTES": "0"}) == 0
    assert config.audit_fail_on({}) is None and config.audit_fail_on({"SENSORLOG_AUDIT_FAIL_ON": ""}) is None
    assert config.audit_fail_on({"SENSORLOG_AUDIT_FAIL_ON": "high"}) == "high"
    assert SqsSettings.from_env({}) == SqsSettings()
    # without a queue there is no watcher, and its tuning is not even read
    assert SqsSettings.from_env({"SENSORLOG_SQS_WAIT_SECONDS": "soon"}) == SqsSettings()
    sqs = SqsSettings.from_env({
        "SENSORLOG_SQS_QUEUE_URL": "https://sqs.example/123/landing", "SENSORLOG_AWS_CONN_ID": "city_aws",
        "SENSORLOG_SQS_WAIT_SECONDS": "1", "SENSORLOG_SQS_POLL_SECONDS": "4",
    })
    assert sqs == SqsSettings("https://sqs.example/123/landing", "city_aws", 1, 4)


def test_library_defaults_never_override_the_operator(monkeypatch):
    monkeypatch.setenv("GX_ANALYTICS_ENABLED", "True")
    config.apply_library_defaults()
    assert os.environ["GX_ANALYTICS_ENABLED"] == "True"
    monkeypatch.delenv("GX_ANALYTICS_ENABLED")
    config.apply_library_defaults()
    assert os.environ["GX_ANALYTICS_ENABLED"] == "False"


USES = {
    "SENSORLOG_WORKERS": lambda settings: flow.default_workers(),
    "SENSORLOG_S3_MAX_ATTEMPTS": lambda settings: storage.filesystem("s3://bucket/key"),
    "SENSORLOG_PORTAL_CSV_MONTH_ROWS": lambda settings: PortalOptions.from_env(settings),
    "SENSORLOG_SWEEP_MINUTES": lambda settings: config.sweep_minutes(),
}


@pytest.mark.parametrize("name", sorted(USES))
def test_a_malformed_number_fails_only_where_it_is_used(monkeypatch, tmp_path, name):
    monkeypatch.setenv("SENSORLOG_HOME", str(tmp_path))
    monkeypatch.setenv(name, "many")
    settings = Settings.from_env()  # the locations do not depend on it: every other command still works
    with pytest.raises(UsageError, match=f"{name}='many' is not a whole number"):
        USES[name](settings)


NUMBERS = {  # every numeric variable, a value below its minimum, and how to read it
    "SENSORLOG_WORKERS": ("-1", lambda env: config.workers(env)),
    "SENSORLOG_SWEEP_MINUTES": ("-5", lambda env: config.sweep_minutes(env)),
    "SENSORLOG_S3_MAX_ATTEMPTS": ("0", lambda env: S3Settings.from_env(env)),
    "SENSORLOG_S3_CONNECT_TIMEOUT": ("0", lambda env: S3Settings.from_env(env)),
    "SENSORLOG_S3_REQUEST_TIMEOUT": ("-1", lambda env: S3Settings.from_env(env)),
    "SENSORLOG_PORTAL_CSV_MONTH_ROWS": ("0", lambda env: PortalSettings.from_env(env)),
    "SENSORLOG_SQS_WAIT_SECONDS": ("-1", lambda env: SqsSettings.from_env({**env, "SENSORLOG_SQS_QUEUE_URL": "q"})),
    "SENSORLOG_SQS_POLL_SECONDS": ("-2", lambda env: SqsSettings.from_env({**env, "SENSORLOG_SQS_QUEUE_URL": "q"})),
}


@pytest.mark.parametrize("name", sorted(NUMBERS))
@pytest.mark.parametrize("value", ["many", "1e", "nan", "below"])
def test_every_numeric_variable_refuses_a_bad_value_naming_it(name, value):
    low, read = NUMBERS[name]
    value = low if value == "below" else value
    with pytest.raises(UsageError, match=f"^{name}={value!r}") as raised:
        read({name: value})
    assert raised.value.exit_code == 2
    read({name: ""})  # empty is unset: the default
