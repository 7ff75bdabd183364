"""The Event envelope: defaults, validation, immutability and type names."""

from __future__ import annotations

import typing
import uuid
from datetime import UTC, datetime, timedelta, timezone

import attrs
import pytest

import eventbus
from eventbus import Event
from eventbus._events import event_class, registered_event_types


@attrs.frozen
class OrderPlaced(Event):
    order_id: str
    total: int = 0


@attrs.frozen
class Renamed(Event, type_name="shop.Renamed"):
    value: int = 0


@attrs.frozen
class RenamedChild(Renamed):
    extra: str = ""


def test_id_defaults_to_uuid4_hex() -> None:
    """A new event's id is a version-4 UUID written as 32 hex digits."""
    event = OrderPlaced("o-1")
    assert len(event.id) == 32
    assert uuid.UUID(hex=event.id).version == 4
    assert uuid.UUID(hex=event.id).hex == event.id


def test_ids_are_unique() -> None:
    """Every new event gets its own id."""
    assert len({OrderPlaced("o").id for _ in range(1000)}) == 1000


def test_time_defaults_to_aware_utc_now() -> None:
    """The default time is the current time, timezone-aware, in UTC."""
    before = datetime.now(UTC)
    event = OrderPlaced("o-1")
    after = datetime.now(UTC)
    assert event.time.tzinfo is not None
    assert event.time.utcoffset() == timedelta(0)
    assert before <= event.time <= after


def test_envelope_defaults() -> None:
    """source is empty and the correlation and causation ids are None by default."""
    event = OrderPlaced("o-1")
    assert event.source == ""
    assert event.correlation_id is None
    assert event.causation_id is None


def test_aware_time_is_normalised_to_utc() -> None:
    """An aware time in another zone is stored as the same instant in UTC."""
    paris = timezone(timedelta(hours=2))
    event = OrderPlaced("o-1", time=datetime(2024, 6, 1, 14, 0, tzinfo=paris))
    assert event.time == datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    assert event.time.tzinfo is UTC


def test_naive_time_is_rejected() -> None:
    """A naive datetime is refused with a message saying how to fix it."""
    with pytest.raises(ValueError, match="must be timezone-aware"):
        OrderPlaced("o-1", time=datetime(2024, 1, 1))


def test_non_datetime_time_is_rejected() -> None:
    """A time that is not a datetime is a TypeError."""
    with pytest.raises(TypeError, match=r"Event\.time must be a datetime, got str"):
        OrderPlaced("o-1", time="2024-01-01T00:00:00Z")  # type: ignore[arg-type]


def test_events_are_frozen() -> None:
    """Assigning to any field of an event fails."""
    event = OrderPlaced("o-1")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.order_id = "o-2"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.source = "elsewhere"  # type: ignore[misc]


def test_events_are_slotted() -> None:
    """Events have no instance __dict__ (attrs slotted classes)."""
    event = OrderPlaced("o-1")
    assert not hasattr(event, "__dict__")
    assert "__slots__" in OrderPlaced.__dict__


def test_user_fields_may_be_positional() -> None:
    """A subclass's own fields can be passed positionally."""
    event = OrderPlaced("o-1", 5)
    assert (event.order_id, event.total) == ("o-1", 5)


def test_envelope_fields_are_keyword_only() -> None:
    """Envelope fields cannot be passed positionally, on the base or on a subclass."""
    with pytest.raises(TypeError):
        Event("some-id")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        OrderPlaced("o-1", 5, "some-id")  # type: ignore[call-arg]
    event = OrderPlaced("o-1", id="abc", source="shop", correlation_id="c", causation_id="d")
    assert (event.id, event.source, event.correlation_id, event.causation_id) == (
        "abc",
        "shop",
        "c",
        "d",
    )


def test_events_compare_by_value() -> None:
    """Two events with equal fields, envelope included, are equal."""
    when = datetime(2024, 1, 1, tzinfo=UTC)
    assert OrderPlaced("o", id="x", time=when) == OrderPlaced("o", id="x", time=when)
    assert OrderPlaced("o", id="x", time=when) != OrderPlaced("o", id="y", time=when)


def test_event_type_defaults_to_module_and_qualname() -> None:
    """Without type_name, event_type() is 'module.QualName'."""
    assert OrderPlaced.event_type() == f"{OrderPlaced.__module__}.OrderPlaced"


def test_type_name_overrides_event_type() -> None:
    """The type_name class keyword sets a stable event_type()."""
    assert Renamed.event_type() == "shop.Renamed"
    assert Renamed(3).event_type() == "shop.Renamed"


def test_type_name_is_not_inherited() -> None:
    """A subclass of a renamed event gets its own default type name."""
    assert RenamedChild.event_type() == f"{RenamedChild.__module__}.RenamedChild"


def test_event_classes_are_registered_by_type_name() -> None:
    """Defining an event class registers it under its type name."""
    assert event_class("shop.Renamed") is Renamed
    assert registered_event_types()[OrderPlaced.event_type()] is OrderPlaced


def test_base_event_type_name_is_registered() -> None:
    """The base Event's own type name resolves back to Event."""
    assert event_class(Event.event_type()) is Event


def test_type_hints_of_user_events_resolve() -> None:
    """typing.get_type_hints() works on user events, envelope fields included."""
    hints = typing.get_type_hints(OrderPlaced)
    assert hints["order_id"] is str
    assert hints["total"] is int
    assert hints["time"] is datetime


def test_duplicate_type_name_is_rejected() -> None:
    """Two different classes may not share a type name."""
    with pytest.raises(TypeError, match=r"event type name 'shop\.Renamed' .* is already used"):

        @attrs.frozen
        class Impostor(Event, type_name="shop.Renamed"):
            pass


def test_empty_type_name_is_rejected() -> None:
    """type_name must be a non-empty string."""
    with pytest.raises(TypeError, match="type_name must be a non-empty string"):

        class Nameless(Event, type_name=""):
            pass


@pytest.mark.parametrize(
    "cls",
    [
        eventbus.ObjectCreated,
        eventbus.ObjectRemoved,
        eventbus.TableChange,
        eventbus.TopicMessage,
        eventbus.LogRecord,
        eventbus.ScheduledEvent,
    ],
)
def test_builtin_event_annotations_resolve(cls: type[eventbus.Event]) -> None:
    """typing.get_type_hints works on every built-in event (patterns and the codec rely on it)."""
    hints = typing.get_type_hints(cls)
    assert set(attrs.fields_dict(cls)) <= set(hints)
