"""The bounded publish buffer: ``Bus(transport=..., publish_buffer=N)`` rides out short outages.

With a buffer, a publish whose broker is unreachable (the transport raised
:class:`~eventbus.TransportError`) does not fail: the event waits in this
process's memory, and a task of the bus sends the buffered events, oldest
first, as soon as the broker takes them again. While events wait, new
publishes queue behind them, so the broker receives them in publish order.
When *N* events wait, ``publish`` raises :class:`~eventbus.BusFull`.

The guarantee, precisely: a publish that returns a plain ``Receipt``
(``receipt.buffered`` is false) returns after the broker stored the event.
A publish that returns with ``receipt.buffered`` true has **not** reached
the broker: the event is only in this process's memory, and is lost if the
process dies (or the bus closes, after its grace period) before the broker
comes back. ``bus.drain()`` waits for the buffer to empty;
``bus.transport_status().buffered`` counts what waits.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Final, final

import anyio

from ._events import Event
from ._exceptions import BusFull, TransportError
from ._transport import Transport

__all__ = ["PublishBuffer"]

logger = logging.getLogger("eventbus")

_FIRST_RETRY: Final = 0.05  # seconds before sending a buffered event again
_MAX_RETRY: Final = 2.0  # seconds between attempts at most


@final
class PublishBuffer:
    """Events accepted during an outage, waiting for the broker (internal)."""

    __slots__ = ("_capacity", "_empty", "_events", "_wake")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._events: deque[Event] = deque()
        self._wake: anyio.Event | None = None  # set when an event is buffered
        self._empty: anyio.Event | None = None  # set when the buffer empties

    def __len__(self) -> int:
        return len(self._events)

    @property
    def capacity(self) -> int:
        return self._capacity

    async def send(self, transport: Transport, event: Event) -> bool:
        """Store *event* on the broker, or buffer it; return whether the broker stored it.

        Raises:
            BusFull: the broker did not take it and the buffer is full.
            SerializationError: the event cannot be encoded (never buffered).
        """
        if self._events:  # keep publish order: behind what already waits
            self._add(event, None)
            return False
        try:
            await transport.send(event)
        except TransportError as exc:
            self._add(event, exc)
            return False
        return True

    def _add(self, event: Event, cause: TransportError | None) -> None:
        if len(self._events) >= self._capacity:
            raise BusFull(
                f"the broker is not taking events and the publish buffer is full "
                f"({self._capacity} events wait); event {event.id} was not published. "
                "Wait for the broker to come back (bus.transport_status()), or raise "
                "Bus(publish_buffer=...)"
            ) from cause
        if not self._events:
            logger.warning(
                "the broker did not take event %s (%s); buffering publishes in memory "
                "(up to %d) until it does",
                event.id,
                cause,
                self._capacity,
            )
        self._events.append(event)
        if self._wake is not None:
            self._wake.set()

    async def run(self, transport: Transport) -> None:
        """Send buffered events, oldest first, retrying with backoff; runs until cancelled."""
        delay = _FIRST_RETRY
        while True:
            while not self._events:
                self._wake = anyio.Event()
                await self._wake.wait()
                self._wake = None
            event = self._events[0]
            try:
                await transport.send(event)
            except TransportError as exc:
                logger.debug("sending buffered event %s failed (%s); retrying", event.id, exc)
                await anyio.sleep(delay)
                delay = min(_MAX_RETRY, delay * 2)
                continue
            delay = _FIRST_RETRY
            self._events.popleft()
            if not self._events:
                logger.info("the broker took every buffered event again")
                if self._empty is not None:
                    self._empty.set()
                    self._empty = None

    async def wait_empty(self) -> None:
        """Wait until no event waits in the buffer."""
        while self._events:
            if self._empty is None:
                self._empty = anyio.Event()
            await self._empty.wait()

    def abandon(self) -> list[Event]:
        """Empty the buffer and return what was in it (the bus is closing)."""
        events = list(self._events)
        self._events.clear()
        return events
