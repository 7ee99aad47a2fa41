"""Printable street signs, one per deployment, as SVG for US Letter and A4.

What a passer-by needs, in plain words: who is responsible, why, what technology, what it collects,
how long it keeps it, and a QR code to the deployment's page (the one place the site uses the
absolute base URL: a printed code cannot be relative). The QR modules are drawn as rectangles from
segno's matrix, with the standard four-module quiet zone and error correction level Q (25 %), which
survives a weathered or partly covered sign.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import segno
from markupsafe import escape

from pipelines.portal.dtpr_card import data_class_label, render_retention_text
from pipelines.portal.i18n import Translator
from pipelines.registry import Deployment
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


def _sections(d: Deployment, t: Translator, lang: str) -> list[tuple[str, list[str]]]:
    taxonomy = load_taxonomy()
    names = lambda ids: ", ".join(taxonomy.element(i).name(lang) for i in ids)  # noqa: E731
    role = f" ({d.accountable_role})" if d.accountable_role else ""
    return [
        (t.text("sign_who"), [f"{d.accountable_organisation}{role}"]),
        (t.text("sign_why"), [names(d.purposes)]),
        (t.text("sign_tech"), [names(d.technologies)]),
        (t.text("sign_collects"), [", ".join(data_class_label(c) for c in d.data_classes)]),
        (t.text("sign_keeps"), _kept(d, lang)),
    ]


# A sign is read in the street: past this many retention rules (a deployment may declare any number of
# data classes) it shows the first ones and points to the page, which lists them all.
SIGN_RULES = 4


def _kept(d: Deployment, lang: str) -> list[str]:
    rules = d.current_policy.retention
    lines = [render_retention_text(r, lang) for r in rules[:SIGN_RULES]]
    if len(rules) > SIGN_RULES:
        more = len(rules) - SIGN_RULES
        lines.append(f"… and {more} more data class{'es' if more != 1 else ''}: see the web page.")
    return lines


def _text(x: float, y: float, size: float, text: str, weight: str = "normal", fill: str = "#1b1f24") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size:.1f}" font-weight="{weight}" fill="{fill}">'
            f"{escape(text)}</text>")


def _body(d: Deployment, t: Translator, lang: str, left: float, top: float, width: float, scale: float
          ) -> tuple[list[str], float]:
    """The sign's text lines from ``top``; returns the SVG parts and the y where they end."""
    parts: list[str] = []
    y = top
    title_size, label_size, text_size = 26 * scale, 13 * scale, 16 * scale
    for line in wrap(d.name, title_size, width, bold=True):
        y += title_size * 1.15
        parts.append(_text(left, y, title_size, line, "bold"))
    y += 8 * scale
    for label, values in _sections(d, t, lang):
        y += label_size * 1.6
        parts.append(_text(left, y, label_size, label.upper(), "bold", "#4a5560"))
        for value in values:
            for line in wrap(value, text_size, width):
                y += text_size * 1.3
                parts.append(_text(left, y, text_size, line))
    return parts, y


def render_sign(d: Deployment, url: str, paper: Paper, t: Translator, lang: str,
                log_key: tuple[str, str] | None = None) -> str:
    """``log_key`` = (key id, fingerprint) of the transparency log, printed beside the QR code so the
    key a resident checks against is anchored outside the website."""
    margin = 40
    width = paper.width - 2 * margin
    band = 84
    qr_size = 180
    footer_top = paper.height - margin - qr_size - 24
    scale = 1.4
    # Start large (a sign is read from a distance) and shrink until the text fits above the QR block.
    while True:
        parts, end = _body(d, t, lang, margin, band + 20, width, scale)
        if end <= footer_top or scale <= 0.6:
            break
        scale -= 0.05
    qr_x, qr_y = margin, paper.height - margin - qr_size
    text_x = qr_x + qr_size + 20
    text_w = paper.width - margin - text_x
    scan_lines = wrap(t.text("sign_scan"), 14, text_w, bold=True)
    scan = [_text(text_x, qr_y + 22 + 18 * i, 14, line, "bold") for i, line in enumerate(scan_lines)]
    y = qr_y + 22 + 18 * len(scan) + 6
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
        *scan,
        *link,
        _text(margin, paper.height - 16, 9, "DTPR (dtpr.io), CC BY 4.0", "normal", "#4a5560"),
        "</g></svg>\n",
    ])
