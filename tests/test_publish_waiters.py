"""Publishers waiting for room: handed slots in batches, cancelled in linear time."""

from __future__ import annotations

import pickle
from collections import Counter, OrderedDict
from typing import Any

import anyio
import attrs
import pytest

from eventbus import Bus, Event, Receipt
from eventbus.testing._clock import _wait_all_tasks_blocked as settle


@attrs.frozen
class Item(Event):
    seq: int = 0


class CountingWaiters(OrderedDict[Any, None]):
    """The subscription's waiter registry, counting every operation on it."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()

    def __setitem__(self, key: Any, value: None) -> None:
        self.ops["add"] += 1
        super().__setitem__(key, value)

    def __contains__(self, key: object) -> bool:
        self.ops["contains"] += 1
        return super().__contains__(key)

    def __delitem__(self, key: Any) -> None:
        self.ops["remove"] += 1
        super().__delitem__(key)

    def popitem(self, last: bool = True) -> tuple[Any, None]:
        self.ops["pop"] += 1
        return super().popitem(last)


async def _blocked_bus(
    bus: Bus, gate: anyio.Event, queue_size: int
) -> tuple[list[int], CountingWaiters]:
    handled: list[int] = []

    async def handler(item: Item) -> None:
        await gate.wait()
        handled.append(item.seq)

    sub = bus.subscribe(Item, handler, name="small", queue_size=queue_size)
    waiters = CountingWaiters()
    sub._space_waiters = waiters
    return handled, waiters


async def test_cancelling_many_waiting_publishers_is_linear() -> None:
    """Cancelling N waiting publishers costs O(N) operations on the waiters, and leaves none."""
    n = 3000
    gate = anyio.Event()
    async with Bus() as bus:
        handled, waiters = await _blocked_bus(bus, gate, queue_size=1)
        await bus.publish(Item(0))  # taken by the worker, which blocks
        await settle()
        await bus.publish(Item(1))  # fills the queue
        async with anyio.create_task_group() as tg:
            for seq in range(2, 2 + n):
                tg.start_soon(bus.publish, Item(seq))
            await settle()
            assert len(waiters) == n
            tg.cancel_scope.cancel()
        assert len(waiters) == 0
        assert sum(waiters.ops.values()) <= 4 * n
        gate.set()
    assert handled == [0, 1]


async def test_room_after_cancelled_waiters_goes_to_new_publishers() -> None:
    """Once waiting publishers are cancelled, a new publisher gets the room as it frees."""
    gate = anyio.Event()
    async with Bus() as bus:
        handled, _ = await _blocked_bus(bus, gate, queue_size=1)
        await bus.publish(Item(0))
        await settle()
        await bus.publish(Item(1))
        with anyio.move_on_after(0):  # cancelled while waiting
            await bus.publish(Item(2))
        gate.set()
        await bus.publish(Item(3))
    assert handled == [0, 1, 3]
    metrics = bus.metrics()["small"]
    assert metrics.accepted == metrics.succeeded == 3


async def test_freed_room_goes_to_several_waiting_publishers_at_once() -> None:
    """When the queue drains, every waiting publisher that fits is handed a slot in one go."""
    gate = anyio.Event()
    async with Bus() as bus:
        handled, waiters = await _blocked_bus(bus, gate, queue_size=8)
        await bus.publish(Item(0))
        await settle()
        for seq in range(1, 9):
            await bus.publish(Item(seq))
        async with anyio.create_task_group() as tg:
            for seq in range(9, 17):
                tg.start_soon(bus.publish, Item(seq))
            await settle()
            assert len(waiters) == 8
            gate.set()
        assert waiters.ops["pop"] == 8
    assert sorted(handled) == list(range(17))


async def test_receipt_of_the_fast_path_is_a_plain_receipt_in_use() -> None:
    """A receipt from publish compares, unpacks, hashes, prints and pickles as Receipt(id, names)."""

    async def handler(item: Item) -> None:
        pass

    async with Bus() as bus:
        bus.subscribe(Item, handler, name="a")
        await bus.publish(Item(0))  # routes the class
        item = Item(1)
        receipt = await bus.publish(item)
    expected = Receipt(item.id, ("a",))
    assert receipt == expected
    assert expected == receipt
    assert hash(receipt) == hash(expected)
    event_id, names = receipt
    assert (event_id, names) == (item.id, ("a",))
    assert (receipt[0], receipt[-1], receipt.event_id) == (item.id, ("a",), item.id)
    assert repr(receipt) == repr(expected)
    assert pickle.loads(pickle.dumps(receipt)) == expected
    assert receipt._replace(subscriptions=()) == Receipt(item.id, ())
    assert receipt._asdict() == {"event_id": item.id, "subscriptions": ("a",)}


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_waiting_publishers_are_served_and_cancelled_on_either_backend(backend: str) -> None:
    """Waiting for room, batched hand-over and cancellation work on asyncio and on trio."""
    handled: list[int] = []

    async def main() -> None:
        gate = anyio.Event()

        async def handler(item: Item) -> None:
            await gate.wait()
            handled.append(item.seq)

        async with Bus() as bus:
            bus.subscribe(Item, handler, name="small", queue_size=2)
            await bus.publish(Item(0))
            await settle()
            await bus.publish(Item(1))
            await bus.publish(Item(2))
            async with anyio.create_task_group() as tg:
                for seq in range(3, 7):
                    tg.start_soon(bus.publish, Item(seq))
                with anyio.move_on_after(0):
                    await bus.publish(Item(99))  # cancelled while waiting
                await settle()
                gate.set()

    anyio.run(main, backend=backend)
    assert sorted(handled) == [0, 1, 2, 3, 4, 5, 6]
