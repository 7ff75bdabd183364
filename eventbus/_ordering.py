"""Per-key ordering: with ``ordered_by``, events of one key are handled one at a time.

The worker that takes an event whose key is already being handled does not
run it: it appends it to that key's backlog, which the worker holding the key
drains in publish order. A failed event keeps its key (and its worker) while
it waits for its retry, so nothing of that key overtakes it; other keys run
in parallel on the other workers.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime

import anyio

from ._attempts import KeyFunction, SubscriptionAttempts, _Retry
from ._events import Event

__all__ = ["SubscriptionOrdering"]


class SubscriptionOrdering(SubscriptionAttempts):
    """Per-key ordering of a :class:`~eventbus.Subscription` (a part of it)."""

    __slots__ = ()

    async def _deliver_in_order(self, item: Event | _Retry, key_fn: KeyFunction) -> None:
        """Deliver *item* now, or queue it behind the event of its key being handled."""
        active = self._active_keys
        event = item.event if isinstance(item, _Retry) else item
        try:
            key = key_fn(event)
            backlog = active.get(key)
        except Exception as exc:  # a key function that fails is the handler's failure
            self._take()
            await self._give_up(event, exc, 0, None, "NotRetryable")
            return
        if backlog is not None:
            backlog.append(item)  # stays counted as queued, behind its key
            return
        backlog = active[key] = deque()
        try:
            self._take()
            await self._deliver(item)
            while backlog:
                self._take()
                await self._deliver(backlog.popleft())
        finally:
            del active[key]

    async def _retry_in_place(
        self, event: Event, attempt: int, first_failure: datetime, due: float
    ) -> _Retry:
        """Wait, holding the key and this worker, until *event*'s next attempt is due."""
        c = self._counters
        bus = self._bus
        try:
            await bus.clock.sleep_until(due)
        except anyio.get_cancelled_exc_class():
            if bus._shutting_down:
                c.waiting_retry -= 1
                c.in_flight += 1
                with anyio.CancelScope(shield=True):
                    await self._give_up(event, None, attempt - 1, first_failure, "Shutdown")
            raise
        c.waiting_retry -= 1
        c.in_flight += 1
        return _Retry(event, attempt, first_failure)
