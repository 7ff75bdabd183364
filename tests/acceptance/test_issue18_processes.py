"""Issue 18 as an operator calls it: the worker process, named transport errors, MQTT, buffers."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import attrs
import pytest

import eventbus
from eventbus import Bus, Event, EventBusError, TransportError


@attrs.frozen
class Job(Event, type_name="acceptance.i18.Job"):
    n: int = 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _need(port: int, what: str) -> None:
    if not _up(port):
        if os.environ.get("EVENTBUS_REQUIRE_SERVICES", "") == "1":
            pytest.fail(f"{what} is not running on 127.0.0.1:{port}")
        pytest.skip(f"{what} is not running on 127.0.0.1:{port}")


_APP = textwrap.dedent(
    """
    import attrs
    from eventbus import Bus, Event

    @attrs.frozen
    class Ping(Event):
        n: int = 0

    bus = Bus()

    @bus.on(Ping)
    async def alpha(event):
        pass

    @bus.on(Ping)
    async def beta(event):
        pass
    """
)


def _worker(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    (tmp_path / "acc_worker_app.py").write_text(_APP)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.Popen(
        [sys.executable, "-m", "eventbus", "worker", "acc_worker_app:bus", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_worker_runs_reports_health_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    """worker module:bus with --concurrency, --subscriptions, --health-port; SIGTERM exits 0."""
    port = _free_port()
    proc = _worker(
        tmp_path, "--concurrency", "2", "--subscriptions", "alpha", "--health-port", str(port)
    )
    try:
        assert proc.stderr is not None
        startup = proc.stderr.readline()  # blocks until the startup line
        assert "alpha" in startup, startup
        assert "beta" not in startup, startup
        status: dict[str, Any] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the health listener may open just after the log line
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                    assert r.status == 200
                    status = json.loads(r.read())
                    break
            except OSError:
                if proc.poll() is not None:
                    break
        assert status, "no health answer"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--subscriptions", "nope"), "nope"),
        (("--concurrency", "0"), "concurrency"),
        (("--concurrency", "-3"), "concurrency"),
        (("--health-port", "70000"), "port"),
    ],
)
def test_worker_refuses_bad_options_clearly(
    tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    """Bad worker options exit non-zero with a message naming the problem, no traceback."""
    proc = _worker(tmp_path, *args)
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode != 0
    assert needle in err
    assert "Traceback" not in err


def test_worker_bad_target_is_clear(tmp_path: Path) -> None:
    """A target that is not a Bus exits non-zero, naming it, without a traceback."""
    (tmp_path / "acc_not_bus.py").write_text("bus = 5\n")
    proc = subprocess.run(
        [sys.executable, "-m", "eventbus", "worker", "acc_not_bus:bus"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    assert "acc_not_bus" in proc.stderr


def test_transport_error_is_named_and_a_connection_error() -> None:
    """eventbus.TransportError is an EventBusError and a ConnectionError."""
    assert issubclass(TransportError, EventBusError)
    assert issubclass(TransportError, ConnectionError)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "1000", True])
def test_publish_buffer_must_be_a_positive_int(bad: Any) -> None:
    """Bus(publish_buffer=...) refuses non-positive or non-int sizes, naming the argument."""
    with pytest.raises((EventBusError, TypeError, ValueError), match="publish_buffer"):
        Bus(transport=eventbus.MemoryTransport(), publish_buffer=bad)


async def test_unreachable_mqtt_broker_is_transport_error() -> None:
    """Starting a bus on an MQTT broker that is not there raises TransportError (cause chained)."""
    from eventbus.bridges.mqtt import MqttTransport

    transport = MqttTransport(f"mqtt://127.0.0.1:{_free_port()}", connect_timeout=2)
    with pytest.raises((TransportError, BaseExceptionGroup)) as info:
        async with Bus(transport=transport) as bus:
            await bus.publish(Job())
    error = info.value
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    assert isinstance(error, TransportError)


async def test_unreachable_redis_broker_is_transport_error() -> None:
    """Starting a bus on a Redis that is not there raises TransportError, not redis's error."""
    from eventbus.bridges.redis import RedisStreamsTransport

    transport = RedisStreamsTransport(f"redis://127.0.0.1:{_free_port()}/0", publish_timeout=2)
    with pytest.raises((TransportError, BaseExceptionGroup)) as info:
        async with Bus(transport=transport) as bus:
            await bus.publish(Job())
    error = info.value
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    assert isinstance(error, TransportError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"url": "http://127.0.0.1:1883"},
        {"url": ""},
        {"topic_prefix": ""},
        {"topic_prefix": "a/+/b"},
        {"topic_prefix": "a/#"},
        {"receive_maximum": 0},
        {"keepalive": -1},
    ],
)
def test_mqtt_transport_refuses_bad_options(kwargs: dict[str, Any]) -> None:
    """MqttTransport refuses bad URLs, wildcard prefixes and bad numbers by name."""
    from eventbus.bridges.mqtt import MqttTransport

    with pytest.raises((EventBusError, TypeError, ValueError)):
        MqttTransport(**kwargs)


@pytest.mark.integration
async def test_mqtt_round_trip_through_mosquitto() -> None:
    """Events published over MqttTransport reach a subscription, once each."""
    _need(1883, "Mosquitto")
    import anyio

    from eventbus.bridges.mqtt import MqttTransport

    got: list[int] = []
    all_in = anyio.Event()

    async def handle(event: Job) -> None:
        got.append(event.n)
        if len(got) >= 20:
            all_in.set()

    prefix = f"acc{uuid.uuid4().hex[:8]}"
    async with Bus(transport=MqttTransport(topic_prefix=prefix)) as bus:
        bus.subscribe(Job, handle, name="h")
        for i in range(20):
            await bus.publish(Job(n=i))
        with anyio.fail_after(20):
            await all_in.wait()
        await bus.drain()
    assert sorted(got) == list(range(20))
