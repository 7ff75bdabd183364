"""The :class:`Event` envelope, the registry of event types by stable name, and
the built-in events the core itself must know: :class:`LogRecord` (what a
stream source delivers) and :class:`ScheduledEvent` (what ``bus.schedule``
publishes)."""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
import threading
import time as _time
import types
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Final, cast, get_type_hints

import attrs

from ._exceptions import SerializationError

__all__ = ["Event", "LogRecord", "ScheduledEvent", "event_class", "registered_event_types"]

_REGISTRY: dict[str, type[Event]] = {}


# Ids are random version 4 UUIDs (32 hex digits, as ``uuid.uuid4().hex``), made
# _ID_BATCH at a time: SHAKE-256 keyed with 32 bytes from os.urandom and a
# counter, so they are unique across processes and not guessable from a
# neighbour, at a fraction of uuid4's cost per event. A forked child draws a
# new key and drops the batch: it must not hand out its parent's ids.
_ID_BATCH: Final = 256
_ID_MASK: Final = int.from_bytes(bytes([0xFF] * 6 + [0x0F, 0xFF, 0x3F] + [0xFF] * 7) * _ID_BATCH)
_ID_BITS: Final = int.from_bytes(bytes([0] * 6 + [0x40, 0, 0x80] + [0] * 7) * _ID_BATCH)
_ids: list[str] = []
_id_lock = threading.Lock()
_id_key = [os.urandom(32)]
_id_batches = itertools.count()


def _refill_ids() -> None:
    seed = _id_key[0] + next(_id_batches).to_bytes(8)
    stream = hashlib.shake_256(seed).digest(16 * _ID_BATCH)
    text = ((int.from_bytes(stream) & _ID_MASK) | _ID_BITS).to_bytes(16 * _ID_BATCH).hex()
    _ids.extend([text[i : i + 32] for i in range(0, 32 * _ID_BATCH, 32)])


def _new_id() -> str:
    """A random (version 4) UUID as 32 hex digits, like ``uuid.uuid4().hex``."""
    try:
        return _ids.pop()
    except IndexError:
        _refill_ids()
        return _ids.pop()


def _rekey_ids() -> None:
    global _id_lock
    _ids.clear()
    _id_key[0] = os.urandom(32)
    _id_lock = threading.Lock()  # another thread may have held it at the fork


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_rekey_ids)


def _now() -> datetime:
    return datetime.now(UTC)


def _stamp() -> float:
    """Now as a timestamp floored to the microsecond (``datetime.now()`` floors too).

    ``time.time()`` would be rounded to the nearest microsecond on reading,
    so an event's time could lie up to half a microsecond after a clock
    read taken once it was built.
    """
    return _time.time_ns() // 1000 / 1e6


def _time_in(value: object) -> datetime:
    """``Event(time=...)``: check and normalise a given time.

    A float is the default's timestamp, kept as it is until first read.
    """
    if type(value) is float:
        return value  # type: ignore[return-value]
    return _aware_utc(value)


def _aware_utc(value: object) -> datetime:
    if value.__class__ is datetime and value.tzinfo is UTC and not value.fold:
        return value  # UTC already (a decoded event's time): what astimezone(UTC) gives
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

    # Made when first read (the bus reads it at publish): see _lazy_envelope below.
    id: str = attrs.field(default=None)
    # The default stores a timestamp (time_ns() from the fast __init__, a float
    # from attrs' own), turned into an aware datetime on first read.
    time: datetime = attrs.field(factory=cast("Callable[[], datetime]", _stamp), converter=_time_in)
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
    def __attrs_init_subclass__(cls) -> None:
        _install_fast_init(cls)

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


# The package re-exports Event with __module__ = "eventbus", where the names in
# its (string) annotations are undefined: resolve them now, so that
# typing.get_type_hints() works on every event class.
Event.__annotations__ = get_type_hints(Event)


# -- the lazy envelope ---------------------------------------------------------------
#
# Building an event must cost little more than building a plain attrs class
# with the same fields. The id is made when first read (at the latest when
# the event is published), and the default time is stored as a float
# timestamp and turned into an aware UTC datetime when first read. Both are
# properties over the slots attrs made; the stored value replaces the
# placeholder on first read, so later reads return the same id and time.


def _lazy_envelope() -> dict[str, Callable[[Any, Any], None]]:
    """Turn the envelope's slots into properties; return each slot's setter."""
    setters: dict[str, Callable[[Any, Any], None]] = {}
    getters = _SLOT_GETTERS
    fromtimestamp = datetime.fromtimestamp
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    source_slot = Event.__dict__["source"]
    get_source, put_source = source_slot.__get__, source_slot.__set__
    no_source = attrs.fields(Event).source.default
    for field in attrs.fields(Event):
        slot = Event.__dict__[field.name]
        get, put = slot.__get__, slot.__set__
        setters[field.name] = put
        getters[field.name] = get
        if field.name == "id":

            def read(self: Event, get: Any = get, put: Any = put, default: Any = _ids.pop) -> Any:
                value = get(self)
                if value is None:
                    # The first read makes the id, under a lock: two threads
                    # reading a new event's id at once must see the same one.
                    with _id_lock:
                        value = get(self)
                        if value is None:
                            try:
                                value = default()  # the next id of the batch
                            except IndexError:
                                value = _new_id()
                            put(self, value)
                return value

            doc = "Unique id (uuid4 hex), made when first read."
        elif field.name == "time":

            def read(self: Event, get: Any = get, put: Any = put, default: Any = None) -> Any:
                value = get(self)
                if value.__class__ is int:  # the fast __init__'s time.time_ns()
                    value = epoch + timedelta(microseconds=value // 1000)
                    put(self, value)
                elif value.__class__ is float:  # attrs' __init__: _stamp()
                    value = fromtimestamp(value, UTC)
                    put(self, value)
                return value

            doc = "When the event was made (aware, UTC)."
        else:

            def read(
                self: Event, get: Any = get, put: Any = put, default: Any = field.default
            ) -> Any:
                try:
                    return get(self)
                except AttributeError:  # not given to the fast __init__: the default
                    put(self, default)
                    return default

            doc = f"Envelope field {field.name!r} (default {field.default!r})."
        write = put
        if field.name not in ("id", "time", "source"):
            # Storing an optional envelope field stores the source too, so
            # an event whose source slot is empty has every optional field
            # at its default (see optional_envelope).
            def write(self: Event, value: Any, put: Any = put) -> None:
                put(self, value)
                try:
                    get_source(self)
                except AttributeError:
                    put_source(self, no_source)

        setattr(Event, field.name, property(read, write, doc=doc))
    return setters


_SLOT_GETTERS: Final[dict[str, Callable[[Any], Any]]] = {}  # the stored value, unconverted
_SETTERS: Final = _lazy_envelope()
_ENVELOPE: Final = {f.name: f for f in attrs.fields(Event)}
_SET_TIME: Final = _SETTERS["time"]
_GET_TIME: Final = _SLOT_GETTERS["time"]
_GET_SOURCE: Final = _SLOT_GETTERS["source"]
_SET_SOURCE: Final = _SETTERS["source"]
_NO_OPTIONAL: Final = ("", None, None, None, None)


def optional_envelope(event: Event) -> tuple[str, str | None, str | None, str | None, str | None]:
    """*event*'s source, correlation id, causation id, traceparent and tracestate.

    What reading the five properties gives, without their first-read cost
    (an exception each) for an event built with none of them: its source
    slot is empty only while all five are at their defaults, as storing
    any of them stores the source too. Internal: the CloudEvents encoder's.
    """
    try:
        source = _GET_SOURCE(event)
    except AttributeError:
        return _NO_OPTIONAL
    return source, event.correlation_id, event.causation_id, event.traceparent, event.tracestate


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_second_text: tuple[int, str] = (-1, "")  # the last whole second written, as RFC 3339 text


def time_text(event: Event) -> str:
    """``event.time`` as RFC 3339 text in UTC with a ``Z``, as ``isoformat()`` writes it.

    For an event whose time was never read (the common case when
    publishing), formats the stored clock reading without building the
    datetime: the text of the current second is kept, the microseconds
    appended. Internal: the CloudEvents encoder's time.
    """
    global _second_text
    value = _GET_TIME(event)
    if value.__class__ is not int:
        moment: datetime = event.time
        text = (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).isoformat()
        return text.removesuffix("+00:00") + "Z"
    seconds, micros = divmod(value // 1000, 1_000_000)
    cached = _second_text
    if cached[0] != seconds:
        cached = _second_text = (seconds, (_EPOCH + timedelta(seconds=seconds)).isoformat()[:19])
    return f"{cached[1]}.{micros:06d}Z" if micros else f"{cached[1]}Z"


def _set_envelope(self: Event, given: dict[str, Any]) -> None:
    """The envelope fields given to a fast ``__init__`` by keyword (rare: usually none)."""
    setters = _SETTERS
    for name, value in given.items():
        put = setters.get(name)
        if put is None:
            raise TypeError(
                f"{type(self).__qualname__}.__init__() got an unexpected keyword argument {name!r}"
            )
        put(self, _time_in(value) if name == "time" else value)
    if "source" not in given:
        _SET_SOURCE(self, "")  # stored, so optional_envelope() reads the slots given
    if "time" not in given:
        _SET_TIME(self, _time.time_ns())


def _install_fast_init(cls: type[Event]) -> None:
    """Give *cls* an ``__init__`` that stores its own fields and no envelope default.

    attrs' generated ``__init__`` calls ``object.__setattr__`` for every
    field, envelope included, and runs the envelope's factories. This one
    stores the class's own fields through their slots and the time as a
    float; envelope fields given by keyword go through ``_set_envelope``,
    the others keep their defaults without being stored (see the properties
    above). Classes with converters, validators, ``__attrs_pre_init__`` or an
    envelope field of their own keep attrs' ``__init__``.
    """
    if getattr(cls, "__attrs_pre_init__", None) is not None:
        return
    ns: dict[str, Any] = {
        "_NOTHING": attrs.NOTHING,
        "_clock": _time.time_ns,
        "_set_time": _SET_TIME,
        "_set_id": _SETTERS["id"],
        "_set_envelope": _set_envelope,
    }
    positional: list[str] = []
    keyword: list[str] = []
    body: list[str] = []
    for i, f in enumerate(attrs.fields(cls)):
        base = _ENVELOPE.get(f.name)
        if base is not None:
            if (
                f.default is not base.default
                or f.converter is not base.converter
                or f.validator is not base.validator
                or f.alias != f.name
            ):
                return  # a subclass redefined an envelope field: keep attrs' __init__
            continue
        if f.converter is not None or f.validator is not None:
            return
        slot = next((k.__dict__[f.name] for k in cls.__mro__ if f.name in k.__dict__), None)
        if not isinstance(slot, types.MemberDescriptorType):
            return
        ns[f"_set_{i}"] = slot.__set__
        default = f.default
        factory = default if isinstance(default, attrs.Factory) else None  # type: ignore[arg-type]
        if factory is not None:
            ns[f"_factory_{i}"] = factory.factory
        made = f"_factory_{i}({'self' if factory is not None and factory.takes_self else ''})"
        if not f.init:
            if default is attrs.NOTHING:
                continue
            if factory is None:
                ns[f"_default_{i}"] = default
            body.append(f"_set_{i}(self, {made if factory is not None else f'_default_{i}'})")
            continue
        name = f.alias
        if default is attrs.NOTHING:
            param, value = name, name
        elif factory is not None:
            param, value = f"{name}=_NOTHING", f"{made} if {name} is _NOTHING else {name}"
        else:
            ns[f"_default_{i}"] = default
            param, value = f"{name}=_default_{i}", name
        (keyword if f.kw_only else positional).append(param)
        body.append(f"_set_{i}(self, {value})")
    # The id slot holds None until first read (an empty slot would cost an
    # exception there); the time holds time.time_ns(), floored to the
    # microsecond on first read as datetime.now() floors: an event's time is
    # never later than a clock read made after it was built.
    body.append("_set_id(self, None)")
    body.append("if envelope:\n        _set_envelope(self, envelope)")
    # Floored to the microsecond, as datetime.now() is: an event's time is
    # never later than a clock read made after the event was built.
    body.append("else:\n        _set_time(self, _clock())")
    if getattr(cls, "__attrs_post_init__", None) is not None:
        body.append("self.__attrs_post_init__()")
    params = ", ".join(["self", *positional, *(["*", *keyword] if keyword else []), "**envelope"])
    source = f"def __init__({params}):\n    " + "\n    ".join(body) + "\n"
    exec(compile(source, f"<eventbus fast init {cls.__qualname__}>", "exec"), ns)
    init = ns["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__doc__ = cls.__init__.__doc__
    setattr(cls, "__init__", init)  # noqa: B010 - mypy refuses assigning a method


_install_fast_init(Event)

# After _install_fast_init(Event), which replaces Event.__init__.
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
