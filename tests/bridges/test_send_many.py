"""send_many on the real brokers: a batch the broker refuses raises TransportError naming an event."""

from __future__ import annotations

import attrs
import pytest

from eventbus import Bus, Event, SendsMany, TransportError

from . import test_nats, test_redis

pytestmark = pytest.mark.integration


@attrs.frozen
class Ping(Event, type_name="tests.bridges.send_many.Ping"):
    n: int


async def test_nats_batch_to_a_deleted_stream_fails_naming_the_first_event(nats_url: str) -> None:
    async with test_nats.transport(nats_url, publish_timeout=2.0) as transport:
        assert isinstance(transport, SendsMany)
        async with Bus(transport=transport) as bus:
            stored = await bus.publish_many([Ping(i) for i in range(300)])
            assert len(stored) == 300
            await test_nats.delete_stream(nats_url, transport.stream)
            events = [Ping(i) for i in range(50)]
            with pytest.raises(TransportError) as caught:
                await bus.publish_many(events)
    assert events[0].id in str(caught.value)
    assert transport.stream in str(caught.value)
    assert caught.value.__cause__ is not None


async def test_redis_batch_refused_by_the_server_fails_naming_the_first_event(
    redis_url: str,
) -> None:
    import redis.asyncio

    async with test_redis.transport(redis_url) as transport:
        assert isinstance(transport, SendsMany)
        async with Bus(transport=transport) as bus:
            stored = await bus.publish_many([Ping(i) for i in range(300)])
            assert len(stored) == 300
            client = redis.asyncio.Redis.from_url(redis_url)
            try:  # the stream key now holds a string: every XADD is refused (WRONGTYPE)
                await client.delete(transport.stream)
                await client.set(transport.stream, "not a stream")
            finally:
                await client.aclose()
            events = [Ping(i) for i in range(50)]
            with pytest.raises(TransportError) as caught:
                await bus.publish_many(events)
    assert events[0].id in str(caught.value)
    assert caught.value.__cause__ is not None


async def test_redis_publishers_cancelled_while_waiting_do_not_stall_the_others(
    redis_url: str,
) -> None:
    """Publishers waiting for a shared pipeline may be cancelled; the rest are still stored."""
    import anyio

    async with test_redis.transport(redis_url) as transport, Bus(transport=transport) as bus:
        first_stored = anyio.Event()
        stored: list[int] = []

        async def publish(n: int) -> None:
            await bus.publish(Ping(n))
            stored.append(n)
            first_stored.set()

        with anyio.fail_after(30):
            async with anyio.create_task_group() as survivors:
                with anyio.CancelScope() as doomed:
                    async with anyio.create_task_group() as cancelled:
                        for n in range(0, 400, 2):
                            cancelled.start_soon(publish, n)
                        for n in range(1, 400, 2):
                            survivors.start_soon(publish, n)
                        await first_stored.wait()
                        doomed.cancel()
    assert {n for n in stored if n % 2} == set(range(1, 400, 2))
