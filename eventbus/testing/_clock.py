"""A virtual clock for tests: hours of retries and schedules in milliseconds."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime, timedelta
from typing import final

import anyio
import anyio.lowlevel

__all__ = ["FakeClock"]


async def _wait_all_tasks_blocked() -> None:
    """``anyio.wait_all_tasks_blocked()``, without its 0.1 s naps on asyncio.

    On asyncio, anyio sleeps a tenth of a second each time it finds a task
    that can still run; an advance that fires many wake-ups would take
    seconds of real time. Here we yield to the loop instead until every
    other task waits on something.
    """
    try:
        this = asyncio.current_task()
    except RuntimeError:  # not running on asyncio
        this = None
    if this is None:
        await anyio.wait_all_tasks_blocked()
        return
    while True:
        await anyio.lowlevel.checkpoint()
        for task in asyncio.all_tasks():
            if task is this:
                continue
            waiter = getattr(task, "_fut_waiter", None)
            if waiter is None or waiter.done():
                break
        else:
            return


@final
class _Timer:
    __slots__ = ("action", "active", "deadline", "seq")

    def __init__(self, deadline: float, seq: int, action: Callable[[], object]) -> None:
        self.deadline = deadline
        self.seq = seq
        self.action = action
        self.active = True

    def __lt__(self, other: _Timer) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)


@final
class FakeClock:
    """A :class:`~eventbus.Clock` whose time moves only when a test says so.

    ``Bus(clock=FakeClock())`` makes retry delays, handler timeouts and
    schedules wait on virtual time; ``await clock.advance(seconds)`` then
    fires everything due in that span, in time order, letting the bus's
    tasks run between fires -- without real waiting::

        clock = FakeClock()
        async with Bus(clock=clock) as bus:
            ...
            await clock.advance(3600)   # an hour of retries, instantly

    Args:
        start: the wall-clock time virtual time starts at (aware; default: now).
    """

    __slots__ = ("_now", "_seq", "_start", "_timers")

    def __init__(self, start: datetime | None = None) -> None:
        if start is None:
            start = datetime.now(UTC)
        elif start.tzinfo is None:
            raise ValueError(
                "FakeClock(start=...) must be timezone-aware, e.g. datetime(..., tzinfo=UTC)"
            )
        self._start = start.astimezone(UTC)
        self._now = 0.0
        self._seq = itertools.count()
        self._timers: list[_Timer] = []

    def now(self) -> float:
        """Virtual monotonic seconds since the clock was made."""
        return self._now

    def wall(self) -> datetime:
        """The virtual wall-clock time (aware, UTC)."""
        return self._start + timedelta(seconds=self._now)

    def pending(self) -> int:
        """How many waits (sleeps, timeouts) are scheduled on this clock."""
        return sum(1 for t in self._timers if t.active)

    def next_deadline(self) -> float | None:
        """The virtual time of the earliest scheduled wake-up, if any."""
        active = [t.deadline for t in self._timers if t.active]
        return min(active) if active else None

    def _add(self, deadline: float, action: Callable[[], object]) -> _Timer:
        timer = _Timer(deadline, next(self._seq), action)
        heapq.heappush(self._timers, timer)
        return timer

    async def sleep_until(self, deadline: float) -> None:
        """Wait until virtual time reaches *deadline*."""
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        timer = self._add(deadline, event.set)
        try:
            await event.wait()
        finally:
            timer.active = False

    def deadline_scope(self, deadline: float) -> AbstractContextManager[anyio.CancelScope]:
        """A cancel scope cancelled when virtual time reaches *deadline*."""
        return self._deadline_scope(deadline)

    @contextmanager
    def _deadline_scope(self, deadline: float) -> Iterator[anyio.CancelScope]:
        scope = anyio.CancelScope()
        if deadline <= self._now:
            scope.cancel()
            timer = None
        else:
            timer = self._add(deadline, scope.cancel)
        try:
            with scope:
                yield scope
        finally:
            if timer is not None:
                timer.active = False

    async def jump(self, seconds: float) -> None:
        """Move virtual time forward by *seconds* at once, as if the process had been paused.

        Unlike :meth:`advance`, nothing runs on the way: every wait that
        fell due in the span wakes up only at the end, late -- as after a
        laptop sleep or a long garbage-collection pause. Use it to test
        catch-up behaviour (``bus.schedule(..., catch_up=...)``).

        Raises:
            ValueError: *seconds* is negative.
        """
        if seconds < 0:
            raise ValueError(f"FakeClock.jump() cannot go back in time (got {seconds!r})")
        await _wait_all_tasks_blocked()
        self._now += seconds
        timers = self._timers
        while timers and (not timers[0].active or timers[0].deadline <= self._now):
            timer = heapq.heappop(timers)
            if timer.active:
                timer.active = False
                timer.action()
            await _wait_all_tasks_blocked()
        await _wait_all_tasks_blocked()

    async def advance(self, seconds: float) -> None:
        """Move virtual time forward by *seconds*, firing every wait due on the way.

        Wake-ups happen one at a time in deadline order; after each, every
        task runs until it blocks again, so work triggered by one fire (a
        retry that fails and schedules the next one) is itself fired if it
        falls inside the span.

        Raises:
            ValueError: *seconds* is negative.
        """
        if seconds < 0:
            raise ValueError(f"FakeClock.advance() cannot go back in time (got {seconds!r})")
        target = self._now + seconds
        await _wait_all_tasks_blocked()
        timers = self._timers
        while timers:
            timer = timers[0]
            if not timer.active:
                heapq.heappop(timers)
                continue
            if timer.deadline > target:
                break
            heapq.heappop(timers)
            self._now = max(self._now, timer.deadline)
            timer.active = False
            timer.action()
            await _wait_all_tasks_blocked()
        self._now = target
        await _wait_all_tasks_blocked()

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:g}, wall={self.wall().isoformat()})"
