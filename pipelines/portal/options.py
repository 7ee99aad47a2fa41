"""Portal settings: where the site will be served from, who publishes it, under which licence.

They are not in ``pipelines.config.Settings`` because only the portal needs them; like the rest of
the configuration they come from environment variables with embedded defaults
(``pipelines.config.PortalSettings`` reads them).

The base URL is the one place absolute URLs enter the site: data.json must give absolute download
URLs (harvesters fetch them from elsewhere) and a printed QR code must name a full address. Every
link between pages stays relative, so the folder can be moved or served under any prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlparse

from pipelines.config import PortalSettings, Settings
from pipelines.registry.taxonomy import SUPPORTED_LANGS

# Licences a city is likely to choose for its open data, by URL: (SPDX id, title).
KNOWN_LICENSES = {
    "https://creativecommons.org/publicdomain/zero/1.0/": ("CC0-1.0", "Creative Commons Zero v1.0 Universal"),
    "https://creativecommons.org/licenses/by/4.0/": ("CC-BY-4.0", "Creative Commons Attribution 4.0"),
    "https://opendatacommons.org/licenses/pddl/1-0/": ("ODC-PDDL-1.0", "Open Data Commons PDDL v1.0"),
    "https://opendatacommons.org/licenses/by/1-0/": ("ODC-By-1.0", "Open Data Commons Attribution v1.0"),
    "https://opendatacommons.org/licenses/odbl/1-0/": ("ODbL-1.0", "Open Data Commons ODbL v1.0"),
}
DTPR_LICENSE = ("CC-BY-4.0", "https://creativecommons.org/licenses/by/4.0/", "Creative Commons Attribution 4.0")

# Above this many rows a table's CSV extract is split into one file per month (see PortalSettings).
DEFAULT_CSV_MONTH_ROWS = PortalSettings.csv_month_rows


def normalise_base_url(url: str) -> str:
    """An absolute http(s) URL ending in ``/``; ValueError otherwise."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"the portal base URL must be an absolute http(s) URL, got {url!r}")
    return url if url.endswith("/") else url + "/"


@dataclass(frozen=True)
class PortalOptions:
    base_url: str
    lang: str
    publisher: str
    contact_name: str
    contact_email: str
    license_url: str
    csv_month_rows: int = DEFAULT_CSV_MONTH_ROWS
    # False when base_url is only the default derived from the log origin (neither --base-url nor
    # SENSORLOG_PORTAL_BASE_URL gave it): QR codes would then name an address nobody chose.
    base_url_configured: bool = True

    @property
    def license_id(self) -> str:
        return KNOWN_LICENSES.get(self.license_url, (self.license_url, ""))[0]

    @property
    def license_title(self) -> str:
        return KNOWN_LICENSES.get(self.license_url, ("", self.license_url))[1]

    def url(self, relative_path: str) -> str:
        """The absolute URL of a file of the site."""
        return self.base_url + relative_path.lstrip("/")

    @classmethod
    def from_env(
        cls,
        settings: Settings,
        lang: str = "en",
        base_url: str | None = None,
        env: Mapping[str, str] | None = None,
        csv_month_rows: int | None = None,
    ) -> PortalOptions:
        if lang not in SUPPORTED_LANGS:
            raise ValueError(f"--lang must be one of {', '.join(SUPPORTED_LANGS)}, got {lang!r}")
        portal = PortalSettings.from_env(env)
        # The log origin (``sensorlog.example/riverton``) names where the city serves its log, so
        # it is the natural default home of the portal too.
        default_base = f"https://{settings.log_origin}/"
        return cls(
            base_url=normalise_base_url(base_url or portal.base_url or default_base),
            lang=lang,
            publisher=portal.publisher,
            contact_name=portal.contact_name,
            contact_email=portal.contact_email.removeprefix("mailto:"),
            license_url=portal.license_url,
            csv_month_rows=csv_month_rows or portal.csv_month_rows,
            base_url_configured=bool(base_url or portal.base_url),
        )
