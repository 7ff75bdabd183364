"""Log consumers under failure: retries that hold the partition, partial batch failures,
bisection, record age, retry limits, parallel lanes, timeouts, shutdown and accounting."""

from __future__ import annotations

from collections import defaultdict

import anyio
import pytest

from eventbus import (
    Batching,
    BatchItemFailure,
    BatchResult,
    Bus,
    Context,
    DeadLetter,
    ExponentialBackoff,
    HandlerTimeout,
    InvocationRecord,
    LogRecord,
    NoRetry,
    SubscriptionMetrics,
)
from eventbus.sources._log_records import RecordExpired, lane_for
from eventbus.sources.logs import Log
from eventbus.testing import FakeClock
from eventbus.testing._clock import _wait_all_tasks_blocked as settle

STEADY = ExponentialBackoff(max_attempts=10, initial=10, multiplier=1, jitter=False)


class Boom(Exception):
    pass


def balanced(bus: Bus) -> bool:
    return all(m.balanced for m in bus.metrics().values())


def seq_of(letter: DeadLetter) -> int:
    """The sequence number of the log record a dead letter holds."""
    assert isinstance(letter.event, LogRecord)
    return letter.event.sequence_number


def check(bus: Bus, name: str = "reader") -> SubscriptionMetrics:
    """Sample the subscription's metrics and assert the accounting identity."""
    metrics = bus.metrics()[name]
    assert metrics.balanced, metrics
    return metrics


# -- a failing batch holds its partition ---------------------------------------------------


async def test_a_failing_record_holds_its_partition_until_its_retry(fake_clock: FakeClock) -> None:
    """Later records wait behind a failed one, which is retried after the policy's delay."""
    handled: list[int] = []
    attempts: list[int] = []
    samples: list[SubscriptionMetrics] = []
    bus = Bus(clock=fake_clock)

    async def handle(record: LogRecord, ctx: Context) -> None:
        samples.append(bus.metrics()["reader"])
        attempts.append(record.sequence_number)
        if record.sequence_number == 1 and ctx.attempt == 1:
            raise Boom("first try fails")
        handled.append(record.sequence_number)

    async with bus:
        log = Log(bus, "orders")
        bus.subscribe(LogRecord, handle, name="reader", retry=STEADY)
        await log.append_many([(b"", "a"), (b"", "b"), (b"", "c")])
        await settle()
        assert attempts == [1]
        metrics = check(bus)
        assert (metrics.waiting_retry, metrics.queued, metrics.errors) == (1, 2, 1)
        await fake_clock.advance(9.9)
        assert attempts == [1]
        await fake_clock.advance(0.1)
        assert attempts == [1, 1, 2, 3]
        assert handled == [1, 2, 3]
        metrics = check(bus)
        assert (metrics.succeeded, metrics.retries, metrics.dead_lettered) == (3, 1, 0)
    assert len(samples) == 4
    assert all(sample.balanced for sample in samples)


async def test_other_partitions_keep_flowing_while_one_retries(fake_clock: FakeClock) -> None:
    """Only the failing partition waits; records of other partitions are handled meanwhile."""
    handled: list[str] = []

    async def handle(record: LogRecord, ctx: Context) -> None:
        if record.sequence_number == 1 and ctx.attempt == 1:
            raise Boom("not yet")
        handled.append(record.partition_key)

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders", partitions=8)
        stuck = log.partition_for("stuck")
        other = next(f"k{i}" for i in range(100) if log.partition_for(f"k{i}") != stuck)
        bus.subscribe(LogRecord, handle, name="reader", retry=STEADY)
        await log.append_many([(b"", "stuck"), (b"", other), (b"", "stuck")])
        await settle()
        assert handled == [other]
        await fake_clock.advance(10)
        assert handled == [other, "stuck", "stuck"]


# -- partial batch failures ------------------------------------------------------------------


async def test_batch_result_retries_from_the_first_failed_record(fake_clock: FakeClock) -> None:
    """Records before the first failed id succeed and are checkpointed; the rest is retried."""
    calls: list[list[int]] = []

    async def handle(records: list[LogRecord]) -> BatchResult | None:
        calls.append([r.sequence_number for r in records])
        if len(calls) == 1:
            # 4 fails (and 2, which is ignored: retries start from the first failure)
            return BatchResult(failed=[records[3].id, records[2].id])
        return None

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders")
        bus.subscribe(LogRecord, handle, name="reader", batch=Batching(size=5), retry=STEADY)
        await log.append_many([(b"", "k")] * 5)
        await settle()
        metrics = check(bus)
        assert (metrics.succeeded, metrics.waiting_retry, metrics.errors) == (2, 3, 3)
        assert log.checkpoints("reader") == {0: 2}
        await fake_clock.advance(10)
        assert calls == [[1, 2, 3, 4, 5], [3, 4, 5]]
        assert log.checkpoints("reader") == {0: 5}
        assert check(bus).succeeded == 5


async def test_unknown_ids_in_a_batch_result_fail_the_whole_batch(fake_clock: FakeClock) -> None:
    """A BatchResult naming an id not in the batch fails every record of it."""
    calls: list[list[int]] = []

    async def handle(records: list[LogRecord]) -> BatchResult:
        calls.append([r.sequence_number for r in records])
        return BatchResult(failed=["no-such-id"])

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders")
        bus.subscribe(LogRecord, handle, name="reader", batch=Batching(size=5), retry=NoRetry())
        await log.append_many([(b"", "k")] * 3)
        await bus.drain()
        letters = list(bus.dead_letters)
    assert calls == [[1, 2, 3]]
    assert [seq_of(letter) for letter in letters] == [1, 2, 3]
    assert all(isinstance(letter.exception, BatchItemFailure) for letter in letters)
    assert "ids not in the batch (no-such-id)" in letters[0].error.error_message


# -- bisect on error ------------------------------------------------------------------------


async def test_bisect_on_error_isolates_the_poison_record() -> None:
    """A failing batch is split in halves until the bad record stands alone; order is kept."""
    calls: list[list[int]] = []
    handled: list[int] = []

    async def handle(records: list[LogRecord]) -> None:
        calls.append([r.sequence_number for r in records])
        if any(r.data == b"poison" for r in records):
            raise Boom("cannot handle poison")
        handled.extend(r.sequence_number for r in records)

    async with Bus() as bus:
        log = Log(bus, "orders")
        bus.subscribe(
            LogRecord,
            handle,
            name="reader",
            batch=Batching(size=8),
            retry=NoRetry(),
            bisect_on_error=True,
        )
        await log.append_many([(b"poison" if i == 6 else b"ok", "k") for i in range(1, 9)])
        await bus.drain()
        (letter,) = bus.dead_letters
        metrics = check(bus)
    assert calls == [
        [1, 2, 3, 4, 5, 6, 7, 8],
        [1, 2, 3, 4],
        [5, 6, 7, 8],
        [5, 6],
        [5],
        [6],
        [7, 8],
    ]
    assert handled == [1, 2, 3, 4, 5, 7, 8]
    assert seq_of(letter) == 6
    assert letter.condition == "RetriesExhausted"
    assert letter.attempts == 4
    assert (metrics.succeeded, metrics.dead_lettered) == (7, 1)


async def test_splitting_does_not_count_as_a_retry(fake_clock: FakeClock) -> None:
    """After bisection, the lone bad record still gets its max_retry_attempts retries."""
    alone: list[int] = []

    async def handle(records: list[LogRecord]) -> None:
        if any(r.data == b"poison" for r in records):
            if len(records) == 1:
                alone.append(records[0].sequence_number)
            raise Boom("poison")

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders")
        bus.subscribe(
            LogRecord,
            handle,
            name="reader",
            batch=Batching(size=4),
            retry=STEADY,
            bisect_on_error=True,
            max_retry_attempts=2,
        )
        await log.append_many([(b"ok", "k"), (b"poison", "k"), (b"ok", "k"), (b"ok", "k")])
        await fake_clock.advance(100)
        await bus.drain()
        (letter,) = bus.dead_letters
    assert alone == [2, 2, 2]
    assert letter.condition == "RetriesExhausted"


# -- record age and retry limits ---------------------------------------------------------------


async def test_max_record_age_skips_old_records_to_the_failure_destination(
    fake_clock: FakeClock,
) -> None:
    """Records older than max_record_age when their turn comes go to on_failure, unhandled."""
    gate = anyio.Event()
    handled: list[bytes] = []
    failures: list[InvocationRecord] = []

    async def handle(record: LogRecord) -> None:
        await gate.wait()
        handled.append(record.data)

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders")
        bus.subscribe(
            LogRecord, handle, name="reader", max_record_age=30, on_failure=failures.append
        )
        await log.append_many([(b"first", "k"), (b"second", "k")])
        await fake_clock.advance(31)
        gate.set()
        await bus.drain()
        (letter,) = bus.dead_letters
        metrics = check(bus)
    assert handled == [b"first"]
    assert letter.condition == "EventAgeExceeded"
    assert letter.attempts == 0
    assert isinstance(letter.exception, RecordExpired)
    assert "past its max_record_age (30s)" in letter.error.error_message
    assert [(f.event.id, f.condition) for f in failures] == [(letter.event.id, "EventAgeExceeded")]
    assert (metrics.succeeded, metrics.dead_lettered) == (1, 1)


async def test_a_record_that_ages_out_while_retrying_is_dead_lettered(
    fake_clock: FakeClock,
) -> None:
    """max_record_age also ends retries: the record is dropped at its next turn."""

    async def handle(record: LogRecord) -> None:
        raise Boom("always")

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders")
        bus.subscribe(LogRecord, handle, name="reader", retry=STEADY, max_record_age=25)
        await log.append(b"", "k")
        await fake_clock.advance(30)
        (letter,) = bus.dead_letters
    assert letter.condition == "EventAgeExceeded"
    assert letter.attempts == 3  # at 0, 10 and 20 seconds; at 30 it was too old


async def test_max_retry_attempts_dead_letters_and_moves_on(fake_clock: FakeClock) -> None:
    """After max_retry_attempts retries the record is dead-lettered and the partition goes on."""
    attempts: list[tuple[int, int]] = []

    async def handle(record: LogRecord, ctx: Context) -> None:
        attempts.append((record.sequence_number, ctx.attempt))
        if record.data == b"bad":
            raise Boom("bad record")

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders")
        # More retries than the policy's own max_attempts=3: the stream option wins.
        policy = ExponentialBackoff(initial=1, jitter=False)
        bus.subscribe(LogRecord, handle, name="reader", retry=policy, max_retry_attempts=4)
        await log.append_many([(b"bad", "k"), (b"good", "k")])
        await fake_clock.advance(3600)
        (letter,) = bus.dead_letters
        metrics = check(bus)
    assert attempts == [(1, 1), (1, 2), (1, 3), (1, 4), (1, 5), (2, 1)]
    assert letter.condition == "RetriesExhausted"
    assert letter.attempts == 5
    assert (metrics.errors, metrics.retries, metrics.succeeded) == (5, 4, 1)


async def test_without_max_retry_attempts_the_policy_decides(fake_clock: FakeClock) -> None:
    """A retry policy that gives up ends the retries (here NoRetry: one attempt)."""
    attempts: list[int] = []

    async def handle(record: LogRecord) -> None:
        attempts.append(record.sequence_number)
        raise Boom("no")

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders")
        bus.subscribe(LogRecord, handle, name="reader", retry=NoRetry())
        await log.append_many([(b"", "k")] * 2)
        await bus.drain()
        assert [letter.condition for letter in bus.dead_letters] == ["RetriesExhausted"] * 2
    assert attempts == [1, 2]


async def test_a_timeout_counts_and_dead_letters_with_timeout(fake_clock: FakeClock) -> None:
    """A handler past its timeout fails with HandlerTimeout; exhausted, the condition is Timeout."""

    async def handle(record: LogRecord) -> None:
        await anyio.Event().wait()

    async with Bus(clock=fake_clock) as bus:
        log = Log(bus, "orders")
        bus.subscribe(LogRecord, handle, name="reader", timeout=5, retry=NoRetry())
        await log.append(b"", "k")
        await fake_clock.advance(5)
        (letter,) = bus.dead_letters
        metrics = check(bus)
    assert letter.condition == "Timeout"
    assert isinstance(letter.exception, HandlerTimeout)
    assert (metrics.timeouts, metrics.errors) == (1, 1)


# -- parallelization factor ---------------------------------------------------------------------


def keys_in_distinct_lanes(log: Log, factor: int) -> tuple[str, str]:
    """Two keys of partition 0 that use different lanes."""
    keys = [f"key-{i}" for i in range(1000) if log.partition_for(f"key-{i}") == 0]
    first = keys[0]
    second = next(k for k in keys if lane_for(k, factor) != lane_for(first, factor))
    return first, second


async def test_parallelization_runs_batches_of_one_partition_at_once() -> None:
    """With parallelization_factor, a blocked key does not hold records of other keys."""
    gate = anyio.Event()
    handled: list[str] = []

    async with Bus() as bus:
        log = Log(bus, "orders")
        slow, fast = keys_in_distinct_lanes(log, 4)

        async def handle(record: LogRecord) -> None:
            if record.partition_key == slow:
                await gate.wait()
            handled.append(record.partition_key)

        bus.subscribe(LogRecord, handle, name="reader", parallelization_factor=4)
        await log.append_many([(b"", slow), (b"", fast), (b"", slow), (b"", fast)])
        await settle()
        assert handled == [fast, fast]
        assert check(bus).in_flight == 1
        assert log.checkpoints("reader") == {0: 0}  # record 1 is not done yet
        gate.set()
        await bus.drain()
        assert handled == [fast, fast, slow, slow]
        assert log.checkpoints("reader") == {0: 4}


async def test_parallel_lanes_keep_order_per_key_under_failures(fake_clock: FakeClock) -> None:
    """Every key's records are handled in append order, despite retries and bisection."""
    failed_once: set[int] = set()
    order: dict[str, list[int]] = defaultdict(list)
    samples: list[SubscriptionMetrics] = []
    bus = Bus(clock=fake_clock)

    async def handle(records: list[LogRecord]) -> None:
        samples.append(bus.metrics()["reader"])
        for record in records:
            seq = record.sequence_number
            if seq % 5 == 0 and seq not in failed_once:
                failed_once.add(seq)
                raise Boom(f"record {seq} fails once")
        for record in records:
            order[record.partition_key].append(record.sequence_number)

    async with bus:
        log = Log(bus, "orders", partitions=2)
        bus.subscribe(
            LogRecord,
            handle,
            name="reader",
            batch=Batching(size=4),
            retry=STEADY,
            bisect_on_error=True,
            parallelization_factor=3,
        )
        for round_ in range(10):
            await log.append_many([(b"", f"key-{i}") for i in range(12)])
            await fake_clock.advance(3 if round_ % 2 else 0)
        await fake_clock.advance(100)
        await bus.drain()
        metrics = check(bus)
    assert metrics.succeeded == 120
    assert metrics.dead_lettered == 0
    assert all(sample.balanced for sample in samples)
    for key, seqs in order.items():
        # a record may be handled again when a bisected half fails, but never out of order
        firsts = list(dict.fromkeys(seqs))
        assert firsts == sorted(firsts), key
        assert len(firsts) == 10


async def test_metrics_stay_balanced_through_failures(fake_clock: FakeClock) -> None:
    """Sampled inside handlers and between clock steps, the accounting identity holds."""
    samples: list[SubscriptionMetrics] = []
    bus = Bus(clock=fake_clock)

    async def handle(records: list[LogRecord], ctx: Context) -> BatchResult | None:
        samples.append(bus.metrics()["reader"])
        bad = [r.id for r in records if r.data == b"bad" and ctx.attempt < 3]
        return BatchResult(failed=bad) if bad else None

    async with bus:
        log = Log(bus, "orders", partitions=3)
        bus.subscribe(
            LogRecord, handle, name="reader", batch=Batching(size=5, window=1), retry=STEADY
        )
        for i in range(30):
            await log.append(b"bad" if i % 7 == 0 else b"ok", f"k{i % 4}")
            samples.append(bus.metrics()["reader"])
            await fake_clock.advance(0.5)
        for _ in range(10):
            await fake_clock.advance(5)
            samples.append(bus.metrics()["reader"])
        await bus.drain()
        final = check(bus)
    assert all(s.balanced for s in samples)
    assert any(s.waiting_retry for s in samples)
    assert any(s.in_flight for s in samples)
    assert (final.accepted, final.succeeded) == (30, 30)


# -- shutdown -------------------------------------------------------------------------------


async def test_an_abnormal_shutdown_dead_letters_records_of_a_memory_log() -> None:
    """Leaving the bus with an error dead-letters unhandled records (condition Shutdown)."""
    started = anyio.Event()

    async def handle(record: LogRecord) -> None:
        started.set()
        await anyio.Event().wait()

    bus = Bus()

    async def run() -> None:
        async with bus:
            log = Log(bus, "orders", partitions=2)
            bus.subscribe(LogRecord, handle, name="reader", batch=Batching(size=2))
            await log.append_many([(b"", "k")] * 3)
            await started.wait()
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        await run()
    letters = list(bus.dead_letters)
    assert sorted(seq_of(letter) for letter in letters) == [1, 2, 3]
    assert {letter.condition for letter in letters} == {"Shutdown"}
    metrics = check(bus)
    assert (metrics.dead_lettered, metrics.in_flight, metrics.queued) == (3, 0, 0)


async def test_an_abnormal_shutdown_during_a_retry_wait_dead_letters_the_batch(
    fake_clock: FakeClock,
) -> None:
    """Records waiting for a retry are dead-lettered (Shutdown) and leave waiting_retry."""

    async def handle(record: LogRecord) -> None:
        raise Boom("fails")

    bus = Bus(clock=fake_clock)

    async def run() -> None:
        async with bus:
            log = Log(bus, "orders")
            bus.subscribe(LogRecord, handle, name="reader", retry=STEADY)
            await log.append_many([(b"", "k")] * 2)
            await settle()
            assert check(bus).waiting_retry == 1
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        await run()
    letters = list(bus.dead_letters)
    assert [(x.condition, x.attempts) for x in letters] == [("Shutdown", 1), ("Shutdown", 0)]
    metrics = check(bus)
    assert (metrics.waiting_retry, metrics.dead_lettered) == (0, 2)
