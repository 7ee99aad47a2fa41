"""sensorlog: published, verifiable transparency logs for city sensors.

How data flows, one line per stage (each a folder):

- ``registry/``: the city's deployments, declared in YAML and checked against ``schemas/``; the DTPR
  ``taxonomy``; ``declarations``, each deployment's record as the log holds it.
- ``ingest/``: phase one, a landed file → a staged batch (pure, parallel): ``landed`` (discover, read),
  ``feeds`` (one module per vendor format → canonical Arrow tables, with the per-event rules of
  ``parsing``), ``validate`` (GX suites from ``expectations/``, with ``plausibility`` and ``privacy``),
  ``stage``; ``notifications`` turns S3/SQS messages into files.
- ``publish/``: phase two, the one writer: de-duplicate, write Parquet, append to the log, write the manifest.
- ``log/``: sensorlog's transparency log: ``writer``, ``reader``, ``batch_index``, ``rowhash``, ``verify``,
  ``prove``, ``export`` (the static log a site carries) and ``witness``/``witnessing``.
- ``tlog/``: the spec library (RFC 9162 tree, C2SP tiles, checkpoints, proofs); imports nothing else.
- ``flow``: the ingest flow (discover → stage → publish) that the DAGs in ``dags/`` and ``sensorlog run`` call.
- ``audit/``: declared against observed retention and access, and the auditor's HTML report.
- ``portal/``: the open-data site built from the published logs and the registry.
- ``cli/``: the ``sensorlog`` command; every sub-command calls the function a DAG task calls.
- ``dev/``: not production code: the synthetic city, the demo, the Airflow runner.

Cross-cutting: ``config`` (the only reader of the environment), ``storage`` (local or S3), ``layout``
(every path under the home), ``schemas`` (the tables), ``errors``, ``summary``.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sensorlog")
except PackageNotFoundError:  # running from a tree that was never installed
    __version__ = "unknown"
