"""Deployment registry: one YAML file per deployment, validated and turned into typed records.

A registry is a folder of ``<id>.yaml`` files, each checked against
``schemas/deployment.schema.json`` (JSON Schema 2020-12) and then by the checks a schema cannot
express: DTPR element ids exist in the shipped taxonomy and in the right category, retention covers
exactly the declared data classes, ISO 8601 durations parse, dates are in order, the id equals the
file name. Every problem of every file is collected, one message each, so a registry maintainer
fixes everything in one pass.

Retention and access are machine-readable and versioned: a deployment's ``retention`` and
``access.grants`` are its current policy (``policy_version``, in force from
``policy_effective_from``); ``policy_history`` holds complete earlier versions. Registry dates are
local calendar dates in the city's time zone (``America/New_York`` unless told otherwise), so a
policy effective 2026-08-01 applies from local midnight.

The package is in parts: ``model`` (the typed records), ``retention`` (ISO 8601 durations, retention
rules, due dates), ``checks`` (problems, schema wording, the checks a schema cannot express) and
``load`` (bounded YAML reading, building records, loading a folder). The names callers use are
re-exported here. The registry renders nothing: DTPR's retention wording ("Retained 30 days") and the
DTPR card are rendered from the machine-readable rule by ``pipelines.portal.dtpr_card``.
"""

from __future__ import annotations

from pipelines.registry.cache import registry_cache_dir
from pipelines.registry.checks import (
    DTPR_FIELDS,
    MAX_RECORD_BYTES,
    SCHEMA_FILE,
    Problem,
    RegistryError,
    check_deployment,
    deployment_schema,
)
from pipelines.registry.load import (
    MAX_REGISTRY_FILE_BYTES,
    MAX_YAML_DEPTH,
    MAX_YAML_NODES,
    REGISTRY_SUFFIXES,
    YamlBoundsError,
    from_checked,
    home_registry,
    load_registry,
    registry_warnings,
    validate_registry,
)
from pipelines.registry.model import (
    ACCESS_DECLARED,
    ACCESS_UNDECLARED,
    ACCESS_UNVERIFIABLE,
    DEFAULT_TIMEZONE,
    AccessGrant,
    DataSource,
    Deployment,
    DeviceCount,
    Place,
    PolicyVersion,
    Registry,
    Relocation,
    local_day,
)
from pipelines.registry.retention import (
    DAYS_PER_MONTH,
    DAYS_PER_YEAR,
    DEFAULT_TRIGGER,
    DURATION_EXPECTED,
    INDEFINITE,
    MAX_PERIOD_DAYS,
    NO_RETENTION,
    PERIOD_LIMIT_EXPECTED,
    TRIGGERS,
    UNKNOWN,
    IsoDuration,
    RetentionRule,
    exceeds_period_limit,
    parse_iso_duration,
)

__all__ = [
    "ACCESS_DECLARED",
    "ACCESS_UNDECLARED",
    "ACCESS_UNVERIFIABLE",
    "DAYS_PER_MONTH",
    "DAYS_PER_YEAR",
    "DEFAULT_TIMEZONE",
    "DEFAULT_TRIGGER",
    "DTPR_FIELDS",
    "DURATION_EXPECTED",
    "INDEFINITE",
    "MAX_PERIOD_DAYS",
    "MAX_RECORD_BYTES",
    "MAX_REGISTRY_FILE_BYTES",
    "MAX_YAML_DEPTH",
    "MAX_YAML_NODES",
    "NO_RETENTION",
    "PERIOD_LIMIT_EXPECTED",
    "REGISTRY_SUFFIXES",
    "SCHEMA_FILE",
    "TRIGGERS",
    "UNKNOWN",
    "AccessGrant",
    "DataSource",
    "Deployment",
    "DeviceCount",
    "Place",
    "Relocation",
    "IsoDuration",
    "PolicyVersion",
    "Problem",
    "Registry",
    "RegistryError",
    "RetentionRule",
    "YamlBoundsError",
    "check_deployment",
    "deployment_schema",
    "exceeds_period_limit",
    "from_checked",
    "home_registry",
    "load_registry",
    "local_day",
    "parse_iso_duration",
    "registry_cache_dir",
    "registry_warnings",
    "validate_registry",
]
