"""A bus over a broker: publishing through a :class:`~eventbus.Transport`, and consuming.

With a broker transport, ``publish`` stores the event on the broker and
each subscription's consumer (its name is the consumer group) takes events
back from it, enqueues the ones it matches, and acknowledges each once it
settles -- so a crashed process's events are delivered again.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Final

import anyio
import anyio.abc
import attrs

from ._deadletter import UndecodableEvent
from ._events import Event, event_class
from ._exceptions import SerializationError
from ._lifecycle import BusLifecycle
from ._publishing import BufferedReceipt, Receipt
from ._subscription import Subscription
from ._transport import Ack, ReportsStatus, SendsMany, TransportStatus

__all__ = ["BusBroker"]

_SEND_CHUNK: Final = 1024  # events publish_many hands a SendsMany transport at once


class BusBroker(BusLifecycle):
    """The broker side of a :class:`~eventbus.Bus` (a part of it)."""

    __slots__ = ()

    async def _send(self, event: Event) -> Receipt:
        """Publish through the broker: stored there, then delivered by the consumers."""
        assert self.transport is not None
        if self._registering:
            await self._subscriptions_registered()
        if self._publish_buffer is None:
            await self.transport.send(event)
            stored = True
        else:
            stored = await self._publish_buffer.send(self.transport, event)
        return self._broker_receipt(event, stored)

    async def _send_many(self, events: Sequence[Event]) -> list[Receipt] | None:
        """Publish *events* through a transport that sends batches; ``None`` if it cannot.

        The batch goes out in chunks of ``_SEND_CHUNK`` (a bound on the
        encoded events held at once), each chunk one ``send_many`` call.
        Not with a publish buffer: an outage must buffer event by event.
        """
        transport: object = self.transport
        if not isinstance(transport, SendsMany) or self._publish_buffer is not None:
            return None
        if self._registering:
            await self._subscriptions_registered()
        for start in range(0, len(events), _SEND_CHUNK):
            await transport.send_many(events[start : start + _SEND_CHUNK])
        return [self._broker_receipt(event, True) for event in events]

    async def _subscriptions_registered(self) -> None:
        """Wait until subscriptions made while running have their groups on the broker."""
        while self._registering:
            if self._registered is None:
                self._registered = anyio.Event()
            await self._registered.wait()

    def _broker_receipt(self, event: Event, stored: bool) -> Receipt:
        plan = self._router.plan(type(event))
        names = plan.names
        if plan.filtered:
            names += tuple(s.name for s in plan.filtered if _matches_quietly(s, event))
        return Receipt(event.id, names) if stored else BufferedReceipt(event.id, names)

    def transport_status(self) -> TransportStatus | None:
        """The broker connection's state, or ``None`` without a broker transport.

        Returns the transport's :class:`~eventbus.TransportStatus`
        (connected, reconnections, the last error) with ``buffered`` set to
        the events waiting in the publish buffer. A transport that cannot
        report its connection gives ``connected=True`` and no history.

        .. versionadded:: 0.2
        """
        transport = self.transport
        if transport is None:
            return None
        if isinstance(transport, ReportsStatus):
            status = transport.status()
        else:
            status = TransportStatus(type(transport).__name__, "", True, 0, None)
        buffered = 0 if self._publish_buffer is None else len(self._publish_buffer)
        return attrs.evolve(status, buffered=buffered)

    def _reported_status(self) -> TransportStatus | None:
        """:meth:`transport_status` for the metrics, which must answer whatever the transport does.

        A ``status()`` that raises gives ``connected=False`` with the error as ``last_error``.
        """
        try:
            return self.transport_status()
        except Exception as exc:
            buffer = self._publish_buffer
            return TransportStatus(
                type(self.transport).__name__,
                "",
                False,
                0,
                f"{type(exc).__name__}: {exc}",
                0 if buffer is None else len(buffer),
            )

    async def _register_consumer(self, sub: Subscription) -> None:
        assert self._tg is not None
        try:
            await self._tg.start(self._consume, sub)
        finally:
            self._registering -= 1
            if not self._registering and self._registered is not None:
                self._registered.set()
                self._registered = None

    async def _consume(
        self,
        sub: Subscription,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run the broker consumer of *sub* (its name is the consumer group)."""
        assert self.transport is not None
        stopped = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                self._consumers[sub.name] = (scope, stopped)
                consume = self.transport.consume
                if sub.ordered_by is not None:
                    # Order per key across processes: one consuming process at a time, where
                    # the transport can (NATS, Redis); others order within each process only.
                    consume = getattr(self.transport, "consume_ordered", consume)
                await consume(
                    sub.name, functools.partial(self._deliver_remote, sub), task_status=task_status
                )
        finally:
            stopped.set()

    async def _deliver_remote(self, sub: Subscription, event: Event, ack: Ack) -> None:
        """Accept an event the broker delivered to *sub*'s group; ack once it settles."""
        if type(event) is UndecodableEvent:
            if _meant_for(sub, event):  # a poison message: dead-letter it, then ack
                sub.register_ack(event, ack)
                self._reject(sub, event, SerializationError(event.reason), "NotRetryable")
            else:
                ack()
            return
        if not isinstance(event, sub.event_types):
            ack()  # the group sees every event; this one is not for the subscription
            return
        try:
            matched = sub.contains(event)
        except Exception as exc:
            sub.register_ack(event, ack)
            self._reject(sub, event, exc, "NotRetryable")
            return
        if not matched:
            ack()
            return
        sub.register_ack(event, ack)
        if not sub.offer(event):
            await sub.wait_for_room()
            sub.enqueue(event)


def _meant_for(sub: Subscription, event: UndecodableEvent) -> bool:
    """Whether a message the transport could not decode may have been for *sub*.

    Yes unless it names a registered event type that *sub* does not take
    (a message without a readable type may be for anyone).
    """
    try:
        cls = event_class(event.event_type_name)
    except SerializationError:
        return True
    return issubclass(cls, sub.event_types)


def _matches_quietly(sub: Subscription, event: Event) -> bool:
    try:
        return sub.contains(event)
    except Exception:
        return True  # it will be dead-lettered there, so it does reach the subscription
