"""CloudTrail records, bare, in Records or via EventBridge <-> ApiCall."""

from __future__ import annotations

from datetime import UTC, datetime

from eventbus import Pattern
from eventbus.aws import ApiCall, EventBridgeEvent, from_lambda_event, to_lambda_event

from ._payloads import DATA, load

_VIA_EVENTBRIDGE = DATA / "awsdocs" / "cloudtrail-eventbridge-s3-putobject.json"
_BARE = DATA / "aws-lambda-rust-runtime" / "example-cloudwatch-cloudtrail-assumed-role.json"


def test_eventbridge_api_call_fields() -> None:
    """An 'AWS API Call via CloudTrail' event reads source, name, identity and parameters."""
    (event,) = from_lambda_event(load(_VIA_EVENTBRIDGE))
    assert isinstance(event, ApiCall)
    assert (event.event_source, event.event_name) == ("s3.amazonaws.com", "PutObject")
    assert event.user_identity["userName"] == "username"
    assert event.request_parameters is not None
    assert event.request_parameters["key"] == "test.png"
    assert event.response_elements is None
    assert (event.region, event.source_ip) == ("us-east-2", "203.0.113.34")
    assert event.event_id == "cdc4b7ed-e171-4cef-975a-ad829d4123e8"
    assert event.id == "8d6f9246-b781-44f8-a026-f1c1ab2c61f0"
    assert event.source == "aws.s3"
    assert event.time == datetime(2018, 9, 12, 0, 25, 10, tzinfo=UTC)
    assert event.detail_type == "AWS API Call via CloudTrail"
    assert event.extra["resources"][0]["type"] == "AWS::S3::Object"


def test_eventbridge_form_renders_back_as_eventbridge() -> None:
    """An ApiCall from EventBridge renders as an EventBridge event again."""
    (event,) = from_lambda_event(load(_VIA_EVENTBRIDGE))
    rendered = to_lambda_event([event])
    assert rendered["detail-type"] == "AWS API Call via CloudTrail"
    assert rendered["detail"]["eventName"] == "PutObject"


def test_bare_record() -> None:
    """A bare CloudTrail record reads with eventID as id and a source derived from eventSource."""
    (event,) = from_lambda_event(load(_BARE))
    assert isinstance(event, ApiCall)
    assert event.event_name == "CreateManagedAccount"
    assert event.source == "aws.controltower"
    assert event.detail_type is None
    assert event.user_identity["type"] == "AssumedRole"


def test_records_array_of_a_log_file() -> None:
    """A CloudTrail log file's Records array reads as one ApiCall per record, and back."""
    record = load(_BARE)
    other = {**record, "eventID": "another", "eventName": "DescribeAccount"}
    events = from_lambda_event({"Records": [record, other]})
    assert [getattr(event, "event_name", None) for event in events] == [
        "CreateManagedAccount",
        "DescribeAccount",
    ]
    assert from_lambda_event(to_lambda_event(events)) == events


def test_other_eventbridge_events_stay_generic() -> None:
    """An EventBridge event that is not from CloudTrail still reads as EventBridgeEvent."""
    payload = load(_VIA_EVENTBRIDGE)
    payload["detail-type"] = "Object Created"
    (event,) = from_lambda_event(payload)
    assert isinstance(event, EventBridgeEvent)


def test_patterns_match_api_calls() -> None:
    """A where= pattern matches an ApiCall's fields."""
    (event,) = from_lambda_event(load(_VIA_EVENTBRIDGE))
    assert Pattern({"event_name": ["PutObject"], "source": ["aws.s3"]}).matches(event)


def test_detail_without_a_record_stays_an_eventbridge_event() -> None:
    """A 'via CloudTrail' event whose detail is not a CloudTrail record reads as EventBridgeEvent."""
    payload = {"detail-type": "AWS API Call via CloudTrail", "source": "aws.events", "detail": {}}
    (event,) = from_lambda_event(payload)
    assert isinstance(event, EventBridgeEvent)
    assert from_lambda_event(to_lambda_event([event])) == [event]


def test_record_without_event_time_takes_the_eventbridge_time() -> None:
    """A CloudTrail detail without eventTime takes the EventBridge event's time."""
    payload = load(_VIA_EVENTBRIDGE)
    del payload["detail"]["eventTime"]
    payload["time"] = "2020-01-02T03:04:05Z"
    (event,) = from_lambda_event(payload)
    assert event.time == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert from_lambda_event(to_lambda_event([event])) == [event]
