"""Which events a test asks about: event types plus an optional ``where`` filter.

Shared by :func:`capture`, :func:`expect`, :func:`assert_published` and
:func:`expect_dead_letters`, so they accept the same ``where=`` as
``Bus.subscribe`` and explain a mismatch the same way.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeAlias, final

import attrs

from .._events import Event
from ..patterns import Pattern
from ._payload import Payload, payload

__all__ = ["EventFilter", "Where", "describe_event", "summarize_types"]

Where: TypeAlias = (
    Mapping[str, Any] | str | Pattern | Callable[[Any], bool] | Event | Payload | None
)
"""A content filter: an EventBridge-style pattern (a mapping, its JSON text or a
:class:`~eventbus.Pattern`), a predicate ``(event) -> bool``, or an example
event (or :class:`Payload`): events with the same class and own fields match,
whatever their envelope (``id``, ``time``, ...)."""

_ENVELOPE: Final = frozenset(attrs.fields_dict(Event))
_MAX_DESCRIPTION: Final = 160


@final
class EventFilter:
    """Event classes and a compiled ``where`` filter (internal).

    Raises at construction, as ``Bus.subscribe`` does: :class:`TypeError`
    for something that is not an event class or a filter, and
    :class:`~eventbus.PatternError` for an invalid pattern or one naming a
    field the classes do not have.
    """

    __slots__ = ("_like", "_pattern", "_predicate", "event_types")

    def __init__(self, event_types: type[Event] | tuple[type[Event], ...], where: Where) -> None:
        types = event_types if isinstance(event_types, tuple) else (event_types,)
        if not types:
            raise TypeError("expected at least one event class, got an empty tuple")
        for t in types:
            if not (isinstance(t, type) and issubclass(t, Event)):
                raise TypeError(
                    f"expected an Event subclass (or a tuple of them), got {t!r}; "
                    "pass the event class, e.g. capture(bus, OrderPlaced)"
                )
        self.event_types: tuple[type[Event], ...] = types
        self._pattern: Pattern | None = None
        self._predicate: Callable[[Any], bool] | None = None
        self._like: Payload | None = None
        if where is None:
            return
        if isinstance(where, Event | Payload):
            like = where if isinstance(where, Payload) else payload(where)
            if not issubclass(like.event_type, types):
                names = " or ".join(t.__name__ for t in types)
                raise TypeError(
                    f"where= is an example {like.event_type.__name__}, but the events asked "
                    f"about are {names}; an example event must be of one of those classes"
                )
            self._like = like
        elif isinstance(where, Mapping | str | Pattern):
            pattern = where if isinstance(where, Pattern) else Pattern(where)
            pattern.bind(types)
            self._pattern = pattern
        elif callable(where):
            self._predicate = where
        else:
            raise TypeError(
                "where= must be an EventBridge-style pattern (a dict) or a predicate "
                f"(event) -> bool, got {type(where).__name__}"
            )

    def has_type(self, event: object) -> bool:
        """Whether *event* is an instance of one of the classes."""
        return isinstance(event, self.event_types)

    def mismatch(self, event: Event) -> str | None:
        """Why *event* (of one of the classes) fails the filter, or None when it passes."""
        if self._pattern is not None:
            return self._pattern.explain(event)
        if self._like is not None:
            differences = self._like.differences(event)
            if not differences:
                return None
            return "payload differs (expected != published): " + "; ".join(differences)
        if self._predicate is not None:
            try:
                ok = self._predicate(event)
            except Exception as exc:
                return f"where predicate raised {type(exc).__name__}: {exc}"
            return None if ok else "where predicate returned False"
        return None

    def describe(self) -> str:
        """``OrderShipped`` or ``OrderShipped where {"order_id": ["o-1"]}``."""
        names = " or ".join(t.__name__ for t in self.event_types)
        if self._pattern is not None:
            spec = json.dumps(self._pattern.spec, default=str, ensure_ascii=False)
            return f"{names} where {spec}"
        if self._like is not None:
            return f"{names} with the payload of {self._like!r}"
        if self._predicate is not None:
            label = getattr(self._predicate, "__qualname__", type(self._predicate).__qualname__)
            return f"{names} where {label}(event)"
        return names


def describe_event(event: Event) -> str:
    """A one-line summary: the class and its own (non-envelope) fields, shortened."""
    cls = type(event)
    fields: list[str] = []
    if attrs.has(cls):
        for field in attrs.fields(cls):
            if field.name in _ENVELOPE:
                continue
            fields.append(f"{field.name}={getattr(event, field.name)!r}")
    text = f"{cls.__name__}({', '.join(fields)})"
    if len(text) > _MAX_DESCRIPTION:
        text = text[: _MAX_DESCRIPTION - 4] + "...)"
    return f"{text} id={event.id}"


def summarize_types(events: Iterable[Event]) -> str:
    """``3 OrderPlaced, 1 PaymentTaken`` (most frequent first), or ``none``."""
    counts = Counter(type(e).__name__ for e in events)
    if not counts:
        return "none"
    return ", ".join(f"{n} {name}" for name, n in counts.most_common())
