"""The retention rules declared ``unknown``, one row per stretch of days they judge: what the audit's
``retention_unclear`` finding reports, with the declared words and where they came from."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipelines.registry.declarations import SOURCE, Declared

UNCLEAR_SCHEMA = pa.schema(
    [
        ("deployment_id", pa.string()),
        ("data_class", pa.string()),
        ("policy_version", pa.int64()),
        ("valid_from", pa.date32()),
        ("valid_to", pa.date32()),  # exclusive
        ("stated", pa.string()),  # the source's words, verbatim
        ("provenance", pa.string()),  # provenance.fields for the rule, when the record says
        ("declared_in", pa.string()),  # the logged version (<id>@<n>) or the registry file
        ("source", pa.string()),  # evidence: the declaration row, when the version was logged
        ("event_id", pa.string()),
    ]
)


def unclear_table(declared: Declared) -> pa.Table:
    """Every (deployment, data class, stretch of days) judged by a rule whose period is ``unknown``."""
    rows = []
    for deployment_id in declared.histories:
        for declaration, policy, valid_from, valid_to in declared.declared_segments(deployment_id):
            deployment = declaration.deployment
            rules_at, _ = deployment.policy_fields(policy)
            logged = declaration.declared_at is not None
            for i, rule in enumerate(policy.retention):
                if rule.kind != "unknown":
                    continue
                rows.append({
                    "deployment_id": deployment_id,
                    "data_class": rule.data_class,
                    "policy_version": policy.version,
                    "valid_from": valid_from,
                    "valid_to": valid_to,
                    "stated": rule.stated,
                    "provenance": deployment.source_of(f"{rules_at}[{i}]"),
                    # A folder's file by its name only: where the registry sits on disk is nobody's business.
                    "declared_in": declaration.event_id if logged else Path(deployment.source_file).name,
                    "source": SOURCE if logged else None,
                    "event_id": declaration.event_id if logged else None,
                })
    return pa.Table.from_pylist(rows, schema=UNCLEAR_SCHEMA)
