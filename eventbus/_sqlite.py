"""A small SQLite helper shared by the durable stores (internal)."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Final, Self, TypeVar, final

import anyio.to_thread

__all__ = ["ClosingFile", "SqliteFile", "from_us", "to_us", "transaction"]

T = TypeVar("T")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@final
class SqliteFile:
    """One SQLite connection, used from one thread at a time (internal).

    Opened in WAL mode with ``synchronous=FULL``: a transaction that has
    committed survives a process kill and a power loss. Blocking work runs in
    a worker thread (:meth:`call`) so the event loop never waits on disk;
    a lock serialises it with the synchronous readers (:meth:`run`).
    """

    __slots__ = ("_db", "_lock", "owner", "path")

    def __init__(self, path: str | os.PathLike[str], schema: str, owner: str) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"{owner}(path) takes a file path, got {type(path).__name__}")
        self.path = os.fspath(path)
        self.owner = owner
        self._lock = threading.Lock()
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            exc.add_note(f"{owner}: cannot open {self.path!r}; check the directory exists")
            raise
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(schema)
        except sqlite3.Error as exc:
            db.close()
            exc.add_note(f"{owner}: {self.path!r} is not a usable SQLite database")
            raise
        self._db: sqlite3.Connection | None = db

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._db is None

    def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` here, holding the lock."""
        with self._lock:
            db = self._db
            if db is None:
                raise RuntimeError(
                    f"{self.owner}({self.path!r}) is closed; open a new one to use the file again"
                )
            return fn(db)

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` in a worker thread, holding the lock.

        A thread cannot be interrupted: on cancellation the work still
        finishes (a write commits), then the cancellation propagates.
        """
        return await anyio.to_thread.run_sync(self.run, fn)

    def close(self) -> None:
        """Close the connection (after any work in progress); idempotent."""
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()


def transaction(db: sqlite3.Connection, fn: Callable[[], T]) -> T:
    """Run *fn* inside ``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back if it raises)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = fn()
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


def to_us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


class ClosingFile:
    """Context-manager plumbing for objects that own a file and have ``close()`` (internal)."""

    __slots__ = ()

    def close(self) -> None:
        """Close the file; closing twice is harmless."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
