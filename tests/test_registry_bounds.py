"""Registry YAML is bounded before anything is built from it: an alias bomb, a recursive alias, deep
nesting or a huge file is one clear problem naming the file; ordinary anchors still work."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import PROJECT_DIR
from pipelines.registry import MAX_REGISTRY_FILE_BYTES, RegistryError, load_registry, validate_registry

pytestmark = pytest.mark.unit

SAMPLE = (PROJECT_DIR / "registry" / "cctv-city-hall-plaza.yaml").read_text()


def registry_with(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "registry"
    folder.mkdir(parents=True)
    (folder / "cctv-city-hall-plaza.yaml").write_text(text)
    return folder


def billion_laughs() -> str:
    """Ten levels of ten aliases each: 10^9 strings if expanded, referenced by a real field."""
    lines = ['laugh0: &laugh0 "lol"']
    for level in range(1, 10):
        lines.append(f"laugh{level}: &laugh{level} [{', '.join([f'*laugh{level - 1}'] * 10)}]")
    return "\n".join(lines) + "\n" + SAMPLE.replace("vendor: Avigard Systems", "vendor: *laugh9")


def test_a_billion_laughs_is_refused_with_a_problem_naming_the_file(tmp_path):
    folder = registry_with(tmp_path, billion_laughs())
    with pytest.raises(RegistryError) as raised:
        load_registry(folder)
    [problem] = raised.value.problems
    assert problem.file == str(folder / "cctv-city-hall-plaza.yaml")
    assert "aliases that expand the document past 100,000 nodes" in problem.expected


def test_a_recursive_alias_and_deep_nesting_are_refused(tmp_path):
    for n, text in enumerate(["loop: &me [1, *me]\n" + SAMPLE, "deep: " + "[" * 5000 + "]" * 5000 + "\n" + SAMPLE,
                              "deep: " + "{a: " * 100 + "1" + "}" * 100 + "\n" + SAMPLE]):
        [problem] = validate_registry(registry_with(tmp_path / str(n), text))
        assert problem.file.endswith("cctv-city-hall-plaza.yaml")
        assert ("refers to itself" if n == 0 else "nesting deeper than 64 levels") in problem.expected


def test_an_oversized_file_is_refused_unread(tmp_path):
    padding = "# " + "x" * 100 + "\n"
    text = SAMPLE + padding * (MAX_REGISTRY_FILE_BYTES // len(padding) + 1)
    [problem] = validate_registry(registry_with(tmp_path, text))
    assert problem.field == "(file)" and f"at most {MAX_REGISTRY_FILE_BYTES:,} bytes" in problem.expected


def test_ordinary_anchors_and_aliases_still_load(tmp_path):
    text = SAMPLE.replace(
        "  location: On-premises video management system, City Hall",
        "  location: &where On-premises video management system, City Hall",
    ).replace("  address: 100 Civic Center Plaza, Riverton", "  address: *where")
    assert text != SAMPLE
    deployment = load_registry(registry_with(tmp_path, text))["cctv-city-hall-plaza"]
    assert deployment.source_file.endswith("cctv-city-hall-plaza.yaml")
    assert validate_registry(PROJECT_DIR / "registry") == []  # the sample city is within every bound
