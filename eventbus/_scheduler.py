"""The schedules of a bus (the EventBridge Scheduler model), behind ``bus.schedule``.

Each schedule is a task in the bus's task group that sleeps on the bus clock
until its next fire time and publishes a :class:`~eventbus.ScheduledEvent`
(or the event it was given). The expression parser (``_cron``, with its time
zone database) is imported on the first ``bus.schedule`` call, not before.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Literal, final

import anyio
import anyio.abc
import attrs

from ._events import Event, ScheduledEvent, _new_id
from ._exceptions import BusClosed, ScheduleError
from ._lifecycle import _State

if TYPE_CHECKING:
    from ._bus import Bus
    from ._cron import Schedule

__all__ = ["BusSchedules", "ScheduleInfo", "Scheduler"]


# -- the scheduler behind Bus.schedule ------------------------------------------------

CatchUp = Literal["none", "one", "all"]
_CATCH_UP = ("none", "one", "all")
_ON_TIME = 1.0  # seconds late a fire may be and still count as on time
EventFactory = Callable[[datetime], Event]


@final
@attrs.frozen
class ScheduleInfo:
    """A schedule on a bus, as listed by ``bus.schedules()``.

    Attributes:
        name: the schedule's name (the ``rule`` of its events).
        expression: the cron/rate/at expression.
        timezone: the IANA zone the expression is read in.
        next_fire: the next fire time (aware UTC), or ``None`` when it will not fire again.
        fired: how many times it has fired.
        missed: fires skipped by the ``catch_up`` policy after a pause.
    """

    name: str
    expression: str
    timezone: str
    next_fire: datetime | None
    fired: int
    missed: int


@final
class _Entry:
    __slots__ = (
        "catch_up",
        "factory",
        "fired",
        "flexible_window",
        "last",
        "missed",
        "name",
        "next_fire",
        "schedule",
        "scope",
    )

    def __init__(
        self,
        name: str,
        schedule: Schedule,
        factory: EventFactory,
        flexible_window: float | None,
        catch_up: CatchUp,
        start: datetime,
    ) -> None:
        self.name = name
        self.schedule = schedule
        self.factory = factory
        self.flexible_window = flexible_window
        self.catch_up = catch_up
        self.last = start
        self.next_fire = schedule.next_after(start)
        self.fired = 0
        self.missed = 0
        self.scope: anyio.CancelScope | None = None

    def info(self) -> ScheduleInfo:
        return ScheduleInfo(
            self.name,
            self.schedule.expression,
            self.schedule.timezone,
            self.next_fire,
            self.fired,
            self.missed,
        )


@final
class Scheduler:
    """The schedules of one bus (internal; reached through ``Bus.schedule``)."""

    __slots__ = ("_bus", "_entries", "_tg")

    def __init__(self, bus: Bus) -> None:
        self._bus = bus
        self._entries: dict[str, _Entry] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    def add(
        self,
        expression: str,
        *,
        name: str,
        timezone: str,
        event: Event | EventFactory | None,
        flexible_window: float | None,
        catch_up: str,
        allow_seconds: bool = False,
    ) -> ScheduleInfo:
        if not isinstance(name, str) or not name:
            raise ScheduleError(f"schedule(name=...) must be a non-empty string, got {name!r}")
        if name in self._entries:
            raise ScheduleError(
                f'a schedule named "{name}" already exists on this bus; '
                "pick another name, or unschedule() it first"
            )
        if catch_up not in _CATCH_UP:
            raise ScheduleError(
                f"schedule(catch_up={catch_up!r}): expected one of {', '.join(_CATCH_UP)}"
            )
        if flexible_window is not None and (
            isinstance(flexible_window, bool)
            or not isinstance(flexible_window, int | float)
            or flexible_window < 0
        ):
            raise ScheduleError(
                f"schedule(flexible_window=...) must be seconds >= 0 or None, got {flexible_window!r}"
            )
        from ._cron import RateSchedule, parse_schedule  # loaded on first use

        schedule = parse_schedule(expression, timezone, allow_seconds=allow_seconds)
        start = self._bus.clock.wall()
        if isinstance(schedule, RateSchedule) and schedule.anchor is None:
            schedule = schedule.with_anchor(start)
        entry = _Entry(
            name,
            schedule,
            _factory(name, event),
            None if flexible_window is None else float(flexible_window),
            catch_up,  # type: ignore[arg-type]
            start,
        )
        self._entries[name] = entry
        if self._tg is not None:
            self._tg.start_soon(self._run, entry)
        return entry.info()

    def remove(self, name: str) -> None:
        entry = self._entries.pop(name, None)
        if entry is None:
            known = ", ".join(repr(n) for n in self._entries) or "none"
            raise ScheduleError(f'no schedule named "{name}"; schedules: {known}')
        if entry.scope is not None:
            entry.scope.cancel()

    def infos(self) -> list[ScheduleInfo]:
        return [e.info() for e in self._entries.values()]

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        self._tg = tg
        for entry in self._entries.values():
            tg.start_soon(self._run, entry)

    async def _run(self, entry: _Entry) -> None:
        clock = self._bus.clock
        with anyio.CancelScope() as scope:
            entry.scope = scope
            while entry.next_fire is not None:
                delay = (entry.next_fire - clock.wall()).total_seconds()
                if entry.flexible_window:
                    delay += random.uniform(0.0, entry.flexible_window)
                if delay > 0:
                    await clock.sleep_until(clock.now() + delay)
                now = clock.wall()
                due = list(entry.schedule.fires_between(entry.last, now))
                entry.last = now
                entry.next_fire = entry.schedule.next_after(now)
                for fire in self._select(entry, due, now):
                    try:
                        await self._bus.publish(entry.factory(fire))
                    except BusClosed:
                        return
                    entry.fired += 1
        entry.scope = None

    def stop(self) -> None:
        """Stop firing (the bus is closing); schedules stay listed."""
        for entry in self._entries.values():
            if entry.scope is not None:
                entry.scope.cancel()

    @staticmethod
    def _select(entry: _Entry, due: list[datetime], now: datetime) -> list[datetime]:
        """Apply the catch-up policy to the fires that came due."""
        if len(due) <= 1 and (
            not due or (now - due[0]).total_seconds() <= _ON_TIME + (entry.flexible_window or 0)
        ):
            return due
        # Woken late (the process paused, the machine slept): some fires were missed.
        window = _ON_TIME + (entry.flexible_window or 0)
        on_time = [t for t in due if (now - t).total_seconds() <= window]
        late = [t for t in due if t not in on_time]
        if entry.catch_up == "all":
            return due
        if entry.catch_up == "one":
            chosen = on_time or late[-1:]
            entry.missed += len(due) - len(chosen)
            return chosen
        entry.missed += len(late)
        return on_time


def _factory(name: str, event: Event | EventFactory | None) -> EventFactory:
    if event is None:
        return lambda fire: ScheduledEvent(
            rule=name, scheduled_time=fire, source=f"eventbus.schedules/{name}", time=fire
        )
    if isinstance(event, Event):
        template = event
        return lambda fire: attrs.evolve(template, id=_new_id(), time=fire)
    if callable(event):
        return event
    raise ScheduleError(
        f"schedule(event=...) must be an Event to publish on each fire, a function "
        f"(scheduled_time) -> Event, or None for ScheduledEvent; got {type(event).__name__}"
    )


# -- the schedule API of the Bus -------------------------------------------------------


class BusSchedules:
    """The schedule API of a :class:`~eventbus.Bus` (a part of it)."""

    __slots__ = ()

    if TYPE_CHECKING:
        _scheduler: Scheduler
        _state: _State
        _loop_thread: int | None

    def _check_thread(self, method: str) -> None:
        """Refuse a call from a thread other than the running bus's loop (it could not start a task)."""
        if (
            self._state is _State.RUNNING
            and self._loop_thread is not None
            and threading.get_ident() != self._loop_thread
        ):
            raise RuntimeError(
                f"Bus.{method}() was called from a thread that is not the bus's event-loop "
                f"thread. From plain threads, use BlockingBus.{method}(...) -- "
                f"blocking_bus.{method}(...), not blocking_bus.bus.{method}(...); in an async "
                f"program, call anyio.from_thread.run_sync(bus.{method}, ...) from the thread"
            )

    def schedule(
        self,
        expression: str,
        *,
        name: str,
        timezone: str = "UTC",
        event: Event | Callable[[datetime], Event] | None = None,
        flexible_window: float | None = None,
        catch_up: Literal["none", "one", "all"] = "one",
        allow_seconds: bool = False,
    ) -> ScheduleInfo:
        """Publish an event on a schedule, as an EventBridge rule or Scheduler schedule does.

        Args:
            expression: ``cron(Minutes Hours Day-of-month Month Day-of-week Year)``,
                ``rate(N unit)`` or ``at(yyyy-mm-ddThh:mm:ss)``; see
                :func:`~eventbus.parse_schedule`. A rate counts from now.
            name: the schedule's name, unique on this bus; the ``rule`` of
                the :class:`~eventbus.ScheduledEvent`s it publishes.
            timezone: the IANA zone the expression's wall-clock times are in.
            event: what to publish on each fire: ``None`` for a
                ``ScheduledEvent(rule=name, scheduled_time=...)``; an event
                to publish a copy of (new ``id``, ``time`` = the fire time); or
                a function ``(scheduled_time) -> Event``.
            flexible_window: seconds within which each fire may be delayed at
                random (EventBridge Scheduler's flexible time window), to
                spread load.
            catch_up: what to do with fires missed while the process was
                paused (laptop sleep, a long GC): ``"none"`` skips them,
                ``"one"`` (default) publishes the latest one, ``"all"``
                publishes every one, in order. Skipped fires are counted in
                ``ScheduleInfo.missed``.
            allow_seconds: accept sub-minute rates such as ``rate(10 seconds)``,
                which EventBridge does not offer (default ``False``); see
                :func:`~eventbus.parse_schedule`.

                .. versionadded:: 0.2

        Times follow the bus clock, so ``FakeClock.advance`` fires schedules
        in virtual time. Schedules stop when the bus starts closing.

        Returns:
            The schedule's :class:`~eventbus.ScheduleInfo`, with its next fire time.

        Raises:
            ScheduleError: the expression, time zone, name or an option is
                invalid (the message says which and why).
            RuntimeError: called from another thread than the running bus's
                event loop (use :meth:`BlockingBus.schedule` from plain threads).
        """
        if self._state in (_State.CLOSING, _State.CLOSED):
            raise BusClosed("cannot schedule: the bus is closing or closed")
        self._check_thread("schedule")
        return self._scheduler.add(
            expression,
            name=name,
            timezone=timezone,
            event=event,
            flexible_window=flexible_window,
            catch_up=catch_up,
            allow_seconds=allow_seconds,
        )

    def unschedule(self, name: str) -> None:
        """Stop and remove the schedule called *name*.

        Raises:
            ScheduleError: there is no such schedule.
            RuntimeError: called from another thread than the running bus's event loop.
        """
        self._check_thread("unschedule")
        self._scheduler.remove(name)

    def schedules(self) -> list[ScheduleInfo]:
        """Every schedule on this bus with its next fire time, in creation order."""
        return self._scheduler.infos()
