"""The bus runs on every anyio backend: the core scenarios, on asyncio and on trio."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import attrs
import pytest

from eventbus import (
    BlockingBus,
    Bus,
    Context,
    Event,
    ExponentialBackoff,
    HandlerTimeout,
    NoRetry,
    ScheduledEvent,
)
from eventbus.testing import FakeClock

BACKENDS = [
    "asyncio",
    pytest.param(
        "trio",
        marks=pytest.mark.skipif(
            not __import__("importlib").util.find_spec("trio"), reason="trio is not installed"
        ),
    ),
]


@attrs.frozen
class Job(Event):
    key: str
    n: int


def run(backend: str, scenario: Callable[[], Awaitable[None]]) -> None:
    anyio.run(scenario, backend=backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_publish_fan_out_and_drain(backend: str) -> None:
    """Events reach every subscription, async and sync handlers alike, and drain waits for them."""
    seen: list[tuple[str, int]] = []

    async def scenario() -> None:
        async with Bus() as bus:

            async def a(event: Job) -> None:
                seen.append(("a", event.n))

            def b(event: Job) -> None:
                seen.append(("b", event.n))

            bus.subscribe(Job, a, name="a", concurrency=4)
            bus.subscribe(Job, b, name="b")
            for n in range(50):
                await bus.publish(Job("k", n))
            await bus.drain()
            assert all(m.balanced for m in bus.metrics().values())

    run(backend, scenario)
    assert sorted(n for who, n in seen if who == "a") == list(range(50))
    assert sorted(n for who, n in seen if who == "b") == list(range(50))


@pytest.mark.parametrize("backend", BACKENDS)
def test_retries_timeouts_and_dead_letters_on_the_fake_clock(backend: str) -> None:
    """Retry delays and timeouts wait on virtual time; exhausted events are dead-lettered."""
    attempts: list[int] = []

    async def scenario() -> None:
        clock = FakeClock()
        retry = ExponentialBackoff(max_attempts=3, initial=10, jitter=False)
        async with Bus(clock=clock, retry=retry) as bus:

            async def flaky(event: Job, ctx: Context) -> None:
                attempts.append(ctx.attempt)
                raise RuntimeError("down")

            async def slow(event: Job) -> None:
                await anyio.sleep_forever()

            bus.subscribe(Job, flaky, name="flaky")
            bus.subscribe(Job, slow, name="slow", timeout=5, retry=NoRetry())
            await bus.publish(Job("k", 1))
            await clock.advance(10 + 20 + 5)
            await bus.drain()
            conditions = sorted(letter.condition for letter in bus.dead_letters)
            assert conditions == ["RetriesExhausted", "Timeout"]
            errors = {letter.error.error_type for letter in bus.dead_letters}
            assert HandlerTimeout.__name__ in errors

    run(backend, scenario)
    assert attempts == [1, 2, 3]


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_key_order_under_concurrency(backend: str) -> None:
    """ordered_by keeps publish order per key while other keys run in parallel."""
    seen: dict[str, list[int]] = {}

    async def scenario() -> None:
        async with Bus() as bus:

            async def handle(event: Job) -> None:
                for _ in range(event.n % 3):
                    await anyio.lowlevel.checkpoint()
                seen.setdefault(event.key, []).append(event.n)

            bus.subscribe(Job, handle, name="h", concurrency=8, ordered_by="key")
            for n in range(120):
                await bus.publish(Job(f"k{n % 5}", n))

    run(backend, scenario)
    for key, ns in seen.items():
        assert ns == sorted(ns), key
    assert sum(len(ns) for ns in seen.values()) == 120


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_day_of_schedules_in_virtual_time(backend: str) -> None:
    """rate(1 minute) fires 1,440 times over a virtual day, on either backend."""
    fired: list[ScheduledEvent] = []

    async def scenario() -> None:
        clock = FakeClock()
        async with Bus(clock=clock) as bus:

            async def record(event: ScheduledEvent) -> None:
                fired.append(event)

            bus.subscribe(ScheduledEvent, record, name="record")
            bus.schedule("rate(1 minute)", name="tick")
            await clock.advance(86_400)
            await bus.drain()

    run(backend, scenario)
    assert len(fired) == 1440


@pytest.mark.parametrize("backend", BACKENDS)
def test_blocking_bus_runs_on_either_backend(backend: str) -> None:
    """BlockingBus can run its loop thread on asyncio or trio."""
    seen: list[int] = []

    def handle(event: Job) -> None:
        seen.append(event.n)

    with BlockingBus(backend=backend) as bus:
        bus.subscribe(Job, handle, name="h")
        for n in range(10):
            bus.publish(Job("k", n))
        bus.drain()
    assert seen == list(range(10))
