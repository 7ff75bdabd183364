"""CloudWatch Logs subscription payloads (``awslogs.data``) <-> :class:`~eventbus.aws.CloudWatchLogsEvent`."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ._common import (
    as_list,
    as_object,
    as_str,
    b64decode,
    b64encode,
    digest,
    epoch_millis,
    fail,
    opt_str,
    parse_epoch_millis,
    req_obj,
    req_str,
    required,
)
from ._events import CloudWatchLogsEvent, LogEvent
from ._limits import LIMITS, load_json

__all__ = ["parse_payload", "render_payload"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATA = "awslogs.data"


def _inflate(data: bytes) -> bytes:
    """Decompress gzip or zlib data, refusing output past ``max_payload_bytes``."""
    limit = LIMITS.max_payload_bytes
    # wbits 32 + MAX_WBITS: detect a gzip or a zlib header.
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        fail(_DATA, f"not gzip or zlib data: {exc}")
    if len(out) > limit or inflater.unconsumed_tail:
        fail(
            _DATA,
            f"decompresses to more than the max_payload_bytes limit ({limit}) of "
            "eventbus.aws.PayloadLimits",
        )
    if not inflater.eof:
        fail(_DATA, "the compressed data is truncated")
    return out


def parse_payload(payload: Mapping[str, Any]) -> CloudWatchLogsEvent:
    """Read a CloudWatch Logs subscription payload into one event."""
    awslogs = req_obj(payload, "awslogs", "")
    raw = b64decode(required(awslogs, "data", "awslogs"), _DATA)
    text = _inflate(raw)
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        fail(_DATA, "the decompressed data is not UTF-8 text")
    body = as_object(load_json(decoded, _DATA), _DATA)
    events: list[LogEvent] = []
    raw_events = body.get("logEvents")
    for i, item in enumerate(as_list([] if raw_events is None else raw_events, "logEvents")):
        path = f"{_DATA}.logEvents[{i}]"
        entry = as_object(item, path)
        events.append(
            LogEvent(
                req_str(entry, "id", path),
                parse_epoch_millis(required(entry, "timestamp", path), f"{path}.timestamp"),
                as_str(entry.get("message", ""), f"{path}.message"),
            )
        )
    filters = body.get("subscriptionFilters")
    group = as_str(body.get("logGroup", ""), f"{_DATA}.logGroup")
    stream = as_str(body.get("logStream", ""), f"{_DATA}.logStream")
    owner = as_str(body.get("owner", ""), f"{_DATA}.owner")
    return CloudWatchLogsEvent(
        group,
        stream,
        owner,
        [
            as_str(name, f"{_DATA}.subscriptionFilters[{i}]")
            for i, name in enumerate(
                as_list([] if filters is None else filters, f"{_DATA}.subscriptionFilters")
            )
        ],
        as_str(body.get("messageType", "DATA_MESSAGE"), f"{_DATA}.messageType"),
        events,
        opt_str(body, "policyLevel", _DATA),
        id=digest("awslogs", owner, group, stream, *(event.event_id for event in events)),
        time=events[0].timestamp if events else _EPOCH,
        source=group,
    )


def render_payload(event: CloudWatchLogsEvent, path: str) -> dict[str, Any]:
    """Render a :class:`CloudWatchLogsEvent` as a subscription payload (gzip, then base64)."""
    body: dict[str, Any] = {
        "messageType": event.message_type,
        "owner": event.owner,
        "logGroup": event.log_group,
        "logStream": event.log_stream,
        "subscriptionFilters": list(event.subscription_filters),
        "logEvents": [
            {
                "id": entry.event_id,
                "timestamp": epoch_millis(entry.timestamp),
                "message": entry.message,
            }
            for entry in event.log_events
        ],
    }
    if event.policy_level is not None:
        body["policyLevel"] = event.policy_level
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError, AttributeError) as exc:
        fail(path, f"cannot render CloudWatchLogsEvent: {exc}")
    return {"awslogs": {"data": b64encode(gzip.compress(text, mtime=0))}}
