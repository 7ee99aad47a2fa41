"""Checking uncached files in a process pool (``pipelines.registry.load``, ``workers``) gives exactly the
records and the problems checking them in one process gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.registry import load_registry, validate_registry
from pipelines.registry.load import POOL_MIN_FILES

pytestmark = pytest.mark.integration

PROJECT_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture
def many(tmp_path: Path) -> Path:
    """The sample registry copied under new ids until there are more files than the pool needs."""
    folder = tmp_path / "reg"
    folder.mkdir()
    samples = sorted((PROJECT_DIR / "registry").glob("*.yaml"))
    n = 0
    while n < POOL_MIN_FILES + 10:
        for sample in samples:
            stem = f"{sample.stem[:50]}-{n:04d}"
            (folder / f"{stem}.yaml").write_text(sample.read_text().replace(f"id: {sample.stem}", f"id: {stem}", 1))
            n += 1
    return folder


def test_a_pool_loads_the_same_records_as_one_process(many: Path) -> None:
    serial = load_registry(many, workers=1)
    pooled = load_registry(many, workers=2, timezone="America/Chicago")  # another zone: not the reused registry
    assert len(pooled) == len(serial) > POOL_MIN_FILES
    assert [d.raw for d in pooled] == [d.raw for d in serial]


def test_a_pool_reports_the_same_problems_in_the_same_order(many: Path) -> None:
    files = sorted(many.glob("*.yaml"))
    files[3].write_text(files[3].read_text().replace("kind:", "kind: [", 1))  # YAML error
    files[100].write_text(files[100].read_text().replace("policy_version:", "policy_version: -1 #", 1))
    files[150].write_bytes(b"\xff\xfe not UTF-8")
    serial = [str(p) for p in validate_registry(many, workers=1)]
    assert len(serial) >= 3
    assert [str(p) for p in validate_registry(many, workers=2)] == serial
