"""The file-backed Great Expectations project under ``<home>/quality/`` and its Checkpoints.

The project is generated, not hand-edited: ``expectations/*.json`` stay the suites validation runs, and
the GX copy of them under ``gx/expectations/`` is rebuilt whenever they (or this module's shape, or the
GX version) change. Generating it once per home, under a lock, and swapping it in with a rename keeps
parallel staging processes from racing on GX's own (non-atomic) file writes: after that, each process
only reads the project, and writes nothing but its Validation Results, each under a key of its own.

Layout (relative to the quality folder; ``pipelines.layout`` names each)::

    gx/great_expectations.yml     the Data Context config (stores, Data Docs sites, the pandas source)
    gx/expectations/              the suites, from expectations/
    gx/validation_definitions/    one per event table: its asset's whole-dataframe batch + its suite
    gx/checkpoints/               one per event table, ``sensorlog.<table>``, no actions (Data Docs are
                                  built once per publish, not once per file)
    validations/                  Validation Results, <suite path>/<batch id>/<run time>/<batch>.json
    data_docs/                    the operator's Data Docs site (``local_site``)
    public/validations/           the same results with row values removed (``pipelines.quality.public``)
    public/data_docs/             the public Data Docs site (``public_site``), copied into the portal
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from pipelines import locks
from pipelines.config import apply_library_defaults, resource_dir
from pipelines.schemas import EVENT_TABLES
from pipelines.tables import table_spec

EXPECTATIONS_DIR = resource_dir("expectations")
DATASOURCE = "sensorlog"
BATCH_DEFINITION = "whole"
PUBLIC_STORE = "public_validation_results_store"
LOCAL_SITE = "local_site"
PUBLIC_SITE = "public_site"
# Bump when the generated project changes shape: homes then regenerate it on their next validation.
PROJECT_VERSION = 1
STAMP = "sensorlog-project.json"
# Row-level failures are keyed by the parsed row's ordinal (``_ord``), so staging can quarantine exactly
# the rows GX found; 20 sample values per expectation is GX's SUMMARY default, for the operator's docs.
ROW_KEY = "_ord"
RESULT_FORMAT: dict[str, Any] = {
    "result_format": "COMPLETE",
    "unexpected_index_column_names": [ROW_KEY],
    "partial_unexpected_count": 20,
    "return_unexpected_index_query": False,
}


def suite_path(table: str) -> Path:
    file = table_spec(table).suite_file  # the catalog names each event table's suite
    if file is None:
        raise ValueError(f"{table} is not an event table; it has no expectation suite")
    return EXPECTATIONS_DIR / file


def load_suite_json(table: str) -> dict:
    return json.loads(suite_path(table).read_text())


def suite_name(table: str) -> str:
    return str(load_suite_json(table)["name"])


def checkpoint_name(table: str) -> str:
    return f"sensorlog.{table}"


def _digest() -> str:
    import great_expectations as gx

    h = hashlib.sha256(f"{PROJECT_VERSION}\0{gx.__version__}\0{json.dumps(RESULT_FORMAT, sort_keys=True)}".encode())
    for table in EVENT_TABLES:
        h.update(f"\0{table}\0".encode() + suite_path(table).read_bytes())
    return h.hexdigest()


def _current(gx_dir: Path, digest: str) -> bool:
    try:
        return bool(json.loads((gx_dir / STAMP).read_text()).get("digest") == digest)
    except (OSError, ValueError, AttributeError):
        return False


def ensure_project(quality: str | Path) -> Path:
    """The GX project under ``quality`` (its root, for ``gx.get_context(project_root_dir=...)``),
    generated or regenerated when missing or out of date. Stored results and Data Docs are kept."""
    root = Path(quality)
    gx_dir = root / "gx"
    digest = _digest()
    if _current(gx_dir, digest):
        return root
    root.mkdir(parents=True, exist_ok=True)
    with locks.exclusive(root / ".gx.lock"):
        if _current(gx_dir, digest):  # another process generated it while we waited
            return root
        work = root / f".gx-build-{uuid.uuid4().hex}"
        aside = root / f".gx-old-{uuid.uuid4().hex}"
        try:
            _generate(work)
            (work / "gx" / STAMP).write_text(json.dumps({"digest": digest, "version": PROJECT_VERSION}))
            if gx_dir.exists():
                os.rename(gx_dir, aside)
            os.rename(work / "gx", gx_dir)
        finally:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(aside, ignore_errors=True)
    return root


def _fs(base: str) -> dict[str, Any]:
    # Relative to gx/, so a copied or moved home keeps working; no store id file (nothing to race on).
    return {"class_name": "TupleFilesystemStoreBackend", "base_directory": base, "suppress_store_backend_id": True}


def _site(base: str, store: str, public: bool) -> dict[str, Any]:
    return {
        "class_name": "SiteBuilder",
        "show_how_to_buttons": False,
        "store_backend": _fs(base),
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        "site_section_builders": {
            "validations": {"source_store_name": store},
            "profiling": "None",
            **({"expectations": {"source_store_name": "expectations_store"}} if not public else {}),
        },
    }


def _configure(gx_dir: Path) -> None:
    """Point GX's scaffolded config at the quality folder's stores and sites."""
    path = gx_dir / "great_expectations.yml"
    config = yaml.safe_load(path.read_text())
    stores = config["stores"]
    for store in stores.values():
        store["store_backend"]["suppress_store_backend_id"] = True
    stores["validation_results_store"]["store_backend"] = _fs("../validations/")
    stores[PUBLIC_STORE] = {"class_name": "ValidationResultsStore", "store_backend": _fs("../public/validations/")}
    config["data_docs_sites"] = {
        LOCAL_SITE: _site("../data_docs/", "validation_results_store", public=False),
        PUBLIC_SITE: _site("../public/data_docs/", PUBLIC_STORE, public=True),
    }
    config["analytics_enabled"] = False
    header = "# Generated by sensorlog (pipelines/quality/project.py) from expectations/*.json: do not edit.\n"
    path.write_text(header + yaml.safe_dump(config, sort_keys=False))


def _generate(work: Path) -> None:
    import great_expectations as gx
    from great_expectations.core.expectation_suite import ExpectationSuite

    context = gx.get_context(mode="file", project_root_dir=work)
    _configure(work / "gx")
    context = gx.get_context(mode="file", project_root_dir=work)
    source = context.data_sources.add_pandas(DATASOURCE)
    for table in EVENT_TABLES:
        spec = load_suite_json(table)
        suite = context.suites.add(
            ExpectationSuite(name=spec["name"], expectations=spec["expectations"], meta=spec.get("meta"))
        )
        batch = source.add_dataframe_asset(table).add_batch_definition_whole_dataframe(BATCH_DEFINITION)
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=checkpoint_name(table), data=batch, suite=suite)
        )
        context.checkpoints.add(
            gx.Checkpoint(
                name=checkpoint_name(table), validation_definitions=[definition], result_format=RESULT_FORMAT,
                actions=[],
            )
        )
    for scaffolded in ("uncommitted/validations", "uncommitted/data_docs"):  # unused: the stores are above
        shutil.rmtree(work / "gx" / scaffolded, ignore_errors=True)


class Project:
    """The project's Data Context, opened once per process (``project``), and its Checkpoints."""

    def __init__(self, root: Path) -> None:
        import great_expectations as gx

        apply_library_defaults()  # GX_ANALYTICS_ENABLED=False unless the operator set it
        self.root = root
        self.context = gx.get_context(mode="file", project_root_dir=root)
        try:
            # GX annotates this setting as its ProgressBarsConfig class, but its validator reads it as a
            # mapping ("globally" in progress_bars), so the plain dict is what takes effect.
            self.context.variables.progress_bars = {  # type: ignore[assignment]
                "globally": False, "metric_calculations": False
            }
        except Exception:  # noqa: BLE001 - cosmetic only
            pass
        self._checkpoints: dict[str, Any] = {}

    def checkpoint(self, table: str) -> Any:
        if table not in self._checkpoints:
            self._checkpoints[table] = self.context.checkpoints.get(checkpoint_name(table))
        return self._checkpoints[table]

    @property
    def public_store(self) -> Any:
        return self.context.stores[PUBLIC_STORE]


@cache
def project(quality: str) -> Project:
    """The project under ``quality``, generated if needed; one Data Context per process and folder."""
    return Project(ensure_project(quality))
