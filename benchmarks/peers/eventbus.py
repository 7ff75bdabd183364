"""eventbus, default ``Bus()``, with both handler signatures: ``h(event, ctx)`` and ``h(event)``."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar

import attrs

from eventbus import Bus, Event

from ._base import Adapter, perf_counter


@attrs.frozen
class BenchEvent(Event):
    """The event a user of eventbus writes: an attrs subclass of Event with the same fields."""

    seq: int
    t0: float


class EventbusCtx(Adapter):
    name = "eventbus (event, ctx)"
    module = "eventbus"
    distribution = "eventbus"
    args: ClassVar[int] = 2
    builds = (
        "`BenchEvent(seq, t0)`, an `@attrs.frozen` `Event` subclass; `await bus.publish(event)` "
        "on a default `Bus()` (metrics, accounting, backpressure, drain all on); handlers "
        "`async def h(event, ctx)`; then `await bus.drain()`"
    )

    async def start(self, n_subs: int, mode: str, *, queue_size: int | None = None) -> None:
        options: dict[str, Any] = {}
        if queue_size is not None:
            options = {"queue_size": queue_size, "concurrency": 1}
        self.stack = contextlib.AsyncExitStack()
        self.bus = await self.stack.enter_async_context(Bus())
        for i in range(n_subs):
            name = f"s{i}"
            handler = self.probe.handler(mode, name, args=self.args)
            self.bus.subscribe(BenchEvent, handler, name=name, **options)

    def make_event(self, seq: int) -> Any:
        return BenchEvent(seq, perf_counter())

    async def publish(self, event: Any) -> None:
        await self.bus.publish(event)

    async def publish_many(self, first: int, count: int) -> None:
        publish = self.bus.publish
        for seq in range(first, first + count):
            await publish(BenchEvent(seq, perf_counter()))

    async def settle(self) -> None:
        await self.bus.drain()

    async def stop(self) -> None:
        await self.stack.aclose()


class EventbusPlain(EventbusCtx):
    name = "eventbus (event)"
    args = 1
    builds = "as above, with handlers `async def h(event)`"
