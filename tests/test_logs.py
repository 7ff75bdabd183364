"""Log: appending, partitions, delivery to LogRecord subscriptions, starting positions, filters."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest

from eventbus import (
    Batching,
    Bus,
    BusClosed,
    Event,
    InvocationRecord,
    LogRecord,
    UnknownSubscription,
)
from eventbus.sources._log_records import RecordExpired
from eventbus.sources.logs import Log
from eventbus.testing import FakeClock
from eventbus.testing._clock import _wait_all_tasks_blocked as settle

NOW = datetime(2024, 1, 1, tzinfo=UTC)  # the fake_clock fixture's start


@pytest.fixture(params=["memory", "sqlite"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Path | None:
    """None for the memory backend, an SQLite file for the durable one."""
    return None if request.param == "memory" else tmp_path / "logs.db"


def balanced(bus: Bus) -> bool:
    return all(m.balanced for m in bus.metrics().values())


def keys_of(records: list[LogRecord]) -> list[tuple[str, int]]:
    return [(r.partition_key, r.sequence_number) for r in records]


# -- appending --------------------------------------------------------------------------


async def test_append_returns_increasing_sequence_numbers(db: Path | None) -> None:
    """Each append gets the next sequence number of the log."""
    async with Bus() as bus:
        log = Log(bus, "orders", partitions=3, path=db)
        seqs = [await log.append(b"x", f"k{i}") for i in range(5)]
        assert seqs == [1, 2, 3, 4, 5]
        assert log.last_sequence_number == 5


async def test_append_many_appends_in_order(db: Path | None) -> None:
    """append_many stores every pair in order and returns their sequence numbers."""
    seen: list[LogRecord] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record)

    async with Bus() as bus:
        log = Log(bus, "orders", path=db)
        bus.subscribe(LogRecord, handle, name="reader")
        assert await log.append_many([(b"a", "k"), ("b", "k"), (bytearray(b"c"), "k")]) == [1, 2, 3]
        assert await log.append_many([]) == []
        await bus.drain()
    assert [r.data for r in seen] == [b"a", b"b", b"c"]


def test_partitions_are_chosen_by_the_md5_of_the_key() -> None:
    """A key's partition is its MD5, as a 128-bit number, scaled to the partition count."""
    bus = Bus()
    log = Log(bus, "orders", partitions=4)
    for key in ["a", "customer-7", "é", "x" * 256]:
        digest = int(hashlib.md5(key.encode()).hexdigest(), 16)
        assert log.partition_for(key) == digest * 4 // 2**128
    assert len({log.partition_for(f"k{i}") for i in range(100)}) == 4


async def test_records_carry_stable_ids_and_their_position(
    fake_clock: FakeClock, db: Path | None
) -> None:
    """A record's id derives from log, partition and sequence number; time is the bus clock's."""
    seen: list[LogRecord] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record)

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders", partitions=2, path=db)
        bus.subscribe(LogRecord, handle, name="reader")
        seq = await log.append("hello", "customer-7")
        await bus.drain()
    (record,) = seen
    partition = log.partition_for("customer-7")
    assert record == LogRecord(
        "orders",
        "customer-7",
        seq,
        b"hello",
        partition,
        id=f"orders:shardId-{partition:012d}:{seq}",
        time=NOW,
        source="eventbus.logs/orders",
    )


async def test_bad_appends_are_refused_before_anything_is_stored() -> None:
    """Invalid data or keys raise at once and append nothing."""
    async with Bus() as bus:
        log = Log(bus, "orders")
        with pytest.raises(TypeError, match=r"takes bytes \(or str"):
            await log.append(42, "k")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"partition_key=...\) must be a string"):
            await log.append(b"x", 7)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="1 to 256 characters, got 0"):
            await log.append(b"x", "")
        with pytest.raises(ValueError, match="1 to 256 characters, got 257"):
            await log.append(b"x", "k" * 257)
        with pytest.raises(TypeError, match="takes \\(data, partition_key\\) pairs"):
            await log.append_many([(b"ok", "k"), b"nope"])  # type: ignore[list-item]
        assert log.last_sequence_number == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": ""}, ValueError, "1 to 255 characters"),
        ({"name": 3}, TypeError, "must be a string"),
        ({"partitions": 0}, ValueError, "partitions=...\\) must be an int from 1 to 1024"),
        ({"partitions": True}, ValueError, "must be an int from 1 to 1024"),
        ({"retention": 0}, ValueError, "retention=...\\) must be seconds > 0"),
        ({"retention": float("inf")}, ValueError, "must be seconds > 0"),
        ({"path": 3}, TypeError, "path=...\\) must be a file path or None"),
    ],
)
def test_bad_log_arguments_are_refused(kwargs: dict[str, Any], error: type, match: str) -> None:
    """Every Log argument is checked when the log is made."""
    args: dict[str, Any] = {"name": "orders"} | kwargs
    with pytest.raises(error, match=match):
        Log(Bus(), **args)


def test_a_log_needs_a_bus() -> None:
    """Passing something other than a Bus fails with a hint."""
    with pytest.raises(TypeError, match=r"Log\(bus, ...\) needs an eventbus.Bus"):
        Log("bus", "orders")  # type: ignore[arg-type]


def test_log_names_are_unique_per_bus() -> None:
    """A second log of the same name on one bus is refused."""
    bus = Bus()
    Log(bus, "orders")
    with pytest.raises(ValueError, match="already has a log named 'orders'"):
        Log(bus, "orders")


async def test_appending_after_the_bus_closed_is_refused() -> None:
    """Once its bus has stopped, a log refuses appends."""
    async with Bus() as bus:
        log = Log(bus, "orders")
    with pytest.raises(BusClosed, match="nothing was stored"):
        await log.append(b"x", "k")
    with pytest.raises(BusClosed, match="closing or closed"):
        Log(bus, "late")


# -- delivery ---------------------------------------------------------------------------


async def test_without_batching_records_arrive_one_at_a_time(db: Path | None) -> None:
    """A subscription without batch= gets single LogRecords, in order per partition key."""
    seen: list[Any] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record)

    async with Bus() as bus:
        log = Log(bus, "orders", path=db)
        bus.subscribe(LogRecord, handle, name="reader")
        for i in range(5):
            await log.append(b"%d" % i, "k")
        await bus.drain()
    assert all(isinstance(r, LogRecord) for r in seen)
    assert [r.sequence_number for r in seen] == [1, 2, 3, 4, 5]


async def test_batches_hold_records_of_one_partition_in_order(db: Path | None) -> None:
    """Batches have at most `size` records, all of one partition, in sequence order."""
    batches: list[list[LogRecord]] = []
    gate = anyio.Event()

    async def handle(records: list[LogRecord]) -> None:
        await gate.wait()
        batches.append(records)

    async with Bus() as bus:
        log = Log(bus, "orders", partitions=3, path=db)
        bus.subscribe(LogRecord, handle, name="reader", batch=Batching(size=4))
        await log.append_many([(b"", f"k{i % 7}") for i in range(40)])
        gate.set()
        await bus.drain()
    assert all(1 <= len(b) <= 4 for b in batches)
    assert any(len(b) == 4 for b in batches)
    for batch in batches:
        assert len({r.partition for r in batch}) == 1
    by_partition: dict[int, list[int]] = {}
    for batch in batches:
        by_partition.setdefault(batch[0].partition, []).extend(r.sequence_number for r in batch)
    for seqs in by_partition.values():
        assert seqs == sorted(seqs)
    assert sorted(s for seqs in by_partition.values() for s in seqs) == list(range(1, 41))


async def test_the_batching_window_waits_on_the_bus_clock(fake_clock: FakeClock) -> None:
    """A partial batch waits (in virtual time) until its window closes."""
    batches: list[list[int]] = []

    async def handle(records: list[LogRecord]) -> None:
        batches.append([r.sequence_number for r in records])

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders")
        bus.subscribe(LogRecord, handle, name="reader", batch=Batching(size=10, window=5))
        await log.append(b"", "k")
        await fake_clock.advance(2)
        await log.append(b"", "k")
        await fake_clock.advance(2.9)
        assert batches == []
        await fake_clock.advance(0.1)
        assert batches == [[1, 2]]


async def test_a_full_batch_does_not_wait_for_the_window(fake_clock: FakeClock) -> None:
    """Reaching the batch size delivers at once."""
    batches: list[list[int]] = []

    async def handle(records: list[LogRecord]) -> None:
        batches.append([r.sequence_number for r in records])

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders")
        bus.subscribe(LogRecord, handle, name="reader", batch=Batching(size=3, window=60))
        await log.append_many([(b"", "k")] * 3)
        await settle()
        assert batches == [[1, 2, 3]]


async def test_drain_waits_for_every_consumer(db: Path | None) -> None:
    """bus.drain() returns only when every subscription has handled every appended record."""
    counts = {"a": 0, "b": 0}

    async def slow(record: LogRecord) -> None:
        await anyio.lowlevel.checkpoint()
        counts["a"] += 1

    async def batched(records: list[LogRecord]) -> None:
        counts["b"] += len(records)

    async with Bus() as bus:
        log = Log(bus, "orders", partitions=4, path=db)
        bus.subscribe(LogRecord, slow, name="a")
        bus.subscribe(LogRecord, batched, name="b", batch=Batching(size=7))
        await log.append_many([(b"", f"k{i}") for i in range(50)])
        await bus.drain()
        assert counts == {"a": 50, "b": 50}
        assert bus.outstanding == 0
        metrics = bus.metrics()
        assert metrics["a"].accepted == metrics["a"].succeeded == 50
        assert balanced(bus)


async def test_records_appended_before_the_bus_starts_are_delivered(db: Path | None) -> None:
    """A log made before 'async with' keeps its records until the consumers run."""
    seen: list[int] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record.sequence_number)

    bus = Bus()
    log = Log(bus, "orders", path=db)
    bus.subscribe(LogRecord, handle, name="reader")
    await log.append(b"early", "k")
    async with bus:
        await bus.drain()
    assert seen == [1]


async def test_subscriptions_made_before_and_after_the_log_both_consume() -> None:
    """The log attaches to existing subscriptions and to later ones."""
    seen: list[str] = []

    async def first(record: LogRecord) -> None:
        seen.append("first")

    async def second(record: LogRecord) -> None:
        seen.append("second")

    async with Bus() as bus:
        bus.subscribe(LogRecord, first, name="first")
        log = Log(bus, "orders")
        bus.subscribe(LogRecord, second, name="second")
        await log.append(b"", "k")
        await bus.drain()
    assert sorted(seen) == ["first", "second"]


async def test_published_log_records_take_the_ordinary_queue() -> None:
    """bus.publish(LogRecord) reaches LogRecord subscriptions; appended records arrive once."""
    seen: list[str] = []
    everything: list[str] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record.id)

    async def catch_all(event: Event) -> None:
        everything.append(event.id)

    async with Bus() as bus:
        log = Log(bus, "orders")
        bus.subscribe(LogRecord, handle, name="reader")
        bus.subscribe(Event, catch_all, name="all")
        await log.append(b"", "k")
        published = LogRecord("elsewhere", "k", 1, b"", id="published")
        receipt = await bus.publish(published)
        await bus.drain()
    assert receipt.subscriptions == ("reader", "all")
    assert sorted(seen) == ["orders:shardId-000000000000:1", "published"]
    assert everything == ["published"]


async def test_subscriptions_to_log_record_subclasses_do_not_consume_logs() -> None:
    """Appended records are plain LogRecords: a subscription to a subclass never gets them."""

    @attrs.frozen
    class AuditRecord(LogRecord):
        pass

    seen: list[LogRecord] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record)

    async with Bus() as bus:
        log = Log(bus, "orders")
        bus.subscribe(AuditRecord, handle, name="audit")
        await log.append(b"", "k")
        await bus.drain()
        assert bus.metrics()["audit"].accepted == 0
    assert seen == []


# -- filters ----------------------------------------------------------------------------


async def test_where_drops_records_without_accepting_them(db: Path | None) -> None:
    """Filtered-out records are not accepted, and the checkpoint moves past them."""
    seen: list[str] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record.partition_key)

    async with Bus() as bus:
        log = Log(bus, "orders", path=db)
        bus.subscribe(LogRecord, handle, name="reader", where={"partition_key": ["a"]})
        await log.append_many([(b"", k) for k in "abab"])
        await bus.drain()
        assert seen == ["a", "a"]
        assert bus.metrics()["reader"].accepted == 2
        assert log.checkpoints("reader") == {0: 4}


async def test_where_on_the_log_name_picks_one_log() -> None:
    """where={"log": [...]} consumes one log of several on the bus."""
    seen: list[str] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record.log)

    async with Bus() as bus:
        orders = Log(bus, "orders")
        clicks = Log(bus, "clicks")
        bus.subscribe(LogRecord, handle, name="reader", where={"log": ["orders"]})
        await orders.append(b"", "k")
        await clicks.append(b"", "k")
        await orders.append(b"", "k")
        await bus.drain()
    assert seen == ["orders", "orders"]


async def test_a_predicate_that_raises_dead_letters_the_record() -> None:
    """A where predicate that raises dead-letters that record (NotRetryable); others flow."""
    seen: list[bytes] = []

    def pick(record: LogRecord) -> bool:
        if record.data == b"bad":
            raise ValueError("cannot read")
        return True

    async def handle(record: LogRecord) -> None:
        seen.append(record.data)

    async with Bus() as bus:
        log = Log(bus, "orders")
        bus.subscribe(LogRecord, handle, name="reader", where=pick)
        await log.append_many([(b"ok", "k"), (b"bad", "k"), (b"fine", "k")])
        await bus.drain()
        (letter,) = bus.dead_letters
        assert balanced(bus)
    assert seen == [b"ok", b"fine"]
    assert letter.condition == "NotRetryable"
    assert letter.error.error_type == "ValueError"
    assert letter.attempts == 0


# -- starting positions ------------------------------------------------------------------


async def test_trim_horizon_starts_with_the_oldest_record(db: Path | None) -> None:
    """By default a new subscription reads every retained record."""
    seen: list[int] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record.sequence_number)

    async with Bus() as bus:
        log = Log(bus, "orders", path=db)
        await log.append_many([(b"", "k")] * 3)
        bus.subscribe(LogRecord, handle, name="reader", starting_position="TRIM_HORIZON")
        await log.append(b"", "k")
        await bus.drain()
    assert seen == [1, 2, 3, 4]


async def test_latest_starts_after_the_last_record(db: Path | None) -> None:
    """LATEST skips what was appended before the subscription."""
    seen: list[int] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record.sequence_number)

    async with Bus() as bus:
        log = Log(bus, "orders", partitions=2, path=db)
        await log.append_many([(b"", f"k{i}") for i in range(3)])
        bus.subscribe(LogRecord, handle, name="reader", starting_position="LATEST")
        await log.append_many([(b"", f"k{i}") for i in range(2)])
        await bus.drain()
        assert bus.metrics()["reader"].accepted == 2
    assert sorted(seen) == [4, 5]


async def test_at_timestamp_starts_with_records_from_that_time(
    fake_clock: FakeClock, db: Path | None
) -> None:
    """AT_TIMESTAMP delivers the records appended at or after starting_timestamp."""
    seen: list[bytes] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record.data)

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders", path=db)
        await log.append(b"old", "k")
        await fake_clock.advance(10)
        await log.append(b"new", "k")
        bus.subscribe(
            LogRecord,
            handle,
            name="reader",
            starting_position="AT_TIMESTAMP",
            starting_timestamp=NOW + timedelta(seconds=10),
        )
        await log.append(b"newer", "k")
        await bus.drain()
    assert seen == [b"new", b"newer"]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"starting_position": "AT_TIMESTAMP"}, "needs starting_timestamp"),
        ({"starting_timestamp": NOW}, "only used with starting_position='AT_TIMESTAMP'"),
        (
            {"starting_position": "AT_TIMESTAMP", "starting_timestamp": datetime(2024, 1, 1)},
            "aware datetime",
        ),
    ],
)
def test_inconsistent_starting_options_are_refused(options: dict[str, Any], match: str) -> None:
    """AT_TIMESTAMP and starting_timestamp go together; subscribe refuses them otherwise."""
    bus = Bus()

    async def handle(record: LogRecord) -> None: ...

    with pytest.raises(ValueError, match=match):
        bus.subscribe(LogRecord, handle, name="reader", **options)
    assert not bus.has_subscription("reader")


# -- retention --------------------------------------------------------------------------


async def test_records_past_retention_are_not_delivered_to_new_consumers(
    fake_clock: FakeClock, db: Path | None
) -> None:
    """Retention (on the bus clock) drops old records: a later subscription never sees them."""
    seen: list[bytes] = []

    async def handle(record: LogRecord) -> None:
        seen.append(record.data)

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders", path=db, retention=60)
        await log.append(b"old", "k")
        await fake_clock.advance(61)
        await log.append(b"new", "k")
        bus.subscribe(LogRecord, handle, name="reader")
        await bus.drain()
    assert seen == [b"new"]


async def test_a_consumer_that_falls_behind_retention_dead_letters_the_records(
    fake_clock: FakeClock,
) -> None:
    """A record accepted but not handled within the retention is dead-lettered, not lost."""
    gate = anyio.Event()
    seen: list[bytes] = []

    async def handle(record: LogRecord) -> None:
        await gate.wait()
        seen.append(record.data)

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders", retention=60)
        bus.subscribe(LogRecord, handle, name="reader")
        await log.append_many([(b"first", "k"), (b"second", "k")])
        await fake_clock.advance(61)
        gate.set()
        await bus.drain()
        (letter,) = bus.dead_letters
        assert balanced(bus)
    assert seen == [b"first"]
    assert letter.event == LogRecord(
        "orders", "k", 2, b"second", id="orders:shardId-000000000000:2", time=NOW, source=log.source
    )
    assert letter.condition == "EventAgeExceeded"
    assert isinstance(letter.exception, RecordExpired)
    assert "past the log's retention (60s)" in letter.error.error_message


async def test_checkpoints_name_known_consumers_only() -> None:
    """checkpoints() needs the name of a subscription that consumes logs."""

    async def handle(event: Event) -> None: ...

    async with Bus() as bus:
        log = Log(bus, "orders")
        bus.subscribe(Event, handle, name="all")
        with pytest.raises(UnknownSubscription, match="no subscription named"):
            log.checkpoints("nobody")
        with pytest.raises(ValueError, match="does not consume logs"):
            log.checkpoints("all")


async def test_unsubscribing_stops_consuming_and_a_new_subscription_resumes(
    db: Path | None,
) -> None:
    """After unsubscribe nothing more is delivered; the same name later resumes at its checkpoint."""
    first: list[int] = []
    second: list[int] = []

    async def old(record: LogRecord) -> None:
        first.append(record.sequence_number)

    async def new(record: LogRecord) -> None:
        second.append(record.sequence_number)

    async with Bus() as bus:
        log = Log(bus, "orders", path=db)
        bus.subscribe(LogRecord, old, name="reader")
        await log.append(b"", "k")
        await bus.drain()
        await bus.unsubscribe("reader")
        await log.append(b"", "k")
        await bus.drain()
        bus.subscribe(LogRecord, new, name="reader")
        await log.append(b"", "k")
        await bus.drain()
        assert bus.metrics()["reader"].accepted == 2
    assert first == [1]
    assert second == [2, 3]


async def test_plain_functions_handle_records_in_a_worker_thread(db: Path | None) -> None:
    """A plain def handler receives batches too (it runs in a worker thread)."""
    seen: list[list[int]] = []

    def handle(records: list[LogRecord]) -> None:
        seen.append([r.sequence_number for r in records])

    async with Bus() as bus:
        log = Log(bus, "orders", path=db)
        bus.subscribe(LogRecord, handle, name="reader", batch=Batching(size=10))
        await log.append_many([(b"", "k")] * 3)
        await bus.drain()
    assert [n for batch in seen for n in batch] == [1, 2, 3]


async def test_on_success_gets_one_record_per_handled_log_record() -> None:
    """Each record of a successful batch is reported to on_success with the batch's result."""
    reports: list[InvocationRecord] = []

    async def handle(records: list[LogRecord]) -> str:
        return f"{len(records)} shipped"

    async with Bus() as bus:
        log = Log(bus, "orders")
        bus.subscribe(
            LogRecord,
            handle,
            name="reader",
            batch=Batching(size=10),
            on_success=reports.append,
        )
        await log.append_many([(b"", "k")] * 2)
        await bus.drain()
    assert [(r.event.id, r.result, r.outcome) for r in reports] == [
        ("orders:shardId-000000000000:1", "2 shipped", "Success"),
        ("orders:shardId-000000000000:2", "2 shipped", "Success"),
    ]
