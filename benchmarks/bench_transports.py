"""Throughput over real brokers: eventbus beside the raw client and FastStream, in one run.

Run from the repository root with the brokers on loopback (NATS with
JetStream on 4222, Redis on 6379) and the development extras installed::

    python benchmarks/bench_transports.py                 # 5,000 events per row, 3 rounds
    python benchmarks/bench_transports.py --events 2000 --repeats 1 --only redis

Every row moves the same events end to end through one broker -- from the
first publish to the last handler call -- on a stream of its own, and
reports the median rate over the rounds:

* ``raw client, await each``: the client library publishing one message
  and awaiting the broker's acknowledgement before the next (NATS
  ``js.publish``, Redis ``XADD``); publish only, no consumer.
* ``raw client, 256 in flight``: the same client keeping 256 publishes
  unacknowledged (NATS ``js.publish_async``; Redis pipelines of 256
  ``XADD``); publish only.
* ``eventbus, 1 publisher``: ``await bus.publish(event)`` one at a time, a
  subscription in the same process handling them (end to end).
* ``eventbus, 256 in flight``: 256 tasks publishing concurrently, the
  subscription in the same process (end to end).
* ``eventbus, publish_many``: one ``bus.publish_many(events)`` call (256 in
  flight), the subscription in the same process (end to end).
* ``eventbus, 3 worker processes``: 256 tasks publishing, three
  ``python -m eventbus worker`` processes sharing the subscription; ends
  when the broker reports nothing pending for it.
* ``faststream, 1 publisher`` / ``faststream, 256 in flight``: FastStream's
  broker publishing to a subscriber in the same process, on the same broker
  (JetStream stream / Redis stream with a consumer group).

The raw rows publish only, so they bound what any end-to-end row can
reach; the target is eventbus pipelined at >= 0.5x the raw pipelined rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs

from eventbus import Bus, Event

NATS_URL = "nats://127.0.0.1:4222"
REDIS_URL = "redis://127.0.0.1:6379/0"
WINDOW = 256
FETCH = 128  # messages per fetch for the raw consumers
WORKERS = 3


@attrs.frozen
class BenchEvent(Event, type_name="benchmarks.transports.BenchEvent"):
    n: int


class Done:
    """Counts handled events; `wait()` returns once *target* were seen."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.event = asyncio.Event()

    def hit(self) -> None:
        self.count += 1
        if self.count >= self.target:
            self.event.set()

    async def wait(self) -> None:
        await self.event.wait()


async def windowed(count: int, window: int, publish: Callable[[int], Awaitable[Any]]) -> None:
    """Publish 0..count-1 from *window* concurrent tasks."""
    numbers = iter(range(count))

    async def worker() -> None:
        for n in numbers:
            await publish(n)

    await asyncio.gather(*(worker() for _ in range(window)))


# -- NATS ---------------------------------------------------------------------------------


async def nats_cleanup(stream: str) -> None:
    import nats

    client = await nats.connect(NATS_URL)
    with contextlib.suppress(Exception):
        await client.jetstream().delete_stream(stream)
    await client.close()


async def nats_raw(count: int, window: int) -> float:
    import nats

    stream = f"BENCH_RAW_{uuid.uuid4().hex[:8]}"
    client = await nats.connect(NATS_URL)
    js = client.jetstream(publish_async_max_pending=max(window, 1))
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    subject = f"{stream.lower()}.e"
    try:
        start = time.perf_counter()
        if window == 1:
            for n in range(count):
                await js.publish(subject, json.dumps({"n": n}).encode(), stream=stream)
        else:
            futures = [
                await js.publish_async(subject, json.dumps({"n": n}).encode()) for n in range(count)
            ]
            await asyncio.gather(*futures)
        elapsed = time.perf_counter() - start
    finally:
        await js.delete_stream(stream)
        await client.close()
    return count / elapsed


async def nats_raw_end_to_end(count: int, window: int) -> float:
    """The raw client end to end: pipelined publishes, a pull consumer in batches, ack each."""
    import nats
    from nats.js.api import AckPolicy, ConsumerConfig

    stream = f"BENCH_RAWE2E_{uuid.uuid4().hex[:8]}"
    subject = f"{stream.lower()}.e"
    client = await nats.connect(NATS_URL)
    js = client.jetstream(publish_async_max_pending=window)
    await js.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
    config = ConsumerConfig(durable_name="bench", ack_policy=AckPolicy.EXPLICIT)
    pull = await js.pull_subscribe(subject, durable="bench", stream=stream, config=config)
    done = Done(count)

    async def handle(message: dict[str, Any]) -> None:
        done.hit()

    async def consume() -> None:
        while True:
            try:
                messages = await pull.fetch(batch=FETCH, timeout=1)
            except nats.errors.TimeoutError:
                continue
            for message in messages:
                await handle(json.loads(message.data))
                await message.ack()

    try:
        consumer = asyncio.create_task(consume())
        start = time.perf_counter()
        futures = [
            await js.publish_async(subject, json.dumps({"n": n}).encode()) for n in range(count)
        ]
        await asyncio.gather(*futures)
        await asyncio.wait(
            [consumer, asyncio.ensure_future(done.wait())], return_when="FIRST_COMPLETED"
        )
        if consumer.done():
            consumer.result()  # the consumer failed: raise its error
        elapsed = time.perf_counter() - start
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
    finally:
        await js.delete_stream(stream)
        await client.close()
    return count / elapsed


def nats_transport(stream: str) -> Any:
    from eventbus.bridges.nats import NatsTransport

    return NatsTransport(NATS_URL, stream=stream, subject_prefix=stream.lower())


async def faststream_nats(count: int, window: int) -> float:
    from faststream.nats import JStream, NatsBroker, PullSub

    stream = f"BENCH_FS_{uuid.uuid4().hex[:8]}"
    subject = f"{stream.lower()}.e"
    broker = NatsBroker(NATS_URL, logger=None)
    done = Done(count)

    @broker.subscriber(
        subject,
        stream=JStream(stream, subjects=[f"{stream.lower()}.>"]),
        durable="bench",
        pull_sub=PullSub(batch_size=16),
    )
    async def handle(message: dict[str, Any]) -> None:
        done.hit()

    async with broker:
        await broker.start()
        try:
            start = time.perf_counter()
            await windowed(
                count, window, lambda n: broker.publish({"n": n}, subject, stream=stream)
            )
            await done.wait()
            elapsed = time.perf_counter() - start
        finally:
            await broker.stop()
    await nats_cleanup(stream)
    return count / elapsed


# -- Redis --------------------------------------------------------------------------------


async def redis_raw(count: int, window: int) -> float:
    import redis.asyncio

    key = f"bench:raw:{uuid.uuid4().hex[:8]}"
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        start = time.perf_counter()
        if window == 1:
            for n in range(count):
                await client.xadd(key, {"data": json.dumps({"n": n})})
        else:
            await redis_pipelined(client, key, count, window)
        elapsed = time.perf_counter() - start
    finally:
        await client.delete(key)
        await client.aclose()
    return count / elapsed


async def redis_pipelined(client: Any, key: str, count: int, window: int) -> None:
    for first in range(0, count, window):
        pipe = client.pipeline(transaction=False)
        for n in range(first, min(first + window, count)):
            pipe.xadd(key, {"data": json.dumps({"n": n})})
        await pipe.execute()


async def redis_raw_end_to_end(count: int, window: int) -> float:
    """The raw client end to end: pipelined XADD, XREADGROUP in batches, one XACK per batch."""
    import redis.asyncio

    key = f"bench:rawe2e:{uuid.uuid4().hex[:8]}"
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    await client.xgroup_create(key, "bench", id="$", mkstream=True)
    done = Done(count)

    async def handle(message: dict[str, Any]) -> None:
        done.hit()

    async def consume() -> None:
        while not done.event.is_set():  # ends by itself: cancelling a blocked read can hang
            reply = await client.xreadgroup("bench", "c1", {key: ">"}, count=FETCH, block=100)
            for _stream, entries in reply.items() if isinstance(reply, dict) else reply:
                for _id, fields in entries:
                    await handle(json.loads(fields[b"data"]))
                if entries:
                    await client.xack(key, "bench", *(entry_id for entry_id, _ in entries))

    try:
        consumer = asyncio.create_task(consume())
        start = time.perf_counter()
        await redis_pipelined(client, key, count, window)
        await asyncio.wait(
            [consumer, asyncio.ensure_future(done.wait())], return_when="FIRST_COMPLETED"
        )
        if consumer.done():
            consumer.result()  # the consumer failed: raise its error
        elapsed = time.perf_counter() - start
        await consumer
    finally:
        await client.delete(key)
        await client.aclose()
    return count / elapsed


def redis_transport(stream: str) -> Any:
    from eventbus.bridges.redis import RedisStreamsTransport

    return RedisStreamsTransport(REDIS_URL, stream=stream)


async def redis_cleanup(stream: str) -> None:
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(REDIS_URL)
    await client.delete(stream)
    await client.aclose()


async def faststream_redis(count: int, window: int) -> float:
    from faststream.redis import RedisBroker, StreamSub

    key = f"bench:fs:{uuid.uuid4().hex[:8]}"
    broker = RedisBroker(REDIS_URL, logger=None)  # type: ignore[arg-type]  # None: no logging
    done = Done(count)

    @broker.subscriber(stream=StreamSub(key, group="bench", consumer="c1", batch=False))
    async def handle(message: dict[str, Any]) -> None:
        done.hit()

    async with broker:
        await broker.start()
        try:
            start = time.perf_counter()
            await windowed(count, window, lambda n: broker.publish({"n": n}, stream=key))
            await done.wait()
            elapsed = time.perf_counter() - start
        finally:
            await broker.stop()
    await redis_cleanup(key)
    return count / elapsed


# -- eventbus -----------------------------------------------------------------------------


async def eventbus_batch(
    make: Callable[[str], Any], cleanup: Callable[[str], Awaitable[None]], count: int
) -> float:
    stream = f"BENCH_EB_{uuid.uuid4().hex[:8]}"
    done = Done(count)

    async def handle(event: BenchEvent) -> None:
        done.hit()

    bus = Bus(transport=make(stream))
    bus.subscribe(BenchEvent, handle, name="bench", concurrency=16)  # its group made at start
    try:
        async with bus:
            events = [BenchEvent(n) for n in range(count)]
            start = time.perf_counter()
            await bus.publish_many(events)
            await done.wait()
            elapsed = time.perf_counter() - start
    finally:
        await cleanup(stream)
    return count / elapsed


async def eventbus_local(
    make: Callable[[str], Any], cleanup: Callable[[str], Awaitable[None]], count: int, window: int
) -> float:
    stream = f"BENCH_EB_{uuid.uuid4().hex[:8]}"
    done = Done(count)

    async def handle(event: BenchEvent) -> None:
        done.hit()

    bus = Bus(transport=make(stream))
    bus.subscribe(BenchEvent, handle, name="bench", concurrency=16)  # its group made at start
    try:
        async with bus:
            start = time.perf_counter()
            await windowed(count, window, lambda n: bus.publish(BenchEvent(n)))
            await done.wait()
            elapsed = time.perf_counter() - start
    finally:
        await cleanup(stream)
    return count / elapsed


WORKER_APP = """
import os

import attrs
from eventbus import Bus, Event


@attrs.frozen
class BenchEvent(Event, type_name="benchmarks.transports.BenchEvent"):
    n: int


def make() -> Bus:
    kind, stream = os.environ["BENCH_KIND"], os.environ["BENCH_STREAM"]
    if kind == "nats":
        from eventbus.bridges.nats import NatsTransport

        transport = NatsTransport(os.environ["BENCH_URL"], stream=stream, subject_prefix=stream.lower())
    else:
        from eventbus.bridges.redis import RedisStreamsTransport

        transport = RedisStreamsTransport(os.environ["BENCH_URL"], stream=stream)
    bus = Bus(transport=transport)

    async def handle(event: BenchEvent) -> None:
        pass

    bus.subscribe(BenchEvent, handle, name="bench", concurrency=16)
    return bus
"""


async def eventbus_workers(
    kind: str,
    make: Callable[[str], Any],
    cleanup: Callable[[str], Awaitable[None]],
    count: int,
    window: int,
) -> float:
    stream = f"BENCH_W_{uuid.uuid4().hex[:8]}"
    url = NATS_URL if kind == "nats" else REDIS_URL
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "bench_app.py").write_text(textwrap.dedent(WORKER_APP))  # noqa: ASYNC240 - setup, not timed
        env = {**os.environ, "BENCH_KIND": kind, "BENCH_STREAM": stream, "BENCH_URL": url}
        transport = make(stream)
        processes = []
        try:
            async with Bus(transport=transport) as bus:
                bus.subscribe(BenchEvent, lambda e: None, name="bench")  # creates the group
                await bus.unsubscribe("bench")
                for _ in range(WORKERS):
                    processes.append(
                        subprocess.Popen(  # noqa: ASYNC220 - setup, not timed
                            [sys.executable, "-m", "eventbus", "worker", "bench_app:make"],
                            cwd=directory,
                            env=env,
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE,
                            text=True,
                        )
                    )
                for process in processes:  # wait for each startup line
                    assert process.stderr is not None
                    while "started" not in await asyncio.to_thread(process.stderr.readline):
                        pass
                start = time.perf_counter()
                await windowed(count, window, lambda n: bus.publish(BenchEvent(n)))
                while await transport.pending("bench"):  # noqa: ASYNC110 - the broker's count
                    await asyncio.sleep(0.005)
                elapsed = time.perf_counter() - start
        finally:
            for process in processes:
                if process.poll() is None:
                    os.kill(process.pid, signal.SIGTERM)
            for process in processes:
                process.wait(timeout=30)
            await cleanup(stream)
    return count / elapsed


# -- the run ------------------------------------------------------------------------------


def rows(kind: str) -> list[tuple[str, Callable[[int], Awaitable[float]]]]:
    make, cleanup = (
        (nats_transport, nats_cleanup) if kind == "nats" else (redis_transport, redis_cleanup)
    )
    raw = nats_raw if kind == "nats" else redis_raw
    raw_end_to_end = nats_raw_end_to_end if kind == "nats" else redis_raw_end_to_end
    faststream = faststream_nats if kind == "nats" else faststream_redis
    return [
        ("raw client, await each (publish only)", lambda n: raw(n, 1)),
        (f"raw client, {WINDOW} in flight (publish only)", lambda n: raw(n, WINDOW)),
        (f"raw client, {WINDOW} in flight, end to end", lambda n: raw_end_to_end(n, WINDOW)),
        ("eventbus, 1 publisher", lambda n: eventbus_local(make, cleanup, n, 1)),
        (f"eventbus, {WINDOW} in flight", lambda n: eventbus_local(make, cleanup, n, WINDOW)),
        ("eventbus, publish_many", lambda n: eventbus_batch(make, cleanup, n)),
        (
            f"eventbus, {WINDOW} in flight, {WORKERS} worker processes",
            lambda n: eventbus_workers(kind, make, cleanup, n, WINDOW),
        ),
        ("faststream, 1 publisher", lambda n: faststream(n, 1)),
        (f"faststream, {WINDOW} in flight", lambda n: faststream(n, WINDOW)),
    ]


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=5000, help="events per row and round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds; the median is reported")
    parser.add_argument("--only", default="nats,redis", help="brokers to run: nats,redis")
    parser.add_argument(
        "--rows", default="", help="run only the rows whose name contains one of these (a,b)"
    )
    args = parser.parse_args(argv)
    wanted = [part for part in args.rows.split(",") if part]
    print(f"{args.events} events per row, median of {args.repeats} interleaved round(s)\n")
    for kind in args.only.split(","):
        selected = [
            (name, run)
            for name, run in rows(kind)
            if not wanted or any(part in name for part in wanted)
        ]
        rates: dict[str, list[float]] = {name: [] for name, _ in selected}
        failed: dict[str, str] = {}
        for _ in range(args.repeats):  # one round runs every row once, so load hits all alike
            for name, run in selected:
                if name in failed:
                    continue
                try:
                    rates[name].append(await run(args.events))
                except Exception as exc:
                    failed[name] = f"{type(exc).__name__}: {exc}"
        print(f"{kind}:")
        results = {name: statistics.median(got) for name, got in rates.items() if got}
        for name, _ in selected:
            if name in failed:
                print(f"  {name:<52} error: {failed[name]}")
            elif name in results:
                print(f"  {name:<52} {results[name]:>9,.0f} events/s")
        for base in (f"{WINDOW} in flight (publish only)", f"{WINDOW} in flight, end to end"):
            baseline = results.get(f"raw client, {base}")
            if not baseline:
                continue
            for name, rate in results.items():
                if name.startswith("eventbus"):
                    print(f"  {name} / raw {base}: {rate / baseline:.2f}x")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
