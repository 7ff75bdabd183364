"""Where a :class:`~eventbus.Table` keeps its rows and its outbox: memory or SQLite.

A write is one call to :meth:`Store.apply`: it reads the current row, lets
the table decide the new one, and stores the row together with the change
record (the *outbox* entry, holding the event as CloudEvents JSON) under the
next sequence number -- in SQLite, in one transaction. The table publishes
outbox entries in sequence order and drops each only once every subscription
that accepted its event has settled it (handled or dead-lettered), so a
change committed before a crash -- published or not -- is published again
when the table is opened again.

SQLite schema (several tables may share one file)::

    eventbus_tables (name PK, key, sort_key, ttl_attribute, last_sequence)
    eventbus_rows   (tbl, row, pk, item, expires)   -- PK (tbl, row)
    eventbus_outbox (tbl, seq, event)                -- PK (tbl, seq)
"""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final, Protocol, TypeAlias, final

from .._serialization import decode_stored, to_cloudevent
from .._sqlite import connect
from ._table_items import Item, KeySchema, decode_item, encode_item, expiry

__all__ = ["Decide", "Decision", "MemoryStore", "SqliteStore", "Store"]

#: What a write decided: the new row (None: delete it) and how to describe the change.
Decision: TypeAlias = tuple[Item | None, Callable[[int], Any]]
#: Given the current row (None: none), decide the write, or return None to change nothing.
Decide: TypeAlias = Callable[[Item | None], Decision | None]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS eventbus_tables (
    name TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    sort_key TEXT,
    ttl_attribute TEXT,
    last_sequence INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS eventbus_rows (
    tbl TEXT NOT NULL,
    row TEXT NOT NULL,
    pk TEXT NOT NULL,
    item TEXT NOT NULL,
    expires REAL,
    PRIMARY KEY (tbl, row)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS eventbus_rows_pk ON eventbus_rows (tbl, pk);
CREATE INDEX IF NOT EXISTS eventbus_rows_expires ON eventbus_rows (tbl, expires);
CREATE TABLE IF NOT EXISTS eventbus_outbox (
    tbl TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (tbl, seq)
) WITHOUT ROWID;
"""


class Store(Protocol):
    """**Protocol:** a table's storage (internal); ``threaded`` stores block on I/O."""

    threaded: bool

    def open(self) -> None:
        """Create or check the storage."""
        ...

    def close(self) -> None:
        """Release it."""
        ...

    def get(self, row: str) -> Item | None:
        """The row, or None."""
        ...

    def partition(self, pk: str) -> list[Item]:
        """Every row of a partition, in no particular order."""
        ...

    def scan(self) -> list[Item]:
        """Every row, in no particular order."""
        ...

    def expired(self, now: float) -> list[Item]:
        """Rows whose TTL is at or before *now* (epoch seconds)."""
        ...

    def apply(self, row: str, pk: str, decide: Decide, forget: Sequence[int] = ()) -> Any:
        """Read the row, let *decide* choose, store row and change record; return the change.

        When a change is stored, the settled changes *forget* leave the
        outbox in the same transaction; when none is (None returned), not.
        """
        ...

    def pending(self, after: int = 0) -> list[tuple[int, Any]]:
        """Changes kept in the outbox with a sequence number above *after*, in order."""
        ...

    def delivered(self, seqs: Sequence[int]) -> None:
        """Forget changes whose events have settled."""
        ...


@final
class MemoryStore:
    """Rows and outbox in dicts."""

    threaded = False

    def __init__(self, ttl_attribute: str | None) -> None:
        self._ttl = ttl_attribute
        self._rows: dict[str, tuple[str, Item]] = {}
        self._outbox: dict[int, Any] = {}
        self._last = 0

    def open(self) -> None:
        return None

    def close(self) -> None:
        return None

    def get(self, row: str) -> Item | None:
        found = self._rows.get(row)
        return None if found is None else copy.deepcopy(found[1])

    def partition(self, pk: str) -> list[Item]:
        return [copy.deepcopy(item) for p, item in self._rows.values() if p == pk]

    def scan(self) -> list[Item]:
        return [copy.deepcopy(item) for _, item in self._rows.values()]

    def expired(self, now: float) -> list[Item]:
        out = []
        for _, item in self._rows.values():
            when = expiry(item, self._ttl)
            if when is not None and when <= now:
                out.append(copy.deepcopy(item))
        return out

    def apply(self, row: str, pk: str, decide: Decide, forget: Sequence[int] = ()) -> Any:
        decision = decide(self.get(row))
        if decision is None:
            return None
        item, describe = decision
        change = describe(self._last + 1)
        self._last += 1
        if item is None:
            self._rows.pop(row, None)
        else:
            self._rows[row] = (pk, copy.deepcopy(item))
        self._outbox[self._last] = change
        self.delivered(forget)
        return change

    def pending(self, after: int = 0) -> list[tuple[int, Any]]:
        return sorted((seq, change) for seq, change in self._outbox.items() if seq > after)

    def delivered(self, seqs: Sequence[int]) -> None:
        for seq in seqs:
            self._outbox.pop(seq, None)


@final
class SqliteStore:
    """Rows and outbox in an SQLite file; each write is one transaction."""

    threaded = True

    def __init__(self, path: Path, schema: KeySchema, ttl_attribute: str | None, mode: int) -> None:
        self._path = path
        self._mode = mode
        self._schema = schema
        self._ttl = ttl_attribute
        self._db: sqlite3.Connection | None = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:  # pragma: no cover - the table opens the store first
            raise RuntimeError("the table's SQLite file is not open")
        return self._db

    def open(self) -> None:
        if self._db is not None:
            return
        db = connect(self._path, self._mode)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=10000")
            db.executescript(_SCHEMA)
            self._db = db
            self._register()
        except BaseException:
            self._db = None
            db.close()
            raise

    def _register(self) -> None:
        s = self._schema
        db = self._conn
        db.execute("BEGIN IMMEDIATE")
        try:
            found = db.execute(
                "SELECT key, sort_key, ttl_attribute FROM eventbus_tables WHERE name = ?",
                (s.table,),
            ).fetchone()
            if found is None:
                db.execute(
                    "INSERT INTO eventbus_tables (name, key, sort_key, ttl_attribute) VALUES (?, ?, ?, ?)",
                    (s.table, s.key, s.sort_key, self._ttl),
                )
            elif tuple(found[:2]) != (s.key, s.sort_key):
                raise ValueError(
                    f"table {s.table!r} in {str(self._path)!r} is keyed by key={found[0]!r}, "
                    f"sort_key={found[1]!r}; open it with the same keys (or use another name)"
                )
            elif found[2] != self._ttl:
                self._recompute_expiry()
                db.execute(
                    "UPDATE eventbus_tables SET ttl_attribute = ? WHERE name = ?",
                    (self._ttl, s.table),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _recompute_expiry(self) -> None:
        db = self._conn
        rows = db.execute(
            "SELECT row, item FROM eventbus_rows WHERE tbl = ?", (self._schema.table,)
        ).fetchall()
        for row, text in rows:
            db.execute(
                "UPDATE eventbus_rows SET expires = ? WHERE tbl = ? AND row = ?",
                (expiry(decode_item(text), self._ttl), self._schema.table, row),
            )

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def get(self, row: str) -> Item | None:
        found = self._conn.execute(
            "SELECT item FROM eventbus_rows WHERE tbl = ? AND row = ?", (self._schema.table, row)
        ).fetchone()
        return None if found is None else decode_item(found[0])

    def partition(self, pk: str) -> list[Item]:
        cursor = self._conn.execute(
            "SELECT item FROM eventbus_rows WHERE tbl = ? AND pk = ?", (self._schema.table, pk)
        )
        return [decode_item(text) for (text,) in cursor]

    def scan(self) -> list[Item]:
        cursor = self._conn.execute(
            "SELECT item FROM eventbus_rows WHERE tbl = ?", (self._schema.table,)
        )
        return [decode_item(text) for (text,) in cursor]

    def expired(self, now: float) -> list[Item]:
        cursor = self._conn.execute(
            "SELECT item FROM eventbus_rows WHERE tbl = ? AND expires <= ?",
            (self._schema.table, now),
        )
        return [decode_item(text) for (text,) in cursor]

    def apply(self, row: str, pk: str, decide: Decide, forget: Sequence[int] = ()) -> Any:
        db = self._conn
        table = self._schema.table
        db.execute("BEGIN IMMEDIATE")
        try:
            decision = decide(self.get(row))
            if decision is None:
                db.execute("ROLLBACK")
                return None
            item, describe = decision
            (last,) = db.execute(
                "SELECT last_sequence FROM eventbus_tables WHERE name = ?", (table,)
            ).fetchone()
            seq = last + 1
            change = describe(seq)
            if item is None:
                db.execute("DELETE FROM eventbus_rows WHERE tbl = ? AND row = ?", (table, row))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO eventbus_rows (tbl, row, pk, item, expires) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (table, row, pk, encode_item(item), expiry(item, self._ttl)),
                )
            db.execute(
                "INSERT INTO eventbus_outbox (tbl, seq, event) VALUES (?, ?, ?)",
                (table, seq, json.dumps(to_cloudevent(change), ensure_ascii=False)),
            )
            db.execute("UPDATE eventbus_tables SET last_sequence = ? WHERE name = ?", (seq, table))
            if forget:
                db.executemany(
                    "DELETE FROM eventbus_outbox WHERE tbl = ? AND seq = ?",
                    [(table, settled) for settled in forget],
                )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return change

    def pending(self, after: int = 0) -> list[tuple[int, Any]]:
        cursor = self._conn.execute(
            "SELECT seq, event FROM eventbus_outbox WHERE tbl = ? AND seq > ? ORDER BY seq",
            (self._schema.table, after),
        )
        return [(seq, decode_stored(text)) for seq, text in cursor]

    def delivered(self, seqs: Sequence[int]) -> None:
        db = self._conn
        table = self._schema.table
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "DELETE FROM eventbus_outbox WHERE tbl = ? AND seq = ?",
                [(table, seq) for seq in seqs],
            )
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
