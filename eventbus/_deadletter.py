"""Dead letters: where an event goes when its handler cannot succeed.

Two sinks ship with the package. :class:`MemoryDeadLetters` (the default)
keeps letters in the process; :class:`SqliteDeadLetters` keeps them in an
SQLite file, so they survive a crash or restart. Both answer the same
questions -- :meth:`~SqliteDeadLetters.query` by subscription, condition,
error type and time range, :meth:`~SqliteDeadLetters.purge` with the same
filters -- and both :meth:`~SqliteDeadLetters.redrive` letters back to the
subscription each one failed in.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import typing
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeVar, final, runtime_checkable

import anyio
import anyio.to_thread
import attrs

from ._events import Event
from ._exceptions import SerializationError, error_info
from ._retry import DeadLetterCondition
from ._serialization import from_cloudevent, to_cloudevent

if TYPE_CHECKING:
    from ._bus import Bus

__all__ = [
    "DeadLetter",
    "DeadLetterSink",
    "ErrorInfo",
    "MemoryDeadLetters",
    "SqliteDeadLetters",
    "UndecodableEvent",
]

logger = logging.getLogger("eventbus.deadletters")

T = TypeVar("T")

_CONDITIONS: Final = frozenset(typing.get_args(DeadLetterCondition))
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_DELETE_BATCH: Final = 64  # redriven letters forgotten per transaction


@final
@attrs.frozen
class ErrorInfo:
    """A failure in AWS Lambda's error shape.

    Attributes:
        error_type: the exception's class name (``errorType``).
        error_message: ``str(exception)`` (``errorMessage``).
        stack_trace: the formatted traceback lines (``stackTrace``).
    """

    error_type: str
    error_message: str
    stack_trace: tuple[str, ...] = ()

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Describe *exc*."""
        info = error_info(exc)
        return cls(info["errorType"], info["errorMessage"], tuple(info["stackTrace"]))

    def to_dict(self) -> dict[str, Any]:
        """``{"errorType", "errorMessage", "stackTrace"}``, as Lambda reports errors."""
        return {
            "errorType": self.error_type,
            "errorMessage": self.error_message,
            "stackTrace": list(self.stack_trace),
        }


@final
@attrs.frozen
class DeadLetter:
    """An event that one subscription could not handle, and why.

    Attributes:
        event: the event, unchanged.
        subscription: the name of the subscription that failed it.
        error: the last failure, in Lambda's error shape.
        attempts: how many times the handler ran (0 when it never did).
        first_failure: when the first attempt failed (aware UTC).
        last_failure: when the last attempt failed (aware UTC).
        condition: why the bus gave up: ``RetriesExhausted``,
            ``EventAgeExceeded``, ``Timeout``, ``RecursiveLoop``, ``Shutdown``
            or ``NotRetryable``.
        id: this letter's own id.
        exception: the exception object itself, when the letter was made in
            this process (not stored by durable sinks; not compared).
    """

    event: Event
    subscription: str
    error: ErrorInfo
    attempts: int
    first_failure: datetime
    last_failure: datetime
    condition: DeadLetterCondition = "RetriesExhausted"
    id: str = attrs.field(factory=lambda: uuid.uuid4().hex)
    exception: BaseException | None = attrs.field(default=None, eq=False, repr=False)


@final
@attrs.frozen
class UndecodableEvent(Event, type_name="eventbus.UndecodableEvent"):
    """Stands in for a stored event that cannot be decoded in this process.

    :class:`SqliteDeadLetters` stores events as CloudEvents JSON and decodes
    them into their registered classes when it reads them. When the class is
    not imported (or no longer fits the stored data), the letter is still
    listed, counted and queryable, with this in place of the event; it is
    never redriven. Import the module that defines the event class and read
    the sink again to get the real event back.

    The envelope (``id``, ``time``, ``source``, ...) is taken from the stored
    document where it can be.

    Attributes:
        event_type_name: the stored CloudEvents ``type``.
        document: the stored CloudEvents JSON text, unchanged.
        reason: why it could not be decoded.

    .. versionadded:: 0.1
    """

    event_type_name: str
    document: str
    reason: str


@runtime_checkable
class DeadLetterSink(Protocol):
    """**Protocol:** keeps the events the bus gave up on.

    ``put`` must store the letter durably enough for the sink's promise
    before returning; the bus counts the event as dead-lettered only then.
    A sink that raises from ``put`` is logged and the letter falls back to
    an in-memory sink, so no event is lost. A sink iterates over its letters
    (oldest first), has ``len()``, and ``redrive(bus)`` delivers them again,
    each to the subscription it failed in. The built-in sinks take more
    filters (``where=``, ``condition=``, ...); a custom sink needs only
    ``subscription=``.
    """

    async def put(self, letter: DeadLetter) -> None:
        """Store *letter*."""
        ...

    def __iter__(self) -> Iterator[DeadLetter]:
        """The letters, oldest first."""
        ...

    def __len__(self) -> int:
        """How many letters the sink holds."""
        ...

    async def redrive(self, bus: Bus, *, subscription: str | None = None) -> int:
        """Deliver letters again to their original subscriptions; return how many."""
        ...


# -- filters ---------------------------------------------------------------------------


@final
@attrs.frozen
class _Filter:
    """The selection shared by ``query``, ``purge`` and ``redrive``."""

    subscription: str | None = None
    condition: str | None = None
    error_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    where: Callable[[DeadLetter], bool] | None = None

    def matches_columns(self, letter: DeadLetter) -> bool:
        """Everything but ``where``."""
        if self.subscription is not None and letter.subscription != self.subscription:
            return False
        if self.condition is not None and letter.condition != self.condition:
            return False
        if self.error_type is not None and letter.error.error_type != self.error_type:
            return False
        if self.since is not None and letter.last_failure < self.since:
            return False
        return not (self.until is not None and letter.last_failure >= self.until)

    def matches(self, letter: DeadLetter) -> bool:
        """Every filter, ``where`` last."""
        return self.matches_columns(letter) and (self.where is None or bool(self.where(letter)))

    def sql(self) -> tuple[str, list[Any]]:
        """A ``WHERE`` clause (possibly ``1``) and its parameters, ``where`` excluded."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("subscription", self.subscription),
            ("condition", self.condition),
            ("error_type", self.error_type),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.since is not None:
            clauses.append("last_failure_us >= ?")
            params.append(_to_us(self.since))
        if self.until is not None:
            clauses.append("last_failure_us < ?")
            params.append(_to_us(self.until))
        return (" AND ".join(clauses) or "1"), params


def _make_filter(
    method: str,
    *,
    subscription: str | None,
    condition: DeadLetterCondition | None,
    error_type: str | None,
    since: datetime | None,
    until: datetime | None,
    where: Callable[[DeadLetter], bool] | None,
) -> _Filter:
    """Check the filter arguments of *method* and bundle them."""
    for option, value in (("subscription", subscription), ("error_type", error_type)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{method}({option}=...) takes a string, got {type(value).__name__}")
    if condition is not None and condition not in _CONDITIONS:
        raise ValueError(
            f"{method}(condition=...): {condition!r} is not a dead letter condition; "
            f"use one of {', '.join(sorted(_CONDITIONS))}"
        )
    for option, moment in (("since", since), ("until", until)):
        if moment is None:
            continue
        if not isinstance(moment, datetime):
            raise TypeError(
                f"{method}({option}=...) takes an aware datetime, got {type(moment).__name__}"
            )
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(
                f"{method}({option}=...) must be timezone-aware, e.g. datetime(..., tzinfo=UTC)"
            )
    if where is not None and not callable(where):
        raise TypeError(
            f"{method}(where=...) takes a predicate (letter) -> bool, got {type(where).__name__}"
        )
    return _Filter(subscription, condition, error_type, since, until, where)


def _redrivable(bus: Bus, letter: DeadLetter) -> bool:
    """Whether *letter* can go back to its subscription on *bus* (logs why not)."""
    if isinstance(letter.event, UndecodableEvent):
        logger.warning(
            "dead letter %s for subscription %r not redriven: its event (type %r) cannot be "
            "decoded (%s); import the module that defines it",
            letter.id,
            letter.subscription,
            letter.event.event_type_name,
            letter.event.reason,
        )
        return False
    if not bus.has_subscription(letter.subscription):
        logger.info(
            "dead letter %s not redriven: no subscription named %r on this bus",
            letter.id,
            letter.subscription,
        )
        return False
    types = bus.subscription(letter.subscription).event_types
    if not isinstance(letter.event, types):
        logger.warning(
            "dead letter %s not redriven: subscription %r no longer takes %s",
            letter.id,
            letter.subscription,
            type(letter.event).__name__,
        )
        return False
    return True


# -- in memory -------------------------------------------------------------------------


@final
class MemoryDeadLetters:
    """The default sink: dead letters kept in memory, in arrival order.

    Iterate over it (``list(bus.dead_letters)``), take ``len()``,
    :meth:`query` it, :meth:`purge` letters, and ``await sink.redrive(bus)``
    to deliver letters again to their original subscriptions. The letters
    are lost with the process; use :class:`SqliteDeadLetters` to keep them.

    Args:
        maxlen: keep at most this many letters; older ones are evicted,
            counted in :attr:`evicted` and logged. ``None`` (default): unbounded.

    Raises:
        ValueError: *maxlen* is not a positive int or ``None``.
    """

    __slots__ = ("_letters", "evicted", "maxlen")

    def __init__(self, *, maxlen: int | None = None) -> None:
        if maxlen is not None and (isinstance(maxlen, bool) or maxlen < 1):
            raise ValueError(f"MemoryDeadLetters(maxlen=...) must be >= 1 or None, got {maxlen!r}")
        self.maxlen = maxlen
        self.evicted = 0
        self._letters: dict[str, DeadLetter] = {}  # by id, in arrival order

    async def put(self, letter: DeadLetter) -> None:
        """Keep *letter*, evicting the oldest one when full."""
        self.append(letter)

    def append(self, letter: DeadLetter) -> None:
        """Keep *letter* (synchronous form of :meth:`put`); a letter already kept is ignored."""
        if letter.id in self._letters:
            return
        self._letters[letter.id] = letter
        if self.maxlen is not None and len(self._letters) > self.maxlen:
            old = self._letters.pop(next(iter(self._letters)))
            self.evicted += 1
            logger.warning(
                "dead letter %s for subscription %r evicted: MemoryDeadLetters(maxlen=%d) is full",
                old.id,
                old.subscription,
                self.maxlen,
            )

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(tuple(self._letters.values()))

    def __len__(self) -> int:
        return len(self._letters)

    def __bool__(self) -> bool:
        return True

    def clear(self) -> None:
        """Forget every letter."""
        self._letters.clear()

    def remove(self, letter: DeadLetter) -> None:
        """Forget one letter (by identity of its ``id``); a letter not kept is ignored."""
        self._letters.pop(letter.id, None)

    def query(
        self,
        *,
        subscription: str | None = None,
        condition: DeadLetterCondition | None = None,
        error_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Callable[[DeadLetter], bool] | None = None,
        limit: int | None = None,
    ) -> list[DeadLetter]:
        """The letters that match every given filter, oldest first.

        Args:
            subscription: the subscription the event failed in.
            condition: why the bus gave up (``"Timeout"``, ...).
            error_type: the error's ``errorType``, e.g. ``"KeyError"``.
            since: letters whose ``last_failure`` is at or after this (aware).
            until: letters whose ``last_failure`` is before this (aware).
            where: a predicate ``(letter) -> bool``, applied last.
            limit: at most this many letters.

        Returns:
            The matching letters.

        Raises:
            TypeError, ValueError: a filter is invalid (the message says which).
            Exception: whatever *where* raises.
        """
        flt = _make_filter(
            "query",
            subscription=subscription,
            condition=condition,
            error_type=error_type,
            since=since,
            until=until,
            where=where,
        )
        _check_limit(limit)
        out: list[DeadLetter] = []
        for letter in tuple(self._letters.values()):
            if limit is not None and len(out) >= limit:
                break
            if flt.matches(letter):
                out.append(letter)
        return out

    async def purge(
        self,
        *,
        subscription: str | None = None,
        condition: DeadLetterCondition | None = None,
        error_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Callable[[DeadLetter], bool] | None = None,
    ) -> int:
        """Forget the letters that match every given filter (all of them when none is given).

        The filters are those of :meth:`query`.

        Returns:
            How many letters were forgotten.

        Raises:
            TypeError, ValueError: a filter is invalid; nothing is forgotten.
            Exception: whatever *where* raises; nothing is forgotten.
        """
        flt = _make_filter(
            "purge",
            subscription=subscription,
            condition=condition,
            error_type=error_type,
            since=since,
            until=until,
            where=where,
        )
        doomed = [letter.id for letter in tuple(self._letters.values()) if flt.matches(letter)]
        for letter_id in doomed:
            del self._letters[letter_id]
        return len(doomed)

    async def redrive(
        self,
        bus: Bus,
        *,
        subscription: str | None = None,
        where: Callable[[DeadLetter], bool] | None = None,
        condition: DeadLetterCondition | None = None,
        error_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Deliver letters again to the subscription each one failed in.

        Each letter is removed once its subscription has accepted the event
        again (``bus.publish_to``); other subscriptions never see it. The
        filters are those of :meth:`query`. Letters that stay in the sink:
        those of a subscription the bus does not have, or whose event that
        subscription no longer takes. An event that fails again becomes a new
        letter.

        Args:
            bus: the running bus to deliver on.
            subscription, where, condition, error_type, since, until: which
                letters to redrive (default: all).

        Returns:
            How many letters were redriven.

        Raises:
            TypeError, ValueError: a filter is invalid.
            BusClosed: the bus is not running; the letters not yet accepted stay.
            Exception: whatever *where* raises; the letters not yet accepted stay.

        On cancellation, the letters accepted so far are removed and the
        rest stay.
        """
        flt = _make_filter(
            "redrive",
            subscription=subscription,
            condition=condition,
            error_type=error_type,
            since=since,
            until=until,
            where=where,
        )
        moved = 0
        for letter in tuple(self._letters.values()):
            if not flt.matches(letter) or not _redrivable(bus, letter):
                continue
            if letter.id not in self._letters:
                continue  # purged or redriven meanwhile
            await bus.publish_to(letter.subscription, letter.event)
            self.remove(letter)
            moved += 1
        if moved:
            logger.info("redrove %d dead letter(s); %d left", moved, len(self._letters))
        return moved

    def __repr__(self) -> str:
        return f"MemoryDeadLetters(<{len(self._letters)} letters>)"


def _check_limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"query(limit=...) must be an int >= 0 or None, got {limit!r}")


# -- SQLite ----------------------------------------------------------------------------


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


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS eventbus_dead_letters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    subscription TEXT NOT NULL,
    condition TEXT NOT NULL,
    error_type TEXT NOT NULL,
    error_message TEXT NOT NULL,
    stack_trace TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    first_failure_us INTEGER NOT NULL,
    last_failure_us INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS eventbus_dead_letters_subscription
    ON eventbus_dead_letters (subscription, seq);
CREATE INDEX IF NOT EXISTS eventbus_dead_letters_last_failure
    ON eventbus_dead_letters (last_failure_us);
"""

_COLUMNS: Final = (
    "id, subscription, condition, error_type, error_message, stack_trace, attempts, "
    "first_failure_us, last_failure_us, event_type, event_id, event"
)


def _to_us(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


@final
class SqliteDeadLetters:
    """A durable sink: dead letters in an SQLite file that survives crashes and restarts.

    ``Bus(dead_letters=SqliteDeadLetters("dead-letters.db"))`` stores every
    letter before the bus counts the event as dead-lettered: :meth:`put`
    returns only once the letter's transaction has committed (WAL journal,
    ``synchronous=FULL``), so a letter the bus reported survives even
    ``kill -9``. The disk work runs in a worker thread; the event loop never
    waits on it.

    Events are stored as CloudEvents JSON (:func:`~eventbus.to_cloudevent`)
    and decoded (:func:`~eventbus.from_cloudevent`) when read, so the event
    classes must be imported before reading. A letter whose event cannot be
    decoded is still listed, with an :class:`UndecodableEvent` in its place
    and a warning logged; it is never redriven. The original exception
    object (:attr:`DeadLetter.exception`) is not stored.

    Reading -- iteration (oldest first), ``len()``, :meth:`query` -- is
    synchronous, for inspection and tooling. :meth:`purge` and
    :meth:`redrive` are async. Several processes may share the file (SQLite
    locks it); run one redrive at a time per file.

    Use it as a context manager, or call :meth:`close`, to close the file::

        with SqliteDeadLetters("dead-letters.db") as letters:
            async with Bus(dead_letters=letters) as bus:
                ...

    Args:
        path: the database file (created if missing). It may hold other
            eventbus tables; the letters live in ``eventbus_dead_letters``.

    Raises:
        TypeError: *path* is not a path.
        sqlite3.Error: the file cannot be opened or is not an SQLite database.

    .. versionadded:: 0.1
    """

    __slots__ = ("_file", "_warned")

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._file = SqliteFile(path, _SCHEMA, "SqliteDeadLetters")
        self._warned: set[str] = set()

    @property
    def path(self) -> str:
        """The database file."""
        return self._file.path

    # -- writing -----------------------------------------------------------------------

    async def put(self, letter: DeadLetter) -> None:
        """Store *letter*; return once it is committed to disk.

        Storing a letter whose ``id`` is already stored does nothing.

        Raises:
            SerializationError: the event cannot be written as CloudEvents
                JSON (the bus then keeps the letter in memory and logs this).
            sqlite3.Error: the write failed (disk full, file locked too long).
            RuntimeError: the sink is closed.

        On cancellation the write still completes (a thread cannot be
        interrupted), then the cancellation propagates.
        """
        row = _encode(letter)

        def insert(db: sqlite3.Connection) -> None:
            db.execute(
                f"INSERT OR IGNORE INTO eventbus_dead_letters ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )

        await self._file.call(insert)

    # -- reading -----------------------------------------------------------------------

    def __iter__(self) -> Iterator[DeadLetter]:
        return iter(self._select(_Filter(), None))

    def __len__(self) -> int:
        def count(db: sqlite3.Connection) -> int:
            (n,) = db.execute("SELECT COUNT(*) FROM eventbus_dead_letters").fetchone()
            return int(n)

        return self._file.run(count)

    def __bool__(self) -> bool:
        return True

    def query(
        self,
        *,
        subscription: str | None = None,
        condition: DeadLetterCondition | None = None,
        error_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Callable[[DeadLetter], bool] | None = None,
        limit: int | None = None,
    ) -> list[DeadLetter]:
        """The letters that match every given filter, oldest first.

        Args:
            subscription: the subscription the event failed in.
            condition: why the bus gave up (``"Timeout"``, ...).
            error_type: the error's ``errorType``, e.g. ``"KeyError"``.
            since: letters whose ``last_failure`` is at or after this (aware).
            until: letters whose ``last_failure`` is before this (aware).
            where: a predicate ``(letter) -> bool``, applied last.
            limit: at most this many letters.

        Returns:
            The matching letters (undecodable events as :class:`UndecodableEvent`).

        Raises:
            TypeError, ValueError: a filter is invalid (the message says which).
            RuntimeError: the sink is closed.
            Exception: whatever *where* raises.
        """
        flt = _make_filter(
            "query",
            subscription=subscription,
            condition=condition,
            error_type=error_type,
            since=since,
            until=until,
            where=where,
        )
        _check_limit(limit)
        if where is None:
            return self._select(flt, limit)
        out: list[DeadLetter] = []
        for letter in self._select(flt, None):
            if limit is not None and len(out) >= limit:
                break
            if where(letter):
                out.append(letter)
        return out

    def _select(self, flt: _Filter, limit: int | None) -> list[DeadLetter]:
        clause, params = flt.sql()
        sql = f"SELECT {_COLUMNS} FROM eventbus_dead_letters WHERE {clause} ORDER BY seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"

        def select(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return db.execute(sql, params).fetchall()

        return [self._decode(row) for row in self._file.run(select)]

    def _decode(self, row: tuple[Any, ...]) -> DeadLetter:
        (
            letter_id,
            subscription,
            condition,
            error_type,
            error_message,
            stack_trace,
            attempts,
            first_us,
            last_us,
            event_type,
            event_id,
            document,
        ) = row
        first_failure = _from_us(first_us)
        try:
            event = from_cloudevent(document)
        except Exception as exc:
            reason = str(exc) or type(exc).__name__
            if letter_id not in self._warned:
                self._warned.add(letter_id)
                logger.warning(
                    "dead letter %s for subscription %r in %r: cannot decode its event of "
                    "type %r (%s); it is listed as an UndecodableEvent and will not be "
                    "redriven until its class is imported",
                    letter_id,
                    subscription,
                    self.path,
                    event_type,
                    reason,
                )
            event = _undecodable(event_type, event_id, document, reason, first_failure)
        return DeadLetter(
            event=event,
            subscription=subscription,
            error=ErrorInfo(error_type, error_message, tuple(json.loads(stack_trace))),
            attempts=attempts,
            first_failure=first_failure,
            last_failure=_from_us(last_us),
            condition=condition,
            id=letter_id,
        )

    # -- removing and redriving --------------------------------------------------------

    async def purge(
        self,
        *,
        subscription: str | None = None,
        condition: DeadLetterCondition | None = None,
        error_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        where: Callable[[DeadLetter], bool] | None = None,
    ) -> int:
        """Delete the letters that match every given filter (all of them when none is given).

        The filters are those of :meth:`query`. Without ``where`` the
        deletion is one transaction; with it, the matching letters are read,
        checked, then deleted by id.

        Returns:
            How many letters were deleted.

        Raises:
            TypeError, ValueError: a filter is invalid; nothing is deleted.
            Exception: whatever *where* raises; nothing is deleted.
            sqlite3.Error: the deletion failed; nothing is deleted.
            RuntimeError: the sink is closed.

        On cancellation a deletion in progress still completes, then the
        cancellation propagates.
        """
        flt = _make_filter(
            "purge",
            subscription=subscription,
            condition=condition,
            error_type=error_type,
            since=since,
            until=until,
            where=where,
        )
        if where is None:
            clause, params = flt.sql()

            def delete(db: sqlite3.Connection) -> int:
                cursor = db.execute(f"DELETE FROM eventbus_dead_letters WHERE {clause}", params)
                return cursor.rowcount

            return await self._file.call(delete)
        letters = await anyio.to_thread.run_sync(self._select, flt, None)
        return await self._delete([letter.id for letter in letters if where(letter)])

    async def _delete(self, ids: list[str]) -> int:
        if not ids:
            return 0

        def delete(db: sqlite3.Connection) -> int:
            def each() -> int:
                return sum(
                    db.execute("DELETE FROM eventbus_dead_letters WHERE id = ?", (i,)).rowcount
                    for i in ids
                )

            return transaction(db, each)

        return await self._file.call(delete)

    async def redrive(
        self,
        bus: Bus,
        *,
        subscription: str | None = None,
        where: Callable[[DeadLetter], bool] | None = None,
        condition: DeadLetterCondition | None = None,
        error_type: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """Deliver letters again to the subscription each one failed in, oldest first.

        Each event goes to its original subscription only
        (``bus.publish_to``), and its letter is deleted only after that
        subscription has accepted it again. A crash during a redrive
        therefore loses no letter; at worst a letter accepted just before
        the crash is still in the file and is delivered again by the next
        redrive. Letters that stay in the file: those of a subscription the
        bus does not have, those whose event that subscription no longer
        takes, and undecodable ones (each is logged). An event that fails
        again becomes a new letter.

        Args:
            bus: the running bus to deliver on.
            subscription, where, condition, error_type, since, until: which
                letters to redrive (default: all); see :meth:`query`.

        Returns:
            How many letters were redriven.

        Raises:
            TypeError, ValueError: a filter is invalid.
            BusClosed: the bus is not running; letters not yet accepted stay.
            Exception: whatever *where* raises; letters not yet accepted stay.
            sqlite3.Error: reading or deleting failed.
            RuntimeError: the sink is closed.

        On cancellation (or any error), the letters accepted so far are
        deleted and the rest stay.
        """
        flt = _make_filter(
            "redrive",
            subscription=subscription,
            condition=condition,
            error_type=error_type,
            since=since,
            until=until,
            where=where,
        )
        letters = await anyio.to_thread.run_sync(self._select, attrs.evolve(flt, where=None), None)
        moved = 0
        accepted: list[str] = []
        try:
            for letter in letters:
                if (where is not None and not where(letter)) or not _redrivable(bus, letter):
                    continue
                await bus.publish_to(letter.subscription, letter.event)
                accepted.append(letter.id)
                moved += 1
                if len(accepted) >= _DELETE_BATCH:
                    batch, accepted = accepted, []
                    await self._delete(batch)
        finally:
            if accepted:
                with anyio.CancelScope(shield=True):
                    await self._delete(accepted)
        if moved:
            logger.info("redrove %d dead letter(s) from %r", moved, self.path)
        return moved

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the file, after any write in progress; closing twice is harmless.

        Later calls other than :meth:`close` raise :class:`RuntimeError`.
        """
        self._file.close()

    def __enter__(self) -> SqliteDeadLetters:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> SqliteDeadLetters:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = " closed" if self._file.closed else ""
        return f"SqliteDeadLetters({self.path!r}{state})"


def _encode(letter: DeadLetter) -> tuple[Any, ...]:
    """The row for *letter*, or a clear SerializationError."""
    if not isinstance(letter, DeadLetter):
        raise TypeError(f"put() takes a DeadLetter, got {type(letter).__name__}")
    try:
        document = json.dumps(to_cloudevent(letter.event), separators=(",", ":"))
    except (SerializationError, TypeError, ValueError) as exc:
        raise SerializationError(
            f"dead letter {letter.id} (subscription {letter.subscription!r}): cannot store "
            f"event {letter.event.id} of type {type(letter.event).event_type()} as CloudEvents "
            f"JSON: {exc}; give the event class JSON-friendly field types"
        ) from exc
    return (
        letter.id,
        letter.subscription,
        letter.condition,
        letter.error.error_type,
        letter.error.error_message,
        json.dumps(list(letter.error.stack_trace)),
        letter.attempts,
        _to_us(letter.first_failure),
        _to_us(letter.last_failure),
        type(letter.event).event_type(),
        letter.event.id,
        document,
    )


def _undecodable(
    event_type: str, event_id: str, document: str, reason: str, fallback_time: datetime
) -> UndecodableEvent:
    """An :class:`UndecodableEvent`, keeping what envelope the document still gives."""
    envelope: dict[str, Any] = {"id": event_id, "time": fallback_time}
    try:
        parsed = json.loads(document)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        source = parsed.get("source")
        if isinstance(source, str) and source != "/":
            envelope["source"] = source
        for key, field in (("correlationid", "correlation_id"), ("causationid", "causation_id")):
            if isinstance(parsed.get(key), str):
                envelope[field] = parsed[key]
        when = parsed.get("time")
        if isinstance(when, str):
            try:
                moment = datetime.fromisoformat(when)
            except ValueError:
                moment = None
            if moment is not None and moment.tzinfo is not None:
                envelope["time"] = moment
    return UndecodableEvent(event_type, document, reason, **envelope)
