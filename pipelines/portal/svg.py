"""Inline SVG for the pages: a locator map of deployments and a bar chart of records per day.

No tiles and no library: the map is a plain projection of the registry's coordinates, one panel per
group of nearby deployments (a registry can span cities far apart, and one panel would squeeze each
city into a dot), over a basemap of lines and polygons (``pipelines.portal.basemap``) when one covers
the panel. Each marker carries a number, and the numbered list under the panel names and links every
deployment: names written on the map itself would overlap in a city centre and shrink to nothing on a
phone. Everything is escaped markup built here, returned as ``Markup`` for the templates.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from markupsafe import Markup, escape

from pipelines.portal import basemap as basemaps

# Okabe-Ito colours (distinguishable with colour-blindness), darkened where needed so each has at
# least 3:1 contrast against white, as WCAG asks of graphics.
PALETTE = ("#0072B2", "#D55E00", "#007A5E", "#CC79A7", "#8A6D00", "#56638A", "#B2182B", "#4D4D4D")
CLUSTER_DEGREES = 0.5  # deployments closer than about 50 km share a map panel
MIN_SPAN_DEGREES = 0.01
# Beyond this many deployments a panel draws groups, not dots: a dot with its link and name is about 200
# bytes, so 10,000 of them would make the index weigh megabytes and the map one blot.
MAP_DOTS = 400
GRID_CELLS = 48  # groups are the cells of a grid this many cells wide
MARKER_R = 11  # map units; a panel is 640 wide, so about 6 px on a 390 px phone and 11 px on a desktop
LABEL_SIZE = 20  # the marker's number beside it: about 11 px on a phone


@dataclass(frozen=True)
class MapPoint:
    id: str
    name: str
    kind: str
    lat: float
    lon: float
    bbox: tuple[float, float, float, float] | None
    href: str
    mobile: bool = False


def kind_colours(kinds: list[str]) -> dict[str, str]:
    return {kind: PALETTE[i % len(PALETTE)] for i, kind in enumerate(sorted(set(kinds)))}


def clusters(points: list[MapPoint]) -> list[list[MapPoint]]:
    """Single-linkage groups of points within ``CLUSTER_DEGREES`` of each other, largest first.

    Points are binned into cells ``CLUSTER_DEGREES`` wide: two points of one cell are always near, so only
    cells are joined (with union-find), each pair of neighbouring cells by its first near pair. That is
    linear in the points for a city, where comparing every point with every group was quadratic."""
    cells: dict[tuple[int, int], list[MapPoint]] = {}
    for point in sorted(points, key=lambda p: p.id):
        key = (math.floor(point.lat / CLUSTER_DEGREES), math.floor(point.lon / CLUSTER_DEGREES))
        cells.setdefault(key, []).append(point)
    parent = {key: key for key in cells}

    def root(key: tuple[int, int]) -> tuple[int, int]:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for (row, col), members in cells.items():
        for other in ((row, col + 1), (row + 1, col - 1), (row + 1, col), (row + 1, col + 1)):
            if other in cells and root(other) != root((row, col)) and any(
                _near(a, b) for a in members for b in cells[other]
            ):
                parent[root(other)] = root((row, col))
    groups: dict[tuple[int, int], list[MapPoint]] = {}
    for key, members in cells.items():
        groups.setdefault(root(key), []).extend(members)
    return sorted((sorted(g, key=lambda p: p.id) for g in groups.values()), key=lambda g: (-len(g), g[0].id))


def _near(a: MapPoint, b: MapPoint) -> bool:
    return abs(a.lat - b.lat) <= CLUSTER_DEGREES and abs(a.lon - b.lon) <= CLUSTER_DEGREES


def place_label(group: list[MapPoint]) -> str:
    lat = sum(p.lat for p in group) / len(group)
    lon = sum(p.lon for p in group) / len(group)
    return f"{abs(lat):.2f}° {'N' if lat >= 0 else 'S'}, {abs(lon):.2f}° {'E' if lon >= 0 else 'W'}"


def _extent(group: list[MapPoint]) -> tuple[float, float, float, float]:
    lons = [p.lon for p in group] + [v for p in group if p.bbox for v in (p.bbox[0], p.bbox[2])]
    lats = [p.lat for p in group] + [v for p in group if p.bbox for v in (p.bbox[1], p.bbox[3])]
    min_lon, max_lon, min_lat, max_lat = min(lons), max(lons), min(lats), max(lats)
    pad_lon = max((max_lon - min_lon) * 0.08, MIN_SPAN_DEGREES)
    pad_lat = max((max_lat - min_lat) * 0.08, MIN_SPAN_DEGREES)
    return min_lon - pad_lon, min_lat - pad_lat, max_lon + pad_lon, max_lat + pad_lat


def numbered(group: list[MapPoint]) -> list[tuple[int, MapPoint]]:
    """The panel's markers and their numbers: by name, so the key under the map reads alphabetically."""
    return list(enumerate(sorted(group, key=lambda p: (p.name.casefold(), p.id)), 1))


def _lang(name: str) -> str:
    """The ``lang`` attribute of a registry name that says its language (``i18n.Localised``): a page in
    Khmer marks an untranslated English name as English."""
    lang = getattr(name, "lang", None)
    return f' lang="{escape(lang)}"' if lang else ""


def map_panel(group: list[MapPoint], colours: dict[str, str], title: str, width: int = 640,
              group_label: Callable[[int], str] | None = None,
              basemap: basemaps.Basemap | None = None) -> Markup:
    """One panel: the basemap, area boxes, then a linked, numbered dot per deployment with its name as a
    tooltip, followed by the key (the numbered list of names, linked); beyond MAP_DOTS deployments, one
    grey circle per grid cell sized by how many it holds (``group_label`` names the count in its
    tooltip), since no dot could be told apart or followed anyway."""
    extent = _extent(group)
    min_lon, min_lat, max_lon, max_lat = extent
    # Equirectangular, with longitude shrunk by cos(latitude) so distances look right locally.
    scale_x = math.cos(math.radians((min_lat + max_lat) / 2))
    span_x, span_y = (max_lon - min_lon) * scale_x, max_lat - min_lat
    height = max(160, min(520, round(width * span_y / span_x)))
    sx, sy = width / span_x, height / span_y
    unit = min(sx, sy)
    off_x, off_y = (width - span_x * unit) / 2, (height - span_y * unit) / 2

    def xy(lon: float, lat: float) -> tuple[float, float]:
        return off_x + (lon - min_lon) * scale_x * unit, off_y + (max_lat - lat) * unit

    parts = [
        f'<svg class="map" viewBox="0 0 {width} {height}" role="group" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<rect width="{width}" height="{height}" fill="#f4f6f8" stroke="#8a949e"/>',
    ]
    if basemap is not None:
        parts.extend(basemaps.svg(basemap, extent, xy, width, height))
    if len(group) > MAP_DOTS:
        parts.extend(_grid_groups(group, xy, width, group_label or (lambda n: f"{n:,}")))
        parts.append("</svg>")
        return Markup("".join(parts))
    for p in group:
        if p.bbox:
            x0, y0 = xy(p.bbox[0], p.bbox[3])
            x1, y1 = xy(p.bbox[2], p.bbox[1])
            colour = colours[p.kind]
            # A mobile deployment's box is where it roams (often the whole city): outline only, so it
            # does not shade every fixed area under it.
            fill = "none" if p.mobile else colour
            parts.append(
                f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{max(x1 - x0, 2):.1f}" height="{max(y1 - y0, 2):.1f}" '
                f'fill="{fill}" fill-opacity="0.15" stroke="{colour}" stroke-dasharray="4 3" aria-hidden="true"/>'
            )
    placed: list[tuple[float, float, float, float]] = []
    markers = numbered(group)
    for _n, p in markers:  # every dot first, so that no number is hidden under a later dot
        x, y = xy(p.lon, p.lat)
        placed.append((x - MARKER_R, y - MARKER_R, x + MARKER_R, y + MARKER_R))
    for n, p in markers:
        x, y = xy(p.lon, p.lat)
        lx, ly, anchor = _label_place(x, y, str(n), placed, width, height)
        parts.append(
            f'<a href="{escape(p.href)}"{_lang(p.name)} aria-label="{n}: {escape(p.name)}">'
            f'<title>{n}: {escape(p.name)}</title>'
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{MARKER_R}" fill="{colours[p.kind]}" stroke="#ffffff" '
            f'stroke-width="2.5"/>'
            f'<text class="marker-label" x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" font-size="{LABEL_SIZE}" '
            f'font-weight="700" fill="#1b1f24" stroke="#ffffff" stroke-width="4" paint-order="stroke">{n}</text></a>'
        )
    parts.append("</svg>")
    key = "".join(
        f'<li value="{n}"><a href="{escape(p.href)}"{_lang(p.name)}>{escape(p.name)}</a></li>' for n, p in markers
    )
    parts.append(f'<ol class="map-key" aria-label="{escape(title)}">{key}</ol>')
    return Markup("".join(parts))


def _label_place(x: float, y: float, text: str, placed: list[tuple[float, float, float, float]],
                 width: int, height: int) -> tuple[float, float, str]:
    """Where a marker's number goes: the first spot around the dot (right, left, above, below, then the
    diagonals, then twice as far) that overlaps no dot or number placed so far, and stays in the panel;
    when none is free, to the right. Greedy, so a dense centre stays readable, not optimal."""
    w, h = LABEL_SIZE * 0.62 * len(text) + 2, LABEL_SIZE * 0.9
    gap = MARKER_R + 3
    for reach in (1.0, 2.2):
        for dx, dy in ((1, 0), (-1, 0), (0, -1), (0, 1), (1, -1), (-1, -1), (1, 1), (-1, 1)):
            cx, cy = x + dx * (gap + w / 2) * reach, y + dy * (gap + h / 2) * reach
            box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
            if box[0] < 0 or box[1] < 0 or box[2] > width or box[3] > height:
                continue
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
                placed.append(box)
                return cx, cy + h * 0.35, "middle"
    box = (x + gap, y - h / 2, x + gap + w, y + h / 2)
    placed.append(box)
    return x + gap + w / 2, y + h * 0.35, "middle"


def _grid_groups(group: list[MapPoint], xy: Callable[[float, float], tuple[float, float]], width: int,
                 label: Callable[[int], str]) -> list[str]:
    cell = width / GRID_CELLS
    counts: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for p in group:
        x, y = xy(p.lon, p.lat)
        counts.setdefault((int(x // cell), int(y // cell)), []).append((x, y))
    largest = max(len(v) for v in counts.values())
    parts = []
    for _key, where in sorted(counts.items()):
        n = len(where)
        cx, cy = sum(x for x, _ in where) / n, sum(y for _, y in where) / n
        r = 2 + (cell * 0.9 - 2) * math.sqrt(n / largest)
        parts.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{r:.1f}" fill="#56638A" fill-opacity="0.7" '
                     f'stroke="#ffffff"><title>{escape(label(n))}</title></circle>')
    return parts


def legend(colours: dict[str, str], labels: dict[str, str]) -> Markup:
    items = "".join(
        f'<li><svg width="14" height="14" aria-hidden="true"><circle cx="7" cy="7" r="6" fill="{c}"/></svg> '
        f"{escape(labels.get(k, k))}</li>"
        for k, c in colours.items()
    )
    return Markup(f'<ul class="legend">{items}</ul>')


def _nice_max(value: int) -> int:
    if value <= 0:
        return 1
    magnitude = 10 ** int(math.floor(math.log10(value)))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if value <= step * magnitude:
            return int(step * magnitude)
    return 10 * magnitude


def bar_chart(days: list[date], series: dict[str, list[int]], colours: dict[str, str], title: str,
              description: str, labels: dict[str, str], bar_labels: list[str] | None = None) -> Markup:
    """Stacked bars of records per day (or week, month: ``bar_labels`` names each bar, default its ISO
    day) and data class; ``title``/``description`` name it for screen readers, which get the numbers
    from the table next to it."""
    names = bar_labels or [d.isoformat() for d in days]
    width, height, left, bottom, top = 720, 260, 64, 40, 12
    plot_w, plot_h = width - left - 12, height - bottom - top
    totals = [sum(v) for v in zip(*series.values(), strict=True)] if series else []
    peak = _nice_max(max(totals, default=0))
    bar_w = plot_w / max(len(days), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-title chart-desc" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="chart-title">{escape(title)}</title>'
        f'<desc id="chart-desc">{escape(description)}</desc>',
    ]
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(f'<line x1="{left}" x2="{width - 12}" y1="{y:.1f}" y2="{y:.1f}" stroke="#c8ced4"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" fill="#333">'
            f"{round(peak * frac):,}</text>"
        )
    for i in range(len(days)):
        base = 0
        for data_class, values in series.items():
            value = values[i]
            if not value:
                continue
            h = plot_h * value / peak
            y = top + plot_h * (1 - (base + value) / peak)
            parts.append(
                f'<rect x="{left + i * bar_w + 0.5:.1f}" y="{y:.1f}" width="{max(bar_w - 1, 0.5):.1f}" '
                f'height="{h:.1f}" fill="{colours[data_class]}"><title>{escape(names[i])}: '
                f"{escape(labels.get(data_class, data_class))} {value:,}</title></rect>"
            )
            base += value
    if days:
        for i, anchor in ((0, "start"), (len(days) - 1, "end")):
            x = left + (i + (0 if anchor == "start" else 1)) * bar_w
            parts.append(
                f'<text x="{x:.1f}" y="{height - 14}" text-anchor="{anchor}" font-size="12" fill="#333">'
                f"{escape(names[i])}</text>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))
