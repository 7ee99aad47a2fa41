"""The feed setting: which landing sub-folder is read by which configured feed, with its options.

One file, ``feeds.toml`` in the registry folder (``Settings.registry``; registry loading reads only
``*.yaml``/``*.yml`` and so ignores it), is the one place that says it::

    [[feeds]]
    prefix = "aot-chicago"          # a sub-folder of the landing zone, relative to its root
    feed = "node-lifecycle"         # a name in SETTING_FEEDS
    timezone = "America/Chicago"    # ... and the feed's own options
    [feeds.nodes]
    "001e0610ba46" = "aot-node-ba46"

A file whose path (relative to the landing root) lies under a configured prefix is read by that
prefix's feed and no other; every other file keeps the suffix-selected CloudEvents feeds. Prefixes
are plain relative folder paths (no empty, ``.`` or ``..`` segment, no backslash) and may not lie one
inside another, so a file is under at most one. No setting file means no configured feed.

The choice is by setting, never by content: sniffing a header would let one odd file change how
another vendor's rows are read. A malformed setting is a ``FeedSettingError`` (a usage error naming
the file, the entry and the option), raised before anything is staged.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipelines import storage
from pipelines.config import Settings
from pipelines.ingest import corrections
from pipelines.ingest.feeds.base import Feed, FeedSettingError

SETTING_FILE = "feeds.toml"
MAX_SETTING_BYTES = 16 * 1024 * 1024  # a node map of 100,000 ids is a few MB
MAX_PREFIX = 300


@dataclass(frozen=True)
class Route:
    prefix: str  # relative to the landing root, without slashes at either end
    feed: Feed


@dataclass(frozen=True)
class Selection:
    """The configured prefixes of one landing root (``routes``); empty when there is no setting."""

    landing: str = ""
    routes: tuple[Route, ...] = ()

    def route_for(self, uri: str) -> Route | None:
        """The route whose prefix holds ``uri``, or None (then the suffix feeds read it)."""
        if not self.routes:
            return None
        rel = relative_path(self.landing, uri)
        if rel is None:
            return None
        try:  # a correction is read by the feed of the path it replaces (``corrections/<id>/<path>``)
            rel = corrections.split(rel)[0]
        except corrections.CorrectionError:
            return None  # staging refuses the file, naming the path
        for route in self.routes:
            if rel.startswith(route.prefix + "/"):
                return route
        return None


def relative_path(landing: str, uri: str) -> str | None:
    """``uri``'s path below the landing root ``landing``, or None when it is not below it."""
    if storage.is_s3(landing) or storage.is_s3(uri):
        root = landing.rstrip("/") + "/"
        return uri[len(root) :] if uri.startswith(root) else None
    root, path = os.path.abspath(landing), os.path.abspath(uri)
    if not path.startswith(root + os.sep):
        return None
    return path[len(root) + 1 :].replace(os.sep, "/")


def setting_path(settings: Settings) -> Path:
    return Path(settings.registry) / SETTING_FILE


def load(settings: Settings) -> Selection:
    """The feed setting of ``settings`` (``<registry>/feeds.toml``), checked; no file: no routes."""
    path = setting_path(settings)
    if not path.is_file():
        return Selection(settings.landing)
    if path.stat().st_size > MAX_SETTING_BYTES:
        raise FeedSettingError(f"{path}: larger than {MAX_SETTING_BYTES} bytes")
    try:
        document = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise FeedSettingError(f"{path}: not valid TOML: {err}") from None
    return parse(document, settings.landing, str(path))


def parse(document: Mapping[str, object], landing: str, where: str) -> Selection:
    """The routes a decoded setting ``document`` gives (``where`` names it in messages)."""
    from pipelines.ingest.feeds import SETTING_FEEDS  # the package imports this module

    unknown = sorted(set(document) - {"feeds"})
    if unknown:
        raise FeedSettingError(f"{where}: unknown top-level key(s) {unknown}; expected [[feeds]] entries")
    entries = document.get("feeds", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise FeedSettingError(f"{where}: 'feeds' must be an array of tables ([[feeds]])")
    by_name = {feed.name: feed for feed in SETTING_FEEDS}
    routes: list[Route] = []
    for number, entry in enumerate(entries, start=1):
        here = f"{where}: [[feeds]] entry {number}"
        options = dict(entry)
        prefix = _prefix(options.pop("prefix", None), here)
        here = f"{where}: [[feeds]] prefix {prefix!r}"
        name = options.pop("feed", None)
        if name not in by_name:
            raise FeedSettingError(f"{here}: feed must be one of {sorted(by_name)}, not {name!r}")
        for other in routes:
            if (prefix + "/").startswith(other.prefix + "/") or (other.prefix + "/").startswith(prefix + "/"):
                raise FeedSettingError(f"{here}: overlaps prefix {other.prefix!r}; a file must be under one prefix")
        routes.append(Route(prefix, by_name[name].configure(options, here)))
    return Selection(landing, tuple(routes))


def _prefix(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip("/"):
        raise FeedSettingError(f"{where}: prefix must be a non-empty landing sub-folder, like \"vendor-portal\"")
    prefix = value.strip("/")
    segments = prefix.split("/")
    if len(prefix) > MAX_PREFIX or "\\" in prefix or any(s in ("", ".", "..") or s.startswith(".") for s in segments):
        raise FeedSettingError(
            f"{where}: prefix {value!r} must be a relative folder path of at most {MAX_PREFIX} characters, "
            "with no empty, '.', '..' or hidden segment and no backslash"
        )
    return prefix


class Options:
    """A setting entry's options, read one by one; ``done`` refuses any left unread (a typo)."""

    def __init__(self, options: Mapping[str, object], where: str):
        self.left, self.where = dict(options), where

    def _take(self, key: str, required: bool) -> object:
        if key not in self.left:
            if required:
                raise FeedSettingError(f"{self.where}: option {key!r} is required")
            return None
        return self.left.pop(key)

    def text(self, key: str, required: bool = True, max_length: int = 300) -> str | None:
        value = self._take(key, required)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > max_length:
            raise FeedSettingError(f"{self.where}: option {key!r} must be a non-empty string of at most "
                                   f"{max_length} characters")
        return value

    def zone(self, key: str = "timezone") -> ZoneInfo:
        name = self.text(key)
        try:
            return ZoneInfo(str(name))
        except (ZoneInfoNotFoundError, ValueError):
            raise FeedSettingError(f"{self.where}: option {key!r}: unknown time zone {name!r} "
                                   "(an IANA name such as \"America/Chicago\")") from None

    def mapping(self, key: str, required: bool = True, max_key: int = 200, max_value: int = 80) -> dict[str, str]:
        """A table of string keys to string values (node id → deployment id)."""
        value = self._take(key, required)
        if value is None:
            return {}
        if not isinstance(value, dict) or (required and not value):
            raise FeedSettingError(f"{self.where}: option {key!r} must be a non-empty table of names to ids")
        for name, target in value.items():
            if not name.strip() or len(name) > max_key:
                raise FeedSettingError(f"{self.where}: option {key!r}: key {name!r} must be 1-{max_key} characters")
            if not isinstance(target, str) or not target or len(target) > max_value:
                raise FeedSettingError(f"{self.where}: option {key!r}: {name!r} must map to an id of "
                                       f"1-{max_value} characters, not {target!r}")
        return dict(value)

    def done(self) -> None:
        if self.left:
            raise FeedSettingError(f"{self.where}: unknown option(s) {sorted(self.left)}")
