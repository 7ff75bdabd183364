"""Three worker processes share a subscription over a broker with RedisState; one is SIGKILLed.

The broker is Redis Streams or NATS JetStream; the state is in Redis either way.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

try:
    import redis.asyncio

    from eventbus.bridges.redis import FIELD
except ImportError:  # pragma: no cover - depends on what is installed
    if os.environ.get("EVENTBUS_REQUIRE_SERVICES", "") == "1":
        raise
    pytest.skip("redis is not installed: pip install 'eventbus[redis]'", allow_module_level=True)

from eventbus import Bus, to_cloudevent

from ._counter import events, fold

TESTS_DIR = str(Path(__file__).resolve().parent.parent)
N_EVENTS = 600
N_KEYS = 12

_WORKER = textwrap.dedent(
    """
    import sys
    import anyio
    from eventbus import Bus, Context
    from eventbus.bridges.redis import RedisState, RedisStreamsTransport
    from state._counter import Add

    url, stream, prefix, broker, broker_url = sys.argv[1:6]


    def transport():
        if broker == "nats":
            from eventbus.bridges.nats import NatsTransport

            return NatsTransport(broker_url, stream=stream, subject_prefix=stream, ack_wait=1.0)
        return RedisStreamsTransport(url, stream=stream, claim_idle=1.0)

    async def count(event: Add, ctx: Context) -> None:
        ctx.state["n"] = ctx.state.get("n", 0) + event.amount
        await anyio.sleep(0.01)

    async def main() -> None:
        async with RedisState(url, prefix=prefix) as store:
            async with Bus(transport=transport()) as bus:
                bus.subscribe(Add, count, name="counter", ordered_by="key", state=store,
                              concurrency=4)
                await bus.drain()
                print("ready", flush=True)
                await anyio.sleep_forever()

    anyio.run(main)
    """
)


async def _totals(client: redis.asyncio.Redis, prefix: str, keys: list[str]) -> dict[str, int]:
    base = f"{prefix}:{len('counter')}:counter"
    totals = {}
    for key in keys:
        text = await client.hget(f"{base}:s:{key}", "d")
        totals[key] = json.loads(text)["n"] if text else 0
    return totals


async def _poll(
    done: Callable[[dict[str, int]], bool],
    client: redis.asyncio.Redis,
    prefix: str,
    keys: list[str],
) -> None:
    """Read the counters until *done* holds for them (processes cannot signal us otherwise)."""
    while True:
        if done(await _totals(client, prefix, keys)):
            return
        await anyio.sleep(0.05)


async def _publish(broker: str, broker_url: str, stream: str, adds: list[Any]) -> None:
    if broker == "redis":
        client = redis.asyncio.Redis.from_url(broker_url)
        try:
            for add in adds:
                await client.xadd(stream, {FIELD: json.dumps(to_cloudevent(add))})
        finally:
            await client.aclose()
        return
    from eventbus.bridges.nats import NatsTransport

    transport = NatsTransport(broker_url, stream=stream, subject_prefix=stream, ack_wait=1.0)
    async with Bus(transport=transport) as bus:
        for add in adds:
            await bus.publish(add)


async def _delete_stream(broker: str, broker_url: str, stream: str) -> None:
    if broker == "redis":
        client = redis.asyncio.Redis.from_url(broker_url)
        try:
            await client.delete(stream)
        finally:
            await client.aclose()
        return
    import nats
    import nats.js.errors

    connection = await nats.connect(broker_url)
    try:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await connection.jetstream().delete_stream(stream)
    finally:
        await connection.close()


@pytest.mark.integration
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("broker", ["redis", "nats"])
async def test_three_workers_one_killed_apply_each_event_once(
    broker: str, redis_url: str, request: pytest.FixtureRequest
) -> None:
    """Every key ends at the fold of its events although a worker died mid-run."""
    broker_url = redis_url if broker == "redis" else request.getfixturevalue("nats_url")
    run = uuid.uuid4().hex
    stream, prefix = f"eventbus-test-state-{run}", f"eventbus-test:state:{run}"
    env = {**os.environ, "PYTHONPATH": TESTS_DIR}
    workers = [
        await anyio.open_process(
            [sys.executable, "-c", _WORKER, redis_url, stream, prefix, broker, broker_url],
            env=env,
        )
        for _ in range(3)
    ]
    client = redis.asyncio.Redis.from_url(redis_url)
    adds = events(N_EVENTS, N_KEYS, seed=11)
    expected = fold(adds)
    try:
        for worker in workers:
            assert worker.stdout is not None
            with anyio.fail_after(30):
                line = await worker.stdout.receive()
            assert line.startswith(b"ready")
        await _publish(broker, broker_url, stream, adds)
        with anyio.fail_after(30):  # some work done: the kill lands mid-run
            await _poll(lambda t: sum(t.values()) >= 100, client, prefix, list(expected))
        workers[0].send_signal(signal.SIGKILL)
        done = await _totals(client, prefix, list(expected))
        assert sum(done.values()) < sum(expected.values())  # the kill did land mid-run
        with anyio.fail_after(60):  # the survivors take over the dead worker's entries
            await _poll(lambda t: t == expected, client, prefix, list(expected))
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
            await worker.aclose()
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        await client.delete(*keys)
        await client.aclose()
        await _delete_stream(broker, broker_url, stream)
