"""Batch subscriptions: Batching(size, window), BatchResult partial failures."""

from __future__ import annotations

import anyio
import attrs
import pytest

from eventbus import (
    Batching,
    BatchItemFailure,
    BatchResult,
    Bus,
    Context,
    Event,
    ExponentialBackoff,
    NoRetry,
)
from eventbus.testing import FakeClock
from eventbus.testing._clock import _wait_all_tasks_blocked as settle


@attrs.frozen
class Item(Event):
    n: int


def balanced(bus: Bus) -> bool:
    return all(m.balanced for m in bus.metrics().values())


async def test_full_batches_are_delivered_at_size() -> None:
    """Queued events reach the handler in lists of at most `size`, in publish order."""
    batches: list[list[int]] = []
    gate = anyio.Event()

    async def handle(items: list[Item]) -> None:
        await gate.wait()
        batches.append([i.n for i in items])

    async with Bus() as bus:
        bus.subscribe(Item, handle, name="b", batch=Batching(size=4))
        for n in range(10):
            await bus.publish(Item(n))
        gate.set()
    flat = [n for b in batches for n in b]
    assert flat == list(range(10))
    assert all(len(b) <= 4 for b in batches)
    assert max(len(b) for b in batches) == 4


async def test_window_waits_for_the_batch_to_fill_on_the_bus_clock() -> None:
    """With a window, a partial batch waits (virtual time) until the window closes."""
    clock = FakeClock()
    batches: list[list[int]] = []

    async def handle(items: list[Item]) -> None:
        batches.append([i.n for i in items])

    async with Bus(clock=clock) as bus:
        bus.subscribe(Item, handle, name="b", batch=Batching(size=10, window=5))
        await bus.publish(Item(1))
        await settle()
        await bus.publish(Item(2))
        await settle()
        assert batches == []  # still inside the window
        await clock.advance(5)
        await bus.drain()
        assert batches == [[1, 2]]
        assert balanced(bus)


async def test_a_full_batch_does_not_wait_for_the_window() -> None:
    """Reaching `size` delivers at once, without the window elapsing."""
    clock = FakeClock()
    batches: list[list[int]] = []

    async def handle(items: list[Item]) -> None:
        batches.append([i.n for i in items])

    async with Bus(clock=clock) as bus:
        bus.subscribe(Item, handle, name="b", batch=Batching(size=3, window=60))
        for n in range(3):
            await bus.publish(Item(n))
        await bus.drain()
        assert batches == [[0, 1, 2]]


async def test_batch_result_retries_only_the_failed_events() -> None:
    """Ids listed in BatchResult.failed are retried; the rest count as succeeded."""
    clock = FakeClock()
    seen: list[list[int]] = []

    async def handle(items: list[Item]) -> BatchResult:
        seen.append([i.n for i in items])
        if len(seen) == 1:
            return BatchResult(failed=[i.id for i in items if i.n % 2])
        return BatchResult()

    retry = ExponentialBackoff(initial=1, jitter=False)
    async with Bus(clock=clock, retry=retry) as bus:
        bus.subscribe(Item, handle, name="b", batch=Batching(size=4))
        for n in range(4):
            await bus.publish(Item(n))
        await settle()
        m = bus.metrics()["b"]
        assert (m.succeeded, m.waiting_retry, m.errors) == (2, 2, 2)
        assert balanced(bus)
        await clock.advance(1)
        await bus.drain()
        m = bus.metrics()["b"]
    assert seen == [[0, 1, 2, 3], [1, 3]]
    assert (m.accepted, m.succeeded, m.retries, m.dead_lettered) == (4, 4, 2, 0)


async def test_failed_batch_items_are_dead_lettered_one_by_one() -> None:
    """When retries run out, each failed event of the batch gets its own dead letter."""

    async def handle(items: list[Item]) -> BatchResult:
        return BatchResult(failed=[items[0].id])

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Item, handle, name="b", batch=Batching(size=3))
        events = [Item(n) for n in range(3)]
        for e in events:
            await bus.publish(e)
    letters = list(bus.dead_letters)
    assert [letter.event.id for letter in letters] == [events[0].id]
    assert letters[0].error.error_type == "BatchItemFailure"
    assert bus.metrics()["b"].succeeded == 2


async def test_unknown_id_in_batch_result_fails_the_whole_batch() -> None:
    """As Lambda does, an id that is not in the batch fails every event of it."""

    async def handle(items: list[Item]) -> BatchResult:
        return BatchResult(failed=["not-an-id"])

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Item, handle, name="b", batch=Batching(size=2))
        await bus.publish(Item(1))
        await bus.publish(Item(2))
    assert len(bus.dead_letters) == 2
    assert all("not in the batch" in letter.error.error_message for letter in bus.dead_letters)


async def test_raising_batch_handler_fails_every_event() -> None:
    """An exception from a batch handler fails the whole batch."""

    async def handle(items: list[Item]) -> None:
        raise RuntimeError("downstream is down")

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Item, handle, name="b", batch=Batching(size=5))
        for n in range(3):
            await bus.publish(Item(n))
    assert sorted(letter.event.n for letter in bus.dead_letters) == [0, 1, 2]  # type: ignore[attr-defined]
    assert bus.metrics()["b"].dead_lettered == 3


async def test_sync_batch_handler_with_context_gets_the_first_event() -> None:
    """A plain def batch handler runs in a thread; ctx.event is the batch's first event."""
    firsts: list[int] = []

    def handle(items: list[Item], ctx: Context) -> None:
        firsts.append(ctx.event.n)  # type: ignore[attr-defined]

    async with Bus() as bus:
        bus.subscribe(Item, handle, name="b", batch=Batching(size=10))
        for n in (7, 8):
            await bus.publish(Item(n))
    assert firsts[0] == 7


async def test_invoke_on_a_batch_subscription_passes_a_list() -> None:
    """bus.invoke wraps the event in a one-item list for a batch handler."""

    async def handle(items: list[Item]) -> int:
        return sum(i.n for i in items)

    async with Bus() as bus:
        bus.subscribe(Item, handle, name="b", batch=Batching(size=10))
        assert await bus.invoke("b", Item(41)) == 41


def test_batching_validates_its_range() -> None:
    """Batching refuses sizes and windows outside Lambda's ranges."""
    with pytest.raises(ValueError, match="size"):
        Batching(size=0)
    with pytest.raises(ValueError, match="window"):
        Batching(size=1, window=301)


def test_batch_result_refuses_a_bare_string() -> None:
    """BatchResult(failed="id") is a mistake for BatchResult(failed=["id"])."""
    with pytest.raises(TypeError, match=r"failed=\[event.id\]"):
        BatchResult(failed="abc")


async def test_batch_with_ordered_by_is_refused_at_subscribe_time() -> None:
    """Batches cannot keep per-key order across workers: refused with a clear fix."""

    async def handle(items: list[Item]) -> None: ...

    async with Bus() as bus:
        with pytest.raises(ValueError, match="concurrency=1"):
            bus.subscribe(Item, handle, batch=Batching(size=2), ordered_by="n")


async def test_batch_item_failure_is_an_eventbus_error() -> None:
    """BatchItemFailure sits in the error tree."""
    from eventbus import EventBusError

    assert issubclass(BatchItemFailure, EventBusError)


async def test_a_batch_still_filling_at_a_crash_is_dead_lettered_not_lost() -> None:
    """Events waiting in a half-filled batch window when the bus crashes end as Shutdown letters."""
    clock = FakeClock()
    bus = Bus(clock=clock)

    async def handle(items: list[Item]) -> None: ...

    bus.subscribe(Item, handle, name="b", batch=Batching(size=10, window=60))

    async def crash() -> None:
        async with bus:
            for n in range(3):
                await bus.publish(Item(n))
            await settle()  # the worker holds them, waiting for the window
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        await crash()
    m = bus.metrics()["b"]
    assert sorted(letter.event.n for letter in bus.dead_letters) == [0, 1, 2]  # type: ignore[attr-defined]
    assert {letter.condition for letter in bus.dead_letters} == {"Shutdown"}
    assert m.balanced
    assert (m.queued, m.in_flight) == (0, 0)
