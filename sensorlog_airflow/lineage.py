"""OpenLineage run events for the DAGs' TaskFlow tasks: which landed files a task read, which tables it
wrote, and what validation found (docs/lineage.md).

The OpenLineage provider has no extractor for ``@task`` functions: it falls back to hook lineage (assets a
hook reported to ``airflow.sdk.lineage``'s collector) and then to the task's static inlets and outlets. A
task body here calls :func:`read` or :func:`published` with what it handled, which

- keeps the datasets with their facets (data-quality metrics and assertions per landed file, output
  statistics per table) for :class:`TaskLineageExtractor`, which the provider uses for TaskFlow tasks
  when ``[openlineage] extractors`` names it (``pipelines.lineage.openlineage_env`` does), or
- when that extractor is not configured (an Airflow set up with only ``OPENLINEAGE_URL``), reports each
  dataset to the hook lineage collector instead, so the provider still names them in the task's COMPLETE
  (or FAIL) event, without facets (collector assets carry none). Not both: the collector is one per
  process and never emptied, so under ``airflow dags test`` (every task in one process) a task's START
  event would list what the task before it reported.

Records are kept per task instance, in the task's process, where the provider's listener runs after the
body returns. Lineage never fails a task: a problem recording it is logged as a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage
from openlineage.client.event_v2 import InputDataset, OutputDataset
from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    output_statistics_output_dataset,
)

from pipelines import lineage
from pipelines.config import Settings

log = logging.getLogger(__name__)


@dataclass
class _Record:
    """What one task instance read and wrote, by dataset URI."""

    inputs: dict[str, InputDataset] = field(default_factory=dict)
    outputs: dict[str, OutputDataset] = field(default_factory=dict)


_records: dict[tuple, _Record] = {}

# The "context" the hook lineage collector files our assets under (it only tells reporters apart).
_REPORTER = object()


def _key(ti: Any) -> tuple:
    return (ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", -1), ti.try_number)


def _current() -> _Record:
    from airflow.sdk import get_current_context

    return _records.setdefault(_key(get_current_context()["ti"]), _Record())


def _use_collector() -> bool:
    from airflow.providers.openlineage import conf

    return lineage.EXTRACTOR not in conf.custom_extractors()


def _dataset(uri: str) -> tuple[str, str] | None:
    """The OpenLineage (namespace, name) the provider gives ``uri`` (``file://``, ``s3://``), or None."""
    from airflow.providers.common.compat.openlineage.utils.utils import translate_airflow_asset
    from airflow.sdk import Asset

    found = translate_airflow_asset(Asset(uri=uri), None)
    return None if found is None else (found.namespace, found.name)


def _collector() -> Any:
    from airflow.sdk.lineage import get_hook_lineage_collector

    return get_hook_lineage_collector()


def _register(uri: str, output: bool) -> tuple[str, str] | None:
    """The OpenLineage name of ``uri``, told to Airflow's hook-lineage collector when that is what
    reports (``_use_collector``); None, with a warning, when it has no name."""
    named = _dataset(uri)
    if named is None:
        log.warning("lineage: no OpenLineage name for %s", uri)
        return None
    if _use_collector():
        collector = _collector()
        (collector.add_output_asset if output else collector.add_input_asset)(context=_REPORTER, uri=uri)
    return named


def _add_input(uri: str, facets: dict[str, Any] | None = None) -> None:
    named = _register(uri, output=False)
    if named is None:
        return
    record = _current()
    known = record.inputs.get(uri)
    merged = {**(known.inputFacets or {}), **(facets or {})} if known is not None else facets or {}
    record.inputs[uri] = InputDataset(namespace=named[0], name=named[1], inputFacets=merged)


def _add_output(uri: str, rows: int, files: int) -> None:
    named = _register(uri, output=True)
    if named is None:
        return
    record = _current()
    known = record.outputs.get(uri)
    if known is not None and known.outputFacets and "outputStatistics" in known.outputFacets:
        before = known.outputFacets["outputStatistics"]
        rows, files = rows + (before.rowCount or 0), files + (before.fileCount or 0)
    stats = output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows, fileCount=files)
    record.outputs[uri] = OutputDataset(namespace=named[0], name=named[1], outputFacets={"outputStatistics": stats})


def read(uris: list[str]) -> list[str]:
    """Record ``uris`` (landed files, local paths or ``s3://``) as the running task's inputs; returns them
    unchanged, so a task body can wrap the list it works on."""
    try:
        for u in uris:
            _add_input(lineage.uri(u))
    except Exception as exc:  # lineage is a report: it never fails the task
        log.warning("lineage: inputs not recorded: %s", exc)
    return uris


def _quality_facets(batch: lineage.BatchLineage) -> dict[str, Any]:
    q = batch.quality
    metrics = data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
        columnMetrics={}, rowCount=q.rows, bytes=batch.source_bytes, fileCount=1
    )
    assertions = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(
                assertion=c.rule,
                success=c.failed == 0,
                name=f"{c.table}: {c.rule}" if c.table else c.rule,
                severity="warn",  # failing rows are quarantined, the rest of the file is published
                expected="0",
                actual=str(c.failed),
                params={"table": c.table, "source": q.source, "batch_id": batch.batch_id},
            )
            for c in q.checks
        ]
    )
    return {"dataQualityMetrics": metrics, "dataQualityAssertions": assertions}


def published(settings: Settings, result: dict) -> dict:
    """Record what a publish result (``flow.commit_batches``) did: each new batch's landed file as an
    input with its data-quality facets, each table it wrote (and the quarantine) as an output with rows
    and files. Returns ``result`` unchanged."""
    for batch_id in dict.fromkeys(result.get("batch_ids") or []):
        try:  # one batch's problem (a manifest that cannot be read) costs only that batch's lineage
            batch = lineage.batch_lineage(settings, batch_id)
            if batch is None:
                continue
            _add_input(batch.source, _quality_facets(batch))
            for write in batch.writes:
                _add_output(lineage.table_uri(settings, write.table), write.rows, write.files)
            if batch.quarantined:
                _add_output(lineage.quarantine_uri(settings), batch.quarantined, 1)
        except Exception as exc:  # lineage is a report: it never fails the task
            log.warning("lineage: batch %s not recorded: %s", batch_id, exc)
    return result


def recorded(task_instance: Any) -> OperatorLineage:
    """What ``task_instance`` recorded (nothing, if it recorded nothing or ran in another process)."""
    record = _records.get(_key(task_instance), _Record())
    return OperatorLineage(inputs=list(record.inputs.values()), outputs=list(record.outputs.values()))


class TaskLineageExtractor(BaseExtractor):
    """The provider's extractor for TaskFlow tasks (``[openlineage] extractors``): at START the task's
    declared inlets and outlets (by returning nothing, the provider's own fallback), at COMPLETE and FAIL
    what the body recorded, with facets."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator"]

    def _execute_extraction(self) -> OperatorLineage | None:
        return OperatorLineage()

    def extract_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        return recorded(task_instance)

