"""The :class:`Event` envelope, the registry of event types by stable name, and
the built-in events the core itself must know: :class:`LogRecord` (what a
stream source delivers) and :class:`ScheduledEvent` (what ``bus.schedule``
publishes)."""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from typing import Any, ClassVar, get_type_hints

import attrs

from ._exceptions import SerializationError

__all__ = ["Event", "LogRecord", "ScheduledEvent", "event_class", "registered_event_types"]

_REGISTRY: dict[str, type[Event]] = {}


def _new_id() -> str:
    """A random (version 4) UUID as 32 hex digits, like ``uuid.uuid4().hex`` but 3x faster."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40
    raw[8] = (raw[8] & 0x3F) | 0x80
    return raw.hex()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware_utc(value: datetime) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"Event.time must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(
            "Event.time must be timezone-aware; pass datetime.now(UTC) or value.replace(tzinfo=UTC)"
        )
    return value.astimezone(UTC)


@attrs.frozen(kw_only=True)
class Event:
    """Base class of every event: an immutable envelope around the fields you declare.

    Subclass it with ``@attrs.frozen``; your own fields may be positional::

        @attrs.frozen
        class OrderPlaced(Event):
            order_id: str
            total: int = 0

        OrderPlaced("o-1", total=3, source="shop")

    Envelope fields (all keyword-only, all defaulted):

    * ``id`` -- unique id, a uuid4 hex string by default;
    * ``time`` -- an aware datetime, normalised to UTC; now by default;
    * ``source`` -- where the event came from (``""`` by default);
    * ``correlation_id`` / ``causation_id`` -- set by ``Context.publish`` so a
      chain of follow-up events can be traced to the event that started it;
    * ``traceparent`` / ``tracestate`` -- W3C trace context, stamped by
      tracing hooks such as :func:`eventbus.otel.instrument` (``None``
      otherwise) and carried through CloudEvents. *Added in 0.2.*

    Every subclass has a stable type name, :meth:`event_type`, used on the
    wire (CloudEvents ``type``) and to decode events back into their class.
    The default is ``module.QualName``; override it with a class keyword,
    ``class OrderPlaced(Event, type_name="shop.OrderPlaced")``, so that the
    name survives moving the class.
    """

    id: str = attrs.field(factory=_new_id)
    time: datetime = attrs.field(factory=_now, converter=_aware_utc)
    source: str = ""
    correlation_id: str | None = None
    causation_id: str | None = None
    traceparent: str | None = None
    tracestate: str | None = None

    # Stable even though the package re-exports Event with __module__ = "eventbus".
    __event_type_name__: ClassVar[str | None] = "eventbus.Event"
    # The module that defined the class, where its annotations resolve; the
    # package re-exports some classes under __module__ = "eventbus".
    __event_module__: ClassVar[str] = __name__

    def __init_subclass__(cls, *, type_name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.__event_module__ = cls.__module__
        if type_name is not None:
            if not type_name or not isinstance(type_name, str):
                raise TypeError(f"{cls.__qualname__}: type_name must be a non-empty string")
            cls.__event_type_name__ = type_name
        elif "__event_type_name__" not in cls.__dict__:
            # attrs rebuilds slotted classes and copies the class dict; a name
            # inherited from a parent must not leak onto the child.
            cls.__event_type_name__ = None
        _register(cls)

    @classmethod
    def event_type(cls) -> str:
        """The stable type name of this event class (``module.QualName`` by default)."""
        return cls.__event_type_name__ or f"{cls.__module__}.{cls.__qualname__}"


def _register(cls: type[Event]) -> None:
    name = cls.event_type()
    previous = _REGISTRY.get(name)
    if (
        previous is not None
        and previous is not cls
        and (previous.__module__, previous.__qualname__) != (cls.__module__, cls.__qualname__)
    ):
        raise TypeError(
            f"event type name {name!r} of {cls.__module__}.{cls.__qualname__} is already "
            f"used by {previous.__module__}.{previous.__qualname__}; "
            "give one of them another type_name=..."
        )
    # A redefinition of the same class (attrs' slotted rebuild, a reloaded
    # module, a class defined inside a function called twice) replaces the old one.
    _REGISTRY[name] = cls


_REGISTRY[Event.event_type()] = Event

# A subclass that declares fields but lacks @attrs.frozen has no __init__ of its
# own and falls back to Event's, which takes keywords only: without this check,
# OrderPlaced("o-1") fails with "Event.__init__() takes 1 positional argument
# but 2 were given". Decorated subclasses have their own __init__ and never
# come here, so the check costs them nothing.
_attrs_event_init = Event.__init__


def _event_init(self: Event, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    if cls is not Event and "__attrs_attrs__" not in cls.__dict__:
        import inspect  # only on this path: the package does not import inspect at start

        fields = [
            name
            for klass in cls.__mro__
            if "__attrs_attrs__" not in klass.__dict__
            for name, hint in inspect.get_annotations(klass).items()
            if "ClassVar" not in str(hint)
        ]
        if fields:
            label = cls.__qualname__
            raise TypeError(
                f"{label} declares field(s) {', '.join(fields)} but is not an attrs class, so "
                f"they are not fields: put '@attrs.frozen' on the line above "
                f"'class {label}(...)' (every Event subclass that declares fields needs it)"
            )
    _attrs_event_init(self, *args, **kwargs)


functools.update_wrapper(_event_init, _attrs_event_init)
Event.__init__ = _event_init  # type: ignore[method-assign]

# The package re-exports Event with __module__ = "eventbus", where the names in
# its (string) annotations are undefined: resolve them now, so that
# typing.get_type_hints() works on every event class.
Event.__annotations__ = get_type_hints(Event)


def event_class(type_name: str) -> type[Event]:
    """Return the registered event class whose :meth:`Event.event_type` is *type_name*.

    Raises:
        SerializationError: no class of that name has been defined (imported) yet.
    """
    try:
        return _REGISTRY[type_name]
    except KeyError:
        raise SerializationError(
            f"unknown event type {type_name!r}: no Event subclass with that type name "
            "is defined in this process; import the module that defines it before decoding"
        ) from None


def registered_event_types() -> dict[str, type[Event]]:
    """A snapshot of every registered event type, by type name."""
    return dict(_REGISTRY)


# -- built-in events the core must know -------------------------------------------------


@attrs.frozen
class LogRecord(Event, type_name="eventbus.LogRecord"):
    """A record appended to a partitioned log (a Kinesis record).

    A record appended to a :class:`~eventbus.Log` has the stable id
    ``<log>:shardId-<partition, 12 digits>:<sequence number>``, the bus
    clock's time of the append, and ``source`` ``eventbus.logs/<log>``.

    Attributes:
        log: the log (stream) name.
        partition_key: the key that chose the partition; order is kept per key.
        sequence_number: increasing within the partition.
        data: the record's payload, as bytes.
        partition: the partition (shard) index.
    """

    log: str
    partition_key: str
    sequence_number: int
    data: bytes
    partition: int = 0


@attrs.frozen
class ScheduledEvent(Event, type_name="eventbus.ScheduledEvent"):
    """A schedule fired (an EventBridge ``Scheduled Event``).

    Attributes:
        rule: the schedule's name.
        scheduled_time: when the fire was due (aware, UTC); ``time`` is when
            it was actually emitted, which can be later after a pause.
    """

    rule: str
    scheduled_time: datetime
