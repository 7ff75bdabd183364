"""RedisStreamsTransport: the conformance suite and Redis specifics, against a real Redis."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio
import attrs
import pytest

try:
    import redis.asyncio

    from eventbus.bridges.redis import FIELD, RedisStreamsTransport
except ImportError:  # pragma: no cover - depends on what is installed
    if os.environ.get("EVENTBUS_REQUIRE_SERVICES", "") == "1":
        raise
    pytest.skip("redis is not installed: pip install 'eventbus[redis]'", allow_module_level=True)

from eventbus import Bus, Event, Transport
from eventbus.testing import (
    TRANSPORT_CASES,
    TransportFactory,
    TransportFeatures,
    Wire,
    check_transport,
)

from ._poison import poison_scenario

CLAIM_IDLE = 1.0  # seconds: the redelivery delay of the transports made here
FEATURES = (
    TransportFeatures.REDELIVERY
    | TransportFeatures.ORDERED
    | TransportFeatures.ORDERED_ACROSS_PROCESSES
)


@attrs.frozen
class Ping(Event, type_name="tests.redis.Ping"):
    n: int


def stream_key(namespace: str) -> str:
    return f"eventbus-test:{namespace}"


@asynccontextmanager
async def client(url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A client of its own, for checks behind the transport's back."""
    connection = redis.asyncio.Redis.from_url(url)
    try:
        yield connection
    finally:
        await connection.aclose()


async def delete_stream(url: str, key: str) -> None:
    async with client(url) as r:
        await r.delete(key)


def factory(url: str) -> TransportFactory:
    @asynccontextmanager
    async def make(namespace: str) -> AsyncIterator[Transport]:
        try:
            yield RedisStreamsTransport(url, stream=stream_key(namespace), claim_idle=CLAIM_IDLE)
        finally:
            await delete_stream(url, stream_key(namespace))

    return make


def wire(url: str) -> Wire:
    async def put(namespace: str, payload: bytes) -> None:
        async with client(url) as r:
            await r.xadd(stream_key(namespace), {FIELD: payload})

    async def read(namespace: str) -> Sequence[bytes]:
        async with client(url) as r:
            entries: list[Any] = await r.xrange(stream_key(namespace)) or []
        return [bytes(fields[FIELD.encode()]) for _, fields in entries]

    return Wire(put=put, read=read)


@asynccontextmanager
async def transport(url: str, **options: Any) -> AsyncIterator[RedisStreamsTransport]:
    """A transport on a fresh stream key, deleted afterwards."""
    key = stream_key(os.urandom(6).hex())
    try:
        yield RedisStreamsTransport(url, stream=key, claim_idle=CLAIM_IDLE, **options)
    finally:
        await delete_stream(url, key)


@pytest.mark.integration
async def test_poison_messages_are_dead_lettered_and_consuming_goes_on(redis_url: str) -> None:
    """A poison message is dead-lettered once where it may belong, acked; good events flow."""
    await poison_scenario(factory(redis_url), wire(redis_url))


# -- the conformance suite ----------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("case", TRANSPORT_CASES)
async def test_conformance(redis_url: str, case: str) -> None:
    """Each conformance case that Redis Streams can keep passes (no publish deduplication)."""
    report = await check_transport(
        factory(redis_url), FEATURES, wire=wire(redis_url), cases=[case], case_timeout=20
    )
    if case == "deduplicated_by_event_id":
        assert report.skipped == ((case, "needs TransportFeatures.DEDUPLICATION"),)
    else:
        assert report.passed == (case,)


# -- options ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("stream", "", "stream"),
        ("maxlen", 0, "maxlen"),
        ("claim_idle", -1, "claim_idle"),
        ("consumer", "", "consumer"),
        ("batch_size", 0, "batch_size"),
    ],
)
def test_invalid_options_are_refused(option: str, value: object, message: str) -> None:
    """Invalid settings fail at construction, naming the option."""
    with pytest.raises(ValueError, match=message):
        RedisStreamsTransport(**{option: value})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("encoding", "stream"), [("no-such-codec", "events"), ("ascii", "événements")]
)
def test_an_encoding_that_cannot_write_the_stream_key_is_refused(
    encoding: str, stream: str
) -> None:
    """The key is encoded once, at construction: a bad client encoding fails there, named."""
    with pytest.raises(ValueError, match=f"encoding '{encoding}' cannot write stream key"):
        RedisStreamsTransport(stream=stream, client_options={"encoding": encoding})


@pytest.mark.integration
async def test_a_non_ascii_stream_key_round_trips(redis_url: str) -> None:
    """A key outside ASCII is written in the client's encoding, and read back."""
    key = f"ebtest:événements:{os.urandom(4).hex()}"
    seen: list[int] = []
    try:
        bus = Bus(transport=RedisStreamsTransport(redis_url, stream=key))
        bus.subscribe(Ping, lambda event: seen.append(event.n), name="g")
        async with bus:
            await bus.publish(Ping(1))
            await bus.drain()
    finally:
        await delete_stream(redis_url, key)
    assert seen == [1]


def test_each_transport_has_its_own_consumer_name() -> None:
    """Without consumer=..., two transports (two processes) never share a consumer name."""
    assert RedisStreamsTransport().consumer != RedisStreamsTransport().consumer
    assert RedisStreamsTransport(consumer="worker-1").consumer == "worker-1"


async def test_an_unreachable_server_fails_start_clearly() -> None:
    """start() fails with a ConnectionError naming the URL."""
    unreachable = RedisStreamsTransport("redis://127.0.0.1:1/0")
    with pytest.raises(ConnectionError, match=r"could not reach Redis at redis://127\.0\.0\.1:1/0"):
        await unreachable.start()


# -- Redis specifics ----------------------------------------------------------------------------


@pytest.mark.integration
async def test_entries_hold_one_cloudevent_field(redis_url: str) -> None:
    """Each event is one stream entry whose only field is the CloudEvents JSON."""
    async with transport(redis_url) as t:
        async with Bus(transport=t) as bus:
            await bus.publish(Ping(1))
        async with client(redis_url) as r:
            entries: list[Any] = await r.xrange(t.stream) or []
    assert [set(fields) for _, fields in entries] == [{FIELD.encode()}]


@pytest.mark.integration
async def test_subscriptions_are_consumer_groups(redis_url: str) -> None:
    """A subscription's name is a consumer group of the stream; a stopped consumer leaves it."""
    async with transport(redis_url) as t:
        bus = Bus(transport=t)

        async def handle(event: Ping) -> None:
            pass

        bus.subscribe(Ping, handle, name="orders.receipts")
        async with bus:
            await bus.publish(Ping(1))
            await bus.drain()
        async with client(redis_url) as r:
            groups = await r.xinfo_groups(t.stream)
            consumers = await r.xinfo_consumers(t.stream, "orders.receipts")
    assert [(g["name"], g["pending"]) for g in groups] == [(b"orders.receipts", 0)]
    assert consumers == []  # removed on a clean stop: it held nothing


@pytest.mark.integration
async def test_maxlen_caps_the_stream(redis_url: str) -> None:
    """With maxlen, XADD trims the stream (approximately) to about that many entries."""
    async with transport(redis_url, maxlen=10) as t:
        async with Bus(transport=t) as bus:
            for i in range(300):
                await bus.publish(Ping(i))
        async with client(redis_url) as r:
            length = await r.xlen(t.stream)
    assert length < 300


@pytest.mark.integration
async def test_pending_counts_past_the_last_delivered_entry_without_lag(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When Redis cannot report a group's lag, the undelivered entries are counted instead."""
    async with transport(redis_url) as t:
        await t.start()
        try:
            async with client(redis_url) as r:
                await r.xgroup_create(t.stream, "orders", id="$", mkstream=True)
            for i in range(3):
                await t.send(Ping(i))
            assert await t.pending("orders") == 3
            assert t._client is not None
            real = t._client.xinfo_groups

            async def without_lag(name: str) -> list[dict[str, Any]]:
                return [{k: v for k, v in g.items() if k != "lag"} for g in await real(name)]

            monkeypatch.setattr(t._client, "xinfo_groups", without_lag)
            assert await t.pending("orders") == 3
            assert await t.pending("no-such-group") == 0
        finally:
            await t.aclose()


@pytest.mark.integration
async def test_a_long_handler_is_not_taken_over(redis_url: str) -> None:
    """Idle-time refreshes keep an event held past claim_idle from going to another process."""
    async with transport(redis_url) as one:
        two = RedisStreamsTransport(redis_url, stream=one.stream, claim_idle=CLAIM_IDLE)
        calls: list[str] = []

        async def slow(event: Ping) -> None:
            calls.append(event.id)
            await anyio.sleep(2.5 * CLAIM_IDLE)  # held well past claim_idle

        bus_one, bus_two = Bus(transport=one), Bus(transport=two)
        bus_one.subscribe(Ping, slow, name="slow")
        bus_two.subscribe(Ping, slow, name="slow")
        async with bus_one, bus_two:
            event = Ping(1)
            await bus_one.publish(event)
            await bus_one.drain()
            await bus_two.drain()
    assert calls == [event.id]


@pytest.mark.integration
async def test_a_crash_exit_leaves_held_events_pending(redis_url: str) -> None:
    """A bus leaving with an error leaves every event it held pending on the broker, unacknowledged."""
    async with transport(redis_url) as t:
        started = anyio.Event()
        bus = Bus(transport=t)

        async def stuck(event: Ping) -> None:
            started.set()
            await anyio.sleep_forever()

        bus.subscribe(Ping, stuck, name="stuck")

        async def crash() -> None:
            async with bus:
                for i in range(3):
                    await bus.publish(Ping(i))
                await started.wait()
                raise RuntimeError("crash")

        with pytest.raises(RuntimeError, match="crash"):
            await crash()
        letters = list(bus.dead_letters)
        assert letters == []  # held by the broker: left pending, not dead-lettered
        await t.start()
        try:
            # Nothing was acknowledged: all three are still pending on the broker.
            assert await t.pending("stuck") == 3
        finally:
            await t.aclose()
