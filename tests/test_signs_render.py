"""A street sign rendered whole (rsvg-convert) still scans; a separate module because it starts a process."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import PROJECT_DIR
from pipelines.portal.i18n import Translator
from pipelines.portal.signs import A4, render_sign
from pipelines.registry import load_registry

pytestmark = pytest.mark.integration

ALPR = "alpr-harbor-boulevard"


def test_a_marked_sign_still_scans_to_the_url_it_was_given(tmp_path: Path) -> None:
    """The mark frames the QR code without covering it: the address is wrong, not unreadable, and the
    caller's URL (each language's own page) is what it encodes."""
    import shutil
    import subprocess

    zxingcpp = pytest.importorskip("zxingcpp")
    renderer = shutil.which("rsvg-convert")
    if renderer is None:
        pytest.skip("rsvg-convert (Debian librsvg2-bin) renders the full sign; not installed")
    from PIL import Image

    deployment = next(d for d in load_registry(PROJECT_DIR / "registry") if d.id == ALPR)
    url = "https://sensorlog.example/riverton/es/deployments/alpr-harbor-boulevard.html"
    svg = tmp_path / "sign.svg"
    svg.write_text(render_sign(deployment, url, A4, Translator("es"), "es", None, qr_configured=False),
                   encoding="utf-8")
    png = tmp_path / "sign.png"
    subprocess.run([renderer, "-w", "900", str(svg), "-o", str(png)], check=True, timeout=900)  # a hang's ceiling
    assert [r.text for r in zxingcpp.read_barcodes(Image.open(png))] == [url]


def test_a_build_with_the_default_base_url_warns_and_marks_every_sign(tmp_path: Path, monkeypatch) -> None:
    import shutil

    from pipelines.config import Settings
    from pipelines.portal import build_portal

    monkeypatch.delenv("SENSORLOG_PORTAL_BASE_URL", raising=False)
    registry = tmp_path / "registry"
    registry.mkdir()
    shutil.copy(PROJECT_DIR / "registry" / f"{ALPR}.yaml", registry)
    (tmp_path / "home").mkdir()
    settings = Settings.from_env({"SENSORLOG_HOME": str(tmp_path / "home"), "SENSORLOG_REGISTRY": str(registry)})

    result = build_portal(settings, str(tmp_path / "default"), languages=["en", "es"])
    [warning] = [w for w in result.warnings if w.startswith("QR address not configured")]
    assert f"https://{settings.log_origin}/" in warning and "SENSORLOG_PORTAL_BASE_URL" in warning
    for prefix in ("", "es/"):
        for paper in ("letter", "a4"):
            sign = (tmp_path / "default" / f"{prefix}signs/{ALPR}-{paper}.svg").read_text(encoding="utf-8")
            assert 'id="qr-not-configured"' in sign, (prefix, paper)
            # each language's sign names that language's page
            assert f"https://{settings.log_origin}/{prefix}deployments/{ALPR}.html" in sign

    configured = build_portal(settings, str(tmp_path / "configured"), base_url="https://data.city.example.org/",
                              languages=["en", "es"])
    assert not [w for w in configured.warnings if w.startswith("QR address not configured")]
    for prefix in ("", "es/"):
        sign = (tmp_path / "configured" / f"{prefix}signs/{ALPR}-letter.svg").read_text(encoding="utf-8")
        assert "qr-not-configured" not in sign
        assert f"https://data.city.example.org/{prefix}deployments/{ALPR}.html" in sign
