"""CloudTrail records, bare or via EventBridge <-> :class:`~eventbus.aws.ApiCall`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._common import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    as_object,
    as_str,
    digest,
    fail,
    format_iso,
    join,
    json_copy,
    opt_str,
    parse_iso,
    req_str,
)
from ._events import ApiCall

__all__ = [
    "is_detail_type",
    "is_eventbridge",
    "is_record",
    "parse_eventbridge",
    "parse_record",
    "render",
]

#: The record fields ApiCall has a field of its own for.
_KNOWN = (
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "responseElements",
    "requestID",
    "eventID",
    "readOnly",
    "eventType",
    "errorCode",
    "errorMessage",
    "recipientAccountId",
)


def is_record(record: Mapping[str, Any]) -> bool:
    """Whether *record* is a CloudTrail record (an ``eventSource`` host and an ``eventName``)."""
    source = record.get("eventSource")
    return (
        isinstance(source, str)
        and source.endswith(".amazonaws.com")
        and "eventName" in record
        and "eventTime" in record
    )


def is_detail_type(detail_type: object) -> bool:
    """Whether an EventBridge ``detail-type`` carries a CloudTrail record."""
    return isinstance(detail_type, str) and detail_type.endswith(" via CloudTrail")


def is_eventbridge(payload: Mapping[str, Any]) -> bool:
    """Whether an EventBridge event carries a CloudTrail record in its ``detail``.

    Its ``detail-type`` ends in ``via CloudTrail`` and its ``detail`` has
    the record's ``eventSource`` and ``eventName``; anything else stays a
    plain EventBridge event.
    """
    detail = payload.get("detail")
    return (
        is_detail_type(payload.get("detail-type"))
        and isinstance(detail, Mapping)
        and "eventSource" in detail
        and "eventName" in detail
    )


def _service_source(event_source: str) -> str:
    return "aws." + event_source.removesuffix(".amazonaws.com")


def _optional_object(record: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any] | None:
    value = record.get(key)
    if value is None:
        return None
    copied: Mapping[str, Any] = json_copy(as_object(value, join(path, key)), join(path, key))
    return copied


def parse_record(
    record: Mapping[str, Any],
    path: str,
    *,
    event_id: str | None = None,
    source: str | None = None,
    detail_type: str | None = None,
    fallback_time: object = None,
) -> ApiCall:
    """Read one CloudTrail record (*fallback_time*: the EventBridge ``time``, if any)."""
    event_source = req_str(record, "eventSource", path)
    if not event_source:
        fail(join(path, "eventSource"), "must not be empty")
    event_name = req_str(record, "eventName", path)
    if record.get("eventTime") is None and fallback_time is not None:
        time = parse_iso(fallback_time, "time")
    else:
        time = parse_iso(req_str(record, "eventTime", path), join(path, "eventTime"))
    trail_id = opt_str(record, "eventID", path) or ""
    read_only = record.get("readOnly")
    if read_only is not None and not isinstance(read_only, bool):
        fail(join(path, "readOnly"), f"expected true or false, got {read_only!r:.40}")
    identity = record.get("userIdentity")
    extra = {key: value for key, value in record.items() if key not in _KNOWN}
    return ApiCall(
        event_source,
        event_name,
        # No region reads as the default one, as for EventBridge events.
        opt_str(record, "awsRegion", path) or DEFAULT_REGION,
        {}
        if identity is None
        else json_copy(as_object(identity, join(path, "userIdentity")), join(path, "userIdentity")),
        _optional_object(record, "requestParameters", path),
        _optional_object(record, "responseElements", path),
        opt_str(record, "sourceIPAddress", path),
        opt_str(record, "userAgent", path),
        trail_id,
        opt_str(record, "requestID", path),
        opt_str(record, "eventType", path),
        opt_str(record, "eventVersion", path) or "1.08",
        read_only,
        opt_str(record, "errorCode", path),
        opt_str(record, "errorMessage", path),
        opt_str(record, "recipientAccountId", path),
        json_copy(extra, path),
        detail_type,
        id=event_id or trail_id or digest("cloudtrail", event_source, event_name, format_iso(time)),
        time=time,
        source=source or _service_source(event_source),
    )


def parse_eventbridge(payload: Mapping[str, Any]) -> ApiCall:
    """Read an EventBridge event whose detail is a CloudTrail record."""
    detail = as_object(payload.get("detail"), "detail")
    raw_id = payload.get("id")
    return parse_record(
        detail,
        "detail",
        event_id=None if raw_id is None else as_str(raw_id, "id"),
        source=opt_str(payload, "source", ""),
        detail_type=req_str(payload, "detail-type", ""),
        fallback_time=payload.get("time"),
    )


def render_record(event: ApiCall, path: str) -> dict[str, Any]:
    """Render an :class:`ApiCall` as a bare CloudTrail record."""
    if not event.event_source:
        fail(join(path, "event_source"), "must not be empty")
    record: dict[str, Any] = {
        "eventVersion": event.event_version,
        "userIdentity": json_copy(dict(event.user_identity), join(path, "user_identity")),
        "eventTime": format_iso(event.time, fraction=False),
        "eventSource": event.event_source,
        "eventName": event.event_name,
        "awsRegion": event.region or DEFAULT_REGION,
        "sourceIPAddress": event.source_ip,
        "userAgent": event.user_agent,
        "requestParameters": None
        if event.request_parameters is None
        else json_copy(dict(event.request_parameters), join(path, "request_parameters")),
        "responseElements": None
        if event.response_elements is None
        else json_copy(dict(event.response_elements), join(path, "response_elements")),
        "requestID": event.request_id,
        # No eventID read (or set) renders none, so that the record reads back the same.
        "eventID": event.event_id or None,
        "readOnly": event.read_only,
        "eventType": event.record_type,
        "recipientAccountId": event.recipient_account_id,
    }
    if event.error_code is not None:
        record["errorCode"] = event.error_code
    if event.error_message is not None:
        record["errorMessage"] = event.error_message
    record = {
        key: value
        for key, value in record.items()
        if value is not None or key in ("requestParameters", "responseElements")
    }
    record.update(json_copy(dict(event.extra), join(path, "extra")))
    return record


def render(event: ApiCall, path: str) -> dict[str, Any]:
    """Render an :class:`ApiCall` as an EventBridge event (or a bare record; see the caller)."""
    detail = render_record(event, path)
    account = (
        event.recipient_account_id
        or str(event.user_identity.get("accountId") or "")
        or DEFAULT_ACCOUNT
    )
    return {
        "version": "0",
        "id": event.id,
        "detail-type": event.detail_type or "AWS API Call via CloudTrail",
        "source": event.source or _service_source(event.event_source),
        "account": account,
        "time": format_iso(event.time, fraction=False),
        "region": event.region or DEFAULT_REGION,
        "resources": [],
        "detail": detail,
    }
