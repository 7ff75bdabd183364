"""CloudEvents 1.0 JSON: round trips, the wire shape, and precise decoding errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs
import pytest

from eventbus import (
    Event,
    InvocationRecord,
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

WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


@attrs.frozen
class Address:
    street: str
    number: int


@attrs.frozen
class OrderShipped(Event, type_name="tests.OrderShipped"):
    order_id: str
    weight: float
    price: Decimal
    shipped_at: datetime
    tags: frozenset[str]
    lines: tuple[int, ...]
    address: Address
    note: str | None = None
    extra: Any = None


@attrs.frozen
class Blob(Event, type_name="tests.Blob"):
    size: int
    payload: bytes = b""
    meta: Mapping[str, Any] = attrs.field(factory=dict)


BUILT_IN_EVENTS: list[Event] = [
    Event(),
    ObjectCreated(
        "bucket",
        "photos/cat 1.jpg",
        1024,
        "d41d8cd98f00b204e9800998ecf8427e",
        version_id="v1",
        metadata={"owner": "ann"},
        content_type="image/jpeg",
        sequencer="0055AED6DCD90281E5",
        reason="Copy",
    ),
    ObjectCreated("bucket", "k", 0, "etag"),
    ObjectRemoved("bucket", "k", version_id="v2", sequencer="01", reason="DeleteMarkerCreated"),
    TableChange(
        "orders",
        "MODIFY",
        {"pk": "o-1"},
        {"pk": "o-1", "total": 5, "items": ["a", "b"]},
        {"pk": "o-1", "total": 3, "items": ["a"]},
        42,
    ),
    TableChange("orders", "REMOVE", {"pk": "o-1"}, None, {"pk": "o-1"}, 43, expired=True),
    TopicMessage(
        "alerts", "disk full", attributes={"severity": "high", "count": 3}, subject="Disk"
    ),
    TopicMessage("alerts.fifo", "m", group_id="g", dedup_id="d"),
    LogRecord("clicks", "user-7", 12345, b"\x00\xffbinary", 3),
    ScheduledEvent("nightly", datetime(2024, 1, 1, 3, 0, tzinfo=UTC)),
]


def _user_event() -> OrderShipped:
    return OrderShipped(
        "o-1",
        2.5,
        Decimal("19.99"),
        WHEN,
        frozenset({"fragile", "gift"}),
        (1, 2, 3),
        Address("Main St", 7),
        extra={"raw": b"\x01\x02", "when": WHEN, "amount": Decimal("1.10"), "ids": {1, 2}},
        source="shop",
        correlation_id="corr-1",
        causation_id="cause-1",
    )


@pytest.mark.parametrize("event", BUILT_IN_EVENTS, ids=lambda e: type(e).__name__)
def test_built_in_events_round_trip(event: Event) -> None:
    """Every built-in event decodes back to an equal event of the same class."""
    decoded = from_cloudevent(to_cloudevent(event))
    assert type(decoded) is type(event)
    assert decoded == event


@pytest.mark.parametrize("event", BUILT_IN_EVENTS, ids=lambda e: type(e).__name__)
def test_built_in_events_round_trip_through_json_text(event: Event) -> None:
    """The rendered document survives json.dumps and decodes from the text."""
    assert from_cloudevent(json.dumps(to_cloudevent(event))) == event


def test_user_event_round_trips() -> None:
    """A user event with rich field types comes back equal, through JSON text."""
    event = _user_event()
    decoded = from_cloudevent(json.dumps(to_cloudevent(event)).encode())
    assert decoded == event
    assert isinstance(decoded, OrderShipped)
    assert isinstance(decoded.extra["raw"], bytes)
    assert isinstance(decoded.extra["amount"], Decimal)


def test_document_shape() -> None:
    """The envelope maps to CloudEvents attributes and the fields to data."""
    event = Blob(3, b"abc", source="store", correlation_id="c-1", causation_id="p-1", time=WHEN)
    doc = to_cloudevent(event)
    assert doc == {
        "specversion": "1.0",
        "id": event.id,
        "source": "store",
        "type": "tests.Blob",
        "time": "2024-05-06T07:08:09.123456Z",
        "datacontenttype": "application/json",
        "correlationid": "c-1",
        "causationid": "p-1",
        "data": {"size": 3, "payload": "YWJj", "meta": {}},
    }


def test_declared_types_are_encoded_plainly() -> None:
    """Fields with declared types use plain JSON forms, without type tags."""
    data = to_cloudevent(_user_event())["data"]
    assert data["price"] == "19.99"
    assert data["shipped_at"] == "2024-05-06T07:08:09.123456Z"
    assert sorted(data["tags"]) == ["fragile", "gift"]
    assert data["lines"] == [1, 2, 3]
    assert data["address"] == {"street": "Main St", "number": 7}


def test_built_in_event_fields_are_encoded_plainly() -> None:
    """Built-in events encode bytes as base64 text and datetimes as RFC 3339 text."""
    log = to_cloudevent(LogRecord("l", "k", 1, b"abc"))["data"]
    assert log["data"] == "YWJj"
    fire = to_cloudevent(ScheduledEvent("r", datetime(2024, 1, 1, tzinfo=UTC)))["data"]
    assert fire["scheduled_time"] == "2024-01-01T00:00:00Z"


def test_empty_source_is_written_as_slash_and_read_back_empty() -> None:
    """CloudEvents needs a non-empty source: '' is written as '/' and decoded as ''."""
    doc = to_cloudevent(Blob(1))
    assert doc["source"] == "/"
    assert from_cloudevent(doc).source == ""


def test_absent_correlation_ids_are_omitted() -> None:
    """correlationid and causationid are left out when unset."""
    doc = to_cloudevent(Blob(1))
    assert "correlationid" not in doc
    assert "causationid" not in doc


def test_unknown_extra_data_fields_are_ignored() -> None:
    """A newer writer's extra data field does not break an older reader."""
    doc = to_cloudevent(Blob(1))
    doc["data"]["added_later"] = True
    assert from_cloudevent(doc) == Blob(1, id=doc["id"], time=from_cloudevent(doc).time)


def test_unknown_type_is_a_serialization_error() -> None:
    """A type that names no registered event class is refused."""
    doc = to_cloudevent(Blob(1))
    doc["type"] = "nobody.Defined"
    with pytest.raises(SerializationError, match=r"unknown event type 'nobody\.Defined'"):
        from_cloudevent(doc)


def test_non_event_cannot_be_encoded() -> None:
    """to_cloudevent() takes Event instances only."""
    with pytest.raises(SerializationError, match="takes an Event instance, got dict"):
        to_cloudevent({"id": "x"})  # type: ignore[arg-type]


def test_unencodable_value_names_the_field() -> None:
    """A value JSON cannot carry is refused, naming the field."""
    with pytest.raises(SerializationError, match=r"^extra: object values cannot be serialized"):
        to_cloudevent(attrs.evolve(_user_event(), extra=object()))


def test_non_finite_float_names_the_field() -> None:
    """NaN and infinities are refused, naming the field."""
    with pytest.raises(SerializationError, match=r"^weight: nan cannot be represented"):
        to_cloudevent(attrs.evolve(_user_event(), weight=float("nan")))


def _doc(**changes: Any) -> dict[str, Any]:
    doc = to_cloudevent(Blob(1, b"x"))
    for key, value in changes.items():
        if value is ...:
            del doc[key]
        else:
            doc[key] = value
    return doc


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "CloudEvent is not valid JSON"),
        ("[1, 2]", "a CloudEvent must be a JSON object, got list"),
        (_doc(specversion="0.3"), r"specversion: expected '1\.0', got '0\.3'"),
        (_doc(specversion=...), "specversion: expected '1.0', got None"),
        (_doc(id=...), "id: a CloudEvent needs a non-empty string"),
        (_doc(id=7), "id: a CloudEvent needs a non-empty string"),
        (_doc(source=""), "source: a CloudEvent needs a non-empty string"),
        (_doc(type=...), "type: a CloudEvent needs a non-empty string"),
        (_doc(data=[1]), "data: expected a JSON object for tests.Blob, got list"),
        (_doc(time="yesterday"), "time: 'yesterday' is not an RFC 3339 timestamp"),
        (_doc(time="2024-01-01T00:00:00"), "time: .* has no UTC offset"),
        (_doc(time=5), "time: expected an RFC 3339 timestamp, got int"),
        (_doc(correlationid=5), "correlationid: expected a string, got int"),
        (_doc(data={"size": "many"}), r"data\.size: invalid literal for int"),
        (_doc(data={"size": 1.5}), r"data\.size: expected an integer, got float"),
        (_doc(data={"size": 1, "payload": "***"}), r"data\.payload: '\*\*\*' is not valid base64"),
        (_doc(data={"size": 1, "meta": [1]}), r"data\.meta: expected an object, got list"),
        (_doc(data={}), "data: cannot build tests.Blob"),
    ],
)
def test_bad_documents_name_the_field(document: Any, message: str) -> None:
    """A malformed document raises SerializationError naming what is wrong."""
    with pytest.raises(SerializationError, match=message):
        from_cloudevent(document)


def test_nested_field_errors_name_the_path() -> None:
    """An error inside a nested object names its full path."""
    doc = to_cloudevent(_user_event())
    doc["data"]["address"]["number"] = [7]
    with pytest.raises(SerializationError, match=r"data\.address\.number: expected an integer"):
        from_cloudevent(doc)


def test_invalid_built_in_field_value_is_a_serialization_error() -> None:
    """A value outside a built-in event's declared literals is a SerializationError naming the field."""
    doc = to_cloudevent(BUILT_IN_EVENTS[4])
    doc["data"]["op"] = "UPSERT"
    with pytest.raises(SerializationError, match=r'^data\.op: expected one of "INSERT"'):
        from_cloudevent(doc)


def test_serialization_error_is_a_value_error() -> None:
    """SerializationError is also a ValueError, for code that does not know eventbus."""
    with pytest.raises(ValueError, match="not valid JSON"):
        from_cloudevent("{")


@pytest.mark.parametrize("outcome", [[1], "Bogus", True, None, {"a": 1}, 1])
def test_literal_fields_accept_only_their_values(outcome: object) -> None:
    """A Literal field refuses any other value with a SerializationError naming the field."""
    record = InvocationRecord(_LiteralProbe(1), "s", "Success")
    document = to_cloudevent(record)
    document["data"]["outcome"] = outcome
    with pytest.raises(SerializationError, match=r"^data\.outcome: expected one of"):
        from_cloudevent(document)


def test_literal_fields_round_trip() -> None:
    """Both declared outcomes of an InvocationRecord survive a round trip."""
    for outcome in ("Success", "Failure"):
        record = InvocationRecord(_LiteralProbe(2), "s", outcome)  # type: ignore[arg-type]
        assert from_cloudevent(to_cloudevent(record)) == record


@attrs.frozen
class _LiteralProbe(Event, type_name="tests.serialization.LiteralProbe"):
    n: int
