"""Flow control: circuit breakers and rate limits make events wait, never fail."""

from __future__ import annotations

import attrs
import pytest

from eventbus import Bus, CircuitBreaker, Event, NoRetry, RateLimit
from eventbus.testing import FakeClock
from eventbus.testing._clock import _wait_all_tasks_blocked as settle


@attrs.frozen
class Call(Event):
    n: int


async def test_breaker_opens_after_consecutive_failures_and_events_wait() -> None:
    """After `failure_threshold` failures the circuit opens and the rest stay queued."""
    clock = FakeClock()
    broken = True
    handled: list[int] = []

    async def downstream(event: Call) -> None:
        if broken:
            raise ConnectionError("downstream refused")
        handled.append(event.n)

    async with Bus(clock=clock, retry=NoRetry()) as bus:
        bus.subscribe(
            Call, downstream, name="d", circuit_breaker=CircuitBreaker(3, reset_timeout=10)
        )
        for n in range(5):
            await bus.publish(Call(n))
        await settle()
        m = bus.metrics()["d"]
        assert (m.circuit, m.dead_lettered, m.queued) == ("open", 3, 2)
        assert m.balanced
        broken = False
        await clock.advance(10)  # half-open: the probe succeeds, the circuit closes
        await bus.drain()
        m = bus.metrics()["d"]
    assert handled == [3, 4]
    assert (m.circuit, m.succeeded, m.dead_lettered) == ("closed", 2, 3)


async def test_a_failing_probe_opens_the_circuit_again() -> None:
    """In half-open state one probe runs; if it fails the circuit opens for another period."""
    clock = FakeClock()
    calls: list[int] = []

    async def downstream(event: Call) -> None:
        calls.append(event.n)
        raise ConnectionError("still down")

    async with Bus(clock=clock, retry=NoRetry()) as bus:
        bus.subscribe(
            Call, downstream, name="d", circuit_breaker=CircuitBreaker(2, reset_timeout=5)
        )
        for n in range(4):
            await bus.publish(Call(n))
        await settle()
        assert calls == [0, 1]
        await clock.advance(5)
        assert calls == [0, 1, 2]  # exactly one probe
        assert bus.metrics()["d"].circuit == "open"
        assert bus.metrics()["d"].queued == 1
        await clock.advance(5)
        await bus.drain()
    assert calls == [0, 1, 2, 3]


async def test_rate_limit_spaces_invocations_on_the_bus_clock() -> None:
    """RateLimit(2, per=1) lets a burst of two through, then two per virtual second."""
    clock = FakeClock()
    handled: list[int] = []

    async def work(event: Call) -> None:
        handled.append(event.n)

    async with Bus(clock=clock) as bus:
        bus.subscribe(Call, work, name="w", rate_limit=RateLimit(2, per=1.0))
        for n in range(6):
            await bus.publish(Call(n))
        await settle()
        assert handled == [0, 1]
        assert bus.metrics()["w"].queued == 4
        await clock.advance(1)
        assert handled == [0, 1, 2, 3]
        await clock.advance(1)
        await bus.drain()
    assert handled == list(range(6))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: CircuitBreaker(0), "failure_threshold"),
        (lambda: CircuitBreaker(1, reset_timeout=0), "reset_timeout"),
        (lambda: RateLimit(0), "rate"),
        (lambda: RateLimit(1, per=-1), "per"),
        (lambda: RateLimit(1, burst=0), "burst"),
    ],
)
def test_flow_settings_are_validated(make: object, message: str) -> None:
    """Out-of-range breaker and limiter settings are refused with the field's name."""
    with pytest.raises(ValueError, match=message):
        make()  # type: ignore[operator]


async def test_wrong_types_are_refused_at_subscribe_time() -> None:
    """Passing something else as circuit_breaker or rate_limit fails at subscribe time."""

    async def work(event: Call) -> None: ...

    async with Bus() as bus:
        with pytest.raises(TypeError, match="circuit_breaker"):
            bus.subscribe(Call, work, circuit_breaker=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="rate_limit"):
            bus.subscribe(Call, work, rate_limit=10)  # type: ignore[arg-type]
