"""The compiled fast path (pipelines/registry/fastschema.py) never accepts what jsonschema refuses, and
agrees with it on every sample file and on every hostile change made to them here."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pipelines.registry import checks
from pipelines.registry.checks import fast_validator
from pipelines.registry.fastschema import UnsupportedSchema, compile_fast, draft07

pytestmark = pytest.mark.unit

PROJECT_DIR = Path(__file__).resolve().parents[1]
SAMPLES = sorted((PROJECT_DIR / "registry").glob("*.yaml"))

# What fastjsonschema refuses and jsonschema accepts: the fast path is stricter there, and jsonschema
# then judges (these documents are accepted, with jsonschema's time).
STRICTER = [
    ("pattern value ending in a newline", lambda d: d["purposes"].__setitem__(0, d["purposes"][0] + "\n")),
]


def _load(path: Path) -> dict[str, Any]:
    from pipelines.registry.load import _parse_yaml

    doc, problems = _parse_yaml(path.read_bytes(), str(path))
    assert not problems
    return doc


@pytest.fixture(scope="module")
def slow() -> Draft202012Validator:
    return checks._validator()


@pytest.fixture(scope="module")
def fast():
    accepts = fast_validator()
    assert accepts is not None, "the shipped schema has a draft-07 translation"
    return accepts


def _leaves(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _leaves(sub, (*path, key))
    elif isinstance(value, list):
        for i, sub in enumerate(value[:3]):  # the first few items of a long list are enough
            yield from _leaves(sub, (*path, i))


def _set(doc: Any, path: tuple, value: Any) -> None:
    for part in path[:-1]:
        doc = doc[part]
    doc[path[-1]] = value


def _delete(doc: Any, path: tuple) -> None:
    for part in path[:-1]:
        doc = doc[part]
    del doc[path[-1]]


# Values put in place of every field in turn: wrong types, empty and huge values, impossible dates.
REPLACEMENTS: list[Any] = [
    None, True, 0, -1, 1.5, 1e300, "", "x", "2024-02-30", "2024-13-01", "x" * 2000, [], [1, 1], {}, {"x": 1},
]


def _mutations(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in list(_leaves(doc))[1:]:
        for value in REPLACEMENTS:
            changed = copy.deepcopy(doc)
            _set(changed, path, value)
            yield f"{path}={value!r:.20}", changed
        if isinstance(path[-1], str):
            changed = copy.deepcopy(doc)
            _delete(changed, path)
            yield f"del {path}", changed
    for extra in ({"unknown_field": 1}, {"provenance": {"source": "x"}}, {"provenance": {"licence": "x"}}):
        yield f"add {extra}", {**copy.deepcopy(doc), **extra}


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_the_fast_path_accepts_every_sample(path: Path, fast, slow) -> None:
    doc = _load(path)
    assert slow.is_valid(doc)
    assert fast(doc)


@pytest.mark.parametrize("path", SAMPLES[::4], ids=[p.stem for p in SAMPLES[::4]])
def test_fast_and_jsonschema_agree_on_every_hostile_change(path: Path, fast, slow) -> None:
    disagree = []
    for label, doc in _mutations(_load(path)):
        before = copy.deepcopy(doc)
        fast_ok, slow_ok = fast(doc), slow.is_valid(doc)
        assert doc == before, "the fast path never changes the document (no defaults filled in)"
        if fast_ok != slow_ok:
            disagree.append((label, fast_ok, slow_ok))
    assert disagree == []


def test_fast_and_jsonschema_agree_on_hostile_relocations(fast, slow) -> None:
    doc = _load(SAMPLES[0])
    doc["lifecycle"]["relocations"] = [
        {"moved_on": "2030-01-01", "location": {"area": "Depot", "bbox": [1, 2, 3, 4], "mobility": "fixed"},
         "note": "road works"},
    ]
    assert fast(doc) and slow.is_valid(doc)
    disagree, checked = [], 0
    for label, changed in _mutations(doc):
        if "relocations" in label:
            checked += 1
            if fast(changed) != slow.is_valid(changed):
                disagree.append(label)
    assert checked > 100 and disagree == []


@pytest.mark.parametrize("label,change", STRICTER, ids=[s[0] for s in STRICTER])
def test_where_the_fast_path_is_stricter_jsonschema_judges(label: str, change, fast, slow) -> None:
    doc = _load(SAMPLES[0])
    change(doc)
    assert slow.is_valid(doc) and not fast(doc)
    assert checks._schema_problems(doc, "x.yaml") == []  # accepted, as before


def test_messages_for_a_refused_document_are_jsonschemas() -> None:
    doc = _load(SAMPLES[0])
    doc["lifecycle"]["commissioned"] = "2024-02-30"
    problems = checks._schema_problems(doc, "x.yaml")
    assert [p.field for p in problems] == ["lifecycle.commissioned"]
    assert "YYYY-MM-DD" in problems[0].expected


def test_the_translation_to_draft07() -> None:
    schema = {
        "$defs": {"n": {"type": "integer"}},
        "type": "object",
        "properties": {
            "box": {"type": "array", "prefixItems": [{"type": "number"}], "items": {"type": "string"}},
            "a": {"$ref": "#/$defs/n", "minimum": 3, "x-expected": "words"},
        },
        "dependentRequired": {"source": ["licence"]},
    }
    out = draft07(schema)
    assert out["properties"]["box"]["items"] == [{"type": "number"}]
    assert out["properties"]["box"]["additionalItems"] == {"type": "string"}
    assert out["properties"]["a"] == {"allOf": [{"$ref": "#/$defs/n"}, {"minimum": 3}]}
    assert out["dependencies"] == {"source": ["licence"]}
    accepts = compile_fast(schema)
    assert accepts is not None
    assert accepts({"a": 3, "box": [1.5, "x"], "source": "s", "licence": "l"})
    assert not accepts({"a": 2})  # the sibling of $ref applies, as in 2020-12
    assert not accepts({"source": "s"})
    assert not accepts({"box": ["x"]})


def test_an_unknown_keyword_disables_the_fast_path() -> None:
    with pytest.raises(UnsupportedSchema):
        draft07({"type": "object", "unevaluatedProperties": False})
    assert compile_fast({"type": "object", "unevaluatedProperties": False}) is None
    assert compile_fast({"$ref": "https://example.org/other.json"}) is None  # refused, never fetched
