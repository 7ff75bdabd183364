"""Unsubscribing over a broker stops the consumer, even one subscribed a moment before.

A subscription made while the bus runs starts its workers and registers its
broker consumer in the background. Unsubscribed before that finished, both
used to be missed: the consumer kept reading the group's events and the
workers ran the removed handler on them, or left them unacknowledged until
the redelivery delay. Here that delay is a minute: every event must reach
the other process within seconds, and the removed handler none.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import attrs
import pytest

from eventbus import Bus, Event, Transport

from . import test_nats, test_redis

pytestmark = pytest.mark.integration

EVENTS = 500
REDELIVERY = 60.0  # seconds: far longer than the test may wait


@attrs.frozen
class Ping(Event, type_name="tests.bridges.unsubscribe.Ping"):
    n: int


@asynccontextmanager
async def nats_pair(url: str) -> AsyncIterator[tuple[Transport, Transport]]:
    from eventbus.bridges.nats import NatsTransport

    namespace = os.urandom(6).hex()
    stream, prefix = test_nats.stream_name(namespace), test_nats.prefix(namespace)
    try:
        yield (
            NatsTransport(url, stream=stream, subject_prefix=prefix, ack_wait=REDELIVERY),
            NatsTransport(url, stream=stream, subject_prefix=prefix, ack_wait=REDELIVERY),
        )
    finally:
        await test_nats.delete_stream(url, stream)


@asynccontextmanager
async def redis_pair(url: str) -> AsyncIterator[tuple[Transport, Transport]]:
    from eventbus.bridges.redis import RedisStreamsTransport

    key = test_redis.stream_key(os.urandom(6).hex())
    try:
        yield (
            RedisStreamsTransport(url, stream=key, claim_idle=REDELIVERY),
            RedisStreamsTransport(url, stream=key, claim_idle=REDELIVERY),
        )
    finally:
        await test_redis.delete_stream(url, key)


async def unsubscribed_at_once_takes_nothing(first: Transport, second: Transport) -> None:
    seen: set[int] = set()
    removed: list[int] = []
    everything = anyio.Event()

    async def handle(event: Ping) -> None:
        seen.add(event.n)
        if len(seen) == EVENTS:
            everything.set()

    async def gone(event: Ping) -> None:
        removed.append(event.n)

    async with Bus(transport=first) as publisher:
        publisher.subscribe(Ping, gone, name="shared")
        await publisher.unsubscribe("shared")  # its consumer was still starting
        other = Bus(transport=second)
        other.subscribe(Ping, handle, name="shared")
        async with other:
            await publisher.publish_many([Ping(n) for n in range(EVENTS)])
            with anyio.fail_after(20):  # a third of the redelivery delay
                await everything.wait()
        assert "shared" not in publisher.metrics()
    assert seen == set(range(EVENTS))
    assert removed == []  # the removed handler never ran


async def test_nats_subscription_removed_at_once_leaves_the_group_its_events(
    nats_url: str,
) -> None:
    async with nats_pair(nats_url) as (first, second):
        await unsubscribed_at_once_takes_nothing(first, second)


async def test_redis_subscription_removed_at_once_leaves_the_group_its_events(
    redis_url: str,
) -> None:
    async with redis_pair(redis_url) as (first, second):
        await unsubscribed_at_once_takes_nothing(first, second)
