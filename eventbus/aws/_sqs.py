"""SQS message records <-> :class:`~eventbus.aws.QueueMessage`."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ._common import (
    Arn,
    RenderOptions,
    account_of,
    as_object,
    as_str,
    b64decode,
    b64encode,
    digest,
    epoch_millis,
    fail,
    format_number,
    join,
    kind,
    now_utc,
    opt_obj,
    opt_str,
    parse_epoch_millis,
    parse_number,
    rebuild_arn,
    region_of,
    req_str,
    required,
    source_arn,
    truncate_to_millis,
)
from ._events import QueueMessage

__all__ = ["parse_record", "render_record"]

_DEFAULTS = RenderOptions()


def parse_record(record: Mapping[str, Any], path: str) -> QueueMessage:
    """Convert one SQS record to a :class:`QueueMessage`."""
    arn_text = req_str(record, "eventSourceARN", path)
    queue = _queue_name(arn_text, join(path, "eventSourceARN"))
    body = as_str(required(record, "body", path), join(path, "body"))
    attributes_path = join(path, "attributes")
    attributes: dict[str, str] = {}
    for name, value in opt_obj(record, "attributes", path).items():
        here = join(attributes_path, name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        attributes[name] = as_str(value, here)
    sent = attributes.get("SentTimestamp")
    time = (
        truncate_to_millis(now_utc())
        if sent is None
        else parse_epoch_millis(sent, join(attributes_path, "SentTimestamp"))
    )
    attributes = _system_attributes(attributes, epoch_millis(time), account_of(arn_text, _DEFAULTS))
    message_id = record.get("messageId")
    if message_id is None:
        message_id = digest("sqs", arn_text, body, attributes["SentTimestamp"])
    message_id = as_str(message_id, join(path, "messageId"))
    receipt = opt_str(record, "receiptHandle", path) or _receipt_handle(message_id)
    return QueueMessage(
        queue,
        body,
        attributes,
        parse_message_attributes(record.get("messageAttributes"), join(path, "messageAttributes")),
        receipt,
        id=message_id,
        time=time,
        source=arn_text,
    )


def _queue_name(arn_text: str, path: str) -> str:
    arn = Arn.parse(arn_text)
    if arn is None or arn.service != "sqs" or not arn.resource or ":" in arn.resource:
        fail(
            path,
            f"{arn_text!r:.80} is not an SQS queue ARN (arn:aws:sqs:<region>:<account>:<queue>)",
        )
    return arn.resource


def _system_attributes(attributes: Mapping[str, str], sent_ms: int, account: str) -> dict[str, str]:
    # SentTimestamp always agrees with Event.time; the other standard
    # attributes get the values a fresh, first-time delivery would have.
    out = {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": str(sent_ms),
        "SenderId": account,
        "ApproximateFirstReceiveTimestamp": str(sent_ms),
    }
    out.update((name, value) for name, value in attributes.items() if name != "SentTimestamp")
    return out


def _receipt_handle(message_id: str) -> str:
    return "AQEB" + b64encode(hashlib.sha256(message_id.encode("utf-8", "surrogatepass")).digest())


def _get(spec: Mapping[str, Any], name: str) -> Any:
    # Lambda spells these in camelCase; the SQS API in PascalCase.
    value = spec.get(name)
    return spec.get(name[0].upper() + name[1:]) if value is None else value


def parse_message_attributes(value: object, path: str) -> dict[str, Any]:
    """SQS ``messageAttributes`` as plain values (``str``, ``int``/``float``, ``bytes``)."""
    if value is None:
        return {}
    out: dict[str, Any] = {}
    for name, spec in as_object(value, path).items():
        here = join(path, name)
        spec = as_object(spec, here)
        type_ = _get(spec, "dataType")
        if type_ is None:
            fail(join(here, "dataType"), "missing")
        base = as_str(type_, join(here, "dataType")).split(".", 1)[0]
        if base in ("String", "Number"):
            raw = _get(spec, "stringValue")
            if raw is None:
                fail(join(here, "stringValue"), "missing")
            raw_path = join(here, "stringValue")
            out[name] = as_str(raw, raw_path) if base == "String" else parse_number(raw, raw_path)
        elif base == "Binary":
            raw = _get(spec, "binaryValue")
            if raw is None:
                fail(join(here, "binaryValue"), "missing")
            out[name] = b64decode(raw, join(here, "binaryValue"))
        else:
            fail(
                join(here, "dataType"),
                f"unsupported data type {type_!r:.40}; expected String, Number or Binary",
            )
    return out


def render_message_attributes(attributes: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Plain values as SQS ``messageAttributes``, in Lambda's camelCase form."""
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        here = join(path, str(name))
        spec: dict[str, Any]
        if isinstance(value, str):
            spec = {"stringValue": value}
            data_type = "String"
        elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            spec = {"stringValue": format_number(value, here)}
            data_type = "Number"
        elif isinstance(value, bytes | bytearray):
            spec = {"binaryValue": b64encode(bytes(value))}
            data_type = "Binary"
        else:
            fail(here, f"SQS message attributes are strings, numbers or bytes; got {kind(value)}")
        spec.update(stringListValues=[], binaryListValues=[], dataType=data_type)
        out[name] = spec
    return out


def _attributes_md5(rendered: Mapping[str, Any]) -> str:
    # SQS's documented digest: for each attribute in name order, the
    # length-prefixed name, data type, a transport byte and the value.
    buffer = bytearray()

    def put(data: bytes) -> None:
        buffer.extend(struct.pack(">I", len(data)))
        buffer.extend(data)

    for name in sorted(rendered):
        spec = rendered[name]
        put(name.encode("utf-8", "surrogatepass"))
        put(spec["dataType"].encode("utf-8"))
        if "binaryValue" in spec:
            buffer.append(2)
            put(b64decode(spec["binaryValue"], name))
        else:
            buffer.append(1)
            put(spec["stringValue"].encode("utf-8", "surrogatepass"))
    return hashlib.md5(bytes(buffer), usedforsecurity=False).hexdigest()


def render_record(event: QueueMessage, path: str, options: RenderOptions) -> dict[str, Any]:
    """Render a :class:`QueueMessage` as an SQS record."""
    if not event.queue:
        fail(join(path, "queue"), "must not be empty")
    arn = event.source
    current = source_arn(event.source, "sqs")
    if current is None or current.resource != event.queue:
        arn = str(rebuild_arn(event.source, "sqs", event.queue, options))
    for name, value in event.attributes.items():
        if not isinstance(value, str):
            fail(join(path, f"attributes.{name}"), f"expected a string, got {kind(value)}")
    attributes = _system_attributes(
        event.attributes, epoch_millis(event.time), account_of(arn, options)
    )
    message_attributes = render_message_attributes(
        event.message_attributes, join(path, "message_attributes")
    )
    record: dict[str, Any] = {
        "messageId": event.id,
        "receiptHandle": event.receipt_handle or _receipt_handle(event.id),
        "body": event.body,
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": hashlib.md5(
            event.body.encode("utf-8", "surrogatepass"), usedforsecurity=False
        ).hexdigest(),
    }
    if message_attributes:
        record["md5OfMessageAttributes"] = _attributes_md5(message_attributes)
    record.update(eventSource="aws:sqs", eventSourceARN=arn, awsRegion=region_of(arn, options))
    return record
