"""Keyed, transactional state for stateful subscriptions: the store Protocols.

A subscription made with ``ordered_by=...`` and ``state=store`` keeps one
JSON object per key of its events (``ctx.state``). The bus talks to the
store only through the Protocols here; the stores themselves
(:class:`~eventbus.MemoryState`, :class:`~eventbus.SqliteState`,
``eventbus.bridges.redis.RedisState``) live in outer layers.

The contract a store keeps, per ``(subscription, key)``:

* a *record*: the state as JSON object text and a *version*, the number of
  commits so far (0: nothing was ever committed);
* :meth:`StateStore.commit` replaces the state if and only if the version
  is still the one the caller loaded (optimistic concurrency; otherwise
  :class:`StateConflict`) and the event id has not been applied for that
  key (otherwise it changes nothing and returns ``False``); the new state,
  the event id and any reminders are written in one atomic step;
* the event ids of the last ``applied_ids`` commits of each key are
  remembered (older ones are forgotten, which bounds the record); a commit
  normally applies one event, a batch's commit several.

This module is a primitive: it imports nothing from the outer layers.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Final, NoReturn, Protocol, final, runtime_checkable

import attrs

from ._exceptions import EventBusError

__all__ = [
    "DEFAULT_APPLIED_IDS",
    "Reminder",
    "ReminderStore",
    "StateChange",
    "StateConflict",
    "StateError",
    "StateKeys",
    "StateStore",
    "StoredState",
    "check_applied_ids",
    "encode_state",
    "state_key",
]

DEFAULT_APPLIED_IDS: Final = 1000
"""How many applied event ids a store remembers per key, by default."""

EMPTY_STATE: Final = "{}"
_MAX_DEPTH: Final = 100  # nesting levels a state value may have
_SHOWN: Final = 80  # characters of a bad value shown in an error


class StateError(EventBusError, ValueError):
    """State was misused: a non-JSON value, a bad key, ``state=`` without ``ordered_by``.

    The message says which subscription, key and field, and what to do.

    .. versionadded:: 0.2
    """


class StateConflict(EventBusError, RuntimeError):
    """Another writer committed the same key first (optimistic concurrency).

    Raised by :meth:`StateStore.commit` when the key's version is no longer
    the one the attempt loaded. The bus discards the attempt's changes and
    handles the event again on the new state; nothing is lost.

    .. versionadded:: 0.2
    """

    def __init__(self, subscription: str, key: str, expected: int, found: int) -> None:
        super().__init__(
            f"subscription {subscription!r}, key {key!r}: the state moved to version {found} "
            f"while this attempt held version {expected}; its changes were discarded and "
            "the event is handled again on the new state"
        )
        self.subscription = subscription
        self.key = key
        self.expected = expected
        self.found = found


@final
@attrs.frozen
class StoredState:
    """A key's record as loaded from a store.

    Attributes:
        text: the state, JSON object text (``"{}"`` when there is none).
        version: commits so far; pass it back to :meth:`StateStore.commit`.
        applied: whether the event id asked about was already committed for
            this key (always ``False`` when no event id was given).

    .. versionadded:: 0.2
    """

    text: str = EMPTY_STATE
    version: int = 0
    applied: bool = False

    def decode(self) -> dict[str, Any]:
        """The state as a new dict."""
        value = json.loads(self.text)
        if not isinstance(value, dict):  # a store holding something else is corrupt
            raise StateError(
                f"the stored state is JSON {type(value).__name__}, not an object; "
                "the store was written by something else"
            )
        return value


@final
@attrs.frozen
class Reminder:
    """A pending reminder (``ctx.remind``): publish *event* at *due*.

    Attributes:
        id: unique per reminder.
        subscription: the subscription that set it.
        key: the state key it belongs to.
        due: when to publish (aware UTC wall time, on the bus's clock).
        event: the event to publish, as a CloudEvents 1.0 JSON document
            (``eventbus.to_cloudevent``).

    .. versionadded:: 0.2
    """

    subscription: str
    key: str
    due: datetime
    event: Mapping[str, Any]
    id: str = attrs.field(factory=lambda: uuid.uuid4().hex)


@final
@attrs.frozen
class StateChange:
    """What one successful attempt commits for a key.

    Attributes:
        text: the new state, JSON object text (see :func:`encode_state`).
        version: the version the attempt loaded; the commit is refused
            with :class:`StateConflict` if the key has moved on.
        event_id: the event applied; the commit changes nothing if it was
            already applied for the key.
        reminders: reminders to store with the state.
        also_applied: the ids of further events applied by this commit (a
            batch); the commit changes nothing if any of them was applied.

    .. versionadded:: 0.2
    """

    text: str
    version: int
    event_id: str
    reminders: Sequence[Reminder] = ()
    also_applied: Sequence[str] = ()

    @property
    def event_ids(self) -> tuple[str, ...]:
        """Every event id the commit applies: ``event_id``, then ``also_applied``."""
        return (self.event_id, *self.also_applied)


@runtime_checkable
class StateStore(Protocol):
    """**Protocol:** keyed, transactional state of stateful subscriptions.

    Built-ins: :class:`~eventbus.MemoryState`, :class:`~eventbus.SqliteState`,
    ``eventbus.bridges.redis.RedisState``. Keys are strings; a state is a
    JSON object, passed as text.

    .. versionadded:: 0.2
    """

    async def load(self, subscription: str, key: str, event_id: str | None = None) -> StoredState:
        """Read *key*'s record, and whether *event_id* was already applied to it."""
        ...

    async def commit(self, subscription: str, key: str, change: StateChange) -> bool:
        """Write *change* atomically: state, version + 1, the event ids, the reminders.

        Returns:
            ``True`` when written; ``False`` when one of ``change.event_ids``
            was already applied for the key (nothing was written).

        Raises:
            StateConflict: the key's version is not ``change.version``.
        """
        ...


@runtime_checkable
class StateKeys(Protocol):
    """**Protocol:** a :class:`StateStore` that can list its keys (``bus.state_keys``).

    .. versionadded:: 0.2
    """

    def keys(self, subscription: str) -> AsyncIterator[str]:
        """Iterate the keys of *subscription* whose state is not empty."""
        ...


@runtime_checkable
class ReminderStore(Protocol):
    """**Protocol:** a :class:`StateStore` that keeps reminders (``ctx.remind``).

    Reminders are written by :meth:`StateStore.commit`, with the state.

    .. versionadded:: 0.2
    """

    async def reminders(self, subscription: str) -> list[Reminder]:
        """The pending reminders of *subscription*, earliest due first."""
        ...

    async def forget(self, reminder: Reminder) -> None:
        """Remove *reminder* (it was published); unknown ones are ignored."""
        ...


def check_applied_ids(owner: str, applied_ids: int) -> int:
    """Validate a store's ``applied_ids`` argument."""
    if isinstance(applied_ids, bool) or not isinstance(applied_ids, int) or applied_ids < 1:
        raise StateError(
            f"{owner}(applied_ids=...) must be an int >= 1 (event ids remembered per key), "
            f"got {applied_ids!r:.{_SHOWN}}"
        )
    return applied_ids


def state_key(subscription: str, key: object) -> str:
    """The store key for an ordering key: a ``str`` as is, an ``int`` or UUID as text.

    Raises:
        StateError: any other type.
    """
    if isinstance(key, str):
        return key
    if isinstance(key, int | uuid.UUID) and not isinstance(key, bool):
        return str(key)
    raise StateError(
        f"subscription {subscription!r}: a state key must be a str or an int (or UUID), "
        f"got {type(key).__name__} {key!r:.{_SHOWN}}; make ordered_by return one"
    )


def encode_state(subscription: str, key: str, state: Mapping[str, Any]) -> str:
    """Encode *state* as compact JSON object text, or name the value that is not JSON.

    Accepted: dicts with ``str`` keys, lists, ``str``, ``int``, finite
    ``float``, ``bool`` and ``None``, nested up to 100 levels.

    Raises:
        StateError: naming the subscription, key and field path of the
            first value that is not JSON.
    """
    _check(subscription, key, state, "state", 0)
    return json.dumps(state, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _check(subscription: str, key: str, value: object, path: str, depth: int) -> None:
    if value is None or isinstance(value, str | int):  # bool is an int
        return
    if isinstance(value, float):
        if math.isfinite(value):
            return
        _bad(subscription, key, path, value, "is not a finite number (JSON has no NaN or infinity)")
    if depth >= _MAX_DEPTH:
        _bad(subscription, key, path, value, f"nests deeper than {_MAX_DEPTH} levels")
    if isinstance(value, dict):
        for name, item in value.items():
            if not isinstance(name, str):
                _bad(
                    subscription,
                    key,
                    path,
                    name,
                    f"is a {type(name).__name__} key of an object; JSON object keys are str",
                )
            _check(subscription, key, item, f"{path}[{name!r}]", depth + 1)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check(subscription, key, item, f"{path}[{i}]", depth + 1)
        return
    hint = "use a list" if isinstance(value, tuple | set | frozenset) else "store a JSON value"
    _bad(
        subscription,
        key,
        path,
        value,
        f"is a {type(value).__name__}, which is not JSON; {hint} (str, int, float, bool, "
        "None, list, dict with str keys)",
    )


def _bad(subscription: str, key: str, path: str, value: object, why: str) -> NoReturn:
    raise StateError(
        f"subscription {subscription!r}, key {key!r}: {path} = {value!r:.{_SHOWN}} {why}; "
        "nothing was committed"
    )
