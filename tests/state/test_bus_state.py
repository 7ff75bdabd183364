"""Stateful subscriptions on a bus: ctx.state, commits, duplicates, reading from outside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest

from eventbus import (
    Bus,
    Context,
    Event,
    MemoryState,
    NoRetry,
    SqliteState,
    StateChange,
    StateError,
    UnknownSubscription,
)
from eventbus.testing import FakeClock

from ._counter import Add, count, subscribe_counter


@attrs.frozen
class Touch(Event, type_name="tests.state.Touch"):
    key: str
    value: Any = None


async def test_state_needs_ordered_by() -> None:
    """``state=`` without ``ordered_by=`` raises StateError saying so."""
    async with Bus() as bus:
        with pytest.raises(StateError, match=r"needs ordered_by=\.\.\."):
            bus.subscribe(Add, count, state=MemoryState())


async def test_state_must_be_a_store() -> None:
    """``state=`` that is not a store raises TypeError naming the store types."""
    async with Bus() as bus:
        with pytest.raises(TypeError, match=r"state=\.\.\.\) takes a state store"):
            bus.subscribe(Add, count, ordered_by="key", state={})  # type: ignore[arg-type]


async def test_the_decorator_takes_state() -> None:
    """``@bus.on(..., ordered_by=..., state=...)`` makes a stateful subscription."""
    async with Bus() as bus:

        @bus.on(Add, name="counter", ordered_by="key", state=MemoryState())
        async def counter(event: Add, ctx: Context) -> None:
            ctx.state["n"] = ctx.state.get("n", 0) + event.amount

        await bus.publish(Add("a", 2))
        await bus.publish(Add("a", 3))
        await bus.drain()
        assert dict(await bus.state_of("counter", "a")) == {"n": 5}


async def test_state_is_per_key() -> None:
    """Each key has its own state."""
    async with Bus() as bus:
        subscribe_counter(bus, MemoryState())
        for key, amount in [("a", 1), ("b", 10), ("a", 2)]:
            await bus.publish(Add(key, amount))
        await bus.drain()
        assert dict(await bus.state_of("counter", "a")) == {"n": 3}
        assert dict(await bus.state_of("counter", "b")) == {"n": 10}
        assert dict(await bus.state_of("counter", "never")) == {}


async def test_state_of_is_a_read_only_snapshot() -> None:
    """``state_of`` returns a mapping that cannot be written and does not change later."""
    async with Bus() as bus:
        subscribe_counter(bus, MemoryState())
        await bus.publish(Add("a", 1))
        await bus.drain()
        snapshot = await bus.state_of("counter", "a")
        with pytest.raises(TypeError):
            snapshot["n"] = 5  # type: ignore[index]
        await bus.publish(Add("a", 1))
        await bus.drain()
        assert snapshot == {"n": 1}


async def test_state_keys_iterates_the_keys() -> None:
    """``state_keys`` yields every key whose state is not empty."""
    async with Bus() as bus:
        subscribe_counter(bus, MemoryState())
        for key in ["b", "a", "b"]:
            await bus.publish(Add(key, 1))
        await bus.drain()
        assert sorted([key async for key in bus.state_keys("counter")]) == ["a", "b"]


async def test_reading_an_unknown_or_stateless_subscription_fails() -> None:
    """``state_of``/``state_keys`` name an unknown subscription, or one without state."""
    async with Bus() as bus:
        bus.subscribe(Add, count, name="plain")
        with pytest.raises(UnknownSubscription):
            await bus.state_of("nope", "a")
        with pytest.raises(StateError, match="'plain' has no state="):
            await bus.state_of("plain", "a")
        with pytest.raises(StateError, match="'plain' has no state="):
            bus.state_keys("plain")


async def test_a_failed_attempt_discards_its_writes() -> None:
    """A handler that writes then raises leaves the state as it was; the retry sees that."""
    seen: list[dict[str, Any]] = []

    async def flaky(event: Touch, ctx: Context) -> None:
        seen.append(dict(ctx.state))
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        if len(seen) == 1:
            raise RuntimeError("first attempt fails")

    clock = FakeClock()
    async with Bus(clock=clock) as bus:
        bus.subscribe(Touch, flaky, name="t", ordered_by="key", state=MemoryState())
        await bus.publish(Touch("a"))
        await clock.advance(60)
        await bus.drain()
        assert seen == [{}, {}]
        assert dict(await bus.state_of("t", "a")) == {"n": 1}


async def test_a_timed_out_attempt_discards_its_writes() -> None:
    """A handler that writes then runs past its timeout commits nothing."""
    attempts = 0

    async def slow(event: Touch, ctx: Context) -> None:
        nonlocal attempts
        attempts += 1
        ctx.state["attempt"] = attempts
        if attempts == 1:
            await ctx.clock.sleep_until(ctx.clock.now() + 10)

    clock = FakeClock()
    async with Bus(clock=clock) as bus:
        bus.subscribe(Touch, slow, name="t", ordered_by="key", state=MemoryState(), timeout=5)
        await bus.publish(Touch("a"))
        await clock.advance(5)
        await clock.advance(60)
        await bus.drain()
        assert bus.metrics()["t"].timeouts == 1
        assert dict(await bus.state_of("t", "a")) == {"attempt": 2}


async def test_an_event_id_already_applied_is_skipped() -> None:
    """The same event delivered twice runs the handler once and counts as handled twice."""
    calls = 0

    async def counted(event: Add, ctx: Context) -> None:
        nonlocal calls
        calls += 1
        ctx.state["n"] = ctx.state.get("n", 0) + event.amount

    async with Bus() as bus:
        bus.subscribe(Add, counted, name="c", ordered_by="key", state=MemoryState())
        event = Add("a", 5)
        await bus.publish(event)
        await bus.publish(event)
        await bus.drain()
        assert calls == 1
        assert bus.metrics()["c"].succeeded == 2
        assert dict(await bus.state_of("c", "a")) == {"n": 5}


async def test_a_non_json_value_fails_the_attempt_naming_the_field() -> None:
    """Writing a value that is not JSON fails the attempt with StateError; nothing is kept."""

    async def bad(event: Touch, ctx: Context) -> None:
        ctx.state["when"] = {"tags": {"x"}}

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Touch, bad, name="t", ordered_by="key", state=MemoryState())
        await bus.publish(Touch("a"))
        await bus.drain()
        [letter] = list(bus.dead_letters)
        assert letter.error.error_type == "StateError"
        assert "key 'a': state['when']['tags']" in letter.error.error_message
        assert dict(await bus.state_of("t", "a")) == {}


async def test_ctx_state_without_state_raises() -> None:
    """``ctx.state`` in a subscription without ``state=`` raises StateError saying why."""
    errors: list[BaseException] = []

    async def plain(event: Touch, ctx: Context) -> None:
        try:
            ctx.state["x"] = 1
        except StateError as exc:
            errors.append(exc)

    async with Bus() as bus:
        bus.subscribe(Touch, plain, name="p")
        await bus.publish(Touch("a"))
        await bus.drain()
    assert len(errors) == 1
    assert "has no state here" in str(errors[0])


async def test_an_unchanged_state_is_not_committed() -> None:
    """An attempt that only reads the state writes nothing (the version stays)."""
    store = MemoryState()

    async def reader(event: Touch, ctx: Context) -> None:
        _ = ctx.state.get("n")

    async with Bus() as bus:
        bus.subscribe(Touch, reader, name="r", ordered_by="key", state=store)
        await bus.publish(Touch("a"))
        await bus.drain()
    assert (await store.load("r", "a")).version == 0


async def test_a_commit_conflict_runs_the_handler_again_on_the_new_state() -> None:
    """When another writer commits the key first, the event is handled again; no update is lost."""
    store = MemoryState()
    runs: list[int] = []

    async def racy(event: Add, ctx: Context) -> None:
        current = ctx.state.get("n", 0)
        runs.append(current)
        if len(runs) == 1:  # another process commits this key meanwhile
            loaded = await store.load("c", event.key)
            await store.commit("c", event.key, StateChange('{"n":100}', loaded.version, "other"))
        ctx.state["n"] = current + event.amount

    async with Bus() as bus:
        bus.subscribe(Add, racy, name="c", ordered_by="key", state=store)
        await bus.publish(Add("a", 1))
        await bus.drain()
        assert runs == [0, 100]
        assert dict(await bus.state_of("c", "a")) == {"n": 101}
        assert bus.metrics()["c"].retries == 0


async def test_plain_def_handlers_get_state_too() -> None:
    """A synchronous handler (run in a worker thread) reads and writes ctx.state."""

    def sync_count(event: Add, ctx: Context) -> None:
        ctx.state["n"] = ctx.state.get("n", 0) + event.amount

    async with Bus() as bus:
        bus.subscribe(Add, sync_count, name="s", ordered_by="key", state=MemoryState())
        await bus.publish(Add("a", 2))
        await bus.publish(Add("a", 2))
        await bus.drain()
        assert dict(await bus.state_of("s", "a")) == {"n": 4}


async def test_invoke_commits_state() -> None:
    """``bus.invoke`` on a stateful subscription commits what the handler wrote."""
    async with Bus() as bus:
        subscribe_counter(bus, MemoryState())
        await bus.invoke("counter", Add("a", 7))
        assert dict(await bus.state_of("counter", "a")) == {"n": 7}


async def test_sqlite_state_keeps_state_across_buses(tmp_path: Path) -> None:
    """State committed through SqliteState is there for the next bus, and duplicates stay out."""
    event = Add("a", 3)
    for _ in range(2):
        with SqliteState(tmp_path / "state.db") as store:
            async with Bus() as bus:
                subscribe_counter(bus, store)
                await bus.publish(event)
                await bus.publish(Add("a", 1))
                await bus.drain()
                result = dict(await bus.state_of("counter", "a"))
    assert result == {"n": 3 + 1 + 1}


async def test_keys_that_are_not_str_or_int_fail_the_attempt() -> None:
    """An ordering key of another type dead-letters the event with StateError."""

    async with Bus(retry=NoRetry()) as bus:
        bus.subscribe(Touch, count, name="t", ordered_by=lambda e: (e.key,), state=MemoryState())
        await bus.publish(Touch("a"))
        await bus.drain()
        [letter] = list(bus.dead_letters)
        assert letter.error.error_type == "StateError"


async def test_concurrent_keys_are_serialised_per_key() -> None:
    """With concurrency 8, events of one key never overlap and run in publish order."""
    running: set[str] = set()
    overlaps: list[str] = []
    order: dict[str, list[int]] = {}

    async def tracked(event: Add, ctx: Context) -> None:
        if event.key in running:
            overlaps.append(event.key)
        running.add(event.key)
        ctx.state["n"] = ctx.state.get("n", 0) + 1
        await anyio.lowlevel.checkpoint()
        order.setdefault(event.key, []).append(event.amount)
        running.discard(event.key)

    async with Bus() as bus:
        bus.subscribe(Add, tracked, name="t", ordered_by="key", state=MemoryState(), concurrency=8)
        for i in range(400):
            await bus.publish(Add(f"k{i % 10}", i))
        await bus.drain()
        assert overlaps == []
        assert all(amounts == sorted(amounts) for amounts in order.values())
        assert {k: dict(await bus.state_of("t", k))["n"] for k in order} == {
            f"k{i}": 40 for i in range(10)
        }


async def test_state_keys_can_be_awaited_or_iterated_directly() -> None:
    """``await bus.state_keys(name)`` gives a list; local stores also iterate without await."""
    async with Bus() as bus:
        subscribe_counter(bus, MemoryState())
        await bus.publish(Add("a", 1))
        await bus.drain()
        assert await bus.state_keys("counter") == ["a"]  # type: ignore[misc]
        assert list(bus.state_keys("counter")) == ["a"]  # type: ignore[call-overload]
