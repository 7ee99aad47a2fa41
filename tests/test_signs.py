"""Street signs: DTPR icons beside each category, who else may access and where it is stored, the sign's
language throughout (no doubled Spanish words), and a visible mark when the QR address is only the default."""

from __future__ import annotations

import dataclasses
import html
import re
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import pytest

from pipelines.config import PROJECT_DIR, Settings
from pipelines.portal.defaults import qr_address_default
from pipelines.portal.i18n import SHIPPED_LANGS, Translator
from pipelines.portal.icons import ICON_IDS
from pipelines.portal.options import PortalOptions
from pipelines.portal.signs import A4, LETTER, PAPERS, SIGN_GRANTS, render_sign
from pipelines.registry import AccessGrant, Deployment, load_registry
from pipelines.registry.taxonomy import load_taxonomy

pytestmark = pytest.mark.unit

SVG = "{http://www.w3.org/2000/svg}"
URL = "https://data.city.example.org/sensors/deployments/x.html"
ALPR = "alpr-harbor-boulevard"


@pytest.fixture(scope="module")
def registry() -> dict[str, Deployment]:
    return {d.id: d for d in load_registry(PROJECT_DIR / "registry")}


def _sign(d: Deployment, lang: str = "en", paper=LETTER, **kwargs) -> str:
    return render_sign(d, URL, paper, Translator(lang), lang, ("k1", "SHA256:abc"), **kwargs)


def _words(svg: str) -> str:
    """The sign's text, lines joined (lines wrap anywhere between words)."""
    return " ".join(html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", svg))


def _icons(svg: str) -> list[str]:
    root = ET.fromstring(svg)
    return [el.get("data-dtpr") or "" for el in root.iter(f"{SVG}svg") if "dtpr-icon" in (el.get("class") or "")]


def test_the_sign_shows_each_categorys_dtpr_icons(registry) -> None:
    d = registry[ALPR]
    for paper in PAPERS:
        svg = _sign(d, paper=paper)
        shown = _icons(svg)
        expected = [*d.accountable_elements, *d.purposes, *d.technologies, *d.data_types, *d.access_elements,
                    "retention__data_retained", *d.storage_elements]
        assert shown == [e for e in expected if e in ICON_IDS]
        assert len(shown) >= 8
        # the name of every element whose icon is shown is printed too (the icon is decorative)
        words = _words(svg)
        for element_id in shown:
            if element_id != "retention__data_retained":  # its name is the retention sentence itself
                assert load_taxonomy().element(element_id).name("en") in words, element_id
        # ids stay unique in the one document however many icons it inlines
        ids = [el.get("id") for el in ET.fromstring(svg).iter() if el.get("id")]
        assert len(ids) == len(set(ids))
        assert "<script" not in svg and "href=" not in svg


def test_every_sample_deployment_has_icons_on_its_sign(registry) -> None:
    for d in registry.values():
        assert _icons(_sign(d)), d.id


def test_the_sign_says_who_else_may_access_and_where_it_is_stored(registry) -> None:
    d = registry[ALPR]
    words = _words(_sign(d))
    assert "WHO ELSE MAY ACCESS IT" in words and "WHERE IT IS STORED" in words
    others = {g.organisation for g in d.current_policy.access if g.form == "named"} - {d.accountable_organisation}
    assert others, "the sample ALPR names organisations besides its own"
    for organisation in others:
        assert organisation in words
    assert d.storage_location in words
    for element_id in d.storage_elements + d.access_elements:
        assert load_taxonomy().element(element_id).name("en") in words
    # how long, in words
    assert "Plate reads are kept for 30 days" in words


def test_who_else_is_bounded_and_says_so_when_nobody_else_is_declared(registry) -> None:
    d = registry[ALPR]

    def granting(access: tuple[AccessGrant, ...]) -> Deployment:
        policy = dataclasses.replace(d.current_policy, access=access)
        return dataclasses.replace(d, policy_versions=(*d.policy_versions[:-1], policy))

    many = tuple(AccessGrant(f"Agency {i:02d}", ("investigator",), "investigations") for i in range(SIGN_GRANTS + 7))
    words = _words(_sign(granting(many)))
    assert "Agency 00" in words and f"Agency {SIGN_GRANTS - 1:02d}" in words
    assert f"Agency {SIGN_GRANTS:02d}" not in words
    assert "… and 7 more: see the web page." in words
    own = (AccessGrant(d.accountable_organisation, ("analyst",), "operations"),)
    assert f"No one outside {d.accountable_organisation} is declared." in _words(_sign(granting(own)))
    counted = (AccessGrant(None, (), None, count=988), AccessGrant(None, (), None, stated="NA"))
    vague = granting(counted)
    assert "988 organisations, not named; Access not stated clearly: 'NA'" in _words(_sign(vague, "en"))
    assert "988 organizaciones sin nombre" in _words(_sign(vague, "es"))


def _doubled(text: str) -> list[str]:
    """Words repeated back to back ("Seguridad Seguridad"); punctuation between them ("video, Video")
    is a separate token. Words are runs between spaces and punctuation (Khmer writes no spaces inside
    a phrase, and its combining marks are not \\w)."""
    tokens = re.findall(r"[^\s,.;:()·/&'-]+|[,.;:()·/&'-]", text.lower())
    return [a for a, b in zip(tokens, tokens[1:], strict=False) if a == b and a.isalpha()]


def test_the_spanish_signs_have_no_doubled_word(registry) -> None:
    seen = Counter[str]()
    for d in registry.values():
        words = _words(_sign(d, "es"))
        assert not _doubled(words), (d.id, _doubled(words))
        seen.update(w for w in ("Seguridad y protección", "Cámara de video") if w in words)
    # the two names residents saw doubled or unaccented are on the sample city's signs, corrected
    assert seen["Seguridad y protección"] and seen["Cámara de video"]
    assert "Seguridad Seguridad" not in words and "Camara de video" not in words


def test_no_taxonomy_name_doubles_a_word() -> None:
    for element in load_taxonomy():
        for lang in SHIPPED_LANGS:
            assert not _doubled(element.name(lang)), (element.id, lang, element.name(lang))
    assert load_taxonomy().element("tech__video_camera").name("es") == "Cámara de video"
    assert load_taxonomy().element("purpose__safety_security").name("es") == "Seguridad y protección"


@pytest.mark.parametrize("lang", SHIPPED_LANGS)
def test_a_sign_is_in_its_own_language(registry, lang: str) -> None:
    t = Translator(lang)
    words = _words(_sign(registry[ALPR], lang, paper=A4))
    for key in ("sign_heading", "sign_access", "sign_storage", "sign_keeps"):
        assert t.text(key).upper() in words or t.text(key) in words, key
    assert "{" not in words and "}" not in words  # every placeholder filled
    assert t.text("sign_attribution") in words and "CC BY 4.0" in words  # the icons' licence, on paper too
    if lang != "en":
        assert "kept for" not in words and "WHO ELSE" not in words
    assert ET.fromstring(_sign(registry[ALPR], lang)).get("lang") == lang


def test_the_not_configured_mark_shows_only_when_the_qr_address_is_the_default(registry) -> None:
    d = registry[ALPR]
    for lang in ("en", "es"):
        marked = _sign(d, lang, qr_configured=False)
        root = ET.fromstring(marked)
        assert root.find(f".//{SVG}g[@id='qr-not-configured']") is not None
        assert Translator(lang).text("sign_qr_not_configured").upper() in _words(marked)
        plain = _sign(d, lang, qr_configured=True)
        assert "qr-not-configured" not in plain
        assert Translator(lang).text("sign_qr_not_configured").upper() not in _words(plain)
        # the QR code itself is still drawn either way
        assert root.find(f".//{SVG}g[@id='qr']") is not None


def test_the_default_base_url_is_not_configured(tmp_path: Path) -> None:
    settings = Settings.from_env({"SENSORLOG_HOME": str(tmp_path / "home")})
    default = PortalOptions.from_env(settings, env={})
    assert default.base_url == f"https://{settings.log_origin}/" and not default.base_url_configured
    note = qr_address_default(default)
    assert note is not None and default.base_url in note.text() and "SENSORLOG_PORTAL_BASE_URL" in note.text()
    assert default.base_url in note.text("es") and "antes de imprimirlos" in note.text("es")
    given = PortalOptions.from_env(settings, base_url="https://data.city.example.org/sensors", env={})
    assert given.base_url_configured and qr_address_default(given) is None
    from_env = PortalOptions.from_env(settings, env={"SENSORLOG_PORTAL_BASE_URL": "https://data.city.example.org/"})
    assert from_env.base_url_configured and qr_address_default(from_env) is None



@pytest.mark.parametrize(("lang", "days"), [("es", "30 días"), ("fr", "30 jours"), ("pt", "30 dias"),
                                            ("km", "30 ថ្ងៃ"), ("tl", "30 araw")])
def test_how_long_is_in_the_signs_language(registry, lang: str, days: str) -> None:
    words = _words(_sign(registry[ALPR], lang))
    assert days in words and "30 days" not in words


def test_a_record_with_many_elements_keeps_its_icons_to_two_rows(registry) -> None:
    d = registry[ALPR]
    many = tuple(sorted(e.id for e in load_taxonomy() if e.category == "tech"))
    crowded = dataclasses.replace(d, technologies=many)
    shown = _icons(_sign(crowded))
    assert [i for i in shown if i.startswith("tech__")] == list(many[:6])
    words = _words(_sign(crowded))
    assert load_taxonomy().element(many[-1]).name("en") in words  # the names still list them all


def test_a_record_too_big_for_the_paper_is_cut_above_the_qr_code(registry) -> None:
    d = registry[ALPR]
    taxonomy = load_taxonomy()
    huge = dataclasses.replace(d, name="A deployment with a very long name " * 6,
                               technologies=tuple(e.id for e in taxonomy if e.category == "tech"),
                               purposes=tuple(e.id for e in taxonomy if e.category == "purpose"))
    for lang in ("en", "es"):
        for paper in PAPERS:
            svg = _sign(huge, lang, paper=paper)
            rule = ET.fromstring(svg).find(f".//{SVG}line")
            assert rule is not None
            line_y = float(rule.get("y1") or 0)
            qr_x = 40 + 180  # the QR block's left margin and width: the scan text starts right of it
            body = [el for el in ET.fromstring(svg).iter(f"{SVG}text")
                    if float(el.get("x") or 0) < qr_x and float(el.get("y") or 0) < paper.height - 30]
            assert body and max(float(el.get("y") or 0) for el in body) < line_y, (lang, paper.name)
            assert Translator(lang).text("sign_cut") in _words(svg)
