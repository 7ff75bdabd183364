"""Clocks: the Clock protocol, the real clock, and the virtual FakeClock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import anyio
import anyio.lowlevel
import pytest

from eventbus import Clock, RealClock
from eventbus.testing import FakeClock

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)  # the fake_clock fixture's start


def test_clocks_satisfy_the_protocol() -> None:
    """Both built-in clocks are Clocks."""
    assert isinstance(RealClock(), Clock)
    assert isinstance(FakeClock(), Clock)


async def test_real_clock_now_is_the_loop_time() -> None:
    """RealClock.now() reads the event loop's monotonic clock."""
    before = anyio.current_time()
    now = RealClock().now()
    assert before <= now <= anyio.current_time()


def test_real_clock_wall_is_aware_utc() -> None:
    """RealClock.wall() is the current time, aware, in UTC."""
    before = datetime.now(UTC)
    wall = RealClock().wall()
    assert wall.utcoffset() == timedelta(0)
    assert before <= wall <= datetime.now(UTC)


async def test_real_clock_sleep_until_a_past_deadline_returns() -> None:
    """Sleeping until a deadline already reached returns without waiting for it."""
    clock = RealClock()
    with anyio.fail_after(5):
        await clock.sleep_until(clock.now() - 1)


async def test_real_clock_deadline_scope_cancels_past_its_deadline() -> None:
    """A deadline scope whose deadline has passed cancels the work inside."""
    clock = RealClock()
    with clock.deadline_scope(clock.now() - 1) as scope:
        await anyio.sleep_forever()
    assert scope.cancelled_caught


def test_fake_clock_starts_at_zero_and_at_its_start_time(fake_clock: FakeClock) -> None:
    """A new FakeClock reads 0 seconds and its start as wall time."""
    assert fake_clock.now() == 0
    assert fake_clock.wall() == EPOCH
    assert fake_clock.pending() == 0
    assert fake_clock.next_deadline() is None


def test_fake_clock_start_defaults_to_now() -> None:
    """Without start, wall time starts at the real current time."""
    before = datetime.now(UTC)
    clock = FakeClock()
    assert before <= clock.wall() <= datetime.now(UTC)


def test_fake_clock_start_is_normalised_to_utc() -> None:
    """An aware start in another zone becomes the same instant in UTC."""
    clock = FakeClock(start=datetime(2024, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))))
    assert clock.wall() == EPOCH
    assert clock.wall().tzinfo is UTC


def test_fake_clock_rejects_naive_start() -> None:
    """A naive start time is refused."""
    with pytest.raises(ValueError, match="must be timezone-aware"):
        FakeClock(start=datetime(2024, 1, 1))


async def test_advance_moves_time(fake_clock: FakeClock) -> None:
    """advance() moves monotonic and wall time together."""
    await fake_clock.advance(90)
    assert fake_clock.now() == 90
    assert fake_clock.wall() == EPOCH + timedelta(seconds=90)


async def test_advance_rejects_negative_spans(fake_clock: FakeClock) -> None:
    """Time cannot go backwards."""
    with pytest.raises(ValueError, match="cannot go back in time"):
        await fake_clock.advance(-1)


async def test_sleep_waits_for_virtual_time(fake_clock: FakeClock) -> None:
    """A sleeper wakes only once virtual time reaches its deadline."""
    woke = anyio.Event()

    async def sleeper() -> None:
        await fake_clock.sleep_until(10)
        woke.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper)
        await fake_clock.advance(9.5)
        assert not woke.is_set()
        assert fake_clock.pending() == 1
        assert fake_clock.next_deadline() == 10
        await fake_clock.advance(0.5)
        assert woke.is_set()
    assert fake_clock.pending() == 0


async def test_sleep_until_the_past_returns(fake_clock: FakeClock) -> None:
    """Sleeping until a deadline already reached returns at once."""
    await fake_clock.advance(5)
    await fake_clock.sleep_until(3)
    assert fake_clock.pending() == 0


async def test_sleepers_wake_in_deadline_order_at_their_own_time(fake_clock: FakeClock) -> None:
    """One advance wakes every sleeper due, in deadline order, each at its deadline."""
    woke: list[tuple[str, float]] = []

    async def sleeper(name: str, deadline: float) -> None:
        await fake_clock.sleep_until(deadline)
        woke.append((name, fake_clock.now()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper, "c", 3)
        tg.start_soon(sleeper, "a", 1)
        tg.start_soon(sleeper, "b", 2)
        tg.start_soon(sleeper, "late", 100)
        await fake_clock.advance(10)
        assert woke == [("a", 1), ("b", 2), ("c", 3)]
        await fake_clock.advance(90)
    assert woke[-1] == ("late", 100)


async def test_work_scheduled_during_advance_fires_within_the_span(fake_clock: FakeClock) -> None:
    """A wait started by a wake-up fires in the same advance if it falls inside the span."""
    times: list[float] = []

    async def chain() -> None:
        for _ in range(3):
            await fake_clock.sleep_until(fake_clock.now() + 2)
            times.append(fake_clock.now())

    async with anyio.create_task_group() as tg:
        tg.start_soon(chain)
        await fake_clock.advance(5)
        assert times == [2, 4]
        await fake_clock.advance(1)
    assert times == [2, 4, 6]


async def test_cancelled_sleep_is_forgotten(fake_clock: FakeClock) -> None:
    """A sleep that is cancelled no longer counts as pending."""
    with anyio.CancelScope() as scope:
        scope.cancel()
        await fake_clock.sleep_until(10)
    assert fake_clock.pending() == 0
    assert fake_clock.next_deadline() is None


async def test_deadline_scope_cancels_at_virtual_deadline(fake_clock: FakeClock) -> None:
    """A deadline scope cancels its work when virtual time reaches the deadline."""
    done = anyio.Event()
    caught: list[bool] = []

    async def worker() -> None:
        with fake_clock.deadline_scope(5) as scope:
            await anyio.sleep_forever()
        caught.append(scope.cancelled_caught)
        done.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker)
        await fake_clock.advance(4.9)
        assert not done.is_set()
        await fake_clock.advance(0.1)
        await done.wait()
    assert caught == [True]


async def test_deadline_scope_finishing_early_leaves_no_timer(fake_clock: FakeClock) -> None:
    """Work that ends before its deadline is not cancelled and leaves nothing pending."""
    with fake_clock.deadline_scope(5) as scope:
        await anyio.lowlevel.checkpoint()
    assert not scope.cancel_called
    assert fake_clock.pending() == 0


async def test_deadline_scope_in_the_past_cancels_at_once(fake_clock: FakeClock) -> None:
    """A deadline already reached cancels at the first checkpoint."""
    await fake_clock.advance(10)
    with fake_clock.deadline_scope(3) as scope:
        await anyio.sleep_forever()
    assert scope.cancelled_caught


def test_fake_clock_repr_shows_time(fake_clock: FakeClock) -> None:
    """The repr shows virtual and wall time."""
    assert repr(fake_clock) == "FakeClock(now=0, wall=2024-01-01T00:00:00+00:00)"


async def test_jump_wakes_overdue_sleepers_late_at_the_end() -> None:
    """jump() is a pause: a sleep due inside the span wakes once, at the end, late."""
    clock = FakeClock()
    woke_at: list[float] = []

    async def sleeper() -> None:
        await clock.sleep_until(5)
        woke_at.append(clock.now())

    async with anyio.create_task_group() as tg:
        tg.start_soon(sleeper)
        await clock.jump(60)
    assert woke_at == [60]


async def test_jump_refuses_to_go_back() -> None:
    """A negative jump is an error."""
    with pytest.raises(ValueError, match="back in time"):
        await FakeClock().jump(-1)
