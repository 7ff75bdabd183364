"""The baseline a user would write instead: a bounded asyncio.Queue per subscriber and a worker."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from ._base import Adapter, Handler, Plain, perf_counter

DEFAULT_QUEUE_BOUND = 1024  # the Bus default queue_size; run.py reads the real one


class BareQueue(Adapter):
    name = "asyncio.Queue"
    module = "asyncio"
    builds = (
        "a slotted `Plain(seq, t0)` object; `await q.put(event)` on one bounded "
        "`asyncio.Queue(maxsize=<Bus default queue_size>)` per subscriber, each with a worker "
        "task `while True: await handler(await q.get())`"
    )
    bound: ClassVar[int] = DEFAULT_QUEUE_BOUND

    async def start(self, n_subs: int, mode: str, *, queue_size: int | None = None) -> None:
        size = queue_size if queue_size is not None else self.bound
        self.queues: list[asyncio.Queue[Any]] = [asyncio.Queue(maxsize=size) for _ in range(n_subs)]
        self.workers = [
            asyncio.create_task(self._worker(q, self.probe.handler(mode, f"s{i}")))
            for i, q in enumerate(self.queues)
        ]

    @staticmethod
    async def _worker(queue: asyncio.Queue[Any], handler: Handler) -> None:
        while True:
            event = await queue.get()
            await handler(event)
            queue.task_done()

    async def publish(self, event: Any) -> None:
        for q in self.queues:
            await q.put(event)

    async def publish_many(self, first: int, count: int) -> None:
        queues = self.queues
        if len(queues) == 1:
            put = queues[0].put
            for seq in range(first, first + count):
                await put(Plain(seq, perf_counter()))
        else:
            for seq in range(first, first + count):
                event = Plain(seq, perf_counter())
                for q in queues:
                    await q.put(event)

    async def settle(self) -> None:
        for q in self.queues:
            await q.join()

    async def stop(self) -> None:
        for w in self.workers:
            w.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)
