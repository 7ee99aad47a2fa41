"""S3 event notifications (delivered through SQS) → landed object URIs to process.

Messages are only pointers: the object in the landing bucket is the truth, and publishing is
idempotent by the SHA-256 of the object's bytes, so a message delivered twice, late, or never is
harmless — the sweep over the landing prefix picks up anything no manifest covers. Messages that
carry nothing to do (``s3:TestEvent``, other event types, keys outside the landing prefix or with an
unsupported suffix, objects deleted since, malformed JSON) are reported and acknowledged, never
raised, so one odd message cannot fail a DAG run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

from pipelines import storage
from pipelines.ingest.feeds import discovered_suffixes


@dataclass
class Notifications:
    uris: list[str] = field(default_factory=list)  # objects to process, de-duplicated, in arrival order
    ignored: list[str] = field(default_factory=list)  # one line per message or record set aside, with why


def _records(body: object) -> tuple[list[dict], str | None]:
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except json.JSONDecodeError as err:
            return [], f"not JSON ({err.msg} at column {err.colno})"
    if not isinstance(body, dict):
        return [], "not a JSON object"
    if body.get("Event") == "s3:TestEvent":
        return [], "s3:TestEvent (sent once when the notification is configured)"
    if "Message" in body and "Records" not in body:  # delivered through SNS: unwrap once
        return _records(body["Message"])
    records = body.get("Records")
    if not isinstance(records, list):
        return [], "no Records list"
    return [r for r in records if isinstance(r, dict)], None


def parse_messages(bodies: Iterable[object], landing: str, check_exists: bool = True) -> Notifications:
    """Landed-object URIs named by ``ObjectCreated`` records under the ``landing`` s3:// prefix."""
    out = Notifications()
    prefix = landing.rstrip("/") + "/"
    suffixes = discovered_suffixes()
    for n, body in enumerate(bodies):
        records, problem = _records(body)
        if problem:
            out.ignored.append(f"message {n}: {problem}")
        for record in records:
            name = str(record.get("eventName", ""))
            try:
                bucket = record["s3"]["bucket"]["name"]
                key = unquote_plus(record["s3"]["object"]["key"])  # S3 URL-encodes keys, spaces as '+'
            except (KeyError, TypeError):
                out.ignored.append(f"message {n}: record without s3.bucket.name / s3.object.key")
                continue
            uri = f"s3://{bucket}/{key}"
            if not name.startswith("ObjectCreated:"):
                out.ignored.append(f"{uri}: event {name or '(none)'} is not an object creation")
            elif not uri.startswith(prefix):
                out.ignored.append(f"{uri}: outside the landing prefix {prefix}")
            elif not key.lower().endswith(suffixes):
                out.ignored.append(f"{uri}: not a landing file type ({', '.join(suffixes)})")
            elif check_exists and not storage.exists(uri):
                out.ignored.append(f"{uri}: object no longer exists")
            elif uri not in out.uris:
                out.uris.append(uri)
    return out


def bodies_from_asset_events(events: Iterable[object]) -> list[object]:
    """SQS message bodies out of Airflow asset-event ``extra`` dicts (``payload.message_batch[].Body``).

    Takes plain dicts so that this module stays free of Airflow."""
    bodies: list[object] = []
    for extra in events:
        payload = (extra or {}).get("payload", {}) if isinstance(extra, dict) else {}
        for message in payload.get("message_batch", []) if isinstance(payload, dict) else []:
            if isinstance(message, dict) and "Body" in message:
                bodies.append(message["Body"])
    return bodies
