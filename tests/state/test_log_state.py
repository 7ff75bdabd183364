"""State on Log consumers: per partition key, one record or a batch at a time."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from eventbus import (
    Batching,
    BatchResult,
    Bus,
    Context,
    LogRecord,
    MemoryState,
    SqliteState,
    StateError,
    StateStore,
)
from eventbus.sources.logs import Log

APPENDS = [("a", 1), ("b", 10), ("a", 2), ("c", 100), ("b", 20), ("a", 3)]
TOTALS = {"a": 6, "b": 30, "c": 100}


async def totals(bus: Bus, name: str) -> dict[str, int]:
    return {key: (await bus.state_of(name, key))["n"] async for key in bus.state_keys(name)}


async def test_a_log_subscription_keys_state_by_partition_key() -> None:
    """Without ordered_by, a LogRecord subscription's state is per partition key."""

    async def add(record: LogRecord, ctx: Context) -> None:
        ctx.state["n"] = ctx.state.get("n", 0) + int(record.data)

    async with Bus() as bus:
        log = Log(bus, "adds", partitions=2)
        bus.subscribe(LogRecord, add, name="sum", state=MemoryState())
        for key, n in APPENDS:
            await log.append(str(n), key)
        await bus.drain()
        assert await totals(bus, "sum") == TOTALS


async def test_a_batch_handler_gets_each_keys_state() -> None:
    """A batch handler reads and writes ``ctx.state[partition_key]``; each key commits."""

    async def add_all(records: list[LogRecord], ctx: Context) -> None:
        for record in records:
            state = ctx.state[record.partition_key]
            state["n"] = state.get("n", 0) + int(record.data)

    async with Bus() as bus:
        log = Log(bus, "adds", partitions=2)
        bus.subscribe(LogRecord, add_all, name="sum", batch=Batching(4), state=MemoryState())
        await log.append_many([(str(n), key) for key, n in APPENDS])
        await bus.drain()
        assert await totals(bus, "sum") == TOTALS


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_partial_batch_failure_commits_the_other_keys_once(
    kind: str, tmp_path: Path
) -> None:
    """A record reported failed holds back its key's state; every key still ends right."""
    failed_once: set[str] = set()
    calls: list[list[str]] = []

    async def add_all(records: list[LogRecord], ctx: Context) -> BatchResult:
        calls.append([r.partition_key + r.data.decode() for r in records])
        failed = []
        for record in records:
            state = ctx.state[record.partition_key]
            state["n"] = state.get("n", 0) + int(record.data)
            if record.data == b"2" and record.id not in failed_once:
                failed_once.add(record.id)
                failed.append(record.id)
        return BatchResult(failed=failed)

    store: StateStore = MemoryState() if kind == "memory" else SqliteState(tmp_path / "s.db")
    async with Bus() as bus:
        log = Log(bus, "adds")
        bus.subscribe(LogRecord, add_all, name="sum", batch=Batching(10, 0.0), state=store)
        await log.append_many([(str(n), key) for key, n in APPENDS])
        await bus.drain()
        assert await totals(bus, "sum") == TOTALS
    assert calls[1] == ["a1", "a2", "a3"]  # key a again, from its first record; b and c kept
    if isinstance(store, SqliteState):
        store.close()


async def test_records_replayed_from_an_old_checkpoint_are_left_out(tmp_path: Path) -> None:
    """After a crash between the state commit and the checkpoint, replayed records are skipped."""
    seen: list[bytes] = []

    async def add_all(records: list[LogRecord], ctx: Context) -> None:
        for record in records:
            seen.append(record.data)
            state = ctx.state[record.partition_key]
            state["n"] = state.get("n", 0) + int(record.data)

    logs = tmp_path / "logs.db"
    with SqliteState(tmp_path / "state.db") as store:
        async with Bus() as bus:
            log = Log(bus, "adds", path=logs)
            bus.subscribe(LogRecord, add_all, name="sum", batch=Batching(10), state=store)
            await log.append_many([(str(n), key) for key, n in APPENDS])
            await bus.drain()
        # the checkpoint as if the process died before it (sqlite3's own 'with' does not close)
        with contextlib.closing(sqlite3.connect(logs)) as db, db:
            db.execute("UPDATE eventbus_log_checkpoints SET seq = 0")
        async with Bus() as bus:
            Log(bus, "adds", path=logs)
            bus.subscribe(LogRecord, add_all, name="sum", batch=Batching(10), state=store)
            await bus.drain()
            assert bus.metrics()["sum"].succeeded == len(APPENDS)  # replayed, and skipped
            assert await totals(bus, "sum") == TOTALS
    assert len(seen) == len(APPENDS)


async def test_remind_is_refused_in_a_batch_handler() -> None:
    """``ctx.remind`` in a batch handler raises StateError saying to use ctx.publish."""
    errors: list[str] = []

    async def batchy(records: list[LogRecord], ctx: Context) -> None:
        try:
            ctx.remind(after=1, event=records[0])
        except StateError as exc:
            errors.append(str(exc))

    async with Bus() as bus:
        log = Log(bus, "adds")
        bus.subscribe(LogRecord, batchy, name="b", batch=Batching(2), state=MemoryState())
        await log.append("1", "a")
        await bus.drain()
    assert len(errors) == 1
    assert "not in batch handlers" in errors[0]
