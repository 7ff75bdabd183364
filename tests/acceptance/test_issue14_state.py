"""Issue 14 as a new user calls it: keyed, transactional state beside the event."""

from __future__ import annotations

import os
import random
import socket
import sqlite3
import uuid
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

import eventbus
from eventbus import (
    Bus,
    Context,
    Event,
    ExponentialBackoff,
    MemoryState,
    NoRetry,
    SqliteState,
    StateError,
)
from eventbus.testing import FakeClock


@attrs.frozen
class Added(Event, type_name="acceptance.i14.Added"):
    cart_id: Any
    n: int = 1
    fail: bool = False


@attrs.frozen
class Idle(Event, type_name="acceptance.i14.Idle"):
    cart_id: str


async def count(event: Added, ctx: Context) -> None:
    assert isinstance(ctx.state, MutableMapping)
    ctx.state["total"] = ctx.state.get("total", 0) + event.n
    ctx.state.setdefault("seen", []).append(event.n)
    if event.fail:
        raise RuntimeError("fails after writing")


async def test_state_needs_ordered_by() -> None:
    """state= without ordered_by raises StateError saying so."""
    with pytest.raises(StateError, match="ordered_by"):
        Bus().subscribe(Added, count, state=MemoryState())


@pytest.mark.parametrize("bad", [{}, "memory", 5, object()])
def test_state_must_be_a_store(bad: Any) -> None:
    """state= with something that is not a store is a named error."""
    with pytest.raises((StateError, TypeError)):
        Bus().subscribe(Added, count, ordered_by="cart_id", state=bad)


async def test_state_is_per_key_and_readable_outside() -> None:
    """ctx.state is per key; bus.state_of returns a read-only snapshot; state_keys lists keys."""
    async with Bus() as bus:
        bus.subscribe(Added, count, name="carts", ordered_by="cart_id", state=MemoryState())
        await bus.publish(Added("alice", 2))
        await bus.publish(Added("alice", 3))
        await bus.publish(Added("bob", 5))
        await bus.drain()
        alice = await bus.state_of("carts", "alice")
        assert isinstance(alice, Mapping)
        assert dict(alice) == {"total": 5, "seen": [2, 3]}
        assert (await bus.state_of("carts", "bob"))["total"] == 5
        assert sorted([k async for k in bus.state_keys("carts")]) == ["alice", "bob"]
        with pytest.raises(TypeError):
            alice["total"] = 0  # type: ignore[index]
        assert dict(await bus.state_of("carts", "nobody")) == {}


async def test_unknown_or_stateless_subscription_state_of_is_named_error() -> None:
    """state_of on an unknown name or a stateless subscription is a named eventbus error."""

    async def plain(event: Added) -> None:
        pass

    async with Bus() as bus:
        bus.subscribe(Added, plain, name="plain")
        with pytest.raises(eventbus.EventBusError):
            await bus.state_of("nope", "k")
        with pytest.raises(StateError):
            await bus.state_of("plain", "k")


async def test_failed_attempt_discards_its_writes_and_retry_sees_old_state() -> None:
    """A raised error discards what the attempt wrote; the retry sees the state as it was."""
    attempts: list[dict[str, Any]] = []

    async def flaky(event: Added, ctx: Context) -> None:
        attempts.append(dict(ctx.state))
        ctx.state["total"] = ctx.state.get("total", 0) + event.n
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails")

    clock = FakeClock()
    retry = ExponentialBackoff(max_attempts=3, initial=1.0, jitter=False)
    async with Bus(clock=clock, retry=retry) as bus:
        bus.subscribe(Added, flaky, name="c", ordered_by="cart_id", state=MemoryState())
        await bus.publish(Added("k", 4))
        await clock.advance(5)
        await bus.drain()
        assert attempts == [{}, {}]
        assert dict(await bus.state_of("c", "k")) == {"total": 4}


async def test_timeout_discards_writes() -> None:
    """An attempt that times out commits nothing."""
    clock = FakeClock()

    async def slow(event: Added, ctx: Context) -> None:
        ctx.state["x"] = 1
        await ctx.clock.sleep_until(ctx.clock.now() + 10)

    async with Bus(clock=clock, retry=NoRetry()) as bus:
        bus.subscribe(Added, slow, name="s", ordered_by="cart_id", state=MemoryState(), timeout=1)
        await bus.publish(Added("k"))
        await clock.advance(2)
        await bus.drain()
        assert dict(await bus.state_of("s", "k")) == {}
        assert bus.metrics()["s"].timeouts == 1


async def test_same_event_twice_is_applied_once() -> None:
    """Publishing the same event (same id) twice applies its effect once."""
    async with Bus() as bus:
        bus.subscribe(Added, count, name="c", ordered_by="cart_id", state=MemoryState())
        event = Added("k", 7)
        await bus.publish(event)
        await bus.publish(event)
        await bus.drain()
        assert (await bus.state_of("c", "k"))["total"] == 7
        m = bus.metrics()["c"]
        assert m.accepted == m.succeeded == 2


async def test_redrive_after_dead_letter_applies_once() -> None:
    """A dead-lettered event that is redriven applies its effect exactly once."""
    fail = {"on": True}

    async def sometimes(event: Added, ctx: Context) -> None:
        ctx.state["total"] = ctx.state.get("total", 0) + event.n
        if fail["on"]:
            raise RuntimeError("down")

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Added, sometimes, name="c", ordered_by="cart_id", state=MemoryState())
        await bus.publish(Added("k", 3))
        await bus.drain()
        assert len(bus.dead_letters) == 1
        fail["on"] = False
        await bus.dead_letters.redrive(bus)
        await bus.drain()
        await bus.dead_letters.redrive(bus)
        await bus.drain()
        assert (await bus.state_of("c", "k"))["total"] == 3


async def test_counter_with_random_failures_ends_exactly_right() -> None:
    """2,000 events over 40 keys with random failures and retries: every total exact."""
    rng = random.Random(14)
    clock = FakeClock()
    retry = ExponentialBackoff(max_attempts=50, initial=0.1, max_delay=0.1, jitter=False)

    async def flaky(event: Added, ctx: Context) -> None:
        ctx.state["total"] = ctx.state.get("total", 0) + event.n
        if rng.random() < 0.3:
            raise RuntimeError("random failure")

    expected: dict[str, int] = {}
    async with Bus(clock=clock, retry=retry) as bus:
        bus.subscribe(
            Added,
            flaky,
            name="c",
            ordered_by="cart_id",
            state=MemoryState(),
            concurrency=8,
            queue_size=4096,
        )
        events = []
        for i in range(2000):
            key = f"k{i % 40}"
            expected[key] = expected.get(key, 0) + i
            events.append(Added(key, i))
        for e in events:
            await bus.publish(e)
        for e in rng.sample(events, 300):  # duplicate deliveries
            await bus.publish(e)
        for _ in range(2000):
            m = bus.metrics()["c"]
            if m.waiting_retry + m.queued + m.in_flight == 0:
                break
            await clock.advance(0.1)
        await bus.drain()
        got = {k: (await bus.state_of("c", k)).get("total") for k in expected}
        assert len(bus.dead_letters) == 0
    assert got == expected


async def test_per_key_serialisation_under_concurrency_8() -> None:
    """With concurrency 8, one key's events never overlap and run in publish order."""
    running: dict[str, int] = {}
    order: dict[str, list[int]] = {}
    overlap = False

    async def handler(event: Added, ctx: Context) -> None:
        nonlocal overlap
        running[event.cart_id] = running.get(event.cart_id, 0) + 1
        overlap = overlap or running[event.cart_id] > 1
        await anyio.lowlevel.checkpoint()
        order.setdefault(event.cart_id, []).append(event.n)
        ctx.state["last"] = event.n
        running[event.cart_id] -= 1

    async with Bus() as bus:
        bus.subscribe(
            Added, handler, name="h", ordered_by="cart_id", state=MemoryState(), concurrency=8
        )
        for i in range(400):
            await bus.publish(Added(f"k{i % 5}", i))
        await bus.drain()
    assert not overlap
    for key, seen in order.items():
        assert seen == sorted(seen), key


async def test_non_json_state_value_fails_the_attempt_with_state_error() -> None:
    """A value that is not JSON fails the attempt with StateError; nothing is committed."""

    async def bad(event: Added, ctx: Context) -> None:
        ctx.state["s"] = {1, 2}

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Added, bad, name="b", ordered_by="cart_id", state=MemoryState())
        await bus.publish(Added("k"))
        await bus.drain()
        (letter,) = list(bus.dead_letters)
        assert "StateError" in repr(letter.error) or "not JSON" in str(letter.error)
        assert dict(await bus.state_of("b", "k")) == {}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), b"bytes", object(), {1: "int key"}])
async def test_hostile_state_values_are_refused(value: Any) -> None:
    """NaN, infinities, bytes, objects and non-str keys are refused at commit."""

    async def put(event: Added, ctx: Context) -> None:
        ctx.state["v"] = value

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Added, put, name="p", ordered_by="cart_id", state=MemoryState())
        await bus.publish(Added("k"))
        await bus.drain()
        assert len(bus.dead_letters) == 1
        assert dict(await bus.state_of("p", "k")) == {}


@pytest.mark.parametrize("key", [None, 1.5, ("a",), b"k"])
async def test_unsupported_key_types_fail_with_state_error(key: Any) -> None:
    """A key that is not str, int or UUID fails the attempt (dead letter), the bus goes on."""
    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Added, count, name="c", ordered_by="cart_id", state=MemoryState())
        await bus.publish(Added(key))
        await bus.publish(Added("fine"))
        await bus.drain()
        assert len(bus.dead_letters) == 1
        assert (await bus.state_of("c", "fine"))["total"] == 1


@pytest.mark.parametrize("key", ["ключ", "🛒", "a" * 10_000, "", "k\x00ey", 7, uuid.UUID(int=5)])
async def test_odd_keys_work(key: Any) -> None:
    """Unicode, empty, huge, NUL-containing, int and UUID keys keep their state."""
    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Added, count, name="c", ordered_by="cart_id", state=MemoryState())
        await bus.publish(Added(key, 2))
        await bus.drain()
        assert len(bus.dead_letters) == 0
        assert (await bus.state_of("c", key))["total"] == 2


async def test_reminder_fires_after_the_delay_for_the_same_key() -> None:
    """ctx.remind(after=, event=) publishes the event after the delay on the bus's clock."""
    clock = FakeClock()
    idle: list[str] = []

    async def cart(event: Added, ctx: Context) -> None:
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        ctx.remind(after=60, event=Idle(event.cart_id))

    async def on_idle(event: Idle) -> None:
        idle.append(event.cart_id)

    async with Bus(clock=clock) as bus:
        bus.subscribe(Added, cart, name="cart", ordered_by="cart_id", state=MemoryState())
        bus.subscribe(Idle, on_idle, name="idle")
        await bus.publish(Added("alice"))
        await bus.drain()
        await clock.advance(59)
        assert idle == []
        await clock.advance(1)
        await bus.drain()
        assert idle == ["alice"]


@pytest.mark.parametrize("after", [-1, float("nan"), float("inf"), "10", None])
async def test_remind_refuses_bad_delays(after: Any) -> None:
    """ctx.remind with a negative, NaN, infinite or non-number delay fails with a named error."""
    errors: list[BaseException] = []

    async def cart(event: Added, ctx: Context) -> None:
        try:
            ctx.remind(after=after, event=Idle("x"))
        except Exception as exc:
            errors.append(exc)

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Added, cart, name="cart", ordered_by="cart_id", state=MemoryState())
        await bus.publish(Added("k"))
        await bus.drain()
    assert len(errors) == 1
    assert isinstance(errors[0], eventbus.EventBusError | TypeError)


async def test_failed_attempt_drops_its_reminders() -> None:
    """A reminder set by a failing attempt is dropped."""
    clock = FakeClock()
    idle: list[str] = []

    async def cart(event: Added, ctx: Context) -> None:
        ctx.remind(after=1, event=Idle(event.cart_id))
        raise RuntimeError("no")

    async def on_idle(event: Idle) -> None:
        idle.append(event.cart_id)

    async with Bus(clock=clock, retry=NoRetry()) as bus:
        bus.subscribe(Added, cart, name="cart", ordered_by="cart_id", state=MemoryState())
        bus.subscribe(Idle, on_idle, name="idle")
        await bus.publish(Added("k"))
        await bus.drain()
        await clock.advance(10)
        await bus.drain()
    assert idle == []


async def test_sqlite_state_survives_reopen_and_keeps_reminders(tmp_path: Path) -> None:
    """SqliteState keeps state and applied ids and re-arms reminders across a restart."""
    path = tmp_path / "carts.db"
    idle: list[str] = []

    async def cart(event: Added, ctx: Context) -> None:
        ctx.state["total"] = ctx.state.get("total", 0) + event.n
        ctx.remind(after=100, event=Idle(event.cart_id))

    async def on_idle(event: Idle) -> None:
        idle.append(event.cart_id)

    first = Added("alice", 5)
    clock = FakeClock()
    store = SqliteState(path)
    async with Bus(clock=clock) as bus:
        bus.subscribe(Added, cart, name="cart", ordered_by="cart_id", state=store)
        bus.subscribe(Idle, on_idle, name="idle")
        await bus.publish(first)
        await bus.drain()
    assert idle == []
    store.close()  # the bus leaves a store it was given open (reported)
    clock = FakeClock()
    store = SqliteState(path)
    async with Bus(clock=clock) as bus:
        bus.subscribe(Added, cart, name="cart", ordered_by="cart_id", state=store)
        bus.subscribe(Idle, on_idle, name="idle")
        await bus.publish(first)  # a redelivery after the restart
        await bus.drain()
        assert (await bus.state_of("cart", "alice"))["total"] == 5
        await clock.advance(200)
        await bus.drain()
    store.close()
    assert idle == ["alice"]
    assert (path.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("bad", [5, None])
def test_sqlite_state_bad_path_is_a_named_error(bad: Any) -> None:
    """SqliteState with an empty or non-path argument raises StateError or TypeError."""
    with pytest.raises((StateError, TypeError)):
        SqliteState(bad)


def test_sqlite_state_on_a_corrupt_file_names_the_file(tmp_path: Path) -> None:
    """SqliteState on a file that is not SQLite raises the documented sqlite3.Error, naming it."""
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError) as info:
        SqliteState(path)
    assert "junk.db" in " ".join(getattr(info.value, "__notes__", []))


# -- Redis, for real ------------------------------------------------------------------


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.mark.integration
async def test_redis_state_two_buses_share_one_state() -> None:
    """Two buses with RedisState on the same prefix see one authoritative state, once per id."""
    if not _redis_up():
        if os.environ.get("EVENTBUS_REQUIRE_SERVICES", "") == "1":
            pytest.fail("Redis is not running on 127.0.0.1:6379")
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    from eventbus.bridges.redis import RedisState

    prefix = f"eventbus-acceptance:{uuid.uuid4().hex}"
    url = "redis://127.0.0.1:6379/0"
    event = Added("k", 3)
    # The bus does not close a store it was given (reported): close them here.
    async with (
        RedisState(url, prefix=prefix) as store_a,
        RedisState(url, prefix=prefix) as store_b,
        Bus() as a,
        Bus() as b,
    ):
        a.subscribe(Added, count, name="c", ordered_by="cart_id", state=store_a)
        b.subscribe(Added, count, name="c", ordered_by="cart_id", state=store_b)
        await a.publish(event)
        await a.drain()
        await b.publish(event)  # the same event delivered to another process
        await b.publish(Added("k", 4))
        await b.drain()
        assert (await a.state_of("c", "k"))["total"] == 7
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
