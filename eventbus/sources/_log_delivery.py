"""Delivering one batch of a log consumer: attempts, partial failures, bisection, retries.

A batch is worked through as a queue of *pieces* (the whole batch at
first), always the front piece first, so records are never reordered:

* before each attempt, records older than the consumer's age limit are
  dead-lettered (``EventAgeExceeded``) and left out;
* a piece that succeeds settles its records;
* a :class:`~eventbus.BatchResult` naming failed ids settles the records
  before the first failed one; the rest is retried as a new piece;
* a piece that raises, with ``bisect_on_error`` and more than one record,
  is split in two halves retried at once (splitting does not count as a
  retry, as with Lambda's BisectBatchOnFunctionError);
* otherwise the retry policy (and ``max_retry_attempts``) decides: wait on
  the bus clock -- holding the lane, so nothing overtakes -- and try the
  piece again, or dead-letter its records and move on.
"""

from __future__ import annotations

import functools
from collections import deque
from datetime import datetime
from time import perf_counter
from typing import TYPE_CHECKING, final

import anyio

from .._batching import BatchResult
from .._exceptions import BatchItemFailure, HandlerTimeout
from .._retry import DeadLetterCondition, GiveUp
from ._log_records import RecordExpired, Rejected

if TYPE_CHECKING:
    from .._events import LogRecord
    from ._log_consumer import Consumer

__all__ = ["deliver"]


@final
class _Piece:
    """Records delivered together, with their history."""

    __slots__ = ("attempt", "failures", "first_failure", "records")

    def __init__(
        self,
        records: list[LogRecord],
        attempt: int = 1,
        failures: int = 0,
        first_failure: datetime | None = None,
    ) -> None:
        self.records = records
        self.attempt = attempt  # the next invocation's number (bisection included)
        self.failures = failures  # failed attempts that count against retries
        self.first_failure = first_failure


async def deliver(consumer: Consumer, items: list[LogRecord | Rejected]) -> None:
    """Deliver *items* (all in flight) until each is handled or dead-lettered.

    Cancellation propagates; when the bus is shutting down and the log is
    in memory, the records not yet settled are first dead-lettered with
    condition ``Shutdown``.
    """
    records: list[LogRecord] = []
    for item in items:
        if isinstance(item, Rejected):
            await consumer.dead_letter(item.record, item.error, 0, None, "NotRetryable")
        else:
            records.append(item)
    unsettled = {r.sequence_number: r for r in records}
    todo: deque[_Piece] = deque([_Piece(records)] if records else [])
    try:
        while todo:
            piece = todo[0]
            piece.records = await _drop_expired(consumer, piece, unsettled)
            if piece.records:
                await _attempt(consumer, todo, unsettled)
            else:
                todo.popleft()
    except anyio.get_cancelled_exc_class():
        if consumer.abandon_on_shutdown and consumer.bus._shutting_down:
            await _abandon(consumer, todo, unsettled, running=True)
        raise


async def _abandon(
    consumer: Consumer, todo: deque[_Piece], unsettled: dict[int, LogRecord], running: bool
) -> None:
    """Dead-letter every unsettled record (in flight) with condition ``Shutdown``.

    *running*: the front piece's attempt was under way (it counts as made).
    """
    with anyio.CancelScope(shield=True):
        for index, piece in enumerate(todo):
            made = piece.attempt if running and index == 0 else piece.attempt - 1
            for record in piece.records:
                if record.sequence_number in unsettled:
                    await consumer.dead_letter(record, None, made, piece.first_failure, "Shutdown")
                    del unsettled[record.sequence_number]
        for record in list(unsettled.values()):
            await consumer.dead_letter(record, None, 0, None, "Shutdown")
            del unsettled[record.sequence_number]


async def _drop_expired(
    consumer: Consumer, piece: _Piece, unsettled: dict[int, LogRecord]
) -> list[LogRecord]:
    """Dead-letter the piece's records past the age limit; return the others."""
    if consumer.max_age is None:
        return piece.records
    limit, what = consumer.max_age
    now = consumer.bus.clock.wall()
    keep: list[LogRecord] = []
    for record in piece.records:
        age = (now - record.time).total_seconds()
        if age <= limit:
            keep.append(record)
            continue
        error = RecordExpired(
            f"record {record.id} of log {record.log!r} is {age:g}s old, past {what} "
            f"({limit:g}s); subscription {consumer.sub.name!r} skipped it. Handle records "
            "sooner (more partitions, a larger parallelization_factor) or raise the limit"
        )
        await consumer.dead_letter(
            record, error, piece.attempt - 1, piece.first_failure, "EventAgeExceeded"
        )
        del unsettled[record.sequence_number]
    return keep


async def _attempt(
    consumer: Consumer, todo: deque[_Piece], unsettled: dict[int, LogRecord]
) -> None:
    """Run the handler once on the front piece and act on the outcome."""
    piece = todo[0]
    records = piece.records
    sub = consumer.sub
    c = consumer.counters
    start = perf_counter()
    result: object = None
    error: Exception | None = None
    failed_from = 0
    whole = True
    try:
        state = sub._state  # a stateful subscription: attempts run in state transactions
        if consumer.single:
            if state is None:
                result = await sub._attempt(records[0], piece.attempt)
            else:
                run = functools.partial(sub._attempt, records[0], piece.attempt)
                result = await state.attempt(run, records[0])
        elif state is None:
            result = await sub._attempt(records[0], piece.attempt, list(records))
        else:
            attempt = piece.attempt
            result = await state.attempt_batch(
                lambda batch: sub._attempt(batch[0], attempt, batch), list(records)
            )
    except Exception as exc:
        error = exc
    else:
        if not consumer.single:
            error, failed_from, whole = _read_result(sub.name, records, result)
    c.record_duration(perf_counter() - start)
    succeeded = records if error is None else records[:failed_from]
    for record in succeeded:
        await consumer.succeed(record, result, piece.attempt, start)
        del unsettled[record.sequence_number]
    if error is None:
        todo.popleft()
        return
    failed = records[failed_from:]
    n = len(failed)
    c.errors += n
    if isinstance(error, HandlerTimeout):
        c.timeouts += n
    bus = consumer.bus
    first_failure = piece.first_failure or bus.clock.wall()
    if whole and n > 1 and consumer.options.bisect_on_error:
        c.retries += n
        half = (n + 1) // 2
        todo[0] = _Piece(failed[half:], piece.attempt + 1, piece.failures, first_failure)
        todo.appendleft(_Piece(failed[:half], piece.attempt + 1, piece.failures, first_failure))
        return
    failures = piece.failures + 1
    decision = _decide(consumer, error, failures, failed)
    if isinstance(decision, str):
        todo.popleft()
        for record in failed:
            await consumer.dead_letter(record, error, piece.attempt, first_failure, decision)
            del unsettled[record.sequence_number]
        return
    c.retries += n
    c.in_flight -= n
    c.waiting_retry += n
    todo[0] = _Piece(failed, piece.attempt + 1, failures, first_failure)
    due = bus.clock.now() + decision
    try:
        # What succeeded so far is checkpointed: a restart resumes at the failure.
        await consumer.commit(failed[0].partition)
        await bus.clock.sleep_until(due)
    except anyio.get_cancelled_exc_class():
        if consumer.abandon_on_shutdown and bus._shutting_down:
            c.waiting_retry -= n
            c.in_flight += n
            await _abandon(consumer, todo, unsettled, running=False)
        raise
    c.waiting_retry -= n
    c.in_flight += n


def _read_result(
    name: str, records: list[LogRecord], result: object
) -> tuple[Exception | None, int, bool]:
    """Read a batch handler's :class:`BatchResult`: (error, first failed index, whole batch?)."""
    if not isinstance(result, BatchResult) or not result.failed:
        return None, len(records), False
    index = {r.id: i for i, r in enumerate(records)}
    unknown = [i for i in result.failed if i not in index]
    if unknown:
        # As Lambda does: an id that is not in the batch fails the whole batch.
        return (
            BatchItemFailure(
                f"subscription {name!r}: BatchResult.failed names ids not in the batch "
                f"({', '.join(unknown[:3])}); the whole batch is treated as failed"
            ),
            0,
            True,
        )
    first = min(index[i] for i in result.failed)
    return (
        BatchItemFailure(
            f"subscription {name!r}: the handler reported record {records[first].id} as "
            f"failed (BatchResult); it and the {len(records) - first - 1} record(s) after "
            "it are retried"
        ),
        first,
        False,
    )


def _decide(
    consumer: Consumer, error: Exception, failures: int, failed: list[LogRecord]
) -> float | DeadLetterCondition:
    """A delay before the next attempt, or the condition to give up with."""
    limit = consumer.options.max_retry_attempts
    condition: DeadLetterCondition
    if limit is not None and failures > limit:
        condition = "RetriesExhausted"
    else:
        now = consumer.bus.clock.wall()
        age = max((now - r.time).total_seconds() for r in failed)
        decision = consumer.policy.next_delay(error, failures, age)
        if decision is not None and not isinstance(decision, GiveUp):
            return max(0.0, float(decision))
        condition = decision.condition if decision is not None else "RetriesExhausted"
    if condition == "RetriesExhausted" and isinstance(error, HandlerTimeout):
        return "Timeout"
    return condition
