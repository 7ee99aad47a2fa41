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
