"""A keyed counter ends exactly right through failures, timeouts, retries, duplicates, SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventbus import Bus, Context, ExponentialBackoff, MemoryState, SqliteState, StateStore
from eventbus.testing import FakeClock

from ._counter import Add, events, fold, subscribe_counter

EVENTS = 10_000
KEYS = 100
# A real-time bound on each run, far above what it needs even on a loaded
# machine: a run that stops making progress fails with a stack, not a hang.
HANG_LIMIT = 300


async def _run_chaos(store: StateStore, adds: list[Add], copies: int, seed: int) -> None:
    rng = random.Random(seed)
    fates = {add.id: [rng.random() for _ in range(3)] for add in adds}
    clock = FakeClock()

    async def chaotic(event: Add, ctx: Context) -> None:
        ctx.state["n"] = ctx.state.get("n", 0) + event.amount
        fate = fates[event.id][ctx.attempt - 1] if ctx.attempt <= 3 else 1.0
        if fate < 0.1:
            raise RuntimeError("random failure after writing the state")
        if fate < 0.15:
            await ctx.clock.sleep_until(ctx.clock.now() + 60)  # past the 5 s timeout

    with anyio.fail_after(HANG_LIMIT):
        result = await _chaos_bus(store, adds, copies, rng, clock, chaotic)
    assert result == {key: {"n": total} for key, total in fold(adds).items()}


async def _chaos_bus(
    store: StateStore,
    adds: list[Add],
    copies: int,
    rng: random.Random,
    clock: FakeClock,
    chaotic: Callable[[Add, Context], Awaitable[None]],
) -> dict[str, dict[str, int]]:
    async with Bus(clock=clock) as bus:
        bus.subscribe(
            Add,
            chaotic,
            name="counter",
            ordered_by="key",
            state=store,
            concurrency=8,
            timeout=5,
            retry=ExponentialBackoff(max_attempts=10, initial=1, jitter=False, max_event_age=None),
        )
        for add in adds:
            for _ in range(copies if rng.random() < 0.5 else 1):
                await bus.publish(add)
            # Keep the queue (1,024) from filling: workers waiting for a retry
            # hold their keys until the clock moves, and only we move it.
            if bus.outstanding > 500:
                await clock.advance(5)
        while bus.outstanding:
            await clock.advance(5)
        await bus.drain()
        metrics = bus.metrics()["counter"]
        assert metrics.dead_lettered == 0
        assert metrics.errors > 0
        assert metrics.timeouts > 0
        return {
            key: dict(await bus.state_of("counter", key)) async for key in bus.state_keys("counter")
        }


async def test_counter_survives_failures_and_timeouts() -> None:
    """10,000 events over 100 keys with random failures, timeouts and retries end exactly right."""
    await _run_chaos(MemoryState(), events(EVENTS, KEYS, seed=1), copies=1, seed=1)


async def test_counter_survives_duplicate_deliveries() -> None:
    """The same, with half the events delivered two or three times: each is applied once."""
    await _run_chaos(MemoryState(), events(EVENTS, KEYS, seed=2), copies=3, seed=2)


async def test_counter_with_sqlite_state(tmp_path: Path) -> None:
    """The same chaos over SqliteState (fewer events: every commit is a disk transaction)."""
    with SqliteState(tmp_path / "state.db") as store:
        await _run_chaos(store, events(1000, 20, seed=3), copies=2, seed=3)


_WORKER = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[2])
    import anyio
    from eventbus import Bus, SqliteState
    from state._counter import events, subscribe_counter

    async def main(path):
        with SqliteState(path) as store:
            async with Bus() as bus:
                subscribe_counter(bus, store, concurrency=4)
                for i, add in enumerate(events(int(sys.argv[3]), 20, seed=7)):
                    await bus.publish(add)
                    if i == 200:
                        await bus.drain()
                        print("ready", flush=True)
                await anyio.sleep_forever()

    anyio.run(main, sys.argv[1])
    """
)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_then_redelivery_applies_each_event_once(tmp_path: Path) -> None:
    """SIGKILL mid-run with SqliteState; reopen, publish the same events again: fold is exact."""
    path = tmp_path / "state.db"
    n = 3000
    tests_dir = str(Path(__file__).resolve().parent.parent)
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER, str(path), tests_dir, str(n)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": tests_dir},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    anyio.run(_redeliver, path, n)


async def _redeliver(path: Path, n: int) -> None:
    adds = events(n, 20, seed=7)
    with SqliteState(path) as store, anyio.fail_after(HANG_LIMIT):
        before = {key: (await store.load("counter", key)).decode() for key in fold(adds)}
        assert any(before.values())  # the killed run did commit some
        async with Bus() as bus:
            subscribe_counter(bus, store, concurrency=4)
            for add in adds:
                await bus.publish(add)
            await bus.drain()
            result = {key: dict(await bus.state_of("counter", key)) for key in fold(adds)}
    assert result == {key: {"n": total} for key, total in fold(adds).items()}


_plans = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),  # key
        st.integers(1, 9),  # amount
        st.integers(0, 2),  # failed attempts before one succeeds
        st.integers(1, 3),  # deliveries of the same event
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None)
@given(plan=_plans)
def test_any_mix_of_failures_and_duplicates_folds_exactly(
    plan: list[tuple[str, int, int, int]],
) -> None:
    """Whatever fails and however often an event is delivered, each key is the fold of its events."""
    anyio.run(_fold_plan, plan)


async def _fold_plan(plan: list[tuple[str, int, int, int]]) -> None:
    adds = [Add(key, amount, id=f"p{i}") for i, (key, amount, _, _) in enumerate(plan)]
    failures = {add.id: fails for add, (_, _, fails, _) in zip(adds, plan, strict=True)}
    clock = FakeClock()
    with anyio.fail_after(HANG_LIMIT):
        result = await _fold_bus(adds, plan, failures, clock)
    assert result == fold(adds)


async def _fold_bus(
    adds: list[Add],
    plan: list[tuple[str, int, int, int]],
    failures: dict[str, int],
    clock: FakeClock,
) -> dict[str, int]:
    async def flaky(event: Add, ctx: Context) -> None:
        ctx.state["n"] = ctx.state.get("n", 0) + event.amount
        if ctx.attempt <= failures[event.id]:
            raise RuntimeError("fails after writing")

    async with Bus(clock=clock) as bus:
        bus.subscribe(
            Add,
            flaky,
            name="counter",
            ordered_by="key",
            state=MemoryState(),
            concurrency=4,
            retry=ExponentialBackoff(max_attempts=5, initial=1, jitter=False, max_event_age=None),
        )
        for add, (_, _, _, copies) in zip(adds, plan, strict=True):
            for _ in range(copies):
                await bus.publish(add)
        while bus.outstanding:
            await clock.advance(1)
        result = {
            key: (await bus.state_of("counter", key))["n"]
            async for key in bus.state_keys("counter")
        }
        assert bus.metrics()["counter"].dead_lettered == 0
    return result


async def test_full_queue_waits_for_the_fake_clock_then_applies_each_event_once() -> None:
    """Workers holding keys for retries fill the queue; publish waits until the clock moves."""
    clock = FakeClock()
    published = anyio.Event()

    async def fails_first(event: Add, ctx: Context) -> None:
        ctx.state["n"] = ctx.state.get("n", 0) + event.amount
        if ctx.attempt == 1:
            raise RuntimeError("fails after writing")

    adds = [Add(f"k{i % 2}", i + 1, id=f"q{i}") for i in range(7)]
    with anyio.fail_after(HANG_LIMIT):
        async with Bus(clock=clock) as bus, anyio.create_task_group() as tg:
            bus.subscribe(
                Add,
                fails_first,
                name="counter",
                ordered_by="key",
                state=MemoryState(),
                concurrency=2,
                queue_size=4,
                retry=ExponentialBackoff(max_attempts=3, initial=1, jitter=False),
            )
            for add in adds[:6]:  # 2 taken (each fails, then holds its key), 4 queued
                await bus.publish(add)
            await clock.advance(0)  # every task runs until it blocks

            async def publish_last() -> None:
                await bus.publish(adds[6])
                published.set()

            tg.start_soon(publish_last)
            await clock.advance(0)
            metrics = bus.metrics()["counter"]
            assert (metrics.queued, metrics.waiting_retry) == (4, 2)
            assert not published.is_set()  # only the clock can make room now
            while bus.outstanding:
                await clock.advance(1)
            assert published.is_set()
            result = {key: (await bus.state_of("counter", key))["n"] for key in ("k0", "k1")}
    assert result == fold(adds)
