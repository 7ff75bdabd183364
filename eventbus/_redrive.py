"""Redrive: delivering an event again to one named subscription.

A dead-letter sink's ``redrive(bus)`` hands each letter back through
:meth:`~eventbus.Bus.publish_to`, which bypasses routing and the ``where``
filter, so only the subscription the letter failed in sees the event again.
"""

from __future__ import annotations

from ._events import Event
from ._lifecycle import BusLifecycle, _State
from ._publishing import Receipt, not_an_event

__all__ = ["BusRedrive"]


class BusRedrive(BusLifecycle):
    """Delivering to one subscription, for redrive (a part of :class:`~eventbus.Bus`)."""

    __slots__ = ()

    async def publish_to(self, name: str, event: Event) -> Receipt:
        """Deliver *event* to the one subscription called *name*, bypassing routing.

        Used to redrive dead letters: only that subscription sees the event,
        and its ``where`` filter is not applied. Waits for room like
        :meth:`publish`. Allowed while the bus drains on close. Counted in
        the subscription's ``redriven`` metric.

        Raises:
            UnknownSubscription: no subscription has that name.
            BusClosed: the bus is not running or draining.
        """
        if self._state not in (_State.RUNNING, _State.CLOSING):
            raise self._closed_error()
        sub = self.subscription(name)
        if not isinstance(event, Event):
            raise not_an_event(event, "publish_to")
        if sub.has_room():
            sub.enqueue(event)
        else:
            await sub.wait_for_room()
            sub.enqueue(event)
        sub._counters.redriven += 1
        return Receipt(event.id, (name,))
