"""The bridges' shared decoding of broker messages: it never raises."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import Event, UndecodableEvent, to_cloudevent
from eventbus.bridges._common import decode_message


@attrs.frozen
class Stamp(Event, type_name="tests.bridges.common.Stamp"):
    when: datetime
    extra: object = None


GOOD = Stamp(datetime(2024, 1, 2, 3, 4, 5).astimezone())

POISON = {
    "time overflows": json.dumps(dict(to_cloudevent(GOOD), time="0001-01-01T00:00:00+01:00")),
    "$map of a number": json.dumps(
        dict(to_cloudevent(GOOD), data={"when": "2024-01-01T00:00:00Z", "extra": {"$map": 5}})
    ),
    "nested 5,000 deep": "[" * 5000 + "]" * 5000,
    "data nested 5,000 deep": json.dumps(dict(to_cloudevent(GOOD), data=None))[:-1].replace(
        '"data":null', '"data":' + '{"a":' * 5000 + "1" + "}" * 5000
    )
    + "}",
    "not UTF-8": b'{"specversion": "1.0", "id": "\xff\xfe"}',
    "not JSON": b"\x00 this is not JSON",
    "a JSON array": "[1, 2, 3]",
    "bad field": json.dumps(dict(to_cloudevent(GOOD), data={"when": 5})),
}


def decode(data: object) -> Event | None:
    return decode_message(set(), "group", data, "test")


def test_a_good_message_decodes_to_its_event() -> None:
    """A valid CloudEvent comes back as the event that was sent."""
    assert decode(json.dumps(to_cloudevent(GOOD)).encode()) == GOOD


@pytest.mark.parametrize("name", sorted(POISON))
def test_a_poison_message_becomes_an_undecodable_event(name: str) -> None:
    """Any decoding failure yields an UndecodableEvent holding the message and the reason."""
    data = POISON[name]
    event = decode(data)
    assert isinstance(event, UndecodableEvent)
    assert event.reason
    if isinstance(data, str):
        assert event.document == data


def test_the_undecodable_event_keeps_the_message_id() -> None:
    """The envelope of a poison message that is still a JSON object is kept where valid."""
    event = decode(POISON["time overflows"])
    assert isinstance(event, UndecodableEvent)
    assert event.id == GOOD.id
    assert event.event_type_name == Stamp.event_type()
    assert "out of range" in event.reason


def test_bytes_that_are_not_utf8_are_kept_escaped() -> None:
    """A message that is not UTF-8 is kept with backslash escapes, and the reason says so."""
    event = decode(POISON["not UTF-8"])
    assert isinstance(event, UndecodableEvent)
    assert "\\xff" in event.document
    assert "not UTF-8" in event.reason


def test_an_unknown_event_type_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    """Another service's event type (not registered here) is skipped with one warning."""
    document = json.dumps(dict(to_cloudevent(GOOD), type="tests.bridges.common.Nowhere"))
    warned: set[tuple[str, str]] = set()
    with caplog.at_level(logging.DEBUG, logger="eventbus.bridges"):
        assert decode_message(warned, "g", document, "test") is None
        assert decode_message(warned, "g", document, "test") is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1


@settings(deadline=2000, max_examples=200)
@given(st.binary(max_size=512) | st.text(max_size=512))
def test_arbitrary_bytes_never_raise(data: bytes | str) -> None:
    """Whatever arrives, decoding returns an event, an UndecodableEvent or None."""
    result = decode(data)
    assert result is None or isinstance(result, Event)


def test_where_is_asked_only_when_a_message_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A callable *where* costs nothing for good messages and names the bad ones in the log."""
    asked: list[str] = []

    def where() -> str:
        asked.append("asked")
        return "queue q entry 7"

    assert decode_message(set(), "g", json.dumps(to_cloudevent(GOOD)), where) == GOOD
    assert asked == []
    with caplog.at_level(logging.ERROR, logger="eventbus.bridges"):
        assert isinstance(decode_message(set(), "g", POISON["not JSON"], where), UndecodableEvent)
    assert asked == ["asked"]
    assert "queue q entry 7" in caplog.text
