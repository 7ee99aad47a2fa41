"""Whether a registry is the sample city's (Riverton, shipped in ``registry/``).

The sample's settings (its publisher, contact, base URL and log origin) are the defaults that make
``make demo`` work with no configuration. For any other registry each of them still at its sample value
is a warning: the portal's (``pipelines.portal.defaults``) and the log's (``flow.sample_settings_warnings``).
A registry is recognised by what it holds, not where it lives: one whose deployment ids are all the
sample's (a copy of it, or part of it, as tests make) is the sample city.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from pipelines.config import resource_dir


@cache
def sample_ids() -> frozenset[str]:
    """The deployment ids of the sample registry (its files are named by id)."""
    return frozenset(p.stem for p in resource_dir("registry").glob("*.yaml"))


def is_sample_registry(ids: Iterable[str]) -> bool:
    ids = set(ids)
    return bool(ids) and ids <= sample_ids()
