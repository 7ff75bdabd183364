"""publish_many over a transport that sends batches (the ``SendsMany`` capability)."""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pytest
from test_publish_buffer import FlakyBroker

from eventbus import Bus, Event, SendsMany, TransportError


@attrs.frozen
class Ping(Event, type_name="tests.send_many.Ping"):
    n: int


class BatchBroker(FlakyBroker):
    """A fake broker with ``send_many``: records each batch it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[Event]] = []

    async def send_many(self, events: Sequence[Event]) -> None:
        self.batches.append(list(events))
        for event in events:
            await self.send(event)


def test_the_fake_has_the_capability() -> None:
    assert isinstance(BatchBroker(), SendsMany)
    assert not isinstance(FlakyBroker(), SendsMany)


async def test_publish_many_hands_the_batch_over_in_chunks_in_order() -> None:
    """Batches go to send_many in chunks of 1024, in order; receipts match the events."""
    broker = BatchBroker()
    async with Bus(transport=broker) as bus:
        bus.subscribe(Ping, lambda event: None, name="pings")
        events = [Ping(i) for i in range(2500)]
        receipts = await bus.publish_many(events)
    assert [len(batch) for batch in broker.batches] == [1024, 1024, 452]
    assert [e for batch in broker.batches for e in batch] == events
    assert broker.stored == events
    assert [r.event_id for r in receipts] == [e.id for e in events]
    assert all(r.subscriptions == ("pings",) and not r.buffered for r in receipts)


async def test_a_single_publish_still_uses_send() -> None:
    broker = BatchBroker()
    async with Bus(transport=broker) as bus:
        await bus.publish(Ping(1))
        await bus.publish_many([Ping(2)])  # one event: a plain publish
    assert broker.batches == []
    assert [e.n for e in broker.stored if isinstance(e, Ping)] == [1, 2]


async def test_with_a_publish_buffer_events_go_one_by_one() -> None:
    """A publish buffer needs each event on its own (an outage buffers it), so no batches."""
    broker = BatchBroker()
    async with Bus(transport=broker, publish_buffer=10) as bus:
        events = [Ping(i) for i in range(20)]
        await bus.publish_many(events)
    assert broker.batches == []
    assert broker.stored == events


async def test_a_failed_batch_raises_the_transport_error() -> None:
    broker = BatchBroker()
    async with Bus(transport=broker) as bus:
        broker.down = True
        with pytest.raises(TransportError, match="down"):
            await bus.publish_many([Ping(i) for i in range(3)])
    assert broker.stored == []
