"""DTPR icons: the shipped set covers the shipped taxonomy, inlines safely, and carries its attribution."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from markupsafe import Markup

from pipelines.portal import icons
from pipelines.registry.taxonomy import DATA_FILE, load_taxonomy

SVG = "{http://www.w3.org/2000/svg}"
DATA = DATA_FILE.parent

pytestmark = pytest.mark.unit


def test_every_taxonomy_element_with_an_icon_is_shipped() -> None:
    taxonomy = load_taxonomy()
    named = {e.id for e in taxonomy if e.icon}
    # Every element of the shipped subset names an upstream icon, and each of those files ships.
    assert named == {e.id for e in taxonomy}
    assert icons.ICON_IDS == frozenset(named)
    shipped = {p.name for p in (DATA / "dtpr-icons").glob("*.svg")}
    wanted = {e.icon.rsplit("/", 1)[-1] for e in taxonomy}
    # exactly the icons the taxonomy uses, no more
    assert shipped == wanted


def _check_inline(markup: str) -> ET.Element:
    root = ET.fromstring(markup)
    assert root.tag == f"{SVG}svg"
    icon = root if root.get("class") else root[0]
    assert icon.get("aria-hidden") == "true" and icon.get("focusable") == "false"
    assert "dtpr-icon" in (icon.get("class") or "").split()
    for el in root.iter():
        tag = el.tag.rsplit("}", 1)[-1]
        assert tag not in ("script", "style", "foreignObject", "image", "use", "title", "desc"), tag
        for name, value in el.attrib.items():
            assert "href" not in name, (name, value)
            assert not name.startswith("on"), name
            assert "http" not in value or name == "xmlns", (name, value)
            if "url(" in value:
                assert re.fullmatch(r"url\(#[A-Za-z0-9_.:-]+\)", value), value
    return root


@pytest.mark.parametrize("element_id", sorted(icons.ICON_IDS))
def test_icon_is_safe_inline_svg(element_id: str) -> None:
    markup = icons.icon(element_id, size=32)
    assert isinstance(markup, Markup)
    root = _check_inline(str(markup))
    assert root.get("width") == "32" and root.get("height") == "32"
    assert "<script" not in markup.lower()
    # every url(#id) points at an id inside this same copy
    ids = {el.get("id") for el in root.iter() if el.get("id")}
    for el in root.iter():
        for value in el.attrib.values():
            m = re.fullmatch(r"url\(#(.+)\)", value)
            if m:
                assert m.group(1) in ids


def test_ids_are_unique_across_copies_on_one_page() -> None:
    masked = [i for i in sorted(icons.ICON_IDS) if 'id="' in str(icons.icon(i))]
    assert masked, "some upstream icons use masks; the test needs one"
    page = "".join(str(icons.icon(i)) for i in masked * 3)
    found = re.findall(r' id="([^"]+)"', page)
    assert len(found) == len(set(found))


def test_style_classes_do_not_leak() -> None:
    # Upstream files give `.st0` different fills; inlined, a <style> would apply page-wide.
    for element_id in sorted(icons.ICON_IDS):
        markup = str(icons.icon(element_id))
        assert "<style" not in markup and 'class="st' not in markup


def test_sign_icon_is_positioned_svg() -> None:
    out = icons.sign_icon("tech__video_camera", 10, 20.5, 30)
    assert out is not None
    # nested in a sign, it takes the sign's namespace
    root = _check_inline(f'<svg xmlns="http://www.w3.org/2000/svg">{out}</svg>')[0]
    assert (root.get("x"), root.get("y"), root.get("width")) == ("10.0", "20.5", "30.0")


def test_unknown_element_has_no_icon() -> None:
    assert icons.icon("tech__no_such_thing") is None
    assert icons.sign_icon("tech__no_such_thing", 0, 0, 10) is None


def test_sanitiser_refuses_what_the_upstream_files_do_not_need() -> None:
    hostile = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 36 36"'
        ' onload="alert(1)"><script>alert(2)</script><style>.a{fill:red}</style>'
        '<image href="http://evil.example/x.png"/><use xlink:href="http://evil.example/s.svg#a"/>'
        '<path class="a" d="M0 0" fill="url(http://evil.example/p)" onclick="x()"/>'
        '<g mask="url(#m)"><mask id="m"><rect width="1" height="1"/></mask></g>'
        '<foreignObject><div>hi</div></foreignObject></svg>'
    )
    clean = icons._sanitise(hostile, "hostile.svg")
    body = clean.body
    for bad in ("script", "alert", "onload", "onclick", "evil", "image", "use", "foreignObject", "<style"):
        assert bad not in body, bad
    assert 'fill="red"' in body  # the class rule became an attribute
    assert 'mask="url(#dtpr-m-' in body


def test_attribution_ships_beside_the_icons() -> None:
    readme = (DATA / "dtpr-icons" / "README.md").read_text(encoding="utf-8")
    attribution = (DATA / "DTPR-ATTRIBUTION.md").read_text(encoding="utf-8")
    for text in (readme, attribution):
        assert "CC BY 4.0" in text
        assert "Apache License 2.0" in text
        assert "Material Symbols" in text
        assert "Helpful-Places/dtpr" in text
    assert "## DTPR icons" in attribution
    # the taxonomy attribution that was there before is kept
    assert "dtpr_device_taxonomy.json" in attribution and "## Changes made" in attribution


def test_icons_are_package_data() -> None:
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    block = pyproject.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert '"data/**/*"' in block
