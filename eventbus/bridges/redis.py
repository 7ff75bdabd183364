"""Redis Streams transport: ``Bus(transport=RedisStreamsTransport(...))``.

Needs the Redis client: ``pip install 'eventbus[redis]'``, and Redis 6.2 or
later (``XAUTOCLAIM``; 7.0 or later reports the backlog exactly).

How the bus maps onto Redis Streams:

* One stream key (``stream``) holds every event: ``XADD`` with one field,
  ``cloudevent``, the CloudEvents 1.0 JSON. ``send`` returns once Redis
  has stored it. ``maxlen`` optionally caps the stream (approximate
  trimming); without it the stream keeps every event.
* Each subscription name is a consumer group (``XGROUP CREATE ... $
  MKSTREAM``: it starts at the events added after it was first created).
  Processes that run a subscription of the same name share the group, and
  so its work; each process reads as a consumer of its own (``consumer``,
  unique per transport by default).
* ``XREADGROUP ... COUNT batch_size BLOCK ...`` reads new entries; the next
  read happens only once the bus has taken the previous ones, so a full
  subscription queue stops reading (backpressure reaches the broker).
* An entry is acknowledged (``XACK``) once the bus has settled its event
  (handled or dead-lettered). While it waits or runs, the transport keeps
  resetting its idle time (``XCLAIM ... JUSTID``), so long handlers and
  retries are not taken over. If the process dies, the entries it held go
  idle and another consumer of the group takes them over with
  ``XAUTOCLAIM`` after ``claim_idle`` seconds and delivers them again.
  Entries read but not yet handed to the bus when a consumer stops are
  marked idle at once, so they are taken over without waiting.
* An entry that cannot be decoded (no ``cloudevent`` field, not CloudEvents
  JSON, or of an event type no class in this process is registered for) is
  logged and acknowledged, so it cannot block the group.

redis-py's client is asyncio-based: this transport runs on anyio's asyncio
backend only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Final, final
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.abc

try:
    import redis.asyncio
    import redis.exceptions
except ImportError as exc:
    raise ImportError(
        "eventbus.bridges.redis needs the Redis client library (redis-py); "
        "install it with: pip install 'eventbus[redis]'",
        name=exc.name,
    ) from exc

from .._events import Event
from .._exceptions import TransportError
from .._serialization import cloudevent_json
from .._transport import Ack, Deliver
from ._common import decode_message
from ._redis_state import RedisState as RedisState
from ._status import ConnectionTracker, TransportStatus

__all__ = ["RedisStreamsTransport", "TransportStatus"]

logger = logging.getLogger("eventbus.bridges.redis")

FIELD: Final = "cloudevent"
"""The stream entry field that holds the CloudEvents JSON."""
_FIELD_BYTES: Final = FIELD.encode()

_MAX_BLOCK: Final = 2.0  # seconds one XREADGROUP waits for entries
_CLOSE_TIMEOUT: Final = 5.0  # seconds to flush acks when a consumer or the transport stops
_MAX_BACKOFF: Final = 5.0  # seconds between attempts while Redis is unreachable
_LAG_SCAN: Final = 100  # entries counted at most when Redis cannot report a group's lag
_CLAIM_CHUNK: Final = 500  # ids per XCLAIM heartbeat
_MIN_VERSION: Final = (6, 2)
_PIPELINE: Final = 256  # publishes sent in one round trip at most
_RENEW: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
)
_RELEASE: Final = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) "
    "else return 0 end"
)
_PENDING_TRIES: Final = 3  # attempts of pending() on connection errors (stale pooled connections)

EntryId = bytes | str


def _validate_seconds(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(
            f"RedisStreamsTransport({name}=...) must be a number of seconds > 0, got {value!r}"
        )
    return float(value)


def _safe_url(url: str) -> str:
    """*url* without its password, for messages and status."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + host))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _default_consumer() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class _Publish:
    """One event waiting to be stored, and how that went."""

    __slots__ = ("done", "error", "payload", "waiter")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.done = False
        self.error: BaseException | None = None
        # Resolved when this publish is stored, or when its publisher must take over sending.
        self.waiter: asyncio.Future[None] | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Consumer:
    """The bookkeeping of one ``consume`` call."""

    __slots__ = ("acks", "claim_cursor", "closed", "unacked", "undelivered", "wake")

    def __init__(self) -> None:
        self.unacked: set[EntryId] = set()  # read, not yet acked: kept from going idle
        self.undelivered: deque[tuple[EntryId, Any]] = deque()  # read, not handed to the bus
        self.acks: deque[EntryId] = deque()  # settled by the bus, XACK not sent yet
        self.claim_cursor: EntryId = "0-0"
        self.closed = False
        self.wake: anyio.Event | None = None

    def push(self, entry_id: EntryId) -> None:
        self.acks.append(entry_id)
        if self.wake is not None:
            self.wake.set()

    async def wait(self) -> None:
        while not self.acks:
            self.wake = anyio.Event()
            await self.wake.wait()
            self.wake = None


@final
class RedisStreamsTransport:
    """Carries a bus's events through a Redis stream (``pip install 'eventbus[redis]'``).

    Each subscription name becomes a consumer group, so processes that
    subscribe with the same name share the work, and every subscription
    sees every event. Delivery is at least once: an entry is acknowledged
    after the bus settles its event; the entries of a process that dies are
    taken over by another consumer of the group after ``claim_idle``.

    Args:
        url: the Redis URL (``redis://``, ``rediss://``, ``unix://``).
        stream: the stream key.
        maxlen: cap the stream at about this many entries (``XADD MAXLEN
            ~``); ``None`` keeps every entry. Entries trimmed before a group
            read them are lost to that group: size it well above the
            largest backlog you expect.
        claim_idle: seconds an entry must have been idle (its consumer
            silent) before another consumer takes it over: the redelivery
            delay after a crash. Live consumers refresh their entries every
            third of it.
        consumer: this process's consumer name within each group; default
            ``<host>-<pid>-<random>``, unique per transport. Two live
            transports must not share one.
        batch_size: how many entries one read takes at most (default 128).
            Larger batches cost fewer round trips; smaller ones leave more
            entries for the other processes sharing the subscription.
        publish_timeout: seconds :meth:`send` waits for Redis to store an
            event before it fails with :class:`~eventbus.TransportError`.
        client_options: extra keyword arguments for
            ``redis.asyncio.Redis.from_url`` (password, TLS, timeouts). A
            ``socket_timeout`` must exceed the read's ``BLOCK`` time
            (``min(2, claim_idle / 2)`` seconds). ``socket_connect_timeout``
            defaults to 5 seconds. Publishing uses a second connection
            pool, without a ``socket_timeout`` unless you give one:
            ``publish_timeout`` bounds each of its round trips (redis-py
            would otherwise arm a timer for every reply it reads).

    During an outage, :meth:`send` raises :class:`~eventbus.TransportError`
    (the client's exception chained) and consumers retry with backoff;
    redis-py reconnects on the next command. :meth:`status` tells whether
    the last command succeeded, how often the connection came back, and
    the last error.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       ``send`` and ``start`` raise :class:`~eventbus.TransportError`;
       ``publish_timeout`` and :meth:`status` were added.
    """

    __slots__ = (
        "_batch_size",
        "_block_ms",
        "_claim_idle",
        "_claim_interval",
        "_client",
        "_client_options",
        "_consumer",
        "_flushing",
        "_late",
        "_maxlen",
        "_outbox",
        "_publish_timeout",
        "_publisher",
        "_status",
        "_stream",
        "_unknown",
        "_url",
        "_xadd_head",
    )

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        stream: str = "eventbus:events",
        maxlen: int | None = None,
        claim_idle: float = 30.0,
        consumer: str | None = None,
        batch_size: int = 128,
        publish_timeout: float = 10.0,
        client_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError(
                f"RedisStreamsTransport(url=...) must be a non-empty string, got {url!r}"
            )
        if not isinstance(stream, str) or not stream:
            raise ValueError(
                f"RedisStreamsTransport(stream=...) must be a non-empty string, got {stream!r}"
            )
        if maxlen is not None and (
            isinstance(maxlen, bool) or not isinstance(maxlen, int) or maxlen < 1
        ):
            raise ValueError(
                f"RedisStreamsTransport(maxlen=...) must be an int >= 1 or None, got {maxlen!r}"
            )
        if consumer is not None and (not isinstance(consumer, str) or not consumer):
            raise ValueError(
                f"RedisStreamsTransport(consumer=...) must be a non-empty string or None, got {consumer!r}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"RedisStreamsTransport(batch_size=...) must be an int >= 1, got {batch_size!r}"
            )
        if client_options is not None and not isinstance(client_options, Mapping):
            raise TypeError(
                "RedisStreamsTransport(client_options=...) takes a mapping of "
                f"redis.asyncio.Redis.from_url() keyword arguments, got {type(client_options).__name__}"
            )
        self._url = url
        self._stream = stream
        self._maxlen = maxlen
        self._claim_idle = _validate_seconds("claim_idle", claim_idle)
        self._claim_interval = max(self._claim_idle / 2, 0.05)
        self._block_ms = max(1, int(min(_MAX_BLOCK, self._claim_idle / 2) * 1000))
        self._consumer = consumer if consumer is not None else _default_consumer()
        self._batch_size = batch_size
        self._publish_timeout = _validate_seconds("publish_timeout", publish_timeout)
        self._client_options: dict[str, Any] = {
            "socket_connect_timeout": 5.0,
            **(client_options or {}),
        }
        self._status = ConnectionTracker("redis", _safe_url(url))
        # Arguments as bytes (redis-py passes bytes on; a str goes through four type checks
        # and an encode), in the client's encoding; the command name stays a str, as
        # redis-py looks its reply handling up by it.
        encoding = str(self._client_options.get("encoding", "utf-8"))
        try:
            key, field = stream.encode(encoding), FIELD.encode(encoding)
        except (LookupError, UnicodeError) as exc:
            raise ValueError(
                f"RedisStreamsTransport: the client's encoding {encoding!r} cannot write stream "
                f"key {stream!r} ({exc}); pass client_options={{'encoding': 'utf-8'}} or leave it out"
            ) from None
        trim = () if maxlen is None else (b"MAXLEN", b"~", str(maxlen).encode())
        self._xadd_head: tuple[str | bytes, ...] = ("XADD", key, *trim, b"*", field)
        self._outbox: list[_Publish] = []  # published, not yet sent to Redis
        self._flushing = False
        self._client: redis.asyncio.Redis | None = None
        # Publishing has a client of its own, without a socket timeout unless one is given:
        # redis-py arms a timer for every reply it reads (every XADD of a pipeline), and
        # publish_timeout bounds each round trip already.
        self._publisher: redis.asyncio.Redis | None = None
        self._late: list[tuple[str, EntryId]] = []  # (group, id) acked after their consumer stopped
        self._unknown: set[tuple[str, str]] = set()  # (group, event type) already warned about

    def __repr__(self) -> str:
        return (
            f"RedisStreamsTransport({self._status.url!r}, stream={self._stream!r}, "
            f"consumer={self._consumer!r})"
        )

    @property
    def stream(self) -> str:
        """The stream key."""
        return self._stream

    @property
    def consumer(self) -> str:
        """This transport's consumer name within each group."""
        return self._consumer

    def status(self) -> TransportStatus:
        """The connection's state: working or not, reconnections, the last error.

        .. versionadded:: 0.2
        """
        return self._status.snapshot()

    def _failed(self, exc: BaseException) -> None:
        self._status.down(exc)

    def _worked(self) -> None:
        if not self._status.connected and self._client is not None:
            self._status.up(again=True)
            logger.info("Redis at %s answers again", self._status.url)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Connect and check the server version.

        Raises:
            RuntimeError: already started, not running on asyncio, or the
                server is older than Redis 6.2.
            TransportError: Redis could not be reached (a ``ConnectionError``).
        """
        if self._client is not None:
            raise RuntimeError("this RedisStreamsTransport is already started; use one per Bus")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "RedisStreamsTransport needs anyio's asyncio backend (redis.asyncio is asyncio-based)"
            ) from None
        client = redis.asyncio.Redis.from_url(self._url, **self._client_options)
        try:
            info = await client.info("server")
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            await self._close_quietly(client)
            self._status.down(exc)
            raise TransportError(
                f"RedisStreamsTransport could not reach Redis at {self._status.url}: {exc}; "
                "is redis-server running and reachable?"
            ) from exc
        except BaseException:
            await self._close_quietly(client)
            raise
        version = _parse_version(info.get("redis_version"))
        if version is not None and version < _MIN_VERSION:
            await self._close_quietly(client)
            raise RuntimeError(
                f"Redis at {self._url} is version {info.get('redis_version')}; "
                "RedisStreamsTransport needs Redis 6.2 or later (XAUTOCLAIM)"
            )
        options = self._client_options
        if "socket_timeout" not in options:
            options = {**options, "socket_timeout": None}
        self._publisher = redis.asyncio.Redis.from_url(self._url, **options)  # connects on use
        self._client = client
        self._status.up()

    async def aclose(self) -> None:
        """Send the acknowledgements still due, then disconnect.

        Unacknowledged entries stay in their group's pending list and are
        taken over by another consumer after ``claim_idle``. Safe to call twice.
        """
        client, self._client = self._client, None
        if client is None:
            return
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            await self._close_quietly(publisher)
        self._status.connected = False
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            late, self._late = self._late, []
            by_group: dict[str, list[EntryId]] = {}
            for group, entry_id in late:
                by_group.setdefault(group, []).append(entry_id)
            for group, ids in by_group.items():
                await self._xack(client, group, ids)
        await self._close_quietly(client)

    @staticmethod
    async def _close_quietly(client: redis.asyncio.Redis) -> None:
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            try:
                await client.aclose()
            except (redis.exceptions.RedisError, OSError) as exc:  # pragma: no cover - defensive
                logger.warning("closing the Redis connection failed: %s", exc)

    def _require_publisher(self) -> redis.asyncio.Redis:
        self._require()
        assert self._publisher is not None
        return self._publisher

    def _require(self) -> redis.asyncio.Redis:
        if self._client is None:
            raise RuntimeError(
                "this RedisStreamsTransport is not started; pass it to Bus(transport=...) and "
                "use the bus inside 'async with'"
            )
        return self._client

    # -- publishing --------------------------------------------------------------------

    async def send(self, event: Event) -> None:
        """Append *event* to the stream as CloudEvents JSON; return once Redis stored it.

        Raises:
            SerializationError: a field cannot be encoded as JSON.
            TransportError: Redis did not store it within
                ``publish_timeout`` (unreachable, loading, refused); the
                client's exception is chained. Redis has no publish
                deduplication: a retry after a lost reply may store the
                event twice (handlers see it twice; see ``eventbus.idempotent``).
        """
        client = self._require_publisher()
        slot = _Publish(cloudevent_json(event).encode())  # ASCII: JSON escapes the rest
        self._outbox.append(slot)
        await self._stored(client, slot)
        exc = slot.error
        if exc is not None:
            raise self._append_failed(event, exc) from exc

    async def send_many(self, events: Sequence[Event]) -> None:
        """Append *events* in order, in pipelines; return once Redis stored all of them.

        Every event is encoded first (a :class:`~eventbus.SerializationError`
        sends nothing); the events then go out in pipelines of up to 256
        ``XADD`` per round trip, shared with concurrent ``send`` calls.

        Raises:
            SerializationError: an event cannot be encoded as JSON.
            TransportError: Redis did not store an event (the first such
                event is named; those before it are stored, later ones may
                be). Redis has no publish deduplication: sending the batch
                again may store some events twice.
        """
        client = self._require_publisher()
        slots = [_Publish(cloudevent_json(event).encode()) for event in events]
        if not slots:
            return
        self._outbox.extend(slots)
        await self._stored(client, slots[-1])  # the outbox is sent in order
        for event, slot in zip(events, slots, strict=True):
            if slot.error is not None:
                raise self._append_failed(event, slot.error) from slot.error

    async def _stored(self, client: redis.asyncio.Redis, slot: _Publish) -> None:
        """Wait until *slot* (and every publish queued before it) has been sent."""
        while not slot.done:
            if not self._flushing:
                await self._flush(client, slot)
                continue
            # Wait for this publish only: woken once it is stored, or to take over sending.
            slot.waiter = asyncio.get_running_loop().create_future()
            try:
                await slot.waiter
            except BaseException:
                self._wake_next()  # it may have been chosen to send next: pass that on
                raise
            finally:
                slot.waiter = None

    def _wake_next(self) -> None:
        """Wake the first queued publisher that waits, to send the queue (if none is sending)."""
        if self._flushing:
            return
        for slot in self._outbox:
            if slot.waiter is not None and not slot.waiter.done():
                slot.waiter.set_result(None)
                return

    def _append_failed(self, event: Event, exc: BaseException) -> TransportError:
        return TransportError(
            f"RedisStreamsTransport could not append {type(event).event_type()} event "
            f"{event.id} to stream {self._stream!r} at {self._status.url}: "
            f"{str(exc) or type(exc).__name__}; Redis may be down, loading or unreachable "
            "(the connection is made again on the next command)"
        )

    async def _flush(self, client: redis.asyncio.Redis, mine: _Publish) -> None:
        """Store queued publishes, up to ``_PIPELINE`` per round trip, until *mine* is stored.

        Concurrent publishers share round trips: while one pipeline is on
        its way, the events published meanwhile queue up and go in the next
        one. When this sender's own event is stored it leaves, and wakes the
        first waiting publisher to send the rest. Each publisher is woken
        once Redis has stored its own event (not on every round trip).
        """
        self._flushing = True
        try:
            with anyio.CancelScope(shield=True):  # the others wait on this round trip too
                while self._outbox and not mine.done:
                    batch = self._outbox[:_PIPELINE]
                    del self._outbox[:_PIPELINE]
                    error: BaseException | None = None
                    try:
                        with anyio.fail_after(self._publish_timeout):
                            # XADD written out: redis-py's xadd() rebuilds these arguments
                            # and checks its options on every call.
                            head = self._xadd_head
                            if len(batch) == 1:
                                single: Any = client.execute_command  # untyped in redis-py
                                await single(*head, batch[0].payload)
                            else:
                                pipe = client.pipeline(transaction=False)
                                command: Any = pipe.execute_command
                                for slot in batch:
                                    command(*head, slot.payload)
                                await pipe.execute()
                    except (redis.exceptions.RedisError, OSError, TimeoutError) as exc:
                        error = exc
                        self._failed(exc)
                    else:
                        self._worked()
                    for slot in batch:
                        slot.error = error
                        slot.done = True
                        slot.wake()
        finally:
            self._flushing = False
            if self._outbox:
                self._wake_next()  # a waiting publisher takes over

    # -- consuming ---------------------------------------------------------------------

    async def _create_group(self, client: redis.asyncio.Redis, group: str) -> None:
        try:
            await client.xgroup_create(self._stream, group, id="$", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def consume(
        self,
        group: str,
        deliver: Deliver,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Deliver the events of subscription *group* until cancelled.

        Creates the consumer group (starting at new entries) if needed, then
        reports started. Reads at most ``batch_size`` entries at a time,
        taking over entries idle for ``claim_idle`` (crashed consumers), and
        awaits ``deliver(event, ack)`` for each; ``ack()`` queues the
        ``XACK``, sent by a task of this consumer. On cancellation,
        acknowledgements already due are sent, entries not yet handed to
        the bus are marked idle (taken over at once by others), and entries
        the bus holds unsettled are left to be taken over after
        ``claim_idle``. A consumer left without pending entries is removed
        from the group.

        Raises:
            ConnectionError: the client was closed.
        """
        client = self._require()
        await self._create_group(client, group)
        await self._consume(client, group, deliver, task_status=task_status)

    async def _consume(
        self,
        client: redis.asyncio.Redis,
        group: str,
        deliver: Deliver,
        *,
        take_over: bool = False,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        state = _Consumer()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._ack_loop, client, group, state)
                tg.start_soon(self._heartbeat_loop, client, group, state)
                task_status.started()
                await self._read_loop(client, group, deliver, state, take_over=take_over)
        finally:
            state.closed = True
            with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
                await self._stop_consumer(client, group, state)

    async def consume_ordered(
        self,
        group: str,
        deliver: Deliver,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Like :meth:`consume`, but only one process of the group consumes at a time.

        For subscriptions with ``ordered_by``: the processes of the group
        compete for an owner key (``<stream>:owner:<group>``, ``SET NX`` with
        a time to live of ``claim_idle``, renewed every third of it); the
        owner consumes, the others wait. A new owner first takes over every
        entry the group left pending -- a dead owner's -- oldest first, and
        only then reads new entries, so the events of one key are handled
        in stream order across processes (at least once: an entry handled
        but not acknowledged before a crash is handled again).

        .. versionadded:: 0.2
        """
        client = self._require()
        await self._create_group(client, group)
        task_status.started()
        owner_key = f"{self._stream}:owner:{group}"
        ttl_ms = max(1, int(self._claim_idle * 1000))
        while True:
            while not await self._try_own(client, owner_key, ttl_ms):  # noqa: ASYNC110 - a key in Redis
                await anyio.sleep(self._claim_idle / 3)
            logger.info(
                "consumer %r owns ordered group %r of stream %r now",
                self._consumer,
                group,
                self._stream,
            )
            try:
                with anyio.CancelScope() as owned:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(self._keep_owning, client, owner_key, ttl_ms, owned)
                        await self._consume(client, group, deliver, take_over=True)
            finally:
                with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
                    try:
                        await client.eval(_RELEASE, 1, owner_key, self._consumer)
                    except (redis.exceptions.RedisError, OSError) as exc:
                        logger.debug("releasing ordered group %r failed: %s", group, exc)
            logger.warning(
                "consumer %r lost the ownership of ordered group %r; waiting to own it again",
                self._consumer,
                group,
            )

    async def _try_own(self, client: redis.asyncio.Redis, key: str, ttl_ms: int) -> bool:
        try:
            return bool(await client.set(key, self._consumer, nx=True, px=ttl_ms))
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
            self._failed(exc)
            return False

    async def _keep_owning(
        self, client: redis.asyncio.Redis, key: str, ttl_ms: int, owned: anyio.CancelScope
    ) -> None:
        """Renew the ownership every third of its time to live; stop consuming once it is lost."""
        while True:
            await anyio.sleep(ttl_ms / 3000)
            try:
                renewed = await client.eval(_RENEW, 1, key, self._consumer, ttl_ms)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                continue  # still ours until it expires; the next renewal may work
            if not renewed:
                owned.cancel()
                return

    async def _stop_consumer(
        self, client: redis.asyncio.Redis, group: str, state: _Consumer
    ) -> None:
        try:
            if state.acks:
                acked = list(state.acks)
                state.acks.clear()
                state.unacked.difference_update(acked)
                await self._xack(client, group, acked)
            if state.undelivered:
                ids: list[Any] = [entry_id for entry_id, _ in state.undelivered]
                state.undelivered.clear()
                state.unacked.difference_update(ids)
                # Idle for claim_idle already: the next XAUTOCLAIM of another consumer takes them.
                await client.xclaim(
                    self._stream,
                    group,
                    self._consumer,
                    0,
                    ids,
                    idle=int(self._claim_idle * 1000),
                    justid=True,
                )
            if not state.unacked:
                await self._remove_if_idle(client, group)
        except (redis.exceptions.RedisError, OSError) as exc:
            logger.debug("stopping Redis consumer %r of group %r: %s", self._consumer, group, exc)

    async def _remove_if_idle(self, client: redis.asyncio.Redis, group: str) -> None:
        """Delete this consumer from *group* if it holds no pending entries (none are lost)."""
        consumers = await client.xinfo_consumers(self._stream, group)
        for info in consumers:
            if _text(info.get("name")) == self._consumer:
                if int(info.get("pending", 0)) == 0:
                    await client.xgroup_delconsumer(self._stream, group, self._consumer)
                return

    async def _read_loop(
        self,
        client: redis.asyncio.Redis,
        group: str,
        deliver: Deliver,
        state: _Consumer,
        *,
        take_over: bool = False,
    ) -> None:
        backoff = 0.0
        next_claim = anyio.current_time()
        while True:
            try:
                if take_over:  # every entry left pending, oldest first, before any new one
                    entries = await self._reclaim(client, group, state, min_idle=0.0)
                    take_over = _text(state.claim_cursor) != "0-0"
                elif anyio.current_time() >= next_claim:
                    next_claim = anyio.current_time() + self._claim_interval
                    entries = await self._reclaim(client, group, state)
                    if not entries:
                        entries = await self._read(client, group)
                else:
                    entries = await self._read(client, group)
            except redis.exceptions.ResponseError as exc:
                if "NOGROUP" not in str(exc):
                    raise
                logger.warning(
                    "Redis stream %r lost consumer group %r; creating it again", self._stream, group
                )
                await self._create_group(client, group)
                continue
            except (
                redis.exceptions.ConnectionError,
                redis.exceptions.TimeoutError,
                OSError,
            ) as exc:
                if self._client is not client:
                    raise TransportError(
                        f"the Redis client for {self._status.url} was closed; subscription "
                        f"{group!r} stopped consuming"
                    ) from exc
                self._failed(exc)
                backoff = min(_MAX_BACKOFF, max(0.1, backoff * 2))
                logger.warning(
                    "reading Redis stream %r for group %r failed (%s); retrying in %.1fs",
                    self._stream,
                    group,
                    exc,
                    backoff,
                )
                await anyio.sleep(backoff)
                continue
            backoff = 0.0
            self._worked()
            for entry_id, _ in entries:
                state.unacked.add(entry_id)
            state.undelivered.extend(entries)
            while state.undelivered:
                entry_id, fields = state.undelivered.popleft()
                ack = self._make_ack(group, state, entry_id)
                event = self._decode(group, entry_id, fields)
                if event is None:
                    ack()
                    continue
                await deliver(event, ack)

    async def _read(self, client: redis.asyncio.Redis, group: str) -> list[tuple[EntryId, Any]]:
        response = await client.xreadgroup(
            group,
            self._consumer,
            {self._stream: ">"},
            count=self._batch_size,
            block=self._block_ms,
        )
        return _entries(response)

    async def _reclaim(
        self,
        client: redis.asyncio.Redis,
        group: str,
        state: _Consumer,
        *,
        min_idle: float | None = None,
    ) -> list[tuple[EntryId, Any]]:
        """Take over entries idle for ``claim_idle`` (their consumer is gone); one page."""
        response = await client.xautoclaim(
            self._stream,
            group,
            self._consumer,
            int((self._claim_idle if min_idle is None else min_idle) * 1000),
            start_id=state.claim_cursor,
            count=self._batch_size,
        )
        state.claim_cursor = response[0]
        claimed = []
        for item in response[1] or []:
            entry_id, fields = item[0], item[1]
            if entry_id is None or fields is None:  # deleted or trimmed meanwhile (Redis 6.2)
                continue
            if entry_id in state.unacked:  # still ours, delivered here already
                continue
            claimed.append((entry_id, fields))
        if claimed:
            logger.info(
                "consumer %r took over %d idle entr%s of group %r (a consumer stopped answering)",
                self._consumer,
                len(claimed),
                "y" if len(claimed) == 1 else "ies",
                group,
            )
        return claimed

    def _make_ack(self, group: str, state: _Consumer, entry_id: EntryId) -> Ack:
        done = False

        def ack() -> None:
            nonlocal done
            if done:
                return
            done = True
            if state.closed:
                state.unacked.discard(entry_id)
                self._late.append((group, entry_id))  # sent by aclose()
            else:
                state.push(entry_id)

        return ack

    async def _ack_loop(self, client: redis.asyncio.Redis, group: str, state: _Consumer) -> None:
        while True:
            await state.wait()
            ids = list(state.acks)
            state.acks.clear()
            state.unacked.difference_update(ids)
            await self._xack(client, group, ids)

    async def _xack(self, client: redis.asyncio.Redis, group: str, ids: Sequence[EntryId]) -> None:
        try:
            await client.xack(self._stream, group, *ids)
        except (redis.exceptions.RedisError, OSError) as exc:
            logger.warning(
                "XACK of %d entr%s in group %r failed (%s); they will be delivered again",
                len(ids),
                "y" if len(ids) == 1 else "ies",
                group,
                exc,
            )

    async def _heartbeat_loop(
        self, client: redis.asyncio.Redis, group: str, state: _Consumer
    ) -> None:
        interval = max(self._claim_idle / 3, 0.05)
        while True:
            await anyio.sleep(interval)
            ids: list[Any] = list(state.unacked)
            for start in range(0, len(ids), _CLAIM_CHUNK):
                try:
                    # Claiming our own entries with min-idle 0 resets their idle time.
                    await client.xclaim(
                        self._stream,
                        group,
                        self._consumer,
                        0,
                        ids[start : start + _CLAIM_CHUNK],
                        justid=True,
                    )
                except (redis.exceptions.RedisError, OSError) as exc:
                    logger.debug("idle-time refresh for group %r failed: %s", group, exc)

    def _decode(self, group: str, entry_id: EntryId, fields: Any) -> Event | None:
        data = None
        if isinstance(fields, Mapping):
            data = fields.get(_FIELD_BYTES)
            if data is None:
                data = fields.get(FIELD)
        if data is None:
            logger.error(
                "subscription %r received an entry without a %r field (%s); it was "
                "acknowledged and skipped",
                group,
                FIELD,
                self._where(entry_id),
            )
            return None
        return decode_message(self._unknown, group, data, lambda: self._where(entry_id))

    def _where(self, entry_id: EntryId) -> str:
        return f"stream {self._stream!r} entry {_text(entry_id)}"

    # -- introspection -----------------------------------------------------------------

    async def pending(self, group: str) -> int:
        """Entries of *group* not yet acknowledged: its lag plus its pending list.

        On servers that cannot report the lag (before Redis 7, or after
        entries were deleted), the entries after the group's last delivered
        one are counted, up to 100.

        Raises:
            TransportError: Redis did not answer (after one retry on a fresh
                connection, as pooled connections go stale when Redis restarts).
        """
        for attempt in range(_PENDING_TRIES):
            try:
                return await self._pending(group)
            except (
                redis.exceptions.ConnectionError,
                redis.exceptions.TimeoutError,
                OSError,
            ) as exc:
                self._failed(exc)
                if attempt + 1 == _PENDING_TRIES:
                    raise TransportError(
                        f"RedisStreamsTransport could not read the backlog of group {group!r} "
                        f"of stream {self._stream!r} at {self._status.url}: {exc}"
                    ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _pending(self, group: str) -> int:
        client = self._require()
        try:
            groups = await client.xinfo_groups(self._stream)
        except redis.exceptions.ResponseError:  # no such key yet
            return 0
        self._worked()
        for info in groups:
            if _text(info.get("name")) != group:
                continue
            pending = int(info.get("pending") or 0)
            lag = info.get("lag")
            if lag is None:
                last = _text(info.get("last-delivered-id") or "0-0")
                after = await client.xrange(self._stream, min=f"({last}", max="+", count=_LAG_SCAN)
                lag = len(after or ())
            return pending + int(lag)
        return 0


def _entries(response: Any) -> list[tuple[EntryId, Any]]:
    """The (id, fields) pairs of an XREADGROUP reply, in RESP2 or RESP3 shape."""
    if not response:
        return []
    streams = response.values() if isinstance(response, Mapping) else (r[1] for r in response)
    out: list[tuple[EntryId, Any]] = []
    for entries in streams:
        if entries and isinstance(entries[0], list):  # RESP3 legacy shape: [[entries]]
            entries = entries[0]
        for item in entries or ():
            if item is not None and item[0] is not None:
                out.append((item[0], item[1]))
    return out


def _parse_version(text: Any) -> tuple[int, int] | None:
    try:
        major, minor, *_ = _text(text).split(".")
        return int(major), int(minor)
    except (ValueError, AttributeError):
        return None
