"""Worker processes over a real broker: drain on SIGTERM, several workers sharing a subscription."""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path

import anyio
import attrs
import pytest
from _worker_process import WorkerProcess, run_worker

from eventbus import Bus, Event, Transport

APP = """
import os
import time

import attrs
from eventbus import Bus, Event


@attrs.frozen
class Job(Event, type_name="tests.worker.Job"):
    n: int
    key: str = ""


def transport():
    kind, url, stream = os.environ["EB_TRANSPORT"], os.environ["EB_URL"], os.environ["EB_STREAM"]
    if kind == "nats":
        from eventbus.bridges.nats import NatsTransport

        return NatsTransport(url, stream=stream, subject_prefix=stream.lower(), ack_wait=1.0)
    if kind == "redis":
        from eventbus.bridges.redis import RedisStreamsTransport

        return RedisStreamsTransport(url, stream=stream, claim_idle=1.0)
    from eventbus.bridges.mqtt import MqttTransport

    return MqttTransport(url, topic_prefix=stream)


OUT = os.environ["EB_OUT"]
DELAY = float(os.environ.get("EB_DELAY", "0"))


def record(line: str) -> None:
    with open(OUT, "a") as out:
        out.write(line + "\\n")
        out.flush()


def make() -> Bus:
    bus = Bus(transport=transport())

    def handle(event: Job) -> None:
        record(f"start {event.n}")
        time.sleep(DELAY)
        record(f"done {event.n}")

    bus.subscribe(Job, handle, name="jobs")
    return bus


def shared() -> Bus:
    # each handled event is one line "n key" in this process's own file, written unbuffered
    bus = Bus(transport=transport())
    fd = os.open(os.path.join(OUT, f"{os.getpid()}.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    async def handle(event: Job) -> None:
        os.write(fd, f"{event.n} {event.key}\\n".encode())

    bus.subscribe(Job, handle, name="shared", concurrency=4)
    return bus


def ordered() -> Bus:
    # as shared(), with the events of one key handled in publish order, across processes too
    bus = Bus(transport=transport())
    fd = os.open(os.path.join(OUT, f"{os.getpid()}.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    async def handle(event: Job) -> None:
        os.write(fd, f"{event.n} {event.key}\\n".encode())

    bus.subscribe(Job, handle, name="ordered", ordered_by="key", concurrency=8)
    return bus


def stateful() -> Bus:
    # per key, the count and sum of its events in RedisState (the effects), and whether the
    # events came in publish order; each delivery is also a line "n key" in this process's file
    from eventbus import Context
    from eventbus.bridges.redis import RedisState

    bus = Bus(transport=transport())
    store = RedisState(os.environ["EB_STATE_URL"], prefix=os.environ["EB_STREAM"])
    fd = os.open(os.path.join(OUT, f"{os.getpid()}.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    async def count(event: Job, ctx: Context) -> None:
        os.write(fd, f"{event.n} {event.key}\\n".encode())
        state = ctx.state
        state["in_order"] = state.get("in_order", True) and event.n > state.get("last", -1)
        state["last"] = event.n
        state["count"] = state.get("count", 0) + 1
        state["sum"] = state.get("sum", 0) + event.n

    bus.subscribe(Job, count, name="stateful", ordered_by="key", state=store, concurrency=8)
    return bus
"""


@attrs.frozen
class Job(Event, type_name="tests.worker.Job"):
    n: int
    key: str = ""


def _nats(url: str, stream: str) -> AbstractAsyncContextManager[Transport]:
    from eventbus.bridges.nats import NatsTransport

    @asynccontextmanager
    async def make() -> AsyncIterator[Transport]:
        import nats

        try:
            yield NatsTransport(url, stream=stream, subject_prefix=stream.lower(), ack_wait=1.0)
        finally:
            client = await nats.connect(url)
            for name in (stream, f"KV_{stream}_owners"):  # the events, and ordered owners
                with suppress(Exception):  # already gone
                    await client.jetstream().delete_stream(name)
            await client.close()

    return make()


def _redis(url: str, stream: str) -> AbstractAsyncContextManager[Transport]:
    from eventbus.bridges.redis import RedisStreamsTransport

    @asynccontextmanager
    async def make() -> AsyncIterator[Transport]:
        import redis.asyncio

        try:
            yield RedisStreamsTransport(url, stream=stream, claim_idle=1.0)
        finally:
            client = redis.asyncio.Redis.from_url(url)
            await client.delete(stream)
            await client.aclose()

    return make()


BROKERS: dict[str, Callable[[str, str], AbstractAsyncContextManager[Transport]]] = {
    "nats": _nats,
    "redis": _redis,
}


@pytest.fixture(params=["nats", "redis"])
def broker(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(kind, url) of a broker on loopback."""
    kind: str = request.param
    return kind, request.getfixturevalue(f"{kind}_url")


@pytest.fixture
def app(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    return tmp_path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def wait_for_line(path: Path, line: str, limit: float = 20) -> None:
    """Poll the worker's output file until *line* is in it."""
    with anyio.fail_after(limit):
        while line not in lines(path):  # noqa: ASYNC110 - another process writes the file
            await anyio.sleep(0.02)


@pytest.mark.integration
async def test_sigterm_lets_the_running_handler_finish(
    broker: tuple[str, str], app: Path, tmp_path: Path
) -> None:
    """A worker signalled mid-handler finishes the event, acknowledges it and exits 0."""
    kind, url = broker
    stream = f"EBWORKER_{os.urandom(4).hex()}"
    out = tmp_path / "out.txt"
    env = {"EB_TRANSPORT": kind, "EB_URL": url, "EB_STREAM": stream, "EB_OUT": str(out)}
    async with (
        BROKERS[kind](url, stream) as transport,
        run_worker("app:make", cwd=app, env={**env, "EB_DELAY": "0.5"}) as worker,
        Bus(transport=transport) as bus,
    ):
        await worker.wait_for("started")
        await bus.publish(Job(1))
        await wait_for_line(out, "start 1")
        worker.signal(signal.SIGTERM)
        assert await worker.wait() == 0
        assert lines(out) == ["start 1", "done 1"]
        assert await transport.pending("jobs") == 0


EVENTS = 10_000
KEYS = 50
PUBLISHERS = 32


def handled(directory: Path) -> dict[str, list[int]]:
    """What each worker process recorded: pid -> event numbers, in the order handled."""
    out: dict[str, list[int]] = {}
    for path in directory.glob("*.txt"):
        numbers = []
        for line in path.read_text().splitlines():
            if line.count(" ") == 1 and line.split(" ")[0].isdigit():
                numbers.append(int(line.split(" ")[0]))
        out[path.stem] = numbers
    return out


@asynccontextmanager
async def three_workers(
    kind: str, url: str, stream: str, target: str, app: Path, env: dict[str, str]
) -> AsyncIterator[tuple[Bus, list[WorkerProcess]]]:
    """Three ``eventbus worker`` processes running *target*, started, and a publishing bus."""
    async with (
        BROKERS[kind](url, stream) as transport,
        run_worker(target, cwd=app, env=env) as first,
        run_worker(target, cwd=app, env=env) as second,
        run_worker(target, cwd=app, env=env) as third,
        Bus(transport=transport) as bus,
    ):
        workers = [first, second, third]
        for worker in workers:
            await worker.wait_for("started")
        yield bus, workers


async def stop_survivors(workers: list[WorkerProcess], killed: WorkerProcess) -> None:
    """SIGTERM the workers still running; each exits 0, the killed one by SIGKILL."""
    for worker in workers:
        if worker is not killed:
            worker.signal(signal.SIGTERM)
    for worker in workers:
        assert await worker.wait() == (-signal.SIGKILL if worker is killed else 0)


async def wait_until_all_handled(results: Path) -> None:
    """Poll the workers' result files (other processes write them) until every event is in."""
    with anyio.fail_after(45):
        while len({n for numbers in handled(results).values() for n in numbers}) < EVENTS:  # noqa: ASYNC110
            await anyio.sleep(0.1)


def handle_counts(results: Path) -> dict[int, int]:
    """Event number -> how many times the workers handled it, all processes together."""
    counts: dict[int, int] = {}
    for numbers in handled(results).values():
        for n in numbers:
            counts[n] = counts.get(n, 0) + 1
    return counts


@pytest.mark.integration
async def test_three_workers_one_killed_every_event_handled(
    broker: tuple[str, str], app: Path, tmp_path: Path
) -> None:
    """3 workers share a subscription; one is SIGKILLed mid-run; all 10,000 events are handled."""
    kind, url = broker
    stream = f"EBSHARED_{os.urandom(4).hex()}"
    results = tmp_path / "results"
    results.mkdir()
    env = {"EB_TRANSPORT": kind, "EB_URL": url, "EB_STREAM": stream, "EB_OUT": str(results)}
    async with three_workers(kind, url, stream, "app:shared", app, env) as (bus, workers):
        first = workers[0]
        numbers = iter(range(EVENTS))

        async def publisher() -> None:
            for n in numbers:
                await bus.publish(Job(n, key=f"k{n % KEYS}"))

        async with anyio.create_task_group() as tg:
            for _ in range(PUBLISHERS):
                tg.start_soon(publisher)
            with anyio.fail_after(30):
                while len(handled(results).get(str(first.process.pid), [])) < 200:  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            first.signal(signal.SIGKILL)
        await wait_until_all_handled(results)
        await stop_survivors(workers, first)
    by_process = handled(results)
    counts = handle_counts(results)
    assert sorted(counts) == list(range(EVENTS))
    duplicates = sum(count - 1 for count in counts.values())
    print(f"{kind}: {EVENTS} events, {len(by_process)} processes, {duplicates} duplicates")
    assert all(len(numbers_of) > 0 for numbers_of in by_process.values())


async def publish_by_key_and_kill_one(
    bus: Bus, workers: list[WorkerProcess], results: Path
) -> WorkerProcess:
    """Publish EVENTS over KEYS keys, each key's in order; SIGKILL the first worker to handle 500."""

    async def publisher(keys: range) -> None:
        # one task per few keys, each key's events published in order: stream order == n order
        for n in range(EVENTS):
            if n % KEYS in keys:
                await bus.publish(Job(n, key=f"k{n % KEYS}"))

    by_pid = {str(worker.process.pid): worker for worker in workers}
    killed = None
    async with anyio.create_task_group() as tg:
        for start in range(0, KEYS, 2):
            tg.start_soon(publisher, range(start, start + 2))
        with anyio.fail_after(30):
            while killed is None:
                for pid, numbers in handled(results).items():
                    if len(numbers) >= 500:
                        killed = by_pid[pid]
                await anyio.sleep(0.02)
        killed.signal(signal.SIGKILL)
    return killed


def per_key_orders(directory: Path) -> dict[str, dict[str, list[int]]]:
    """pid -> key -> the event numbers that process handled for the key, in its order."""
    out: dict[str, dict[str, list[int]]] = {}
    for path in directory.glob("*.txt"):
        keys: dict[str, list[int]] = {}
        for line in path.read_text().splitlines():
            number, _, key = line.partition(" ")
            if number.isdigit() and key:
                keys.setdefault(key, []).append(int(number))
        out[path.stem] = keys
    return out


@pytest.mark.integration
async def test_ordered_subscription_keeps_key_order_across_workers_with_one_killed(
    broker: tuple[str, str], app: Path, tmp_path: Path
) -> None:
    """3 workers share an ordered_by subscription; the active one is SIGKILLed; per-key order holds."""
    kind, url = broker
    stream = f"EBORDER_{os.urandom(4).hex()}"
    results = tmp_path / "results"
    results.mkdir()
    env = {"EB_TRANSPORT": kind, "EB_URL": url, "EB_STREAM": stream, "EB_OUT": str(results)}
    async with three_workers(kind, url, stream, "app:ordered", app, env) as (bus, workers):
        killed = await publish_by_key_and_kill_one(bus, workers, results)
        await wait_until_all_handled(results)
        await stop_survivors(workers, killed)
    counts = handle_counts(results)
    assert sorted(counts) == list(range(EVENTS))
    for pid, keys in per_key_orders(results).items():
        for key, numbers in keys.items():
            assert numbers == sorted(numbers), f"process {pid} handled {key} out of order"
    active = [pid for pid, numbers_of in handled(results).items() if numbers_of]
    assert killed is not None
    assert str(killed.process.pid) in active
    assert len(active) >= 2, "another worker should have taken over from the killed one"
    duplicates = sum(count - 1 for count in counts.values())
    print(
        f"{kind} ordered: {EVENTS} events, {len(active)} processes took turns, {duplicates} duplicates"
    )


@pytest.mark.integration
async def test_a_second_signal_stops_without_waiting(
    broker: tuple[str, str], app: Path, tmp_path: Path
) -> None:
    """A second SIGTERM while draining stops the worker at once, with status 1."""
    kind, url = broker
    stream = f"EBWORKER_{os.urandom(4).hex()}"
    out = tmp_path / "out.txt"
    env = {"EB_TRANSPORT": kind, "EB_URL": url, "EB_STREAM": stream, "EB_OUT": str(out)}
    async with (
        BROKERS[kind](url, stream) as transport,
        run_worker("app:make", cwd=app, env={**env, "EB_DELAY": "30"}) as worker,
        Bus(transport=transport) as bus,
    ):
        await worker.wait_for("started")
        await bus.publish(Job(1))
        await wait_for_line(out, "start 1")
        worker.signal(signal.SIGTERM)
        await worker.wait_for("draining")
        worker.signal(signal.SIGTERM)
        assert await worker.wait() == 1
        assert "stopping without waiting" in worker.log
        assert lines(out) == ["start 1"]


async def _state_of_keys(url: str, prefix: str) -> dict[str, dict[str, object]]:
    """The RedisState of subscription 'stateful' for every key, read from Redis."""
    import json

    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        out = {}
        for k in range(KEYS):
            text = await client.hget(f"{prefix}:{len('stateful')}:stateful:s:k{k}", "d")
            out[f"k{k}"] = json.loads(text) if text else {}
        return out
    finally:
        await client.aclose()


@pytest.mark.integration
async def test_three_workers_one_killed_stateful_effects_exactly_once(
    broker: tuple[str, str], app: Path, tmp_path: Path, redis_url: str
) -> None:
    """3 workers, a stateful ordered handler on RedisState, one SIGKILLed: each effect once."""
    kind, url = broker
    stream = f"EBSTATE_{os.urandom(4).hex()}"
    results = tmp_path / "results"
    results.mkdir()
    env = {
        "EB_TRANSPORT": kind,
        "EB_URL": url,
        "EB_STREAM": stream,
        "EB_OUT": str(results),
        "EB_STATE_URL": redis_url,
    }
    expected = {
        f"k{k}": {
            "count": len(range(k, EVENTS, KEYS)),
            "sum": sum(range(k, EVENTS, KEYS)),
            "last": max(range(k, EVENTS, KEYS)),
            "in_order": True,
        }
        for k in range(KEYS)
    }
    try:
        async with three_workers(kind, url, stream, "app:stateful", app, env) as (bus, workers):
            killed = await publish_by_key_and_kill_one(bus, workers, results)
            with anyio.fail_after(60):  # the survivors take over; the state says when all is in
                while await _state_of_keys(redis_url, stream) != expected:  # noqa: ASYNC110
                    await anyio.sleep(0.1)
            await stop_survivors(workers, killed)
    finally:
        import redis.asyncio

        client = redis.asyncio.Redis.from_url(redis_url)
        keys = [key async for key in client.scan_iter(match=f"{stream}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
    active = [pid for pid, numbers_of in handled(results).items() if numbers_of]
    assert killed is not None
    assert str(killed.process.pid) in active
    assert len(active) >= 2, "another worker should have taken over from the killed one"
    deliveries = sum(len(numbers) for numbers in handled(results).values())
    print(
        f"{kind} stateful: {EVENTS} events, {deliveries - EVENTS} duplicate deliveries, "
        "each effect applied once"
    )
