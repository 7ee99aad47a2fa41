"""sensorlog: published, verifiable transparency logs for city sensors.

How data flows, one line per stage (module or package):

- ``registry`` (+ ``taxonomy``): the city's deployments, declared in YAML and checked against ``schemas/``.
- ``ingest`` (+ ``landed``, ``strictjson``, ``limits``): a landed vendor file → canonical Arrow tables.
- ``validate`` (+ ``plausibility``, ``privacy``): GX suites from ``expectations/`` → valid and rejected rows.
- ``stage``: phase one of a batch, parse and validate a landed file into a staging folder (pure, parallel).
- ``publish``: phase two, de-duplicate, write Parquet, append to the log, write the manifest (one writer).
- ``ledger`` (+ ``declarations``, ``tlog/``): the transparency log (RFC 9162 tree, C2SP tiles and checkpoints).
- ``flow``: the ingest flow (discover → stage → publish) that the DAGs in ``dags/`` and ``sensorlog run`` call.
- ``verify``, ``prove`` (+ ``logsource``, ``prove_static``): independent checks and proofs over a published log.
- ``audit/``: declared against observed retention and access, and the auditor's HTML report (``audit.report``).
- ``portal/``: the open-data site built from the published logs and the registry.
- ``witness``, ``witnessing``: witnesses cosign the log's checkpoints.
- ``cli``: the ``sensorlog`` command; every sub-command calls the function a DAG task calls.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sensorlog")
except PackageNotFoundError:  # running from a tree that was never installed
    __version__ = "unknown"
