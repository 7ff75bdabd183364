"""SqliteDeadLetters: dead letters in an SQLite file that survives crashes and restarts."""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, final

import anyio
import anyio.to_thread
import attrs

from ._deadletter import (
    _DELETE_BATCH,
    DeadLetter,
    ErrorInfo,
    UndecodableEvent,
    _check_limit,
    _Filter,
    _make_filter,
    _redrivable,
)
from ._exceptions import SerializationError
from ._retry import DeadLetterCondition
from ._serialization import _parse_json, cloudevent_json, decode_stored
from ._settle import publish_to_tracked
from ._sqlite import PRIVATE_FILE_MODE, ClosingFile, SqliteFile, from_us, to_us, transaction

if TYPE_CHECKING:
    from ._bus import Bus

__all__ = ["SqliteDeadLetters"]

logger = logging.getLogger("eventbus.deadletters")


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


@final
class SqliteDeadLetters(ClosingFile):
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
        mode: the permission bits a new file is created with: ``0o600``
            (owner only) unless told otherwise, since letters hold payloads
            and stack traces. An existing file keeps its mode.

    Raises:
        TypeError: *path* is not a path, or *mode* not an int.
        ValueError: *mode* has bits outside ``0o777``.
        sqlite3.Error: the file cannot be opened or is not an SQLite database.

    .. versionadded:: 0.1
    .. versionchanged:: 0.2
       New files are private (0600) by default; the *mode* argument.
    """

    __slots__ = ("_file", "_redriving", "_settled", "_settled_lock", "_warned")

    def __init__(self, path: str | os.PathLike[str], *, mode: int = PRIVATE_FILE_MODE) -> None:
        self._file = SqliteFile(path, _SCHEMA, "SqliteDeadLetters", mode)
        self._warned: set[str] = set()
        # Letters whose redriven event is on its way (skipped by another
        # redrive), and those whose redriven event has settled (to delete).
        self._redriving: set[str] = set()
        self._settled: list[str] = []
        self._settled_lock = threading.Lock()

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
        self._forget_settled_now()

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
        self._forget_settled_now()
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
        first_failure = from_us(first_us)
        try:
            event = decode_stored(document)
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
            last_failure=from_us(last_us),
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
        return await self._file.call(_deleter(ids))

    # -- letters whose redriven event settled ------------------------------------------

    def _on_settled(self, letter_id: str) -> None:
        """The event of redriven letter *letter_id* was handled or dead-lettered again."""
        self._redriving.discard(letter_id)
        with self._settled_lock:
            self._settled.append(letter_id)

    def _take_settled(self) -> list[str]:
        with self._settled_lock:
            ids, self._settled = self._settled, []
        return ids

    def _give_back_settled(self, ids: list[str]) -> None:
        with self._settled_lock:
            self._settled[:0] = ids

    def _forget_settled_now(self) -> None:
        """Delete the settled letters here (any thread), before a read."""
        ids = self._take_settled()
        if not ids:
            return
        try:
            self._file.run(_deleter(ids))
        except BaseException:
            self._give_back_settled(ids)
            raise

    async def _forget_settled(self) -> None:
        """Delete the settled letters in a worker thread."""
        ids = self._take_settled()
        if not ids:
            return
        try:
            await self._file.call(_deleter(ids))
        except BaseException:
            self._give_back_settled(ids)
            raise

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
        (``bus.publish_to``), and its letter is deleted only once that
        subscription has *settled* the event again: handled it, or
        dead-lettered it (as a new letter). A crash during or after a
        redrive -- even a SIGKILL with redriven events still queued --
        therefore loses no letter; at worst a letter whose event was handled
        just before the crash is still in the file and is delivered again by
        the next redrive. Letters whose event is still on its way are
        skipped by another redrive meanwhile. Letters that stay in the file:
        those of a subscription the bus does not have, those whose event
        that subscription no longer takes, and undecodable ones (each is
        logged). Settled letters are deleted in batches, and before any
        read of the sink.

        Args:
            bus: the running bus to deliver on.
            subscription, where, condition, error_type, since, until: which
                letters to redrive (default: all); see :meth:`query`.

        Returns:
            How many letters were redriven (accepted again; they leave the
            file as their events settle).

        Raises:
            TypeError, ValueError: a filter is invalid.
            BusClosed: the bus is not running; letters not yet accepted stay.
            Exception: whatever *where* raises; letters not yet accepted stay.
            sqlite3.Error: reading or deleting failed.
            RuntimeError: the sink is closed.

        On cancellation (or any error), the letters whose events have
        settled so far are deleted and the rest stay.

        .. versionchanged:: 0.2
           A letter is deleted once its event has settled, not when it is
           accepted.
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
        try:
            for letter in letters:
                if letter.id in self._redriving:
                    continue  # its event is on its way already
                if (where is not None and not where(letter)) or not _redrivable(bus, letter):
                    continue
                self._redriving.add(letter.id)
                try:
                    await publish_to_tracked(
                        bus,
                        letter.subscription,
                        letter.event,
                        functools.partial(self._on_settled, letter.id),
                    )
                except BaseException:
                    self._redriving.discard(letter.id)
                    raise
                moved += 1
                if len(self._settled) >= _DELETE_BATCH:
                    await self._forget_settled()
        finally:
            with anyio.CancelScope(shield=True):
                await self._forget_settled()
        if moved:
            logger.info("redrove %d dead letter(s) from %r", moved, self.path)
        return moved

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        """Close the file, after any write in progress; closing twice is harmless.

        Letters whose redriven event has settled are deleted first; those
        whose event has not settled yet stay (and are redriven again later).
        Later calls other than :meth:`close` raise :class:`RuntimeError`.
        """
        if not self._file.closed:
            self._forget_settled_now()
        self._file.close()

    def __repr__(self) -> str:
        state = " closed" if self._file.closed else ""
        return f"SqliteDeadLetters({self.path!r}{state})"


def _deleter(ids: list[str]) -> Callable[[sqlite3.Connection], int]:
    """A transaction deleting the letters *ids*; returns how many it deleted."""

    def delete(db: sqlite3.Connection) -> int:
        def each() -> int:
            return sum(
                db.execute("DELETE FROM eventbus_dead_letters WHERE id = ?", (i,)).rowcount
                for i in ids
            )

        return transaction(db, each)

    return delete


def _encode(letter: DeadLetter) -> tuple[Any, ...]:
    """The row for *letter*, or a clear SerializationError."""
    if not isinstance(letter, DeadLetter):
        raise TypeError(f"put() takes a DeadLetter, got {type(letter).__name__}")
    try:
        document = cloudevent_json(letter.event)
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
        to_us(letter.first_failure),
        to_us(letter.last_failure),
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
        parsed = _parse_json(document)
    except SerializationError:  # too large, too deep, not JSON: keep the text only
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
                if moment.tzinfo is not None:
                    moment = moment.astimezone(UTC)
            except (ValueError, OverflowError):
                moment = None
            if moment is not None and moment.tzinfo is not None:
                envelope["time"] = moment
    return UndecodableEvent(event_type, document, reason, **envelope)
