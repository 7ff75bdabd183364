"""Shutdown with a grace period: nothing accepted is ever dropped."""

from __future__ import annotations

import threading
from collections import Counter

import anyio
import attrs
import pytest

from eventbus import Bus, Event


@attrs.frozen
class Work(Event):
    n: int


async def test_grace_period_shorter_than_the_work_loses_nothing() -> None:
    """10,000 events, a grace period shorter than the work: handled + Shutdown letters == accepted."""
    never = anyio.Event()
    handled = 0

    async def work(event: Work) -> None:
        nonlocal handled
        if event.n % 10 == 9:
            await never.wait()  # stuck: only the shutdown ends it
        handled += 1

    async with Bus(grace_period=0.05) as bus:
        bus.subscribe(Work, work, name="w", concurrency=8, queue_size=10_000)
        for n in range(10_000):
            await bus.publish(Work(n))
    m = bus.metrics()["w"]
    conditions = Counter(letter.condition for letter in bus.dead_letters)
    assert m.accepted == 10_000
    assert handled + conditions["Shutdown"] == m.accepted
    assert m.succeeded == handled
    assert set(conditions) == {"Shutdown"}
    assert (m.in_flight, m.queued, m.waiting_retry) == (0, 0, 0)
    assert m.balanced


async def test_without_a_grace_period_close_waits_for_everything() -> None:
    """The default close drains fully: nothing is dead-lettered."""
    handled = 0

    async def work(event: Work) -> None:
        nonlocal handled
        await anyio.lowlevel.checkpoint()
        handled += 1

    async with Bus() as bus:
        bus.subscribe(Work, work, name="w", concurrency=4)
        for n in range(500):
            await bus.publish(Work(n))
    assert handled == 500
    assert len(bus.dead_letters) == 0


async def test_stuck_sync_handler_is_abandoned_and_counted() -> None:
    """A plain def handler that outlives the grace period is abandoned, counted, and its event dead-lettered."""
    release = threading.Event()
    started = threading.Event()

    def stuck(event: Work) -> None:
        started.set()
        release.wait(timeout=30)

    try:
        async with Bus(grace_period=0.05) as bus:
            bus.subscribe(Work, stuck, name="s")
            await bus.publish(Work(1))
            await anyio.to_thread.run_sync(started.wait, 30)
    finally:
        release.set()
    m = bus.metrics()["s"]
    assert m.abandoned_threads == 1
    assert [letter.condition for letter in bus.dead_letters] == ["Shutdown"]
    assert m.balanced


def test_grace_period_is_validated() -> None:
    """A negative grace period is refused."""
    with pytest.raises(ValueError, match="grace_period"):
        Bus(grace_period=-1)
