"""``sensorlog generate`` over any range (issue 17, CLI care): a range too short for an anomaly plants
nothing for it and says so (the ground truth lists only what was planted), ``ground_truth.json`` is
never replaced without ``force``, and consecutive ranges land exactly the events of their union,
deletions and late reports across the boundary included."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipelines.config import resource_dir
from pipelines.dev import synthetic
from pipelines.errors import UsageError
from pipelines.registry import Registry, load_registry

pytestmark = pytest.mark.integration

REGISTRY = load_registry(str(resource_dir("registry")))
# Informational over the whole period, and a deletion whose window is before the log by design.
OUTSIDE_BY_DESIGN = {"indefinite_retention", "deleted_without_collection"}


def _small_registry() -> Registry:
    """A few deployments, among them ones whose records are deleted within a day (a deletion of the
    last day before a split lands after it) and ones with longer periods: the property runs fast."""
    def shortest(d) -> timedelta:
        rules = [d.current_policy.rule_for(c) for c in d.data_classes]
        spans = [timedelta(0) if r.kind == "none" else r.duration
                 for r in rules if r and r.kind in ("none", "duration")]
        return min(spans, default=timedelta(days=9999))

    chosen = sorted(REGISTRY, key=lambda d: (shortest(d), d.id))[:4] + [d for d in REGISTRY if d.kind == "alpr"][:1]
    return Registry({d.id: d for d in chosen})


SMALL = _small_registry()


def _landed(landing: Path) -> Counter:
    """Every landed event line, with the vendor folder and (for CSV) the header it is read under."""
    lines: Counter = Counter()
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        rows = path.read_bytes().splitlines()
        header = rows.pop(0) if path.suffix == ".csv" and rows else b""
        for row in rows:
            lines[(path.parent.name, header, row)] += 1
    return lines


def _truth(landing: Path) -> dict:
    return synthetic.load_ground_truth(str(landing))


def _options(start: date, end: date, cadence: str = "weekly", inject: bool = False) -> synthetic.GenerateOptions:
    return synthetic.options_for(start=start, end=end, cadence=cadence, inject=inject)


def _generate(root: Path, registry: Registry, *ranges: tuple[date, date], cadence: str = "weekly") -> Path:
    landing = root / "landing"
    for start, end in ranges:
        synthetic.write_city(registry, str(landing), _options(start, end, cadence))
    return landing


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    offset=st.integers(0, 120),
    days=st.integers(2, 9),
    cut=st.floats(0.01, 0.99),
    cadence=st.sampled_from(["daily", "weekly", "monthly"]),
)
@example(offset=0, days=4, cut=0.5, cadence="monthly")  # a split inside one monthly export
def test_consecutive_ranges_land_the_events_of_their_union(tmp_path_factory, offset, days, cut, cadence):
    start = date(2026, 7, 1) + timedelta(days=offset)
    end = start + timedelta(days=days)
    split = start + timedelta(days=min(days - 1, max(1, round(days * cut))))
    whole = _generate(tmp_path_factory.mktemp("whole"), SMALL, (start, end), cadence=cadence)
    parts = _generate(tmp_path_factory.mktemp("parts"), SMALL, (start, split), (split, end), cadence=cadence)
    assert _landed(parts) == _landed(whole)
    one, two = _truth(whole), _truth(parts)
    assert (two["start"], two["end"], two["events"]) == (one["start"], one["end"], one["events"])
    assert sum(_landed(whole).values()) == one["events"]


def test_a_deletion_due_after_the_split_is_landed_by_the_second_range(tmp_path):
    """The case the issue saw dropped: the first range ends before the deletion of its last day."""
    start, split, end = date(2026, 7, 1), date(2026, 7, 3), date(2026, 7, 5)
    first = _generate(tmp_path / "a", SMALL, (start, split))
    before = set(_landed(first))
    both = _generate(tmp_path / "a", SMALL, (split, end))  # the same landing: the second range continues it
    later = [json.loads(row) for (_, header, row) in set(_landed(both)) - before if not header]
    split_at = datetime.fromisoformat(f"{split}T00:00:00-04:00")  # local midnight, New York summer time
    crossing = [e for e in later if e["type"].endswith(".deletion")
                and datetime.fromisoformat(e["data"]["window_start"]) < split_at]
    assert crossing, "no deletion of a day before the split was landed after it"
    assert _landed(both) == _landed(_generate(tmp_path / "b", SMALL, (start, end)))


SHORT = [(date(2026, 11, 1), date(2026, 11, 2)), (date(2026, 7, 1), date(2026, 7, 3))]


@pytest.mark.parametrize(("start", "end"), SHORT)
def test_a_short_range_with_injections_plants_only_what_fits_and_says_so(tmp_path, start, end):
    landing = tmp_path / "landing"
    truth = synthetic.write_city(REGISTRY, str(landing), _options(start, end, "monthly", inject=True))
    assert truth.not_planted, "a one- or two-day range cannot hold a 12-day silence or a late deletion"
    assert all(entry["kind"] and entry["why"] for entry in truth.not_planted)
    begin, as_of = start.isoformat(), end.isoformat()
    for finding in truth.findings:
        if finding["kind"] not in OUTSIDE_BY_DESIGN:  # every planted finding lies in the range
            assert begin <= finding["period_start"][:10] < as_of, finding
    landed_ids = {json.loads(row)["id"] for (_, header, row) in _landed(landing) if not header and row.startswith(b"{")
                  and _parses(row)}
    for finding in truth.findings:
        for evidence in finding.get("evidence", []):
            assert evidence["id"] in landed_ids, finding
    assert _truth(landing)["not_planted"] == truth.not_planted


def _parses(row: bytes) -> bool:
    try:
        return isinstance(json.loads(row), dict) and "id" in json.loads(row)
    except ValueError:
        return False  # the planted broken lines


def test_ground_truth_is_never_replaced_without_force(tmp_path):
    landing = tmp_path / "landing"
    day = (date(2026, 7, 1), date(2026, 7, 2))
    synthetic.write_city(SMALL, str(landing), _options(*day))
    truth_file = tmp_path / synthetic.GROUND_TRUTH_NAME
    kept = truth_file.read_bytes()
    with pytest.raises(UsageError, match="--force") as refused:
        synthetic.write_city(SMALL, str(landing), _options(*day))
    assert str(truth_file) in str(refused.value)
    with pytest.raises(UsageError, match="--start 2026-07-02"):  # another seed cannot continue it either
        synthetic.write_city(SMALL, str(landing), synthetic.options_for(start=date(2026, 7, 2), end=date(2026, 7, 3),
                                                                          seed=8, inject=False))
    assert truth_file.read_bytes() == kept
    replaced = synthetic.write_city(SMALL, str(landing), _options(date(2026, 8, 1), date(2026, 8, 2)), force=True)
    assert json.loads(truth_file.read_text())["start"] == replaced.start == "2026-08-01"
