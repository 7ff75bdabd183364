"""Issue 15 as an attacker calls it: hostile documents and events raise only named errors, fast."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import (
    Bus,
    Event,
    EventBusError,
    InvocationRecord,
    SerializationError,
    from_cloudevent,
    to_cloudevent,
)


@attrs.frozen
class Doc(Event, type_name="acceptance.i15.Doc"):
    body: Any = None


def _doc(**overrides: Any) -> dict[str, Any]:
    doc = to_cloudevent(Doc(body={"a": 1}))
    doc.update(overrides)
    return doc


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    "document",
    [
        _doc(time="0001-01-01T00:00:00+01:00"),
        _doc(time="9999-12-31T23:59:59-01:00"),
        _doc(time="not a time"),
        _doc(time=5),
        _doc(data={"body": {"$map": 5}}),
        _doc(data={"body": {"$datetime": "x"}}),
        _doc(data={"body": {"$decimal": "1e999999999"}}),
        _doc(data={"body": {"$bytes": "!!!"}}),
        _doc(data={"body": {"$set": 5}}),
        _doc(data={"body": {"$event": {}}}),
        _doc(data={"body": _nested(5000)}),
        _doc(data={"body": 10**5000}),
        _doc(data=[1, 2]),
        _doc(data="text"),
        _doc(type="no.such.Type"),
        _doc(type=5),
        _doc(specversion="0.3"),
        _doc(id=""),
        _doc(id=None),
        _doc(source=""),
        {},
        {"specversion": "1.0"},
    ],
)
def test_hostile_cloudevent_documents_raise_serialization_error(document: dict[str, Any]) -> None:
    """Hostile CloudEvent documents raise SerializationError, never a builtin crash."""
    with pytest.raises(SerializationError):
        from_cloudevent(document)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 5000 + "]" * 5000,
        '{"a": ' + "9" * 5000 + "}",
        "x" * (2 * 1024 * 1024),
        "\ud800",
        "",
        "null",
        "NaN",
        '{"specversion": "1.0", "id": "1", "source": "/", "type": "t", "data": Infinity}',
    ],
)
def test_hostile_cloudevent_text_raises_serialization_error(text: str) -> None:
    """Hostile JSON text (deep, huge numbers, oversized, invalid) raises SerializationError."""
    with pytest.raises(SerializationError):
        from_cloudevent(text)
    with pytest.raises(SerializationError):
        from_cloudevent(text.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize("document", [None, 5, [1], object(), 1.5])
def test_wrong_python_type_is_named(document: Any) -> None:
    """A document that is not a mapping, str or bytes raises SerializationError or TypeError."""
    with pytest.raises((SerializationError, TypeError)):
        from_cloudevent(document)


_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["$map", "$set", "$bytes", "$decimal", "$datetime", "$event"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=1000)
@given(
    field=st.sampled_from(["id", "time", "source", "type", "data", "specversion", "subject"]),
    value=_values,
)
def test_any_field_value_reads_or_raises_serialization_error(field: str, value: Any) -> None:
    """Any JSON value in any CloudEvent field reads or raises SerializationError, fast."""
    try:
        event = from_cloudevent(_doc(**{field: value}))
    except SerializationError:
        return
    assert from_cloudevent(json.loads(json.dumps(to_cloudevent(event)))) is not None


@settings(max_examples=200, deadline=1000)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_read_or_raise_serialization_error(raw: bytes) -> None:
    """Arbitrary bytes read or raise SerializationError."""
    with contextlib.suppress(SerializationError):
        from_cloudevent(raw)


async def test_publishing_a_deeply_nested_event_is_a_named_error() -> None:
    """An event nested 3,000 deep is routed or refused by name, never a RecursionError."""
    received: list[Doc] = []

    async def handle(event: Doc) -> None:
        received.append(event)

    async with Bus() as bus:
        bus.subscribe(Doc, handle, name="h", where={"body": {"k": [{"exists": True}]}})
        refused = False
        try:
            await bus.publish(Doc(body=_nested(3000)))
        except EventBusError:
            refused = True
        await bus.publish(Doc(body={"k": 1}))
        await bus.drain()
    # exists matches leaves only (as in EventBridge): the deep event is never delivered
    assert len(received) == 1
    assert isinstance(refused, bool)


def test_invocation_record_refuses_a_bad_outcome() -> None:
    """InvocationRecord decoded with outcome=[1] is refused with SerializationError."""
    from eventbus import to_cloudevent as enc

    fields = attrs.fields_dict(InvocationRecord)
    assert "outcome" in fields
    sample = {
        name: None
        for name, f in fields.items()
        if f.default is attrs.NOTHING and f.init and name != "outcome"
    }
    doc = {
        "specversion": "1.0",
        "id": "x",
        "source": "/t",
        "type": InvocationRecord.event_type(),
        "data": {**sample, "outcome": [1]},
    }
    del enc
    with pytest.raises(SerializationError):
        from_cloudevent(doc)


async def test_accounting_identity_holds_under_failures() -> None:
    """accepted == succeeded + dead_lettered + in_flight + queued + waiting_retry, at the end."""
    from eventbus import NoRetry

    async def flaky(event: Doc) -> None:
        if event.body % 3 == 0:
            raise RuntimeError("x")

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Doc, flaky, name="f", concurrency=4)
        for i in range(300):
            await bus.publish(Doc(body=i))
        await bus.drain()
        m = bus.metrics()["f"]
    assert m.accepted == 300
    assert m.accepted == m.succeeded + m.dead_lettered + m.in_flight + m.queued + m.waiting_retry
    assert m.dead_lettered == 100


@pytest.mark.parametrize(
    "value",
    [float("nan"), float("inf"), {1: 2}, {"a": object()}, {("t",): 1}, "HUGE", _nested(100)],
    ids=["nan", "inf", "int-key", "object", "tuple-key", "huge-int", "deep"],
)
def test_to_cloudevent_refuses_what_json_cannot_carry(value: Any) -> None:
    """to_cloudevent raises SerializationError for NaN, odd keys, objects, huge ints, deep data."""
    if value == "HUGE":
        value = 10**5000
    with pytest.raises(SerializationError):
        to_cloudevent(Doc(body=value))


@pytest.mark.parametrize(
    "value", [b"\xff\x00", "\ud800", {"$map": 1}, {"$bytes": "x"}, {"$set": [1]}, [None] * 3, ""]
)
def test_look_alike_values_round_trip_exactly(value: Any) -> None:
    """Bytes, lone surrogates and dicts that look like the codec's tags round-trip exactly."""
    back = from_cloudevent(json.dumps(to_cloudevent(Doc(body=value))))
    assert back.body == value
