"""Sample Lambda payloads from public fixtures read into typed events.

The payloads and their sources are under data/vectors/lambda (SOURCES.md);
several carry placeholders ("arn:aws:sns:EXAMPLE", "eventsource_arn") or SDK
serialisation quirks (every AttributeValue type key present, unused ones null)
that real handlers' tests feed in all the same.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from eventbus import ScheduledEvent
from eventbus.aws import from_lambda_event, to_lambda_event

_DIR = Path(__file__).parent / "data" / "vectors" / "lambda"


def _load(name: str) -> Any:
    return json.loads((_DIR / name).read_text())


@pytest.mark.parametrize("name", sorted(p.name for p in _DIR.glob("*.json")))
def test_round_trip(name: str) -> None:
    """Each payload reads, renders back, and reads again to equal events."""
    events = from_lambda_event(_load(name))
    assert events
    assert from_lambda_event(to_lambda_event(events)) == events


def test_sns_placeholder_topic_and_binary() -> None:
    """A placeholder topic ARN names the topic; non-base64 Binary text is kept."""
    (event,) = from_lambda_event(_load("sns_go.json"))
    assert event.topic == "EXAMPLE"
    assert event.message == "Hello from SNS!"
    assert event.subject == "TestInvoke"
    assert event.attributes == {"Test": "TestString", "TestBinary": "TestBinary"}


def test_dynamodb_all_type_keys_with_nulls() -> None:
    """Only the non-null type key of an AttributeValue counts; an empty set reads as set()."""
    (event,) = from_lambda_event(_load("ddb_go.json"))
    assert event.table == "Example-Table"
    assert event.keys == {"val": "data", "key": "binary"}
    image = event.new_image
    assert image["asdf1"] == b"\x00\x01*A"
    assert image["asdf2"] == {b"\x00\x01*A", b"A*\x01\x00"}
    assert image["Boolean"] is True
    assert image["List"] == ["Cookies", "Coffee", Decimal("3.14159")]
    assert image["Map"] == {"Name": "Joe", "Age": Decimal("35")}
    assert image["NumberSet"] == {Decimal("1234"), Decimal("567.8")}
    assert image["Null"] is None
    assert image["StringSet"] == {"Giraffe", "Zebra"}
    assert image["EmptyStringSet"] == set()


def test_dynamodb_placeholder_source_arn() -> None:
    """A placeholder stream ARN names the table."""
    insert, modify = from_lambda_event(_load("ddb_pt.json"))
    assert (insert.op, insert.table, insert.keys) == ("INSERT", "eventsource_arn", {"Id": 101})
    assert modify.old_image == {"Message": "New item!", "Id": 101}
    assert modify.new_image == {"Message": "This item has changed", "Id": 101}


def test_s3_key_is_url_decoded() -> None:
    """The object key is URL-decoded."""
    (event,) = from_lambda_event(_load("s3_go_decoded.json"))
    assert (event.bucket, event.key, event.size) == ("sourcebucket", "Happy Face.jpg", 1024)
    assert event.version_id == "version"


def test_kinesis_data_is_decoded() -> None:
    """Kinesis data is base64-decoded, in order."""
    first, second = from_lambda_event(_load("kinesis_pt.json"))
    assert first.data == b"Hello, this is a test."
    assert second.data == b"This is only a test."
    assert first.partition_key == "1"


def test_sqs_message_attributes() -> None:
    """SQS message attributes read by data type."""
    (event,) = from_lambda_event(_load("sqs_go.json"))
    assert event.body == "Message Body"
    assert event.queue == "SQSQueue"


def test_eventbridge_scheduler_event() -> None:
    """EventBridge Scheduler's event (detail is the text "{}") is a ScheduledEvent named by its schedule."""
    (event,) = from_lambda_event(_load("eb_scheduler_pt.json"))
    assert isinstance(event, ScheduledEvent)
    assert event.rule == "aaaaa"
    assert event.scheduled_time == datetime(2025, 2, 20, 16, 3, tzinfo=UTC)
    rendered = to_lambda_event([event])
    assert rendered["source"] == "aws.scheduler"
    assert rendered["resources"] == [
        "arn:aws:scheduler:us-east-1:123456789012:schedule/default/aaaaa"
    ]
    assert rendered["detail"] == "{}"


def test_eventbridge_detail_as_json_text() -> None:
    """A detail given as JSON text reads as the object it holds."""
    payload = dict(_load("eb_pt.json"), detail='{"state": "terminated"}')
    (event,) = from_lambda_event(payload)
    assert event.detail == {"state": "terminated"}


def test_eventbridge_minimal_event() -> None:
    """An event with only detail-type, source and detail reads."""
    (event,) = from_lambda_event(_load("eb_min_pt.json"))
    assert (event.detail_type, event.source, event.detail) == (
        "My custom event",
        "my-custom-source",
        {"custom_field": "cool"},
    )


def test_dynamodb_window_records() -> None:
    """Tumbling-window batches read their records: INSERT, MODIFY, REMOVE."""
    events = from_lambda_event(_load("ddb_window_pt.json"))
    assert [e.op for e in events] == ["INSERT", "MODIFY", "REMOVE"]
    assert events[2].old_image == {"Message": "This item has changed", "Id": 101}
    assert events[2].new_image is None
