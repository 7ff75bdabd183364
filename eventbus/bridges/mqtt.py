"""MQTT 5 transport: ``Bus(transport=MqttTransport(...))``, for devices and embedded programs.

Needs the MQTT client: ``pip install 'eventbus[mqtt]'`` (aiomqtt, on
paho-mqtt), and an MQTT 5 broker (Mosquitto 2, EMQX, HiveMQ, ...).

How the bus maps onto MQTT:

* Events are published with QoS 1 to the topic ``<topic_prefix>/<event
  type>``, each dot of the type name starting a topic level
  (``shop.OrderPlaced`` goes to ``eventbus/shop/OrderPlaced``; characters
  MQTT reserves, ``+``, ``#`` and ``/``, become ``_``). ``send`` returns
  once the broker has acknowledged the publish (PUBACK).
* The payload follows the CloudEvents MQTT binding: structured mode by
  default (the CloudEvents 1.0 JSON, content type
  ``application/cloudevents+json``), or binary mode (``binary=True``: the
  event's data as the payload, its content type as the MQTT 5 content type
  and the other attributes as MQTT 5 user properties). Both modes are read.
* Each subscription name is an MQTT 5 shared subscription,
  ``$share/<name>/<topic_prefix>/#`` (:meth:`MqttTransport.share_name`
  gives the share name), on a connection of its own: processes that run a
  subscription of the same name share its messages, and every subscription
  sees every event.
* Messages are acknowledged (PUBACK, sent by hand) only once the bus has
  settled the event -- handled or dead-lettered. The connection's Receive
  Maximum (``receive_maximum``) caps how many unacknowledged messages the
  broker sends it, so a full subscription queue stops the flow
  (backpressure reaches the broker).
* A message of an event type no class in this process is registered for is
  logged, acknowledged and skipped; any other message that cannot be
  decoded (a poison message) is dead-lettered as an
  :class:`~eventbus.UndecodableEvent` and acknowledged, so it cannot block
  the subscription.

What MQTT does not give, unlike the NATS and Redis transports:

* **No redelivery to another process.** A message a process received but
  had not settled when it died is sent again only to the *same session*:
  give each process a stable ``client_id`` and a ``session_expiry`` > 0,
  and the broker resends it when that process comes back. Another member
  of the shared subscription never gets it.
* **No redelivery delay, no deduplication** by event id: a message sent
  twice is delivered twice.
* **No per-key order across a shared subscription**: the broker spreads
  messages over the members without regard to any key. One member alone
  receives messages in publish order.
* **No broker-side backlog count**: ``pending`` counts what this process
  holds after a round trip through the broker, so ``drain`` knows about
  messages already on their way to it, not about those queued for other
  processes.
* Brokers cap the messages they queue per client (Mosquitto's
  ``max_queued_messages``, 1000 by default) and drop QoS 1 messages past
  it: raise it (``0`` = no limit) where subscribers may fall far behind.

aiomqtt is an asyncio library: this transport runs on anyio's asyncio
backend only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import socket
import ssl
import uuid
from collections import deque
from collections.abc import Mapping
from typing import Any, Final, final
from urllib.parse import unquote, urlsplit

import anyio
import anyio.abc

try:
    import aiomqtt
    import paho.mqtt.client as paho
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties
except ImportError as exc:
    raise ImportError(
        "eventbus.bridges.mqtt needs the MQTT client library (aiomqtt); "
        "install it with: pip install 'eventbus[mqtt]'",
        name=exc.name,
    ) from exc

from .._events import Event
from .._exceptions import TransportError
from .._serialization import to_cloudevent
from .._transport import Ack, Deliver
from ._common import decode_message
from ._status import ConnectionTracker, TransportStatus

__all__ = ["STRUCTURED_CONTENT_TYPE", "MqttTransport", "TransportStatus"]

logger = logging.getLogger("eventbus.bridges.mqtt")

STRUCTURED_CONTENT_TYPE: Final = "application/cloudevents+json; charset=utf-8"
"""The MQTT 5 content type of a structured-mode CloudEvent."""

_CLOSE_TIMEOUT: Final = 5.0  # seconds to flush acks and disconnect
_MAX_BACKOFF: Final = 5.0  # seconds between attempts while the broker is unreachable
_PROBE_TIMEOUT: Final = 2.0  # seconds a pending() round trip may take
_NAME_LIMIT: Final = 64
_SAFE_NAME: Final = re.compile(r"[A-Za-z0-9_.-]+")
_UNSAFE_CHAR: Final = re.compile(r"[^A-Za-z0-9_.-]")
_RESERVED: Final = re.compile(r"[+#/\x00]")


def _validate_seconds(name: str, value: float, *, zero: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (value >= 0 if zero else value > 0)
    ):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(
            f"MqttTransport({name}=...) must be a number of seconds {bound}, got {value!r}"
        )
    return float(value)


def _validate_prefix(prefix: str) -> str:
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(
            f"MqttTransport(topic_prefix=...) must be a non-empty string, got {prefix!r}"
        )
    if prefix.startswith("$") or _RESERVED.sub("", prefix.replace("/", "")) != prefix.replace(
        "/", ""
    ):
        raise ValueError(
            f"MqttTransport(topic_prefix={prefix!r}): must not start with '$' or contain "
            "'+', '#' or NUL; e.g. 'eventbus' or 'plant/line1'"
        )
    if any(not level for level in prefix.split("/")):
        raise ValueError(
            f"MqttTransport(topic_prefix={prefix!r}): topic levels must be non-empty "
            "(no leading, trailing or doubled '/')"
        )
    return prefix


def topic_levels(type_name: str) -> str:
    """The topic levels for an event type name: dots become ``/``, reserved characters ``_``."""
    levels = [_RESERVED.sub("_", part) for part in type_name.split(".")]
    return "/".join(level for level in levels if level) or "_"


def _parse_url(url: str) -> tuple[str, int, str | None, str | None, bool]:
    if not isinstance(url, str) or not url:
        raise ValueError(f"MqttTransport(url=...) takes an mqtt:// URL, got {url!r}")
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(
            f"MqttTransport(url={url!r}): the scheme must be mqtt:// or mqtts://, "
            f"got {parts.scheme!r}"
        )
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"MqttTransport(url={url!r}): the port is not a number") from None
    if not parts.hostname:
        raise ValueError(f"MqttTransport(url={url!r}) names no host; e.g. mqtt://127.0.0.1:1883")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    return parts.hostname, port or (8883 if tls else 1883), username, password, tls


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]  # paho is not annotated here


def _default_client_id() -> str:
    return f"eventbus-{socket.gethostname()[:20]}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class _Group:
    """The bookkeeping of one ``consume`` call (one connection, one shared subscription)."""

    __slots__ = ("acks", "client", "closed", "probe_topic", "probes", "unacked", "wake")

    def __init__(self, probe_topic: str) -> None:
        self.client: aiomqtt.Client | None = None  # the live connection
        self.unacked: dict[int, aiomqtt.Message] = {}  # read, not yet acked (by packet id)
        self.acks: deque[aiomqtt.Message] = deque()  # settled, acknowledgement due
        self.probes: dict[str, anyio.Event] = {}  # pending() round trips under way
        self.probe_topic = probe_topic
        self.closed = False
        self.wake: anyio.Event | None = None

    def push(self, msg: aiomqtt.Message) -> None:
        self.acks.append(msg)
        if self.wake is not None:
            self.wake.set()

    async def wait(self) -> None:
        while not self.acks:
            self.wake = anyio.Event()
            await self.wake.wait()
            self.wake = None


@final
class MqttTransport:
    """Carries a bus's events through an MQTT 5 broker (``pip install 'eventbus[mqtt]'``).

    Each subscription name becomes an MQTT 5 shared subscription, so
    processes that subscribe with the same name share the work, and every
    subscription sees every event. Messages are QoS 1 and acknowledged only
    once the bus settles the event. See the module documentation for what
    MQTT does not guarantee (redelivery to another process, per-key order
    across processes, deduplication).

    Args:
        url: the broker, ``mqtt://[user:password@]host[:port]`` or
            ``mqtts://...`` for TLS (port 8883 by default).
        topic_prefix: the first topic level(s); events go to
            ``<topic_prefix>/<event type levels>``.
        client_id: the MQTT client identifier this process uses (each
            connection appends a suffix of its own). The default is unique
            per transport. Give a stable one, with ``session_expiry``, to
            have the broker keep a stopped process's messages for it.
        session_expiry: seconds the broker keeps this client's sessions
            (subscriptions and unacknowledged messages) after a
            disconnect; ``0`` (the default) starts a clean session each time.
        receive_maximum: how many unacknowledged messages the broker may
            send one subscription's connection: at most this many events
            wait in the process besides those the subscription holds.
        binary: publish in the CloudEvents binary mode (data as payload,
            attributes as MQTT 5 user properties) rather than structured JSON.
        keepalive: seconds between MQTT keepalive pings.
        connect_timeout: seconds :meth:`start` (and each reconnection of
            the publisher) may take to connect.
        publish_timeout: seconds :meth:`send` waits for the broker's
            acknowledgement before it fails with :class:`~eventbus.TransportError`.
        tls_context: the TLS context for ``mqtts://`` (default: the system's).
        client_options: extra keyword arguments for ``aiomqtt.Client``.

    .. versionadded:: 0.2
    """

    __slots__ = (
        "_binary",
        "_client_id",
        "_client_options",
        "_connect_timeout",
        "_groups",
        "_host",
        "_keepalive",
        "_password",
        "_port",
        "_prefix",
        "_publish_lock",
        "_publish_timeout",
        "_publisher",
        "_receive_maximum",
        "_session_expiry",
        "_shares",
        "_started",
        "_status",
        "_tls",
        "_tls_context",
        "_topics",
        "_unknown",
        "_url",
        "_username",
    )

    def __init__(
        self,
        url: str = "mqtt://127.0.0.1:1883",
        *,
        topic_prefix: str = "eventbus",
        client_id: str | None = None,
        session_expiry: float = 0,
        receive_maximum: int = 16,
        binary: bool = False,
        keepalive: int = 60,
        connect_timeout: float = 10.0,
        publish_timeout: float = 10.0,
        tls_context: ssl.SSLContext | None = None,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        host, port, username, password, tls = _parse_url(url)
        if client_id is not None and (not isinstance(client_id, str) or not client_id):
            raise ValueError(
                f"MqttTransport(client_id=...) must be a non-empty string or None, got {client_id!r}"
            )
        if (
            isinstance(receive_maximum, bool)
            or not isinstance(receive_maximum, int)
            or not 1 <= receive_maximum <= 65535
        ):
            raise ValueError(
                f"MqttTransport(receive_maximum=...) must be an int from 1 to 65535, "
                f"got {receive_maximum!r}"
            )
        if isinstance(keepalive, bool) or not isinstance(keepalive, int) or keepalive < 1:
            raise ValueError(
                f"MqttTransport(keepalive=...) must be an int >= 1 (seconds), got {keepalive!r}"
            )
        if client_options is not None and not isinstance(client_options, Mapping):
            raise TypeError(
                "MqttTransport(client_options=...) takes a mapping of aiomqtt.Client keyword "
                f"arguments, got {type(client_options).__name__}"
            )
        self._url = f"{'mqtts' if tls else 'mqtt'}://{host}:{port}"
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._tls = tls
        self._tls_context = tls_context
        self._prefix = _validate_prefix(topic_prefix)
        self._client_id = client_id or _default_client_id()
        self._session_expiry = _validate_seconds("session_expiry", session_expiry, zero=True)
        self._receive_maximum = receive_maximum
        self._binary = bool(binary)
        self._keepalive = keepalive
        self._connect_timeout = _validate_seconds("connect_timeout", connect_timeout)
        self._publish_timeout = _validate_seconds("publish_timeout", publish_timeout)
        self._client_options: dict[str, Any] = dict(client_options or {})
        self._publisher: aiomqtt.Client | None = None
        self._publish_lock: anyio.Lock | None = None
        self._started = False
        self._status = ConnectionTracker("mqtt", self._url)
        self._groups: dict[str, _Group] = {}
        self._shares: dict[str, str] = {}  # share name -> subscription name
        self._topics: dict[type[Event], str] = {}
        self._unknown: set[tuple[str, str]] = set()

    def __repr__(self) -> str:
        return f"MqttTransport({self._url!r}, topic_prefix={self._prefix!r})"

    @property
    def topic_prefix(self) -> str:
        """The topic prefix; events go to ``<topic_prefix>/<event type levels>``."""
        return self._prefix

    @property
    def client_id(self) -> str:
        """The MQTT client identifier of this process (connections add a suffix)."""
        return self._client_id

    def topic(self, event_type: type[Event]) -> str:
        """The topic events of *event_type* are published to."""
        topic = self._topics.get(event_type)
        if topic is None:
            topic = self._topics[event_type] = (
                f"{self._prefix}/{topic_levels(event_type.event_type())}"
            )
        return topic

    @staticmethod
    def share_name(group: str) -> str:
        """The MQTT 5 share name for the subscription called *group*.

        A name of at most 64 letters, digits, ``.``, ``-`` and ``_`` is
        used as it is. Any other has every other character replaced by
        ``_``, is cut to 48 characters and gets ``-`` and 12 hex digits of
        the SHA-256 of the original name appended, the same in every
        process.
        """
        if len(group) <= _NAME_LIMIT and _SAFE_NAME.fullmatch(group):
            return group
        digest = hashlib.sha256(group.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        return f"{_UNSAFE_CHAR.sub('_', group)[:48]}-{digest}"

    def status(self) -> TransportStatus:
        """The publisher connection's state: connected, reconnections, the last error.

        .. versionadded:: 0.2
        """
        return self._status.snapshot()

    # -- connections ---------------------------------------------------------------------

    def _client(self, suffix: str, *, receive_maximum: int | None = None) -> aiomqtt.Client:
        properties = _properties(PacketTypes.CONNECT)
        if self._session_expiry:
            properties.SessionExpiryInterval = int(self._session_expiry)
        if receive_maximum is not None:
            properties.ReceiveMaximum = receive_maximum
        options: dict[str, Any] = {
            "identifier": f"{self._client_id}-{suffix}",
            "protocol": aiomqtt.ProtocolVersion.V5,
            "username": self._username,
            "password": self._password,
            "keepalive": self._keepalive,
            "timeout": self._publish_timeout,
            "clean_start": not self._session_expiry,
            "properties": properties,
            **self._client_options,
        }
        if self._tls:
            options.setdefault("tls_context", self._tls_context or ssl.create_default_context())
        client = aiomqtt.Client(self._host, self._port, **options)
        return client

    async def _connect(self, client: aiomqtt.Client, what: str) -> None:
        """Connect *client* within ``connect_timeout``; raise TransportError if not."""
        error: BaseException | None = None
        with anyio.move_on_after(self._connect_timeout) as scope:
            try:
                await client.__aenter__()
                return
            except aiomqtt.MqttError as exc:
                error = exc
        reason = f"within {self._connect_timeout:g}s" if scope.cancelled_caught else f"({error})"
        failure = TransportError(
            f"MqttTransport could not connect {what} to the MQTT broker at {self._url} "
            f"{reason}; is the broker (e.g. mosquitto) running, reachable, speaking MQTT 5, "
            "and accepting these credentials?"
        )
        self._status.down(error or failure)
        raise failure from error

    @staticmethod
    async def _disconnect(client: aiomqtt.Client) -> None:
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            try:
                await client.__aexit__(None, None, None)
            except (aiomqtt.MqttError, OSError) as exc:
                logger.debug("disconnecting from the MQTT broker failed: %s", exc)
        # A connection that was lost holds the reason in a future aiomqtt never reads:
        # read it, so asyncio does not log "Future exception was never retrieved".
        lost = getattr(client, "_disconnected", None)
        if isinstance(lost, asyncio.Future) and lost.done() and not lost.cancelled():
            lost.exception()

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect the publisher.

        Raises:
            RuntimeError: already started, or not running on asyncio.
            TransportError: the broker could not be reached within
                ``connect_timeout`` or refused the connection.
        """
        if self._started:
            raise RuntimeError("this MqttTransport is already started; use one per Bus")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "MqttTransport needs anyio's asyncio backend (aiomqtt is an asyncio library)"
            ) from None
        client = self._client("pub")
        await self._connect(client, "its publisher")
        self._publisher = client
        self._publish_lock = anyio.Lock()
        self._started = True
        self._status.up()

    async def aclose(self) -> None:
        """Disconnect. Safe to call twice.

        Messages received but not acknowledged stay with the broker only
        for a persistent session (``session_expiry`` > 0).
        """
        client, self._publisher = self._publisher, None
        self._started = False
        self._status.connected = False
        if client is not None:
            await self._disconnect(client)

    # -- publishing ----------------------------------------------------------------------

    def _encode(self, event: Event) -> tuple[bytes, Properties]:
        document = to_cloudevent(event)
        properties = _properties(PacketTypes.PUBLISH)
        if self._binary:
            data = document.pop("data", None)
            properties.ContentType = str(document.pop("datacontenttype", "application/json"))
            properties.UserProperty = [
                (key, value if isinstance(value, str) else json.dumps(value))
                for key, value in document.items()
            ]
            return json.dumps(data, separators=(",", ":")).encode(), properties
        properties.ContentType = STRUCTURED_CONTENT_TYPE
        return json.dumps(document, separators=(",", ":")).encode(), properties

    async def _publisher_client(self) -> aiomqtt.Client:
        if not self._started or self._publish_lock is None:
            raise RuntimeError(
                "this MqttTransport is not started; pass it to Bus(transport=...) and use "
                "the bus inside 'async with'"
            )
        client = self._publisher
        if client is not None:
            return client
        async with self._publish_lock:
            if self._publisher is None:
                fresh = self._client("pub")
                await self._connect(fresh, "its publisher")
                self._publisher = fresh
                self._status.up(again=True)
                logger.info("reconnected to the MQTT broker at %s", self._url)
            return self._publisher

    async def send(self, event: Event) -> None:
        """Publish *event* with QoS 1; return once the broker has acknowledged it.

        Raises:
            SerializationError: a field cannot be encoded as JSON.
            TransportError: the broker is unreachable or did not acknowledge
                within ``publish_timeout`` (the client's error is chained);
                the next ``send`` reconnects. The event may or may not have
                been stored: sending it again may deliver it twice.
        """
        topic = self.topic(type(event))
        payload, properties = self._encode(event)
        client = await self._publisher_client()
        try:
            await client.publish(topic, payload, qos=1, properties=properties)
        except (aiomqtt.MqttError, OSError) as exc:
            if self._publisher is client:
                self._publisher = None
                self._status.down(exc)
                await self._disconnect(client)
            raise TransportError(
                f"MqttTransport could not publish {type(event).event_type()} event {event.id} "
                f"to {topic!r} at {self._url}: {exc}; the broker may be down or unreachable "
                "(the next publish reconnects)"
            ) from exc

    # -- consuming -----------------------------------------------------------------------

    def _share(self, group: str) -> str:
        name = self.share_name(group)
        other = self._shares.setdefault(name, group)
        if other != group:
            raise ValueError(
                f"subscription names {other!r} and {group!r} both map to the MQTT share name "
                f"{name!r}; rename one of the subscriptions"
            )
        return name

    async def consume(
        self,
        group: str,
        deliver: Deliver,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Deliver the events of subscription *group* until cancelled.

        Opens a connection of its own, subscribes to
        ``$share/<share name>/<topic_prefix>/#`` with QoS 1, then reports
        started. Awaits ``deliver(event, ack)`` for each message; ``ack()``
        queues the acknowledgement, sent by a task of this consumer. If the
        connection drops, reconnects with backoff. On cancellation, the
        acknowledgements already due are sent before disconnecting.

        Raises:
            ValueError: *group* maps to the same share name as another
                subscription of this transport.
            TransportError: the first connection could not be made.
        """
        share = self._share(group)
        state = _Group(f"{self._prefix}-probe/{uuid.uuid4().hex}")
        self._groups[group] = state
        started = False
        backoff = 0.0
        try:
            while True:
                client = self._client(
                    f"sub-{hashlib.sha256(group.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}",
                    receive_maximum=self._receive_maximum,
                )
                # Acknowledge by hand, once the event settles (aiomqtt does not expose it).
                client._client.manual_ack_set(True)
                try:
                    await self._connect(client, f"subscription {group!r}")
                except TransportError as exc:
                    if not started:
                        raise
                    backoff = min(_MAX_BACKOFF, max(0.1, backoff * 2))
                    logger.warning("%s; retrying in %.1fs", exc, backoff)
                    await anyio.sleep(backoff)
                    continue
                lost: aiomqtt.MqttError | None = None
                try:
                    state.client = client
                    await client.subscribe(f"$share/{share}/{self._prefix}/#", qos=1)
                    await client.subscribe(state.probe_topic, qos=1)
                    if started:
                        logger.info(
                            "subscription %r reconnected to the MQTT broker at %s", group, self._url
                        )
                    else:
                        started = True
                        task_status.started()
                    backoff = 0.0
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._ack_loop, state, client)
                        try:
                            await self._read_loop(client, group, deliver, state)
                        except aiomqtt.MqttError as exc:
                            lost = exc
                        tg.cancel_scope.cancel()
                except aiomqtt.MqttError as exc:
                    lost = exc
                finally:
                    state.client = None
                    while state.acks:  # settled before the connection closes: acknowledge
                        self._send_ack(state, client, state.acks.popleft())
                    await self._disconnect(client)
                if not started:
                    raise TransportError(
                        f"MqttTransport could not subscribe {group!r} at {self._url}: {lost}"
                    ) from lost
                backoff = min(_MAX_BACKOFF, max(0.1, backoff * 2))
                logger.warning(
                    "subscription %r lost its MQTT connection to %s (%s); reconnecting in %.1fs",
                    group,
                    self._url,
                    lost,
                    backoff,
                )
                state.unacked.clear()  # the broker forgets them (or resends them to a kept session)
                await anyio.sleep(backoff)
        finally:
            state.closed = True
            for probe in state.probes.values():
                probe.set()
            self._groups.pop(group, None)
            self._shares.pop(share, None)

    async def _read_loop(
        self, client: aiomqtt.Client, group: str, deliver: Deliver, state: _Group
    ) -> None:
        async for msg in client.messages:
            if msg.topic.value == state.probe_topic:
                token = msg.payload.decode() if isinstance(msg.payload, bytes) else str(msg.payload)
                client._client.ack(msg.mid, msg.qos)
                probe = state.probes.pop(token, None)
                if probe is not None:
                    probe.set()
                continue
            if msg.qos:
                state.unacked[msg.mid] = msg
            ack = self._make_ack(state, client, msg)
            event = self._decode(group, msg)
            if event is None:
                ack()
                continue
            await deliver(event, ack)

    def _make_ack(self, state: _Group, client: aiomqtt.Client, msg: aiomqtt.Message) -> Ack:
        done = False

        def ack() -> None:
            nonlocal done
            if done:
                return
            done = True
            if state.client is client:
                state.push(msg)
            elif state.unacked.get(msg.mid) is msg:  # its connection is gone
                del state.unacked[msg.mid]

        return ack

    async def _ack_loop(self, state: _Group, client: aiomqtt.Client) -> None:
        while True:
            await state.wait()
            while state.acks:
                self._send_ack(state, client, state.acks.popleft())

    @staticmethod
    def _send_ack(state: _Group, client: aiomqtt.Client, msg: aiomqtt.Message) -> None:
        if state.unacked.get(msg.mid) is msg:
            del state.unacked[msg.mid]
        if not msg.qos:
            return
        # aiomqtt does not expose manual acknowledgement; its paho client does.
        code = client._client.ack(msg.mid, msg.qos)
        if code != paho.MQTT_ERR_SUCCESS:
            logger.warning(
                "acknowledging an MQTT message failed (%s); the broker may send it again",
                paho.error_string(code),
            )

    def _decode(self, group: str, msg: aiomqtt.Message) -> Event | None:
        """The message's event; None to skip it; an UndecodableEvent for a poison message."""
        payload = msg.payload
        raw = payload if isinstance(payload, bytes | bytearray) else str(payload or "").encode()
        properties = msg.properties
        user = dict(getattr(properties, "UserProperty", None) or ()) if properties else {}
        content_type = str(getattr(properties, "ContentType", "") or "") if properties else ""
        where = f"MQTT topic {msg.topic.value!r}"
        if "specversion" not in user or content_type.startswith("application/cloudevents"):
            return decode_message(self._unknown, group, bytes(raw), where)
        # binary mode: the attributes in user properties, the data in the payload
        data: Any
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = bytes(raw).decode("utf-8", errors="backslashreplace")
        document: dict[str, Any] = {**user, "data": data}
        if content_type:
            document["datacontenttype"] = content_type
        return decode_message(self._unknown, group, document, where)

    # -- introspection -------------------------------------------------------------------

    async def pending(self, group: str) -> int:
        """Messages of *group* this process holds unacknowledged, after a broker round trip.

        A probe message goes through the broker to the group's own
        connection: once it is back, every message the broker had routed to
        this process before is counted. MQTT brokers report no backlog of a
        shared subscription, so messages queued for other processes are not
        counted.
        """
        state = self._groups.get(group)
        if state is None:
            return 0
        client = state.client
        if client is None:
            return len(state.unacked) + 1  # reconnecting: not settled yet
        token = uuid.uuid4().hex
        arrived = state.probes[token] = anyio.Event()
        try:
            with anyio.move_on_after(_PROBE_TIMEOUT):
                await client.publish(state.probe_topic, token.encode(), qos=1)
                await arrived.wait()
        except aiomqtt.MqttError:
            return len(state.unacked) + 1
        finally:
            state.probes.pop(token, None)
        if not arrived.is_set():
            return len(state.unacked) + 1
        return len(state.unacked) + len(client.messages)
