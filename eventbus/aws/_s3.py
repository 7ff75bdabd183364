"""S3 event notification records <-> :class:`~eventbus.ObjectCreated` / :class:`~eventbus.ObjectRemoved`."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote_plus, unquote_plus

from ..sources.objects import ObjectCreated, ObjectRemoved
from ._common import (
    RenderOptions,
    as_int,
    b64encode,
    digest,
    fail,
    format_iso,
    join,
    now_utc,
    opt_str,
    parse_iso,
    rebuild_arn,
    req_obj,
    req_str,
    source_arn,
)

__all__ = ["notification_id", "parse_record", "render_record"]

_CREATED = "ObjectCreated"
_REMOVED = "ObjectRemoved"


def notification_id(
    name: str,
    bucket: str,
    key: str,
    version_id: str | None,
    sequencer: str | None,
    time: datetime,
) -> str:
    """The id of an S3 notification, derived from what identifies it.

    S3 records carry no per-record id (``x-amz-request-id`` is shared by every
    object of a multi-object delete), so the id is a digest of the event name,
    bucket, key, version, sequencer and time: a redelivered duplicate gets
    the same id, and rendering then reading back gives the same id again.
    """
    return digest("s3", name, bucket, key, version_id or "", sequencer or "", format_iso(time))


def parse_record(record: Mapping[str, Any], path: str) -> ObjectCreated | ObjectRemoved:
    """Convert one S3 notification record to an :class:`ObjectCreated` or :class:`ObjectRemoved`."""
    raw_name = req_str(record, "eventName", path)
    name = raw_name.removeprefix("s3:")
    category, _, reason = name.partition(":")
    if category not in (_CREATED, _REMOVED) or not reason:
        fail(
            join(path, "eventName"),
            f"unsupported S3 event {raw_name!r:.60}; only ObjectCreated:* and "
            "ObjectRemoved:* notifications convert to events",
        )
    s3_path = join(path, "s3")
    s3 = req_obj(record, "s3", path)
    bucket_path = join(s3_path, "bucket")
    bucket_obj = req_obj(s3, "bucket", s3_path)
    bucket = req_str(bucket_obj, "name", bucket_path)
    if not bucket:
        fail(join(bucket_path, "name"), "must not be empty")
    # The source is the bucket ARN as given; anything that is not an S3 ARN
    # is replaced by the bucket's own ARN (rendering does the same).
    arn = opt_str(bucket_obj, "arn", bucket_path)
    if arn is None or source_arn(arn, "s3") is None:
        arn = f"arn:aws:s3:::{bucket}"
    object_path = join(s3_path, "object")
    obj = req_obj(s3, "object", s3_path)
    key = unquote_plus(req_str(obj, "key", object_path))
    version_id = opt_str(obj, "versionId", object_path)
    sequencer = opt_str(obj, "sequencer", object_path)
    raw_time = record.get("eventTime")
    time = now_utc() if raw_time is None else parse_iso(raw_time, join(path, "eventTime"))
    event_id = notification_id(name, bucket, key, version_id, sequencer, time)
    common: dict[str, Any] = {
        "version_id": version_id,
        "sequencer": sequencer,
        "reason": reason,
        "id": event_id,
        "time": time,
        "source": arn,
    }
    if category == _REMOVED:
        return ObjectRemoved(bucket, key, **common)
    size_raw = obj.get("size")
    size = 0 if size_raw is None else as_int(size_raw, join(object_path, "size"), non_negative=True)
    etag = opt_str(obj, "eTag", object_path) or opt_str(obj, "etag", object_path) or ""
    return ObjectCreated(bucket, key, size, etag, **common)


def render_record(
    event: ObjectCreated | ObjectRemoved, path: str, options: RenderOptions
) -> dict[str, Any]:
    """Render an :class:`ObjectCreated` or :class:`ObjectRemoved` as an S3 notification record."""
    category = _CREATED if isinstance(event, ObjectCreated) else _REMOVED
    if not event.reason:
        fail(
            join(path, "reason"),
            f"expected an S3 event name suffix such as 'Put', got {event.reason!r:.40}",
        )
    if not event.bucket:
        fail(join(path, "bucket"), "must not be empty")
    # Keep the ARN the payload came with (S3 bucket ARNs have no region or account).
    arn = event.source if source_arn(event.source, "s3") else None
    if arn is None:
        arn = str(rebuild_arn(event.source, "s3", event.bucket, options, regional=False))
    try:
        key = quote_plus(event.key, safe="/")
    except UnicodeEncodeError as exc:
        fail(join(path, "key"), f"cannot be URL-encoded: {exc}")
    obj: dict[str, Any] = {"key": key}
    if isinstance(event, ObjectCreated):
        if event.size < 0:
            fail(join(path, "size"), "must not be negative")
        obj["size"] = event.size
        obj["eTag"] = event.etag
    if event.version_id is not None:
        obj["versionId"] = event.version_id
    if event.sequencer is not None:
        obj["sequencer"] = event.sequencer
    name = f"{category}:{event.reason}"
    notification = notification_id(
        name, event.bucket, event.key, event.version_id, event.sequencer, event.time
    )
    request = hashlib.sha256(notification.encode("ascii")).digest()
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": options.region,
        "eventTime": format_iso(event.time),
        "eventName": name,
        "userIdentity": {"principalId": "EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": request[:8].hex().upper(),
            "x-amz-id-2": b64encode(request + request[:16]),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "eventbus",
            "bucket": {
                "name": event.bucket,
                "ownerIdentity": {"principalId": "EXAMPLE"},
                "arn": arn,
            },
            "object": obj,
        },
    }
