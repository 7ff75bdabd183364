"""publish_tracked: word back once every accepting subscription has settled the event."""

from __future__ import annotations

import anyio
import attrs
import pytest

from eventbus import Bus, BusClosed, Event, NoRetry
from eventbus._settle import publish_to_tracked, publish_tracked


@attrs.frozen
class Job(Event, type_name="tests.settle.Job"):
    n: int = 0


async def noop(event: Job) -> None:
    return None


async def test_settled_only_after_every_subscription_handled_it() -> None:
    """on_settled runs once the slowest of two subscriptions has handled the event."""
    release = anyio.Event()
    settled: list[int] = []

    async def slow(event: Job) -> None:
        await release.wait()

    async with Bus() as bus:
        bus.subscribe(Job, noop, name="fast")
        bus.subscribe(Job, slow, name="slow")
        await publish_tracked(bus, Job(1), lambda: settled.append(1))
        await bus.subscription("fast").wait_idle()
        assert settled == []
        release.set()
        await bus.drain()
    assert settled == [1]


async def test_a_dead_letter_settles_the_event() -> None:
    """An event dead-lettered by its only subscription counts as settled."""
    settled: list[int] = []

    async def failing(event: Job) -> None:
        raise ValueError("no")

    async with Bus() as bus:
        bus.subscribe(Job, failing, retry=NoRetry())
        await publish_tracked(bus, Job(), lambda: settled.append(1))
        await bus.drain()
        assert len(bus.dead_letters) == 1
    assert settled == [1]


async def test_an_event_nobody_takes_is_settled_at_once() -> None:
    """With no matching subscription, on_settled runs before publish_tracked returns."""
    settled: list[int] = []
    async with Bus() as bus:
        await publish_tracked(bus, Job(), lambda: settled.append(1))
        assert settled == [1]


async def test_a_cancelled_publish_never_settles() -> None:
    """Cancelled while waiting for room, the event is not reported settled."""
    release = anyio.Event()
    settled: list[int] = []

    async def slow(event: Job) -> None:
        await release.wait()

    async with Bus() as bus:
        bus.subscribe(Job, slow, queue_size=1)
        await bus.publish(Job(0))  # in flight
        await bus.publish(Job(1))  # queued: the queue is full
        async with anyio.create_task_group() as tg:
            tg.start_soon(publish_tracked, bus, Job(2), lambda: settled.append(2))
            await anyio.wait_all_tasks_blocked()  # the publisher waits for room
            tg.cancel_scope.cancel()
        release.set()
        await bus.drain()
    assert settled == []


async def test_publish_to_tracked_settles_after_that_subscription() -> None:
    """publish_to_tracked reports settlement of the one subscription it delivered to."""
    handled: list[int] = []
    settled: list[int] = []

    async def record(event: Job) -> None:
        handled.append(event.n)

    async with Bus() as bus:
        bus.subscribe(Job, record, name="one")
        await publish_to_tracked(bus, "one", Job(5), lambda: settled.append(len(handled)))
        await bus.drain()
    assert settled == [1]


async def test_ordinary_publishes_install_nothing() -> None:
    """A plain publish leaves the subscription without acknowledgement bookkeeping."""
    async with Bus() as bus:
        bus.subscribe(Job, noop, name="s")
        await bus.publish(Job())
        await bus.drain()
        assert bus.subscription("s")._acks is None


async def test_a_closed_bus_refuses() -> None:
    """publish_tracked on a bus that is not running raises BusClosed."""
    bus = Bus()
    with pytest.raises(BusClosed):
        await publish_tracked(bus, Job(), lambda: None)
