"""Resolving quarantined rows (``pipelines.resolutions``): fixed by a later batch or accepted as invalid,
checked against the quarantine; a correction resolves the rows of the batch it supersedes."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import land as land_file
from conftest import make_event, ndjson

from pipelines import flow, resolutions, storage
from pipelines.config import Settings
from pipelines.resolutions import ResolutionError

pytestmark = pytest.mark.integration


def land(settings: Settings, name: str, data: bytes) -> tuple[str, str]:
    """``conftest.land``, and the batch id the file's bytes give."""
    uri = land_file(settings, name, data)
    return uri, storage.sha256_of(uri)[0]


# Lines 2 and 3 name a deployment the registry does not have: quarantined.
EVENTS = [make_event("collection", 0), make_event("collection", 1, deployment_id="no-such-camera"),
          make_event("collection", 2, deployment_id="no-such-camera")]


def state(settings: Settings, batch: str) -> tuple[int, int]:
    (found,) = [b for b in resolutions.by_batch(settings) if b.batch_id == batch]
    return found.rows, found.resolved


def test_rows_are_resolved_one_by_one_and_checked_against_the_quarantine(device_home):
    _, bad = land(device_home, "cams/a.ndjson", ndjson(EVENTS))
    _, fix = land(device_home, "cams/b.ndjson", ndjson([make_event("collection", 9)]))
    flow.run(device_home, workers=1)
    assert sorted(resolutions.quarantined_lines(device_home, bad)) == [2, 3]
    assert state(device_home, bad) == (2, 0)

    resolutions.resolve(device_home, bad, "fixed", line=2, fixed_by=fix)
    assert state(device_home, bad) == (2, 1)
    resolutions.resolve(device_home, bad, "accepted_invalid", line=3, note="vendor test camera, never deployed")
    (entry,) = [b for b in resolutions.by_batch(device_home) if b.batch_id == bad]
    assert (entry.open, entry.outcomes) == (
        0, (f"line 2 fixed by {fix}", "line 3 accepted invalid: vendor test camera, never deployed")
    )

    with pytest.raises(ResolutionError, match="no quarantined row at line 1; its quarantined lines: 2, 3"):
        resolutions.resolve(device_home, bad, "accepted_invalid", line=1, note="x")
    with pytest.raises(ResolutionError, match="no published event batch"):
        resolutions.resolve(device_home, "0" * 64, "accepted_invalid", note="x")
    with pytest.raises(ResolutionError, match="has no quarantined row"):
        resolutions.resolve(device_home, fix, "accepted_invalid", note="x")
    with pytest.raises(ResolutionError, match="not another published batch"):
        resolutions.resolve(device_home, bad, "fixed", fixed_by="f" * 64)
    with pytest.raises(ResolutionError, match="says why"):
        resolutions.resolve(device_home, bad, "accepted_invalid")
    with pytest.raises(ResolutionError, match="one line"):
        resolutions.resolve(device_home, bad, "accepted_invalid", note="two\nlines")
    assert len(resolutions.stored(device_home)) == 2  # refused resolutions record nothing


def test_a_correction_resolves_the_quarantine_of_the_batch_it_supersedes(device_home):
    _, bad = land(device_home, "cams/a.ndjson", ndjson(EVENTS))
    flow.run(device_home, workers=1)
    _, fix = land(device_home, f"corrections/{bad}/cams/a.ndjson", ndjson(EVENTS[:1]))
    flow.run(device_home, workers=1)
    (entry,) = [b for b in resolutions.by_batch(device_home) if b.batch_id == bad]
    assert (entry.rows, entry.resolved, entry.outcomes) == (2, 2, (f"superseded by {fix}",))
    assert resolutions.stored(device_home) == []  # implied by the log, not recorded


def test_a_damaged_record_file_is_named_with_its_line(device_home):
    land(device_home, "cams/a.ndjson", ndjson(EVENTS))
    flow.run(device_home, workers=1)
    path = Path(resolutions.resolutions_file(device_home))
    path.write_text('{"batch_id": "x"}\n')
    with pytest.raises(resolutions.SensorlogError, match=r"resolutions.jsonl: line 1: not a resolution record"):
        resolutions.by_batch(device_home)


def test_the_data_quality_page_shows_corrections_and_resolutions(device_home, tmp_path):
    import json

    from pipelines.portal.quality import write_quality
    from pipelines.site import Site

    _, bad = land(device_home, "cams/a.ndjson", ndjson(EVENTS))
    _, other = land(device_home, "cams/b.ndjson", ndjson(EVENTS[1:]))
    flow.run(device_home, workers=1)
    _, fix = land(device_home, f"corrections/{bad}/cams/a.ndjson", ndjson(EVENTS[:1]))
    flow.run(device_home, workers=1)
    resolutions.resolve(device_home, other, "accepted_invalid", line=1, note="vendor test camera")
    site = tmp_path / "site"
    write_quality(Site(str(site)), device_home, "en")
    listed = {b["batch_id"]: b for b in json.loads((site / "quality" / "validation.json").read_text())["batches"]}
    assert listed[bad]["superseded_by"] == fix and listed[fix]["supersedes"] == [bad]
    assert (listed[bad]["quarantine_open"], listed[other]["quarantine_open"]) == (0, 1)
    assert listed[other]["quarantine_resolutions"] == ["line 1 accepted invalid: vendor test camera"]
    page = (site / "quality" / "index.html").read_text()
    assert f"by the correction {fix[:16]}" in page and "1 quarantined row(s) not resolved yet" in page
