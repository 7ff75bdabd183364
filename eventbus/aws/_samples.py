"""Sample Lambda payloads, like ``sam local generate-event``.

Each sample is built from typed events and rendered with
:func:`~eventbus.aws.to_lambda_event`, so every sample parses back with
:func:`~eventbus.aws.from_lambda_event`. Samples are deterministic: the same
service, kind and options always give the same payload.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from .._events import Event
from ..sources.logs import LogRecord
from ..sources.objects import ObjectCreated, ObjectRemoved
from ..sources.schedules import ScheduledEvent
from ..sources.tables import TableChange
from ..sources.topics import TopicMessage
from ._common import DEFAULT_ACCOUNT, DEFAULT_REGION, digest
from ._events import EventBridgeEvent, QueueMessage
from ._lambda import to_lambda_event

__all__ = ["SampleKind", "SampleOption", "generate_event", "sample_kinds"]

_TIME = datetime(2024, 1, 1, 12, 0, 0, tzinfo=UTC)


@attrs.frozen
class SampleOption:
    """One option of a sample payload (a keyword of :func:`generate_event`)."""

    name: str
    help: str
    default: str | int
    type: type[str] | type[int] = str


@attrs.frozen
class SampleKind:
    """A ``service kind`` pair that :func:`generate_event` can produce."""

    service: str
    kind: str
    help: str
    options: tuple[SampleOption, ...]
    build: Callable[[Mapping[str, Any]], list[Event]]


_REGION = SampleOption("region", "AWS region of the resource", DEFAULT_REGION)
_ACCOUNT = SampleOption("account", "AWS account id of the resource", DEFAULT_ACCOUNT)


def _arn(service: str, o: Mapping[str, Any], resource: str) -> str:
    return f"arn:aws:{service}:{o['region']}:{o['account']}:{resource}"


def _sample_id(*parts: object) -> str:
    # Shaped like the UUIDs AWS uses for message and event ids.
    h = digest("sample", *map(str, parts))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _s3_put(o: Mapping[str, Any]) -> list[Event]:
    return [
        ObjectCreated(
            o["bucket"],
            o["key"],
            o["size"],
            "0123456789abcdef0123456789abcdef",
            sequencer="0A1B2C3D4E5F678901",
            reason="Put",
            time=_TIME,
            source=f"arn:aws:s3:::{o['bucket']}",
        )
    ]


def _s3_delete(o: Mapping[str, Any]) -> list[Event]:
    return [
        ObjectRemoved(
            o["bucket"],
            o["key"],
            sequencer="0A1B2C3D4E5F678901",
            reason="Delete",
            time=_TIME,
            source=f"arn:aws:s3:::{o['bucket']}",
        )
    ]


def _dynamodb_update(o: Mapping[str, Any]) -> list[Event]:
    source = _arn("dynamodb", o, f"table/{o['table']}/stream/2024-01-01T00:00:00.000")
    keys = {"Id": 101}
    first = {"Id": 101, "Message": "New item!"}
    second = {"Id": 101, "Message": "This item has changed"}
    steps: list[tuple[Any, dict[str, Any] | None, dict[str, Any] | None]] = [
        ("INSERT", first, None),
        ("MODIFY", second, first),
        ("REMOVE", None, second),
    ]
    return [
        TableChange(
            o["table"],
            op,
            keys,
            new,
            old,
            111 * (n + 1),
            id=digest("sample", "dynamodb", o["table"], str(n)),
            time=_TIME,
            source=source,
        )
        for n, (op, new, old) in enumerate(steps)
    ]


def _sns_notification(o: Mapping[str, Any]) -> list[Event]:
    return [
        TopicMessage(
            o["topic"],
            o["message"],
            {"Test": "TestString", "TestBinary": b"TestBinary"},
            o["subject"] or None,
            id=_sample_id("sns", o["topic"], o["message"]),
            time=_TIME,
            source=_arn("sns", o, o["topic"]),
        )
    ]


def _sqs_receive(o: Mapping[str, Any]) -> list[Event]:
    return [
        QueueMessage(
            o["queue"],
            o["body"],
            id=_sample_id("sqs", o["queue"], o["body"]),
            time=_TIME,
            source=_arn("sqs", o, o["queue"]),
        )
    ]


def _kinesis_get_records(o: Mapping[str, Any]) -> list[Event]:
    return [
        LogRecord(
            o["stream"],
            o["partition_key"],
            49590338271490256608559692538361571095921575989136588898,
            o["data"].encode("utf-8"),
            0,
            time=_TIME,
            source=_arn("kinesis", o, f"stream/{o['stream']}"),
        )
    ]


def _scheduled(o: Mapping[str, Any]) -> list[Event]:
    return [
        ScheduledEvent(
            o["rule"],
            _TIME,
            id=_sample_id("scheduled", o["rule"]),
            time=_TIME,
            source=_arn("events", o, f"rule/{o['rule']}"),
        )
    ]


def _eventbridge_event(o: Mapping[str, Any]) -> list[Event]:
    try:
        detail = json.loads(o["detail"])
    except ValueError as exc:
        raise ValueError(f"detail: not valid JSON: {exc}") from None
    if not isinstance(detail, dict):
        raise ValueError("detail: must be a JSON object")
    return [
        EventBridgeEvent(
            o["detail_type"],
            detail,
            (),
            o["account"],
            o["region"],
            id=_sample_id("eventbridge", o["source"], o["detail_type"], o["detail"]),
            time=_TIME,
            source=o["source"],
        )
    ]


_RULE = SampleOption("rule", "name of the EventBridge rule", "my-schedule")

_KINDS: tuple[SampleKind, ...] = (
    SampleKind(
        "s3",
        "put",
        "an S3 ObjectCreated:Put notification",
        (
            SampleOption("bucket", "bucket name", "example-bucket"),
            SampleOption("key", "object key (not URL-encoded)", "test/key"),
            SampleOption("size", "object size in bytes", 1024, int),
            _REGION,
        ),
        _s3_put,
    ),
    SampleKind(
        "s3",
        "delete",
        "an S3 ObjectRemoved:Delete notification",
        (
            SampleOption("bucket", "bucket name", "example-bucket"),
            SampleOption("key", "object key (not URL-encoded)", "test/key"),
            _REGION,
        ),
        _s3_delete,
    ),
    SampleKind(
        "dynamodb",
        "update",
        "DynamoDB Streams records: an INSERT, a MODIFY and a REMOVE",
        (SampleOption("table", "table name", "ExampleTable"), _REGION, _ACCOUNT),
        _dynamodb_update,
    ),
    SampleKind(
        "sns",
        "notification",
        "an SNS notification",
        (
            SampleOption("topic", "topic name", "ExampleTopic"),
            SampleOption("message", "message body", "example message"),
            SampleOption("subject", "subject line ('' for none)", "example subject"),
            _REGION,
            _ACCOUNT,
        ),
        _sns_notification,
    ),
    SampleKind(
        "sqs",
        "receive-message",
        "an SQS message",
        (
            SampleOption("queue", "queue name", "ExampleQueue"),
            SampleOption("body", "message body", "Hello from SQS!"),
            _REGION,
            _ACCOUNT,
        ),
        _sqs_receive,
    ),
    SampleKind(
        "kinesis",
        "get-records",
        "a Kinesis Data Streams record",
        (
            SampleOption("stream", "stream name", "ExampleStream"),
            SampleOption("partition_key", "partition key", "partitionKey-03"),
            SampleOption(
                "data",
                "record data as text (base64-encoded in the payload)",
                "Hello, this is a test.",
            ),
            _REGION,
            _ACCOUNT,
        ),
        _kinesis_get_records,
    ),
    SampleKind(
        "cloudwatch",
        "scheduled-event",
        "an EventBridge (CloudWatch Events) Scheduled Event",
        (_RULE, _REGION, _ACCOUNT),
        _scheduled,
    ),
    SampleKind(
        "eventbridge",
        "scheduled-event",
        "an EventBridge Scheduled Event",
        (_RULE, _REGION, _ACCOUNT),
        _scheduled,
    ),
    SampleKind(
        "eventbridge",
        "event",
        "a custom EventBridge event",
        (
            SampleOption("source", "event source", "com.example.orders"),
            SampleOption("detail_type", "detail-type", "Order Placed"),
            SampleOption("detail", "detail, as JSON text", '{"order_id": "o-1"}'),
            _REGION,
            _ACCOUNT,
        ),
        _eventbridge_event,
    ),
)


def sample_kinds() -> tuple[SampleKind, ...]:
    """Every ``service kind`` pair :func:`generate_event` knows, in a stable order."""
    return _KINDS


def _find(service: str, kind: str | None) -> SampleKind:
    if kind is None:
        service, _, rest = service.partition("-")
        kind = rest or None
    known = ", ".join(f"{k.service} {k.kind}" for k in _KINDS)
    if kind is None:
        raise ValueError(f"generate_event: no kind given for {service!r}; known: {known}")
    for candidate in _KINDS:
        if candidate.service == service.lower() and candidate.kind == kind.lower():
            return candidate
    raise ValueError(f"generate_event: unknown sample {service!r} {kind!r}; known: {known}")


def generate_event(service: str, kind: str | None = None, **options: Any) -> dict[str, Any]:
    """Build a sample Lambda payload, like ``sam local generate-event``.

    Known samples (service, kind): ``s3 put``, ``s3 delete``, ``dynamodb
    update``, ``sns notification``, ``sqs receive-message``, ``kinesis
    get-records``, ``cloudwatch scheduled-event``, ``eventbridge
    scheduled-event`` and ``eventbridge event``. The combined spelling
    ``generate_event("s3-put")`` is accepted too.

    Options (each has a default): ``bucket``, ``key``, ``size`` (S3);
    ``table`` (DynamoDB); ``topic``, ``message``, ``subject`` (SNS);
    ``queue``, ``body`` (SQS); ``stream``, ``partition_key``, ``data``
    (Kinesis, as text); ``rule`` (scheduled events); ``source``,
    ``detail_type``, ``detail`` (JSON text; EventBridge); and ``region``,
    ``account`` where the resource has them.

    Args:
        service: the service (``"s3"``), or ``"service-kind"`` (``"s3-put"``).
        kind: the kind of event (``"put"``).
        **options: values for the sample's options.

    Returns:
        The payload, a JSON-serializable dict that :func:`from_lambda_event`
        accepts. The same arguments always give the same payload.

    Raises:
        ValueError: unknown service or kind, unknown option, or an option of
            the wrong type (the message lists what is accepted).

    .. versionadded:: 0.1
    """
    sample = _find(service, kind)
    values: dict[str, Any] = {}
    names = {option.name: option for option in sample.options}
    for name, value in options.items():
        option = names.get(name)
        if option is None:
            raise ValueError(
                f"generate_event({sample.service!r}, {sample.kind!r}): unknown option {name!r}; "
                f"options are: {', '.join(names)}"
            )
        if option.type is int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name}: expected a non-negative integer, got {value!r:.40}")
        elif not isinstance(value, str):
            raise ValueError(f"{name}: expected a string, got {type(value).__name__}")
        values[name] = value
    for option in sample.options:
        values.setdefault(option.name, option.default)
    return to_lambda_event(
        sample.build(values),
        region=values.get("region", DEFAULT_REGION),
        account=values.get("account", DEFAULT_ACCOUNT),
    )
