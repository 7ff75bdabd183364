"""Time as the bus sees it: a :class:`Clock` Protocol and the real clock.

Every delay the bus waits for -- retry backoff, handler timeouts, schedules --
goes through the bus's clock, so that tests can swap in
:class:`eventbus.testing.FakeClock` and run hours of virtual time at once.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Protocol, final, runtime_checkable

import anyio

__all__ = ["Clock", "RealClock"]


@runtime_checkable
class Clock(Protocol):
    """**Protocol:** the source of time and of waiting for the bus.

    ``now`` is monotonic seconds (only differences matter); ``wall`` is the
    current aware UTC datetime. ``sleep_until`` waits until ``now() >=
    deadline``; ``deadline_scope`` returns a cancel scope that is cancelled
    when ``now()`` reaches *deadline* (used for handler timeouts).
    """

    def now(self) -> float:
        """Monotonic time in seconds."""
        ...

    def wall(self) -> datetime:
        """The current time, aware, in UTC."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Wait until :meth:`now` reaches *deadline*."""
        ...

    def deadline_scope(self, deadline: float) -> AbstractContextManager[anyio.CancelScope]:
        """A cancel scope cancelled when :meth:`now` reaches *deadline*."""
        ...


@final
class RealClock:
    """The event loop's clock; the default :class:`Clock`."""

    __slots__ = ()

    def now(self) -> float:
        """The event loop's monotonic time."""
        return anyio.current_time()

    def wall(self) -> datetime:
        """``datetime.now(UTC)``."""
        return datetime.now(UTC)

    async def sleep_until(self, deadline: float) -> None:
        """``anyio.sleep_until(deadline)``."""
        await anyio.sleep_until(deadline)

    def deadline_scope(self, deadline: float) -> AbstractContextManager[anyio.CancelScope]:
        """``anyio.CancelScope(deadline=deadline)``."""
        return anyio.CancelScope(deadline=deadline)

    def __repr__(self) -> str:
        return "RealClock()"
