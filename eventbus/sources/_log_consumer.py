"""One subscription consuming one log: lanes, accounting and checkpoints.

The life of a record for one consumer, with the subscription counters each
step moves (``accepted == succeeded + dead_lettered + in_flight + queued +
waiting_retry`` holds throughout)::

    appended ──▶ filtered out: not accepted; the checkpoint moves past it
        └──────▶ accepted, queued in its lane ──▶ in_flight ──▶ succeeded
                                                     │   ▲
                                                     ▼   │ delay elapsed
                                               waiting_retry
                                                     └──────▶ dead_lettered

A record is accepted when it is appended (or, for records stored before the
consumer started, when the consumer loads them), so ``bus.drain()`` waits
for records no batch has read yet. Each partition has
``parallelization_factor`` lanes; a record's lane is chosen by the hash of
its partition key, so records with equal keys stay in order. A lane is one
task that takes a batch, delivers it (retries included) and only then takes
the next: a failing batch holds its lane.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeAlias, final

import anyio
import anyio.abc
import anyio.lowlevel
import attrs

from .._batching import StreamOptions
from .._retry import DeadLetterCondition, ExponentialBackoff, RetryPolicy
from ._log_delivery import deliver
from ._log_records import Rejected, lane_for
from ._log_store import Loaded

if TYPE_CHECKING:
    from .._bus import Bus
    from .._events import LogRecord
    from .._subscription import Subscription

__all__ = ["Consumer", "Lane", "SaveCheckpoints"]

logger = logging.getLogger("eventbus")

#: Stores a subscription's checkpoints (partition -> sequence number); False if it failed.
SaveCheckpoints: TypeAlias = Callable[[str, Mapping[int, int]], Awaitable[bool]]


@final
class _Tracker:
    """One partition's progress: which accepted records are still unsettled."""

    __slots__ = ("committed", "done", "seen", "unsettled")

    def __init__(self, position: int) -> None:
        self.seen = position  # the highest sequence number taken into account
        self.committed = position  # the checkpoint last handed to the store
        self.unsettled: deque[int] = deque()  # accepted, in sequence order
        self.done: set[int] = set()  # settled, but behind an unsettled one

    def accept(self, seq: int) -> None:
        self.unsettled.append(seq)
        self.seen = seq

    def skip(self, seq: int) -> None:
        self.seen = seq

    def finish(self, seq: int) -> None:
        unsettled = self.unsettled
        if not unsettled or unsettled[0] != seq:
            self.done.add(seq)
            return
        unsettled.popleft()
        done = self.done
        while unsettled and unsettled[0] in done:
            done.remove(unsettled.popleft())

    @property
    def position(self) -> int:
        """The checkpoint: every record up to it is settled (or was never accepted)."""
        return self.unsettled[0] - 1 if self.unsettled else self.seen


@final
class Lane:
    """A queue of accepted records of one partition (and one share of its keys)."""

    __slots__ = ("partition", "queue", "running", "waiter")

    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.queue: deque[LogRecord | Rejected] = deque()
        self.running = False
        self.waiter: anyio.Event | None = None

    def put(self, item: LogRecord | Rejected) -> None:
        self.queue.append(item)
        if self.waiter is not None:
            self.waiter.set()
            self.waiter = None

    async def wait(self) -> None:
        """Wait until something is put (cancellation: propagates)."""
        waiter = self.waiter = anyio.Event()
        try:
            await waiter.wait()
        finally:
            if self.waiter is waiter:
                self.waiter = None


def _effective_policy(retry: RetryPolicy, options: StreamOptions) -> RetryPolicy:
    """The stream options take the place of an ExponentialBackoff's own limits."""
    if not isinstance(retry, ExponentialBackoff):
        return retry
    changes: dict[str, Any] = {}
    if options.max_retry_attempts is not None:
        changes["max_attempts"] = int(options.max_retry_attempts) + 1
    if options.max_record_age is not None:
        changes["max_event_age"] = None
    return attrs.evolve(retry, **changes) if changes else retry


@final
class Consumer:
    """Delivers one log's records to one subscription (made by ``Log.attach``)."""

    __slots__ = (
        "_tg",
        "abandon_on_shutdown",
        "bus",
        "counters",
        "detached",
        "factor",
        "initial",
        "lanes",
        "live",
        "loading",
        "log",
        "max_age",
        "not_before",
        "options",
        "policy",
        "save",
        "single",
        "size",
        "sub",
        "trackers",
        "window",
    )

    def __init__(
        self,
        bus: Bus,
        sub: Subscription,
        *,
        log: str,
        partitions: int,
        retention: float | None,
        initial: int,
        durable: bool,
        save: SaveCheckpoints,
    ) -> None:
        options = sub.stream if sub.stream is not None else StreamOptions()
        self.bus = bus
        self.sub = sub
        self.log = log
        self.counters = sub._counters
        self.options = options
        self.policy = _effective_policy(sub.retry, options)
        self.single = sub.batch is None
        self.size = 1 if sub.batch is None else sub.batch.size
        self.window = 0.0 if sub.batch is None else float(sub.batch.window)
        self.factor = options.parallelization_factor
        limits: list[tuple[float, str]] = []
        if options.max_record_age is not None:
            limits.append((float(options.max_record_age), "its max_record_age"))
        if retention is not None:
            limits.append((retention, "the log's retention"))
        self.max_age: tuple[float, str] | None = min(limits) if limits else None
        self.not_before: datetime | None = (
            options.starting_timestamp if options.starting_position == "AT_TIMESTAMP" else None
        )
        self.initial = initial
        self.save = save
        # A durable log keeps unsettled records after the checkpoint; a
        # memory log would lose them, so they are dead-lettered on shutdown.
        self.abandon_on_shutdown = not durable
        self.lanes = [[Lane(p) for _ in range(self.factor)] for p in range(partitions)]
        self.trackers: list[_Tracker] = []
        self.live = False
        self.loading = False
        self.detached = False
        self._tg: anyio.abc.TaskGroup | None = None

    # -- intake ----------------------------------------------------------------------

    def begin(self, loaded: Loaded) -> None:
        """Start from *loaded* (checkpoints and the stored records after them)."""
        self.trackers = [
            _Tracker(loaded.checkpoints.get(p, self.initial)) for p in range(len(self.lanes))
        ]
        self.live = True
        if loaded.expired:
            logger.warning(
                "log %r: subscription %r starts after %d record(s) that the log's retention "
                "already dropped; they are not delivered",
                self.log,
                self.sub.name,
                loaded.expired,
            )
        for record in loaded.records:
            self.offer(record)

    def offer(self, record: LogRecord) -> None:
        """Accept *record* (or skip it: filtered out, or before ``starting_timestamp``)."""
        if self.detached:
            return
        if self.bus._subs.get(self.sub.name) is not self.sub:  # unsubscribed
            self.detach()
            return
        tracker = self.trackers[record.partition]
        seq = record.sequence_number
        if seq <= tracker.seen:
            return
        if self.not_before is not None and record.time < self.not_before:
            tracker.skip(seq)
            return
        item: LogRecord | Rejected = record
        try:
            if not self.sub.contains(record):
                tracker.skip(seq)
                return
        except Exception as exc:  # a predicate that raises dead-letters the record
            item = Rejected(record, exc)
        c = self.counters
        c.accepted += 1
        c.queued += 1
        self.bus._outstanding += 1
        tracker.accept(seq)
        lane = self.lanes[record.partition][lane_for(record.partition_key, self.factor)]
        lane.put(item)
        if not lane.running and self._tg is not None:
            self._spawn(lane, self._tg)

    def detach(self) -> None:
        """Accept no more records; lanes stop once what they accepted is settled."""
        self.detached = True
        for lanes in self.lanes:
            for lane in lanes:
                if lane.waiter is not None:
                    lane.waiter.set()
                    lane.waiter = None

    # -- running ---------------------------------------------------------------------

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Run lanes in *tg*: now for those with records, later as records arrive."""
        self._tg = tg
        for lanes in self.lanes:
            for lane in lanes:
                if lane.queue and not lane.running:
                    self._spawn(lane, tg)

    def _spawn(self, lane: Lane, tg: anyio.abc.TaskGroup) -> None:
        lane.running = True
        tg.start_soon(self._run_lane, lane)

    async def _run_lane(self, lane: Lane) -> None:
        bus = self.bus
        clock = bus.clock
        c = self.counters
        queue = lane.queue
        size = self.size
        try:
            while True:
                while not queue:
                    if self.detached:
                        lane.running = False
                        return
                    await lane.wait()
                if self.window > 0 and len(queue) < size:
                    with clock.deadline_scope(clock.now() + self.window):
                        while len(queue) < size and not self.detached:
                            await lane.wait()
                n = min(size, len(queue))
                items = [queue.popleft() for _ in range(n)]
                c.queued -= n
                c.in_flight += n
                # Held until the checkpoint is stored, so drain() waits for it too.
                bus._outstanding += 1
                try:
                    await deliver(self, items)
                    await self.commit(lane.partition)
                finally:
                    bus._settle()
                await anyio.lowlevel.checkpoint()
        except anyio.get_cancelled_exc_class():
            if self.abandon_on_shutdown and bus._shutting_down and queue:
                with anyio.CancelScope(shield=True):
                    while queue:
                        item = queue.popleft()
                        c.queued -= 1
                        c.in_flight += 1
                        record = item.record if isinstance(item, Rejected) else item
                        await self.dead_letter(record, None, 0, None, "Shutdown")
            raise

    # -- settling --------------------------------------------------------------------

    async def succeed(self, record: LogRecord, result: object, attempt: int, start: float) -> None:
        """*record* (in flight) was handled."""
        sub = self.sub
        if sub.on_success is not None:
            await sub._report(record, "Success", result, None, None, attempt, start)
        c = self.counters
        c.in_flight -= 1
        c.succeeded += 1
        self.trackers[record.partition].finish(record.sequence_number)
        sub._settled()

    async def dead_letter(
        self,
        record: LogRecord,
        error: BaseException | None,
        attempts: int,
        first_failure: datetime | None,
        condition: DeadLetterCondition,
    ) -> None:
        """Give up on *record* (in flight): dead letters and ``on_failure``; the log moves on."""
        await self.sub._give_up(record, error, attempts, first_failure, condition)
        self.trackers[record.partition].finish(record.sequence_number)

    async def commit(self, partition: int) -> None:
        """Store *partition*'s checkpoint if it moved."""
        tracker = self.trackers[partition]
        position = tracker.position
        if position > tracker.committed and await self.save(self.sub.name, {partition: position}):
            tracker.committed = max(tracker.committed, position)

    async def commit_all(self) -> None:
        """Store every checkpoint that moved (records filtered out since the last batch)."""
        moved = {
            partition: tracker.position
            for partition, tracker in enumerate(self.trackers)
            if tracker.position > tracker.committed
        }
        if moved and await self.save(self.sub.name, moved):
            for partition, position in moved.items():
                tracker = self.trackers[partition]
                tracker.committed = max(tracker.committed, position)

    def checkpoints(self) -> dict[int, int]:
        """The stored checkpoint of each partition."""
        return {p: t.committed for p, t in enumerate(self.trackers)}
