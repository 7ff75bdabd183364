"""The transports' CloudEvent writer: the same text as the general path, for any event.

``cloudevent_json`` writes the envelope straight to text and formats the
clock reading of a new event without building its datetime; these tests
hold it to ``json`` applied to :func:`to_cloudevent` for every envelope a
user can give, and the helpers under it to the properties they stand in for.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import attrs
import hypothesis.strategies as st
import pytest
from hypothesis import given

from eventbus import Event, SerializationError, from_cloudevent, to_cloudevent
from eventbus._events import _SET_TIME, optional_envelope, time_text
from eventbus._serialization import _COMPACT, _DECODER, _parse_json, cloudevent_json


@attrs.frozen
class Parcel(Event, type_name="tests.fast.Parcel"):
    label: str
    weight: float = 0.0
    tags: list[str] = attrs.field(factory=list)


@attrs.frozen
class Converted(Event, type_name="tests.fast.Converted"):
    count: int = attrs.field(converter=int)  # keeps attrs' own __init__


texts = st.text(max_size=20)  # any code point: quotes, controls, surrogates, non-ASCII
optional = st.none() | texts
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 1, 1), timezones=zones
)
envelopes = st.fixed_dictionaries(
    {},
    optional={
        "id": texts.filter(bool),
        "time": moments,
        "source": texts,
        "correlation_id": optional,
        "causation_id": optional,
        "traceparent": optional,
        "tracestate": optional,
    },
)


def general(event: Event) -> str:
    return _COMPACT.encode(to_cloudevent(event))


@given(envelope=envelopes, label=texts, weight=st.floats(allow_nan=False, allow_infinity=False))
def test_text_equals_the_general_path_for_any_envelope(
    envelope: dict[str, object], label: str, weight: float
) -> None:
    """Every envelope a user can give, the writer's text is byte for byte the general one."""
    event = Parcel(label, weight, ["a", label], **envelope)  # type: ignore[arg-type]
    assert cloudevent_json(event) == general(event)


@given(envelope=envelopes)
def test_text_equals_the_general_path_with_attrs_init(envelope: dict[str, object]) -> None:
    """Classes that keep attrs' ``__init__`` (a converter) write the same text too."""
    event = Converted("7", **envelope)  # type: ignore[arg-type]
    assert cloudevent_json(event) == general(event)


def test_new_event_round_trips_with_its_time_and_id() -> None:
    """A new event's text, read back, has the time and id the event reports."""
    event = Parcel("box")
    back = from_cloudevent(cloudevent_json(event))
    assert (back.id, back.time, back) == (event.id, event.time, event)


def test_odd_envelope_values_take_the_general_path() -> None:
    """A non-string envelope value (never typed so, but not refused) is written as json would."""
    event = Parcel("box", correlation_id=5)  # type: ignore[arg-type]
    assert cloudevent_json(event) == general(event)
    assert '"correlationid":5' in cloudevent_json(event)


@given(st.integers(min_value=0, max_value=253_402_300_799_999_999_999))
def test_time_text_of_a_clock_reading_is_what_isoformat_writes(stamp: int) -> None:
    """Any clock reading (nanoseconds up to the year 9999) formats as its datetime would."""
    event = Parcel("box")
    _SET_TIME(event, stamp)  # what the fast __init__ stores
    text = time_text(event)
    assert text == event.time.isoformat().replace("+00:00", "Z")
    assert time_text(event) == text  # the datetime, once read, formats the same


def test_time_text_on_whole_seconds_has_no_fraction() -> None:
    """As ``isoformat()``: no ``.000000`` on a whole second."""
    event = Parcel("box")
    _SET_TIME(event, 1_700_000_000 * 10**9)
    assert time_text(event) == "2023-11-14T22:13:20Z"
    _SET_TIME(event, 1_700_000_000 * 10**9 + 1_000)
    assert time_text(event) == "2023-11-14T22:13:20.000001Z"


def properties(event: Event) -> tuple[object, ...]:
    return (
        event.source,
        event.correlation_id,
        event.causation_id,
        event.traceparent,
        event.tracestate,
    )


@given(envelope=envelopes)
def test_optional_envelope_is_what_the_properties_read(envelope: dict[str, object]) -> None:
    """Given or not, read before or not: the helper and the properties agree."""
    fresh = Parcel("box", **envelope)  # type: ignore[arg-type]
    expected = properties(Parcel("box", **envelope))  # type: ignore[arg-type]
    assert optional_envelope(fresh) == expected
    assert properties(fresh) == expected
    assert optional_envelope(fresh) == expected


def test_optional_field_stored_after_construction_is_seen() -> None:
    """Setting one optional field on a new event (as copying does) is not missed."""
    event = Parcel("box")
    object.__setattr__(event, "correlation_id", "c-1")
    assert optional_envelope(event) == ("", "c-1", None, None, None)
    assert cloudevent_json(event) == general(event)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
paddings = st.sampled_from(["", " ", "\n", " \t"])


@given(value=json_values, before=paddings, after=paddings, tail=st.sampled_from(["", "x", "{}"]))
def test_parse_takes_what_json_takes_and_refuses_what_it_refuses(
    value: object, before: str, after: str, tail: str
) -> None:
    """Scanning the text directly changes nothing: whitespace, extra data, errors as json's."""
    text = before + json.dumps(value) + after + tail
    try:
        expected = _DECODER.decode(text)
    except ValueError:
        with pytest.raises(SerializationError, match="not valid JSON"):
            _parse_json(text)
    else:
        assert _parse_json(text) == expected
