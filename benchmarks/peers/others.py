"""The peer libraries, each publishing the event its users would write."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
from collections import deque
from typing import Any

from ._base import Adapter, Plain, perf_counter


class BlinkerAdapter(Adapter):
    name = "blinker"
    module = "blinker"
    distribution = "blinker"
    note = "send_async() awaits each receiver inline: no queue, so no memory figure"
    builds = (
        "a slotted `Plain(seq, t0)`; `await signal.send_async(event)`: receivers run inline, "
        "one after the other, nothing is queued"
    )
    memory_capacity = None

    async def start(self, n_subs: int, mode: str, *, queue_size: int | None = None) -> None:
        import blinker

        self.signal = blinker.Signal()
        for i in range(n_subs):
            self.signal.connect(self.probe.handler(mode, f"s{i}"), weak=False)

    async def publish(self, event: Any) -> None:
        await self.signal.send_async(event)

    async def publish_many(self, first: int, count: int) -> None:
        send = self.signal.send_async
        for seq in range(first, first + count):
            await send(Plain(seq, perf_counter()))

    async def stop(self) -> None:
        self.signal.receivers.clear()


class PyeeAdapter(Adapter):
    name = "pyee"
    module = "pyee"
    distribution = "pyee"
    note = "emit() starts one task per handler call, unbounded; memory counts those tasks"
    builds = "a slotted `Plain(seq, t0)`; `emitter.emit('bench', event)`: one task per handler call"

    async def start(self, n_subs: int, mode: str, *, queue_size: int | None = None) -> None:
        from pyee.asyncio import AsyncIOEventEmitter

        self.ee = AsyncIOEventEmitter()
        for i in range(n_subs):
            self.ee.on("bench", self.probe.handler(mode, f"s{i}"))

    async def publish(self, event: Any) -> None:
        self.ee.emit("bench", event)

    async def publish_many(self, first: int, count: int) -> None:
        emit = self.ee.emit
        for seq in range(first, first + count):
            emit("bench", Plain(seq, perf_counter()))

    async def settle(self) -> None:
        await self.ee.wait_for_complete()

    async def stop(self) -> None:
        self.ee.remove_all_listeners()


class AiopubsubAdapter(Adapter):
    name = "aiopubsub"
    module = "aiopubsub"
    distribution = "aiopubsub"
    note = "unbounded queue per subscriber, one task per delivery"
    builds = "a slotted `Plain(seq, t0)`; `publisher.publish(key, event)`: unbounded queue per subscriber"

    async def start(self, n_subs: int, mode: str, *, queue_size: int | None = None) -> None:
        import aiopubsub

        self.hub = aiopubsub.Hub()
        self.publisher = aiopubsub.Publisher(self.hub, prefix=aiopubsub.Key("bench"))
        self.key = aiopubsub.Key("event")
        self.subscribers = []
        for i in range(n_subs):
            sub = aiopubsub.Subscriber(self.hub, f"s{i}")
            sub.add_async_listener(
                aiopubsub.Key("bench", "event"), self.probe.handler(mode, f"s{i}", key_first=True)
            )
            self.subscribers.append(sub)
        await asyncio.sleep(0)  # let the listener loops start

    async def publish(self, event: Any) -> None:
        self.publisher.publish(self.key, event)

    async def publish_many(self, first: int, count: int) -> None:
        publish = self.publisher.publish
        key = self.key
        for seq in range(first, first + count):
            publish(key, Plain(seq, perf_counter()))

    async def stop(self) -> None:
        for sub in self.subscribers:
            await sub.remove_all_listeners()


_bubus_event_class: Any = None
_bubus_buses = 0


def _bubus_event() -> Any:
    global _bubus_event_class
    if _bubus_event_class is None:
        from bubus import BaseEvent

        class BenchBubusEvent(BaseEvent[None]):  # type: ignore[misc]
            seq: int
            t0: float

        _bubus_event_class = BenchBubusEvent
    return _bubus_event_class


class BubusAdapter(Adapter):
    name = "bubus"
    module = "bubus"
    distribution = "bubus"
    note = (
        "pydantic events; dispatch() refuses work past 50 queued / 100 pending, "
        "so the publisher awaits its oldest event beyond 48 outstanding"
    )
    builds = "its pydantic `BaseEvent` subclass; `bus.dispatch(event)`, awaiting the oldest past 48"
    memory_capacity = 45
    window = 48

    async def start(self, n_subs: int, mode: str, *, queue_size: int | None = None) -> None:
        from bubus import EventBus

        global _bubus_buses
        _bubus_buses += 1
        self.event_class = _bubus_event()
        self.bus = EventBus(name=f"bench{_bubus_buses}")
        for i in range(n_subs):
            self.bus.on(self.event_class, self.probe.handler(mode, f"s{i}"))
        self.outstanding: deque[Any] = deque()

    def make_event(self, seq: int) -> Any:
        return self.event_class(seq=seq, t0=perf_counter())

    async def publish(self, event: Any) -> None:
        self.bus.dispatch(event)

    async def publish_many(self, first: int, count: int) -> None:
        dispatch = self.bus.dispatch
        outstanding = self.outstanding
        cls = self.event_class
        window = self.window
        for seq in range(first, first + count):
            if len(outstanding) >= window:
                await outstanding.popleft()
            outstanding.append(dispatch(cls(seq=seq, t0=perf_counter())))

    async def settle(self) -> None:
        while self.outstanding:
            await self.outstanding.popleft()

    async def stop(self) -> None:
        await self.bus.stop(clear=True)


class FaststreamAdapter(Adapter):
    name = "faststream"
    module = "faststream"
    distribution = "faststream"
    note = (
        "TestNatsBroker (in memory, no server); JSON-encodes each message and runs "
        "the handlers inside publish(): no queue, so no memory figure"
    )
    builds = "a dict; `await broker.publish(dict, subject)` under `TestNatsBroker`, no server"
    memory_capacity = None

    @classmethod
    def unavailable(cls) -> str | None:
        if importlib.util.find_spec("faststream") is None:
            return "skipped: not installed"
        if importlib.util.find_spec("nats") is None:
            return "skipped: faststream[nats] not installed (needed for TestNatsBroker)"
        return None

    async def start(self, n_subs: int, mode: str, *, queue_size: int | None = None) -> None:
        from faststream.nats import NatsBroker, TestNatsBroker

        broker = NatsBroker()
        for i in range(n_subs):
            broker.subscriber("bench")(self.probe.handler(mode, f"s{i}"))
        self.stack = contextlib.AsyncExitStack()
        self.broker = await self.stack.enter_async_context(TestNatsBroker(broker))

    def make_event(self, seq: int) -> Any:
        return {"seq": seq, "t0": perf_counter()}

    async def publish(self, event: Any) -> None:
        await self.broker.publish(event, "bench")

    async def publish_many(self, first: int, count: int) -> None:
        publish = self.broker.publish
        for seq in range(first, first + count):
            await publish({"seq": seq, "t0": perf_counter()}, "bench")

    async def stop(self) -> None:
        await self.stack.aclose()
