"""DTPR icons (CC BY 4.0, portions Apache-2.0), inlined into pages and signs.

The SVG files in ``pipelines/data/dtpr-icons/`` are the upstream DTPR icons of the elements the shipped
taxonomy uses (see the README there and ``pipelines/data/DTPR-ATTRIBUTION.md``). Each file is named as
upstream names it; the taxonomy's ``icon`` field says which file stands for which element (three
elements reuse another's file, e.g. ``tech__piezoelectric_sensor`` -> ``inclinometer.svg``).

An icon is inlined rather than linked, so a page or a printed sign needs no other file. Inlining many
copies of many files into one document needs care, which is why each file is rebuilt from an
allow-list instead of pasted:

- only drawing elements and presentation attributes are kept: no script, no foreignObject, no event
  attribute, no href (the icons use none), no ``url()`` except to an id inside the same icon;
- ``<style>`` blocks are turned into attributes on the elements they select: in an HTML page an inline
  ``<style>`` is global, and two upstream files give the same class ``.st0`` different fills;
- ids (masks) are renamed with a suffix unique in this process, so the same icon twice on a page keeps
  its own mask; ids nothing refers to are dropped;
- ``<title>``/``<desc>`` are dropped and the icon is ``aria-hidden``: pages and signs always print the
  element's name beside it, so the icon is decorative and a screen reader should not read it twice.
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from markupsafe import Markup, escape

from pipelines.registry.taxonomy import load_taxonomy

ICON_DIR = Path(__file__).resolve().parent.parent / "data" / "dtpr-icons"

_SVG_NS = "http://www.w3.org/2000/svg"
# Drawing elements the icons are made of; anything else (script, style, image, use, foreignObject,
# text, animation) is dropped with its content.
_ELEMENTS = frozenset({
    "svg", "g", "path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "mask", "clipPath",
    "defs", "linearGradient", "radialGradient", "stop",
})
# Geometry and presentation attributes; href, on*, style and class are handled (or refused) apart.
_ATTRIBUTES = frozenset({
    "d", "x", "y", "width", "height", "rx", "ry", "cx", "cy", "r", "x1", "x2", "y1", "y2", "points",
    "fill", "fill-rule", "fill-opacity", "clip-rule", "stroke", "stroke-width", "stroke-linecap",
    "stroke-linejoin", "stroke-miterlimit", "stroke-opacity", "stroke-dasharray", "opacity", "transform",
    "mask", "clip-path", "mask-type", "maskUnits", "maskContentUnits", "clipPathUnits", "offset",
    "stop-color", "stop-opacity", "gradientUnits", "gradientTransform", "fx", "fy", "viewBox",
})
_LOCAL_URL = re.compile(r"^url\(#([A-Za-z0-9_.:-]+)\)$")
_UNSAFE_VALUE = re.compile(r"url\(|javascript:|expression\(|@import|[<>]", re.IGNORECASE)
_CSS_RULE = re.compile(r"\.([A-Za-z0-9_-]+)\s*\{([^}]*)\}")
_UID = "\x00uid\x00"  # placeholder replaced by the per-copy suffix; cannot occur in parsed XML text

_counter = itertools.count(1)


@dataclass(frozen=True)
class _Icon:
    view_box: str
    body: str  # sanitised inner markup, ids carrying _UID


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _declarations(css: str) -> dict[str, str]:
    out = {}
    for decl in css.split(";"):
        name, sep, value = decl.partition(":")
        if sep:
            out[name.strip()] = value.strip()
    return out


def _attr(value: str) -> str:
    return str(escape(value))


def _sanitise(text: str, source: str) -> _Icon:
    root = ET.fromstring(text)
    if _local(root.tag) != "svg":
        raise ValueError(f"{source}: the root element is not <svg>")
    classes: dict[str, dict[str, str]] = {}
    for el in root.iter():
        if _local(el.tag) == "style":
            for name, body in _CSS_RULE.findall(el.text or ""):
                classes.setdefault(name, {}).update(_declarations(body))
    # ids that something in the icon refers to (mask="url(#mask0)"); the rest are layer names from the
    # drawing program and are dropped.
    referenced = {m.group(1) for el in root.iter() for v in el.attrib.values() if (m := _LOCAL_URL.match(v))}

    def attributes(el: ET.Element) -> dict[str, str]:
        # CSS precedence: presentation attributes, then class rules, then the style attribute.
        merged = {_local(k): v for k, v in el.attrib.items() if _local(k) not in ("class", "style")}
        for cls in el.attrib.get("class", "").split():
            merged.update(classes.get(cls, {}))
        merged.update(_declarations(el.attrib.get("style", "")))
        out = {}
        for name, value in merged.items():
            if name == "id":
                if value in referenced:
                    out["id"] = f"dtpr-{value}-{_UID}"
                continue
            if name not in _ATTRIBUTES:
                continue  # href, xlink:href, on*, enable-background, xml:space, version ...
            m = _LOCAL_URL.match(value)
            if m:
                if m.group(1) in referenced:
                    out[name] = f"url(#dtpr-{m.group(1)}-{_UID})"
                continue
            if _UNSAFE_VALUE.search(value):
                continue
            out[name] = value
        return out

    def serialise(el: ET.Element) -> str:
        tag = _local(el.tag)
        if tag not in _ELEMENTS:
            return ""
        attrs = "".join(f' {k}="{_attr(v)}"' for k, v in attributes(el).items())
        inner = "".join(serialise(child) for child in el)
        return f"<{tag}{attrs}>{inner}</{tag}>" if inner else f"<{tag}{attrs}/>"

    view_box = root.attrib.get("viewBox", "0 0 36 36")
    if not re.fullmatch(r"[0-9.\s,-]+", view_box):
        raise ValueError(f"{source}: viewBox {view_box!r} is not numbers")
    body = "".join(serialise(child) for child in root)
    # The root's own presentation attributes (most files say fill="none" there, which their children
    # inherit) go on a group, since the outer <svg> is written by icon() and sign_icon().
    inherited = {k: v for k, v in attributes(root).items() if k not in ("x", "y", "width", "height", "viewBox")}
    if inherited:
        body = "<g" + "".join(f' {k}="{_attr(v)}"' for k, v in inherited.items()) + f">{body}</g>"
    return _Icon(view_box=view_box, body=body)


@cache
def _icon_files() -> dict[str, str]:
    """Element id -> shipped file name, for the elements whose upstream icon is shipped."""
    shipped = {p.name for p in ICON_DIR.glob("*.svg")}
    out = {}
    for element in load_taxonomy():
        name = element.icon.rsplit("/", 1)[-1]
        if name in shipped:
            out[element.id] = name
    return out


@cache
def _load(file_name: str) -> _Icon:
    path = ICON_DIR / file_name
    return _sanitise(path.read_text(encoding="utf-8"), str(path))


ICON_IDS: frozenset[str] = frozenset(_icon_files())


def _body(element_id: str) -> tuple[str, str] | None:
    name = _icon_files().get(element_id)
    if name is None:
        return None
    icon = _load(name)
    # A fresh suffix per copy: ids stay unique however often an icon is inlined into one document.
    return icon.view_box, icon.body.replace(_UID, str(next(_counter)))


def icon(element_id: str, size: int = 40) -> Markup | None:
    """The element's DTPR icon as an inline ``<svg>`` for an HTML page, or None when none is shipped."""
    found = _body(element_id)
    if found is None:
        return None
    view_box, body = found
    return Markup(
        f'<svg xmlns="{_SVG_NS}" class="dtpr-icon" width="{int(size)}" height="{int(size)}" '
        f'viewBox="{view_box}" aria-hidden="true" focusable="false" data-dtpr="{_attr(element_id)}">'
        f"{body}</svg>"
    )


def sign_icon(element_id: str, x: float, y: float, size: float) -> str | None:
    """The same icon as a nested ``<svg>`` placed at (x, y) in a sign's coordinates, or None."""
    found = _body(element_id)
    if found is None:
        return None
    view_box, body = found
    return (
        f'<svg class="dtpr-icon" x="{x:.1f}" y="{y:.1f}" width="{size:.1f}" height="{size:.1f}" '
        f'viewBox="{view_box}" aria-hidden="true" focusable="false" data-dtpr="{_attr(element_id)}">'
        f"{body}</svg>"
    )
