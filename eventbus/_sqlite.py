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

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "ClosingFile",
    "SqliteFile",
    "check_mode",
    "connect",
    "create_private_file",
    "dir_mode_for",
    "from_us",
    "to_us",
    "transaction",
]

T = TypeVar("T")

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

PRIVATE_FILE_MODE: Final = 0o600
"""The permission bits of the files the durable stores create, unless told otherwise."""
PRIVATE_DIR_MODE: Final = 0o700
"""The permission bits of the folders the durable stores create, unless told otherwise."""


def check_mode(owner: str, mode: object) -> int:
    """Return *mode* if it is permission bits (an int from 0 to 0o777).

    Raises:
        TypeError: *mode* is not an int.
        ValueError: it has bits outside 0o777.
    """
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise TypeError(f"{owner}(mode=...) takes permission bits such as 0o600, got {mode!r}")
    if not 0 <= mode <= 0o777:
        raise ValueError(
            f"{owner}(mode=...) takes permission bits from 0 to 0o777 (e.g. 0o600 or 0o640), "
            f"got {mode:#o}"
        )
    return mode


def dir_mode_for(mode: int) -> int:
    """The folder mode matching file *mode*: each class that may read may also enter.

    0o600 gives 0o700, 0o640 gives 0o750, 0o644 gives 0o755.
    """
    return mode | 0o100 | ((mode & 0o044) >> 2)


def create_private_file(path: str | os.PathLike[str], mode: int = PRIVATE_FILE_MODE) -> None:
    """Create *path* as an empty file with exactly *mode*, unless it exists.

    An existing file keeps its mode; so does a path that is not a plain
    file name (``":memory:"``, ``"file:"`` URIs). A missing folder is left
    for the caller (SQLite) to report. SQLite gives its ``-wal``, ``-shm``
    and ``-journal`` files the mode of the database file.
    """
    name = os.fspath(path)
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(name, flags, mode)
    except (FileExistsError, FileNotFoundError, NotADirectoryError):
        return
    try:
        os.fchmod(fd, mode)  # the umask may have taken bits away from a mode the user chose
    finally:
        os.close(fd)


def connect(path: str | os.PathLike[str], mode: int = PRIVATE_FILE_MODE) -> sqlite3.Connection:
    """``sqlite3.connect`` for the stores: a new database file is created with *mode* (0600)."""
    create_private_file(path, mode)
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


@final
class SqliteFile:
    """One SQLite connection, used from one thread at a time (internal).

    Opened in WAL mode with ``synchronous=FULL``: a transaction that has
    committed survives a process kill and a power loss. A new database
    file is created with *mode* (0600 unless told otherwise: it holds
    payloads and stack traces). Blocking work runs in
    a worker thread (:meth:`call`) so the event loop never waits on disk;
    a lock serialises it with the synchronous readers (:meth:`run`).
    """

    __slots__ = ("_db", "_lock", "owner", "path")

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: str,
        owner: str,
        mode: int = PRIVATE_FILE_MODE,
    ) -> None:
        if not isinstance(path, str | os.PathLike):
            raise TypeError(f"{owner}(path) takes a file path, got {type(path).__name__}")
        self.path = os.fspath(path)
        self.owner = owner
        self._lock = threading.Lock()
        try:
            db = connect(self.path, check_mode(owner, mode))
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
