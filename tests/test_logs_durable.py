"""Durable logs: records and checkpoints in SQLite, and consumers that resume after a restart."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from eventbus import Batching, BatchResult, Bus, Context, LogRecord, NoRetry
from eventbus.sources.logs import Log
from eventbus.testing import FakeClock


class Boom(Exception):
    pass


async def until(condition: Callable[[], bool]) -> None:
    """Let other tasks (and the log's worker thread) run until *condition* holds."""
    with anyio.fail_after(10):  # a safety net only: the condition holds long before
        while not condition():
            await anyio.lowlevel.checkpoint()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as db:  # sqlite3's own 'with' does not close
        return db.execute(sql).fetchall()


async def test_the_file_is_in_wal_mode_and_closed_with_the_bus(tmp_path: Path) -> None:
    """Records are stored in a WAL-mode SQLite file, closed when the bus stops."""
    path = tmp_path / "log.db"
    async with Bus() as bus:
        log = Log(bus, "orders", partitions=2, path=path)
        await log.append(b"payload", "k")
        assert rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert rows(path, "SELECT log, seq, partition_key, data FROM eventbus_log_records") == [
        ("orders", 1, "k", b"payload")
    ]
    assert log.path == path
    assert "in '" in repr(log)


async def test_a_restarted_consumer_resumes_after_its_checkpoint(tmp_path: Path) -> None:
    """A new bus and log on the same file deliver what was not checkpointed, and only that."""
    path = tmp_path / "log.db"
    first_run: list[int] = []
    second_run: list[int] = []
    stuck = anyio.Event()

    async def crashy(records: list[LogRecord]) -> None:
        if any(r.data == b"late" for r in records):
            stuck.set()
            await anyio.Event().wait()  # never returns: the process "crashes" meanwhile
        first_run.extend(r.sequence_number for r in records)

    bus = Bus()

    async def run() -> None:
        async with bus:
            log = Log(bus, "orders", partitions=3, path=path)
            bus.subscribe(LogRecord, crashy, name="reader", batch=Batching(size=10))
            await log.append_many([(b"early", f"k{i}") for i in range(9)])
            await bus.drain()
            assert log.checkpoints("reader") == {
                p: max((i + 1 for i in range(9) if log.partition_for(f"k{i}") == p), default=0)
                for p in range(3)
            }
            await log.append_many([(b"late", f"k{i}") for i in range(9)])
            await stuck.wait()
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        await run()
    assert not list(bus.dead_letters)  # a durable log keeps them for the next run

    async def handle(records: list[LogRecord]) -> None:
        second_run.extend(r.sequence_number for r in records)

    async with Bus() as bus:
        log = Log(bus, "orders", partitions=3, path=path)
        bus.subscribe(LogRecord, handle, name="reader", batch=Batching(size=10))
        await bus.drain()
        assert bus.metrics()["reader"].accepted == 9
        assert log.last_sequence_number == 18
        assert await log.append(b"after", "k0") == 19
        await bus.drain()
    assert sorted(first_run) == list(range(1, 10))
    assert sorted(second_run) == list(range(10, 20))


async def test_a_partial_failure_resumes_from_the_failed_record(
    tmp_path: Path, fake_clock: FakeClock
) -> None:
    """A crash while a partial failure waits for its retry resumes at the failed record."""
    path = tmp_path / "log.db"
    seen: list[list[int]] = []
    waiting = anyio.Event()

    async def failing(records: list[LogRecord]) -> BatchResult:
        seen.append([r.sequence_number for r in records])
        waiting.set()
        return BatchResult(failed=[records[2].id])

    async def run() -> None:
        async with Bus(clock=fake_clock) as bus:
            log = Log(bus, "orders", path=path)
            bus.subscribe(LogRecord, failing, name="reader", batch=Batching(size=5))
            await log.append_many([(b"", "k")] * 5)
            await waiting.wait()
            await until(lambda: log.checkpoints("reader") == {0: 2})
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError, match="crash"):
        await run()

    async def handle(records: list[LogRecord]) -> None:
        seen.append([r.sequence_number for r in records])

    async with Bus(clock=FakeClock(start=fake_clock.wall())) as bus:
        Log(bus, "orders", path=path)
        bus.subscribe(LogRecord, handle, name="reader", batch=Batching(size=5))
        await bus.drain()
    assert seen == [[1, 2, 3, 4, 5], [3, 4, 5]]


async def test_latest_is_remembered_across_restarts(tmp_path: Path) -> None:
    """LATEST applies only the first time: records appended while a consumer is away still arrive."""
    path = tmp_path / "log.db"
    seen: list[bytes] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record.data)

    async with Bus() as bus:
        log = Log(bus, "orders", partitions=2, path=path)
        await log.append(b"before", "a")
        bus.subscribe(LogRecord, handle, name="reader", starting_position="LATEST")
        await bus.drain()
    async with Bus() as bus:  # the consumer is not running
        log = Log(bus, "orders", partitions=2, path=path)
        await log.append(b"while away", "b")
    async with Bus() as bus:
        log = Log(bus, "orders", partitions=2, path=path)
        bus.subscribe(LogRecord, handle, name="reader", starting_position="LATEST")
        await bus.drain()
    assert seen == [b"while away"]


async def test_a_new_consumer_reads_the_whole_retained_log(tmp_path: Path) -> None:
    """A subscription name the file has not seen starts at TRIM_HORIZON by default."""
    path = tmp_path / "log.db"
    seen: list[int] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record.sequence_number)

    async with Bus() as bus:
        log = Log(bus, "orders", path=path)
        await log.append_many([(b"", "k")] * 3)
    async with Bus() as bus:
        Log(bus, "orders", path=path)
        bus.subscribe(LogRecord, handle, name="newcomer")
        await bus.drain()
    assert seen == [1, 2, 3]


async def test_filtered_records_move_the_stored_checkpoint(tmp_path: Path) -> None:
    """Records a filter drops are not read again after a restart."""
    path = tmp_path / "log.db"

    async def handle(record: LogRecord) -> None: ...

    async with Bus() as bus:
        log = Log(bus, "orders", path=path)
        bus.subscribe(LogRecord, handle, name="reader", where={"partition_key": ["a"]})
        await log.append(b"", "a")
        await bus.drain()
        await log.append_many([(b"", "b")] * 3)
        await bus.drain()
        assert log.checkpoints("reader") == {0: 1}  # stored when the bus stops
    assert rows(path, "SELECT partition, seq FROM eventbus_log_checkpoints") == [(0, 4)]


async def test_dead_lettered_records_are_checkpointed(tmp_path: Path) -> None:
    """A record given up on is not delivered again after a restart."""
    path = tmp_path / "log.db"
    attempts: list[int] = []

    async def failing(record: LogRecord, ctx: Context) -> None:
        attempts.append(record.sequence_number)
        raise Boom("no")

    async with Bus() as bus:
        log = Log(bus, "orders", path=path)
        bus.subscribe(LogRecord, failing, name="reader", retry=NoRetry())
        await log.append_many([(b"", "k")] * 2)
        await bus.drain()
        assert len(bus.dead_letters) == 2
    async with Bus() as bus:
        log = Log(bus, "orders", path=path)
        bus.subscribe(LogRecord, failing, name="reader", retry=NoRetry())
        await bus.drain()
        assert log.checkpoints("reader") == {0: 2}
    assert attempts == [1, 2]


async def test_retention_trims_the_file(tmp_path: Path, fake_clock: FakeClock) -> None:
    """Records older than the retention are deleted from the file by later appends."""
    path = tmp_path / "log.db"
    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders", path=path, retention=60)
        await log.append(b"old", "k")
        await fake_clock.advance(61)
        await log.append(b"new", "k")
    assert rows(path, "SELECT seq, data FROM eventbus_log_records") == [(2, b"new")]


async def test_the_partition_count_must_match_the_file(tmp_path: Path) -> None:
    """Reopening a log with another partition count is refused (keys would move)."""
    path = tmp_path / "log.db"
    async with Bus() as bus:
        Log(bus, "orders", partitions=2, path=path)
    async with Bus() as bus:
        with pytest.raises(ValueError, match="has 2 partition\\(s\\); open it with"):
            Log(bus, "orders", partitions=3, path=path)
        Log(bus, "clicks", partitions=3, path=path)  # another log in the same file


def test_a_log_on_a_bus_that_never_starts_leaves_no_open_file(tmp_path: Path) -> None:
    """A durable log whose bus is never started closes its file when collected (no ResourceWarning)."""
    import gc
    import warnings

    bus = Bus()
    Log(bus, "orders", path=tmp_path / "log.db")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del bus
        gc.collect()
