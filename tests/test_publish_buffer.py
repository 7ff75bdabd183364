"""Bus(publish_buffer=...), bus.transport_status() and bus.publish_many(), over a fake broker."""

from __future__ import annotations

import logging

import anyio
import anyio.abc
import attrs
import pytest

from eventbus import (
    Bus,
    BusFull,
    Deliver,
    Event,
    Receipt,
    ReportsStatus,
    Transport,
    TransportError,
    TransportStatus,
)


@attrs.frozen
class Ping(Event, type_name="tests.publish_buffer.Ping"):
    n: int


class FlakyBroker:
    """A transport that stores events in a list, or refuses them while ``down``."""

    def __init__(self) -> None:
        self.stored: list[Event] = []
        self.down = False
        self.attempts = 0
        self.came_back = anyio.Event()

    async def start(self) -> None:
        pass

    async def send(self, event: Event) -> None:
        self.attempts += 1
        if self.down:
            raise TransportError("the fake broker is down") from OSError("connection refused")
        self.stored.append(event)

    async def consume(
        self,
        group: str,
        deliver: Deliver,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        task_status.started()
        await anyio.sleep_forever()

    async def pending(self, group: str) -> int:
        return 0

    async def aclose(self) -> None:
        pass

    def status(self) -> TransportStatus:
        return TransportStatus("fake", "fake://", not self.down, 0, None)


class SilentBroker(FlakyBroker):
    """A transport without ``status()``."""

    status = None  # type: ignore[assignment]


def test_fake_broker_is_a_transport() -> None:
    """The fake implements Transport and ReportsStatus."""
    assert isinstance(FlakyBroker(), Transport)
    assert isinstance(FlakyBroker(), ReportsStatus)


async def test_without_a_buffer_an_outage_raises_transport_error() -> None:
    """With no publish_buffer, publish raises the transport's TransportError."""
    broker = FlakyBroker()
    async with Bus(transport=broker) as bus:
        broker.down = True
        with pytest.raises(TransportError):
            await bus.publish(Ping(1))
        broker.down = False


async def test_a_buffered_publish_says_so_in_its_receipt() -> None:
    """During an outage publish returns a Receipt whose buffered is true."""
    broker = FlakyBroker()
    async with Bus(transport=broker, publish_buffer=10) as bus:
        stored = await bus.publish(Ping(0))
        broker.down = True
        event = Ping(1)
        receipt = await bus.publish(event)
        broker.down = False
    assert stored.buffered is False
    assert receipt.buffered is True
    assert isinstance(receipt, Receipt)
    assert receipt.event_id == event.id


async def test_buffered_events_reach_the_broker_in_order_before_drain_returns() -> None:
    """Events buffered during an outage are stored, in publish order, once the broker is back."""
    broker = FlakyBroker()
    async with Bus(transport=broker, publish_buffer=10) as bus:
        broker.down = True
        events = [Ping(i) for i in range(5)]
        for event in events:
            await bus.publish(event)
        assert broker.stored == []
        broker.down = False
        await bus.drain()
        assert broker.stored == events


async def test_publishes_queue_behind_buffered_events() -> None:
    """While events wait, a new publish is buffered behind them even if the broker answers."""
    broker = FlakyBroker()
    async with Bus(transport=broker, publish_buffer=10) as bus:
        broker.down = True
        first = Ping(1)
        await bus.publish(first)
        broker.down = False
        second = Ping(2)
        receipt = await bus.publish(second)
        await bus.drain()
    assert broker.stored.index(first) < broker.stored.index(second)
    assert receipt.buffered is True or broker.stored == [first, second]


async def test_a_full_buffer_raises_bus_full() -> None:
    """When publish_buffer events wait, the next publish raises BusFull naming the buffer."""
    broker = FlakyBroker()
    async with Bus(transport=broker, publish_buffer=2) as bus:
        broker.down = True
        await bus.publish(Ping(1))
        await bus.publish(Ping(2))
        with pytest.raises(BusFull, match="publish buffer is full"):
            await bus.publish(Ping(3))
        broker.down = False


async def test_transport_status_counts_buffered_events() -> None:
    """bus.transport_status() reports the transport's connection and the buffered count."""
    broker = FlakyBroker()
    async with Bus(transport=broker, publish_buffer=10) as bus:
        broker.down = True
        await bus.publish(Ping(1))
        status = bus.transport_status()
        broker.down = False
        await bus.drain()
        after = bus.transport_status()
    assert status == TransportStatus("fake", "fake://", False, 0, None, buffered=1)
    assert after is not None
    assert after.buffered == 0
    assert after.connected is True


async def test_transport_status_is_none_in_memory() -> None:
    """An in-memory bus has no transport status."""
    async with Bus() as bus:
        assert bus.transport_status() is None


async def test_transport_status_of_a_transport_that_cannot_report() -> None:
    """A transport without status() is reported by its class name, as connected."""
    async with Bus(transport=SilentBroker()) as bus:
        status = bus.transport_status()
    assert status == TransportStatus("SilentBroker", "", True, 0, None)


async def test_closing_with_buffered_events_logs_them_as_lost(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Events still buffered when the bus closes (grace period over) are logged as lost."""
    broker = FlakyBroker()
    event = Ping(1)
    with caplog.at_level(logging.ERROR, logger="eventbus"):
        async with Bus(transport=broker, publish_buffer=10, grace_period=0) as bus:
            broker.down = True
            await bus.publish(event)
    assert broker.stored == []
    assert any("never reached the broker" in r.getMessage() for r in caplog.records)
    assert any(event.id in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "10"])
def test_invalid_publish_buffer_is_refused(value: object) -> None:
    """publish_buffer must be an int >= 1."""
    with pytest.raises(ValueError, match="publish_buffer"):
        Bus(transport=FlakyBroker(), publish_buffer=value)  # type: ignore[arg-type]


def test_publish_buffer_needs_a_broker() -> None:
    """A publish buffer without a broker transport is refused."""
    with pytest.raises(ValueError, match="needs a broker transport"):
        Bus(publish_buffer=10)


# -- publish_many ----------------------------------------------------------------------------


async def test_publish_many_in_memory_returns_receipts_in_order() -> None:
    """In memory, publish_many publishes each event and returns the receipts in order."""
    seen: list[Event] = []
    async with Bus() as bus:
        bus.subscribe(Ping, seen.append, name="pings")
        events = [Ping(i) for i in range(5)]
        receipts = await bus.publish_many(events)
        await bus.drain()
    assert [r.event_id for r in receipts] == [e.id for e in events]
    assert all(r.subscriptions == ("pings",) for r in receipts)
    assert sorted(seen, key=lambda e: e.n if isinstance(e, Ping) else -1) == events


async def test_publish_many_over_a_broker_stores_in_order() -> None:
    """Over a broker, publish_many stores every event, in order, and returns their receipts."""
    broker = FlakyBroker()
    async with Bus(transport=broker) as bus:
        events = [Ping(i) for i in range(600)]
        receipts = await bus.publish_many(events)
    assert broker.stored == events
    assert [r.event_id for r in receipts] == [e.id for e in events]


async def test_publish_many_checks_every_item_first() -> None:
    """A non-event anywhere in the batch raises TypeError before anything is published."""
    broker = FlakyBroker()
    async with Bus(transport=broker) as bus:
        with pytest.raises(TypeError):
            await bus.publish_many([Ping(1), "not an event"])  # type: ignore[list-item]
    assert broker.stored == []


async def test_publish_many_raises_transport_error_itself() -> None:
    """A broker failure in a batch raises TransportError, not an exception group."""
    broker = FlakyBroker()
    async with Bus(transport=broker) as bus:
        broker.down = True
        with pytest.raises(TransportError):
            await bus.publish_many([Ping(i) for i in range(10)])
        broker.down = False
