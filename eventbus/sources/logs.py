"""Partitioned logs and their consumers (the Kinesis Data Streams model).

:class:`Log` is an append-only log split into partitions (shards), kept in
memory or in an SQLite file. Subscriptions to :class:`LogRecord` consume
every log on their bus the way Lambda consumes a Kinesis or DynamoDB stream:
in batches, in order per partition, from a starting position, with
checkpoints, partial batch failures, bisection on error, a maximum record
age, a maximum number of retries and a parallelization factor.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeAlias, final

import anyio
import anyio.abc
import anyio.to_thread

from .._events import LogRecord
from .._exceptions import BusClosed
from ._log_consumer import Consumer
from ._log_records import (
    check_data,
    check_partition_key,
    check_partitions,
    check_retention,
    check_stream_options,
    partition_for,
    record_id,
)
from ._log_store import LogStore, MemoryLogStore, SqliteLogStore

if TYPE_CHECKING:
    from .._bus import Bus
    from .._subscription import Subscription

__all__ = ["DEFAULT_RETENTION", "Log", "LogData", "LogRecord"]

logger = logging.getLogger("eventbus")

DEFAULT_RETENTION: Final = 24 * 3600.0  # seconds, as Kinesis keeps records by default

LogData: TypeAlias = bytes | bytearray | memoryview | str
"""A record's payload as given to :meth:`Log.append`: bytes-like, or text (stored as UTF-8)."""


@final
class Log:
    """An append-only, partitioned log whose records stream to ``LogRecord`` subscriptions.

    ::

        orders = Log(bus, "orders", partitions=4, path="shop.db")
        bus.subscribe(LogRecord, ship, name="shipping", batch=Batching(100, window=1),
                      where={"log": ["orders"]}, bisect_on_error=True)
        await orders.append(b'{"id": 1}', partition_key="customer-7")

    Records go to a partition by the MD5 hash of their partition key (as in
    Kinesis, so the mapping is the same in every process) and get the next
    sequence number of the log. Every subscription on the bus whose event
    types include :class:`LogRecord` consumes every log on the bus -- use
    ``where={"log": ["orders"]}`` to pick one -- with Lambda's stream
    semantics: see ``docs/streams.md``. Records are not published on the
    bus, so other subscriptions (a catch-all on ``Event``) do not see them,
    and no subscription sees a record twice.

    A record counts as *accepted* by a subscription when it is appended (or,
    for records stored before the subscription started, when they are
    loaded), so ``bus.drain()`` waits until every consumer has handled or
    dead-lettered it. Records that a ``where`` filter rejects are never
    accepted, but the consumer's checkpoint moves past them.

    With ``path=`` records and every subscription's checkpoints live in one
    SQLite file (WAL mode, each append one transaction, on disk before
    ``append`` returns; reads and writes run in a worker thread). A new
    bus with a ``Log`` on the same file and a subscription of the same name
    resumes after its last checkpoint: nothing checkpointed is delivered
    again, and nothing after it is skipped (at-least-once: a record handled
    just before a crash may be delivered again). The file is opened here --
    a short blocking call -- and closed when the bus stops. Use one ``Log``
    per name and file at a time. In memory (``path=None``) records live as
    long as the bus; on an abnormal shutdown, records not yet handled are
    dead-lettered with condition ``Shutdown`` (a durable log keeps them for
    the next run instead).

    Args:
        bus: the bus whose ``LogRecord`` subscriptions consume the log.
        name: the log (stream) name: 1-255 letters, digits, ``_``, ``-``, ``.``.
        partitions: how many partitions (shards): 1 to 1024.
        path: an SQLite file for a durable log; ``None`` keeps it in memory.
        retention: seconds a record is kept (on the bus clock); older
            records are dropped and never delivered (a consumer that falls
            that far behind dead-letters them, ``EventAgeExceeded``).
            ``None`` keeps records forever. Default: 24 hours.

    Raises:
        TypeError, ValueError: an argument is invalid, another ``Log`` on
            this bus has the same name, or the file holds this log with a
            different number of partitions.
        BusClosed: the bus is closing or closed.
        sqlite3.Error: the file cannot be opened.

    .. versionadded:: 0.1
    """

    __slots__ = (
        "__weakref__",  # weakref.finalize closes the file of a log whose bus never ran
        "_bus",
        "_closed",
        "_consumers",
        "_last",
        "_limiter",
        "_name",
        "_next_trim",
        "_partitions",
        "_path",
        "_retention",
        "_store",
        "_tg",
        "_write_lock",
    )

    def __init__(
        self,
        bus: Bus,
        name: str,
        partitions: int = 1,
        path: str | os.PathLike[str] | None = None,
        retention: float | None = DEFAULT_RETENTION,
    ) -> None:
        from ._common import check_bus, check_name  # a cycle: the bus imports LogRecord

        self._bus = check_bus("Log", bus)
        self._name = check_name("Log", "name", name)
        self._partitions = check_partitions(partitions)
        self._retention = check_retention(retention)
        if bus._state.value in ("closing", "closed"):
            raise BusClosed(
                f"Log({name!r}): the bus is closing or closed; create logs before or inside "
                "its 'async with Bus() as bus:' block"
            )
        for source in bus._stream_sources:
            if isinstance(source, Log) and source.name == name:
                raise ValueError(
                    f"Log({name!r}): this bus already has a log named {name!r}; "
                    "record ids and 'where' filters tell logs apart by name, so use another"
                )
        subs = [s for s in bus.subscriptions() if _consumes(s)]
        for sub in subs:
            check_stream_options(sub)
        store: LogStore
        if path is None:
            self._path: Path | None = None
            store = MemoryLogStore(self._partitions)
        else:
            if not isinstance(path, str | os.PathLike):
                raise TypeError(
                    f"Log(path=...) must be a file path or None, got {type(path).__name__}"
                )
            self._path = Path(path)
            store = SqliteLogStore(self._path, name, self._partitions, self._record)
        self._last = store.open()
        self._store = store
        # The bus closes the file when it stops; a bus that never starts never
        # stops, so the file is also closed when the log is collected.
        weakref.finalize(self, store.close)
        self._limiter = anyio.CapacityLimiter(1) if store.threaded else None
        self._write_lock = anyio.Lock()
        self._consumers: dict[str, Consumer] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._next_trim: float | None = None  # when the next append trims old records
        self._closed = False
        bus._add_stream_source(self)

    # -- properties ------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The log (stream) name."""
        return self._name

    @property
    def partitions(self) -> int:
        """How many partitions the log has."""
        return self._partitions

    @property
    def path(self) -> Path | None:
        """The SQLite file, or ``None`` in memory."""
        return self._path

    @property
    def retention(self) -> float | None:
        """Seconds a record is kept, or ``None`` for ever."""
        return self._retention

    @property
    def source(self) -> str:
        """The ``source`` of this log's records: ``eventbus.logs/<name>``."""
        return f"eventbus.logs/{self._name}"

    @property
    def last_sequence_number(self) -> int:
        """The sequence number of the last record appended (0 before any)."""
        return self._last

    def partition_for(self, partition_key: str) -> int:
        """The partition records with *partition_key* go to.

        Raises:
            TypeError, ValueError: *partition_key* is not a string of 1-256 characters.
        """
        return partition_for(check_partition_key(partition_key), self._partitions)

    def checkpoints(self, subscription: str) -> dict[int, int]:
        """The stored checkpoint of each partition for the subscription called *subscription*.

        A checkpoint is the sequence number up to which every record of the
        partition has been handled, dead-lettered or filtered out; a
        restarted consumer resumes after it. Empty until a durable log has
        loaded the subscription's checkpoints.

        Raises:
            UnknownSubscription: no subscription has that name.
            ValueError: that subscription does not consume logs.
        """
        sub = self._bus.subscription(subscription)
        consumer = self._consumers.get(sub.name)
        if consumer is None:
            raise ValueError(
                f"subscription {subscription!r} does not consume logs: subscribe to LogRecord"
            )
        return consumer.checkpoints() if consumer.live else {}

    def __repr__(self) -> str:
        where = "memory" if self._path is None else repr(str(self._path))
        return (
            f"<Log {self._name!r} partitions={self._partitions} in {where} "
            f"last_sequence_number={self._last}>"
        )

    # -- appending -------------------------------------------------------------------

    async def append(self, data: LogData, partition_key: str) -> int:
        """Append one record and return its sequence number (Kinesis ``PutRecord``).

        Returns once the record is stored (on disk, for a durable log) and
        accepted by every consuming subscription; it does not wait for
        handlers. Appending never waits for consumers: a log has no
        backpressure, consumers fall behind instead.

        Args:
            data: the payload: bytes (or bytearray, memoryview), or text (stored
                as UTF-8).
            partition_key: chooses the partition; records with equal keys
                are delivered in append order. 1-256 characters.

        Returns:
            The record's sequence number, increasing across the whole log.

        Raises:
            TypeError, ValueError: *data* or *partition_key* is invalid.
            BusClosed: the bus is closed (or shutting down after an error).
            sqlite3.Error: the write failed; nothing was appended.

        If cancelled while waiting for an earlier append, nothing is appended;
        once the write has started it completes.
        """
        (seq,) = await self.append_many([(data, partition_key)])
        return seq

    async def append_many(self, records: Iterable[tuple[LogData, str]]) -> list[int]:
        """Append several records at once, in order (Kinesis ``PutRecords``).

        All of them are stored in one transaction, or none is.

        Args:
            records: ``(data, partition_key)`` pairs, as for :meth:`append`.

        Returns:
            Their sequence numbers, in the same order.

        Raises:
            TypeError, ValueError: an item is invalid (nothing is appended).
            BusClosed: the bus is closed (or shutting down after an error).
            sqlite3.Error: the write failed; nothing was appended.

        Cancellation behaves as for :meth:`append`.
        """
        items = [self._check_item(item) for item in records]
        if not items:
            return []
        self._check_open()
        if self._limiter is None:
            return self._write(items)
        seqs: list[int] = []
        async with self._write_lock:
            self._check_open()  # the bus may have stopped while this waited
            # Once the write starts, it completes and its records reach the consumers.
            with anyio.CancelScope(shield=True):
                seqs = await self._write_threaded(items)
        return seqs

    def _check_item(self, item: object) -> tuple[bytes, str, int]:
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(
                f"Log.append_many() takes (data, partition_key) pairs, got {item!r:.80}"
            )
        data = check_data(item[0])
        key = check_partition_key(item[1])
        return data, key, partition_for(key, self._partitions)

    def _check_open(self) -> None:
        bus = self._bus
        if self._closed or bus._state.value == "closed" or bus._shutting_down:
            raise BusClosed(
                f"log {self._name!r}: its bus is closed, so the record could not be appended "
                "(nothing was stored); append inside 'async with Bus() as bus:'"
            )

    def _build(
        self, items: list[tuple[bytes, str, int]]
    ) -> tuple[list[LogRecord], datetime | None]:
        clock = self._bus.clock
        now = clock.wall()
        records = [
            self._record(self._last + i, partition, key, data, now)
            for i, (data, key, partition) in enumerate(items, start=1)
        ]
        trim: datetime | None = None
        if self._retention is not None and (
            self._next_trim is None or clock.now() >= self._next_trim
        ):
            trim = now - timedelta(seconds=self._retention)
            self._next_trim = clock.now() + min(self._retention / 10, 60.0)
        return records, trim

    def _write(self, items: list[tuple[bytes, str, int]]) -> list[int]:
        records, trim = self._build(items)
        self._store.append(records, trim)
        self._accepted(records)
        return [r.sequence_number for r in records]

    async def _write_threaded(self, items: list[tuple[bytes, str, int]]) -> list[int]:
        records, trim = self._build(items)
        await anyio.to_thread.run_sync(
            partial(self._store.append, records, trim), limiter=self._limiter
        )
        self._accepted(records)
        return [r.sequence_number for r in records]

    def _accepted(self, records: list[LogRecord]) -> None:
        """Stored: hand the records to every consumer."""
        self._last = records[-1].sequence_number
        for consumer in self._consumers.values():
            if consumer.live:
                for record in records:
                    consumer.offer(record)

    def _record(
        self, seq: int, partition: int, partition_key: str, data: bytes, time: datetime
    ) -> LogRecord:
        return LogRecord(
            self._name,
            partition_key,
            seq,
            data,
            partition,
            id=record_id(self._name, partition, seq),
            time=time,
            source=self.source,
        )

    # -- the bus's stream source hooks ------------------------------------------------

    def attach(self, sub: Subscription) -> None:
        """Start consuming for *sub*, a subscription to ``LogRecord`` (called by the bus).

        Raises:
            ValueError: its stream options are inconsistent (``AT_TIMESTAMP``
                without a ``starting_timestamp``, or the reverse).
        """
        if not _consumes(sub):
            return
        check_stream_options(sub)
        previous = self._consumers.get(sub.name)
        if previous is not None:
            if previous.sub is sub:
                return
            previous.detach()  # a subscription of that name was removed; this one replaces it
        options = sub.stream
        latest = options is not None and options.starting_position == "LATEST"
        consumer = Consumer(
            self._bus,
            sub,
            log=self._name,
            partitions=self._partitions,
            retention=self._retention,
            initial=self._last if latest else 0,
            durable=self._limiter is not None,
            save=self._save,
        )
        self._consumers[sub.name] = consumer
        if self._limiter is None:
            consumer.begin(self._store.load(sub.name, consumer.initial, self._cutoff()))
        else:
            # Loading reads the file: a task does it. Until then drain() waits.
            self._bus._outstanding += 1
            consumer.loading = True
            if self._tg is not None:
                self._tg.start_soon(self._load, consumer)
        if self._tg is not None:
            consumer.start(self._tg)

    def detach(self, sub: Subscription) -> None:
        """Stop consuming for *sub* (being unsubscribed): records it accepted still finish."""
        consumer = self._consumers.get(sub.name)
        if consumer is not None and consumer.sub is sub:
            consumer.detach()
            del self._consumers[sub.name]

    def start(self, tg: anyio.abc.TaskGroup) -> None:
        """Run the consumers in the bus's task group (called by the bus)."""
        if self._tg is not None:
            return
        self._tg = tg
        for consumer in self._consumers.values():
            if consumer.loading:
                tg.start_soon(self._load, consumer)
            consumer.start(tg)
        tg.start_soon(self._keep_open)

    async def _load(self, consumer: Consumer) -> None:
        try:
            async with self._write_lock:
                loaded = await anyio.to_thread.run_sync(
                    partial(self._store.load, consumer.sub.name, consumer.initial, self._cutoff()),
                    limiter=self._limiter,
                )
                consumer.loading = False
                consumer.begin(loaded)
        finally:
            self._bus._settle()

    async def _keep_open(self) -> None:
        """Wait for the bus to stop, then store moved checkpoints and close the file."""
        try:
            await anyio.Event().wait()
        finally:
            with anyio.CancelScope(shield=True):
                await self._close()

    async def _close(self) -> None:
        self._closed = True
        for consumer in self._consumers.values():
            if consumer.live:
                await consumer.commit_all()
        await self._run(self._store.close)

    async def _save(self, subscription: str, checkpoints: Mapping[int, int]) -> bool:
        try:
            await self._run(partial(self._store.save, subscription, checkpoints))
        except Exception:
            logger.exception(
                "log %r could not store the checkpoints of subscription %r; the records "
                "since its last stored checkpoint will be delivered again after a restart",
                self._name,
                subscription,
            )
            return False
        return True

    async def _run(self, fn: Callable[[], object]) -> None:
        if self._limiter is None:
            fn()
        else:
            await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    def _cutoff(self) -> datetime | None:
        if self._retention is None:
            return None
        return self._bus.clock.wall() - timedelta(seconds=self._retention)


def _consumes(sub: Subscription) -> bool:
    """Whether *sub* takes plain :class:`LogRecord` s and only log records (a stream consumer)."""
    types = sub.event_types
    return LogRecord in types and all(issubclass(t, LogRecord) for t in types)
