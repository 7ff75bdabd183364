"""NatsTransport: the conformance suite and JetStream specifics, against a real NATS server."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress

import anyio
import attrs
import pytest

try:
    import nats
    import nats.js.errors
    from nats.js.api import AckPolicy, DeliverPolicy

    from eventbus.bridges.nats import NatsTransport
except ImportError:  # pragma: no cover - depends on what is installed
    if os.environ.get("EVENTBUS_REQUIRE_SERVICES", "") == "1":
        raise
    pytest.skip("nats-py is not installed: pip install 'eventbus[nats]'", allow_module_level=True)

from eventbus import Bus, Event, Transport
from eventbus.testing import (
    TRANSPORT_CASES,
    TransportFactory,
    TransportFeatures,
    Wire,
    check_transport,
)

from ._poison import poison_scenario

ACK_WAIT = 1.0  # seconds: the redelivery delay of the transports made here
FEATURES = (
    TransportFeatures.REDELIVERY
    | TransportFeatures.DEDUPLICATION
    | TransportFeatures.ORDERED
    | TransportFeatures.ORDERED_ACROSS_PROCESSES
)


@attrs.frozen
class Ping(Event, type_name="tests.nats.Ping"):
    n: int


def stream_name(namespace: str) -> str:
    return f"EBTEST_{namespace}"


def prefix(namespace: str) -> str:
    return f"ebtest.{namespace}"


@asynccontextmanager
async def jetstream(url: str) -> AsyncIterator[nats.js.JetStreamContext]:
    """A JetStream context on a connection of its own, for checks behind the transport's back."""
    client = await nats.connect(url)
    try:
        yield client.jetstream()
    finally:
        await client.close()


async def delete_stream(url: str, stream: str) -> None:
    async with jetstream(url) as js:
        for name in (stream, f"KV_{stream}_owners"):  # the events, and ordered-consumer owners
            with suppress(nats.js.errors.NotFoundError):
                await js.delete_stream(name)


def factory(url: str) -> TransportFactory:
    @asynccontextmanager
    async def make(namespace: str) -> AsyncIterator[Transport]:
        try:
            yield NatsTransport(
                url,
                stream=stream_name(namespace),
                subject_prefix=prefix(namespace),
                ack_wait=ACK_WAIT,
            )
        finally:
            await delete_stream(url, stream_name(namespace))

    return make


def wire(url: str) -> Wire:
    async def put(namespace: str, payload: bytes) -> None:
        async with jetstream(url) as js:
            await js.publish(f"{prefix(namespace)}.raw", payload, stream=stream_name(namespace))

    async def read(namespace: str) -> Sequence[bytes]:
        async with jetstream(url) as js:
            state = (await js.stream_info(stream_name(namespace))).state
            out = []
            for seq in range(state.first_seq, state.last_seq + 1):
                message = await js.get_msg(stream_name(namespace), seq)
                out.append(message.data or b"")
            return out

    return Wire(put=put, read=read)


@asynccontextmanager
async def transport(url: str, **options: object) -> AsyncIterator[NatsTransport]:
    """A transport on a fresh stream, deleted afterwards."""
    namespace = os.urandom(6).hex()
    try:
        yield NatsTransport(
            url,
            stream=stream_name(namespace),
            subject_prefix=prefix(namespace),
            ack_wait=ACK_WAIT,
            **options,  # type: ignore[arg-type]
        )
    finally:
        await delete_stream(url, stream_name(namespace))


@pytest.mark.integration
async def test_poison_messages_are_dead_lettered_and_consuming_goes_on(nats_url: str) -> None:
    """A poison message is dead-lettered once where it may belong, acked; good events flow."""
    await poison_scenario(factory(nats_url), wire(nats_url))


# -- the conformance suite ----------------------------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("case", TRANSPORT_CASES)
async def test_conformance(nats_url: str, case: str) -> None:
    """Each conformance case passes on NATS JetStream."""
    report = await check_transport(
        factory(nats_url), FEATURES, wire=wire(nats_url), cases=[case], case_timeout=20
    )
    assert report.passed == (case,)


# -- consumer names --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["orders", "send-receipt_2", "A" * 64])
def test_consumer_name_keeps_safe_names(name: str) -> None:
    """Short names of letters, digits, '-' and '_' are used as they are."""
    assert NatsTransport.consumer_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["orders.send_receipt", "test_x.<locals>.handler", "with space", "a*b>c", "ünïcode", "A" * 65],
)
def test_consumer_name_sanitises_other_names(name: str) -> None:
    """Other names become legal JetStream names with a hash of the original appended."""
    durable = NatsTransport.consumer_name(name)
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,48}-[0-9a-f]{12}", durable)
    assert durable == NatsTransport.consumer_name(name)


def test_consumer_names_stay_distinct_after_sanitising() -> None:
    """Names that sanitise alike ('a.b', 'a b', 'a_b') get different consumer names."""
    names = {NatsTransport.consumer_name(n) for n in ("a.b", "a b", "a_b", "a>b")}
    assert len(names) == 4


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("stream", "has.dot", "stream name"),
        ("subject_prefix", "a..b", "non-empty"),
        ("subject_prefix", "a.>", "wildcard"),
        ("ack_wait", 0, "ack_wait"),
        ("max_deliver", 0, "max_deliver"),
        ("batch_size", 0, "batch_size"),
    ],
)
def test_invalid_options_are_refused(option: str, value: object, message: str) -> None:
    """Invalid settings fail at construction, naming the option."""
    with pytest.raises(ValueError, match=message):
        NatsTransport(**{option: value})  # type: ignore[arg-type]


async def test_an_unreachable_server_fails_start_clearly() -> None:
    """start() gives up after connect_timeout with a ConnectionError naming the URL."""
    unreachable = NatsTransport("nats://127.0.0.1:1", connect_timeout=0.3)
    with pytest.raises(ConnectionError, match=r"could not connect to nats://127\.0\.0\.1:1"):
        await unreachable.start()


# -- JetStream specifics -------------------------------------------------------------------------


@pytest.mark.integration
async def test_colliding_consumer_names_are_refused(nats_url: str) -> None:
    """A subscription name equal to another's sanitised name is refused, not merged."""
    taken = NatsTransport.consumer_name("orders.receipts")
    async with transport(nats_url) as t:
        await t.start()
        try:
            assert await t.pending("orders.receipts") == 0
            with pytest.raises(ValueError, match="both map to the JetStream consumer"):
                await t.pending(taken)
        finally:
            await t.aclose()


@pytest.mark.integration
async def test_events_are_published_with_their_id_as_msg_id(nats_url: str) -> None:
    """Each message goes to <prefix>.<event type> with the event id as Nats-Msg-Id."""
    async with transport(nats_url) as t:
        event = Ping(1)
        async with Bus(transport=t) as bus:
            await bus.publish(event)
        async with jetstream(nats_url) as js:
            message = await js.get_msg(t.stream, 1)
    assert message.subject == f"{t.subject_prefix}.tests.nats.Ping"
    assert message.headers is not None
    assert message.headers["Nats-Msg-Id"] == event.id


@pytest.mark.integration
async def test_subscriptions_are_durable_pull_consumers(nats_url: str) -> None:
    """A subscription's consumer is durable, starts at new events and needs explicit acks."""
    async with transport(nats_url, max_deliver=5) as t:
        bus = Bus(transport=t)

        async def handle(event: Ping) -> None:
            pass

        bus.subscribe(Ping, handle, name="orders.receipts")
        async with bus, jetstream(nats_url) as js:
            info = await js.consumer_info(t.stream, NatsTransport.consumer_name("orders.receipts"))
    config = info.config
    assert config.durable_name == NatsTransport.consumer_name("orders.receipts")
    assert config.deliver_policy == DeliverPolicy.NEW
    assert config.ack_policy == AckPolicy.EXPLICIT
    assert config.ack_wait == ACK_WAIT
    assert config.max_deliver == 5
    assert config.filter_subject == f"{t.subject_prefix}.>"


@pytest.mark.integration
async def test_a_stream_capturing_other_subjects_is_refused(nats_url: str) -> None:
    """An existing stream that does not capture <prefix>.> fails start with the fix."""
    namespace = os.urandom(6).hex()
    async with jetstream(nats_url) as js:
        await js.add_stream(name=stream_name(namespace), subjects=[f"elsewhere.{namespace}"])
    try:
        t = NatsTransport(nats_url, stream=stream_name(namespace), subject_prefix=prefix(namespace))
        with pytest.raises(ValueError, match="do not include"):
            await t.start()
    finally:
        await delete_stream(nats_url, stream_name(namespace))


@pytest.mark.integration
async def test_a_long_handler_is_not_redelivered(nats_url: str) -> None:
    """Heartbeats keep an event held past ack_wait from going to another process."""
    async with transport(nats_url) as one:
        two = NatsTransport(  # a second process on the same stream
            nats_url, stream=one.stream, subject_prefix=one.subject_prefix, ack_wait=ACK_WAIT
        )
        calls: list[str] = []

        async def slow(event: Ping) -> None:
            calls.append(event.id)
            await anyio.sleep(2.5 * ACK_WAIT)  # held well past ack_wait

        bus_one, bus_two = Bus(transport=one), Bus(transport=two)
        bus_one.subscribe(Ping, slow, name="slow")
        bus_two.subscribe(Ping, slow, name="slow")
        async with bus_one, bus_two:
            event = Ping(1)
            await bus_one.publish(event)
            await bus_one.drain()
            await bus_two.drain()
            async with jetstream(nats_url) as js:
                info = await js.consumer_info(one.stream, "slow")
    assert calls == [event.id]
    assert info.num_redelivered == 0


@pytest.mark.integration
async def test_a_crash_exit_leaves_held_events_pending(nats_url: str) -> None:
    """A bus leaving with an error leaves every event it held pending on the broker, unacknowledged."""
    async with transport(nats_url) as t:
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
