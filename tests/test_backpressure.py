"""Bounded queues: publish waits for room, publish_nowait refuses, and nothing is half-published."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import attrs
import pytest

from eventbus import Bus, BusFull, EventBusError, Receipt
from eventbus import Event as BaseEvent
from eventbus.testing._clock import _wait_all_tasks_blocked as settle


@attrs.frozen
class Item(BaseEvent):
    seq: int = 0


class Gated:
    """A handler that blocks each event until the test opens its gate; records what ran."""

    def __init__(self) -> None:
        self.gates: dict[int, anyio.Event] = {}
        self.started: list[int] = []
        self.finished: list[int] = []

    def gate(self, seq: int) -> anyio.Event:
        return self.gates.setdefault(seq, anyio.Event())

    def open_all(self) -> None:
        for seq in range(1000):
            self.gate(seq).set()

    async def __call__(self, item: Item) -> None:
        self.started.append(item.seq)
        await self.gate(item.seq).wait()
        self.finished.append(item.seq)


async def _fill(bus: Bus, handler: Gated, name: str, queue_size: int) -> None:
    """Occupy the worker with event 0 and fill the queue with events 1..queue_size."""
    await bus.publish(Item(0))
    await settle()
    assert handler.started == [0]
    for seq in range(1, queue_size + 1):
        await bus.publish(Item(seq))
    assert bus.metrics()[name].queued == queue_size


async def test_publish_nowait_raises_bus_full_on_a_full_queue() -> None:
    """publish_nowait on a full queue raises BusFull, counted as throttled, and accepts nothing."""
    handler = Gated()
    async with Bus() as bus:
        bus.subscribe(Item, handler, name="small", queue_size=2)
        await _fill(bus, handler, "small", 2)
        refused = Item(99)
        with pytest.raises(
            BusFull, match=r"subscription 'small' has 2 events queued \(queue_size=2\)"
        ):
            bus.publish_nowait(refused)
        metrics = bus.metrics()["small"]
        assert (metrics.accepted, metrics.queued, metrics.throttled) == (3, 2, 1)
        handler.open_all()
    assert 99 not in handler.started
    assert handler.finished == [0, 1, 2]


async def test_bus_full_is_all_or_nothing_across_subscriptions() -> None:
    """When one matching queue is full, no other subscription accepts the event either."""
    handler = Gated()
    roomy: list[Item] = []

    async def record(item: Item) -> None:
        roomy.append(item)

    async with Bus() as bus:
        bus.subscribe(Item, record, name="roomy-first")
        bus.subscribe(Item, handler, name="small", queue_size=1)
        bus.subscribe(Item, record, name="roomy-last")
        await _fill(bus, handler, "small", 1)
        before = bus.metrics()
        with pytest.raises(BusFull):
            bus.publish_nowait(Item(99))
        after = bus.metrics()
        assert after["roomy-first"].accepted == before["roomy-first"].accepted
        assert after["roomy-last"].accepted == before["roomy-last"].accepted
        assert after["small"].accepted == before["small"].accepted
        assert after["small"].throttled == 1
        assert (after["roomy-first"].throttled, after["roomy-last"].throttled) == (0, 0)
        handler.open_all()
    assert all(item.seq != 99 for item in roomy)


async def test_bus_full_is_an_anyio_would_block() -> None:
    """BusFull is an EventBusError and anyio's WouldBlock."""
    assert issubclass(BusFull, EventBusError)
    assert issubclass(BusFull, anyio.WouldBlock)


async def test_publish_waits_for_room_and_resumes() -> None:
    """publish on a full queue waits (not fails), counted as throttled, and resumes when room appears."""
    handler = Gated()
    receipts: list[Receipt] = []
    async with Bus() as bus:
        bus.subscribe(Item, handler, name="small", queue_size=1)
        await _fill(bus, handler, "small", 1)
        waiting = Item(2)

        async def publisher() -> None:
            receipts.append(await bus.publish(waiting))

        async with anyio.create_task_group() as tg:
            tg.start_soon(publisher)
            await settle()
            assert receipts == []
            metrics = bus.metrics()["small"]
            assert (metrics.accepted, metrics.queued, metrics.throttled) == (2, 1, 1)
            handler.gate(0).set()
            await settle()
            assert receipts == [Receipt(waiting.id, ("small",))]
            metrics = bus.metrics()["small"]
            assert (metrics.accepted, metrics.queued, metrics.throttled) == (3, 1, 1)
        handler.open_all()
    assert handler.finished == [0, 1, 2]


async def test_waiting_publishers_resume_in_fifo_order() -> None:
    """Publishers waiting for room are let in first come, first served."""
    handler = Gated()
    accepted: list[int] = []
    async with Bus() as bus:
        bus.subscribe(Item, handler, name="small", queue_size=1)
        await _fill(bus, handler, "small", 1)

        async def publisher(seq: int) -> None:
            await bus.publish(Item(seq))
            accepted.append(seq)

        async with anyio.create_task_group() as tg:
            for seq in (10, 11, 12):
                tg.start_soon(publisher, seq)
                await settle()
            assert bus.metrics()["small"].throttled == 3
            for seq in (0, 1, 10, 11):
                handler.gate(seq).set()
                await settle()
            assert accepted == [10, 11, 12]
        handler.open_all()
    assert handler.finished == [0, 1, 10, 11, 12]


async def test_publish_nowait_does_not_jump_ahead_of_waiting_publishers() -> None:
    """While a publisher waits for room, publish_nowait is refused even if a slot frees up."""
    handler = Gated()
    async with Bus() as bus:
        bus.subscribe(Item, handler, name="small", queue_size=1)
        await _fill(bus, handler, "small", 1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(bus.publish, Item(2))
            await settle()
            handler.gate(0).set()
            with pytest.raises(BusFull):
                bus.publish_nowait(Item(3))
        handler.open_all()
    assert handler.finished == [0, 1, 2]


async def test_queue_never_exceeds_queue_size() -> None:
    """A slot freed for a waiting publisher is not taken by a publish_nowait that comes before it resumes."""
    handler = Gated()
    outcome: list[str] = []
    queued_seen: list[int] = []
    bus = Bus()

    async def handle(item: Item) -> None:
        queued_seen.append(bus.metrics()["small"].queued)
        if item.seq == 1:
            # Runs as soon as event 0 finishes and frees a slot for the waiting publisher.
            try:
                bus.publish_nowait(Item(50))
                outcome.append("accepted")
            except BusFull:
                outcome.append("refused")
        await handler(item)

    bus.subscribe(Item, handle, name="small", queue_size=1)
    async with bus:
        await _fill(bus, handler, "small", 1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(bus.publish, Item(2))
            await settle()
            handler.gate(0).set()
            await settle()
            assert bus.metrics()["small"].queued <= 1
        handler.open_all()
    assert outcome == ["refused"]
    assert max(queued_seen) <= 1
    assert handler.finished == [0, 1, 2]


async def test_cancelled_waiting_publisher_gives_way_to_the_next() -> None:
    """A publisher cancelled while waiting publishes nothing; the next waiter gets the room."""
    handler = Gated()
    accepted: list[int] = []
    async with Bus() as bus:
        bus.subscribe(Item, handler, name="small", queue_size=1)
        await _fill(bus, handler, "small", 1)

        async def publisher(seq: int, scope: anyio.CancelScope) -> None:
            with scope:
                await bus.publish(Item(seq))
                accepted.append(seq)

        first, second = anyio.CancelScope(), anyio.CancelScope()
        async with anyio.create_task_group() as tg:
            tg.start_soon(publisher, 10, first)
            await settle()
            tg.start_soon(publisher, 11, second)
            await settle()
            first.cancel()
            await settle()
            handler.gate(0).set()
            await settle()
            assert accepted == [11]
        handler.open_all()
    assert handler.finished == [0, 1, 11]
    assert bus.metrics()["small"].accepted == 3


async def test_cancel_after_wake_up_passes_the_room_on() -> None:
    """A waiting publisher cancelled just after being woken hands its slot to the next waiter."""
    handler = Gated()
    accepted: list[int] = []
    scopes = {10: anyio.CancelScope(), 11: anyio.CancelScope()}
    bus = Bus()

    async def handle(item: Item) -> None:
        await handler(item)
        if item.seq == 0:
            # Cancel publisher 10 in the same step that frees the slot and
            # hands it to publisher 10: it wakes up cancelled.
            scopes[10].cancel()

    async def publisher(seq: int) -> None:
        with scopes[seq]:
            await bus.publish(Item(seq))
            accepted.append(seq)

    bus.subscribe(Item, handle, name="small", queue_size=1)
    async with bus:
        await _fill(bus, handler, "small", 1)
        async with anyio.create_task_group() as tg:
            tg.start_soon(publisher, 10)
            await settle()
            tg.start_soon(publisher, 11)
            await settle()
            handler.gate(0).set()
            await settle()
            assert accepted == [11]
        handler.open_all()
    assert handler.finished == [0, 1, 11]


async def test_publish_is_partially_accepted_when_cancelled_waiting() -> None:
    """publish cancelled while waiting: subscriptions that already accepted keep the event."""
    handler = Gated()
    roomy: list[int] = []

    async def record(item: Item) -> None:
        roomy.append(item.seq)

    async with Bus() as bus:
        bus.subscribe(Item, record, name="roomy")
        bus.subscribe(Item, handler, name="small", queue_size=1)
        await _fill(bus, handler, "small", 1)
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(bus.publish, Item(7))
                await settle()
                scope.cancel()
        handler.open_all()
    assert 7 in roomy
    assert 7 not in handler.started
    metrics = bus.metrics()
    assert metrics["small"].accepted == 2
    assert metrics["roomy"].accepted == 3


async def test_publish_to_waits_for_room() -> None:
    """publish_to on a full queue waits for room like publish."""
    handler = Gated()
    done: list[int] = []
    async with Bus() as bus:
        bus.subscribe(Item, handler, name="small", queue_size=1)
        await _fill(bus, handler, "small", 1)

        async def send() -> None:
            await bus.publish_to("small", Item(5))
            done.append(5)

        async with anyio.create_task_group() as tg:
            tg.start_soon(send)
            await settle()
            assert done == []
            assert bus.metrics()["small"].throttled == 1
            handler.gate(0).set()
            await settle()
            assert done == [5]
        handler.open_all()
    assert handler.finished == [0, 1, 5]
