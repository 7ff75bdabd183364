"""Tests for eventbus.aws: Lambda payloads <-> typed events."""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventbus import (
    Event,
    LogRecord,
    ObjectCreated,
    ObjectRemoved,
    ScheduledEvent,
    SerializationError,
    TableChange,
    TopicMessage,
    from_cloudevent,
    to_cloudevent,
)
from eventbus.aws import EventBridgeEvent, QueueMessage, from_lambda_event, to_lambda_event

DATA = Path(__file__).parent / "data" / "aws"
SAMPLES = sorted(path.name for path in DATA.glob("*.json"))

# Payload fields that no event keeps, per sample (documented in docs/aws.md):
# rendering writes deterministic placeholders there instead.
NOT_PRESERVED: dict[str, tuple[str, ...]] = {
    "s3-put.json": (
        "awsRegion",
        "userIdentity",
        "requestParameters",
        "responseElements",
        "s3.configurationId",
        "s3.bucket.ownerIdentity",
    ),
    "s3-variants.json": (
        "awsRegion",
        "userIdentity",
        "requestParameters",
        "responseElements",
        "s3.configurationId",
        "s3.bucket.ownerIdentity",
        # Normalised: eventVersion 2.1; eventTime always with milliseconds.
        "eventVersion",
        "eventTime",
        # Fields this module does not know are dropped.
        "glacierEventData",
        "unknownFutureField",
    ),
    "dynamodb-stream.json": ("dynamodb.SizeBytes",),
    "sns-notification.json": (
        "EventSubscriptionArn",
        "Sns.Signature",
        "Sns.SigningCertUrl",
        "Sns.UnsubscribeUrl",
    ),
    "sqs-receive.json": (),
    "kinesis-records.json": ("invokeIdentityArn", "kinesis.encryptionType"),
    "eventbridge-scheduled.json": (),
    "eventbridge-ec2.json": (),
}


def load(name: str) -> dict[str, Any]:
    """Read a sample payload."""
    data: dict[str, Any] = json.loads((DATA / name).read_text("utf-8"))
    return data


def records(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records of a Records-style payload."""
    return list(payload["Records"])


def drop(record: dict[str, Any], dotted: str) -> None:
    """Remove a dotted path from a record, if present."""
    *parents, last = dotted.split(".")
    node: Any = record
    for part in parents:
        node = node.get(part)
        if not isinstance(node, dict):
            return
    node.pop(last, None)


def scrub(payload: Mapping[str, Any], paths: Sequence[str]) -> Any:
    """A copy of *payload* without *paths* in each record (or in the event)."""
    out = copy.deepcopy(dict(payload))
    for record in out.get("Records", [out]):
        for path in paths:
            drop(record, path)
    return out


def round_trip(payload: Mapping[str, Any]) -> tuple[list[Event], dict[str, Any], list[Event]]:
    """payload -> events -> payload (through JSON text) -> events."""
    first = from_lambda_event(payload)
    rendered = to_lambda_event(first)
    second = from_lambda_event(json.dumps(rendered))
    return first, rendered, second


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0
) -> datetime:
    """An aware UTC datetime."""
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


# -- every sample ---------------------------------------------------------------------


def test_every_sample_has_a_fidelity_entry() -> None:
    """Each sample payload file is covered by the fidelity table."""
    assert set(SAMPLES) == set(NOT_PRESERVED)


@pytest.mark.parametrize("name", SAMPLES)
def test_round_trip_is_stable(name: str) -> None:
    """payload -> events -> payload -> events gives equal events and a fixed-point payload."""
    first, rendered, second = round_trip(load(name))
    assert second == first
    assert to_lambda_event(second) == rendered


@pytest.mark.parametrize("name", SAMPLES)
def test_rendering_keeps_every_documented_field(name: str) -> None:
    """Rendering reproduces the sample except the fields documented as not preserved."""
    payload = load(name)
    rendered = to_lambda_event(from_lambda_event(payload))
    paths = NOT_PRESERVED[name]
    assert scrub(rendered, paths) == scrub(payload, paths)


@pytest.mark.parametrize("name", SAMPLES)
def test_conversion_is_deterministic(name: str) -> None:
    """Converting the same payload twice gives equal events."""
    assert from_lambda_event(load(name)) == from_lambda_event(load(name))


@pytest.mark.parametrize("name", SAMPLES)
def test_rendered_payload_is_strict_json(name: str) -> None:
    """A rendered payload is JSON without NaN or non-JSON types."""
    rendered = to_lambda_event(from_lambda_event(load(name)))
    assert json.loads(json.dumps(rendered, allow_nan=False)) == rendered


@pytest.mark.parametrize("name", SAMPLES)
def test_events_survive_cloudevents(name: str) -> None:
    """Converted events cross the wire as CloudEvents unchanged."""
    for event in from_lambda_event(load(name)):
        wire = json.loads(json.dumps(to_cloudevent(event)))
        assert from_cloudevent(wire) == event


@pytest.mark.parametrize("name", SAMPLES)
def test_payload_is_not_mutated(name: str) -> None:
    """from_lambda_event leaves the caller's payload as it was."""
    payload = load(name)
    from_lambda_event(payload)
    assert payload == load(name)


# -- S3 -------------------------------------------------------------------------------


def test_s3_put_fields() -> None:
    """An ObjectCreated:Put record maps field by field onto ObjectCreated."""
    (event,) = from_lambda_event(load("s3-put.json"))
    assert event == ObjectCreated(
        "photo-uploads",
        "albums/summer 2023/beach & sun.jpg",
        204800,
        "9b2cf535f27731c974343645a3985328",
        version_id="3HL4kqtJlcpXroDTDmjVBH40Nrjfkd",
        sequencer="00648979A91C4E2F7A",
        reason="Put",
        id=event.id,
        time=utc(2023, 6, 14, 8, 21, 45, 318000),
        source="arn:aws:s3:::photo-uploads",
    )


def test_s3_variants_map_to_reasons() -> None:
    """Every ObjectCreated:* / ObjectRemoved:* variant keeps its suffix as reason."""
    events = from_lambda_event(load("s3-variants.json"))
    assert [(type(e).__name__, getattr(e, "reason", None)) for e in events] == [
        ("ObjectCreated", "Copy"),
        ("ObjectCreated", "CompleteMultipartUpload"),
        ("ObjectCreated", "Post"),
        ("ObjectRemoved", "Delete"),
        ("ObjectRemoved", "DeleteMarkerCreated"),
    ]


def test_s3_keys_are_url_decoded_with_plus_as_space() -> None:
    """Keys are decoded like form data: '+' is a space, '%2B' a plus."""
    events = from_lambda_event(load("s3-variants.json"))
    keys = [e.key for e in events if isinstance(e, ObjectCreated | ObjectRemoved)]
    assert keys[0] == "cv/résumé (final).pdf"
    assert keys[2] == "forms/a+b=c.txt"


def test_s3_removed_keeps_version_and_sequencer() -> None:
    """ObjectRemoved carries versionId and sequencer."""
    event = from_lambda_event(load("s3-variants.json"))[3]
    assert isinstance(event, ObjectRemoved)
    assert event.version_id == "Vx9.kQx2pL0oRk1mN3bC5dE7fG9hJ1kL"
    assert event.sequencer == "0064897CFC00000D44"


def test_s3_sizes_beyond_32_bits() -> None:
    """A multipart object larger than 4 GiB keeps its exact size."""
    event = from_lambda_event(load("s3-variants.json"))[1]
    assert isinstance(event, ObjectCreated)
    assert event.size == 5368709120


def test_s3_time_without_fraction() -> None:
    """An eventTime without milliseconds (eventVersion 2.0) is accepted."""
    event = from_lambda_event(load("s3-variants.json"))[2]
    assert event.time == utc(2023, 6, 14, 8, 32)


def test_s3_duplicate_notifications_share_an_id() -> None:
    """A redelivered record gets the same id; another sequencer gives another id."""
    record = records(load("s3-put.json"))[0]
    other = copy.deepcopy(record)
    other["s3"]["object"]["sequencer"] = "00648979A91C4E2F7B"
    events = from_lambda_event({"Records": [record, copy.deepcopy(record), other]})
    assert events[0].id == events[1].id != events[2].id


def test_s3_event_name_with_service_prefix() -> None:
    """An eventName spelled 's3:ObjectCreated:Put' is accepted."""
    payload = load("s3-put.json")
    payload["Records"][0]["eventName"] = "s3:ObjectCreated:Put"
    (event,) = from_lambda_event(payload)
    assert isinstance(event, ObjectCreated)
    assert event.reason == "Put"


def test_s3_record_detected_by_shape() -> None:
    """A record from an S3-compatible store (foreign eventSource) is read by its shape."""
    payload = load("s3-put.json")
    payload["Records"][0]["eventSource"] = "minio:s3"
    (event,) = from_lambda_event(payload)
    assert isinstance(event, ObjectCreated)


def test_s3_unsupported_event_type() -> None:
    """S3 events other than ObjectCreated/ObjectRemoved are rejected by name."""
    payload = load("s3-put.json")
    payload["Records"][0]["eventName"] = "ObjectRestore:Completed"
    with pytest.raises(SerializationError, match=r"^Records\[0\]\.eventName: unsupported S3 event"):
        from_lambda_event(payload)


def test_s3_missing_key_names_record_and_field() -> None:
    """A missing key is reported as Records[2].s3.object.key: missing."""
    record = records(load("s3-put.json"))[0]
    broken = copy.deepcopy(record)
    del broken["s3"]["object"]["key"]
    payload = {"Records": [record, record, broken]}
    with pytest.raises(SerializationError, match=r"^Records\[2\]\.s3\.object\.key: missing$"):
        from_lambda_event(payload)


def test_s3_wrong_size_type() -> None:
    """A non-integer size is reported with its path."""
    payload = load("s3-put.json")
    payload["Records"][0]["s3"]["object"]["size"] = "big"
    with pytest.raises(
        SerializationError, match=r"Records\[0\]\.s3\.object\.size: expected an integer"
    ):
        from_lambda_event(payload)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1))
def test_s3_any_key_round_trips(key: str) -> None:
    """Any key survives URL-encoding on render and decoding on read."""
    event = ObjectCreated("b", key, 1, "e")
    (back,) = from_lambda_event(to_lambda_event([event]))
    assert isinstance(back, ObjectCreated)
    assert back.key == key


def test_s3_render_uses_region_option() -> None:
    """S3 bucket ARNs name no region; the region option fills awsRegion."""
    events = from_lambda_event(load("s3-put.json"))
    (record,) = records(to_lambda_event(events, region="eu-west-1"))
    assert record["awsRegion"] == "eu-west-1"


def test_s3_local_event_renders_bucket_arn() -> None:
    """An event with no ARN source gets the bucket's ARN and keeps its fields."""
    event = ObjectCreated("b", "k 1", 3, "etag", metadata={"m": "v"}, time=utc(2024, 1, 2))
    (back,) = from_lambda_event(to_lambda_event([event]))
    assert isinstance(back, ObjectCreated)
    assert back.source == "arn:aws:s3:::b"
    # User metadata is not part of S3 notifications.
    assert back.metadata == {}
    assert attrs.evolve(back, id=event.id, source="", metadata={"m": "v"}) == event


def test_s3_removed_renders_without_size() -> None:
    """ObjectRemoved records carry no size or eTag, as S3 sends them."""
    (record,) = records(to_lambda_event([ObjectRemoved("b", "k")]))
    assert record["eventName"] == "ObjectRemoved:Delete"
    assert set(record["s3"]["object"]) == {"key"}


# -- DynamoDB -------------------------------------------------------------------------


def test_dynamodb_insert_fields() -> None:
    """An INSERT record maps to a TableChange with plain Python values."""
    event = from_lambda_event(load("dynamodb-stream.json"))[0]
    assert isinstance(event, TableChange)
    assert (event.table, event.op, event.sequence_number) == (
        "Users",
        "INSERT",
        400000000000000499660,
    )
    assert event.keys == {"pk": "user#42", "sk": Decimal(7)}
    assert event.old_image is None
    assert event.new_image == {
        "pk": "user#42",
        "sk": Decimal("7"),
        "name": "Ada",
        "balance": Decimal("19.99"),
        "big": Decimal("123456789012345678901234567890123456"),
        "avatar": b"\x89PNG\r\n\x1a\n",
        "active": True,
        "nickname": None,
        "history": ["signup", Decimal(3), False, []],
        "address": {
            "city": "London",
            "zip": "N1 9GU",
            "geo": {"lat": Decimal("51.5390"), "lon": Decimal("-0.1426")},
        },
        "tags": {"admin", "beta"},
        "scores": {Decimal(-1), Decimal("2.5"), Decimal(10)},
        "keys": {b"\x01\x02\x03", b"\x04\x05\x06"},
    }
    assert event.id == "c4ca4238a0b923820dcc509a6f75849b"
    assert event.time == utc(2023, 6, 14, 8, 25)
    assert (
        event.source
        == "arn:aws:dynamodb:eu-west-1:210987654321:table/Users/stream/2023-06-01T09:30:12.345"
    )
    assert not event.expired


def test_dynamodb_numbers_are_decimals() -> None:
    """N values become Decimal, keeping their exact digits."""
    event = from_lambda_event(load("dynamodb-stream.json"))[0]
    assert isinstance(event, TableChange)
    assert event.new_image is not None
    assert str(event.new_image["address"]["geo"]["lat"]) == "51.5390"


def test_dynamodb_modify_has_both_images() -> None:
    """A MODIFY record carries the old and the new image."""
    event = from_lambda_event(load("dynamodb-stream.json"))[1]
    assert isinstance(event, TableChange)
    assert event.op == "MODIFY"
    assert event.old_image is not None
    assert event.old_image["balance"] == Decimal("19.99")
    assert event.new_image is not None
    assert event.new_image["balance"] == 0


def test_dynamodb_ttl_removal_is_expired() -> None:
    """A REMOVE by the DynamoDB service principal (TTL) sets expired=True."""
    event = from_lambda_event(load("dynamodb-stream.json"))[2]
    assert isinstance(event, TableChange)
    assert (event.op, event.expired, event.new_image) == ("REMOVE", True, None)


def test_dynamodb_expired_renders_service_identity() -> None:
    """expired=True renders the TTL userIdentity."""
    change = TableChange("T", "REMOVE", {"id": 1}, None, {"id": 1}, 5, expired=True)
    (record,) = records(to_lambda_event([change]))
    assert record["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def test_dynamodb_keys_only_view() -> None:
    """A change without images renders StreamViewType KEYS_ONLY."""
    change = TableChange("T", "MODIFY", {"id": 1}, None, None, 5)
    (record,) = records(to_lambda_event([change]))
    assert record["dynamodb"]["StreamViewType"] == "KEYS_ONLY"
    assert "NewImage" not in record["dynamodb"]


def test_dynamodb_local_change_round_trips() -> None:
    """A locally built TableChange keeps id, time (to the microsecond) and values."""
    change = TableChange(
        "Orders",
        "INSERT",
        {"id": "o-1"},
        {"id": "o-1", "total": Decimal("9.50"), "lines": [{"sku": "a", "qty": 2}]},
        None,
        17,
        time=utc(2024, 3, 1, 12, 0, 0, 123456),
    )
    (back,) = from_lambda_event(
        to_lambda_event([change], region="eu-west-3", account="111122223333")
    )
    assert back.source.startswith("arn:aws:dynamodb:eu-west-3:111122223333:table/Orders/stream/")
    assert attrs.evolve(back, source="") == change


def test_dynamodb_bad_number() -> None:
    """A malformed N value names the attribute."""
    payload = load("dynamodb-stream.json")
    payload["Records"][0]["dynamodb"]["NewImage"]["balance"] = {"N": "abc"}
    with pytest.raises(
        SerializationError,
        match=r"^Records\[0\]\.dynamodb\.NewImage\.balance\.N: 'abc' is not a number$",
    ):
        from_lambda_event(payload)


def test_dynamodb_bad_event_name() -> None:
    """An eventName other than INSERT/MODIFY/REMOVE is rejected."""
    payload = load("dynamodb-stream.json")
    payload["Records"][1]["eventName"] = "UPSERT"
    with pytest.raises(
        SerializationError, match=r"^Records\[1\]\.eventName: expected one of INSERT"
    ):
        from_lambda_event(payload)


def test_dynamodb_source_must_be_a_stream_arn() -> None:
    """The table name comes from eventSourceARN, which must be a DynamoDB ARN."""
    payload = load("dynamodb-stream.json")
    payload["Records"][0]["eventSourceARN"] = "arn:aws:sqs:eu-west-1:1:q"
    with pytest.raises(
        SerializationError, match=r"^Records\[0\]\.eventSourceARN: .* is not a DynamoDB stream ARN"
    ):
        from_lambda_event(payload)


def test_dynamodb_missing_sequence_number() -> None:
    """SequenceNumber is required."""
    payload = load("dynamodb-stream.json")
    del payload["Records"][0]["dynamodb"]["SequenceNumber"]
    with pytest.raises(
        SerializationError, match=r"^Records\[0\]\.dynamodb\.SequenceNumber: missing$"
    ):
        from_lambda_event(payload)


def test_dynamodb_unrenderable_value() -> None:
    """A value DynamoDB cannot store is reported with the event index and field."""
    change = TableChange("T", "INSERT", {"id": 1}, {"id": 1, "tags": {1, "a"}}, None, 1)
    with pytest.raises(SerializationError, match=r"^events\[0\]\.new_image\.tags: a set must hold"):
        to_lambda_event([change])


def test_dynamodb_empty_set_renders_as_sample_payloads_carry_it() -> None:
    """An empty set (which sample payloads carry) renders as {"SS": []} and reads back."""
    change = TableChange("T", "INSERT", {"id": 1}, {"id": 1, "tags": set()}, None, 1)
    payload = to_lambda_event([change])
    assert payload["Records"][0]["dynamodb"]["NewImage"]["tags"] == {"SS": []}
    assert from_lambda_event(payload)[0].new_image == {"id": 1, "tags": set()}


# -- SNS ------------------------------------------------------------------------------


def test_sns_fields() -> None:
    """An SNS record maps to a TopicMessage with typed attributes."""
    event = from_lambda_event(load("sns-notification.json"))[0]
    assert event == TopicMessage(
        "order-events",
        '{"order_id": "o-1001", "total": 42.5}',
        {
            "event_type": "order_placed",
            "priority": 3,
            "weight": 1.25,
            "regions": ["eu", "us", 7, True, None],
            "signature": b"\x00\x01\x02\x03",
        },
        "Order placed",
        id="1f0c4e8a-7b2d-5c6e-9a3f-4d8b2e1c7a90",
        time=utc(2023, 6, 14, 9, 2, 11, 804000),
        source="arn:aws:sns:eu-central-1:210987654321:order-events",
    )


def test_sns_null_subject() -> None:
    """A null Subject reads as None and renders as null."""
    event = from_lambda_event(load("sns-notification.json"))[1]
    assert isinstance(event, TopicMessage)
    assert event.subject is None
    assert records(to_lambda_event([event]))[0]["Sns"]["Subject"] is None


def test_sns_custom_number_type() -> None:
    """A custom-labelled Number attribute is read as a number."""
    payload = load("sns-notification.json")
    payload["Records"][0]["Sns"]["MessageAttributes"] = {
        "n": {"Type": "Number.float", "Value": "2.5"}
    }
    event = from_lambda_event(payload)[0]
    assert isinstance(event, TopicMessage)
    assert event.attributes == {"n": 2.5}


def test_sns_unknown_attribute_type() -> None:
    """An unknown attribute type is rejected with its path."""
    payload = load("sns-notification.json")
    payload["Records"][0]["Sns"]["MessageAttributes"] = {"x": {"Type": "Blob", "Value": "?"}}
    with pytest.raises(
        SerializationError,
        match=r"^Records\[0\]\.Sns\.MessageAttributes\.x\.Type: unsupported attribute type 'Blob'",
    ):
        from_lambda_event(payload)


def test_sns_bad_number_attribute() -> None:
    """A Number attribute that is not a number is rejected."""
    payload = load("sns-notification.json")
    payload["Records"][0]["Sns"]["MessageAttributes"] = {"x": {"Type": "Number", "Value": "nan"}}
    with pytest.raises(
        SerializationError, match=r"MessageAttributes\.x\.Value: 'nan' is not a finite number"
    ):
        from_lambda_event(payload)


def test_sns_attribute_that_cannot_render() -> None:
    """A dict attribute has no SNS form."""
    message = TopicMessage("t", "m", {"nested": {"a": 1}})
    with pytest.raises(
        SerializationError, match=r"^events\[0\]\.attributes\.nested: SNS attributes are"
    ):
        to_lambda_event([message])


def test_sns_local_message_keeps_id_and_time() -> None:
    """A locally built TopicMessage keeps id, time and attributes."""
    message = TopicMessage(
        "alerts", "hi", {"level": "warn", "n": 2}, "s", time=utc(2024, 1, 1, 0, 0, 0, 5)
    )
    (back,) = from_lambda_event(to_lambda_event([message]))
    assert back.source == "arn:aws:sns:us-east-1:123456789012:alerts"
    assert attrs.evolve(back, source="") == message


# -- SQS ------------------------------------------------------------------------------


def test_sqs_fields() -> None:
    """An SQS record maps to a QueueMessage."""
    event = from_lambda_event(load("sqs-receive.json"))[0]
    assert event == QueueMessage(
        "orders",
        '{"order_id": "o-1001", "items": 3}',
        {
            "ApproximateReceiveCount": "2",
            "AWSTraceHeader": "Root=1-64898a1e-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=1",
            "SentTimestamp": "1686733342123",
            "SenderId": "AIDAEXAMPLESENDERID01",
            "ApproximateFirstReceiveTimestamp": "1686733342130",
        },
        {"tenant": "acme", "attempt": 2, "checksum": b"\xde\xad\xbe\xef"},
        "AQEBz3kExampleReceiptHandleForTheFirstMessage/8v1Q==",
        id="8a1e6f0c-3d2b-4c5a-9e7f-1b2c3d4e5f60",
        time=utc(2023, 6, 14, 9, 2, 22, 123000),
        source="arn:aws:sqs:eu-west-1:210987654321:orders",
    )


def test_sqs_receive_count() -> None:
    """receive_count reads ApproximateReceiveCount."""
    event = from_lambda_event(load("sqs-receive.json"))[0]
    assert isinstance(event, QueueMessage)
    assert event.receive_count == 2


def test_sqs_fifo_group() -> None:
    """A FIFO record exposes its message group."""
    event = from_lambda_event(load("sqs-receive.json"))[1]
    assert isinstance(event, QueueMessage)
    assert (event.queue, event.group_id) == ("orders.fifo", "customer-42")


def test_sqs_keeps_sns_envelope_in_body() -> None:
    """An SNS notification delivered through SQS stays an SQS message with the envelope as body."""
    event = from_lambda_event(load("sqs-receive.json"))[2]
    assert isinstance(event, QueueMessage)
    assert json.loads(event.body)["Message"] == "stock low: sku-77"


@pytest.mark.parametrize(
    ("attributes", "digest"),
    [
        # Published reference digests of SQS's message-attribute MD5.
        ({"attribName1": "attribValue 1"}, "19e27d4e946b072f3f58da80d94fd778"),
        ({"binaryAttribute": b"Hello binary world!"}, "31a92b15d92f8db860eda32aceb656c3"),
    ],
)
def test_sqs_message_attribute_digest(attributes: dict[str, Any], digest: str) -> None:
    """md5OfMessageAttributes follows SQS's algorithm."""
    (record,) = records(to_lambda_event([QueueMessage("q", "b", message_attributes=attributes)]))
    assert record["md5OfMessageAttributes"] == digest


def test_sqs_body_digest() -> None:
    """md5OfBody is the MD5 of the UTF-8 body."""
    (record,) = records(to_lambda_event([QueueMessage("q", "héllo")]))
    assert record["md5OfBody"] == hashlib.md5("héllo".encode()).hexdigest()
    assert "md5OfMessageAttributes" not in record


def test_sqs_sparse_record_round_trips() -> None:
    """A record lacking receiptHandle, attributes and messageAttributes still round-trips."""
    payload = {
        "Records": [
            {
                "messageId": "m-1",
                "body": "x",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
            }
        ]
    }
    first, _, second = round_trip(payload)
    assert second == first
    assert isinstance(first[0], QueueMessage)
    assert first[0].attributes["ApproximateReceiveCount"] == "1"


def test_sqs_local_message_time_is_truncated_to_milliseconds() -> None:
    """SentTimestamp holds milliseconds, so finer time is dropped."""
    message = QueueMessage("q", "b", time=utc(2024, 1, 1, 0, 0, 0, 123456))
    (back,) = from_lambda_event(to_lambda_event([message]))
    assert back.time == utc(2024, 1, 1, 0, 0, 0, 123000)
    assert back.id == message.id


def test_sqs_bad_message_attribute() -> None:
    """A message attribute without a value is rejected with its path."""
    payload = load("sqs-receive.json")
    payload["Records"][0]["messageAttributes"]["tenant"] = {"dataType": "String"}
    with pytest.raises(
        SerializationError, match=r"^Records\[0\]\.messageAttributes\.tenant\.stringValue: missing$"
    ):
        from_lambda_event(payload)


def test_sqs_queue_from_arn() -> None:
    """The queue name comes from eventSourceARN, which must be an SQS ARN."""
    payload = load("sqs-receive.json")
    payload["Records"][1]["eventSourceARN"] = "orders"
    with pytest.raises(
        SerializationError, match=r"^Records\[1\]\.eventSourceARN: 'orders' is not an SQS queue ARN"
    ):
        from_lambda_event(payload)


# -- Kinesis --------------------------------------------------------------------------


def test_kinesis_fields() -> None:
    """A Kinesis record maps to a LogRecord with decoded data."""
    event = from_lambda_event(load("kinesis-records.json"))[0]
    assert event == LogRecord(
        "telemetry",
        "sensor-17",
        49641298765432109876543210987654321098765432109876543210,
        b'{"reading": 21.5, "unit": "C"}',
        0,
        id="shardId-000000000000:49641298765432109876543210987654321098765432109876543210",
        time=utc(2023, 6, 14, 9, 5, 0, 123000),
        source="arn:aws:kinesis:eu-north-1:210987654321:stream/telemetry",
    )


def test_kinesis_partition_from_shard() -> None:
    """The shard number in eventID becomes the partition."""
    event = from_lambda_event(load("kinesis-records.json"))[1]
    assert isinstance(event, LogRecord)
    assert event.partition == 3
    assert event.data == bytes(range(0, 256, 17))


def test_kinesis_bad_base64() -> None:
    """Data that is not base64 is rejected with its path."""
    payload = load("kinesis-records.json")
    payload["Records"][1]["kinesis"]["data"] = "not base64!"
    with pytest.raises(
        SerializationError, match=r"^Records\[1\]\.kinesis\.data: .* is not valid base64$"
    ):
        from_lambda_event(payload)


def test_kinesis_bad_event_id() -> None:
    """An eventID without a shard is rejected."""
    payload = load("kinesis-records.json")
    payload["Records"][0]["eventID"] = "eventid"
    with pytest.raises(
        SerializationError, match=r"^Records\[0\]\.eventID: 'eventid' does not name a shard"
    ):
        from_lambda_event(payload)


def test_kinesis_local_record_round_trips() -> None:
    """A locally built LogRecord keeps its fields; its id becomes Kinesis's."""
    record = LogRecord("clicks", "user-1", 42, b"\x00\xff", 5, time=utc(2024, 1, 1, 0, 0, 1, 500))
    (back,) = from_lambda_event(to_lambda_event([record]))
    assert back.id == "shardId-000000000005:42"
    assert attrs.evolve(back, id=record.id, source="") == record


# -- EventBridge ----------------------------------------------------------------------


def test_scheduled_event_fields() -> None:
    """A Scheduled Event maps to ScheduledEvent with the rule from its ARN."""
    (event,) = from_lambda_event(load("eventbridge-scheduled.json"))
    assert event == ScheduledEvent(
        "nightly-report",
        utc(2023, 6, 14, 10),
        id="7e3f9a1c-2b4d-4e8f-a6c0-5d1b3e9f7a24",
        time=utc(2023, 6, 14, 10),
        source="arn:aws:events:ap-southeast-2:210987654321:rule/nightly-report",
    )


def test_scheduled_event_renders_scheduled_time() -> None:
    """The payload time of a rendered ScheduledEvent is its scheduled_time."""
    event = ScheduledEvent("r", utc(2024, 5, 1, 3), time=utc(2024, 5, 1, 3, 0, 2))
    payload = to_lambda_event([event])
    assert payload["time"] == "2024-05-01T03:00:00Z"
    assert payload["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/r"]


def test_scheduled_event_needs_a_rule() -> None:
    """A Scheduled Event without resources is rejected."""
    payload = load("eventbridge-scheduled.json")
    payload["resources"] = []
    with pytest.raises(SerializationError, match=r"^resources: missing"):
        from_lambda_event(payload)


def test_eventbridge_event_fields() -> None:
    """Other EventBridge events map to EventBridgeEvent, source included."""
    (event,) = from_lambda_event(load("eventbridge-ec2.json"))
    assert event == EventBridgeEvent(
        "EC2 Instance State-change Notification",
        {"instance-id": "i-0abcd1234efgh5678", "state": "stopped"},
        ["arn:aws:ec2:us-west-2:210987654321:instance/i-0abcd1234efgh5678"],
        "210987654321",
        "us-west-2",
        id="3c5d7e9f-1a2b-4c6d-8e0f-a1b2c3d4e5f6",
        time=utc(2023, 6, 14, 10, 15, 30),
        source="aws.ec2",
    )


def test_scheduled_detail_type_from_another_source() -> None:
    """'Scheduled Event' from a source other than aws.events stays an EventBridgeEvent."""
    payload = load("eventbridge-scheduled.json")
    payload["source"] = "com.example"
    (event,) = from_lambda_event(payload)
    assert isinstance(event, EventBridgeEvent)


def test_eventbridge_event_needs_a_source() -> None:
    """Rendering an EventBridgeEvent without source is refused."""
    with pytest.raises(
        SerializationError, match=r"^events\[0\]\.source: an EventBridge event needs a source"
    ):
        to_lambda_event([EventBridgeEvent("Thing Happened", {"a": 1})])


def test_eventbridge_local_event_round_trips() -> None:
    """A locally built EventBridgeEvent with account and region round-trips."""
    event = EventBridgeEvent(
        "Order Placed",
        {"id": "o-1", "total": 3.5},
        ["arn:x"],
        "111122223333",
        "eu-west-1",
        source="shop",
    )
    assert from_lambda_event(to_lambda_event([event])) == [event]


def test_one_eventbridge_event_per_payload() -> None:
    """EventBridge delivers one event per invocation."""
    event = ScheduledEvent("r", utc(2024, 1, 1))
    with pytest.raises(SerializationError, match=r"one event at a time; got 2 events"):
        to_lambda_event([event, event])


# -- payload shape and service mixing --------------------------------------------------


def test_accepts_json_text() -> None:
    """The payload may be given as JSON text."""
    text = (DATA / "sqs-receive.json").read_text("utf-8")
    assert from_lambda_event(text) == from_lambda_event(load("sqs-receive.json"))


def test_rejects_invalid_json_text() -> None:
    """Invalid JSON text is a SerializationError."""
    with pytest.raises(SerializationError, match=r"^payload: not valid JSON"):
        from_lambda_event("{")


def test_rejects_non_object() -> None:
    """A payload must be a JSON object."""
    with pytest.raises(SerializationError, match=r"^payload: expected a JSON object"):
        from_lambda_event([])  # type: ignore[arg-type]


def test_rejects_unknown_shape() -> None:
    """A payload with neither Records nor detail-type is rejected."""
    with pytest.raises(SerializationError, match=r"^payload: not a Lambda event"):
        from_lambda_event({"httpMethod": "GET"})


def test_rejects_records_that_are_not_a_list() -> None:
    """Records must be an array."""
    with pytest.raises(SerializationError, match=r"^Records: expected an array, got an object$"):
        from_lambda_event({"Records": {}})


def test_rejects_unknown_event_source() -> None:
    """A record from an unsupported service names its eventSource."""
    payload = {"Records": [{"eventSource": "aws:codecommit", "codecommit": {}}]}
    with pytest.raises(
        SerializationError,
        match=r"^Records\[0\]\.eventSource: unsupported event source 'aws:codecommit'",
    ):
        from_lambda_event(payload)


def test_rejects_record_that_is_not_an_object() -> None:
    """Each record must be an object."""
    with pytest.raises(
        SerializationError, match=r"^Records\[1\]: expected an object, got an array$"
    ):
        from_lambda_event({"Records": [records(load("s3-put.json"))[0], []]})


def test_empty_records() -> None:
    """No records convert to no events, and back."""
    assert from_lambda_event({"Records": []}) == []
    assert to_lambda_event([]) == {"Records": []}


def test_unknown_extra_fields_are_ignored() -> None:
    """Fields this module does not know are ignored."""
    payload = load("kinesis-records.json")
    payload["Records"][0]["somethingNew"] = {"x": 1}
    payload["Records"][0]["kinesis"]["alsoNew"] = True
    payload["extra"] = "top level"
    assert from_lambda_event(payload) == from_lambda_event(load("kinesis-records.json"))


def test_mixed_services_are_refused() -> None:
    """All events of one payload must come from one service."""
    events = [*from_lambda_event(load("s3-put.json")), *from_lambda_event(load("sqs-receive.json"))]
    with pytest.raises(
        SerializationError,
        match=r"^events\[1\]: .* events\[0\] \(ObjectCreated\) comes from S3 and events\[1\] \(QueueMessage\) from SQS",
    ):
        to_lambda_event(events)


def test_unsupported_event_type_is_refused() -> None:
    """An event class without a Lambda form is refused by name."""

    @attrs.frozen
    class OrderPlaced(Event, type_name="tests.aws.OrderPlaced"):
        order_id: str

    with pytest.raises(
        SerializationError, match=r"^events\[0\]: OrderPlaced has no AWS Lambda payload form"
    ):
        to_lambda_event([OrderPlaced("o-1")])


def test_single_event_must_be_wrapped() -> None:
    """Passing one event instead of a sequence is a clear error."""
    event = QueueMessage("q", "b")
    with pytest.raises(SerializationError, match="wrap a single event in a list"):
        to_lambda_event(event)  # type: ignore[arg-type]


def test_records_keep_their_order() -> None:
    """Events come out in record order and render back in the same order."""
    events = from_lambda_event(load("sqs-receive.json"))
    ids = [record["messageId"] for record in records(to_lambda_event(events))]
    assert ids == [e.id for e in events]


def iter_samples() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every sample payload with its name."""
    for name in SAMPLES:
        yield name, load(name)


def test_sources_are_arns_or_eventbridge_sources() -> None:
    """Every converted event has a non-empty source."""
    for name, payload in iter_samples():
        for event in from_lambda_event(payload):
            assert event.source, name


# -- locally built events: rendering is a fixed point ----------------------------------

texts = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=30)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC0123456789-_.", min_size=1, max_size=20)
times = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
attribute_values = st.one_of(
    texts,
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.binary(max_size=8),
)
plain_values = st.one_of(st.none(), st.booleans(), texts, st.integers(), st.binary(max_size=8))
images = st.dictionaries(names, plain_values, max_size=4)
local_events = st.one_of(
    st.builds(
        ObjectCreated,
        names,
        texts,
        st.integers(0, 2**40),
        texts,
        version_id=st.none() | names,
        sequencer=st.none() | names,
        reason=st.sampled_from(["Put", "Post", "Copy", "CompleteMultipartUpload"]),
        time=times,
    ),
    st.builds(
        ObjectRemoved,
        names,
        texts,
        version_id=st.none() | names,
        reason=st.sampled_from(["Delete", "DeleteMarkerCreated"]),
        time=times,
    ),
    st.builds(
        TableChange,
        names,
        st.sampled_from(["INSERT", "MODIFY", "REMOVE"]),
        images,
        st.none() | images,
        st.none() | images,
        st.integers(0, 10**30),
        expired=st.booleans(),
        id=names,
        time=times,
    ),
    st.builds(
        TopicMessage,
        names,
        texts,
        st.dictionaries(names, attribute_values, max_size=4),
        st.none() | texts,
        id=names,
        time=times,
    ),
    st.builds(
        QueueMessage,
        names,
        texts,
        st.dictionaries(names, texts, max_size=3),
        st.dictionaries(names, attribute_values, max_size=4),
        st.none() | names,
        id=names,
        time=times,
    ),
    st.builds(
        LogRecord,
        names,
        texts,
        st.integers(0, 10**40),
        st.binary(max_size=32),
        st.integers(0, 10**6),
        time=times,
    ),
    st.builds(ScheduledEvent, names, times, id=names, time=times),
    st.builds(
        EventBridgeEvent,
        texts,
        st.dictionaries(names, st.one_of(texts, st.integers(), st.booleans(), st.none())),
        st.lists(names, max_size=3),
        names,
        names,
        id=names,
        time=times,
        source=names,
    ),
)


@given(local_events)
def test_rendering_a_local_event_is_a_fixed_point(event: Event) -> None:
    """For any supported event, render -> read -> render gives the same payload."""
    first = to_lambda_event([event])
    events = from_lambda_event(json.dumps(first))
    assert to_lambda_event(events) == first
    assert from_lambda_event(to_lambda_event(events)) == events


# -- malformed payloads only ever raise SerializationError ------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)


def paths_of(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path (keys and indexes) inside a JSON value."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths_of(item, (*prefix, index))


@given(st.sampled_from(SAMPLES), st.data())
def test_corrupted_payloads_raise_serialization_error(name: str, data: st.DataObject) -> None:
    """Replacing or deleting any part of a sample gives events or a SerializationError."""
    payload = load(name)
    path = data.draw(st.sampled_from([p for p in paths_of(payload) if p]))
    parent: Any = payload
    for step in path[:-1]:
        parent = parent[step]
    if isinstance(parent, dict) and data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    try:
        events = from_lambda_event(payload)
    except SerializationError:
        return
    assert from_lambda_event(to_lambda_event(events)) == events


def test_all_lists_the_public_names() -> None:
    """eventbus.aws.__all__ is sorted and matches what the package exports."""
    import eventbus.aws as aws

    public = {
        name
        for name, value in vars(aws).items()
        if not name.startswith("_") and not isinstance(value, type(aws))
    }
    assert list(aws.__all__) == sorted(aws.__all__)
    assert set(aws.__all__) == public
