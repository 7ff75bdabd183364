"""MqttTransport: the conformance suite and MQTT specifics, against a real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager, contextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

try:
    import aiomqtt

    from eventbus.bridges.mqtt import STRUCTURED_CONTENT_TYPE, MqttTransport, topic_levels
except ImportError:  # pragma: no cover - depends on what is installed
    if os.environ.get("EVENTBUS_REQUIRE_SERVICES", "") == "1":
        raise
    pytest.skip("aiomqtt is not installed: pip install 'eventbus[mqtt]'", allow_module_level=True)

from eventbus import Bus, Event, Transport, TransportError
from eventbus.bridges import TransportStatus
from eventbus.testing import (
    TRANSPORT_CASES,
    TransportFactory,
    TransportFeatures,
    Wire,
    check_transport,
)

from ._poison import poison_scenario
from .conftest import unavailable

MQTT_HOST = "127.0.0.1"
MQTT_PORT = 1883
FEATURES = TransportFeatures.ORDERED


@attrs.frozen
class Ping(Event, type_name="tests.mqtt.Ping"):
    n: int


def _probe_mqtt() -> str | None:
    """None when an MQTT broker accepts an anonymous MQTT 5 connection on loopback."""
    # CONNECT: protocol "MQTT" level 5, clean start, keepalive 60, no properties, client id "ebpr"
    body = b"\x00\x04MQTT\x05\x02\x00\x3c\x00" + b"\x00\x04ebpr"
    connect = bytes([0x10, len(body)]) + body
    try:
        with socket.create_connection((MQTT_HOST, MQTT_PORT), timeout=1.0) as sock:
            sock.settimeout(1.0)
            sock.sendall(connect)
            reply = sock.recv(64)
    except OSError as exc:
        return f"no MQTT broker at {MQTT_HOST}:{MQTT_PORT} ({exc})"
    if len(reply) < 4 or reply[0] != 0x20:
        return f"the server at {MQTT_HOST}:{MQTT_PORT} did not answer an MQTT 5 CONNECT: {reply!r}"
    if reply[3] != 0:
        return f"the MQTT broker at {MQTT_HOST}:{MQTT_PORT} refused an anonymous MQTT 5 client (reason {reply[3]})"
    return None


@pytest.fixture(scope="session")
def mqtt_url() -> str:
    """The loopback MQTT URL, once a broker answers MQTT 5 there."""
    reason = _probe_mqtt()
    if reason is not None:
        unavailable(reason)
    return f"mqtt://{MQTT_HOST}:{MQTT_PORT}"


def prefix(namespace: str) -> str:
    return f"ebtest/{namespace}"


# -- the wire: a recording subscriber per namespace, since MQTT stores nothing -------------


class _Recorders:
    """One plain (not shared) subscriber per namespace, recording every payload."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: dict[str, list[bytes]] = {}
        self.clients: dict[str, aiomqtt.Client] = {}
        self.markers: dict[str, asyncio.Event] = {}

    @asynccontextmanager
    async def recording(self, namespace: str) -> AsyncIterator[None]:
        if namespace in self.clients:
            yield
            return
        client = aiomqtt.Client(MQTT_HOST, MQTT_PORT, protocol=aiomqtt.ProtocolVersion.V5)
        async with client:
            await client.subscribe(f"{prefix(namespace)}/#", qos=1)
            await client.subscribe(f"ebtest-marker/{namespace}", qos=1)
            self.clients[namespace] = client
            seen = self.seen.setdefault(namespace, [])

            async def record() -> None:
                async for msg in client.messages:
                    if msg.topic.value.startswith("ebtest-marker/"):
                        self.markers.pop(bytes(msg.payload).decode()).set()
                    else:
                        seen.append(bytes(msg.payload))

            task = asyncio.ensure_future(record())
            try:
                yield
            finally:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
                del self.clients[namespace]

    async def read(self, namespace: str) -> Sequence[bytes]:
        token = uuid.uuid4().hex
        marker = self.markers[token] = asyncio.Event()
        await self.clients[namespace].publish(f"ebtest-marker/{namespace}", token, qos=1)
        await marker.wait()
        return list(self.seen.get(namespace, []))

    async def put(self, namespace: str, payload: bytes) -> None:
        async with aiomqtt.Client(
            MQTT_HOST, MQTT_PORT, protocol=aiomqtt.ProtocolVersion.V5
        ) as client:
            await client.publish(f"{prefix(namespace)}/raw", payload, qos=1)


def factory(url: str, recorders: _Recorders) -> TransportFactory:
    @asynccontextmanager
    async def make(namespace: str) -> AsyncIterator[Transport]:
        async with recorders.recording(namespace):
            yield MqttTransport(url, topic_prefix=prefix(namespace))

    return make


# -- the conformance suite ------------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("case", TRANSPORT_CASES)
async def test_conformance(mqtt_url: str, case: str) -> None:
    """Each conformance case passes on Mosquitto (those MQTT cannot promise are skipped)."""
    recorders = _Recorders(mqtt_url)
    wire = Wire(put=recorders.put, read=recorders.read)
    report = await check_transport(
        factory(mqtt_url, recorders), FEATURES, wire=wire, cases=[case], case_timeout=20
    )
    assert report.passed + tuple(name for name, _ in report.skipped) == (case,)


@pytest.mark.integration
async def test_poison_messages_are_dead_lettered_and_consuming_goes_on(mqtt_url: str) -> None:
    """A poison message is dead-lettered once where it may belong, acked; good events flow."""
    recorders = _Recorders(mqtt_url)
    await poison_scenario(
        factory(mqtt_url, recorders), Wire(put=recorders.put, read=recorders.read)
    )


def test_features_leave_out_what_mqtt_cannot_promise() -> None:
    """No redelivery to another member, no deduplication by id, no key order across processes."""
    assert TransportFeatures.REDELIVERY not in FEATURES
    assert TransportFeatures.DEDUPLICATION not in FEATURES
    assert TransportFeatures.ORDERED_ACROSS_PROCESSES not in FEATURES


# -- names and options ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_name", "levels"),
    [
        ("shop.OrderPlaced", "shop/OrderPlaced"),
        ("a+b.c#d", "a_b/c_d"),
        ("x/y", "x_y"),
        ("..", "_"),
    ],
)
def test_event_types_become_topic_levels(type_name: str, levels: str) -> None:
    """Dots start topic levels; characters MQTT reserves become '_'."""
    assert topic_levels(type_name) == levels


def test_topic_uses_the_prefix() -> None:
    """Events of a type are published under the topic prefix."""
    transport = MqttTransport(topic_prefix="plant/line1")
    assert transport.topic(Ping) == "plant/line1/tests/mqtt/Ping"


@pytest.mark.parametrize("name", ["orders", "send-receipt_2", "orders.send_receipt"])
def test_share_name_keeps_safe_names(name: str) -> None:
    """Short names of letters, digits, '.', '-' and '_' are used as they are."""
    assert MqttTransport.share_name(name) == name


@pytest.mark.parametrize("name", ["a/b", "a+b", "a#b", "with space", "A" * 65])
def test_share_name_sanitises_other_names(name: str) -> None:
    """Other names lose the characters MQTT reserves and gain a hash of the original."""
    share = MqttTransport.share_name(name)
    assert not set(share) & set("/+# ")
    assert share != MqttTransport.share_name(name + "x")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "http://host"}, "scheme must be mqtt"),
        ({"url": "mqtt://"}, "names no host"),
        ({"topic_prefix": "$SYS"}, "must not start with"),
        ({"topic_prefix": "a/#"}, "must not start with"),
        ({"topic_prefix": "a//b"}, "must be non-empty"),
        ({"receive_maximum": 0}, "receive_maximum"),
        ({"session_expiry": -1}, "session_expiry"),
        ({"publish_timeout": 0}, "publish_timeout"),
        ({"client_id": ""}, "client_id"),
    ],
)
def test_invalid_options_are_refused(options: dict[str, object], message: str) -> None:
    """Bad options raise ValueError naming the option."""
    with pytest.raises(ValueError, match=message):
        MqttTransport(**options)  # type: ignore[arg-type]


def test_url_carries_credentials_and_tls_port() -> None:
    """mqtts:// defaults to port 8883; the repr hides the credentials."""
    transport = MqttTransport("mqtts://user:secret@broker.example")
    assert "8883" in repr(transport)
    assert "secret" not in repr(transport)


async def test_an_unreachable_broker_fails_start_with_transport_error() -> None:
    """start() against a closed port raises TransportError naming the broker."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    transport = MqttTransport(f"mqtt://127.0.0.1:{port}", connect_timeout=2)
    with pytest.raises(TransportError, match=f"127.0.0.1:{port}"):
        await transport.start()
    assert transport.status().connected is False
    assert transport.status().last_error is not None


# -- on the wire ------------------------------------------------------------------------------


def properties_of(msg: aiomqtt.Message) -> dict[str, Any]:
    """The MQTT 5 properties of a received message, by name."""
    assert msg.properties is not None
    return {name: getattr(msg.properties, name, None) for name in ("ContentType", "UserProperty")}


@asynccontextmanager
async def listener(topic: str) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(MQTT_HOST, MQTT_PORT, protocol=aiomqtt.ProtocolVersion.V5) as client:
        await client.subscribe(topic, qos=1)
        yield client


@pytest.mark.integration
async def test_structured_mode_sets_the_cloudevents_content_type(mqtt_url: str) -> None:
    """A structured-mode message carries the CloudEvents JSON content type."""
    namespace = uuid.uuid4().hex[:8]
    async with listener(f"{prefix(namespace)}/#") as client:
        transport = MqttTransport(mqtt_url, topic_prefix=prefix(namespace))
        async with Bus(transport=transport) as bus:
            await bus.publish(Ping(1))
        with anyio.fail_after(5):
            msg = await anext(aiter(client.messages))
    assert msg.topic.value == f"{prefix(namespace)}/tests/mqtt/Ping"
    assert msg.qos == 1
    assert msg.properties is not None
    assert properties_of(msg)["ContentType"] == STRUCTURED_CONTENT_TYPE
    assert json.loads(msg.payload)["data"] == {"n": 1}


@pytest.mark.integration
async def test_binary_mode_puts_attributes_in_user_properties(mqtt_url: str) -> None:
    """In binary mode the payload is the data and the attributes are MQTT 5 user properties."""
    namespace = uuid.uuid4().hex[:8]
    event = Ping(2, correlation_id="c-1")
    async with listener(f"{prefix(namespace)}/#") as client:
        transport = MqttTransport(mqtt_url, topic_prefix=prefix(namespace), binary=True)
        async with Bus(transport=transport) as bus:
            await bus.publish(event)
        with anyio.fail_after(5):
            msg = await anext(aiter(client.messages))
    assert msg.properties is not None
    user = dict(properties_of(msg)["UserProperty"])
    assert user["specversion"] == "1.0"
    assert user["id"] == event.id
    assert user["type"] == "tests.mqtt.Ping"
    assert user["correlationid"] == "c-1"
    assert properties_of(msg)["ContentType"] == "application/json"
    assert json.loads(msg.payload) == {"n": 2}


@pytest.mark.integration
async def test_binary_mode_events_are_handled(mqtt_url: str) -> None:
    """A subscription decodes binary-mode messages back into the same event."""
    namespace = uuid.uuid4().hex[:8]
    got: list[Event] = []
    transport = MqttTransport(mqtt_url, topic_prefix=prefix(namespace), binary=True)
    async with Bus(transport=transport) as bus:
        bus.subscribe(Ping, got.append, name="binary")
        event = Ping(3, correlation_id="c-2")
        await bus.publish(event)
        await bus.drain()
    assert got == [event]


@pytest.mark.integration
async def test_status_reports_a_connected_publisher(mqtt_url: str) -> None:
    """A started transport reports connected, with no reconnection and no error."""
    transport = MqttTransport(mqtt_url, topic_prefix=prefix(uuid.uuid4().hex[:8]))
    async with Bus(transport=transport):
        status = transport.status()
    assert status == TransportStatus("mqtt", mqtt_url, True, 0, None)
    assert transport.status().connected is False


@pytest.mark.integration
async def test_publish_after_close_of_the_broker_connection_raises_transport_error(
    mqtt_url: str,
) -> None:
    """A publish whose connection is gone raises TransportError, and the next one reconnects."""
    transport = MqttTransport(
        mqtt_url, topic_prefix=prefix(uuid.uuid4().hex[:8]), publish_timeout=2
    )
    async with Bus(transport=transport) as bus:
        publisher = transport._publisher
        assert publisher is not None
        publisher._client.disconnect()  # the broker went away, as far as this client knows
        with pytest.raises(TransportError) as caught:
            await bus.publish(Ping(1))
        assert isinstance(caught.value.__cause__, aiomqtt.MqttError)
        await bus.publish(Ping(2))
        status = transport.status()
    assert status.connected is True
    assert status.reconnects == 1
    assert status.last_error is not None


@pytest.mark.integration
async def test_a_kept_session_gets_its_unacknowledged_message_again(mqtt_url: str) -> None:
    """With a stable client_id and session_expiry, a restarted process receives what it held."""
    namespace = uuid.uuid4().hex[:8]
    client_id = f"ebtest-{namespace}"
    options = {"topic_prefix": prefix(namespace), "client_id": client_id, "session_expiry": 60}
    event = Ping(9)
    received = anyio.Event()

    async def never_ack(got: Event, ack: object) -> None:
        received.set()

    crashed = MqttTransport(mqtt_url, **options)  # type: ignore[arg-type]
    await crashed.start()
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(crashed.consume, "kept", never_ack)
            await crashed.send(event)
            await received.wait()
            tg.cancel_scope.cancel()
    finally:
        await crashed.aclose()

    again: list[Event] = []
    redelivered = anyio.Event()

    async def acking(got: Event, ack: Callable[[], None]) -> None:
        again.append(got)
        ack()
        redelivered.set()

    restarted = MqttTransport(mqtt_url, **options)  # type: ignore[arg-type]
    await restarted.start()
    try:
        async with anyio.create_task_group() as tg:
            await tg.start(restarted.consume, "kept", acking)
            with anyio.fail_after(10):
                await redelivered.wait()
            tg.cancel_scope.cancel()
    finally:
        await restarted.aclose()
    assert again == [event]


@pytest.mark.integration
async def test_a_subscription_reconnects_after_the_broker_restarts(
    mqtt_url: str, tmp_path: Path
) -> None:
    """After its own mosquitto is killed and restarted, publishing and consuming resume."""
    if shutil.which("mosquitto") is None:
        unavailable("mosquitto is not installed")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    back = anyio.Event()

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "reconnected" in record.getMessage():
                back.set()

    watch = Watch()
    mqtt_logger = logging.getLogger("eventbus.bridges.mqtt")
    level = mqtt_logger.level
    mqtt_logger.setLevel(logging.INFO)
    mqtt_logger.addHandler(watch)
    got: list[Event] = []
    transport = MqttTransport(f"mqtt://127.0.0.1:{port}", topic_prefix="restart", publish_timeout=2)
    try:
        with ExitStack() as brokers:
            server = brokers.enter_context(mosquitto(config, port))
            async with Bus(transport=transport) as bus:
                bus.subscribe(Ping, got.append, name="restart")
                await bus.publish(Ping(1))
                await bus.drain()
                os.kill(server.pid, signal.SIGKILL)
                server.wait(timeout=10)
                with pytest.raises(TransportError):
                    await bus.publish(Ping(2))
                brokers.enter_context(mosquitto(config, port))  # stopped after the bus closed
                with anyio.fail_after(20):
                    await back.wait()
                await bus.publish(Ping(3))
                await bus.drain()
                status = transport.status()
    finally:
        mqtt_logger.removeHandler(watch)
        mqtt_logger.setLevel(level)
    assert [e.n for e in got if isinstance(e, Ping)] == [1, 3]
    assert status.connected is True
    assert status.reconnects == 1


@contextmanager
def mosquitto(config: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run a mosquitto of the test's own on *port*; SIGKILL it (by pid) at the end."""
    process = subprocess.Popen(
        ["mosquitto", "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"mosquitto did not start on port {port}") from None
                time.sleep(0.05)
        yield process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
