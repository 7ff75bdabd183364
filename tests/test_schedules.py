"""Bus.schedule: schedules that publish events on the bus clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
import pytest

from eventbus import Bus, BusClosed, Event, ScheduledEvent, ScheduleError, ScheduleInfo
from eventbus.testing import FakeClock

START = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday


@attrs.frozen
class Tick(Event):
    label: str


def _recorder(bus: Bus, event_type: type[Event] = ScheduledEvent) -> list[Event]:
    seen: list[Event] = []

    async def record(event: Event) -> None:
        seen.append(event)

    bus.subscribe(event_type, record, name=f"record-{event_type.__name__}")
    return seen


async def test_a_day_of_rate_one_minute_fires_1440_times_quickly() -> None:
    """A day of rate(1 minute) on the FakeClock fires exactly 1,440 times, without real waiting."""
    clock = FakeClock(START)
    async with Bus(clock=clock) as bus:
        seen = _recorder(bus)
        bus.schedule("rate(1 minute)", name="tick")
        await clock.advance(86_400)
        await bus.drain()
    assert len(seen) == 1440
    first, last = seen[0], seen[-1]
    assert isinstance(first, ScheduledEvent)
    assert isinstance(last, ScheduledEvent)
    assert first.scheduled_time == START + timedelta(minutes=1)
    assert last.scheduled_time == START + timedelta(days=1)


async def test_scheduled_events_carry_rule_time_and_source() -> None:
    """Each ScheduledEvent names its rule, its due time, and an eventbus.schedules source."""
    clock = FakeClock(START)
    async with Bus(clock=clock) as bus:
        seen = _recorder(bus)
        bus.schedule("cron(30 9 * * ? *)", name="morning")
        await clock.advance(86_400)
        await bus.drain()
    assert len(seen) == 1
    event = seen[0]
    assert isinstance(event, ScheduledEvent)
    assert event.rule == "morning"
    assert event.scheduled_time == datetime(2026, 1, 1, 9, 30, tzinfo=UTC)
    assert event.time == event.scheduled_time
    assert event.source == "eventbus.schedules/morning"


async def test_cron_in_a_time_zone_fires_at_local_wall_time() -> None:
    """A weekday cron in America/New_York fires at 08:00 local on weekdays only."""
    clock = FakeClock(START)
    async with Bus(clock=clock) as bus:
        seen = _recorder(bus)
        bus.schedule("cron(0 8 ? * MON-FRI *)", name="standup", timezone="America/New_York")
        await clock.advance(7 * 86_400)
        await bus.drain()
    times = [e.scheduled_time for e in seen if isinstance(e, ScheduledEvent)]
    # Thu 1, Fri 2, Mon 5, Tue 6, Wed 7 January 2026 at 08:00 EST (13:00 UTC)
    assert times == [datetime(2026, 1, d, 13, 0, tzinfo=UTC) for d in (1, 2, 5, 6, 7)]


async def test_at_fires_once() -> None:
    """A one-time at() expression fires once and then lists no next fire."""
    clock = FakeClock(START)
    async with Bus(clock=clock) as bus:
        seen = _recorder(bus)
        bus.schedule("at(2026-01-01T12:00:00)", name="once")
        await clock.advance(3 * 86_400)
        await bus.drain()
        (info,) = bus.schedules()
    assert len(seen) == 1
    assert info.next_fire is None
    assert info.fired == 1


async def test_event_template_is_copied_with_fresh_ids() -> None:
    """An event template is published anew on each fire, with a new id and the fire time."""
    clock = FakeClock(START)
    async with Bus(clock=clock) as bus:
        seen = _recorder(bus, Tick)
        bus.schedule("rate(1 hour)", name="hourly", event=Tick("hello"))
        await clock.advance(3 * 3600)
        await bus.drain()
    assert [e.label for e in seen if isinstance(e, Tick)] == ["hello"] * 3
    assert len({e.id for e in seen}) == 3
    assert [e.time for e in seen] == [START + timedelta(hours=h) for h in (1, 2, 3)]


async def test_event_factory_receives_the_scheduled_time() -> None:
    """A factory function builds each fire's event from its scheduled time."""
    clock = FakeClock(START)
    async with Bus(clock=clock) as bus:
        seen = _recorder(bus, Tick)
        bus.schedule("rate(2 hours)", name="f", event=lambda t: Tick(t.strftime("%H:%M")))
        await clock.advance(6 * 3600)
        await bus.drain()
    assert [e.label for e in seen if isinstance(e, Tick)] == ["02:00", "04:00", "06:00"]


async def test_schedules_lists_next_fire_and_unschedule_stops_it() -> None:
    """bus.schedules() shows the next fire; unschedule() removes the schedule and stops it."""
    clock = FakeClock(START)
    async with Bus(clock=clock) as bus:
        seen = _recorder(bus)
        info = bus.schedule("rate(10 minutes)", name="ten")
        assert isinstance(info, ScheduleInfo)
        assert info.next_fire == START + timedelta(minutes=10)
        await clock.advance(1200)
        bus.unschedule("ten")
        await clock.advance(3600)
        await bus.drain()
        assert bus.schedules() == []
    assert len(seen) == 2


async def test_schedule_made_before_the_bus_starts_runs_once_it_does() -> None:
    """A schedule added before 'async with' starts firing when the bus starts."""
    clock = FakeClock(START)
    bus = Bus(clock=clock)
    seen = _recorder(bus)
    bus.schedule("rate(1 minute)", name="early")
    async with bus:
        await clock.advance(180)
        await bus.drain()
    assert len(seen) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expression": "cron(0 12 * * * *)"}, "day-of-month and day-of-week"),
        ({"expression": "rate(1 minutes)"}, "rate"),
        ({"expression": "rate(5 minutes)", "timezone": "Mars/Olympus"}, "Mars/Olympus"),
        ({"expression": "rate(5 minutes)", "catch_up": "some"}, "catch_up"),
        ({"expression": "rate(5 minutes)", "flexible_window": -1}, "flexible_window"),
        ({"expression": "rate(5 minutes)", "event": 42}, "event"),
    ],
)
async def test_invalid_schedules_fail_at_schedule_time(
    kwargs: dict[str, object], message: str
) -> None:
    """Bad expressions, zones and options raise ScheduleError naming the problem."""
    async with Bus(clock=FakeClock(START)) as bus:
        with pytest.raises(ScheduleError, match=message):
            bus.schedule(name="bad", **kwargs)  # type: ignore[arg-type]
        assert bus.schedules() == []


async def test_duplicate_schedule_name_is_refused() -> None:
    """Two schedules cannot share a name."""
    async with Bus(clock=FakeClock(START)) as bus:
        bus.schedule("rate(5 minutes)", name="x")
        with pytest.raises(ScheduleError, match='schedule named "x" already exists'):
            bus.schedule("rate(1 hour)", name="x")


async def test_unschedule_unknown_name_is_an_error() -> None:
    """Unscheduling a name that does not exist says which schedules do."""
    async with Bus(clock=FakeClock(START)) as bus:
        bus.schedule("rate(5 minutes)", name="real")
        with pytest.raises(ScheduleError, match="'real'"):
            bus.unschedule("imaginary")


async def test_schedules_stop_when_the_bus_closes() -> None:
    """Closing the bus stops its schedules without errors; scheduling afterwards is refused."""
    clock = FakeClock(START)
    bus = Bus(clock=clock)
    async with bus:
        seen = _recorder(bus)
        bus.schedule("rate(1 minute)", name="tick")
        await clock.advance(60)
    assert len(seen) == 1
    with pytest.raises(BusClosed):
        bus.schedule("rate(1 minute)", name="late")


@pytest.mark.parametrize(
    ("catch_up", "published", "missed"),
    [("all", 10, 0), ("one", 1, 9), ("none", 0, 10)],
)
async def test_catch_up_decides_what_happens_to_fires_missed_in_a_pause(
    catch_up: str, published: int, missed: int
) -> None:
    """After a pause, catch_up="all" publishes every missed fire, "one" the latest, "none" nothing."""
    clock = FakeClock(START)
    async with Bus(clock=clock) as bus:
        seen = _recorder(bus)
        bus.schedule("rate(1 minute)", name="tick", catch_up=catch_up)  # type: ignore[arg-type]
        await clock.jump(10 * 60 + 30)  # asleep for ten and a half minutes
        await bus.drain()
        (info,) = bus.schedules()
    times = [e.scheduled_time for e in seen if isinstance(e, ScheduledEvent)]
    assert len(times) == published
    assert info.missed == missed
    assert info.fired == published
    if catch_up == "one":
        assert times == [START + timedelta(minutes=10)]
    assert times == sorted(times)


async def test_fires_after_a_pause_resume_on_schedule() -> None:
    """Once caught up, a schedule goes on firing at its regular times."""
    clock = FakeClock(START)
    async with Bus(clock=clock) as bus:
        seen = _recorder(bus)
        bus.schedule("rate(1 minute)", name="tick", catch_up="none")
        await clock.jump(5 * 60 + 30)
        await clock.advance(2 * 60)
        await bus.drain()
    times = [e.scheduled_time for e in seen if isinstance(e, ScheduledEvent)]
    assert times == [START + timedelta(minutes=6), START + timedelta(minutes=7)]
