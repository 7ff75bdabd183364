"""Dead letters: where an event goes when its handler cannot succeed."""

from __future__ import annotations

import logging
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, final, runtime_checkable

import attrs

from ._events import Event
from ._exceptions import error_info
from ._retry import DeadLetterCondition

if TYPE_CHECKING:
    from ._bus import Bus

__all__ = ["DeadLetter", "DeadLetterSink", "ErrorInfo", "MemoryDeadLetters"]

logger = logging.getLogger("eventbus.deadletters")


@final
@attrs.frozen
class ErrorInfo:
    """A failure in AWS Lambda's error shape.

    Attributes:
        error_type: the exception's class name (``errorType``).
        error_message: ``str(exception)`` (``errorMessage``).
        stack_trace: the formatted traceback lines (``stackTrace``).
    """

    error_type: str
    error_message: str
    stack_trace: tuple[str, ...] = ()

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Describe *exc*."""
        info = error_info(exc)
        return cls(info["errorType"], info["errorMessage"], tuple(info["stackTrace"]))

    def to_dict(self) -> dict[str, Any]:
        """``{"errorType", "errorMessage", "stackTrace"}``, as Lambda reports errors."""
        return {
            "errorType": self.error_type,
            "errorMessage": self.error_message,
            "stackTrace": list(self.stack_trace),
        }


@final
@attrs.frozen
class DeadLetter:
    """An event that one subscription could not handle, and why.

    Attributes:
        event: the event, unchanged.
        subscription: the name of the subscription that failed it.
        error: the last failure, in Lambda's error shape.
        attempts: how many times the handler ran (0 when it never did).
        first_failure: when the first attempt failed (aware UTC).
        last_failure: when the last attempt failed (aware UTC).
        condition: why the bus gave up: ``RetriesExhausted``,
            ``EventAgeExceeded``, ``Timeout``, ``RecursiveLoop``, ``Shutdown``
            or ``NotRetryable``.
        id: this letter's own id.
        exception: the exception object itself, when the letter was made in
            this process (not stored by durable sinks; not compared).
    """

    event: Event
    subscription: str
    error: ErrorInfo
    attempts: int
    first_failure: datetime
    last_failure: datetime
    condition: DeadLetterCondition = "RetriesExhausted"
    id: str = attrs.field(factory=lambda: uuid.uuid4().hex)
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)


@runtime_checkable
class DeadLetterSink(Protocol):
    """**Protocol:** keeps the events the bus gave up on.

    ``put`` must store the letter durably enough for the sink's promise
    before returning; the bus counts the event as dead-lettered only then.
    A sink that raises from ``put`` is logged and the letter falls back to
    an in-memory sink, so no event is lost. A sink iterates over its letters
    (oldest first), has ``len()``, and ``redrive(bus)`` delivers them again,
    each to the subscription it failed in.
    """

    async def put(self, letter: DeadLetter) -> None:
        """Store *letter*."""
        ...

    def __iter__(self) -> Iterator[DeadLetter]:
        """The letters, oldest first."""
        ...

    def __len__(self) -> int:
        """How many letters the sink holds."""
        ...

    async def redrive(self, bus: Bus, *, subscription: str | None = None) -> int:
        """Deliver letters again to their original subscriptions; return how many."""
        ...


@final
class MemoryDeadLetters:
    """The default sink: dead letters kept in memory, in arrival order.

    Iterate over it (``list(bus.dead_letters)``), take ``len()``, and
    ``await sink.redrive(bus)`` to deliver the letters again to their
    original subscriptions.

    Args:
        maxlen: keep at most this many letters; older ones are evicted,
            counted in :attr:`evicted` and logged. ``None`` (default): unbounded.
    """

    __slots__ = ("_letters", "evicted", "maxlen")

    def __init__(self, *, maxlen: int | None = None) -> None:
        if maxlen is not None and (isinstance(maxlen, bool) or maxlen < 1):
            raise ValueError(f"MemoryDeadLetters(maxlen=...) must be >= 1 or None, got {maxlen!r}")
        self.maxlen = maxlen
        self.evicted = 0
        self._letters: deque[DeadLetter] = deque()

    async def put(self, letter: DeadLetter) -> None:
        """Keep *letter*, evicting the oldest one when full."""
        self.append(letter)

    def append(self, letter: DeadLetter) -> None:
        """Keep *letter* (synchronous form of :meth:`put`)."""
        self._letters.append(letter)
        if self.maxlen is not None and len(self._letters) > self.maxlen:
            old = self._letters.popleft()
            self.evicted += 1
            logger.warning(
                "dead letter %s for subscription %r evicted: MemoryDeadLetters(maxlen=%d) is full",
                old.id,
                old.subscription,
                self.maxlen,
            )

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(tuple(self._letters))

    def __len__(self) -> int:
        return len(self._letters)

    def __bool__(self) -> bool:
        return True

    def clear(self) -> None:
        """Forget every letter."""
        self._letters.clear()

    def remove(self, letter: DeadLetter) -> None:
        """Forget one letter (by identity of its ``id``)."""
        for i, item in enumerate(self._letters):
            if item.id == letter.id:
                del self._letters[i]
                return

    async def redrive(self, bus: Bus, *, subscription: str | None = None) -> int:
        """Deliver letters again to the subscription each one failed in.

        Each letter is removed once its subscription has accepted the event
        again; other subscriptions never see it. Letters for a subscription
        that no longer exists stay in the sink.

        Args:
            bus: the bus to deliver on.
            subscription: only redrive letters of this subscription.

        Returns:
            How many letters were redriven.
        """
        moved = 0
        for letter in tuple(self._letters):
            if subscription is not None and letter.subscription != subscription:
                continue
            if not bus.has_subscription(letter.subscription):
                continue
            await bus.publish_to(letter.subscription, letter.event)
            self.remove(letter)
            moved += 1
        return moved

    def __repr__(self) -> str:
        return f"MemoryDeadLetters(<{len(self._letters)} letters>)"
