"""The NATS transport's publish deadlines: one timer fails every unacknowledged publish in time."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("nats")

from eventbus.bridges.nats import _Deadlines


async def test_an_unacknowledged_publish_fails_with_timeout_error() -> None:
    deadlines = _Deadlines(0.01)
    loop = asyncio.get_running_loop()
    late, answered = loop.create_future(), loop.create_future()
    deadlines.watch(late)
    deadlines.watch(answered)
    answered.set_result("ack")
    async with asyncio.timeout(10):
        with pytest.raises(TimeoutError, match="did not acknowledge"):
            await late
    assert answered.result() == "ack"


async def test_deadlines_come_in_order_and_answered_publishes_are_forgotten() -> None:
    deadlines = _Deadlines(3600)
    loop = asyncio.get_running_loop()
    futures = [loop.create_future() for _ in range(1000)]
    for future in futures:
        deadlines.watch(future)
        future.set_result(None)  # acknowledged at once
    deadlines.watch(loop.create_future())
    assert len(deadlines._pending) == 1  # the answered ones were dropped as it went
    deadlines.close()


async def test_close_fails_what_is_still_waiting() -> None:
    deadlines = _Deadlines(3600)
    future = asyncio.get_running_loop().create_future()
    deadlines.watch(future)
    deadlines.close()
    with pytest.raises(TimeoutError):
        await future
