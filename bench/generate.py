"""A fast, vectorised generator of benchmark events for the sample registry.

The city: every (deployment, declared data class) pair of the registry has ``devices`` devices, each
reporting one ``collection`` event per hour under its own feed (``source``); each device of a pair
with a finite retention period reports one ``deletion`` per day (the day that fell due), and each
deployment sees a few ``access`` events per day by a declared party. With the sample registry and
175 devices per pair that is about 195,000 events a day, i.e. the "10,000 devices reporting hourly"
city of issue 7. One file per day (split at ``per_file`` events), events in order of emission time.

Anomalies are value-level only (negative counts, an unregistered deployment, exact duplicates), at
``anomaly_rate``: they exercise quarantine and de-duplication while every line stays readable by
the baseline's ``pyarrow.json`` reader with its fixed schema, so both sides read the same bytes.

Lines are built column-wise with pyarrow.compute, so 5M events take seconds, not minutes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.dev.synthetic import BYTES_PER_RECORD, source_of
from pipelines.registry import Registry, load_registry

START = date(2026, 4, 1)
DEVICES = 175
PER_FILE = 250_000
ANOMALY_RATE = 1e-4
GHOST = "unregistered-sensor"
ACCESS_PER_DEPLOYMENT_DAY = 30
KINDS = ("collection", "deletion", "access")
ANOMALIES = ("negative_records", "unregistered_deployment", "duplicates")


@dataclass
class _Pair:
    deployment: str
    data_class: str
    source: str
    storage: str
    period_s: int | None  # retention as seconds; None when nothing is deleted on a schedule


@dataclass
class Generated:
    files: list[str] = field(default_factory=list)
    events: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    anomalies: dict[str, int] = field(default_factory=dict)
    bytes: int = 0
    days: int = 0


def _pairs(registry: Registry, day: date) -> list[_Pair]:
    out = []
    for dep in registry:
        if not dep.is_active(day):
            continue
        for data_class in dep.data_classes:
            rule = dep.policy_at(day).rule_for(data_class)
            period = None
            if rule is not None and rule.kind == "duration":
                period = int(rule.duration.total_seconds())
            storage = f"{source_of(dep).split('//')[1].split('.')[1]}-cloud/us-east"
            out.append(_Pair(dep.id, data_class, source_of(dep), storage, period))
    return out


def _ts_strings(epoch_s: np.ndarray) -> pa.Array:
    """RFC 3339 UTC strings for epoch seconds, formatting each distinct instant once."""
    uniq, inverse = np.unique(epoch_s, return_inverse=True)
    text = [datetime.fromtimestamp(int(s), UTC).strftime("%Y-%m-%dT%H:%M:%SZ") for s in uniq]
    return pa.array(text, pa.string()).take(pa.array(inverse.astype(np.int64)))


def _lit(s: str) -> pa.Scalar:
    return pa.scalar(s, pa.string())


def _join(*parts) -> pa.Array:
    return pc.binary_join_element_wise(*[_lit(p) if isinstance(p, str) else p for p in parts], _lit(""))


def _envelope(kind: str, ids: pa.Array, sources: pa.Array, times: pa.Array) -> list:
    return [
        '{"specversion": "1.0", "id": "', ids, '", "source": "', sources,
        f'", "type": "org.sensorlog.{kind}", "time": "', times,
        '", "datacontenttype": "application/json", "data": {',
    ]


def _day_lines(
    day: date, pairs: list[_Pair], registry: Registry, rng: np.random.Generator, devices: int, anomaly_rate: float
) -> tuple[pa.Array, np.ndarray]:
    """All events of one day as NDJSON lines (each ending in a newline), sorted by emission time, and a
    code per line: ``KINDS`` index * 4 + ``ANOMALIES`` index + 1 (0 for none)."""
    midnight = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    stamp = f"{day:%Y%m%d}"
    deployments = sorted({p.deployment for p in pairs})
    dep_ids = pa.array([*deployments, GHOST], pa.string())
    dep_index = {d: i for i, d in enumerate(deployments)}
    pair_dep = np.array([dep_index[p.deployment] for p in pairs])
    classes = pa.array([p.data_class for p in pairs], pa.string())
    storage = pa.array([p.storage for p in pairs], pa.string())
    bytes_per = np.array([BYTES_PER_RECORD.get(p.data_class, 200) for p in pairs], np.int64)
    device_sources = pa.array(
        [f"{p.source}/device-{k:04d}" for p in pairs for k in range(devices)], pa.string()
    )
    lines, emitted, codes = [], [], []

    # collection: pair-major, device, hour
    n_pairs = len(pairs)
    pair = np.repeat(np.arange(n_pairs), devices * 24)
    device = np.tile(np.repeat(np.arange(devices), 24), n_pairs)
    hour = np.tile(np.arange(24), n_pairs * devices)
    n = len(pair)
    ws = midnight + hour * 3600
    we = ws + 3600
    sent = we + rng.integers(60, 600, n) // 60 * 60
    records = rng.poisson(20, n).astype(np.int64)
    dep = pair_dep[pair].copy()
    anomalous = np.flatnonzero(rng.random(n) < anomaly_rate)
    negative, ghost, dupes = anomalous[0::3], anomalous[1::3], anomalous[2::3]
    records[negative] = -1
    dep[ghost] = len(deployments)
    code = np.zeros(n, np.int64)
    code[negative], code[ghost] = 1, 2
    idx = pa.array(pair)
    ids = _join(f"col-{stamp}-", pc.cast(pa.array(np.arange(n)), pa.string()))
    col = _join(
        *_envelope("collection", ids, device_sources.take(pa.array(pair * devices + device)), _ts_strings(sent)),
        '"deployment_id": "', dep_ids.take(pa.array(dep)), '", "data_class": "', classes.take(idx),
        '", "window_start": "', _ts_strings(ws), '", "window_end": "', _ts_strings(we),
        '", "records": ', pc.cast(pa.array(records), pa.string()),
        ', "bytes": ', pc.cast(pa.array(np.maximum(records, 0) * bytes_per[pair]), pa.string()),
        ', "storage_location": "', storage.take(idx), '"}}\n',
    )
    lines.append(col)
    emitted.append(sent)
    codes.append(code)

    # deletion: one per device of each pair with a finite period, for the day that fell due
    finite = np.array([i for i, p in enumerate(pairs) if p.period_s], np.int64)
    if len(finite):
        pair = np.repeat(finite, devices)
        device = np.tile(np.arange(devices), len(finite))
        period = np.array([pairs[i].period_s for i in pair], np.int64)
        # the collected day whose window [d, d+1) is due today: d + 1 day + period lies in today
        day_start = (midnight - period - 86400) // 86400 * 86400
        deleted = day_start + 86400 + period + 900
        deleted = np.where(deleted < midnight, deleted + 86400 * ((midnight - deleted) // 86400 + 1), deleted)
        # Only data collected after commissioning can fall due (validation quarantines the rest as
        # implausible); a day's margin for the city's zone, whose midnight is after UTC's.
        commissioned = np.array([int(datetime.combine(registry[pairs[i].deployment].commissioned,
                                                      datetime.min.time(), UTC).timestamp()) + 86400
                                 for i in pair], np.int64)
        keep = day_start >= commissioned
        pair, device, period, day_start, deleted = (a[keep] for a in (pair, device, period, day_start, deleted))
    if len(finite) and len(pair):
        records = rng.poisson(24 * 20, len(pair)).astype(np.int64)
        m = len(pair)
        ids = _join(f"del-{stamp}-", pc.cast(pa.array(np.arange(m)), pa.string()))
        idx = pa.array(pair)
        lines.append(
            _join(
                *_envelope("deletion", ids, device_sources.take(pa.array(pair * devices + device)),
                           _ts_strings(deleted)),
                '"deployment_id": "', dep_ids.take(pa.array(pair_dep[pair])), '", "data_class": "', classes.take(idx),
                '", "window_start": "', _ts_strings(day_start), '", "window_end": "', _ts_strings(day_start + 86400),
                '", "records": ', pc.cast(pa.array(records), pa.string()),
                ', "deleted_at": "', _ts_strings(deleted), '", "method": "automatic_purge"}}\n',
            )
        )
        emitted.append(deleted)
        codes.append(np.full(m, 4, np.int64))

    # access: declared parties, office hours
    rows = []
    for d in deployments:
        dep_obj = registry[d]
        grants = [(g.organisation, r, g.purpose[:200]) for g in dep_obj.policy_at(day).access for r in g.roles]
        for _ in range(ACCESS_PER_DEPLOYMENT_DAY):
            org, role, purpose = grants[int(rng.integers(len(grants)))]
            rows.append((dep_index[d], dep_obj.data_classes[0], org, role, purpose, source_of(dep_obj)))
    if rows:
        m = len(rows)
        at = midnight + 8 * 3600 + rng.integers(0, 10 * 60, m) * 60
        ids = _join(f"acc-{stamp}-", pc.cast(pa.array(np.arange(m)), pa.string()))
        case = _join("RIV-2026-", pc.cast(pa.array(rng.integers(10000, 99999, m)), pa.string()))
        lines.append(
            _join(
                *_envelope("access", ids, pa.array([r[5] for r in rows], pa.string()), _ts_strings(at)),
                '"deployment_id": "', dep_ids.take(pa.array([r[0] for r in rows])),
                '", "data_class": "', pa.array([r[1] for r in rows], pa.string()),
                '", "accessed_at": "', _ts_strings(at),
                '", "organisation": ', pa.array([json.dumps(r[2]) for r in rows], pa.string()),
                ', "role": "', pa.array([r[3] for r in rows], pa.string()),
                '", "purpose": ', pa.array([json.dumps(r[4]) for r in rows], pa.string()),
                ', "case_ref": "', case, '", "records": ', pc.cast(pa.array(rng.poisson(12, m) + 1), pa.string()),
                "}}\n",
            )
        )
        emitted.append(at)
        codes.append(np.full(m, 8, np.int64))

    all_lines = pa.concat_arrays(lines)
    order = np.argsort(np.concatenate(emitted), kind="stable")
    all_lines = all_lines.take(pa.array(order))
    all_codes = np.concatenate(codes)[order]
    if len(dupes):
        all_lines = pa.concat_arrays([all_lines, col.take(pa.array(dupes))])
        all_codes = np.concatenate([all_codes, np.full(len(dupes), 3, np.int64)])
    return all_lines, all_codes


def _write(path: Path, lines: pa.Array) -> int:
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    _, offsets, data = lines.buffers()
    off = np.frombuffer(offsets, np.int32, len(lines) + 1, lines.offset * 4)
    blob = memoryview(data)[off[0]: off[-1]]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(blob)
    return len(blob)


def write_events(
    landing: str | Path,
    n: int,
    registry_dir: str | Path,
    seed: int = 7,
    start: date = START,
    devices: int = DEVICES,
    per_file: int = PER_FILE,
    anomaly_rate: float = ANOMALY_RATE,
) -> Generated:
    """Write ``n`` events (duplicates included) as NDJSON files under ``landing``."""
    landing = Path(landing)
    registry = load_registry(str(registry_dir))
    rng = np.random.default_rng(seed)
    out = Generated(by_kind=dict.fromkeys(KINDS, 0), anomalies=dict.fromkeys(ANOMALIES, 0))
    day = start
    while out.events < n:
        lines, codes = _day_lines(day, _pairs(registry, day), registry, rng, devices, anomaly_rate)
        take = min(len(lines), n - out.events)
        lines, codes = lines.slice(0, take), codes[:take]
        for i, kind in enumerate(KINDS):
            out.by_kind[kind] += int(np.count_nonzero(codes // 4 == i))
        for i, what in enumerate(ANOMALIES):
            out.anomalies[what] += int(np.count_nonzero(codes % 4 == i + 1))
        for part, begin in enumerate(range(0, take, per_file)):
            path = landing / f"vendor-exports/{day:%Y-%m-%d}/part-{part:02d}.ndjson"
            out.bytes += _write(path, lines.slice(begin, per_file))
            out.files.append(str(path))
        out.events += take
        out.days += 1
        day += timedelta(days=1)
    return out
