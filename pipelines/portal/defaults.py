"""No silent defaults: a site built for someone else's registry with the sample city's settings says so.

Every portal setting has a default taken from the sample city, Riverton (``pipelines.config``: the
publisher and contact of ``PortalSettings``, the log origin ``DEMO_LOG_ORIGIN``, and the base URL that
follows from it). They make ``make demo`` work with no configuration; on a real city's site they would
put Riverton's name on the header and an address nobody serves into every QR code. So when the registry
is not the sample one, each setting still at its sample value becomes a warning (``sensorlog portal``
prints it) and a note at the top of every page, in the page's language.

The sample registry is recognised by what it holds (``pipelines.registry.sample``); the log's own
warning for its origin is ``flow.sample_settings_warnings``.

The QR codes of the printed signs are a case apart (``qr_address_default``): for any registry, the
sample's included, a base URL nobody configured is warned about and marked on every sign, because a
posted sign cannot be corrected like a page.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

from pipelines.config import DEMO_LOG_ORIGIN, PortalSettings
from pipelines.portal.i18n import Translator
from pipelines.portal.options import PortalOptions
from pipelines.registry.sample import is_sample_registry

# The sample's own domains: an address under one of them is never a real city's.
DEMO_HOSTS = (DEMO_LOG_ORIGIN.split("/", 1)[0], "riverton.example")


@dataclass(frozen=True)
class DemoDefault:
    """One setting still at the sample city's value: ``key`` names its sentence in the catalogs."""

    key: str
    value: str

    def text(self, lang: str = "en") -> str:
        return Translator(lang).text(self.key, value=self.value)


def _demo_host(url: str) -> bool:
    host = (urlparse(url).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in DEMO_HOSTS)


def demo_defaults(ids: Iterable[str], options: PortalOptions, log_origins: Iterable[str]) -> list[DemoDefault]:
    """The sample city's settings a site for the registry of ``ids`` still uses; none for the sample
    registry itself. ``log_origins``: the origin the log is configured with and the one its published
    checkpoint names (they differ when the variable changed after the log began)."""
    if is_sample_registry(ids):
        return []
    found = []
    if options.publisher == PortalSettings.publisher:
        found.append(DemoDefault("demo_publisher", options.publisher))
    if options.contact_email == PortalSettings.contact_email or options.contact_name == PortalSettings.contact_name:
        found.append(DemoDefault("demo_contact", f"{options.contact_name}, {options.contact_email}"))
    if _demo_host(options.base_url):
        found.append(DemoDefault("demo_base_url", options.base_url))
    for origin in dict.fromkeys(log_origins):
        if origin == DEMO_LOG_ORIGIN or _demo_host(f"https://{origin}"):
            found.append(DemoDefault("demo_origin", origin))
            break
    return found


def qr_address_default(options: PortalOptions) -> DemoDefault | None:
    """The QR codes' base address when it is only the default derived from the log origin (neither
    ``--base-url`` nor ``SENSORLOG_PORTAL_BASE_URL`` set it), else None. The caller warns with its
    ``text()`` and passes ``qr_configured=False`` to ``render_sign``, which marks each sign."""
    if options.base_url_configured:
        return None
    return DemoDefault("qr_not_configured", options.base_url)
