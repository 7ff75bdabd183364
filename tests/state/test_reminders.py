"""ctx.remind: reminders on the bus clock, committed with the attempt, durable across restarts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import attrs
import pytest

from eventbus import Bus, Context, Event, MemoryState, NoRetry, SqliteState, StateError, StateStore
from eventbus.testing import FakeClock

START = datetime(2024, 1, 1, tzinfo=UTC)


@attrs.frozen
class Open(Event, type_name="tests.state.Open"):
    key: str
    fail: bool = False


@attrs.frozen
class Expire(Event, type_name="tests.state.Expire"):
    key: str


def subscribe_sessions(bus: Bus, store: StateStore, **options: object) -> None:
    async def sessions(event: Open | Expire, ctx: Context) -> None:
        if isinstance(event, Open):
            ctx.state["status"] = "open"
            ctx.remind(after=60, event=Expire(event.key))
            if event.fail:
                raise RuntimeError("the attempt fails after setting a reminder")
        else:
            ctx.state["status"] = "expired"
            ctx.state["expired_by"] = event.causation_id

    bus.subscribe((Open, Expire), sessions, name="s", ordered_by="key", state=store, **options)  # type: ignore[arg-type]


async def status(bus: Bus, key: str) -> object:
    return (await bus.state_of("s", key)).get("status")


async def test_a_reminder_fires_after_its_delay() -> None:
    """The reminded event is published once the delay has passed on the bus clock, not before."""
    clock = FakeClock(start=START)
    async with Bus(clock=clock) as bus:
        subscribe_sessions(bus, MemoryState())
        opened = Open("a")
        await bus.publish(opened)
        await bus.drain()
        await clock.advance(59)
        await bus.drain()
        assert await status(bus, "a") == "open"
        await clock.advance(1)
        await bus.drain()
        assert await status(bus, "a") == "expired"
        assert (await bus.state_of("s", "a"))["expired_by"] == opened.id


async def test_a_failed_attempt_drops_its_reminders() -> None:
    """Reminders set by an attempt that failed are never published."""
    clock = FakeClock(start=START)
    store = MemoryState()
    async with Bus(clock=clock, retry=NoRetry()) as bus:
        subscribe_sessions(bus, store)
        await bus.publish(Open("a", fail=True))
        await bus.drain()
        await clock.advance(120)
        await bus.drain()
        assert await status(bus, "a") is None
    assert await store.reminders("s") == []


async def test_a_fired_reminder_is_forgotten() -> None:
    """Once published, a reminder leaves the store."""
    clock = FakeClock(start=START)
    store = MemoryState()
    async with Bus(clock=clock) as bus:
        subscribe_sessions(bus, store)
        await bus.publish(Open("a"))
        await bus.drain()
        assert len(await store.reminders("s")) == 1
        await clock.advance(60)
        await bus.drain()
    assert await store.reminders("s") == []


async def test_a_reminder_survives_a_restart(tmp_path: Path) -> None:
    """With SqliteState, a reminder pending at shutdown is re-armed by the next bus."""
    clock = FakeClock(start=START)
    with SqliteState(tmp_path / "state.db") as store:
        async with Bus(clock=clock) as bus:
            subscribe_sessions(bus, store)
            await bus.publish(Open("a"))
            await bus.drain()
            await clock.advance(30)
    restarted = FakeClock(start=clock.wall())
    with SqliteState(tmp_path / "state.db") as store:
        async with Bus(clock=restarted) as bus:
            subscribe_sessions(bus, store)
            await restarted.advance(29)
            await bus.drain()
            assert await status(bus, "a") == "open"
            await restarted.advance(1)
            await bus.drain()
            assert await status(bus, "a") == "expired"
        assert await store.reminders("s") == []


async def test_a_reminder_due_during_downtime_fires_at_start(tmp_path: Path) -> None:
    """A reminder that came due while no bus ran is published as soon as the next one starts."""
    clock = FakeClock(start=START)
    with SqliteState(tmp_path / "state.db") as store:
        async with Bus(clock=clock) as bus:
            subscribe_sessions(bus, store)
            await bus.publish(Open("a"))
            await bus.drain()
        later = FakeClock(start=START.replace(hour=5))
        async with Bus(clock=later) as bus:
            subscribe_sessions(bus, store)
            await later.advance(0)
            await bus.drain()
            assert await status(bus, "a") == "expired"


async def test_remind_refuses_another_key() -> None:
    """A reminder for an event of another key raises StateError saying so."""
    errors: list[str] = []

    async def handler(event: Open, ctx: Context) -> None:
        try:
            ctx.remind(after=1, event=Expire("other"))
        except StateError as exc:
            errors.append(str(exc))

    async with Bus() as bus:
        bus.subscribe(Open, handler, name="h", ordered_by="key", state=MemoryState())
        await bus.publish(Open("a"))
        await bus.drain()
    assert len(errors) == 1
    assert "is for key 'other', but this attempt holds key 'a'" in errors[0]


@pytest.mark.parametrize("after", [-1, float("nan"), "5", True])
async def test_remind_refuses_a_bad_delay(after: object) -> None:
    """``after`` that is not a finite number of seconds >= 0 raises StateError."""
    errors: list[str] = []

    async def handler(event: Open, ctx: Context) -> None:
        try:
            ctx.remind(after=after, event=Expire("a"))  # type: ignore[arg-type]
        except StateError as exc:
            errors.append(str(exc))

    async with Bus() as bus:
        bus.subscribe(Open, handler, name="h", ordered_by="key", state=MemoryState())
        await bus.publish(Open("a"))
        await bus.drain()
    assert len(errors) == 1
    assert "ctx.remind(after=...)" in errors[0]
