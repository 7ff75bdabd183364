"""What every peer shares: the probe its handlers report to, and the adapter shape."""

from __future__ import annotations

import asyncio
import importlib.util
import time
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

perf_counter = time.perf_counter

Handler = Callable[..., Awaitable[None]]


class Plain:
    """The event a user writes when there is no event library: a slotted object."""

    __slots__ = ("seq", "t0")

    def __init__(self, seq: int, t0: float) -> None:
        self.seq = seq
        self.t0 = t0


class Probe:
    """Shared state of one measurement's handlers: a call counter and a finish line."""

    def __init__(self) -> None:
        self.count = 0
        self.target = 0
        self.done = asyncio.Event()
        self.t_pub = 0.0
        self.latencies: list[float] = []
        self.gate = asyncio.Event()

    def arm(self, target: int) -> None:
        self.count = 0
        self.target = target
        self.done.clear()

    def handler(self, mode: str, name: str, *, args: int = 1, key_first: bool = False) -> Handler:
        """A fresh async handler; every peer gets the same body.

        ``mode`` is ``count`` (throughput), ``latency`` (also record the time
        since ``t_pub``) or ``blocked`` (wait for ``gate`` first, for memory).
        ``args=2`` makes ``h(event, ctx)``; ``key_first`` makes aiopubsub's
        ``h(key, message)``.
        """
        probe = self

        async def count(event: Any) -> None:
            probe.count += 1
            if probe.count == probe.target:
                probe.done.set()

        async def latency(event: Any) -> None:
            probe.latencies.append(perf_counter() - probe.t_pub)
            probe.count += 1
            if probe.count == probe.target:
                probe.done.set()

        async def blocked(event: Any) -> None:
            await probe.gate.wait()
            probe.count += 1
            if probe.count == probe.target:
                probe.done.set()

        body = {"count": count, "latency": latency, "blocked": blocked}[mode]
        fn: Handler
        if key_first:

            async def fn(key: Any, event: Any) -> None:
                await body(event)

        elif args == 2 and mode == "count":
            # Inlined, as a user's handler would be: the ctx costs only its making.
            async def fn(event: Any, ctx: Any) -> None:
                probe.count += 1
                if probe.count == probe.target:
                    probe.done.set()

        elif args == 2:

            async def fn(event: Any, ctx: Any) -> None:
                await body(event)

        else:
            fn = body

        # Distinct names: some peers key or warn on handler names.
        fn.__name__ = fn.__qualname__ = name
        return fn


class Adapter:
    """One contender. Subclasses keep their publish loop tight and call the peer's API directly."""

    name: ClassVar[str]
    module: ClassVar[str]  # what must be importable for the row to run
    distribution: ClassVar[str | None] = None  # for the version column of the JSON output
    note: ClassVar[str] = ""
    builds: ClassVar[str] = ""  # what the row builds and calls, for the docs
    # Memory per queued event: None means "not meaningful" (the handler runs
    # inside publish, nothing is queued); otherwise the largest number of
    # events the peer can hold queued (0 = no limit besides the run's size).
    memory_capacity: ClassVar[int | None] = 0

    def __init__(self, probe: Probe) -> None:
        self.probe = probe

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this row cannot run, or None."""
        if importlib.util.find_spec(cls.module) is None:
            return "skipped: not installed"
        return None

    async def start(self, n_subs: int, mode: str, *, queue_size: int | None = None) -> None:
        raise NotImplementedError

    def make_event(self, seq: int) -> Any:
        return Plain(seq, perf_counter())

    async def publish(self, event: Any) -> None:
        raise NotImplementedError

    async def publish_many(self, first: int, count: int) -> None:
        """Build and publish *count* events, the building inside the loop."""
        raise NotImplementedError

    async def settle(self) -> None:
        """The peer's own "wait until everything is handled", after the counter says so."""

    async def stop(self) -> None:
        raise NotImplementedError
