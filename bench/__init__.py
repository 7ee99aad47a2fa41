"""Benchmark of the whole sensorlog pipeline against a raw pyarrow baseline (issue 7).

``python -m bench.run`` (``make bench``) generates CloudEvents NDJSON for each size, measures every
step in its own process and writes ``bench/results/results.json`` and ``results.md``.
"""
