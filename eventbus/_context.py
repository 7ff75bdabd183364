"""The :class:`Context` a handler receives with each invocation."""

from __future__ import annotations

import logging
import math
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any, final

import anyio.from_thread
import attrs

from . import _stateful
from ._events import Event, _new_id

if TYPE_CHECKING:
    from ._bus import Bus, Receipt
    from ._clock import Clock

__all__ = ["Context"]

_handler_logger = logging.getLogger("eventbus.handler")


@final
class Context:
    """What a handler knows about its invocation; pass ``(event, ctx)`` to get it.

    Attributes:
        invocation_id: unique per attempt, like Lambda's ``aws_request_id``.
        subscription: the subscription's name (Lambda's function name).
        attempt: 1 for the first attempt, 2 for the first retry, ...
        deadline: the bus-clock time by which the handler must finish, or
            ``None`` when the subscription has no ``timeout``.
        event: the event being handled (for a batch, the first one).
    """

    # Made for every delivery to an (event, ctx) handler, so it does as little
    # as it can: the invocation id and the logger are made when first read.
    __slots__ = (
        "_bus",
        "_invocation_id",
        "_logger",
        "attempt",
        "deadline",
        "event",
        "subscription",
    )

    def __init__(
        self,
        bus: Bus,
        subscription: str,
        event: Event,
        attempt: int,
        deadline: float | None,
        invocation_id: str | None = None,
    ) -> None:
        self._bus = bus
        self.subscription = subscription
        self.event = event
        self.attempt = attempt
        self.deadline = deadline
        self._invocation_id = invocation_id
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None

    def _renew(self, event: Event) -> None:
        """Serve the next first attempt of the same subscription (internal).

        A worker reuses the Context of its previous delivery when nothing
        else holds it any more (the handler kept no reference): the next
        delivery is a new invocation, with a new id made when first read.
        """
        self.event = event
        self._invocation_id = None
        self._logger = None

    @property
    def invocation_id(self) -> str:
        """Unique per attempt, like Lambda's ``aws_request_id`` (made when first read)."""
        value = self._invocation_id
        if value is None:
            value = self._invocation_id = _new_id()
        return value

    @property
    def clock(self) -> Clock:
        """The bus clock (virtual under ``FakeClock``), for handlers that measure time."""
        return self._bus.clock

    def remaining_time(self) -> float:
        """Seconds left before the timeout (``math.inf`` without a timeout)."""
        if self.deadline is None:
            return math.inf
        return max(0.0, self.deadline - self._bus.clock.now())

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger (``eventbus.handler``) whose records carry this invocation's ids.

        Each record gets the attributes ``subscription``, ``invocation_id``,
        ``event_id``, ``event_type`` and ``attempt`` (use them in a formatter).
        """
        if self._logger is None:
            self._logger = logging.LoggerAdapter(
                _handler_logger,
                {
                    "subscription": self.subscription,
                    "invocation_id": self.invocation_id,
                    "event_id": self.event.id,
                    "event_type": type(self.event).event_type(),
                    "attempt": self.attempt,
                },
            )
        return self._logger

    async def publish(self, event: Event) -> Receipt:
        """Publish a follow-up event caused by the one being handled.

        The new event's ``causation_id`` is set to the handled event's id and
        its ``correlation_id`` to the handled event's correlation id (or its
        id, when it started the chain); values already set on *event* are
        kept. A chain deeper than the bus's ``max_chain_depth`` is a
        recursive loop: the event is not delivered but dead-lettered, with
        condition ``RecursiveLoop``, in every subscription it would have
        reached, and an error is logged. Follow-ups are accepted while the
        bus is draining on close, so chains complete.

        Returns:
            The :class:`~eventbus.Receipt`, as :meth:`Bus.publish` does.
        """
        parent = self.event
        changes: dict[str, Any] = {}
        if event.causation_id is None:
            changes["causation_id"] = parent.id
        if event.correlation_id is None:
            changes["correlation_id"] = parent.correlation_id or parent.id
        if changes:
            event = attrs.evolve(event, **changes)
        return await self._bus._publish_followup(event, parent)

    @property
    def state(self) -> MutableMapping[str, Any]:
        """The state of this event's key, in a subscription made with ``state=``.

        A mapping of JSON values, read on first access. What the handler
        writes is committed with the event id if and only if the attempt
        succeeds; a raised error, a timeout or a cancellation discards it.

        Raises:
            StateError: the subscription has no ``state=``, or the attempt is over.

        .. versionadded:: 0.2
        """
        return _stateful.context_state(self)

    def remind(self, *, after: float, event: Event) -> None:
        """Publish *event*, of this event's key, *after* seconds from now on the bus clock.

        The reminder is committed with the attempt (dropped if the attempt
        fails); with a durable store it survives a restart.

        Raises:
            StateError: no ``state=``, a delay that is not a finite number
                of seconds >= 0, or an event of another key.

        .. versionadded:: 0.2
        """
        _stateful.context_remind(self, after, event)

    def publish_from_thread(self, event: Event) -> Receipt:
        """:meth:`publish` for plain ``def`` handlers, which run in a worker thread.

        Blocks the handler's thread (never the event loop) until the
        follow-up is accepted; stamps it like :meth:`publish`.

        Raises:
            RuntimeError: called on the event-loop thread (use ``await ctx.publish()``).
        """
        result: Receipt = anyio.from_thread.run(self.publish, event)
        return result

    def __repr__(self) -> str:
        return (
            f"Context(subscription={self.subscription!r}, attempt={self.attempt}, "
            f"invocation_id={self.invocation_id!r})"
        )
