"""The map's background: lines and polygons from a small GeoJSON file, drawn as inline SVG, so the map
shows where without a single network request (no tiles, no tile server, no script).

By default the sample city's own outline, river, parks and major streets (``pipelines/data/basemap/
riverton.geojson``): Riverton is fictional, so the file is the project's own drawing, under the
project's licence (Apache-2.0), not a survey of any real place. An operator names their own file with
``SENSORLOG_PORTAL_BASEMAP=/path/to/city.geojson`` (``none`` for no basemap): Polygon and MultiPolygon
features are drawn as areas, LineString and MultiLineString as lines, points are ignored. A feature's
``properties.kind`` picks the style (``outline``, ``water``, ``park``, ``highway``, ``major``, ``street``,
``rail``); a top-level ``attribution`` member is printed in the map's corner (say whose data it is and
under which licence: OpenStreetMap extracts, for one, must name ODbL and its contributors).

A file that cannot be used (missing, not JSON, not GeoJSON, coordinates out of range, too big) gives a
warning naming the file and where in it, and the map is drawn without a basemap: the build goes on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import escape

from pipelines.config import PortalSettings
from pipelines.errors import SensorlogError

DEMO_BASEMAP = Path(__file__).resolve().parent.parent / "data" / "basemap" / "riverton.geojson"
NO_BASEMAP = "none"
MAX_BYTES = 20 * 1024 * 1024  # a city's outline and main streets are kilobytes; this is already a lot
MAX_POINTS = 50_000  # every point is drawn on the index: past this the page would weigh megabytes
# kind -> (fill, stroke, stroke width in map units); areas first, then lines, in this order.
STYLES: dict[str, tuple[str, str, float]] = {
    "outline": ("#eef1ea", "#9aa39a", 1.2),
    "park": ("#d9ead3", "none", 0.0),
    "area": ("#e6e9ec", "#b5bdc4", 0.8),
    "water": ("none", "#9cc3e4", 4.0),
    "rail": ("none", "#a7adb3", 1.2),
    "street": ("none", "#ffffff", 2.0),
    "major": ("none", "#ffffff", 3.5),
    "highway": ("none", "#f3d9a4", 4.5),
    "line": ("none", "#c3cad1", 1.5),
}
_AREA_KINDS = ("outline", "area", "park", "water")


class BasemapError(SensorlogError, ValueError):
    """A basemap file that cannot be drawn; the message names the file and where."""


@dataclass(frozen=True)
class Shape:
    kind: str  # a STYLES key
    area: bool  # a polygon (closed, filled) rather than a line
    name: str
    rings: tuple[tuple[tuple[float, float], ...], ...]  # (lon, lat) per point
    bbox: tuple[float, float, float, float]


@dataclass(frozen=True)
class Basemap:
    source: str  # the file it came from, for messages
    attribution: str
    shapes: tuple[Shape, ...]

    def within(self, extent: tuple[float, float, float, float]) -> list[Shape]:
        """Shapes that touch the extent (min lon, min lat, max lon, max lat); the SVG clips the rest."""
        x0, y0, x1, y1 = extent
        return [s for s in self.shapes if s.bbox[0] <= x1 and s.bbox[2] >= x0 and s.bbox[1] <= y1 and s.bbox[3] >= y0]


def _point(value: object, where: str) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) < 2:
        raise BasemapError(f"{where}: a position must be [longitude, latitude], got {str(value)[:60]}")
    lon, lat = value[0], value[1]
    if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (lon, lat)):
        raise BasemapError(f"{where}: longitude and latitude must be numbers, got {str(value)[:60]}")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise BasemapError(f"{where}: [{lon}, {lat}] is outside longitude -180..180, latitude -90..90")
    return float(lon), float(lat)


def _ring(value: object, where: str, minimum: int) -> tuple[tuple[float, float], ...]:
    if not isinstance(value, list) or len(value) < minimum:
        raise BasemapError(f"{where}: needs a list of at least {minimum} positions")
    return tuple(_point(p, f"{where}[{i}]") for i, p in enumerate(value))


Rings = tuple[tuple[tuple[float, float], ...], ...]


def _parts(geometry: Mapping[str, Any], where: str) -> Iterator[tuple[bool, Rings]]:
    """(is an area, rings) for each drawable part of a geometry; points yield nothing."""
    kind, coords = geometry.get("type"), geometry.get("coordinates")
    at = f"{where}.coordinates"
    if kind == "LineString":
        yield False, (_ring(coords, at, 2),)
    elif kind == "MultiLineString":
        if not isinstance(coords, list):
            raise BasemapError(f"{at}: must be a list of lines")
        for i, part in enumerate(coords):
            yield False, (_ring(part, f"{at}[{i}]", 2),)
    elif kind == "Polygon":
        if not isinstance(coords, list) or not coords:
            raise BasemapError(f"{at}: must be a list of rings")
        yield True, tuple(_ring(r, f"{at}[{i}]", 4) for i, r in enumerate(coords))
    elif kind == "MultiPolygon":
        if not isinstance(coords, list):
            raise BasemapError(f"{at}: must be a list of polygons")
        for i, polygon in enumerate(coords):
            if not isinstance(polygon, list) or not polygon:
                raise BasemapError(f"{at}[{i}]: must be a list of rings")
            yield True, tuple(_ring(r, f"{at}[{i}][{j}]", 4) for j, r in enumerate(polygon))
    elif kind == "GeometryCollection":
        members = geometry.get("geometries")
        if not isinstance(members, list):
            raise BasemapError(f"{where}.geometries: must be a list")
        for i, member in enumerate(members):
            if isinstance(member, dict):
                yield from _parts(member, f"{where}.geometries[{i}]")
    elif kind in ("Point", "MultiPoint"):
        return
    else:
        raise BasemapError(f"{where}.type: {str(kind)[:40]!r} is not a GeoJSON geometry type")


def parse(text: str | bytes, source: str) -> Basemap:
    """A basemap from GeoJSON text (a FeatureCollection, a Feature or a bare geometry); BasemapError
    naming ``source`` and the place in it otherwise."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BasemapError(f"{source}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except (UnicodeDecodeError, RecursionError) as exc:
        raise BasemapError(f"{source}: not readable as JSON ({type(exc).__name__})") from None
    if not isinstance(doc, dict):
        raise BasemapError(f"{source}: a GeoJSON object was expected, got a {type(doc).__name__}")
    if doc.get("type") == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise BasemapError(f"{source}: features must be a list")
    elif doc.get("type") == "Feature":
        features = [doc]
    else:
        features = [{"type": "Feature", "geometry": doc, "properties": {}}]
    shapes: list[Shape] = []
    points = 0
    for n, feature in enumerate(features):
        where = f"{source}: features[{n}]"
        if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict | None):
            raise BasemapError(f"{where}: not a GeoJSON Feature")
        geometry = feature.get("geometry")
        if geometry is None:
            continue  # a Feature without geometry is allowed and has nothing to draw
        given = feature.get("properties")
        props: dict[str, Any] = given if isinstance(given, dict) else {}
        name = str(props.get("name") or "")[:200]
        wanted = str(props.get("kind") or "")
        for area, rings in _parts(geometry, f"{where}.geometry"):
            points += sum(len(r) for r in rings)
            if points > MAX_POINTS:
                raise BasemapError(f"{source}: more than {MAX_POINTS:,} positions; simplify it (e.g. "
                                   f"`ogr2ogr -simplify`) to the outline and main streets")
            kind = wanted if wanted in STYLES else ("area" if area else "line")
            if area and kind not in _AREA_KINDS:
                kind = "area"
            lons = [p[0] for r in rings for p in r]
            lats = [p[1] for r in rings for p in r]
            shapes.append(Shape(kind, area, name, rings, (min(lons), min(lats), max(lons), max(lats))))
    attribution = doc.get("attribution")
    text_attribution = str(attribution)[:200] if isinstance(attribution, str) else f"Basemap: {Path(source).name}"
    order = list(STYLES)
    shapes.sort(key=lambda s: (not s.area, order.index(s.kind)))
    return Basemap(source, text_attribution, tuple(shapes))


def load(path: str | Path) -> Basemap:
    """Read and parse a basemap file; BasemapError naming the file when it cannot be used."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise BasemapError(f"{path}: {size:,} bytes, more than the {MAX_BYTES:,} a basemap may have")
        data = path.read_bytes()
    except OSError as exc:
        raise BasemapError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return parse(data, str(path))


SETTING = "SENSORLOG_PORTAL_BASEMAP"  # read by pipelines.config.PortalSettings; named here in messages


def configured(env: Mapping[str, str] | None = None) -> tuple[Basemap | None, list[str]]:
    """The basemap ``SENSORLOG_PORTAL_BASEMAP`` names (unset or empty: the sample city's; ``none``: no
    basemap) and the build warnings it gives: a file that cannot be used is named there, and the map is
    drawn without a basemap."""
    setting = PortalSettings.from_env(env).basemap.strip()
    if setting.lower() == NO_BASEMAP:
        return None, []
    try:
        return load(setting or DEMO_BASEMAP), []
    except BasemapError as exc:
        return None, [f"basemap not drawn ({SETTING} names a GeoJSON file, or 'none'): {exc}"]


def svg(basemap: Basemap, extent: tuple[float, float, float, float],
        xy: Callable[[float, float], tuple[float, float]], width: int, height: int) -> list[str]:
    """The basemap's SVG elements for one map panel: decorative (hidden from screen readers, which get
    the list of deployments instead), with the attribution in the bottom corner."""
    parts = ['<g class="basemap" aria-hidden="true">']
    for shape in basemap.within(extent):
        fill, stroke, stroke_width = STYLES[shape.kind]
        d = " ".join(
            "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in (xy(lon, lat) for lon, lat in ring))
            + (" Z" if shape.area else "")
            for ring in shape.rings
        )
        casing = ""
        if not shape.area and shape.kind in ("street", "major", "highway"):
            # a thin grey edge under the white street, so the street reads on a pale background
            casing = (f'<path d="{d}" fill="none" stroke="#b5bdc4" stroke-width="{stroke_width + 1.5}" '
                      f'stroke-linecap="round" stroke-linejoin="round"/>')
        title = f"<title>{escape(shape.name)}</title>" if shape.name else ""
        parts.append(
            f'{casing}<path d="{d}" fill="{fill}" fill-rule="evenodd" stroke="{stroke}" '
            f'stroke-width="{stroke_width}" stroke-linecap="round" stroke-linejoin="round">{title}</path>'
        )
    parts.append(
        f'<text x="{width - 6}" y="{height - 6}" text-anchor="end" font-size="11" fill="#4a5560">'
        f"{escape(basemap.attribution)}</text></g>"
    )
    return parts
