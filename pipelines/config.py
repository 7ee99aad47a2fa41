"""Settings from environment variables, with embedded defaults.

This module is the only reader of the environment in ``pipelines``, ``dags`` and ``sensorlog_airflow``
(``tests/test_configuration.py`` checks it, and that every ``SENSORLOG_*`` variable read here is in
the README's Configuration table). ``Settings`` holds the locations and the log's identity; the groups
below it are read by their own ``from_env`` when their one consumer needs them, so a malformed value
fails only what uses it. Every ``from_env`` takes an explicit ``env`` mapping instead of the process's.

Every location is a local path or an ``s3://`` URI; the storage layer resolves both.
Nothing here touches the filesystem, so building settings is free and side-effect-less; only
``Settings.from_existing_home`` looks, and only to check that the home is there.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.errors import UsageError

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent  # the checkout's root when running from one (tests and tools use it)
# Kept at the top of the repository; a built wheel carries a copy of each under pipelines/_shipped/
# (setup.py's build step). Look them up with resource_dir(), never through PROJECT_DIR.
SHIPPED_FOLDERS = ("schemas", "expectations", "registry", "dags")
# The sample city's log origin, the default of SENSORLOG_LOG_ORIGIN (a real city sets its own: the portal
# warns when a registry other than the sample's is published under it, pipelines.portal.defaults).
DEMO_LOG_ORIGIN = "sensorlog.example/riverton"
HOME_ENV = "SENSORLOG_HOME"
DEFAULT_HOME = "./.sensorlog"


def resource_dir(name: str) -> Path:
    """The folder ``name`` (one of ``SHIPPED_FOLDERS``: JSON Schemas, GX suites, the sample registry,
    the DAG files): the checkout's top-level folder when running from a checkout (an editable install),
    otherwise the copy the installed package carries."""
    if name not in SHIPPED_FOLDERS:
        raise ValueError(f"unknown resource folder {name!r}; one of {', '.join(SHIPPED_FOLDERS)}")
    checkout = PROJECT_DIR / name
    if (PROJECT_DIR / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return PACKAGE_DIR / "_shipped" / name


def _join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *parts])


def environment(env: Mapping[str, str] | None = None) -> Mapping[str, str]:
    """Where configuration is read from: ``env`` when given (a test's dict, a child process's
    environment), else this process's environment, read at the moment of the call."""
    return os.environ if env is None else env


@dataclass(frozen=True)
class Settings:
    home: str
    landing: str
    published: str
    # The audit's derived tables: a sibling of ``published``, never under it, so a glob over the event
    # tables' Hive partitions (``published/**/*.parquet``) meets only event rows.
    derived: str
    quarantine: str
    manifests: str
    staging: str
    state: str
    log: str
    key_file: str
    registry: str
    log_origin: str
    # Registry dates (commissioning, policy changes) are local calendar dates in the city's zone.
    timezone: str = "America/New_York"
    # DuckDB's memory limit for the audit and summaries (its default is 80% of RAM, which an Airflow
    # worker shares); beyond it DuckDB spills to a folder under ``state``.
    duckdb_memory: str = "1GB"
    # Witnesses asked to cosign each checkpoint (``sensorlog cosign``): a text file, one witness per
    # line, ``<witness vkey> <submission URL>``; ``#`` comments and blank lines are ignored.
    witnesses: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(environment(env))
        home = env.get(HOME_ENV, DEFAULT_HOME)
        if "://" not in home:
            home = str(Path(home).resolve())

        def where(var: str, default: str) -> str:
            value = env.get(var) or default
            return value if "://" in value else str(Path(value).resolve())

        # State (dedupe index, locks, log hashes, keys) is always local: it is the single writer's
        # working memory. Published data, landing and quarantine may live on object storage.
        local_home = home
        if "://" in home:
            local_home = str(Path(env.get("SENSORLOG_STATE_HOME", DEFAULT_HOME)).resolve())
        return cls(
            home=home,
            landing=where("SENSORLOG_LANDING", _join(home, "landing")),
            published=where("SENSORLOG_PUBLISHED", _join(home, "published")),
            derived=where("SENSORLOG_DERIVED", _join(home, "derived")),
            quarantine=where("SENSORLOG_QUARANTINE", _join(home, "quarantine")),
            manifests=where("SENSORLOG_MANIFESTS", _join(home, "manifests")),
            staging=where("SENSORLOG_STAGING", _join(local_home, "staging")),
            state=where("SENSORLOG_STATE", _join(local_home, "state")),
            log=where("SENSORLOG_LOG", _join(local_home, "log")),
            key_file=where("SENSORLOG_KEY_FILE", _join(local_home, "keys", "log.key")),
            registry=where("SENSORLOG_REGISTRY", str(resource_dir("registry"))),
            log_origin=env.get("SENSORLOG_LOG_ORIGIN", DEMO_LOG_ORIGIN),
            timezone=env.get("SENSORLOG_TIMEZONE", "America/New_York"),
            duckdb_memory=env.get("SENSORLOG_DUCKDB_MEMORY", "1GB"),
            witnesses=where("SENSORLOG_WITNESSES", _join(home, "witnesses.txt")),
        )

    @classmethod
    def from_existing_home(cls, env: dict[str, str] | None = None) -> Settings:
        """``from_env``, for a command that reads a home it does not create: a local home folder that
        does not exist is a ``UsageError`` (exit 2) naming it and ``sensorlog init``, instead of a
        mistyped ``SENSORLOG_HOME`` silently becoming a new, empty home. An ``s3://`` home is not
        checked (a prefix exists once something is written under it)."""
        settings = cls.from_env(env)
        if "://" in settings.home or Path(settings.home).is_dir():
            return settings
        named = dict(environment(env)).get(HOME_ENV)
        where = f"{HOME_ENV}={named}" if named else f"{HOME_ENV} is unset, so the home is {DEFAULT_HOME}"
        if Path(settings.home).exists():
            raise UsageError(f"{HOME_ENV}: {settings.home} is not a folder ({where})")
        raise UsageError(
            f"{HOME_ENV}: no sensorlog home at {settings.home} ({where}): check the path, or create an empty"
            " home there with `sensorlog init`"
        )


def _number(env: Mapping[str, str], name: str, default: float, kind: type = int, minimum: float = 0) -> Any:
    """``env[name]`` as a ``kind`` (int or float) of at least ``minimum``, ``default`` when unset or empty; a
    malformed value is a ``UsageError`` naming the variable (exit 2), not a ValueError from deep inside."""
    raw = env.get(name, "")
    if raw.strip() == "":
        return kind(default)
    what = "a whole number" if kind is int else "a number"
    try:
        value = kind(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not {what}") from None
    if not value >= minimum:  # also refuses nan
        raise UsageError(f"{name}={raw!r}: must be {what} of at least {minimum:g}")
    return value


# -- Read where they are used ------------------------------------------------------------------------
# Not fields of ``Settings``: each has one consumer, which reads it when it needs it, so
# ``SENSORLOG_WORKERS=auto`` breaks ``sensorlog run`` and not ``sensorlog verify``, and a bad SQS value
# never stops the ingest DAG from being parsed.

# The moment treated as "now" (``pipelines.clock``): an ISO date or datetime; unset means the system
# clock. Tests, replays and the sample city's demo set it so that "today" is a known day.
NOW_ENV = "SENSORLOG_NOW"


def now_override(env: Mapping[str, str] | None = None) -> str:
    """``SENSORLOG_NOW`` exactly as set, ``""`` when unset. Read at every call, never at import, so a
    variable set after the process started (a test's ``monkeypatch.setenv``) takes effect."""
    return environment(env).get(NOW_ENV, "")


def workers(env: Mapping[str, str] | None = None) -> int | None:
    """``SENSORLOG_WORKERS``: staging processes for ``sensorlog run`` and the demo; ``None`` when unset
    or empty (the caller then uses one per core)."""
    env = environment(env)
    return _number(env, "SENSORLOG_WORKERS", 1) if env.get("SENSORLOG_WORKERS", "").strip() else None


def sweep_minutes(env: Mapping[str, str] | None = None) -> int:
    """``SENSORLOG_SWEEP_MINUTES``: the ``sensorlog_ingest`` DAG's sweep interval; 0 turns the sweep off.
    Read when the DAG file is parsed: the schedule is part of the DAG."""
    return int(_number(environment(env), "SENSORLOG_SWEEP_MINUTES", 30))


def lineage_namespace(env: Mapping[str, str] | None = None) -> str | None:
    """``SENSORLOG_LINEAGE_NAMESPACE``: the OpenLineage namespace of sensorlog's jobs (``pipelines.lineage``);
    ``None`` (unset or empty): the log origin."""
    return environment(env).get("SENSORLOG_LINEAGE_NAMESPACE") or None


def audit_fail_on(env: Mapping[str, str] | None = None) -> str | None:
    """``SENSORLOG_AUDIT_FAIL_ON``: the severity at or above which the audit DAG's gate fails the run;
    ``None`` (unset or empty): report only."""
    return environment(env).get("SENSORLOG_AUDIT_FAIL_ON") or None


CITY_BBOX_ENV = "SENSORLOG_CITY_BBOX"


def city_bbox(env: Mapping[str, str] | None = None) -> tuple[float, float, float, float] | None:
    """``SENSORLOG_CITY_BBOX``: the city's bounding box, ``min_lon,min_lat,max_lon,max_lat`` in WGS 84 (as
    a registry's ``location.bbox``); a deployment outside it is a registry warning. ``None`` when unset:
    positions are then checked only for being plausible at all (not 0,0). Malformed is a usage error."""
    raw = environment(env).get(CITY_BBOX_ENV, "").strip()
    if not raw:
        return None
    expected = f"{CITY_BBOX_ENV}={raw!r}: expected min_lon,min_lat,max_lon,max_lat (four numbers, each min <= max)"
    try:
        values = [float(v) for v in raw.split(",")]
    except ValueError:
        raise UsageError(expected) from None
    if len(values) != 4 or not all(abs(v) <= 180 for v in values) or not all(abs(v) <= 90 for v in values[1::2]):
        raise UsageError(expected)
    min_lon, min_lat, max_lon, max_lat = values
    if min_lon > max_lon or min_lat > max_lat:
        raise UsageError(expected)
    return min_lon, min_lat, max_lon, max_lat


@dataclass(frozen=True)
class S3Settings:
    """How ``pipelines.storage`` talks to S3. Endpoint and region are the standard AWS variables (boto3
    reads the same ones; credentials are left to the AWS SDK); attempts and timeouts are sensorlog's."""

    endpoint: str | None = None  # AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL; None: AWS itself
    region: str | None = None  # AWS_DEFAULT_REGION, else AWS_REGION; None: us-east-1
    # Transient errors (throttling, 5xx, dropped connections) are retried with exponential backoff.
    max_attempts: int = 6
    connect_timeout: float = 5.0  # seconds
    request_timeout: float = 30.0  # seconds

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        env = environment(env)
        return cls(
            endpoint=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
            region=env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
            max_attempts=_number(env, "SENSORLOG_S3_MAX_ATTEMPTS", cls.max_attempts, minimum=1),
            connect_timeout=_number(env, "SENSORLOG_S3_CONNECT_TIMEOUT", cls.connect_timeout, float, minimum=0.001),
            request_timeout=_number(env, "SENSORLOG_S3_REQUEST_TIMEOUT", cls.request_timeout, float, minimum=0.001),
        )


@dataclass(frozen=True)
class PortalSettings:
    """Who publishes the open-data portal and under which licence (``pipelines.portal.options``), and
    where the ``sensorlog_portal`` DAG writes it in which language (``sensorlog portal`` takes
    ``--out``/``--lang`` instead)."""

    base_url: str | None = None  # None: https://<log origin>/
    publisher: str = "City of Riverton"
    contact_name: str = "Riverton Surveillance Technology Transparency"
    contact_email: str = "privacy@riverton.example"
    license_url: str = "https://creativecommons.org/publicdomain/zero/1.0/"
    # Above this many rows a table's CSV extract is split into one file per month (spreadsheet programs
    # open about a million rows; a month of the busiest table stays well below that).
    csv_month_rows: int = 100_000
    out: str | None = None  # None: <home>/site
    # The languages one build writes, first at the root: codes separated by commas or spaces; empty: all
    # six shipped (pipelines.portal.i18n.build_languages reads it).
    lang: str = ""
    # A GeoJSON file the index map draws under its markers; empty: the sample city's own, "none": no basemap
    # (pipelines.portal.basemap).
    basemap: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PortalSettings:
        env = environment(env)
        return cls(
            base_url=env.get("SENSORLOG_PORTAL_BASE_URL") or None,
            publisher=env.get("SENSORLOG_PORTAL_PUBLISHER", cls.publisher),
            contact_name=env.get("SENSORLOG_PORTAL_CONTACT_NAME", cls.contact_name),
            contact_email=env.get("SENSORLOG_PORTAL_CONTACT_EMAIL", cls.contact_email),
            license_url=env.get("SENSORLOG_PORTAL_LICENSE", cls.license_url),
            csv_month_rows=_number(env, "SENSORLOG_PORTAL_CSV_MONTH_ROWS", cls.csv_month_rows, minimum=1),
            out=env.get("SENSORLOG_PORTAL_OUT") or None,
            lang=env.get("SENSORLOG_PORTAL_LANG", cls.lang),
            basemap=env.get("SENSORLOG_PORTAL_BASEMAP", cls.basemap),
        )


@dataclass(frozen=True)
class SqsSettings:
    """The landing zone's SQS watcher (``sensorlog_airflow.watchers``): no queue URL, no watcher and no
    ``sensorlog_events`` DAG, and the other three are then not read at all."""

    queue_url: str = ""
    aws_conn_id: str = "aws_default"  # the Airflow connection the trigger uses
    wait_seconds: int = 5  # SQS long-poll wait per receive
    poll_seconds: int = 2  # delay between receives

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SqsSettings:
        env = environment(env)
        queue_url = env.get("SENSORLOG_SQS_QUEUE_URL", "")
        if not queue_url:
            return cls()
        return cls(
            queue_url=queue_url,
            aws_conn_id=env.get("SENSORLOG_AWS_CONN_ID", cls.aws_conn_id),
            wait_seconds=_number(env, "SENSORLOG_SQS_WAIT_SECONDS", cls.wait_seconds),
            poll_seconds=_number(env, "SENSORLOG_SQS_POLL_SECONDS", cls.poll_seconds),
        )


# Variables third-party libraries read themselves, given a value only when the operator set none.
LIBRARY_DEFAULTS = {
    "GX_ANALYTICS_ENABLED": "False",  # Great Expectations sends no usage analytics
}


def apply_library_defaults() -> None:
    """Set each of ``LIBRARY_DEFAULTS`` the operator left unset, in this process's environment (and so
    in any child's)."""
    for name, value in LIBRARY_DEFAULTS.items():
        os.environ.setdefault(name, value)
