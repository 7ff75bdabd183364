"""Side-by-side benchmark: eventbus beside a bare asyncio.Queue worker and peer libraries.

Run it from the repository root::

    python benchmarks/run.py              # full run, about 1-2 minutes
    python benchmarks/run.py --quick      # small sizes, a smoke test for CI
    python benchmarks/run.py --only eventbus,pyee --json results.json

Every peer is driven through an adapter of the same shape: set up N
subscribers whose async handler does the same tiny amount of work (count the
call; in latency runs, also read the clock), publish events from one
coroutine, wait until every handler call has happened, tear down.

Columns, per peer:

* events/s with 1 subscriber and with a 10-subscriber fan-out (events
  published per second; each fan-out event is handled 10 times);
* publish-to-handler latency p50/p99 in microseconds, one event in flight at
  a time: the clock is read right before the publish call and again as the
  handler starts;
* bytes of memory per queued event (tracemalloc), with the handler blocked,
  counting the event object and whatever the library keeps per queued event.

Each figure is also shown as a ratio to the bare asyncio.Queue row of the same
run. Throughput and latency are the best of a few rounds; a round measures
every peer once, so that load from elsewhere on the machine hits all rows of a
round alike.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import importlib.util
import inspect
import json
import math
import platform
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs

from eventbus import Event

perf_counter = time.perf_counter

Handler = Callable[..., Awaitable[None]]

FANOUT = 10
BARE = "asyncio.Queue"
DEFAULT_QUEUE_BOUND = 1000  # used for the bare queue when the Bus default is unknown


@attrs.frozen
class BenchEvent(Event):
    """The event every attrs-friendly peer publishes."""

    seq: int
    t0: float


# --------------------------------------------------------------------------- probe


class Probe:
    """Shared state of the handlers of one measurement: a call counter and a finish line."""

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

    def handler(self, mode: str, name: str, *, two_args: bool = False) -> Handler:
        """A fresh async handler function; every peer gets the same body.

        ``mode`` is ``count`` (throughput), ``latency`` (also record the time
        since ``t_pub``) or ``blocked`` (wait for ``gate`` first, for memory).
        ``two_args`` gives the ``(key, message)`` signature aiopubsub calls.
        """
        probe = self
        fn: Handler
        if mode == "count":
            if two_args:

                async def fn(key: Any, event: Any) -> None:
                    probe.count += 1
                    if probe.count == probe.target:
                        probe.done.set()

            else:

                async def fn(event: Any) -> None:
                    probe.count += 1
                    if probe.count == probe.target:
                        probe.done.set()

        elif mode == "latency":
            if two_args:

                async def fn(key: Any, event: Any) -> None:
                    probe.latencies.append(perf_counter() - probe.t_pub)
                    probe.count += 1
                    if probe.count == probe.target:
                        probe.done.set()

            else:

                async def fn(event: Any) -> None:
                    probe.latencies.append(perf_counter() - probe.t_pub)
                    probe.count += 1
                    if probe.count == probe.target:
                        probe.done.set()

        elif mode == "blocked":
            if two_args:

                async def fn(key: Any, event: Any) -> None:
                    await probe.gate.wait()
                    probe.count += 1
                    if probe.count == probe.target:
                        probe.done.set()

            else:

                async def fn(event: Any) -> None:
                    await probe.gate.wait()
                    probe.count += 1
                    if probe.count == probe.target:
                        probe.done.set()

        else:
            raise ValueError(f"unknown handler mode {mode!r}")
        # Distinct names: some peers key or warn on handler names.
        fn.__name__ = fn.__qualname__ = name
        return fn


# --------------------------------------------------------------------------- adapters


class Adapter:
    """One peer. Subclasses keep their publish loop tight and call the peer's API directly."""

    name: ClassVar[str]
    module: ClassVar[str]  # what must be importable for the row to run
    distribution: ClassVar[str | None] = None  # for the version column of the JSON output
    note: ClassVar[str] = ""
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
        return BenchEvent(seq, perf_counter())

    async def publish(self, event: Any) -> None:
        raise NotImplementedError

    async def publish_many(self, first: int, count: int) -> None:
        raise NotImplementedError

    async def settle(self) -> None:
        """The peer's own "wait until everything is handled", after the counter says so."""

    async def stop(self) -> None:
        raise NotImplementedError


class BareQueue(Adapter):
    """The baseline: one bounded asyncio.Queue and one worker task per subscriber."""

    name = BARE
    module = "asyncio"
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
                await put(BenchEvent(seq, perf_counter()))
        else:
            for seq in range(first, first + count):
                event = BenchEvent(seq, perf_counter())
                for q in queues:
                    await q.put(event)

    async def settle(self) -> None:
        for q in self.queues:
            await q.join()

    async def stop(self) -> None:
        for w in self.workers:
            w.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)


class EventbusAdapter(Adapter):
    name = "eventbus"
    module = "eventbus"
    distribution = "eventbus"

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            from eventbus import Bus  # noqa: F401
        except ImportError as exc:
            return f"skipped: eventbus.Bus not importable ({exc})"
        return None

    async def start(self, n_subs: int, mode: str, *, queue_size: int | None = None) -> None:
        from eventbus import Bus

        options: dict[str, Any] = {}
        if queue_size is not None:
            options = {"queue_size": queue_size, "concurrency": 1}
        self.stack = contextlib.AsyncExitStack()
        self.bus = await self.stack.enter_async_context(Bus())
        for i in range(n_subs):
            name = f"s{i}"
            self.bus.subscribe(BenchEvent, self.probe.handler(mode, name), name=name, **options)

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


class PyeeAdapter(Adapter):
    name = "pyee"
    module = "pyee"
    distribution = "pyee"
    note = "emit() starts one task per handler call, unbounded; memory counts those tasks"

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
            emit("bench", BenchEvent(seq, perf_counter()))

    async def settle(self) -> None:
        await self.ee.wait_for_complete()

    async def stop(self) -> None:
        self.ee.remove_all_listeners()


class BlinkerAdapter(Adapter):
    name = "blinker"
    module = "blinker"
    distribution = "blinker"
    note = "send_async() awaits each receiver inline: no queue, so no memory figure"
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
            await send(BenchEvent(seq, perf_counter()))

    async def stop(self) -> None:
        self.signal.receivers.clear()


class AiopubsubAdapter(Adapter):
    name = "aiopubsub"
    module = "aiopubsub"
    distribution = "aiopubsub"
    note = "unbounded queue per subscriber, one task per delivery"

    async def start(self, n_subs: int, mode: str, *, queue_size: int | None = None) -> None:
        import aiopubsub

        self.hub = aiopubsub.Hub()
        self.publisher = aiopubsub.Publisher(self.hub, prefix=aiopubsub.Key("bench"))
        self.key = aiopubsub.Key("event")
        self.subscribers = []
        for i in range(n_subs):
            sub = aiopubsub.Subscriber(self.hub, f"s{i}")
            sub.add_async_listener(
                aiopubsub.Key("bench", "event"), self.probe.handler(mode, f"s{i}", two_args=True)
            )
            self.subscribers.append(sub)
        await asyncio.sleep(0)  # let the listener loops start

    async def publish(self, event: Any) -> None:
        self.publisher.publish(self.key, event)

    async def publish_many(self, first: int, count: int) -> None:
        publish = self.publisher.publish
        key = self.key
        for seq in range(first, first + count):
            publish(key, BenchEvent(seq, perf_counter()))

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
    # dispatch() raises once 50 events sit in its queue (100 pending in all).
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


ADAPTERS: list[type[Adapter]] = [
    BareQueue,
    EventbusAdapter,
    BlinkerAdapter,
    PyeeAdapter,
    AiopubsubAdapter,
    BubusAdapter,
    FaststreamAdapter,
]


# --------------------------------------------------------------------------- measurements


@attrs.define
class Settings:
    events: int
    repeats: int
    budget: float  # seconds one throughput run may take; slow peers publish fewer events
    latency_samples: int
    memory_events: int


@attrs.define
class Row:
    name: str
    status: str = "ok"
    note: str = ""
    version: str | None = None
    single_eps: float | None = None
    single_events: int | None = None
    fanout_eps: float | None = None
    fanout_events: int | None = None
    p50_us: float | None = None
    p99_us: float | None = None
    latency_samples: int | None = None
    bytes_per_event: float | None = None
    memory_events: int | None = None


async def run_throughput(cls: type[Adapter], n_subs: int, n_events: int) -> float:
    """One run: events/s from the first publish until every handler call is done."""
    probe = Probe()
    adapter = cls(probe)
    await adapter.start(n_subs, "count")
    try:
        probe.arm(n_events * n_subs)
        gc.collect()
        start = perf_counter()
        await adapter.publish_many(0, n_events)
        await probe.done.wait()
        await adapter.settle()
        elapsed = perf_counter() - start
    finally:
        await adapter.stop()
    return n_events / elapsed


async def calibrate(cls: type[Adapter], n_subs: int, settings: Settings) -> int:
    """Warm-up runs; returns how many events fit in the time budget (within bounds).

    A first tiny run gives a rough rate (start-up costs weigh on it), a second
    one of about a quarter of the budget a better one.
    """
    floor = min(settings.events, 100)

    def fit(rate: float, seconds: float) -> int:
        return max(floor, min(settings.events, int(rate * seconds)))

    rate = await run_throughput(cls, n_subs, max(1, min(settings.events, 200)))
    rate = await run_throughput(cls, n_subs, fit(rate, settings.budget / 4))
    return fit(rate, settings.budget)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    index = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[index]


MIN_LATENCY_SAMPLES = 200


async def run_latency(cls: type[Adapter], settings: Settings) -> tuple[float, float, int]:
    """p50/p99 publish-to-handler-start in µs, one event in flight, and the sample count.

    The clock is read after the event is built, right before the publish call,
    and again as the handler starts. A slow peer stops early once it has spent
    the time budget and has at least MIN_LATENCY_SAMPLES samples.
    """
    warmup = max(10, settings.latency_samples // 10)
    wanted = settings.latency_samples
    probe = Probe()
    adapter = cls(probe)
    await adapter.start(1, "latency")
    try:
        gc.collect()
        for seq in range(warmup):
            event = adapter.make_event(seq)
            probe.arm(1)
            probe.t_pub = perf_counter()
            await adapter.publish(event)
            await probe.done.wait()
        probe.latencies.clear()
        deadline = perf_counter() + settings.budget
        for seq in range(warmup, warmup + wanted):
            event = adapter.make_event(seq)
            probe.arm(1)
            probe.t_pub = perf_counter()
            await adapter.publish(event)
            await probe.done.wait()
            if probe.t_pub > deadline and len(probe.latencies) >= MIN_LATENCY_SAMPLES:
                break
        await adapter.settle()
    finally:
        await adapter.stop()
    values = sorted(probe.latencies)
    return _percentile(values, 0.50) * 1e6, _percentile(values, 0.99) * 1e6, len(values)


async def run_memory(cls: type[Adapter], settings: Settings) -> tuple[float, int] | None:
    """Bytes per queued event: handler blocked, concurrency 1, queue large enough.

    tracemalloc counts what is allocated between the first and the last publish
    (building the events included), once the worker holds the first event.
    """
    if cls.memory_capacity is None:
        return None
    k = settings.memory_events
    if cls.memory_capacity:
        k = min(k, cls.memory_capacity)
    best: float | None = None
    for _ in range(2):
        probe = Probe()
        adapter = cls(probe)
        await adapter.start(1, "blocked", queue_size=k + 16)
        try:
            probe.arm(k)
            for _ in range(3):
                await asyncio.sleep(0)
            gc.collect()
            tracemalloc.start()
            try:
                before = tracemalloc.get_traced_memory()[0]
                await adapter.publish_many(0, k)
                for _ in range(3):  # let workers pick up their first event and block
                    await asyncio.sleep(0)
                after = tracemalloc.get_traced_memory()[0]
            finally:
                tracemalloc.stop()
            probe.gate.set()
            await probe.done.wait()
            await adapter.settle()
        finally:
            await adapter.stop()
        per_event = (after - before) / k
        best = per_event if best is None else min(best, per_event)
    assert best is not None
    return best, k


def event_bytes(count: int) -> float:
    """Bytes one BenchEvent takes on its own (the floor of every memory figure)."""
    keep: list[BenchEvent | None] = [None] * count
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for seq in range(count):
            keep[seq] = BenchEvent(seq, perf_counter())
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    return (after - before) / count


def _version(cls: type[Adapter]) -> str | None:
    if cls.distribution is None:
        return None
    try:
        return importlib.metadata.version(cls.distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _bus_default_queue_size() -> int | None:
    try:
        from eventbus import Bus
    except ImportError:
        return None
    try:
        default = inspect.signature(Bus.subscribe).parameters["queue_size"].default
    except (KeyError, TypeError, ValueError):
        return None
    return default if isinstance(default, int) and default > 0 else None


def _fail(row: Row, exc: Exception) -> None:
    row.status = f"error: {type(exc).__name__}: {exc}"


async def measure_all(classes: Sequence[type[Adapter]], settings: Settings) -> list[Row]:
    """Measure every peer. Repeats go round-robin over the peers, so that a burst of
    load from elsewhere on the machine hits every row of a round alike; each
    figure keeps the best repeat (highest throughput; lowest p99, with its p50).
    """
    rows = {cls: Row(name=cls.name, note=cls.note, version=_version(cls)) for cls in classes}
    live: list[type[Adapter]] = []
    for cls in classes:
        reason = cls.unavailable()
        if reason is None:
            live.append(cls)
        else:
            rows[cls].status = reason

    sizes: dict[type[Adapter], tuple[int, int]] = {}
    for cls in list(live):
        _progress(f"calibrating {cls.name}")
        try:
            sizes[cls] = (await calibrate(cls, 1, settings), await calibrate(cls, FANOUT, settings))
        except Exception as exc:
            _fail(rows[cls], exc)
            live.remove(cls)
            continue
        rows[cls].single_events, rows[cls].fanout_events = sizes[cls]

    for round_no in range(1, settings.repeats + 1):
        _progress(f"round {round_no}/{settings.repeats}: {', '.join(c.name for c in live)}")
        for cls in list(live):
            row = rows[cls]
            single, fanout = sizes[cls]
            try:
                eps = await run_throughput(cls, 1, single)
                row.single_eps = max(row.single_eps or 0.0, eps)
                eps = await run_throughput(cls, FANOUT, fanout)
                row.fanout_eps = max(row.fanout_eps or 0.0, eps)
                p50, p99, samples = await run_latency(cls, settings)
                if row.p99_us is None or p99 < row.p99_us:
                    row.p50_us, row.p99_us, row.latency_samples = p50, p99, samples
            except Exception as exc:
                _fail(row, exc)
                live.remove(cls)

    for cls in list(live):
        _progress(f"memory {cls.name}")
        try:
            memory = await run_memory(cls, settings)
        except Exception as exc:
            _fail(rows[cls], exc)
            continue
        if memory is not None:
            rows[cls].bytes_per_event, rows[cls].memory_events = memory
    return [rows[cls] for cls in classes]


def _progress(message: str) -> None:
    print(f"  {message} ...", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- report


def _fmt_ratio(ratio: float) -> str:
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return ""
    return f"({_fmt_ratio(value / base)})"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def format_table(rows: Sequence[Row]) -> str:
    base = next((r for r in rows if r.name == BARE and r.status == "ok"), None)
    headers = (
        "peer",
        "1-sub events/s",
        f"{FANOUT}-sub fan-out events/s",
        "p50 µs",
        "p99 µs",
        "bytes/queued event",
    )
    lines: list[tuple[str, ...]] = [headers]
    for r in rows:
        if r.status != "ok":
            lines.append((r.name, r.status, "", "", "", ""))
            continue
        if r.bytes_per_event is None:
            memory = "n/a"
        else:
            memory = f"{r.bytes_per_event:,.0f} {_ratio(r.bytes_per_event, base.bytes_per_event if base else None)}"
        lines.append(
            (
                r.name,
                f"{_num(r.single_eps, ',.0f')} {_ratio(r.single_eps, base.single_eps if base else None)}",
                f"{_num(r.fanout_eps, ',.0f')} {_ratio(r.fanout_eps, base.fanout_eps if base else None)}",
                f"{_num(r.p50_us, ',.1f')} {_ratio(r.p50_us, base.p50_us if base else None)}",
                f"{_num(r.p99_us, ',.1f')} {_ratio(r.p99_us, base.p99_us if base else None)}",
                memory,
            )
        )
    full = [line for n, line in enumerate(lines) if n == 0 or all(line[1:])]
    widths = [max(len(line[i]) for line in full) for i in range(len(headers))]
    out = []
    for n, line in enumerate(lines):
        if n == 0 or all(line[1:]):
            out.append(
                "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            )
        else:
            out.append(f"{line[0].ljust(widths[0])}  {line[1]}")
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def format_notes(rows: Sequence[Row]) -> str:
    out = []
    for r in rows:
        if r.status != "ok":
            continue
        parts = [
            f"{r.single_events:,} / {r.fanout_events:,} events per 1-sub / fan-out run",
            f"{r.latency_samples:,} latency samples",
        ]
        if r.memory_events is not None:
            parts.append(f"{r.memory_events:,} queued for memory")
        if r.note:
            parts.append(r.note)
        version = f" {r.version}" if r.version else ""
        out.append(f"  {r.name}{version}: " + "; ".join(parts))
    return "\n".join(out)


def evaluate_targets(rows: Sequence[Row]) -> list[tuple[str, bool | None, str]]:
    """(target, passed or None when it could not be evaluated, detail)."""
    by_name = {r.name: r for r in rows if r.status == "ok"}
    eb = by_name.get("eventbus")
    base = by_name.get(BARE)
    results: list[tuple[str, bool | None, str]] = []
    if eb is None or base is None:
        return [("all targets", None, "not evaluated: the eventbus or bare queue row is missing")]

    def ratio(a: float | None, b: float | None) -> float | None:
        return None if a is None or not b else a / b

    def check(label: str, value: float | None, ok: Callable[[float], bool], fmt: str) -> None:
        if value is None:
            results.append((label, None, "not measured"))
        else:
            results.append((label, ok(value), format(value, fmt)))

    check(
        "1-sub throughput >= 0.5x bare queue",
        ratio(eb.single_eps, base.single_eps),
        lambda v: v >= 0.5,
        ".2f",
    )
    check(
        f"{FANOUT}-sub fan-out >= 0.5x bare queue",
        ratio(eb.fanout_eps, base.fanout_eps),
        lambda v: v >= 0.5,
        ".2f",
    )
    check("p99 latency <= 2x bare queue", ratio(eb.p99_us, base.p99_us), lambda v: v <= 2.0, ".2f")
    check(
        "memory <= 300 bytes per queued event",
        eb.bytes_per_event,
        lambda v: v <= 300,
        ".0f",
    )
    for peer in ("pyee", "aiopubsub", "bubus", "faststream"):
        other = by_name.get(peer)
        label = f"ahead of {peer} on every column"
        if other is None:
            results.append((label, None, "peer not measured"))
            continue
        behind = []
        if (eb.single_eps or 0) <= (other.single_eps or 0):
            behind.append("1-sub")
        if (eb.fanout_eps or 0) <= (other.fanout_eps or 0):
            behind.append("fan-out")
        for col in ("p50_us", "p99_us"):
            mine, theirs = getattr(eb, col), getattr(other, col)
            if mine is not None and theirs is not None and mine >= theirs:
                behind.append(col.removesuffix("_us"))
        if (
            eb.bytes_per_event is not None
            and other.bytes_per_event is not None
            and eb.bytes_per_event >= other.bytes_per_event
        ):
            behind.append("memory")
        detail = "behind on " + ", ".join(behind) if behind else "ahead on all measured columns"
        results.append((label, not behind, detail))
    return results


def format_targets(rows: Sequence[Row]) -> str:
    out = ["targets (eventbus, ratios to the bare asyncio.Queue row):"]
    for label, passed, detail in evaluate_targets(rows):
        verdict = "n/a " if passed is None else ("PASS" if passed else "FAIL")
        out.append(f"  [{verdict}] {label}: {detail}")
    return "\n".join(out)


def format_blinker(rows: Sequence[Row]) -> str:
    by_name = {r.name: r for r in rows if r.status == "ok"}
    eb, bl = by_name.get("eventbus"), by_name.get("blinker")
    if eb is None or bl is None:
        return "eventbus vs blinker: not compared (a row is missing)"

    def ratio(a: float | None, b: float | None) -> str:
        return "-" if a is None or not b else f"{a / b:.2f}x"

    return (
        "eventbus vs blinker (blinker awaits each receiver inside send_async: no queue,\n"
        "no backpressure, the publisher waits for every handler):\n"
        f"  throughput 1-sub {ratio(eb.single_eps, bl.single_eps)}, "
        f"fan-out {ratio(eb.fanout_eps, bl.fanout_eps)}; "
        f"latency p50 {ratio(eb.p50_us, bl.p50_us)}, p99 {ratio(eb.p99_us, bl.p99_us)} "
        "(eventbus / blinker)"
    )


# --------------------------------------------------------------------------- bench_patterns


def run_patterns(quick: bool) -> tuple[list[dict[str, Any]] | None, str]:
    """Call benchmarks/bench_patterns.py's run() when it exists; never fail the main report."""
    path = Path(__file__).with_name("bench_patterns.py")
    if not path.exists():
        return None, ""
    try:
        spec = importlib.util.spec_from_file_location("bench_patterns", path)
        if spec is None or spec.loader is None:
            return None, "bench_patterns: cannot be loaded"
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        run = getattr(module, "run", None)
        if run is None:
            return None, "bench_patterns: no run() function"
        kwargs = {"quick": quick} if "quick" in inspect.signature(run).parameters else {}
        result = run(**kwargs)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        rows = [dict(r) for r in result]
    except Exception as exc:
        return None, f"bench_patterns: failed: {type(exc).__name__}: {exc}"
    return rows, format_dict_table(rows)


async def _await(awaitable: Awaitable[Any]) -> Any:
    return await awaitable


def format_dict_table(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "bench_patterns: no rows"
    headers: list[str] = []
    for r in rows:
        headers.extend(k for k in r if k not in headers)

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value:,}"
        return "" if value is None else str(value)

    table = [headers] + [[cell(r.get(h)) for h in headers] for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    out = [
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table
    ]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "pattern matching (benchmarks/bench_patterns.py):\n" + "\n".join(out)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark eventbus beside a bare asyncio.Queue and peer libraries."
    )
    parser.add_argument(
        "--events",
        type=int,
        default=None,
        help="events per throughput run (upper bound; slow peers publish fewer, "
        "see --budget); default 100000, 2000 with --quick",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat (CI smoke)")
    parser.add_argument(
        "--only",
        default=None,
        metavar="NAME[,NAME...]",
        help="run only these peers (the bare asyncio.Queue row always runs, for the ratios)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results")
    parser.add_argument(
        "--repeats", type=int, default=None, help="rounds over all peers (best kept); default 5"
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=None,
        help="seconds a throughput or latency run may take; slow peers do fewer events "
        "(default 0.5)",
    )
    return parser.parse_args(argv)


def make_settings(args: argparse.Namespace) -> Settings:
    if args.quick:
        settings = Settings(
            events=2000, repeats=1, budget=0.2, latency_samples=200, memory_events=1000
        )
    else:
        settings = Settings(
            events=100_000, repeats=5, budget=0.5, latency_samples=2000, memory_events=10_000
        )
    if args.events is not None:
        settings.events = max(1, args.events)
    if args.repeats is not None:
        settings.repeats = max(1, args.repeats)
    if args.budget is not None:
        settings.budget = args.budget
    return settings


def select(only: str | None) -> list[type[Adapter]]:
    if not only:
        return list(ADAPTERS)
    wanted = {name.strip().lower() for name in only.split(",") if name.strip()}
    known = {cls.name.lower() for cls in ADAPTERS} | {"bare", "asyncio"}
    unknown = wanted - known
    if unknown:
        names = ", ".join(cls.name for cls in ADAPTERS)
        raise SystemExit(
            f"--only: unknown peer(s) {', '.join(sorted(unknown))}; choose from {names}"
        )
    return [
        cls
        for cls in ADAPTERS
        if cls is BareQueue or cls.name.lower() in wanted or cls.name.split(".")[0] in wanted
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    settings = make_settings(args)
    classes = select(args.only)
    bound = _bus_default_queue_size()
    BareQueue.bound = bound or DEFAULT_QUEUE_BOUND
    bound_note = "the Bus default queue_size" if bound else "eventbus default unknown"

    started = perf_counter()
    rows = asyncio.run(measure_all(classes, settings))
    elapsed = perf_counter() - started
    alone = event_bytes(settings.memory_events)

    print()
    print(
        f"eventbus benchmark: Python {platform.python_version()} "
        f"({platform.python_implementation()}), {platform.system()} {platform.machine()}, "
        f"{_cpu_count()} CPUs"
    )
    print(
        f"up to {settings.events:,} events per throughput run and {settings.latency_samples:,} "
        f"latency samples (about {settings.budget:g} s each), best of {settings.repeats} round(s); "
        f"{settings.memory_events:,} queued events for memory"
    )
    print(
        f"baseline: one asyncio.Queue(maxsize={BareQueue.bound}) per subscriber "
        f"({bound_note}) and a worker task each; ratios are row / baseline"
    )
    print()
    print(format_table(rows))
    print()
    print("run sizes and notes:")
    print(f"  a BenchEvent alone takes {alone:,.0f} bytes (uuid4 id, aware datetime, int, float)")
    print(format_notes(rows))
    print()
    print(format_targets(rows))
    print()
    print(format_blinker(rows))
    print(f"\n(measured in {elapsed:.0f} s)")

    pattern_rows = None
    if args.only is None:
        pattern_rows, text = run_patterns(args.quick)
        if text:
            print()
            print(text)

    if args.json is not None:
        payload = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": _cpu_count(),
            "settings": attrs.asdict(settings),
            "baseline_queue_size": BareQueue.bound,
            "event_bytes": alone,
            "rows": [attrs.asdict(r) for r in rows],
            "targets": [
                {"target": label, "passed": passed, "detail": detail}
                for label, passed, detail in evaluate_targets(rows)
            ],
            "patterns": pattern_rows,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"\nresults written to {args.json}")
    return 0


def _cpu_count() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
