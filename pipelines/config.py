"""Settings from environment variables, with embedded defaults.

Every location is a local path or an ``s3://`` URI; the storage layer resolves both.
Nothing here touches the filesystem, so building settings is free and side-effect-less.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent  # the checkout's root when running from one (tests and tools use it)
# Kept at the top of the repository; a built wheel carries a copy of each under pipelines/_shipped/
# (setup.py's build step). Look them up with resource_dir(), never through PROJECT_DIR.
SHIPPED_FOLDERS = ("schemas", "expectations", "registry", "dags")


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


@dataclass(frozen=True)
class Settings:
    home: str
    landing: str
    published: str
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
        env = dict(os.environ if env is None else env)
        home = env.get("SENSORLOG_HOME", "./.sensorlog")
        if "://" not in home:
            home = str(Path(home).resolve())

        def where(var: str, default: str) -> str:
            value = env.get(var) or default
            return value if "://" in value else str(Path(value).resolve())

        # State (dedupe index, locks, log hashes, keys) is always local: it is the single writer's
        # working memory. Published data, landing and quarantine may live on object storage.
        local_home = home
        if "://" in home:
            local_home = str(Path(env.get("SENSORLOG_STATE_HOME", "./.sensorlog")).resolve())
        return cls(
            home=home,
            landing=where("SENSORLOG_LANDING", _join(home, "landing")),
            published=where("SENSORLOG_PUBLISHED", _join(home, "published")),
            quarantine=where("SENSORLOG_QUARANTINE", _join(home, "quarantine")),
            manifests=where("SENSORLOG_MANIFESTS", _join(home, "manifests")),
            staging=where("SENSORLOG_STAGING", _join(local_home, "staging")),
            state=where("SENSORLOG_STATE", _join(local_home, "state")),
            log=where("SENSORLOG_LOG", _join(local_home, "log")),
            key_file=where("SENSORLOG_KEY_FILE", _join(local_home, "keys", "log.key")),
            registry=where("SENSORLOG_REGISTRY", str(resource_dir("registry"))),
            log_origin=env.get("SENSORLOG_LOG_ORIGIN", "sensorlog.example/riverton"),
            timezone=env.get("SENSORLOG_TIMEZONE", "America/New_York"),
            duckdb_memory=env.get("SENSORLOG_DUCKDB_MEMORY", "1GB"),
            witnesses=where("SENSORLOG_WITNESSES", _join(home, "witnesses.txt")),
        )
