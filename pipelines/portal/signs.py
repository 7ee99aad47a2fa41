"""Printable street signs, one per deployment, as SVG for US Letter and A4.

What a passer-by needs, in plain words and with DTPR's own icons beside each category: who is
responsible, why, what technology, what it collects, who else may access it, how long it keeps it and
where it is stored, and a QR code to the deployment's page (the one place the site uses the absolute
base URL: a printed code cannot be relative, so a sign whose base address was never configured says so
in red). The QR modules are drawn as rectangles from
segno's matrix, with the standard four-module quiet zone and error correction level Q (25 %), which
survives a weathered or partly covered sign.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import segno
from babel.lists import format_list
from babel.units import format_unit
from markupsafe import escape

from pipelines.portal.dtpr_card import data_class_label, format_duration, render_retention_text
from pipelines.portal.i18n import Translator
from pipelines.portal.icons import sign_icon
from pipelines.registry import Deployment, RetentionRule, parse_iso_duration
from pipelines.registry.taxonomy import load_taxonomy

QUIET_ZONE = 4
# Average glyph widths of a sans-serif face, in ems, to wrap lines. Generous: the printer's fallback font
# (DejaVu Sans on many Linux systems) is wider than Helvetica, and an overflowing line is cut off.
CHAR_WIDTH = 0.56
BOLD_CHAR_WIDTH = 0.63
FONT = "Helvetica, Arial, 'Noto Sans', 'Noto Sans Khmer', sans-serif"


@dataclass(frozen=True)
class Paper:
    name: str
    width: float  # points
    height: float
    css_width: str
    css_height: str


LETTER = Paper("letter", 612, 792, "8.5in", "11in")
A4 = Paper("a4", 595.28, 841.89, "210mm", "297mm")
PAPERS = (LETTER, A4)


def sign_path(deployment_id: str, paper: Paper) -> str:
    return f"signs/{deployment_id}-{paper.name}.svg"


def wrap(text: str, size: float, width: float, bold: bool = False) -> list[str]:
    """Greedy word wrap for a font ``size`` within ``width`` points."""
    limit = max(int(width / (size * (BOLD_CHAR_WIDTH if bold else CHAR_WIDTH))), 8)
    lines: list[str] = []
    line = ""
    for word in text.split():
        candidate = f"{line} {word}".strip()
        if len(candidate) <= limit or not line:
            line = candidate
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def qr_matrix(url: str) -> list[list[bool]]:
    """The QR code for ``url`` as rows of dark (True) modules, quiet zone included."""
    return [list(row) for row in _qr_modules(url)]


@lru_cache(maxsize=8)
def _qr_modules(url: str) -> tuple[tuple[bool, ...], ...]:
    # Encoding (choosing the best of eight masks) is most of a sign's cost; both papers of a deployment's
    # sign carry the same URL, so it is encoded once.
    code = segno.make(url, error="q", micro=False, boost_error=False)
    return tuple(tuple(module == 0x1 for module in row) for row in code.matrix_iter(border=QUIET_ZONE))


def qr_svg(url: str, x: float, y: float, size: float) -> str:
    """A group of rectangles, one per horizontal run of dark modules."""
    matrix = qr_matrix(url)
    n = len(matrix)
    rects = []
    for row, modules in enumerate(matrix):
        col = 0
        while col < n:
            if not modules[col]:
                col += 1
                continue
            start = col
            while col < n and modules[col]:
                col += 1
            rects.append(f'<rect x="{start}" y="{row}" width="{col - start}" height="1"/>')
    scale = size / n
    return (
        f'<g id="qr" data-modules="{n}" transform="translate({x:.2f} {y:.2f}) scale({scale:.5f})" '
        f'shape-rendering="crispEdges"><rect width="{n}" height="{n}" fill="#ffffff"/>'
        f'<g fill="#000000">{"".join(rects)}</g></g>'
    )


@dataclass(frozen=True)
class _Section:
    """One block of the sign: a heading, the DTPR icons of its elements, and its lines of text."""

    label: str
    icons: tuple[str, ...]
    lines: tuple[str, ...]


# A sign is read in the street: past this many retention rules (a deployment may declare any number of
# data classes) or organisations with access it shows the first ones and points to the page, which lists
# them all.
SIGN_RULES = 4
SIGN_GRANTS = 5


def _names(ids: Iterable[str], lang: str) -> str:
    taxonomy = load_taxonomy()
    return ", ".join(taxonomy.element(i).name(lang) for i in ids)


def _sections(d: Deployment, t: Translator, lang: str) -> list[_Section]:
    role = f" ({d.accountable_role})" if d.accountable_role else ""
    classes = ", ".join(data_class_label(c) for c in d.data_classes)
    rules = d.current_policy.retention
    retained = tuple(dict.fromkeys(
        "retention__no_data_retained" if r.kind == "none" else "retention__data_retained" for r in rules))
    sections = [
        _Section(t.text("sign_who"), d.accountable_elements,
                 (f"{d.accountable_organisation}{role}", _names(d.accountable_elements, lang))),
        _Section(t.text("sign_why"), d.purposes, (_names(d.purposes, lang),)),
        _Section(t.text("sign_tech"), d.technologies, (_names(d.technologies, lang),)),
        _Section(t.text("sign_collects"), d.data_types, (_names(d.data_types, lang), classes)),
        _Section(t.text("sign_access"), d.access_elements, (_names(d.access_elements, lang), *_who_else(d, t))),
        # The retention sentences name the period themselves: DTPR's own element name is "Retained
        # {{duration}}", which they replace.
        _Section(t.text("sign_keeps"), retained, tuple(_kept(d, t, lang))),
        _Section(t.text("sign_storage"), d.storage_elements, (_names(d.storage_elements, lang), d.storage_location)),
    ]
    return [_Section(s.label, s.icons, tuple(line for line in s.lines if line)) for s in sections]


def _quoted(text: str | None) -> str:
    return f"'{text}'" if text else "-"


def _who_else(d: Deployment, t: Translator) -> list[str]:
    """Who, besides the accountable organisation, the policy in force lets access the data."""
    own = d.accountable_organisation.casefold()
    found: dict[str, None] = {}  # ordered and O(1) to test: a city's record may hold 100,000 grants
    for grant in d.current_policy.access:
        if grant.form == "named":
            if (grant.organisation or "").casefold() == own:
                continue
            text = grant.organisation or ""
        elif grant.form == "counted":
            text = t.text("sign_access_counted", count=f"{grant.count or 0:,}")
        else:
            text = t.text("sign_access_unstated", stated=_quoted(grant.stated))
        found[text] = None
    who = list(found)
    if not who:
        return [t.text("sign_access_none", organisation=d.accountable_organisation)]
    lines = ["; ".join(who[:SIGN_GRANTS])]
    if len(who) > SIGN_GRANTS:
        lines.append(t.text("sign_access_more", count=f"{len(who) - SIGN_GRANTS:,}"))
    return lines


def _duration(period: str, lang: str) -> str:
    """An ISO 8601 period in words. en/es/fr/pt: the pages' own words (``format_duration``); other
    languages: CLDR's unit names through Babel, where its data has them, else English."""
    if lang in ("en", "es", "fr", "pt"):
        return format_duration(period, lang)
    parts = []
    for unit, n in parse_iso_duration(period)._asdict().items():
        if not n:
            continue
        words = ""
        # CLDR's "short" names are whole words for km and tl, and its "long" ones are missing (km) or
        # wrongly pluralised ("1 mga linggo", tl) in the data Babel ships.
        for length in ("short", "long"):
            words = format_unit(n, f"duration-{unit[:-1]}", length=length, locale=lang)
            if "duration-" not in words:  # Babel returns the unit id where CLDR has no name
                break
        else:
            return format_duration(period, "en")
        parts.append(words)
    return format_list(parts, locale=lang) if parts else format_duration(period, "en")


def _kept_line(rule: RetentionRule, t: Translator, lang: str) -> str:
    if lang == "en":
        return render_retention_text(rule, "en")  # the pages' own English sentence
    what = data_class_label(rule.data_class)
    if rule.kind == "none":
        return t.text("sign_kept_none", what=what)
    if rule.kind == "indefinite":
        return t.text("sign_kept_indefinite", what=what)
    if rule.kind == "unknown":
        return t.text("sign_kept_unclear", what=what, stated=_quoted(rule.stated))
    key = {"window_end": "sign_kept_period", "window_start": "sign_kept_window", "case_closed": "sign_kept_case"}
    return t.text(key[rule.trigger], what=what, period=_duration(rule.period, lang))


def _kept(d: Deployment, t: Translator, lang: str) -> list[str]:
    rules = d.current_policy.retention
    lines = [_kept_line(r, t, lang) for r in rules[:SIGN_RULES]]
    if len(rules) > SIGN_RULES:
        more = len(rules) - SIGN_RULES
        lines.append(t.text("sign_kept_more_one") if more == 1 else t.text("sign_kept_more", count=more))
    return lines


def _text(x: float, y: float, size: float, text: str, weight: str = "normal", fill: str = "#1b1f24") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:.1f}" font-weight="{weight}" fill="{fill}">'
            f"{escape(text)}</text>")


# Icons stand in a column at the left of each section, this many to a row; the section's words wrap
# in the column to their right, so every section's text starts at the same x.
ICONS_PER_ROW = 3
# At most this many rows of icons per section (a record may list any number of elements): the names
# beside them list every element, so an icon left out loses no information.
ICON_ROWS = 2


def _icon_grid(ids: Iterable[str], x: float, y: float, size: float) -> tuple[list[str], float]:
    """The elements' DTPR icons from (x, y), ``ICONS_PER_ROW`` to a row; returns them and their height."""
    gap = size * 0.2
    out: list[str] = []
    for element_id in ids:
        if len(out) == ICONS_PER_ROW * ICON_ROWS:
            break
        row, col = divmod(len(out), ICONS_PER_ROW)
        placed = sign_icon(element_id, x + col * (size + gap), y + row * (size + gap), size)
        if placed is not None:
            out.append(placed)
    rows = -(-len(out) // ICONS_PER_ROW)
    return out, rows * (size + gap) - gap if rows else 0.0


def _body(d: Deployment, t: Translator, lang: str, left: float, top: float, width: float, scale: float,
          limit: float | None = None) -> tuple[list[str], float]:
    """The sign's text lines and icons from ``top``; returns the SVG parts and the y where they end.
    With ``limit``, whatever would end below it is left out and a last line points to the web page (a
    record may hold more than any paper does, even at the smallest type)."""
    placed: list[tuple[float, str]] = []  # (bottom, part)
    labels: set[int] = set()  # which of them are section headings
    y = top
    title_size, label_size, text_size, icon_size = 26 * scale, 13 * scale, 16 * scale, 28 * scale
    column = ICONS_PER_ROW * icon_size * 1.2 + 4 * scale
    text_x, text_w = left + column, width - column
    for line in wrap(d.name, title_size, width, bold=True):
        y += title_size * 1.15
        placed.append((y, _text(left, y, title_size, line, "bold")))
    y += 8 * scale
    for section in _sections(d, t, lang):
        y += label_size * 1.7
        labels.add(len(placed))
        placed.append((y, _text(left, y, label_size, section.label.upper(), "bold", "#4a5560")))
        row_top = y + label_size * 0.45
        icons, icons_h = _icon_grid(section.icons, left, row_top, icon_size)
        if icons:
            placed.append((row_top + icons_h, '<g class="sign-icons">' + "".join(icons) + "</g>"))
        ty = row_top
        for value in section.lines:
            for line in wrap(value, text_size, text_w):
                ty += text_size * 1.25
                placed.append((ty, _text(text_x, ty, text_size, line)))
        y = max(ty + text_size * 0.3, row_top + icons_h)
    if limit is None or y <= limit:
        return [part for _, part in placed], y
    room = limit - text_size * 1.5  # one line for the pointer to the page
    kept = [(i, bottom) for i, (bottom, _) in enumerate(placed) if bottom <= room]
    while kept and kept[-1][0] in labels:  # no heading without anything under it
        kept.pop()
    last = max((bottom for _, bottom in kept), default=top) + text_size * 1.4
    return [*(placed[i][1] for i, _ in kept), _text(left, last, text_size, t.text("sign_cut"), "bold")], last


def _not_configured(t: Translator, x: float, y: float, width: float) -> tuple[list[str], float]:
    """The visible mark of a sign whose QR code names the default address, not one configured: a red
    band across the sign under its heading. Returns the parts and the band's height."""
    size = 15
    text = f"{t.text('sign_qr_not_configured').upper()}. {t.text('sign_qr_not_configured_hint')}"
    lines = wrap(text, size, width - 16, bold=True)
    height = 8 + size * 1.25 * len(lines) + 6
    parts = [f'<g id="qr-not-configured" class="qr-not-configured">'
             f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" fill="#b00020"/>']
    ty = y + 4
    for line in lines:
        ty += size * 1.25
        parts.append(_text(x + 8, ty, size, line, "bold", "#ffffff"))
    parts.append("</g>")
    return parts, height


def render_sign(d: Deployment, url: str, paper: Paper, t: Translator, lang: str,
                log_key: tuple[str, str] | None = None, qr_configured: bool = True) -> str:
    """``url``: the page the QR code names (the caller picks the sign language's page).
    ``log_key`` = (key id, fingerprint) of the transparency log, printed beside the QR code so the
    key a resident checks against is anchored outside the website. ``qr_configured`` False (the base
    address is the default derived from the log origin, see ``defaults.qr_address_default``) puts a
    visible "QR address not configured" mark on the sign, so an unconfigured sign is not printed and
    posted by mistake."""
    margin = 40
    width = paper.width - 2 * margin
    band = 84
    qr_size = 180
    footer_top = paper.height - margin - qr_size - 24
    scale = 1.4
    mark: list[str] = []
    body_top: float = band + 20
    if not qr_configured:
        mark, mark_h = _not_configured(t, 0, band, paper.width)
        body_top += mark_h
    # Start large (a sign is read from a distance) and shrink until the text fits above the QR block.
    while True:
        parts, end = _body(d, t, lang, margin, body_top, width, scale)
        if end <= footer_top:
            break
        if scale <= 0.6:
            parts, end = _body(d, t, lang, margin, body_top, width, scale, limit=footer_top)
            break
        scale -= 0.05
    qr_x, qr_y = margin, paper.height - margin - qr_size
    text_x = qr_x + qr_size + 20
    text_w = paper.width - margin - text_x
    y = qr_y + 22
    if not qr_configured:
        mark.append(f'<rect x="{qr_x - 3}" y="{qr_y - 3}" width="{qr_size + 6}" height="{qr_size + 6}" fill="none" '
                    'stroke="#b00020" stroke-width="4" stroke-dasharray="10 6"/>')
    scan_lines = wrap(t.text("sign_scan"), 14, text_w, bold=True)
    scan = [_text(text_x, y + 18 * i, 14, line, "bold") for i, line in enumerate(scan_lines)]
    y = y + 18 * len(scan) + 6
    link = []
    for line in [url[i : i + int(text_w / (10 * 0.6))] for i in range(0, len(url), int(text_w / (10 * 0.6)))]:
        link.append(f'<text x="{text_x:.1f}" y="{y:.1f}" font-size="10" font-family="monospace" fill="#1b1f24">'
                    f"{escape(line)}</text>")
        y += 13
    contact = [v for k, v in d.feedback.items() if k in ("phone", "email")]
    if contact:
        y += 10
        for line in wrap(f"{t.text('sign_contact')}: {' · '.join(contact)}", 13, text_w, bold=True):
            link.append(_text(text_x, y, 13, line, "bold"))
            y += 17
    if log_key is not None:
        y += 8
        key_lines = [f"{t.text('sign_log_key')}: {log_key[0]}", log_key[1]]
        for text in key_lines:
            for line in [text[i : i + int(text_w / (9 * 0.6))] for i in range(0, len(text), int(text_w / (9 * 0.6)))]:
                link.append(f'<text class="log-key" x="{text_x:.1f}" y="{y:.1f}" font-size="9" font-family="monospace"'
                            f' fill="#1b1f24">{escape(line)}</text>')
                y += 12
    title = f"{t.text('sign_heading')}: {d.name}"
    return "".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" lang="{lang}" width="{paper.css_width}" '
        f'height="{paper.css_height}" viewBox="0 0 {paper.width} {paper.height}" role="img" '
        'aria-labelledby="sign-title sign-desc">',
        f'<title id="sign-title">{escape(title)}</title>',
        f'<desc id="sign-desc">{escape(t.text("sign_alt", url=url))}</desc>',
        f'<g font-family="{FONT}">',
        f'<rect width="{paper.width}" height="{paper.height}" fill="#ffffff"/>',
        f'<rect width="{paper.width}" height="{band}" fill="#1b1f24"/>',
        _text(margin, band / 2 + 12, 32, t.text("sign_heading"), "bold", "#ffffff"),
        *parts,
        f'<line x1="{margin}" x2="{paper.width - margin}" y1="{qr_y - 14}" y2="{qr_y - 14}" stroke="#1b1f24" '
        'stroke-width="2"/>',
        qr_svg(url, qr_x, qr_y, qr_size),
        *mark,
        *scan,
        *link,
        # The DTPR icons and names on the sign are CC BY 4.0 (pipelines/data/DTPR-ATTRIBUTION.md).
        _text(margin, paper.height - 16, 9, t.text("sign_attribution"), "normal", "#4a5560"),
        "</g></svg>\n",
    ])
