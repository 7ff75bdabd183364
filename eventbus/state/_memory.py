"""MemoryState: keyed state kept in this process."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator
from typing import final

from .._state import (
    DEFAULT_APPLIED_IDS,
    EMPTY_STATE,
    Reminder,
    StateChange,
    StateConflict,
    StoredState,
    check_applied_ids,
)

__all__ = ["MemoryState"]


@final
class _Record:
    __slots__ = ("applied", "order", "text", "version")

    def __init__(self) -> None:
        self.text = EMPTY_STATE
        self.version = 0
        self.applied: set[str] = set()
        self.order: deque[tuple[str, ...]] = deque()  # the ids of each commit, oldest first


@final
class MemoryState:
    """Keyed state of stateful subscriptions, kept in this process (the default store).

    ``bus.subscribe(..., ordered_by="cart_id", state=MemoryState())``. The
    state is kept as JSON text, so a handler never shares objects with the
    store. Everything is lost with the process; reminders set with
    ``ctx.remind`` survive only as long as this object (a new bus given the
    same object re-arms them). Use :class:`~eventbus.SqliteState` to keep
    state across restarts.

    Args:
        applied_ids: each key remembers the event ids of its latest
            *applied_ids* commits, to refuse applying one twice (older ones
            are forgotten).

    Raises:
        StateError: *applied_ids* is not an int >= 1.

    .. versionadded:: 0.2
    """

    __slots__ = ("_applied_ids", "_records", "_reminders")

    def __init__(self, *, applied_ids: int = DEFAULT_APPLIED_IDS) -> None:
        self._applied_ids = check_applied_ids("MemoryState", applied_ids)
        self._records: dict[tuple[str, str], _Record] = {}
        self._reminders: dict[str, Reminder] = {}

    async def load(self, subscription: str, key: str, event_id: str | None = None) -> StoredState:
        """Read *key*'s state and version, and whether *event_id* was applied to it."""
        record = self._records.get((subscription, key))
        if record is None:
            return StoredState()
        return StoredState(
            record.text, record.version, event_id is not None and event_id in record.applied
        )

    async def commit(self, subscription: str, key: str, change: StateChange) -> bool:
        """Write *change* (state, event id, reminders) at once.

        Returns:
            ``False`` (and writes nothing) when the event id was already applied.

        Raises:
            StateConflict: the key is no longer at ``change.version``.
        """
        record = self._records.get((subscription, key))
        if record is None:
            record = _Record()
        ids = change.event_ids
        if not record.applied.isdisjoint(ids):
            return False
        if record.version != change.version:
            raise StateConflict(subscription, key, change.version, record.version)
        record.text = change.text
        record.version += 1
        record.applied.update(ids)
        record.order.append(ids)
        if len(record.order) > self._applied_ids:
            record.applied.difference_update(record.order.popleft())
        self._records[subscription, key] = record
        for reminder in change.reminders:
            self._reminders[reminder.id] = reminder
        return True

    async def keys(self, subscription: str) -> AsyncIterator[str]:
        """Iterate *subscription*'s keys whose state is not empty."""
        for key in self.sync_keys(subscription):
            yield key

    def sync_keys(self, subscription: str) -> list[str]:
        """*subscription*'s keys whose state is not empty, now (no await needed)."""
        return [
            key
            for (sub, key), record in self._records.items()
            if sub == subscription and record.text != EMPTY_STATE
        ]

    async def reminders(self, subscription: str) -> list[Reminder]:
        """*subscription*'s pending reminders, earliest due first."""
        pending = [r for r in self._reminders.values() if r.subscription == subscription]
        pending.sort(key=lambda r: r.due)
        return pending

    async def forget(self, reminder: Reminder) -> None:
        """Remove *reminder*; unknown ones are ignored."""
        self._reminders.pop(reminder.id, None)

    def __repr__(self) -> str:
        return f"MemoryState(keys={len(self._records)}, reminders={len(self._reminders)})"
