"""Batches: a subscription with ``batch=Batching(size, window)`` delivers ``list[E]``.

A batch worker collects up to ``size`` queued events, waiting at most
``window`` seconds (bus clock) for more, and runs the handler once on the
list. The handler may return :class:`~eventbus.BatchResult` to fail only
some events (Lambda's ReportBatchItemFailures); those are retried together,
as a batch, or dead-lettered one by one.
"""

from __future__ import annotations

from datetime import datetime
from time import perf_counter

import anyio
import anyio.lowlevel

from ._attempts import SubscriptionAttempts, _Retry
from ._batching import Batching, BatchResult
from ._events import Event
from ._exceptions import BatchItemFailure, HandlerTimeout

__all__ = ["SubscriptionBatches"]


class SubscriptionBatches(SubscriptionAttempts):
    """Batch delivery of a :class:`~eventbus.Subscription` (a part of it)."""

    __slots__ = ()

    async def _batch_worker(self, config: Batching) -> None:
        """Collect up to ``size`` events (waiting at most ``window``) and deliver them at once."""
        queue = self._queue
        clock = self._bus.clock
        gate = self._gate
        while True:
            if gate is not None and not await self._admitted(gate):
                continue
            first = queue.popleft() if queue else await self._next_item()
            if isinstance(first, _Retry):
                events = first.all_events()
                self._take_n(len(events))
                await self._deliver_batch(events, first.attempt, first.first_failure)
                continue
            batch = [first]
            size = config.size
            while len(batch) < size and queue and not isinstance(queue[0], _Retry):
                batch.append(queue.popleft())  # type: ignore[arg-type]
            if len(batch) < size and config.window > 0:
                try:
                    with clock.deadline_scope(clock.now() + config.window):
                        while len(batch) < size:
                            item = await self._next_item()
                            if isinstance(item, _Retry):
                                queue.appendleft(item)
                                break
                            batch.append(item)
                            while len(batch) < size and queue and not isinstance(queue[0], _Retry):
                                batch.append(queue.popleft())  # type: ignore[arg-type]
                except BaseException:
                    # Cancelled while the batch filled (shutdown): put its events
                    # back, still queued, so shutdown sees and settles them.
                    queue.extendleft(reversed(batch))
                    raise
            self._take_n(len(batch))
            await self._deliver_batch(batch, 1, None)
            await anyio.lowlevel.checkpoint()

    def _take_n(self, n: int) -> None:
        c = self._counters
        c.queued -= n
        c.in_flight += n
        for _ in range(n):
            if not self._space_waiters:
                break
            self._wake_publisher()

    async def _deliver_batch(
        self, events: list[Event], attempt: int, first_failure: datetime | None
    ) -> None:
        """Run the handler on a batch until every event in it settles or waits for a retry."""
        c = self._counters
        bus = self._bus
        while True:
            start = perf_counter()
            failed: list[Event]
            error: BaseException | None = None
            try:
                result = await self._attempt(events[0], attempt, list(events))
            except anyio.get_cancelled_exc_class():
                if bus._shutting_down:
                    with anyio.CancelScope(shield=True):
                        for event in events:
                            await self._give_up(event, None, attempt, first_failure, "Shutdown")
                raise
            except Exception as exc:
                failed, error, result = events, exc, None
            else:
                failed, error = self._failed_items(events, result)
            c.record_duration(perf_counter() - start)
            if self._gate is not None:
                self._gate.record(not failed)
            failed_ids = {id(e) for e in failed}
            handled = [e for e in events if id(e) not in failed_ids]
            for i, event in enumerate(handled):
                if self.on_success is not None:
                    try:
                        await self._report(event, "Success", result, None, None, attempt, start)
                    except BaseException:
                        # Cut short (shutdown): the handler did succeed for these,
                        # and the failed ones must not be left in flight either.
                        for done in handled[i:]:
                            c.in_flight -= 1
                            c.succeeded += 1
                            self._settled(done)
                        if bus._shutting_down:
                            with anyio.CancelScope(shield=True):
                                for event_failed in failed:
                                    await self._give_up(
                                        event_failed, error, attempt, first_failure, "Shutdown"
                                    )
                        raise
                c.in_flight -= 1
                c.succeeded += 1
                self._settled(event)
            if not failed or error is None:
                return
            retry = await self._on_batch_failure(failed, error, attempt, first_failure)
            if retry is None:
                return
            events, attempt, first_failure = retry.all_events(), retry.attempt, retry.first_failure

    def _failed_items(
        self, events: list[Event], result: object
    ) -> tuple[list[Event], BaseException | None]:
        """Read a handler's :class:`BatchResult` (Lambda's ReportBatchItemFailures)."""
        if not isinstance(result, BatchResult) or not result.failed:
            return [], None
        by_id = {e.id: e for e in events}
        unknown = [i for i in result.failed if i not in by_id]
        if unknown:
            # As Lambda does: an id that is not in the batch fails the whole batch.
            return events, BatchItemFailure(
                f"subscription {self.name!r}: BatchResult.failed names ids not in the batch "
                f"({', '.join(unknown[:3])}); the whole batch is treated as failed"
            )
        failed_ids = set(result.failed)
        failed = [e for e in events if e.id in failed_ids]
        return failed, BatchItemFailure(
            f"subscription {self.name!r}: the handler reported {len(failed)} of "
            f"{len(events)} events as failed (BatchResult)"
        )

    async def _on_batch_failure(
        self,
        failed: list[Event],
        exc: BaseException,
        attempt: int,
        first_failure: datetime | None,
    ) -> _Retry | None:
        """The failed part of a batch: retry it later (as a batch) or dead-letter each event."""
        c = self._counters
        bus = self._bus
        n = len(failed)
        c.errors += n
        if isinstance(exc, HandlerTimeout):
            c.timeouts += n
        now = bus.clock.wall()
        if first_failure is None:
            first_failure = now
        age = max((now - e.time).total_seconds() for e in failed)
        decision = self._decide(exc, attempt, age)
        if isinstance(decision, str):
            for event in failed:
                await self._give_up(event, exc, attempt, first_failure, decision)
            return None
        c.retries += n
        c.in_flight -= n
        c.waiting_retry += n
        due = bus.clock.now() + decision
        if bus._hooks is not None:
            for event in failed:
                bus._hooks.retry(self.name, event, attempt + 1, decision)
        bus._spawn(self._retry_later, _Retry(failed[0], attempt + 1, first_failure, failed), due)
        return None
