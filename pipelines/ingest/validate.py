"""Great Expectations suites from ``expectations/`` → valid rows + rejected rows with reasons.

GX decides: each suite is loaded from its JSON file and run on each table of parsed rows (staging
hands it the rows of several parse chunks of a file at once, since every GX call has a fixed cost),
and the row-level failures come from GX's own ``unexpected_index_list`` (keyed by the source line),
so the suite file is what actually rejects a row. Two rules need outside knowledge and are checked here in Arrow:
the deployment must exist in the registry, and no timestamp may lie in the future.

Rows showing a deployment doing something it did not declare (undeclared data class, access by an
undeclared party, collecting after decommissioning) are *valid*: they are published and become
audit findings. Quarantining them would hide exactly what the log exists to show.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache

import pyarrow as pa
import pyarrow.compute as pc

from pipelines.config import apply_library_defaults
from pipelines.ingest import plausibility, privacy
from pipelines.quality import public
from pipelines.quality.project import (
    EXPECTATIONS_DIR,  # noqa: F401 - re-exported: where the suites are
    RESULT_FORMAT,
    ROW_KEY,
    load_suite_json,
    suite_path,  # noqa: F401 - re-exported
)
from pipelines.quality.project import project as quality_project
from pipelines.schemas import EventTable

CLOCK_SKEW = timedelta(minutes=5)

apply_library_defaults()  # GX_ANALYTICS_ENABLED=False unless the operator set it
logging.getLogger("great_expectations").setLevel(logging.WARNING)


def reason_for(expectation: dict) -> str:
    """A stable, readable name for one expectation, used as the quarantine reason."""
    kwargs = expectation["kwargs"]
    columns = kwargs.get("column") or f"{kwargs.get('column_A')},{kwargs.get('column_B')}"
    return f"gx:{expectation['type']}[{columns}]"


@dataclass(frozen=True)
class GXRun:
    """Where a validation's results are kept: the home's quality folder (``layout.quality_dir``) and the
    batch they belong to (GX's run name). Without one, validation runs in an ephemeral context.

    Rows of several batches validated in one call (``stage.stage_files_together``) are one result under
    a run name of the group's, ``batch_id`` here; ``batches`` then names each batch and the offset added
    to its ``_ord`` to key its rows in that call, recorded in the result's ``meta``."""

    quality: str
    batch_id: str
    batches: tuple[tuple[str, int], ...] = ()


@dataclass
class ValidationOutcome:
    valid_ords: pa.Array  # the _ord of every row that passed
    rejected: list[dict]
    gx_success: bool
    gx_statistics: dict
    # The _ord of each row of ``rejected``, in its order: staging validates several parse chunks in one
    # call and hands each chunk back its own rejects by these.
    rejected_ords: list[int] = field(default_factory=list)
    # Rows checked and rows failing each check (by reason, a row counted once per reason it fails).
    rows: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    # The stored GX Validation Result of this call, when run with a ``GXRun``: its key's tuple.
    result_key: tuple[str, ...] | None = None


class _GX:
    """One ephemeral GX context per process with one pandas asset and the suites loaded: for callers
    with no home (tests, one-off checks). Staging runs the home's Checkpoints (``pipelines.quality``)."""

    def __init__(self) -> None:
        import great_expectations as gx
        from great_expectations.core.expectation_suite import ExpectationSuite

        self.context = gx.get_context(mode="ephemeral")
        try:
            # GX annotates this setting as its ProgressBarsConfig class, but its validator reads it as a
            # mapping ("globally" in progress_bars), so the plain dict is what takes effect.
            self.context.variables.progress_bars = {  # type: ignore[assignment]
                "globally": False, "metric_calculations": False
            }
        except Exception:  # noqa: BLE001 - cosmetic only; older configs lack the setting
            pass
        source = self.context.data_sources.add_pandas("sensorlog")
        self.batch_definition = source.add_dataframe_asset("chunk").add_batch_definition_whole_dataframe(
            "all"
        )
        self.suites: dict[str, ExpectationSuite] = {}
        self._suite_cls = ExpectationSuite

    def suite(self, table: str):
        if table not in self.suites:
            spec = load_suite_json(table)
            self.suites[table] = self.context.suites.add(
                self._suite_cls(name=spec["name"], expectations=spec["expectations"], meta=spec.get("meta"))
            )
        return self.suites[table]

    def result(self, table: str, frame, run: GXRun | None):
        """GX's verdict on ``frame``: (the suite's validation result, its store key or None)."""
        if run is None:
            batch = self.batch_definition.get_batch(batch_parameters={"dataframe": frame})
            return batch.validate(self.suite(table), result_format=RESULT_FORMAT), None
        from great_expectations.core.run_identifier import RunIdentifier

        checkpoint = quality_project(run.quality).checkpoint(table)
        # Run name = batch id, run time = now: each validation call of a batch is its own stored result.
        outcome = checkpoint.run(
            batch_parameters={"dataframe": frame},
            run_id=RunIdentifier(run_name=run.batch_id, run_time=datetime.now(UTC)),
        )
        ((key, result),) = outcome.run_results.items()
        if run.batches:
            # Which batches the result covers, and how to find each one's rows in it (GX keys a failing
            # row by the ``_ord`` it was given: the batch's own plus its offset). Stored again with it.
            result.meta["sensorlog_batches"] = [{"batch_id": b, "row_key_offset": o} for b, o in run.batches]
            quality_project(run.quality).context.validation_results_store.set(key, result)
        return result, tuple(key.to_tuple())

    def failures(self, table: str, frame, run: GXRun | None = None):
        result, key = self.result(table, frame, run)
        failed: dict[int, list[str]] = defaultdict(list)
        for item in result.results:
            config = item.expectation_config
            reason = reason_for({"type": config.type, "kwargs": config.kwargs})
            if item.exception_info and item.exception_info.get("raised_exception"):
                raise RuntimeError(
                    f"suite {table}: {reason} raised: {item.exception_info['exception_message']}"
                )
            for entry in item.result.get("unexpected_index_list") or []:
                failed[int(entry[ROW_KEY])].append(reason)
        return failed, bool(result.success), dict(result.statistics), result, key


@cache
def _gx() -> _GX:
    return _GX()


def _outside_checks(
    table: pa.Table, known_deployments: frozenset[str], now: datetime
) -> dict[int, list[str]]:
    failed: dict[int, list[str]] = defaultdict(list)
    ords = table.column(ROW_KEY)
    known = pa.array(sorted(known_deployments), pa.string())
    unknown = pc.invert(pc.fill_null(pc.is_in(table.column("deployment_id"), value_set=known), True))
    for ord_ in ords.filter(unknown).to_pylist():  # only the failing rows become Python objects
        failed[ord_].append("registry:deployment_id not in the deployment registry")
    limit = pa.scalar(now + CLOCK_SKEW, pa.timestamp("us", tz="UTC"))
    for name in table.column_names:
        if pa.types.is_timestamp(table.schema.field(name).type):
            future = pc.fill_null(pc.greater(table.column(name), limit), False)
            for ord_ in ords.filter(future).to_pylist():
                failed[ord_].append(f"clock:{name} is in the future")
    return failed


def validate_chunk(
    event_table: EventTable,
    table: pa.Table,
    known_deployments: Iterable[str],
    now: datetime | None = None,
    run: GXRun | None = None,
) -> ValidationOutcome:
    """Split one parsed chunk into the ``_ord`` of valid rows and rejected rows with reasons. Every
    check is by row, so the rows of consecutive chunks (of a file, or of several files keyed apart),
    concatenated, get each chunk's verdict
    (``gx_success`` and ``gx_statistics`` then describe them all).

    ``known_deployments`` may map each id to its commissioning instant (``flow.deployment_ids``):
    then rows dated before it are quarantined too (``pipelines.ingest.plausibility``).

    With a ``run``, the table's Checkpoint of the home's GX project validates the rows and GX stores the
    Validation Result under the batch; a copy without row values goes to the public store too."""
    now = now or datetime.now(UTC)
    commissioned = known_deployments if isinstance(known_deployments, Mapping) else None
    frame = table.drop_columns(["_raw", "_line"]).to_pandas()
    failed, success, stats, result, key = _gx().failures(event_table.name, frame, run)
    if run is not None and key is not None:
        public.store_public_copy(quality_project(run.quality), event_table.name, key, result)
    for ord_, reasons in _outside_checks(table, frozenset(known_deployments), now).items():
        failed[ord_].extend(reasons)
    for ord_, reasons in plausibility.failures(table, commissioned).items():
        failed[ord_].extend(reasons)
    for ord_, reasons in privacy.table_problems(event_table.name, table, ROW_KEY).items():
        failed[ord_].extend(reasons)  # metadata only: personal data in a text field is never published
    bad = pa.array(sorted(failed), pa.int64())
    is_bad = pc.is_in(table.column(ROW_KEY), value_set=bad)
    valid_ords = table.column(ROW_KEY).filter(pc.invert(is_bad)).combine_chunks()
    rejected, rejected_ords = [], []
    for row in (
        table.filter(is_bad)
        .select(["_ord", "_line", "_raw", "source", "event_id", "deployment_id"])
        .to_pylist()
    ):
        rejected.append(
            {
                "line": row["_line"],
                "event_type": event_table.cloudevent_type,
                "source": row["source"],
                "event_id": row["event_id"],
                "deployment_id": row["deployment_id"],
                "reasons": failed[row["_ord"]],
                "raw": row["_raw"],
            }
        )
        rejected_ords.append(row["_ord"])
    return ValidationOutcome(
        valid_ords, rejected, success and not rejected, stats, rejected_ords,
        rows=table.num_rows, failed=reason_counts(failed.values()), result_key=key,
    )


def reason_counts(reasons_of_rows: Iterable[Iterable[str]]) -> dict[str, int]:
    """Rows failing each check, by reason (a row counted once per reason it gives), sorted by reason."""
    counts: dict[str, int] = defaultdict(int)
    for reasons in reasons_of_rows:
        for reason in dict.fromkeys(reasons):
            counts[reason] += 1
    return dict(sorted(counts.items()))
