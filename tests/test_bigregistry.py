"""The big-registry generator writes a valid, varied, reproducible registry of invented deployments."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.dev.bigregistry import MAX_GRANTS_PER_DEPLOYMENT, write_registry
from pipelines.registry import load_registry

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("big") / "registry"
    write_registry(out, 120, 5_000, seed=3)
    return out


def test_every_generated_file_is_a_valid_deployment(generated: Path) -> None:
    registry = load_registry(generated)
    assert len(registry) == 120
    assert sum(len(d.current_policy.access) for d in registry) == 5_000
    assert all(1 <= len(d.current_policy.access) <= MAX_GRANTS_PER_DEPLOYMENT for d in registry)


def test_the_registry_is_varied_like_a_real_one(generated: Path) -> None:
    registry = list(load_registry(generated))
    assert len({d.kind for d in registry}) >= 5
    assert len({d.vendor for d in registry}) >= 5
    assert len({d.accountable_organisation for d in registry}) >= 5
    assert any(d.lat is None for d in registry) and any(d.lat is not None for d in registry)
    assert any(d.decommissioned for d in registry)
    assert any(len(d.policy_versions) > 1 for d in registry)
    years = {d.commissioned.year for d in registry}
    assert max(years) - min(years) >= 8
    # Many grants of one big access list share a purpose, as on the vendor portals.
    biggest = max(registry, key=lambda d: len(d.current_policy.access))
    purposes = [g.purpose for g in biggest.current_policy.access]
    assert len(purposes) > 50 and max(purposes.count(p) for p in set(purposes)) > len(purposes) // 2


def test_the_same_seed_writes_the_same_files(tmp_path: Path) -> None:
    write_registry(tmp_path / "a", 20, 400, seed=9)
    write_registry(tmp_path / "b", 20, 400, seed=9)
    write_registry(tmp_path / "c", 20, 400, seed=10)
    read = lambda d: {p.name: p.read_bytes() for p in sorted(d.iterdir())}  # noqa: E731
    assert read(tmp_path / "a") == read(tmp_path / "b") != read(tmp_path / "c")


@pytest.mark.parametrize("deployments,grants", [(0, 10), (10, 9), (2, 2 * MAX_GRANTS_PER_DEPLOYMENT + 1)])
def test_impossible_numbers_are_refused(tmp_path: Path, deployments: int, grants: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        write_registry(tmp_path, deployments, grants)


def test_the_command_writes_a_registry_and_refuses_bad_numbers(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["generate-registry", "--out", str(tmp_path / "r"), "--deployments", "3", "--grants", "7"])
    assert ok.exit_code == 0, ok.output
    assert len(list((tmp_path / "r").glob("*.yaml"))) == 3
    bad = runner.invoke(app, ["generate-registry", "--out", str(tmp_path / "s"), "--deployments", "3", "--grants", "2"])
    assert bad.exit_code == 2
    assert "at least the number of deployments" in bad.output
