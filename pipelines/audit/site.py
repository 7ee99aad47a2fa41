"""The audit from a published site alone: ``sensorlog audit --log site/log --data site/data``.

Anyone holding a copy of the site recomputes the findings the city's auditor sees: the events and
the declarations they are judged against are both rows of the published log, the latest checkpoint
bounds what is read (``leaf_index < size``), and the city's time zone is the one its declarations
are dated in. Nothing of the operator's home is needed, and nothing is written next to the site
(DuckDB's spill folder is a temporary one). The audit trusts the files it reads: ``sensorlog
verify`` is what checks that they are the log's.
"""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

from pipelines.audit.model import AuditOptions, AuditResult
from pipelines.audit.run import run_audit
from pipelines.clock import parse_as_of
from pipelines.config import Settings
from pipelines.errors import USAGE, SensorlogError
from pipelines.registry import declarations
from pipelines.tlog.checkpoint import CheckpointError, open_checkpoint
from pipelines.tlog.layout import CHECKPOINT, VKEY
from pipelines.tlog.note import NoteError


class SiteAuditError(SensorlogError, ValueError):
    """The folders given are not a published log and its data."""

    exit_code = USAGE


def site_timezone(data: str, size: int) -> str:
    """The zone the site's declarations below leaf ``size`` are dated in; SiteAuditError when there
    are none."""
    zone = declarations.timezone_of(declarations.read_rows(data, size))
    if zone is None:
        raise SiteAuditError(
            f"{data} holds no declarations (event_type={declarations.TABLE}): the log was published before"
            " sensorlog logged what the city declared, so there is nothing public to judge the events against"
        )
    return zone


def site_settings(log: str, data: str, work: str, timezone: str) -> Settings:
    return Settings.from_env(
        {
            "SENSORLOG_HOME": work,
            "SENSORLOG_PUBLISHED": data,
            "SENSORLOG_LOG": log,
            "SENSORLOG_MANIFESTS": str(Path(log) / "manifests"),  # the site's copies: what corrections supersede
            "SENSORLOG_QUARANTINE": str(Path(work) / "quarantine"),
            "SENSORLOG_REGISTRY": str(Path(work) / "no-registry"),
            "SENSORLOG_TIMEZONE": timezone,
        }
    )


def audit_site(
    log: str, data: str, *, as_of: str | datetime | None = None, deployment: str | None = None,
    options: AuditOptions | None = None,
) -> AuditResult:
    """Audit the published log at ``log`` (its ``checkpoint`` and ``log.vkey``) over the rows under
    ``data`` (``event_type=…`` partitions), as of ``as_of`` (default: today in the city's zone)."""
    for folder, what in ((log, "--log"), (data, "--data")):
        if not Path(folder).is_dir():
            raise SiteAuditError(f"{what} {folder} is not a folder")
    try:
        vkey = (Path(log) / VKEY).read_text().strip()
        head = open_checkpoint((Path(log) / CHECKPOINT).read_bytes(), vkey)
    except FileNotFoundError as exc:
        raise SiteAuditError(f"{log} has no {Path(exc.filename).name}: not a published log") from exc
    except (CheckpointError, NoteError) as exc:
        raise SiteAuditError(f"{log}/{CHECKPOINT} does not verify with {VKEY}: {exc}") from exc
    timezone = site_timezone(data, head.size)
    base = options or AuditOptions()
    moment = parse_as_of(as_of, timezone) if as_of is not None else base.as_of
    options = AuditOptions(
        as_of=moment, deployment=deployment or base.deployment, grace=base.grace,
        silence_days=base.silence_days, now=base.now,
    )
    with tempfile.TemporaryDirectory(prefix="sensorlog-site-audit-") as work:
        settings = site_settings(log, data, work, timezone)
        result = run_audit(settings, options)
    if not result.checkpoint or "size" not in result.checkpoint:
        problem = (result.checkpoint or {}).get("error", "no checkpoint")
        raise SiteAuditError(f"{log}: the checkpoint does not verify with the log's key ({problem})")
    return result
