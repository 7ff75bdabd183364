"""Kinesis Data Streams records <-> :class:`~eventbus.LogRecord`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .._events import LogRecord
from ._common import (
    Arn,
    RenderOptions,
    as_int,
    as_str,
    b64decode,
    b64encode,
    epoch_seconds,
    fail,
    join,
    now_utc,
    parse_epoch_seconds,
    rebuild_arn,
    region_of,
    req_obj,
    req_str,
    required,
    source_arn,
)

__all__ = ["event_id", "parse_record", "render_record"]

_SHARD = re.compile(r"shardId-(\d+):")


def event_id(partition: int, sequence_number: int) -> str:
    """Kinesis's record id: ``shardId-<12 digits>:<sequence number>``."""
    return f"shardId-{partition:012d}:{sequence_number}"


def parse_record(record: Mapping[str, Any], path: str) -> LogRecord:
    """Convert one Kinesis record to a :class:`LogRecord`."""
    arn_text = req_str(record, "eventSourceARN", path)
    stream = _stream_name(arn_text, join(path, "eventSourceARN"))
    kinesis_path = join(path, "kinesis")
    kinesis = req_obj(record, "kinesis", path)
    partition_key = req_str(kinesis, "partitionKey", kinesis_path)
    sequence = as_int(
        required(kinesis, "sequenceNumber", kinesis_path),
        join(kinesis_path, "sequenceNumber"),
        non_negative=True,
    )
    raw_data = kinesis.get("data")
    data = b"" if raw_data is None else b64decode(raw_data, join(kinesis_path, "data"))
    arrival = kinesis.get("approximateArrivalTimestamp")
    time = (
        now_utc()
        if arrival is None
        else parse_epoch_seconds(arrival, join(kinesis_path, "approximateArrivalTimestamp"))
    )
    partition = 0
    raw_id = record.get("eventID")
    if raw_id is not None:
        match = _SHARD.match(as_str(raw_id, join(path, "eventID")))
        if match is None:
            fail(
                join(path, "eventID"),
                f"{raw_id!r:.80} does not name a shard ('shardId-<number>:<sequence number>')",
            )
        partition = int(match.group(1))
    return LogRecord(
        stream,
        partition_key,
        sequence,
        data,
        partition,
        # The id is always Kinesis's own form, derived from shard and sequence
        # number, so that rendering and reading back agree.
        id=event_id(partition, sequence),
        time=time,
        source=arn_text,
    )


def _placeholder_name(arn_text: str) -> str | None:
    """The stream a placeholder ARN (``arn:aws:kinesis:EXAMPLE``) stands for, else None.

    Published samples use such placeholders; they are kept as the event's
    ``source`` and their last ``:`` part names the stream.
    """
    if Arn.parse(arn_text) is not None or not arn_text.startswith("arn:"):
        return None
    parts = arn_text.split(":")
    if len(parts) < 3 or parts[2] != "kinesis" or not parts[-1]:
        return None
    return parts[-1]


def _stream_name(arn_text: str, path: str) -> str:
    placeholder = _placeholder_name(arn_text)
    if placeholder is not None:
        return placeholder
    arn = Arn.parse(arn_text)
    parts = arn.resource.split("/") if arn is not None else []
    if (
        arn is None
        or arn.service != "kinesis"
        or len(parts) < 2
        or parts[0] != "stream"
        or not parts[1]
    ):
        fail(
            path,
            f"{arn_text!r:.80} is not a Kinesis stream ARN "
            "(arn:aws:kinesis:<region>:<account>:stream/<name>)",
        )
    return parts[1]


def render_record(event: LogRecord, path: str, options: RenderOptions) -> dict[str, Any]:
    """Render a :class:`LogRecord` as a Kinesis record."""
    if not event.log:
        fail(join(path, "log"), "must not be empty")
    if event.partition < 0:
        fail(join(path, "partition"), "must not be negative")
    if event.sequence_number < 0:
        fail(join(path, "sequence_number"), "must not be negative")
    arn = event.source
    if _placeholder_name(event.source) == event.log:
        return _record(event, arn, rebuild_arn("", "kinesis", "", options), options)
    resolved = source_arn(event.source, "kinesis")
    parts = resolved.resource.split("/") if resolved is not None else []
    if resolved is None or len(parts) < 2 or parts[0] != "stream" or parts[1] != event.log:
        resolved = rebuild_arn(event.source, "kinesis", f"stream/{event.log}", options)
        arn = str(resolved)
    return _record(event, arn, resolved, options)


def _record(event: LogRecord, arn: str, resolved: Arn, options: RenderOptions) -> dict[str, Any]:
    account = resolved.account or options.account
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": event.partition_key,
            "sequenceNumber": str(event.sequence_number),
            "data": b64encode(bytes(event.data)),
            "approximateArrivalTimestamp": epoch_seconds(event.time),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": event_id(event.partition, event.sequence_number),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:{resolved.partition}:iam::{account}:role/lambda-role",
        "awsRegion": region_of(arn, options),
        "eventSourceARN": arn,
    }
