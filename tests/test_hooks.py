"""Hooks: the observer Protocol that metering, tracing and logging plug into."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import attrs
import pytest

from eventbus import (
    Batching,
    Bus,
    Context,
    Delivery,
    DeliveryOutcome,
    Event,
    ExponentialBackoff,
    Hook,
    NoRetry,
)
from eventbus._deadletter import DeadLetter
from eventbus.testing import FakeClock


@attrs.frozen
class Ping(Event, type_name="tests.hooks.Ping"):
    n: int = 0


@attrs.frozen
class Tagged(Event, type_name="tests.hooks.Tagged"):
    tag: str = ""


class Recorder(Hook):
    """Records every hook call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_publish(self, event: Event) -> Event | None:
        self.calls.append(("publish", event.id))
        return None

    def on_delivery_start(self, delivery: Delivery) -> object:
        self.calls.append(("start", delivery.subscription, delivery.attempt))
        return ("token", delivery.attempt)

    def on_delivery_end(
        self,
        delivery: Delivery,
        token: Any,
        outcome: DeliveryOutcome,
        duration: float,
        error: BaseException | None,
    ) -> None:
        self.calls.append(("end", delivery.attempt, token, outcome, duration, type(error)))

    def on_retry(self, subscription: str, event: Event, attempt: int, delay: float) -> None:
        self.calls.append(("retry", subscription, attempt, delay))

    def on_dead_letter(self, letter: DeadLetter) -> None:
        self.calls.append(("dead", letter.subscription, letter.condition))


def names(rec: Recorder) -> list[str]:
    return [c[0] for c in rec.calls]


async def test_no_hooks_means_nothing_installed() -> None:
    """A bus without hooks keeps None where the hooks would be (one falsy check per site)."""
    async with Bus() as bus:
        assert bus.hooks == ()
        assert bus._hooks is None


async def test_a_delivery_calls_publish_start_and_end_in_order() -> None:
    """publish, then delivery start and end with outcome success and the start's token."""
    rec = Recorder()
    async with Bus(hooks=[rec]) as bus:

        async def handle(event: Ping) -> None:
            pass

        bus.subscribe(Ping, handle, name="h")
        receipt = await bus.publish(Ping())
        await bus.drain()
    assert rec.calls[0] == ("publish", receipt.event_id)
    assert rec.calls[1] == ("start", "h", 1)
    assert rec.calls[2][:4] == ("end", 1, ("token", 1), "success")


async def test_duration_is_measured_on_the_bus_clock() -> None:
    """Under FakeClock, a handler that waits 0.25 s reports exactly 0.25 s."""
    rec = Recorder()
    clock = FakeClock()
    async with Bus(clock=clock, hooks=[rec]) as bus:

        async def slow(event: Ping, ctx: Context) -> None:
            await ctx.clock.sleep_until(ctx.clock.now() + 0.25)

        bus.subscribe(Ping, slow, name="slow")
        await bus.publish(Ping())
        await clock.advance(0.25)
        await bus.drain()
    (end,) = [c for c in rec.calls if c[0] == "end"]
    assert end[4] == 0.25


async def test_a_failure_reports_error_then_retry_then_dead_letter() -> None:
    """A failing handler: end(error), on_retry with the next attempt, finally on_dead_letter."""
    rec = Recorder()
    clock = FakeClock()
    retry = ExponentialBackoff(max_attempts=2, initial=1.0, jitter=False)
    async with Bus(clock=clock, hooks=[rec], retry=retry) as bus:

        async def boom(event: Ping) -> None:
            raise RuntimeError("boom")

        bus.subscribe(Ping, boom, name="boom")
        await bus.publish(Ping())
        await clock.advance(1.0)
        await bus.drain()
    assert names(rec) == ["publish", "start", "end", "retry", "start", "end", "dead"]
    assert rec.calls[2][3:] == ("error", 0.0, RuntimeError)
    assert rec.calls[3] == ("retry", "boom", 2, 1.0)
    assert rec.calls[6] == ("dead", "boom", "RetriesExhausted")


async def test_a_timeout_is_reported_as_timeout() -> None:
    """An attempt cut by the subscription's timeout ends with outcome timeout."""
    rec = Recorder()
    clock = FakeClock()
    async with Bus(clock=clock, hooks=[rec], retry=NoRetry()) as bus:

        async def stuck(event: Ping) -> None:
            await anyio.sleep_forever()

        bus.subscribe(Ping, stuck, name="stuck", timeout=2.0)
        await bus.publish(Ping())
        await clock.advance(2.0)
        await bus.drain()
    (end,) = [c for c in rec.calls if c[0] == "end"]
    assert end[3:5] == ("timeout", 2.0)


async def test_invocation_id_is_the_handlers() -> None:
    """Delivery.invocation_id equals the handler's ctx.invocation_id."""
    seen: list[str] = []
    deliveries: list[Delivery] = []

    class Starts(Hook):
        def on_delivery_start(self, delivery: Delivery) -> None:
            deliveries.append(delivery)

    async with Bus(hooks=[Starts()]) as bus:

        async def handle(event: Ping, ctx: Context) -> None:
            seen.append(ctx.invocation_id)

        bus.subscribe(Ping, handle, name="h")
        await bus.publish(Ping())
        await bus.drain()
    assert [d.invocation_id for d in deliveries] == seen


async def test_a_hook_may_implement_only_some_methods() -> None:
    """An object with just on_delivery_end is a hook; the others are skipped."""
    ends: list[str] = []

    class Ends(Hook):
        def on_delivery_end(self, delivery: Delivery, *args: object) -> None:
            ends.append(delivery.subscription)

    async with Bus(hooks=[Ends()]) as bus:

        async def handle(event: Ping) -> None:
            pass

        bus.subscribe(Ping, handle, name="h")
        await bus.publish(Ping())
        await bus.drain()
    assert ends == ["h"]


def test_an_object_without_hook_methods_is_refused() -> None:
    """Bus(hooks=[object()]) raises a TypeError naming the methods."""
    with pytest.raises(TypeError, match=r"on_delivery_start"):
        Bus(hooks=[object()])  # type: ignore[list-item]


async def test_on_publish_may_replace_the_event() -> None:
    """The event on_publish returns (same id) is the one delivered."""

    class Stamp(Hook):
        def on_publish(self, event: Event) -> Event | None:
            return attrs.evolve(event, tag="stamped") if isinstance(event, Tagged) else None

    got: list[str] = []
    async with Bus(hooks=[Stamp()]) as bus:

        async def handle(event: Tagged) -> None:
            got.append(event.tag)

        bus.subscribe(Tagged, handle, name="h")
        await bus.publish(Tagged())
        await bus.drain()
    assert got == ["stamped"]


async def test_hooks_can_be_added_and_removed_while_running() -> None:
    """add_hook starts observing; remove_hook stops."""
    rec = Recorder()
    async with Bus() as bus:

        async def handle(event: Ping) -> None:
            pass

        bus.subscribe(Ping, handle, name="h")
        bus.add_hook(rec)
        await bus.publish(Ping())
        await bus.drain()
        bus.remove_hook(rec)
        await bus.publish(Ping())
        await bus.drain()
        assert bus._hooks is None
    assert names(rec) == ["publish", "start", "end"]


async def test_a_failing_hook_is_logged_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    """A hook that raises does not change the delivery; the failure is logged."""

    class Broken(Hook):
        def on_delivery_start(self, delivery: Delivery) -> None:
            raise ValueError("bad hook")

    handled: list[int] = []
    async with Bus(hooks=[Broken()]) as bus:

        async def handle(event: Ping) -> None:
            handled.append(event.n)

        bus.subscribe(Ping, handle, name="h")
        with caplog.at_level(logging.ERROR, logger="eventbus"):
            await bus.publish(Ping(n=1))
            await bus.drain()
    assert handled == [1]
    assert "on_delivery_start" in caplog.text


async def test_invoke_is_observed_too() -> None:
    """bus.invoke runs the delivery hooks around its single attempt."""
    rec = Recorder()
    async with Bus(hooks=[rec]) as bus:

        async def echo(event: Ping) -> int:
            return event.n

        bus.subscribe(Ping, echo, name="echo")
        assert await bus.invoke("echo", Ping(n=3)) == 3
    assert names(rec) == ["start", "end"]


async def test_a_batch_is_one_delivery() -> None:
    """A batch attempt is one delivery whose batch_size is the number of events."""
    sizes: list[int] = []

    class Sizes(Hook):
        def on_delivery_start(self, delivery: Delivery) -> None:
            sizes.append(delivery.batch_size)

    async with Bus(hooks=[Sizes()]) as bus:

        async def handle(events: list[Ping]) -> None:
            pass

        bus.subscribe(Ping, handle, name="b", batch=Batching(3, 0))
        for n in range(3):
            bus.publish_nowait(Ping(n=n))
        await bus.drain()
    assert sum(sizes) == 3


async def test_sync_handlers_are_observed() -> None:
    """A plain def handler (run in a thread) is observed like an async one."""
    rec = Recorder()
    async with Bus(hooks=[rec]) as bus:

        def handle(event: Ping) -> None:
            pass

        bus.subscribe(Ping, handle, name="h")
        await bus.publish(Ping())
        await bus.drain()
    assert names(rec) == ["publish", "start", "end"]


@pytest.mark.parametrize(
    "backend",
    [
        "asyncio",
        pytest.param(
            "trio",
            marks=pytest.mark.skipif(
                not __import__("importlib").util.find_spec("trio"), reason="trio is not installed"
            ),
        ),
    ],
)
def test_hooks_run_on_every_backend(backend: str) -> None:
    """On asyncio and on trio, a failing then retried delivery is observed the same way."""
    rec = Recorder()
    clock = FakeClock()

    async def main() -> None:
        calls = 0

        async def flaky(event: Ping) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("once")

        retry = ExponentialBackoff(max_attempts=2, initial=1.0, jitter=False)
        async with Bus(clock=clock, hooks=[rec], retry=retry) as bus:
            bus.subscribe(Ping, flaky, name="flaky")
            await bus.publish(Ping())
            await clock.advance(1.0)
            await bus.drain()

    anyio.run(main, backend=backend)
    assert names(rec) == ["publish", "start", "end", "retry", "start", "end"]
    assert [c[3] for c in rec.calls if c[0] == "end"] == ["error", "success"]


def test_a_single_hook_must_be_wrapped_in_a_list() -> None:
    """Bus(hooks=hook) says to pass a list."""
    with pytest.raises(TypeError, match=r"hooks=\[hook\]"):
        Bus(hooks=Recorder())  # type: ignore[arg-type]
