"""CloudWatch Logs subscription payloads (awslogs.data) <-> CloudWatchLogsEvent."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from datetime import UTC, datetime

import pytest

from eventbus import SerializationError, from_cloudevent, to_cloudevent
from eventbus.aws import CloudWatchLogsEvent, LogEvent, from_lambda_event, to_lambda_event

from ._payloads import DATA, load

_BODY = {
    "messageType": "DATA_MESSAGE",
    "owner": "123456789012",
    "logGroup": "/aws/lambda/app",
    "logStream": "2024/01/01/[$LATEST]abc",
    "subscriptionFilters": ["errors"],
    "logEvents": [{"id": "1", "timestamp": 1704067200123, "message": "[ERROR] boom"}],
}


def _payload(data: bytes) -> dict[str, object]:
    return {"awslogs": {"data": base64.b64encode(data).decode()}}


def test_reads_every_field() -> None:
    """Log group, stream, owner, filters, message type and log events are read."""
    (event,) = from_lambda_event(load(DATA / "aws-lambda-go" / "cloudwatch-logs-event.json"))
    assert isinstance(event, CloudWatchLogsEvent)
    assert (event.log_group, event.log_stream, event.owner) == (
        "testLogGroup",
        "testLogStream",
        "123456789123",
    )
    assert event.subscription_filters == ("testFilter",)
    assert event.message_type == "DATA_MESSAGE"
    assert event.log_events[0] == LogEvent(
        "eventId1", datetime(2015, 8, 24, 19, 3, 7, tzinfo=UTC), "[ERROR] First test message"
    )
    assert event.time == event.log_events[0].timestamp


def test_zlib_is_accepted_like_gzip() -> None:
    """zlib-deflated data reads like gzip data."""
    text = json.dumps(_BODY).encode()
    assert from_lambda_event(_payload(zlib.compress(text))) == from_lambda_event(
        _payload(gzip.compress(text))
    )


def test_policy_level_is_kept() -> None:
    """An account-level policy delivery keeps its policyLevel."""
    path = DATA / "powertools-lambda-python" / "cloudWatchLogEventWithPolicyLevel.json"
    (event,) = from_lambda_event(load(path))
    assert isinstance(event, CloudWatchLogsEvent)
    assert event.policy_level == "ACCOUNT_LEVEL_POLICY"
    assert from_lambda_event(to_lambda_event([event])) == [event]


def test_decompression_bomb_is_refused() -> None:
    """Data inflating past max_payload_bytes is refused, naming the limit."""
    bomb = gzip.compress(b"[" + b" " * (7 * 1024 * 1024) + b"]")
    with pytest.raises(SerializationError, match="max_payload_bytes"):
        from_lambda_event(_payload(bomb))


def test_not_compressed_is_refused() -> None:
    """Data that is neither gzip nor zlib is refused."""
    with pytest.raises(SerializationError, match=r"awslogs\.data: not gzip or zlib"):
        from_lambda_event(_payload(b"plain text"))


def test_crosses_the_wire_as_a_cloudevent() -> None:
    """The event survives CloudEvents encoding, log events included."""
    (event,) = from_lambda_event(_payload(gzip.compress(json.dumps(_BODY).encode())))
    assert from_cloudevent(to_cloudevent(event)) == event
