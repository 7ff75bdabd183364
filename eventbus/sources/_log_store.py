"""Where a :class:`~eventbus.Log` keeps its records and checkpoints: memory or SQLite.

A checkpoint is, per subscription and partition, the sequence number up to
which every record of that partition has been handled (or dead-lettered or
filtered out): a consumer that starts again resumes with the first record
after it. A subscription's checkpoints are created, from its starting
position, the first time it attaches, so a restart never skips what arrived
in between.

SQLite schema (several logs may share one file)::

    eventbus_logs            (name PK, partitions, last_sequence)
    eventbus_log_records     (log, seq, partition, partition_key, data, time)  -- PK (log, seq)
    eventbus_log_checkpoints (log, subscription, partition, seq)   -- PK (log, subscription, partition)

``time`` is microseconds since the Unix epoch. The file is in WAL mode with
``synchronous=FULL``: a record is on disk when ``append`` returns.
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final, NamedTuple, Protocol, TypeAlias, final

from .._sqlite import connect
from ._log_records import from_micros, to_micros

if TYPE_CHECKING:
    from .._events import LogRecord

__all__ = ["Loaded", "LogStore", "MemoryLogStore", "RecordFactory", "SqliteLogStore"]

#: Builds a record from (sequence number, partition, partition key, data, time).
RecordFactory: TypeAlias = "Callable[[int, int, str, bytes, datetime], LogRecord]"

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS eventbus_logs (
    name TEXT PRIMARY KEY,
    partitions INTEGER NOT NULL,
    last_sequence INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS eventbus_log_records (
    log TEXT NOT NULL,
    seq INTEGER NOT NULL,
    partition INTEGER NOT NULL,
    partition_key TEXT NOT NULL,
    data BLOB NOT NULL,
    time INTEGER NOT NULL,
    PRIMARY KEY (log, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS eventbus_log_records_time ON eventbus_log_records (log, time);
CREATE TABLE IF NOT EXISTS eventbus_log_checkpoints (
    log TEXT NOT NULL,
    subscription TEXT NOT NULL,
    partition INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (log, subscription, partition)
) WITHOUT ROWID;
"""


class Loaded(NamedTuple):
    """What a consumer starts from: its checkpoints and the records after them.

    Attributes:
        checkpoints: per partition, the sequence number it has handled up to.
        records: the retained records after the checkpoints, by sequence number.
        expired: records after the checkpoints that retention already dropped.
    """

    checkpoints: dict[int, int]
    records: list[LogRecord]
    expired: int


class LogStore(Protocol):
    """**Protocol:** a log's storage (internal); ``threaded`` stores block on I/O."""

    threaded: bool

    def open(self) -> int:
        """Create or check the storage; return the last sequence number used."""
        ...

    def close(self) -> None:
        """Release it."""
        ...

    def append(self, records: Sequence[LogRecord], trim_before: datetime | None) -> None:
        """Store *records* (in one transaction), first dropping records older than *trim_before*."""
        ...

    def load(self, subscription: str, initial: int, cutoff: datetime | None) -> Loaded:
        """*subscription*'s checkpoints (created at *initial* if new) and the records after them.

        Records older than *cutoff* are left out (and counted as expired).
        """
        ...

    def save(self, subscription: str, checkpoints: Mapping[int, int]) -> None:
        """Move *subscription*'s checkpoints forward (never back)."""
        ...


@final
class MemoryLogStore:
    """Records in per-partition deques; checkpoints in a dict. Lost with the process."""

    threaded = False

    def __init__(self, partitions: int) -> None:
        self._partitions = partitions
        self._records: list[deque[LogRecord]] = [deque() for _ in range(partitions)]
        self._checkpoints: dict[str, dict[int, int]] = {}

    def open(self) -> int:
        return 0

    def close(self) -> None:
        return None

    def append(self, records: Sequence[LogRecord], trim_before: datetime | None) -> None:
        if trim_before is not None:
            for stored in self._records:
                while stored and stored[0].time < trim_before:
                    stored.popleft()
        for record in records:
            self._records[record.partition].append(record)

    def load(self, subscription: str, initial: int, cutoff: datetime | None) -> Loaded:
        checkpoints = self._checkpoints.setdefault(
            subscription, dict.fromkeys(range(self._partitions), initial)
        )
        records: list[LogRecord] = []
        expired = 0
        for partition, stored in enumerate(self._records):
            after = checkpoints[partition]
            for record in stored:
                if record.sequence_number <= after:
                    continue
                if cutoff is not None and record.time < cutoff:
                    expired += 1
                else:
                    records.append(record)
        records.sort(key=lambda r: r.sequence_number)
        return Loaded(dict(checkpoints), records, expired)

    def save(self, subscription: str, checkpoints: Mapping[int, int]) -> None:
        stored = self._checkpoints.setdefault(subscription, {})
        for partition, seq in checkpoints.items():
            stored[partition] = max(stored.get(partition, 0), seq)


@final
class SqliteLogStore:
    """Records and checkpoints in an SQLite file; each append is one transaction.

    The connection is used from one worker thread at a time (the log holds a
    capacity limiter of one around every call).
    """

    threaded = True

    def __init__(self, path: Path, log: str, partitions: int, factory: RecordFactory) -> None:
        self._path = path
        self._log = log
        self._partitions = partitions
        self._factory = factory
        self._db: sqlite3.Connection | None = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(
                f"the SQLite file of log {self._log!r} is closed (its bus has stopped); "
                "create a new Log for the next bus"
            )
        return self._db

    def open(self) -> int:
        if self._db is not None:
            return self._last_sequence()
        db = connect(self._path)  # a new file is created private (0600)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(_SCHEMA)
            self._db = db
            return self._register()
        except BaseException:
            self._db = None
            db.close()
            raise

    def _register(self) -> int:
        db = self._conn
        with _transaction(db):
            found = db.execute(
                "SELECT partitions, last_sequence FROM eventbus_logs WHERE name = ?", (self._log,)
            ).fetchone()
            if found is None:
                db.execute(
                    "INSERT INTO eventbus_logs (name, partitions) VALUES (?, ?)",
                    (self._log, self._partitions),
                )
                return 0
        if found[0] != self._partitions:
            raise ValueError(
                f"log {self._log!r} in {str(self._path)!r} has {found[0]} partition(s); "
                f"open it with Log(..., partitions={found[0]}) (partitions cannot change, "
                "since keys would move between them), or use another name"
            )
        return int(found[1])

    def _last_sequence(self) -> int:
        row = self._conn.execute(
            "SELECT last_sequence FROM eventbus_logs WHERE name = ?", (self._log,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def append(self, records: Sequence[LogRecord], trim_before: datetime | None) -> None:
        db = self._conn
        with _transaction(db):
            if trim_before is not None:
                db.execute(
                    "DELETE FROM eventbus_log_records WHERE log = ? AND time < ?",
                    (self._log, to_micros(trim_before)),
                )
            db.executemany(
                "INSERT INTO eventbus_log_records "
                "(log, seq, partition, partition_key, data, time) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        self._log,
                        r.sequence_number,
                        r.partition,
                        r.partition_key,
                        r.data,
                        to_micros(r.time),
                    )
                    for r in records
                ],
            )
            if records:
                db.execute(
                    "UPDATE eventbus_logs SET last_sequence = ? WHERE name = ?",
                    (records[-1].sequence_number, self._log),
                )

    def load(self, subscription: str, initial: int, cutoff: datetime | None) -> Loaded:
        db = self._conn
        with _transaction(db):
            rows = db.execute(
                "SELECT partition, seq FROM eventbus_log_checkpoints "
                "WHERE log = ? AND subscription = ?",
                (self._log, subscription),
            ).fetchall()
            checkpoints = {int(p): int(s) for p, s in rows}
            missing = [p for p in range(self._partitions) if p not in checkpoints]
            if missing:
                db.executemany(
                    "INSERT INTO eventbus_log_checkpoints (log, subscription, partition, seq) "
                    "VALUES (?, ?, ?, ?)",
                    [(self._log, subscription, p, initial) for p in missing],
                )
                checkpoints.update(dict.fromkeys(missing, initial))
            rows = db.execute(
                "SELECT seq, partition, partition_key, data, time FROM eventbus_log_records "
                "WHERE log = ? AND seq > ? ORDER BY seq",
                (self._log, min(checkpoints.values())),
            ).fetchall()
        limit = None if cutoff is None else to_micros(cutoff)
        records: list[LogRecord] = []
        expired = 0
        factory = self._factory
        for seq, partition, key, data, micros in rows:
            if seq <= checkpoints.get(partition, initial):
                continue
            if limit is not None and micros < limit:
                expired += 1
                continue
            records.append(factory(seq, partition, key, bytes(data), from_micros(micros)))
        return Loaded(checkpoints, records, expired)

    def save(self, subscription: str, checkpoints: Mapping[int, int]) -> None:
        db = self._conn
        with _transaction(db):
            db.executemany(
                "INSERT INTO eventbus_log_checkpoints (log, subscription, partition, seq) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (log, subscription, partition) "
                "DO UPDATE SET seq = max(seq, excluded.seq)",
                [(self._log, subscription, p, s) for p, s in checkpoints.items()],
            )


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, or ``ROLLBACK`` if the block raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
