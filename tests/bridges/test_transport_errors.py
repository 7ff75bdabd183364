"""Broker outages: publishers get eventbus.TransportError, and reconnection shows in status().

Each test starts a broker of its own (nats-server, redis-server) on a free
port in a temporary directory, kills that process by its pid, and starts it
again; the shared brokers on the usual ports are never touched.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import anyio
import attrs
import pytest

from eventbus import Bus, Event, TransportError

from .conftest import unavailable


@attrs.frozen
class Ping(Event, type_name="tests.outage.Ping"):
    n: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
    except OSError:
        return False
    return True


@contextmanager
def broker(command: list[str], port: int, cwd: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run *command* until the block ends; it must listen on *port* within 10 s."""
    if shutil.which(command[0]) is None:
        unavailable(f"{command[0]} is not installed")
    process = subprocess.Popen(
        command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{command[0]} did not start on port {port}")
            time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def kill(process: subprocess.Popen[bytes], port: int) -> None:
    """SIGKILL the broker (by its pid) and wait until its port is closed."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    while listening(port):
        time.sleep(0.05)


def nats_command(port: int, store: Path) -> list[str]:
    return ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(store)]


def redis_command(port: int) -> list[str]:
    return [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]


@pytest.mark.integration
async def test_nats_outage_raises_transport_error_then_reconnects(tmp_path: Path) -> None:
    """While nats-server is down a publish raises TransportError; after it restarts, publishing works."""
    pytest.importorskip("nats")
    import nats.errors

    from eventbus.bridges.nats import NatsTransport

    port = free_port()
    store = tmp_path / "js"
    back = anyio.Event()

    async def reconnected() -> None:
        back.set()

    transport = NatsTransport(
        f"nats://127.0.0.1:{port}",
        publish_timeout=1,
        connect_options={"reconnect_time_wait": 0.2, "reconnected_cb": reconnected},
    )
    with broker(nats_command(port, store), port, tmp_path) as server:
        async with Bus(transport=transport) as bus:
            await bus.publish(Ping(1))
            kill(server, port)
            with pytest.raises(TransportError, match="could not publish") as caught:
                await bus.publish(Ping(2))
            assert isinstance(caught.value.__cause__, nats.errors.Error | TimeoutError)
            assert transport.status().last_error is not None
            with broker(nats_command(port, store), port, tmp_path):
                with anyio.fail_after(20):
                    await back.wait()
                await bus.publish(Ping(3))
                status = transport.status()
    assert status.connected is True
    assert status.reconnects == 1


@pytest.mark.integration
async def test_redis_outage_raises_transport_error_then_reconnects(tmp_path: Path) -> None:
    """While redis-server is down a publish raises TransportError; after it restarts, publishing works."""
    pytest.importorskip("redis")
    import redis.exceptions

    from eventbus.bridges.redis import RedisStreamsTransport

    port = free_port()
    transport = RedisStreamsTransport(f"redis://127.0.0.1:{port}/0", publish_timeout=2)
    with broker(redis_command(port), port, tmp_path) as server:
        async with Bus(transport=transport) as bus:
            await bus.publish(Ping(1))
            kill(server, port)
            with pytest.raises(TransportError, match="could not append") as caught:
                await bus.publish(Ping(2))
            assert isinstance(caught.value.__cause__, redis.exceptions.RedisError | OSError)
            down = transport.status()
            with broker(redis_command(port), port, tmp_path):
                await bus.publish(Ping(3))
                up = transport.status()
    assert down.connected is False
    assert down.last_error is not None
    assert up.connected is True
    assert up.reconnects == 1


@pytest.mark.integration
async def test_a_frozen_redis_fails_a_publish_within_publish_timeout(tmp_path: Path) -> None:
    """A server that holds the connection but never answers: publish_timeout bounds the wait.

    The publishing connection reads replies without a socket timeout (redis-py
    would arm a timer per reply); publish_timeout is what bounds a round trip.
    """
    pytest.importorskip("redis")
    from eventbus.bridges.redis import RedisStreamsTransport

    port = free_port()
    transport = RedisStreamsTransport(f"redis://127.0.0.1:{port}/0", publish_timeout=0.5)
    with broker(redis_command(port), port, tmp_path) as server:
        async with Bus(transport=transport) as bus:
            await bus.publish(Ping(1))
            os.kill(server.pid, signal.SIGSTOP)  # alive, connected, silent
            # Were nothing to bound the wait, the publish would succeed once this wakes the
            # server, and the test would fail rather than hang.
            thaw = threading.Timer(10, os.kill, (server.pid, signal.SIGCONT))
            thaw.start()
            try:
                with pytest.raises(TransportError, match="could not append") as caught:
                    await bus.publish(Ping(2))
            finally:
                thaw.cancel()
                os.kill(server.pid, signal.SIGCONT)
            # Ended by publish_timeout's deadline (anyio's TimeoutError), not by the client.
            assert type(caught.value.__cause__) is TimeoutError
            await bus.publish(Ping(3))
            assert transport.status().connected is True


@pytest.mark.integration
async def test_an_unreachable_nats_fails_start_with_transport_error() -> None:
    """start() against a port nobody listens on raises TransportError (a ConnectionError)."""
    pytest.importorskip("nats")
    from eventbus.bridges.nats import NatsTransport

    port = free_port()
    transport = NatsTransport(f"nats://127.0.0.1:{port}", connect_timeout=1)
    with pytest.raises(TransportError, match="could not connect"):
        await transport.start()
    assert transport.status().connected is False


@pytest.mark.integration
async def test_an_unreachable_redis_fails_start_with_transport_error() -> None:
    """start() against a port nobody listens on raises TransportError (a ConnectionError)."""
    pytest.importorskip("redis")
    from eventbus.bridges.redis import RedisStreamsTransport

    port = free_port()
    transport = RedisStreamsTransport(f"redis://127.0.0.1:{port}/0")
    with pytest.raises(TransportError, match="could not reach Redis"):
        await transport.start()
    assert transport.status().last_error is not None


def test_redis_status_and_repr_hide_the_password() -> None:
    """A password in the Redis URL appears in neither repr() nor status()."""
    pytest.importorskip("redis")
    from eventbus.bridges.redis import RedisStreamsTransport

    transport = RedisStreamsTransport("redis://user:s3cret@127.0.0.1:6379/0")
    assert "s3cret" not in repr(transport)
    assert "s3cret" not in transport.status().url


@pytest.mark.integration
async def test_redis_outage_with_a_publish_buffer_delivers_after_restart(tmp_path: Path) -> None:
    """With publish_buffer, publishes during an outage are buffered and stored after a restart."""
    pytest.importorskip("redis")
    import redis.asyncio

    from eventbus.bridges.redis import RedisStreamsTransport

    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    transport = RedisStreamsTransport(url, stream="buffered", publish_timeout=2)
    handled: list[Event] = []
    with ExitStack() as brokers:
        server = brokers.enter_context(broker(redis_command(port), port, tmp_path))
        async with Bus(transport=transport, publish_buffer=100) as bus:
            bus.subscribe(Ping, handled.append, name="pings")
            before = await bus.publish(Ping(1))
            await bus.drain()
            kill(server, port)
            during = [await bus.publish(Ping(n)) for n in (2, 3)]
            status = bus.transport_status()
            brokers.enter_context(broker(redis_command(port), port, tmp_path))  # after the bus
            client = redis.asyncio.Redis.from_url(url)
            await client.xgroup_create("buffered", "pings", id="0", mkstream=True)
            await client.aclose()
            await bus.drain()
            after = bus.transport_status()
    assert before.buffered is False
    assert [r.buffered for r in during] == [True, True]
    assert status is not None
    assert status.buffered == 2
    assert after is not None
    assert after.buffered == 0
    assert [e.n for e in handled if isinstance(e, Ping)] == [1, 2, 3]
