"""The site writer moved to ``pipelines.site`` (the log export writes through it too); this name stays
importable for the tests that use it."""

from pipelines.site import CONTENT_TYPES, NAMED_TYPES, Site, SiteFile, content_type, media_type

__all__ = ["CONTENT_TYPES", "NAMED_TYPES", "Site", "SiteFile", "content_type", "media_type"]
