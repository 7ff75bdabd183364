"""A poison-message scenario shared by the broker tests (NATS, Redis)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import attrs

from eventbus import Bus, Event, UndecodableEvent, to_cloudevent
from eventbus.testing import TransportFactory, Wire


@attrs.frozen
class Order(Event, type_name="tests.bridges.poison.Order"):
    n: int
    at: datetime = datetime(2024, 1, 1, tzinfo=UTC)


@attrs.frozen
class Refund(Event, type_name="tests.bridges.poison.Refund"):
    n: int


async def poison_scenario(factory: TransportFactory, wire: Wire) -> None:
    """Good orders around poison ones: all good ones handled, each poison dead-lettered once.

    A poison *Order* is dead-lettered by the orders subscription only; a
    message with no readable type by both; the refunds keep flowing.
    """
    namespace = os.urandom(6).hex()
    handled: list[Event] = []

    async def record(event: Event) -> None:
        handled.append(event)

    bad_time = dict(to_cloudevent(Order(99)), time="9999-12-31T23:59:59-01:00")
    too_deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    async with factory(namespace) as transport, Bus(transport=transport) as bus:
        bus.subscribe(Order, record, name="orders")
        bus.subscribe(Refund, record, name="refunds")
        good = [Order(1), Refund(1)]
        for event in good:
            await bus.publish(event)
        await wire.put(namespace, json.dumps(bad_time).encode())
        await wire.put(namespace, too_deep)
        good += [Order(2), Refund(2)]
        for event in good[2:]:
            await bus.publish(event)
        await bus.drain()
        assert sorted(e.id for e in handled) == sorted(e.id for e in good)
        letters = sorted(
            (letter.subscription, letter.event.reason.split(":")[0])
            for letter in bus.dead_letters
            if isinstance(letter.event, UndecodableEvent)
        )
        assert letters == [
            ("orders", "SerializationError"),
            ("orders", "SerializationError"),
            ("refunds", "SerializationError"),
        ], letters
        [overflow] = [
            letter.event
            for letter in bus.dead_letters
            if letter.subscription == "orders"
            and isinstance(letter.event, UndecodableEvent)
            and letter.event.event_type_name == Order.event_type()
        ]
        assert overflow.document == json.dumps(bad_time)
        assert "out of range" in overflow.reason
        assert await transport.pending("orders") == 0
        assert await transport.pending("refunds") == 0
