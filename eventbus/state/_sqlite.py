"""SqliteState: keyed state in a SQLite file that survives restarts and crashes."""

from __future__ import annotations

import functools
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from typing import Any, Final, final

from .._sqlite import PRIVATE_FILE_MODE, ClosingFile, SqliteFile, from_us, to_us, transaction
from .._state import (
    DEFAULT_APPLIED_IDS,
    EMPTY_STATE,
    Reminder,
    StateChange,
    StateConflict,
    StoredState,
    check_applied_ids,
)

__all__ = ["SqliteState"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS state (
    subscription TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (subscription, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS applied (
    subscription TEXT NOT NULL,
    key TEXT NOT NULL,
    event_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (subscription, key, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS applied_by_version ON applied (subscription, key, version);
CREATE TABLE IF NOT EXISTS reminders (
    id TEXT PRIMARY KEY,
    subscription TEXT NOT NULL,
    key TEXT NOT NULL,
    due_us INTEGER NOT NULL,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reminders_by_due ON reminders (subscription, due_us);
"""

_KEYS_PAGE: Final = 500


@final
class SqliteState(ClosingFile):
    """Keyed state of stateful subscriptions, in a SQLite file.

    ``bus.subscribe(..., ordered_by="cart_id", state=SqliteState("state.db"))``.
    The file is in WAL mode with ``synchronous=FULL``: a key's new state,
    the id of the event that produced it and the reminders it set are
    written in one transaction, so after a crash (even ``SIGKILL`` or a
    power loss) the file holds either all of an attempt's effect or none of
    it. A new file is created with *mode* (0600: readable by its owner only).
    Several processes may share the file: commits are serialised by SQLite,
    and a commit from a stale version raises
    :class:`~eventbus.StateConflict` (the bus handles the event again).

    Use it as a context manager, or call :meth:`close` when done.

    Args:
        path: the database file (created if missing; its directory must exist).
        applied_ids: each key remembers the event ids of its latest
            *applied_ids* commits, to refuse applying one twice (older ones
            are forgotten).
        mode: the permission bits of a new file (its ``-wal`` and ``-shm``
            files get the same); an existing file keeps its own.

    Raises:
        TypeError: *path* is not a path, or *mode* is not an int.
        ValueError: *mode* has bits outside 0o777.
        StateError: *applied_ids* is not an int >= 1.
        sqlite3.Error: the file cannot be opened, or is not a SQLite database.

    .. versionadded:: 0.2
    """

    __slots__ = ("_applied_ids", "_file")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        applied_ids: int = DEFAULT_APPLIED_IDS,
        mode: int = PRIVATE_FILE_MODE,
    ) -> None:
        self._applied_ids = check_applied_ids("SqliteState", applied_ids)
        self._file = SqliteFile(path, _SCHEMA, "SqliteState", mode)

    @property
    def path(self) -> str:
        """The database file."""
        return self._file.path

    def close(self) -> None:
        """Close the file (after any write in progress); closing twice is harmless."""
        self._file.close()

    async def load(self, subscription: str, key: str, event_id: str | None = None) -> StoredState:
        """Read *key*'s state and version, and whether *event_id* was applied to it."""

        def read(db: sqlite3.Connection) -> StoredState:
            row = db.execute(
                "SELECT s.value, s.version, a.event_id IS NOT NULL FROM state AS s "
                "LEFT JOIN applied AS a ON a.subscription = s.subscription AND a.key = s.key "
                "AND a.event_id = ? WHERE s.subscription = ? AND s.key = ?",
                (event_id or "", subscription, key),
            ).fetchone()
            if row is None:
                return StoredState()
            return StoredState(row[0], row[1], event_id is not None and bool(row[2]))

        return await self._file.call(read)

    async def commit(self, subscription: str, key: str, change: StateChange) -> bool:
        """Write *change* (state, event id, reminders) in one transaction.

        Returns:
            ``False`` (and writes nothing) when the event id was already applied.

        Raises:
            StateConflict: the key is no longer at ``change.version``.
        """
        keep = self._applied_ids
        ids = change.event_ids
        reminders = [
            (r.id, r.subscription, r.key, to_us(r.due), json.dumps(r.event, separators=(",", ":")))
            for r in change.reminders
        ]

        def write(db: sqlite3.Connection) -> bool:
            def body() -> bool:
                for event_id in ids:
                    if db.execute(
                        "SELECT 1 FROM applied WHERE subscription = ? AND key = ? AND event_id = ?",
                        (subscription, key, event_id),
                    ).fetchone():
                        return False
                row = db.execute(
                    "SELECT version FROM state WHERE subscription = ? AND key = ?",
                    (subscription, key),
                ).fetchone()
                found = 0 if row is None else int(row[0])
                if found != change.version:
                    raise StateConflict(subscription, key, change.version, found)
                version = found + 1
                db.execute(
                    "INSERT INTO state (subscription, key, value, version) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (subscription, key) DO UPDATE "
                    "SET value = excluded.value, version = excluded.version",
                    (subscription, key, change.text, version),
                )
                db.executemany(
                    "INSERT OR IGNORE INTO applied (subscription, key, event_id, version) "
                    "VALUES (?, ?, ?, ?)",
                    [(subscription, key, event_id, version) for event_id in ids],
                )
                if version > keep:
                    db.execute(
                        "DELETE FROM applied WHERE subscription = ? AND key = ? AND version <= ?",
                        (subscription, key, version - keep),
                    )
                db.executemany(
                    "INSERT OR REPLACE INTO reminders (id, subscription, key, due_us, event) "
                    "VALUES (?, ?, ?, ?, ?)",
                    reminders,
                )
                return True

            return transaction(db, body)

        return await self._file.call(write)

    async def keys(self, subscription: str) -> AsyncIterator[str]:
        """Iterate *subscription*'s keys whose state is not empty, in key order."""
        after: str | None = None
        while True:
            page = await self._file.call(
                functools.partial(self._page, sub=subscription, after=after)
            )
            for key in page:
                yield key
            if len(page) < _KEYS_PAGE:
                return
            after = page[-1]

    def sync_keys(self, subscription: str) -> list[str]:
        """*subscription*'s keys whose state is not empty, now (blocks on the file)."""
        return self._file.run(
            lambda db: [
                row[0]
                for row in db.execute(
                    "SELECT key FROM state WHERE subscription = ? AND value != ? ORDER BY key",
                    (subscription, EMPTY_STATE),
                )
            ]
        )

    @staticmethod
    def _page(db: sqlite3.Connection, *, sub: str, after: str | None) -> list[str]:
        subscription = sub
        if after is None:
            rows = db.execute(
                "SELECT key FROM state WHERE subscription = ? AND value != ? ORDER BY key LIMIT ?",
                (subscription, EMPTY_STATE, _KEYS_PAGE),
            )
        else:
            rows = db.execute(
                "SELECT key FROM state WHERE subscription = ? AND value != ? AND key > ? "
                "ORDER BY key LIMIT ?",
                (subscription, EMPTY_STATE, after, _KEYS_PAGE),
            )
        return [row[0] for row in rows]

    async def reminders(self, subscription: str) -> list[Reminder]:
        """*subscription*'s pending reminders, earliest due first."""

        def read(db: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return db.execute(
                "SELECT id, key, due_us, event FROM reminders WHERE subscription = ? "
                "ORDER BY due_us, id",
                (subscription,),
            ).fetchall()

        rows = await self._file.call(read)
        return [
            Reminder(subscription, key, from_us(due), json.loads(event), id=rid)
            for rid, key, due, event in rows
        ]

    async def forget(self, reminder: Reminder) -> None:
        """Remove *reminder*; unknown ones are ignored."""
        await self._file.call(
            lambda db: db.execute("DELETE FROM reminders WHERE id = ?", (reminder.id,))
        )

    def __repr__(self) -> str:
        return f"SqliteState({self._file.path!r})"
