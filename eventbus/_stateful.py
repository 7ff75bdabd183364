"""Stateful subscriptions at run time: ``ctx.state``, commits, reminders.

A subscription made with ``state=store`` gets a :class:`StateRunner`. Each
attempt of its handler runs inside :meth:`StateRunner.attempt`:

1. load the key's record, asking whether the event id was already applied
   to it -- if so the handler is skipped and the event counts as handled;
2. run the handler with a :class:`_Transaction` current (``ctx.state``
   decodes the record on first access; ``ctx.remind`` adds reminders);
3. if the handler returned, commit the new state, the event id and the
   reminders in one store call (shielded from cancellation: an attempt
   that succeeded is recorded); a raised error, a timeout or a cancellation
   skips the commit, so what the handler wrote is discarded;
4. on :class:`~eventbus.StateConflict` (another process committed the key
   first) go back to 1 -- the event is handled again on the new state.

Reminders are armed on the bus clock once committed, and re-armed from the
store when the subscription starts.
"""

from __future__ import annotations

import contextvars
import logging
import math
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Hashable,
    Iterator,
    MutableMapping,
)
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, final

import anyio
import anyio.abc
import attrs

from ._batching import BatchResult
from ._events import Event
from ._exceptions import BusClosed, EventBusError
from ._serialization import from_cloudevent, to_cloudevent
from ._state import (
    Reminder,
    ReminderStore,
    StateChange,
    StateConflict,
    StateError,
    StateKeys,
    StateStore,
    StoredState,
    encode_state,
    state_key,
)

if TYPE_CHECKING:
    from ._bus import Bus
    from ._context import Context

__all__ = ["StateRunner", "check_state", "context_remind", "context_state"]

logger = logging.getLogger("eventbus.state")

MAX_CONFLICTS: Final = 64  # conflicting commits of one attempt before it fails

_current: contextvars.ContextVar[_Transaction | _BatchTransaction | None] = contextvars.ContextVar(
    "eventbus_state", default=None
)


def check_state(state: object, ordered_by: object, name: str, stream: bool = False) -> None:
    """Validate ``subscribe(state=...)`` (with its ``ordered_by``).

    *stream*: a subscription to log records, keyed by ``partition_key`` by default.
    """
    if state is None:
        return
    if not isinstance(state, StateStore):
        raise TypeError(
            "subscribe(state=...) takes a state store such as MemoryState(), "
            f"SqliteState(path) or RedisState(url), got {type(state).__name__}"
        )
    if ordered_by is None and not stream:
        raise StateError(
            f"subscribe(state=...) for {name!r} needs ordered_by=...: the state is kept per key, "
            "and the events of a key must be handled one at a time; pass "
            "ordered_by='field' (or a key function) naming the key of the state"
        )


@final
class _Transaction:
    """One attempt's view of a key's state (internal)."""

    __slots__ = ("_state", "closed", "event", "key", "reminders", "runner", "stored")

    def __init__(self, runner: StateRunner, key: str, event: Event, stored: StoredState) -> None:
        self.runner = runner
        self.key = key
        self.event = event
        self.stored = stored
        self._state: dict[str, Any] | None = None
        self.reminders: list[Reminder] = []
        self.closed = False

    @property
    def state(self) -> dict[str, Any]:
        if self._state is None:
            self._state = self.stored.decode()
        return self._state

    def change(self) -> StateChange | None:
        """What to commit; None when the attempt changed nothing."""
        stored = self.stored
        text = (
            stored.text
            if self._state is None
            else encode_state(self.runner.name, self.key, self._state)
        )
        if text == stored.text and not self.reminders:
            return None
        return StateChange(text, stored.version, self.event.id, tuple(self.reminders))


@final
class _KeyEntry:
    """One key's record in a batch transaction (internal)."""

    __slots__ = ("ids", "state", "stored")

    def __init__(self, stored: StoredState) -> None:
        self.stored = stored
        self.state: dict[str, Any] | None = None
        self.ids: list[str] = []

    def decoded(self) -> dict[str, Any]:
        if self.state is None:
            self.state = self.stored.decode()
        return self.state


@final
class _KeyedStates(MutableMapping[str, Any]):
    """``ctx.state`` of a batch handler: each partition key's state, by key (internal)."""

    __slots__ = ("_txn",)

    def __init__(self, txn: _BatchTransaction) -> None:
        self._txn = txn

    def _entry(self, key: object) -> _KeyEntry:
        txn = self._txn
        name = txn.runner.name
        entry = txn.entries.get(state_key(name, key))
        if entry is None:
            raise KeyError(key)
        return entry

    def __getitem__(self, key: str) -> dict[str, Any]:
        return self._entry(key).decoded()

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(value, dict):
            raise StateError(
                f"subscription {self._txn.runner.name!r}: ctx.state[{key!r}] takes a dict "
                f"(the key's whole state), got {type(value).__name__}"
            )
        self._entry(key).state = value

    def __delitem__(self, key: str) -> None:
        self._entry(key).state = {}

    def __iter__(self) -> Iterator[str]:
        return iter(self._txn.entries)

    def __len__(self) -> int:
        return len(self._txn.entries)

    def __repr__(self) -> str:
        return f"<state of keys {list(self._txn.entries)!r:.200}>"


@final
class _BatchTransaction:
    """One batch attempt's view of the state of the keys in it (internal)."""

    __slots__ = ("closed", "entries", "event", "runner", "state")

    def __init__(self, runner: StateRunner, event: Event, entries: dict[str, _KeyEntry]) -> None:
        self.runner = runner
        self.event = event
        self.entries = entries
        self.state = _KeyedStates(self)
        self.closed = False

    def changes(self, failed: set[str]) -> dict[str, StateChange]:
        """What to commit: the keys none of whose events failed and whose state changed."""
        name = self.runner.name
        found: dict[str, StateChange] = {}
        for key, entry in self.entries.items():
            if failed.intersection(entry.ids):
                continue
            stored = entry.stored
            text = stored.text if entry.state is None else encode_state(name, key, entry.state)
            if text != stored.text:
                found[key] = StateChange(text, stored.version, entry.ids[0], (), entry.ids[1:])
        return found


def _transaction(ctx: Context) -> _Transaction | _BatchTransaction:
    txn = _current.get()
    if txn is None or txn.event is not ctx.event or txn.runner.name != ctx.subscription:
        raise StateError(
            f"subscription {ctx.subscription!r} has no state here: ctx.state and ctx.remind "
            "work in handlers of subscriptions made with ordered_by=... and "
            "state=MemoryState() (or another store), during the attempt"
        )
    if txn.closed:
        raise StateError(
            f"subscription {ctx.subscription!r}: this attempt is over, its state was "
            "committed or discarded; use ctx.state only while the handler runs"
        )
    return txn


def context_state(ctx: Context) -> MutableMapping[str, Any]:
    """``ctx.state``: the key's state for this attempt."""
    return _transaction(ctx).state


def context_remind(ctx: Context, after: float, event: Event) -> None:
    """``ctx.remind(after=..., event=...)``: add a reminder to this attempt."""
    txn = _transaction(ctx)
    if isinstance(txn, _BatchTransaction):
        raise StateError(
            f"subscription {ctx.subscription!r}: ctx.remind works in handlers of one event at "
            "a time, not in batch handlers; publish the reminder's event with ctx.publish"
        )
    runner = txn.runner
    if isinstance(after, bool) or not isinstance(after, int | float) or not math.isfinite(after):
        raise StateError(
            f"ctx.remind(after=...) takes a finite number of seconds >= 0, got {after!r:.80}"
        )
    if after < 0:
        raise StateError(f"ctx.remind(after=...) must be >= 0 seconds, got {after!r}")
    if not isinstance(event, Event):
        raise TypeError(
            f"ctx.remind(event=...) takes an Event instance, got {type(event).__name__}"
        )
    try:
        key = state_key(runner.name, runner.key_fn(event))
    except StateError:
        raise
    except Exception as exc:
        raise StateError(
            f"subscription {runner.name!r}: ctx.remind(event=...) got a "
            f"{type(event).__name__} whose key cannot be read ({type(exc).__name__}: {exc}); "
            "a reminder's event must carry the key the subscription is ordered by"
        ) from exc
    if key != txn.key:
        raise StateError(
            f"subscription {runner.name!r}: ctx.remind(event=...) is for key {key!r}, but this "
            f"attempt holds key {txn.key!r}; a reminder is for the same key (publish events "
            "for other keys with ctx.publish)"
        )
    parent = txn.event
    changes: dict[str, Any] = {}
    if event.causation_id is None:
        changes["causation_id"] = parent.id
    if event.correlation_id is None:
        changes["correlation_id"] = parent.correlation_id or parent.id
    if changes:
        event = attrs.evolve(event, **changes)
    due = runner.bus.clock.wall() + timedelta(seconds=after)
    txn.reminders.append(Reminder(runner.name, key, due, to_cloudevent(event)))


@final
class StateRunner:
    """The state machinery of one stateful subscription (internal)."""

    __slots__ = ("_armed", "_tg", "bus", "key_fn", "name", "store")

    def __init__(
        self, bus: Bus, name: str, store: StateStore, key_fn: Callable[[Any], Hashable]
    ) -> None:
        self.bus = bus
        self.name = name
        self.store = store
        self.key_fn = key_fn
        self._armed: set[str] = set()
        self._tg: anyio.abc.TaskGroup | None = None

    async def attempt(self, run: Callable[[], Awaitable[Any]], event: Event) -> Any:
        """Run one attempt (``run()``) of the handler on *event* inside a transaction.

        Returns what the handler returned (``None`` when the event was
        already applied and the handler was skipped).
        """
        key = state_key(self.name, self.key_fn(event))
        store = self.store
        conflicts = 0
        while True:
            stored = await store.load(self.name, key, event.id)
            if stored.applied:
                logger.debug(
                    "subscription %r: event %s was already applied to key %r; skipped",
                    self.name,
                    event.id,
                    key,
                )
                return None
            txn = _Transaction(self, key, event, stored)
            token = _current.set(txn)
            try:
                result = await run()
                change = txn.change()
            finally:
                txn.closed = True
                _current.reset(token)
            if change is None:
                return result
            try:
                # An attempt whose handler returned is recorded even if a
                # shutdown cancels the task meanwhile.
                with anyio.CancelScope(shield=True):
                    written = await store.commit(self.name, key, change)
            except StateConflict:
                conflicts += 1
                if conflicts >= MAX_CONFLICTS:
                    raise
                continue
            if written:
                for reminder in change.reminders:
                    self._arm(reminder)
            return result

    async def attempt_batch(
        self, run: Callable[[list[Event]], Awaitable[Any]], events: list[Event]
    ) -> Any:
        """Run one attempt of a batch handler (``run(batch)``) inside a transaction per key.

        Events already applied are left out of the batch (all of them: the
        handler is not called). When the handler reports failed events
        (:class:`~eventbus.BatchResult`), the keys of those events commit
        nothing, and every event of those keys is reported failed, so that
        all of them are retried together; the other keys commit.
        """
        name = self.name
        store = self.store
        conflicts = 0
        while True:
            entries: dict[str, _KeyEntry] = {}
            todo: list[Event] = []
            for event in events:
                key = state_key(name, self.key_fn(event))
                stored = await store.load(name, key, event.id)
                if stored.applied:
                    continue
                entry = entries.get(key)
                if entry is None:
                    entry = entries[key] = _KeyEntry(stored)
                entry.ids.append(event.id)
                todo.append(event)
            if not todo:
                return None
            txn = _BatchTransaction(self, todo[0], entries)
            token = _current.set(txn)
            try:
                result = await run(todo)
                failed: set[str] = set()
                if isinstance(result, BatchResult) and result.failed:
                    failed = set(result.failed)
                    if not failed <= {e.id for e in todo}:
                        return result  # the whole batch fails: nothing is committed
                    failed = {
                        i
                        for entry in entries.values()
                        if failed & set(entry.ids)
                        for i in entry.ids
                    }
                    result = BatchResult(failed=[e.id for e in todo if e.id in failed])
                changes = txn.changes(failed)
            finally:
                txn.closed = True
                _current.reset(token)
            try:
                with anyio.CancelScope(shield=True):
                    for key, change in changes.items():
                        if not await store.commit(name, key, change):
                            raise StateConflict(name, key, change.version, change.version)
            except StateConflict:
                conflicts += 1
                if conflicts >= MAX_CONFLICTS:
                    raise
                continue  # the keys committed so far are applied: left out next time
            return result

    # -- reminders ---------------------------------------------------------------------

    async def serve(self) -> None:
        """Arm the store's pending reminders, then keep arming new ones until cancelled.

        Until the pending reminders are read and the overdue ones published,
        the bus counts one more outstanding item, so ``bus.drain()`` waits
        for them.
        """
        bus = self.bus
        async with anyio.create_task_group() as tg:
            self._tg = tg
            bus._outstanding += 1
            settled = False
            try:
                if isinstance(self.store, ReminderStore):
                    pending = await self._pending(self.store)
                    now = bus.clock.wall()
                    for reminder in pending:
                        if reminder.due <= now and reminder.id not in self._armed:
                            self._armed.add(reminder.id)
                            await self._publish(reminder)
                        else:
                            self._arm(reminder)
                settled = True
                bus._settle()
                await anyio.sleep_forever()
            finally:
                if not settled:
                    bus._settle()
                self._tg = None
                self._armed.clear()

    async def _pending(self, store: ReminderStore) -> list[Reminder]:
        try:
            return await store.reminders(self.name)
        except Exception:
            logger.exception(
                "subscription %r: cannot read the pending reminders from its store; they are "
                "armed when the subscription starts again",
                self.name,
            )
            return []

    def _arm(self, reminder: Reminder) -> None:
        if self._tg is None or reminder.id in self._armed:
            return  # armed when the subscription starts
        self._armed.add(reminder.id)
        self._tg.start_soon(self._fire, reminder)

    async def _fire(self, reminder: Reminder) -> None:
        clock = self.bus.clock
        delay = (reminder.due - clock.wall()).total_seconds()
        await clock.sleep_until(clock.now() + max(0.0, delay))
        await self._publish(reminder)

    async def _publish(self, reminder: Reminder) -> None:
        """Publish *reminder*'s event, then remove it from the store."""
        try:
            event = from_cloudevent(reminder.event)
        except EventBusError as exc:
            logger.error(
                "subscription %r: reminder %s for key %r cannot be decoded (%s); it stays "
                "stored and is tried again on the next start",
                self.name,
                reminder.id,
                reminder.key,
                exc,
            )
            return
        try:
            await self.bus.publish(event)
        except BusClosed:
            return  # still stored: armed again on the next start
        except Exception:
            logger.exception(
                "subscription %r: publishing reminder %s for key %r failed; it stays stored "
                "and is tried again on the next start",
                self.name,
                reminder.id,
                reminder.key,
            )
            return
        store = self.store
        if isinstance(store, ReminderStore):
            try:
                with anyio.CancelScope(shield=True):
                    await store.forget(reminder)
            except Exception:
                logger.exception(
                    "subscription %r: reminder %s was published but could not be removed from "
                    "the store; it is published again (same event id) on the next start",
                    self.name,
                    reminder.id,
                )
        self._armed.discard(reminder.id)

    # -- reading from outside ------------------------------------------------------------

    async def snapshot(self, key: object) -> MappingProxyType[str, Any]:
        """A read-only copy of *key*'s state."""
        stored = await self.store.load(self.name, state_key(self.name, key))
        return MappingProxyType(stored.decode())

    def keys(self) -> AsyncIterator[str]:
        """The keys whose state is not empty."""
        store = self.store
        if not isinstance(store, StateKeys):
            raise StateError(
                f"subscription {self.name!r}: its store {type(store).__name__} cannot list "
                "keys (it has no keys() method; see the StateKeys Protocol)"
            )
        return _Keys(self.name, store)


@final
class _Keys(AsyncIterator[str]):
    """``bus.state_keys(name)``: ``async for key in ...``.

    Also ``await bus.state_keys(name)`` (a list), and, for stores that can
    list keys without waiting (``MemoryState``, ``SqliteState``), plain
    ``for``/``list()``.
    """

    __slots__ = ("_it", "_name", "_store")

    def __init__(self, name: str, store: StateKeys) -> None:
        self._name = name
        self._store = store
        self._it: AsyncIterator[str] | None = None

    async def __anext__(self) -> str:
        if self._it is None:
            self._it = self._store.keys(self._name)
        return await self._it.__anext__()

    def __await__(self) -> Generator[Any, None, list[str]]:
        return self._collect().__await__()

    async def _collect(self) -> list[str]:
        return [key async for key in self._store.keys(self._name)]

    def __iter__(self) -> Iterator[str]:
        sync_keys = getattr(self._store, "sync_keys", None)
        if sync_keys is None:
            raise StateError(
                f"subscription {self._name!r}: its store {type(self._store).__name__} lists keys "
                "asynchronously only; use 'async for key in bus.state_keys(name)'"
            )
        keys: list[str] = sync_keys(self._name)
        return iter(keys)
