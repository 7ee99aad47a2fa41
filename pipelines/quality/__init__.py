"""Data quality as Great Expectations users run it.

- ``project``: the file-backed GX Data Context under ``<home>/quality/`` (``gx/great_expectations.yml``),
  generated from the suites in ``expectations/`` (which stay what validation runs): one pandas asset,
  Validation Definition and Checkpoint per event table; Validation Results stored per batch in
  ``<home>/quality/validations/``, Data Docs sites in ``<home>/quality/data_docs/`` (operator) and
  ``<home>/quality/public/data_docs/`` (row values removed, what the portal publishes).
- ``summary``: a file's validation summary (rows checked, failed per expectation), its WARNING log line,
  and the manifest's ``validation`` member.
- ``public``: what a published copy of a Validation Result may keep (no row values of text columns).
- ``docs``: building the Data Docs sites, once per publish or on demand (``sensorlog data-docs``).

See docs/data-quality.md.
"""
