"""The index's map: a basemap drawn from GeoJSON with no network (the sample city's own, or an operator's
file), a bad basemap file named in a warning and the map drawn without it, numbered markers with a key
naming every deployment, and the audit report's findings filters and proof commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipelines.audit import report as audit_report
from pipelines.portal import basemap as basemaps
from pipelines.portal.svg import MapPoint, kind_colours, map_panel, numbered

pytestmark = pytest.mark.unit


def _points() -> list[MapPoint]:
    return [
        MapPoint("cam-a", "Alder Street camera", "cctv", 35.20, -80.80, None, "deployments/cam-a.html"),
        MapPoint("cam-b", "Birch Road camera", "cctv", 35.2001, -80.8001, None, "deployments/cam-b.html"),
        MapPoint("alpr-c", "Cedar plate reader", "alpr", 35.19, -80.79, None, "deployments/alpr-c.html"),
    ]


def _panel(base: basemaps.Basemap | None) -> str:
    points = _points()
    return str(map_panel(points, kind_colours([p.kind for p in points]), "3 deployments", basemap=base))


def test_the_sample_city_basemap_is_drawn_without_network():
    base, warnings = basemaps.configured({})
    assert warnings == [] and base is not None and base.source == str(basemaps.DEMO_BASEMAP)
    html = _panel(base)
    svg = html[:html.index("</svg>")]
    assert '<g class="basemap" aria-hidden="true">' in svg
    assert svg.count("<path ") >= 10  # outline, river, parks and streets
    assert "<title>Main Street</title>" in svg and "Apache-2.0" in svg
    assert not re.search(r"(href|src)=\"https?:", html)


def test_an_operator_basemap_is_drawn_and_none_draws_nothing(tmp_path: Path):
    own = tmp_path / "city.geojson"
    own.write_text(json.dumps({
        "type": "FeatureCollection", "attribution": "Our streets, CC0",
        "features": [
            {"type": "Feature", "properties": {"name": "Ring Road", "kind": "major"},
             "geometry": {"type": "LineString", "coordinates": [[-80.81, 35.19], [-80.78, 35.21]]}},
            {"type": "Feature", "properties": {}, "geometry": {"type": "MultiPolygon", "coordinates": [
                [[[-80.82, 35.18], [-80.77, 35.18], [-80.77, 35.22], [-80.82, 35.18]]]]}},
            {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [-80.8, 35.2]}},
            {"type": "Feature", "properties": {"name": "Far away"},
             "geometry": {"type": "LineString", "coordinates": [[10.0, 50.0], [10.1, 50.1]]}},
        ]}))
    base, warnings = basemaps.configured({basemaps.SETTING: str(own)})
    assert warnings == [] and base is not None
    svg = _panel(base)
    assert "<title>Ring Road</title>" in svg and "Our streets, CC0" in svg
    assert "Far away" not in svg  # outside the panel: not drawn
    assert basemaps.configured({basemaps.SETTING: "none"}) == (None, [])
    assert 'class="basemap"' not in _panel(None)


@pytest.mark.parametrize(("content", "expected"), [
    (b"{not json", "not JSON (line 1"),
    (b"[1, 2]", "a GeoJSON object was expected"),
    (json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[0, 0], [200, 95]]}}]}).encode(),
     "features[0].geometry.coordinates[1]: [200, 95] is outside"),
    (json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Blob", "coordinates": []}}]}).encode(),
     "'Blob' is not a GeoJSON geometry type"),
    (json.dumps({"type": "LineString", "coordinates": [["a", 1], [2, 3]]}).encode(), "must be numbers"),
])
def test_a_bad_basemap_is_a_warning_naming_the_file_and_the_map_goes_on(tmp_path: Path, content: bytes,
                                                                        expected: str):
    bad = tmp_path / "bad.geojson"
    bad.write_bytes(content)
    base, warnings = basemaps.configured({basemaps.SETTING: str(bad)})
    assert base is None and len(warnings) == 1
    assert str(bad) in warnings[0] and expected in warnings[0] and basemaps.SETTING in warnings[0]
    assert "<circle" in _panel(base)  # the map is drawn, without a basemap


def test_a_missing_or_huge_basemap_is_a_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    base, warnings = basemaps.configured({basemaps.SETTING: str(tmp_path / "nowhere.geojson")})
    assert base is None and "nowhere.geojson: cannot be read" in warnings[0]
    monkeypatch.setattr(basemaps, "MAX_POINTS", 3)
    many = tmp_path / "many.geojson"
    many.write_text(json.dumps({"type": "LineString", "coordinates": [[0, 0], [1, 1], [2, 2], [3, 3]]}))
    base, warnings = basemaps.configured({basemaps.SETTING: str(many)})
    assert base is None and "more than 3 positions" in warnings[0]


def test_markers_are_numbered_and_the_key_names_and_links_every_deployment():
    html = _panel(None)
    svg, key = html[:html.index("</svg>")], html[html.index("</svg>"):]
    for n, point in numbered(_points()):
        assert f'aria-label="{n}: {point.name}"' in svg
        assert re.search(rf'<text class="marker-label"[^>]*>{n}</text>', svg)
        assert f'<li value="{n}"><a href="{point.href}">{point.name}</a></li>' in key
    assert [p.name for _, p in numbered(_points())] == sorted(p.name for p in _points())
    # the two cameras 15 m apart get their numbers in different places
    spots = re.findall(r'<text class="marker-label" x="([\d.]+)" y="([\d.]+)"', svg)
    assert len(set(spots)) == len(spots) == 3


def test_report_numbers_are_words_and_evidence_has_its_proof_command():
    assert audit_report.number_text(["video", "audio"]) == "video, audio"
    assert "[" not in audit_report.number_text({"details": ["moved"], "events": 2})
    command = audit_report.prove_command("https://feeds.example/riverton/cam a", "col-1")
    assert command == "sensorlog prove --log log --data data --event 'https://feeds.example/riverton/cam a/col-1'"


def test_deployment_page_numbers_print_lists_as_words():
    from pipelines.portal.pages import _display

    assert _display(["video"]) == "video" and _display(["video", "audio"]) == "video, audio"
    assert "[" not in _display([{"day": "2026-07-01", "events": 2}])
