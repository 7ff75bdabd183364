"""Comparing events by payload: their class and own fields, ignoring the envelope.

Two events built from the same values are never ``==``: each gets its own
``id`` and ``time``. Tests usually mean "the same payload", which is what
:func:`payload` and :func:`same_payload` compare.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, final

import attrs

from .._events import Event

__all__ = ["ENVELOPE_FIELDS", "Payload", "payload", "same_payload"]

ENVELOPE_FIELDS: Final[frozenset[str]] = frozenset(attrs.fields_dict(Event))
"""The fields every event carries besides its payload (``id``, ``time``, ``source``, ...)."""


@final
class Payload:
    """An event's class and its own fields, without the envelope; made by :func:`payload`.

    A payload equals another payload, or an event, of the same class with
    equal own fields -- whatever their ``id``, ``time``, ``source``,
    ``correlation_id`` and ``causation_id``::

        assert payload(got) == DailyReport("2024-03-01", 1)
        assert recorder.payloads() == [DailyReport("2024-03-01", 1)]

    Attributes:
        event_type: the event's class (an equal payload has exactly this class).
        fields: the own (non-envelope) fields, by name, in declaration order.

    .. versionadded:: 0.2
    """

    __slots__ = ("event_type", "fields")

    def __init__(self, event_type: type[Event], fields: Mapping[str, Any]) -> None:
        self.event_type = event_type
        self.fields: Mapping[str, Any] = MappingProxyType(dict(fields))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Event):
            other = payload(other)
        if not isinstance(other, Payload):
            return NotImplemented
        return self.event_type is other.event_type and dict(self.fields) == dict(other.fields)

    __hash__ = None  # type: ignore[assignment]  # fields may hold lists and dicts

    def differences(self, other: Event | Payload) -> list[str]:
        """What differs from *other*, one ``name: mine != theirs`` line per field (empty if equal)."""
        theirs = other if isinstance(other, Payload) else payload(other)
        if self.event_type is not theirs.event_type:
            return [f"class: {self.event_type.__name__} != {theirs.event_type.__name__}"]
        return [
            f"{name}: {value!r} != {theirs.fields.get(name)!r}"
            for name, value in self.fields.items()
            if theirs.fields.get(name) != value
        ]

    def __repr__(self) -> str:
        args = ", ".join(f"{name}={value!r}" for name, value in self.fields.items())
        return f"payload({self.event_type.__name__}({args}))"


def payload(event: Event) -> Payload:
    """The payload of *event*: its class and own fields, for comparisons that ignore the envelope.

    ::

        got = await expect(DailyReport)
        assert payload(got) == DailyReport("2024-03-01", 1)

    Raises:
        TypeError: *event* is not an :class:`~eventbus.Event`.

    .. versionadded:: 0.2
    """
    if not isinstance(event, Event):
        raise TypeError(
            f"payload() takes an eventbus.Event, got {type(event).__name__}; pass the event "
            "(e.g. one that capture() recorded or expect() returned)"
        )
    cls = type(event)
    fields = {
        f.name: getattr(event, f.name) for f in attrs.fields(cls) if f.name not in ENVELOPE_FIELDS
    }
    return Payload(cls, fields)


def same_payload(first: Event | Payload, second: Event | Payload) -> bool:
    """Whether two events have the same class and own fields, ignoring the envelope.

    .. versionadded:: 0.2
    """
    left = first if isinstance(first, Payload) else payload(first)
    return left == second
