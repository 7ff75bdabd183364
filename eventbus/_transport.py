"""Transports: what carries events between ``publish()`` and subscription queues.

In one process nothing is needed: the bus hands events straight to the
subscriptions' queues (:class:`MemoryTransport`, the default). When several
processes share a bus, a broker carries them -- NATS JetStream
(``eventbus.bridges.nats``) or Redis Streams (``eventbus.bridges.redis``) --
never a home-made one.

With a broker transport:

* ``publish`` returns once the broker has stored the event (CloudEvents JSON);
* each subscription's ``name`` is a durable consumer group on the broker, so
  processes with the same subscription share its work, and every
  subscription still sees every event;
* an event is acknowledged to the broker only once it is settled in this
  process -- handled, or dead-lettered -- so the events of a worker that
  crashes are delivered again (at least once; see ``idempotent``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeAlias, final, runtime_checkable

import anyio.abc
import attrs

from ._events import Event

__all__ = [
    "Ack",
    "Deliver",
    "MemoryTransport",
    "ReportsStatus",
    "SendsMany",
    "Transport",
    "TransportStatus",
]

Ack: TypeAlias = Callable[[], None]
"""Acknowledge one delivery to the broker (called once, when the event settles)."""

Deliver: TypeAlias = Callable[[Event, Ack], Awaitable[None]]
"""The bus's side of a consumer: accept *event*; call *ack* once it is settled."""


@runtime_checkable
class Transport(Protocol):
    """**Protocol:** carries events between processes through a real broker.

    The bus calls :meth:`start` when it starts, :meth:`send` for each
    ``publish``, :meth:`consume` once per subscription (in a task of its
    own, until cancelled), :meth:`pending` while it drains, and
    :meth:`aclose` when it closes.
    """

    async def start(self) -> None:
        """Connect, and create the stream if needed."""
        ...

    async def send(self, event: Event) -> None:
        """Store *event* on the broker; return only once it is stored."""
        ...

    async def consume(
        self,
        group: str,
        deliver: Deliver,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Deliver the events of consumer group *group* until cancelled.

        Creates the durable group (starting at new events) before calling
        ``task_status.started()``, so an event sent after that is seen.
        Each message is decoded with ``from_cloudevent`` (registered event
        classes only); ``deliver(event, ack)`` is awaited (it waits while the
        subscription's queue is full: backpressure reaches the broker) and
        ``ack()`` is called later, once the event is settled. A message of
        an event type no class in this process is registered for is logged
        and acknowledged. Any other message that cannot be decoded -- not
        JSON, not a CloudEvent, a field its class refuses, whatever the
        decoder raised -- is handed to ``deliver`` as an
        :class:`~eventbus.UndecodableEvent` (its raw text and the reason):
        the bus dead-letters it in the subscription (``NotRetryable``) and
        then acknowledges it, so one poison message never stops a consumer.
        """
        ...

    async def pending(self, group: str) -> int:
        """Messages of *group* not yet acknowledged (delivered or not); for ``drain``."""
        ...

    async def aclose(self) -> None:
        """Disconnect. Unacknowledged events stay on the broker for redelivery."""
        ...


@final
@attrs.frozen
class TransportStatus:
    """A snapshot of a broker transport's connection, from ``bus.transport_status()``.

    Attributes:
        transport: what carries the events: ``"nats"``, ``"redis"``, ``"mqtt"``.
        url: where the broker is (without a password).
        connected: whether the transport holds a working connection now.
        reconnects: how many times the connection was lost and made again
            since the transport started.
        last_error: the last connection or publish failure, as text
            (``None`` when there was none).
        buffered: events published during an outage that wait in this
            process's publish buffer for the broker (``Bus(publish_buffer=...)``).

    .. versionadded:: 0.2
    """

    transport: str
    url: str
    connected: bool
    reconnects: int
    last_error: str | None
    buffered: int = 0


@runtime_checkable
class ReportsStatus(Protocol):
    """**Protocol:** a transport that reports its connection (an optional capability).

    .. versionadded:: 0.2
    """

    def status(self) -> TransportStatus:
        """The connection's state now."""
        ...


@runtime_checkable
class SendsMany(Protocol):
    """**Protocol:** a transport that stores a batch of events in few round trips (optional).

    ``Bus.publish_many`` hands its events to :meth:`send_many` in chunks
    instead of sending them one by one from many tasks: the transport
    encodes the whole chunk, keeps many publishes in flight at once and
    wakes the publisher once, when the last is stored.

    .. versionadded:: 0.2
    """

    async def send_many(self, events: Sequence[Event]) -> None:
        """Store every event of *events* on the broker, in order; return once all are stored.

        Every event is encoded before any is sent, so a
        :class:`~eventbus.SerializationError` leaves the broker untouched.
        A :class:`~eventbus.TransportError` names the first event the broker
        did not confirm; events before it are stored, and later ones may be.
        """
        ...


@final
class MemoryTransport:
    """The in-process transport: events go straight to subscription queues.

    ``Bus()`` and ``Bus(transport=MemoryTransport())`` are the same.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "MemoryTransport()"
